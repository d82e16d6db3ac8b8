import pytest

from mixmerge.domains import final_answer, get_domain
from mixmerge.data.rows import read_rows, write_rows
from mixmerge.verifiers.scoring import score_many

DOMAINS = ["math", "code", "science", "instruct"]


@pytest.mark.parametrize("name", DOMAINS)
def test_splits_are_disjoint_and_seeded(name):
    module = get_domain(name)
    train, held_out = module.generate(400, 0, "train"), module.generate(60, 0, "eval")
    assert not {r["source"] for r in train} & {r["source"] for r in held_out}
    assert [r["id"] for r in module.generate(60, 0, "eval")] == [r["id"] for r in held_out]
    assert len({r["id"] for r in train}) == len(train)


@pytest.mark.parametrize("name", DOMAINS)
def test_reference_scores_one_and_unformatted_scores_zero(name):
    rows = get_domain(name).generate(12, 1, "eval")
    domains = [name] * len(rows)
    verifiers = [r["verifier"] for r in rows]
    assert score_many(domains, [r["solution"] for r in rows], verifiers, {}) == [1.0] * len(rows)
    assert score_many(domains, [r["plain_solution"] for r in rows], verifiers, {}) == [0.0] * len(rows)
    lenient = score_many(domains, [r["plain_solution"] for r in rows], verifiers, {}, lenient=True)
    # Lenient = right answer whatever the format; for instruction following the format *is* the answer.
    assert lenient == ([0.0] * len(rows) if name == "instruct" else [1.0] * len(rows))


@pytest.mark.parametrize("name", DOMAINS)
def test_think_gate(name):
    row = get_domain(name).generate(1, 2, "eval")[0]
    answer_only = row["solution"].split("</think>", 1)[1]
    module = get_domain(name)
    assert module.score(answer_only, row["verifier"]) == 0.0
    assert module.score(answer_only, row["verifier"], settings={"require_think": False}) == 1.0
    assert module.score(row["solution"] + "<|im_end|>", row["verifier"]) == 1.0


@pytest.mark.parametrize("name", DOMAINS)
@pytest.mark.parametrize("junk", ["", "</think>", "<think>" * 50, "</think>\n" + "x" * 100_000, "\x00\x01\ufffd"])
def test_scorers_never_raise_on_junk(name, junk):
    row = get_domain(name).generate(1, 3, "eval")[0]
    assert get_domain(name).score(junk, row["verifier"]) == 0.0


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
