"""Seeds as a grid axis: node ids and parents (mixmerge.grid), and the DAG a two-seed config plans (a dry run in a
workflow copy); the tiny default (one seed) plans the same 38 jobs as without the key."""
import re

import pytest
import yaml

from mixmerge.grid import ANALYSES, Grid
from workflow_copy import run_snakemake

SPEC = {"domains": ["math", "code"], "merges": {"ties": {"method": "ties_study"}},
        "benchmarks": {"math": {}, "code": {}}, "seed": 0}


def test_one_seed_keeps_the_plain_ids():
    the_grid = Grid.from_config(SPEC)
    assert the_grid.seeds == (0,)
    assert the_grid.nodes == ["base", "sft", "rl-math", "rl-code", "rl-mixed", "opd", "merge-ties"]
    assert Grid.from_config({**SPEC, "seed": 3}).seeds == (3,)


def test_seed_replicas_ids_split_and_parents():
    the_grid = Grid.from_config({**SPEC, "seeds": [0, 1, 2]})
    assert the_grid.nodes == ["base", "sft", "rl-math", "rl-code", "rl-mixed", "opd", "merge-ties",
                              "rl-math.s1", "rl-code.s1", "rl-mixed.s1", "opd.s1", "merge-ties.s1",
                              "rl-math.s2", "rl-code.s2", "rl-mixed.s2", "opd.s2", "merge-ties.s2"]
    assert the_grid.split("rl-mixed.s2") == ("rl-mixed", 2) and the_grid.split("sft") == ("sft", 0)
    assert the_grid.parents("merge-ties.s1") == ["sft", "rl-math.s1", "rl-code.s1"]
    assert the_grid.parents("rl-math.s2") == ["sft"] and the_grid.parents("sft") == []
    assert the_grid.parents("opd.s2") == ["sft", "rl-math.s2", "rl-code.s2"]
    assert len(the_grid.cells()) == 17 * 2


def test_a_merge_named_like_a_replica_is_an_error():
    with pytest.raises(ValueError, match="merges.ties.s1"):
        Grid.from_config({**SPEC, "seeds": [0, 1], "merges": {"ties.s1": {"method": "ties_study"}}})
    with pytest.raises(ValueError, match="listed twice"):
        Grid.from_config({**SPEC, "seeds": [1, 1]})


def job_counts(text: str) -> dict:
    stats = text.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.MULTILINE)}


def test_two_seeds_plan_the_replicated_nodes(workflow_copy):
    default = run_snakemake(workflow_copy, "-n", "--cores", "2", timeout=300)
    assert job_counts(default.stdout + default.stderr)["total"] == 38   # the tiny DAG
    config = yaml.safe_load((workflow_copy / "config/config.yaml").read_text())
    assert config["seeds"] == [0]
    config["seeds"] = [0, 1]
    (workflow_copy / "two_seeds.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    out = run_snakemake(workflow_copy, "-n", "-p", "--cores", "2", "--configfile", "two_seeds.yaml", timeout=300)
    text = out.stdout + out.stderr
    counts = job_counts(text)
    merges = len(config["merges"])
    the_grid = Grid.from_config(config)
    per_seed = len(config["domains"]) + 2 + (merges - 1)   # experts, rl-mixed, opd, the merges of all experts
    assert len(the_grid.cells()) == (2 + 2 * per_seed) * 4 + 2 * 2   # the pairwise merge: its two domains only
    # one eval job per node: every benchmark, or (the pairwise merges) their two domains' benchmarks
    assert [(name, len(nodes)) for name, _, nodes in the_grid.eval_rules()] == [
        ("evaluate", 2 + 2 * per_seed), ("evaluate_set1", 2)]
    assert counts == {"base_model": 1, "data_prep": 4, "sft": 1, "headroom": 1, "grpo": 8, "grpo_mixed": 2, "opd": 2,
                      "merge": 2 * merges, "evaluate": 2 + 2 * per_seed, "evaluate_set1": 2,
                      **dict.fromkeys(ANALYSES, 1), "report": 1, "all": 1,
                      "total": 21 + len(ANALYSES) + 2 * merges + 2 + 2 * per_seed + 2}
    teachers = " ".join(f"{d}=results/models/rl-{d}.s1" for d in config["domains"])
    assert re.search(rf"opd --node opd\.s1 .*--teachers {re.escape(teachers)} .*--seed 1 ", text)
    assert re.search(r"grpo --node rl-math\.s1 .*--seed 1 .*--tensorboard logs/tensorboard/rl-math\.s1 ", text)
    assert re.search(r"grpo --node rl-math .*--seed 0 .*--tensorboard logs/tensorboard/rl-math ", text)
    experts = " ".join(f"results/models/rl-{d}.s1" for d in config["domains"])
    assert re.search(rf"--experts {re.escape(experts)} .*--out results/models/merge-ties-study\.s1 ", text)
    assert "--out-json results/eval/merge-ties-study.s1/math.json" in text
    pair = " ".join(f"results/models/rl-{d}.s1" for d in ("math", "code"))
    assert re.search(rf"--experts {re.escape(pair)} --seed 0 .*--out results/models/merge-ties-math_code\.s1 ", text)
    assert "results/eval/merge-ties-math_code.s1/science.json" not in text
    assert '"seeds": [0, 1]' in text  # the report's spec
