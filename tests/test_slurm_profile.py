"""The SLURM profile renders the grid, and the GRPO job's sbatch settings ask for the configured GPUs.

The dry run prints each job's resources; the sbatch line is then built from them with the executor plugin's
own functions (what it runs at submission), without a cluster."""
import re
import types
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from workflow_copy import run_snakemake

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "config/paper.yaml"
OVERLAY = REPO / "tests/fixtures/gpu_overlay.yaml"

plugin = pytest.importorskip("snakemake_executor_plugin_slurm",
                             reason="pip install -e '.[slurm]' (snakemake-executor-plugin-slurm>=2.7.1)")


def version_tuple(text):
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def dry_run(root: Path, configfile: Path) -> str:
    """``snakemake -n`` under the SLURM profile in the workflow copy at ``root``."""
    out = run_snakemake(root, "-n", "--profile", "workflow/profiles/slurm", "--configfile", str(configfile),
                        timeout=300)
    return out.stdout + out.stderr


def job_resources(text: str, rule: str) -> dict:
    """Resources of the first job of ``rule`` in a dry run's job listing."""
    block = re.search(rf"^rule {rule}:\n(.*?)(?:\n\n|\Z)", text, re.S | re.M)
    assert block, f"no {rule} job in the dry run"
    line = re.search(r"^\s+resources: (.*)$", block.group(1), re.M).group(1)
    out = {}
    for item in line.split(", "):
        key, _, value = item.partition("=")
        out[key] = int(value) if value.isdigit() else value
    return out


def sbatch_line(resources: dict, threads: int = 1) -> str:
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class Resources(dict):
        __getattr__ = dict.__getitem__

    job = types.SimpleNamespace(resources=Resources(resources), threads=threads, name="grpo", is_group=lambda: False)
    params = {"run_uuid": "uuid", "slurm_logfile": "log", "comment_str": "rule_grpo", "account": "-A acct",
              "partition": f"-p {resources.get('slurm_partition', '')}", "workdir": str(REPO)}
    return get_submit_command(job, params) + set_gres_string(job)


def test_plugin_is_new_enough():
    # < 2.7.1 added --ntasks-per-gpu, splitting a multi-GPU job into one-GPU tasks
    assert version_tuple(metadata.version("snakemake-executor-plugin-slurm")) >= (2, 7, 1)


def check_grpo_submission(text: str, config: dict) -> str:
    gpus = config["gpus"]["grpo"]
    res = job_resources(text, "grpo")
    assert res["gpu"] == gpus and res["slurm_partition"] == "gpu"
    line = sbatch_line(res)
    assert f"--gpus={gpus}" in line if gpus else "--gpus" not in line
    assert "--cpus-per-gpu=8" in line and "--cpus-per-task" not in line
    assert "--ntasks-per-gpu" not in line  # one task holding all N GPUs (accelerate starts the N processes)
    assert f"--mem {res['mem_mb']}" in line and f"-t {res['runtime']}" in line
    return line


def test_gpu_fixture_renders_and_grpo_asks_for_its_gpus(tmp_path, workflow_copy):
    from conftest import complete_config

    text = dry_run(workflow_copy, complete_config(OVERLAY, tmp_path / "gpu.yaml"))
    line = check_grpo_submission(text, yaml.safe_load(OVERLAY.read_text()))
    assert "--gpus=8" in line
    assert job_resources(text, "evaluate")["gpu"] == 1
    merge = job_resources(text, "merge")
    assert merge["gpu"] == 0 and "--gpus" not in sbatch_line(merge) and "--cpus-per-task=16" in sbatch_line(merge)


@pytest.mark.skipif(not PAPER.exists(), reason="config/paper.yaml not written yet (separate issue)")
def test_paper_config_renders_and_grpo_asks_for_its_gpus(workflow_copy):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    paper = yaml.safe_load(PAPER.read_text())
    config["gpus"] = {**config["gpus"], **paper.get("gpus", {})}
    text = dry_run(workflow_copy, workflow_copy / "config/paper.yaml")
    check_grpo_submission(text, config)
    # every job that asks for GPUs lands on the GPU partition (a rule missing from set-resources would not)
    jobs = re.findall(r"^rule (\w+):\n.*?^\s+resources: (.*?)$", text, re.S | re.M)
    on_gpus = {rule for rule, res in jobs if re.search(r"\bgpu=[1-9]", res)}
    assert {"grpo", "grpo_mixed", "opd", "evaluate", "headroom"} <= on_gpus
    assert not [rule for rule, res in jobs if rule in on_gpus and "slurm_partition=gpu" not in res]
