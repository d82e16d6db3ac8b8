import dataclasses
import re
import time

import pytest

from mixmerge.domains import check_hooks, domain_names, final_answer, get_domain
from mixmerge.data.rows import read_rows, write_rows
from mixmerge.verifiers.scoring import score_many

DOMAINS = domain_names()
# Single-turn domains gate on the study's </think>; a multi-turn domain's sample is a transcript, with no gate.
GATED = [name for name in DOMAINS if get_domain(name).environment is None]
HOSTILE = ["", "</think>", "<think>" * 50, "</think>\n" + "x" * 100_000, "\x00\x01\ufffd",
           "</think>" + "\\boxed{" * 5000, "</think>```python\n" + "(" * 50_000 + "\n```",
           "</think>Answer: " + "A " * 20_000, "</think>" + "\U0001F600" * 30_000]


@pytest.mark.parametrize("name", DOMAINS)
def test_splits_are_disjoint_and_seeded(name):
    module = get_domain(name)
    train, held_out = module.generate(400, 0, "train"), module.generate(60, 0, "eval")
    assert not {r["source"] for r in train} & {r["source"] for r in held_out}
    assert [r["id"] for r in module.generate(60, 0, "eval")] == [r["id"] for r in held_out]
    assert len({r["id"] for r in train}) == len(train)


@pytest.mark.parametrize("name", DOMAINS)
def test_reference_scores_one_and_flawed_scores_zero_even_leniently(name):
    rows = get_domain(name).generate(12, 1, "eval")
    domains = [name] * len(rows)
    verifiers = [r["verifier"] for r in rows]
    assert score_many(domains, [r["solution"] for r in rows], verifiers, {}) == [1.0] * len(rows)
    # The slip is wrong content in the right format: SFT on it leaves correctness, not format, for RL to learn.
    for lenient in (False, True):
        flawed = score_many(domains, [r["flawed_solution"] for r in rows], verifiers, {}, lenient=lenient)
        assert flawed == [0.0] * len(rows)


@pytest.mark.parametrize("name", GATED)
def test_think_gate(name):
    row = get_domain(name).generate(1, 2, "eval")[0]
    answer_only = row["solution"].split("</think>", 1)[1]
    module = get_domain(name)
    assert module.score(answer_only, row["verifier"]) == 0.0
    assert module.score(answer_only, row["verifier"], settings={"require_think": False}) == 1.0
    assert module.score(row["solution"] + "<|im_end|>", row["verifier"]) == 1.0


