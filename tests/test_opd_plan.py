"""The opd node in the grid and the DAG: one per training seed, distilling that seed's experts into SFT; a dry run
plans it and its evaluation on every benchmark, for the tiny config and under the SLURM profile with the study's
config (the job asks for gpus.opd GPUs)."""
import re

import pytest
import yaml

from mixmerge.grid import Grid, benchmark_file
from workflow_copy import run_snakemake

CONFIG = {"domains": ["math", "code", "science", "instruct"], "merges": {"ties": {"method": "ties"}},
          "benchmarks": ["math", "code"], "seeds": [0, 1]}


def test_grid_has_one_opd_per_seed_with_that_seeds_teachers():
    grid = Grid.from_config(CONFIG)
    assert "opd" in grid.nodes and "opd.s1" in grid.nodes
    assert grid.teachers_of("opd") == {d: f"rl-{d}" for d in CONFIG["domains"]}
    assert grid.teachers_of("opd.s1") == {d: f"rl-{d}.s1" for d in CONFIG["domains"]}
    assert grid.parents("opd.s1") == ["sft", "rl-math.s1", "rl-code.s1", "rl-science.s1", "rl-instruct.s1"]
    assert ("opd", "code") in grid.cells() and benchmark_file("opd.s1") == "benchmarks/opd/opd.s1.tsv"


def job_block(text: str, rule: str, wildcard: str | None = None) -> str:
    """The first job of ``rule`` in a dry run's listing (with ``wildcard`` among its wildcards, if given)."""
    for block in re.findall(rf"^rule {rule}:\n(.*?)(?:\n\n|\Z)", text, re.S | re.M):
        if wildcard is None or re.search(rf"wildcards: .*{re.escape(wildcard)}", block):
            return block
    raise AssertionError(f"no {rule} job ({wildcard}) in the dry run")


def field(block: str, name: str) -> str:
    return re.search(rf"^\s+{name}: (.*)$", block, re.M).group(1)


def check_opd_planned(text: str, config: dict) -> str:
    opd = job_block(text, "opd")
    inputs = field(opd, "input").split(", ")
    assert {f"results/models/rl-{d}" for d in config["domains"]} <= set(inputs)
    assert {f"results/data/{d}/train.parquet" for d in config["domains"]} <= set(inputs)
    assert field(opd, "output") == "results/models/opd"
    evaluate = job_block(text, "evaluate", "node=opd")
    assert "results/models/opd" in field(evaluate, "input")
    assert {f"results/eval/opd/{bench}.json" for bench in config["benchmarks"]} <= set(
        field(evaluate, "output").split(", "))
    report = job_block(text, "report")
    assert "benchmarks/opd/opd.tsv" in field(report, "input")
    return opd


def test_tiny_config_plans_opd_and_its_eval_cells(workflow_copy):
    out = run_snakemake(workflow_copy, "-n", timeout=300)
    config = yaml.safe_load((workflow_copy / "config/config.yaml").read_text())
    opd = check_opd_planned(out.stdout + out.stderr, config)
    assert "gpu=0" in field(opd, "resources")


def test_slurm_profile_renders_opd_with_the_configured_gpus(workflow_copy):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    from test_slurm_profile import dry_run, job_resources, sbatch_line

    paper = yaml.safe_load((workflow_copy / "config/paper.yaml").read_text())
    text = dry_run(workflow_copy, workflow_copy / "config/paper.yaml")
    check_opd_planned(text, {**paper, "benchmarks": list(paper["benchmarks"])})
    resources = job_resources(text, "opd")
    gpus = paper["gpus"]["opd"]
    assert gpus == 8 and resources["gpu"] == gpus and resources["slurm_partition"] == "gpu"
    line = sbatch_line(resources)
    assert f"--gpus={gpus}" in line and "--cpus-per-gpu=8" in line and "--ntasks-per-gpu" not in line
