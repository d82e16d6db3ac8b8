"""The whole DAG, end to end, on the CI-sized config: every stage really runs (tiny model, few steps)."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mixmerge.config import overlay
from mixmerge.grid import Grid
from workflow_copy import copy_workflow, run_snakemake, snakemake_env

ROOT = Path(__file__).resolve().parents[1]
CI_MERGES = ("average", "ties-study", "ties-math_code")


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Snakemake in the workflow copy at ``workdir``, on the CI config written there."""
    return run_snakemake(workdir, "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args,
                         timeout=timeout, check=False)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("grid"))
    config = overlay(yaml.safe_load((ROOT / "config/config.yaml").read_text()),
                     yaml.safe_load((ROOT / "tests/ci_config.yaml").read_text()))
    # one mergekit method, one study-exact method and the pairwise merge (5-minute budget; every method has its
    # own unit tests)
    config["merges"] = {name: config["merges"][name] for name in CI_MERGES}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return workdir, config


def test_every_cell_present_and_valid(grid):
    workdir, config = grid
    the_grid = Grid.from_config(config)
    cells = the_grid.cells()   # a merge of named experts (the pairwise ablation) is evaluated on its domains only
    partial = list(the_grid.pairwise_merges)
    assert partial and all(len({b for n, b in cells if n == node}) == 2 for node in partial)
    main = pd.read_csv(workdir / "results/report/main_table.csv", index_col=0)
    assert list(main.index) == list(config["benchmarks"])
    for node, bench in cells:
        for metric in ("strict", "lenient"):
            value = main.loc[bench, f"{node}:{metric}"]
            assert 0 <= value <= 1, (node, bench, metric)
        items = (workdir / f"results/eval/{node}/{bench}.jsonl").read_text().splitlines()
        assert len(items) == config["data"]["eval_per_domain"]
        assert all(len(json.loads(line)["samples"]) == config["benchmarks"][bench]["k"] for line in items)
    merge = pd.read_csv(workdir / "results/report/merge_table.csv", index_col=0)
    assert set(f"merge-{m}" for m in config["merges"]) <= set(merge.index)
    assert not merge.drop(index=partial).isna().any().any()   # a partial node's other benchmarks stay blank
    transfer = pd.read_csv(workdir / "results/report/transfer_matrix.csv", index_col=0)
    assert not transfer.drop(columns=partial).isna().any().any()
    for node in partial:
        assert transfer.loc[list(the_grid.domains_of(node)), node].notna().all()
    compute = pd.read_csv(workdir / "results/report/compute_table.csv")
    for node in ["sft", *[f"rl-{d}" for d in config["domains"]], "rl-mixed"]:
        wall = compute.loc[compute["node"] == node, "wall_seconds"]
        assert len(wall) == 1 and wall.iloc[0] > 0 and not math.isnan(wall.iloc[0]), node
    for merge_name in config["merges"]:
        record = json.loads((workdir / f"results/models/merge-{merge_name}/merge_record.json").read_text())
        assert record["seed"] == config["merge_seed"] and record["dtype"] == "float32"
        assert (workdir / f"results/models/merge-{merge_name}/mergekit_config.yml").exists()
    assert "rl-mixed" in (workdir / "results/report/report.md").read_text()


def test_mixed_run_logs_a_reward_curve_per_domain(grid):
    workdir, config = grid
    log = json.loads((workdir / "results/models/rl-mixed/train_log.json").read_text())
    for domain in config["domains"]:
        values = [e[f"rewards/{domain}_reward/mean"] for e in log if e.get(f"rewards/{domain}_reward/mean") is not None]
        assert values and all(0.0 <= v <= 1.0 for v in values), domain


def test_one_cell_reruns_with_its_node_only(grid):
    workdir, _ = grid
    assert "Nothing to be done" in snakemake(workdir, "-n").stdout
    target = "results/eval/merge-ties-study/math.json"
    (workdir / target).unlink()
    dry = snakemake(workdir, "-n", target)
    assert dry.returncode == 0
    assert "evaluate 1" in " ".join(dry.stdout.split())   # one job: merge-ties-study on its benchmarks
    assert "grpo" not in dry.stdout.split("Job stats:")[1] and "sft" not in dry.stdout.split("Job stats:")[1]
    run = snakemake(workdir, target)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (workdir / target).exists()


def test_interrupted_training_resumes_from_checkpoint(grid):
    """Rerunning a training job whose checkpoints remain resumes from the newest one, not from scratch."""
    workdir, config = grid
    steps = config["grpo"]["steps"]["math"]
    assert (workdir / f"results/checkpoints/rl-math/checkpoint-{steps}").is_dir()
    cmd = [sys.executable, "-m", "mixmerge", "grpo", "--node", "rl-math", "--model", "results/models/sft",
           "--train", "math=results/data/math/train.parquet", "--settings", json.dumps(config["grpo"]),
           "--reward", json.dumps(config["reward"]), "--steps", str(steps + 1), "--threads", "1",
           "--out", "results/models/rl-math-longer", "--checkpoints", "results/checkpoints/rl-math"]
    proc = subprocess.run(cmd, cwd=workdir, env=snakemake_env(workdir), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resuming from results/checkpoints/rl-math/checkpoint-{steps}" in proc.stderr
    card = json.loads((workdir / "results/models/rl-math-longer/mixmerge_card.json").read_text())
    assert card["global_step"] == steps + 1