@pytest.mark.parametrize("name", DOMAINS)
@pytest.mark.parametrize("junk", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_output_scores_zero_within_the_domains_time_bound(name, junk):
    domain = get_domain(name)
    row = domain.generate(1, 3, "eval")[0]
    started = time.monotonic()
    assert domain.score(junk, row["verifier"]) == 0.0
    assert domain.score(junk, row["verifier"], lenient=True) == 0.0
    assert time.monotonic() - started <= domain.item_timeout({})


def test_wrong_answers_score_zero():
    math_row = get_domain("math").generate(1, 0, "eval")[0]
    wrong = int(math_row["verifier"]["answer"]) + 1
    assert get_domain("math").score(f"<think>x</think>\\boxed{{{wrong}}}", math_row["verifier"]) == 0.0
    sci = get_domain("science").generate(1, 0, "eval")[0]
    other = next(L for L in "ABCD" if L != sci["verifier"]["correct_letter"])
    assert get_domain("science").score(f"<think>x</think>Answer: {other}", sci["verifier"]) == 0.0
    assert get_domain("science").score("<think>x</think>Answer: A B C D", sci["verifier"]) == 0.0
    code = get_domain("code").generate(1, 0, "eval")[0]
    bad = "<think>x</think>```python\ndef f(x):\n    return 0\n```"
    assert get_domain("code").score(bad, code["verifier"]) == 0.0


def test_final_answer_gate():
    assert final_answer("<think>a</think>b</think>c<|im_end|>") == "c"
    assert final_answer("no reasoning close") is None
    assert final_answer("<think>unclosed", require_think=False) == "unclosed"


def test_rows_roundtrip_and_errors(tmp_path):
    rows = get_domain("math").generate(5, 0, "eval")
    write_rows(rows, tmp_path / "x.parquet")
    assert read_rows(tmp_path / "x.parquet")[0]["verifier"] == rows[0]["verifier"]
    with pytest.raises(ValueError, match="duplicate id"):
        write_rows(rows + rows[:1], tmp_path / "y.parquet")
    bad = dict(rows[0])
    del bad["verifier"]
    with pytest.raises(ValueError, match="lacks field 'verifier'"):
        write_rows([bad], tmp_path / "z.parquet")
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        read_rows(tmp_path / "missing.parquet")


@pytest.mark.parametrize("name", DOMAINS)
def test_strict_implies_lenient(name):
    """evaluate.py scores leniently only what failed strictly; that is sound only if strict => lenient."""
    rows = get_domain(name).generate(8, 4, "eval")
    variants = []
    for r in rows:
        sol = r["solution"]
        variants += [sol, sol + "<|im_end|>", "<think>a</think>b" + sol, sol.replace("\n</think>\n", "</think> "),
                     sol + "\nAnswer: A", sol + " extra words, here."]
    domains = [name] * len(variants)
    verifiers = [r["verifier"] for r in rows for _ in range(6)]
    strict = score_many(domains, variants, verifiers, {})
    lenient = score_many(domains, variants, verifiers, {}, lenient=True)
    assert any(strict)
    assert all(lv == 1.0 for sv, lv in zip(strict, lenient) if sv == 1.0)


def test_a_new_domain_is_one_module(workflow_copy):
    """A copy of the math module under a new name, plus config entries, and nothing else: the registry finds
    it, the contract holds for it, and the DAG plans its expert, its eval cells and merges that include it."""
    import subprocess
    import sys

    import yaml

    from workflow_copy import run_snakemake

    domains = workflow_copy / "src/mixmerge/domains"
    text = (domains / "math.py").read_text().replace('NAME = "math"', 'NAME = "algebra"')
    text = text.replace('blend_subsets=("nano_v3_sft_profiled_dapo17k", "nano_v3_sft_profiled_skywork_no_omni"),', "")
    (domains / "algebra.py").write_text(text)
    config = yaml.safe_load((workflow_copy / "config/config.yaml").read_text())
    config["domains"].append("algebra")
    config["grpo"]["steps"]["algebra"] = 5
    config["benchmarks"]["algebra"] = {**config["benchmarks"]["math"], "domain": "algebra"}
    (workflow_copy / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    contract = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(__file__), "-k",
         "algebra and not new_domain"], cwd=workflow_copy, env={**__import__("os").environ,
                                                                "PYTHONPATH": str(workflow_copy / "src")},
        capture_output=True, text=True, timeout=300)
    assert contract.returncode == 0, contract.stdout[-3000:]
    assert int(re.search(r"(\d+) passed", contract.stdout).group(1)) >= 10  # every per-domain test, for algebra

    plan = run_snakemake(workflow_copy, "-n", "--forceall").stdout
    assert "results/models/rl-algebra" in plan
    assert "results/eval/rl-algebra/algebra.json" in plan and "results/eval/merge-ties-study/algebra.json" in plan
    assert "--experts results/models/rl-math results/models/rl-code results/models/rl-science " \
           "results/models/rl-instruct results/models/rl-algebra" in plan


def test_column_sum_shows_the_carry_and_the_slip_drops_it():
    from mixmerge.domains._arith import carry_pairs, column_sum

    assert column_sum(47, 38) == ("7+8=15 4+3+1=8 so 85", 85)
    assert column_sum(47, 38, keep_carry=False) == ("7+8=15 4+3=7 so 75", 75)
    assert all(a % 10 + b % 10 >= 10 and a + b <= 99 for a, b in carry_pairs())
    assert all(column_sum(a, b)[1] == a + b and column_sum(a, b, False)[1] == a + b - 10 for a, b in carry_pairs())


def test_the_arithmetic_domains_hold_out_the_same_sums():
    """An evaluated sum is trained in no domain: a gain on it from another domain's training is transfer."""
    def sums(name, split, n):
        return {(r["source"].split(":")[-1]) for r in get_domain(name).generate(n, 0, split)}

    held = {name: sums(name, "eval", 10_000) for name in ("math", "code")}
    science = {s for s in sums("science", "eval", 10_000)}
    assert held["math"] == held["code"] == science
    assert not held["math"] & sums("code", "train", 3000) and not held["math"] & sums("science", "train", 3000)


def test_science_letter_is_the_tens_offset_from_option_a():
    for row in get_domain("science").generate(50, 0, "train"):
        prompt = row["prompt"][0]["content"]
        lowest = int(prompt.split("A) ")[1].split()[0])
        total = int(row["verifier"]["answer_text"].split()[0])
        assert "ABCD"[(total - lowest) // 10] == row["verifier"]["correct_letter"]
        assert f"B) {lowest + 10} " in prompt and (total - lowest) % 10 == 0


def test_a_multi_turn_domain_sets_all_its_hooks():
    agent = get_domain("agent")
    check_hooks(agent, "agent.py")
    with pytest.raises(TypeError, match="episode"):
        check_hooks(dataclasses.replace(agent, episode=None), "half.py")
    check_hooks(dataclasses.replace(agent, environment=None, episode=None, max_turns=None), "single.py")
