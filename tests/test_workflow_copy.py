"""Tests plan and run the DAG in their own copy of the workflow: outputs the main job left in the checkout
(results/, logs/, benchmarks/, .snakemake/) neither hide jobs from a test's plan nor receive a test's outputs."""
import re
from pathlib import Path

import yaml

from mixmerge.grid import ANALYSES, Grid
from mixmerge.merging.methods import expand_merges
from workflow_copy import RUN_DIRS, copy_workflow, run_dirs_snapshot, run_snakemake, snapshot_changes

# What a finished tiny run leaves: the outputs of two leaf jobs (base_model, data_prep for math), later cells,
# a log, a benchmark record and Snakemake's metadata.
FINISHED = {
    "results/models/base/config.json": "{}",
    "results/data/math/train.parquet": "x",
    "results/data/math/eval.parquet": "x",
    "results/models/sft/config.json": "{}",
    "results/eval/sft/math.json": '{"strict": 0.5}',
    "logs/base_model.log": "done\n",
    "benchmarks/base_model/base.tsv": "s\n1.0\n",
    ".snakemake/metadata/cmVzdWx0cy9tb2RlbHMvYmFzZQ==": "{}",
}


def populate(root: Path) -> None:
    for rel, text in FINISHED.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def job_counts(text: str) -> dict:
    stats = text.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.MULTILINE)}


def planned(root: Path) -> dict:
    out = run_snakemake(root, "-n", "--cores", "2")
    return job_counts(out.stdout + out.stderr)


def test_copy_of_a_finished_checkout_plans_the_full_grid(tmp_path):
    checkout = copy_workflow(tmp_path / "checkout")
    populate(checkout)
    config = yaml.safe_load((checkout / "config/config.yaml").read_text())
    domains, benchmarks = config["domains"], config["benchmarks"]
    merges = len(expand_merges(config["merges"]))
    cells = Grid.from_config(config).cells()   # a merge of named experts is evaluated on their domains only
    assert len(cells) <= (2 + len(domains) + 2 + merges) * len(benchmarks)   # base, sft, experts, rl-mixed, opd
    evals = {name: len(nodes) for name, _, nodes in Grid.from_config(config).eval_rules()}   # one job per node
    full = {"base_model": 1, "data_prep": len(domains), "sft": 1, "headroom": 1, "grpo": len(domains), "grpo_mixed": 1, "opd": 1,
            "merge": merges, **evals, **dict.fromkeys(ANALYSES, 1), "report": 1, "all": 1}
    full["total"] = sum(full.values())

    in_checkout = planned(checkout)  # what a test planning in the checkout itself would see
    assert "base_model" not in in_checkout and in_checkout["data_prep"] == len(domains) - 1
    assert in_checkout["total"] < full["total"]

    copy = copy_workflow(tmp_path / "copy", source=checkout)
    assert not [name for name in RUN_DIRS if (copy / name).exists()]
    assert planned(copy) == full
    assert (checkout / "results/models/base/config.json").read_text() == "{}"  # the source is left as it was


def test_workflow_copy_fixture_is_private(workflow_copy):
    assert not [name for name in RUN_DIRS if (workflow_copy / name).exists()]
    for name in ("workflow/Snakefile", "config/config.yaml", "config/paper.yaml", "config/accelerate/zero3.yaml",
                 "src/mixmerge/__init__.py", "pyproject.toml"):
        assert (workflow_copy / name).is_file(), name
    with open(workflow_copy / "src/mixmerge/__init__.py", "a") as f:  # Snakemake imports the copy's package
        f.write('\nraise ImportError("mixmerge imported from the workflow copy")\n')
    out = run_snakemake(workflow_copy, "-n", "--cores", "1", check=False)
    assert out.returncode != 0 and "mixmerge imported from the workflow copy" in out.stdout + out.stderr


def test_snapshot_sees_new_changed_and_removed_run_files(tmp_path):
    populate(tmp_path)
    (tmp_path / "benchmarks/merge_bench.py").write_text("# tracked script\n")
    before = run_dirs_snapshot(tmp_path)
    assert run_dirs_snapshot(tmp_path) == before
    (tmp_path / "benchmarks/merge_bench.py").write_text("# edited script, not a run output\n")
    assert snapshot_changes(before, run_dirs_snapshot(tmp_path)) == []
    (tmp_path / "results/eval/sft/math.json").write_text('{"strict": 0.75}')
    (tmp_path / "results/eval/sft/code.json").write_text("{}")
    (tmp_path / "logs/base_model.log").unlink()
    (tmp_path / ".snakemake/locks").mkdir()
    assert snapshot_changes(before, run_dirs_snapshot(tmp_path)) == [
        "+ .snakemake/locks", "- logs/base_model.log", "+ results/eval/sft/code.json", "~ results/eval/sft/math.json"]
