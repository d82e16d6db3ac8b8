"""The command line each stage runs under, per GPU count; checked against accelerate's own parser."""
import re
from pathlib import Path

import pytest

from mixmerge.compute.launch import build_command
from workflow_copy import run_snakemake

REPO = Path(__file__).resolve().parents[1]
ZERO3 = str(REPO / "config/accelerate/zero3.yaml")
STAGE = ["grpo", "--node", "rl-math", "--steps", "10"]


@pytest.mark.parametrize("gpus", [0, 1])
def test_zero_or_one_gpu_runs_one_plain_process(gpus):
    assert build_command(gpus, STAGE, ZERO3, python="py") == ["py", "-m", "mixmerge", *STAGE]


def test_no_accelerate_config_means_one_process():
    assert build_command(4, STAGE, None, python="py") == ["py", "-m", "mixmerge", *STAGE]


@pytest.mark.parametrize("gpus", [2, 4, 8])
def test_several_gpus_run_under_accelerate_with_zero3(gpus):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    cmd = build_command(gpus, STAGE, ZERO3, python="py", port=29611)
    assert cmd[:3] == ["py", "-m", "accelerate.commands.launch"]
    args = launch_command_parser().parse_args(cmd[3:])
    args, _, _ = _validate_launch_command(args)  # merges the config file under the command line, as launch does
    assert args.num_processes == gpus  # the job's GPU count wins over the file's num_processes: 8
    assert args.num_machines == 1 and args.main_process_port == 29611
    assert args.use_deepspeed and args.zero_stage == 3
    assert args.zero3_save_16bit_model  # shards gathered into plain safetensors at save time
    assert args.module and args.training_script == "mixmerge" and args.training_script_args == STAGE


def dry_run_shell(root: Path, *extra: str) -> str:
    """``snakemake -n -p`` in the workflow copy at ``root``."""
    out = run_snakemake(root, "-n", "-p", "--cores", "2", *extra)
    return out.stdout + out.stderr


def shell_of(text: str, stage: str) -> str:
    match = re.search(rf"mixmerge\.compute\.launch (--gpus \d+ .*?) -- {stage} ", text)
    assert match, f"no launcher line for {stage}"
    return match.group(1)


def test_rules_launch_with_the_configured_gpus(tmp_path, workflow_copy):
    from conftest import complete_config

    config = complete_config(REPO / "tests/fixtures/gpu_overlay.yaml", tmp_path / "gpu.yaml")
    text = dry_run_shell(workflow_copy, "--configfile", str(config))
    assert shell_of(text, "grpo").startswith("--gpus 8 --job grpo")
    assert "--accelerate-config " + str(workflow_copy / "config/accelerate/zero3.yaml") in shell_of(text, "grpo")
    assert shell_of(text, "sft").startswith("--gpus 4 --job sft")
    assert shell_of(text, "eval").startswith("--gpus 1 --job eval")
    assert "--accelerate-config" not in shell_of(text, "eval")  # generation: one process, vLLM spans the GPUs
    assert shell_of(text, "merge").startswith("--gpus 0 ")
    assert "--lease-wait-s 900" in shell_of(text, "eval")  # the launch block reaches the launcher


def test_tiny_cpu_grid_asks_for_no_gpus(workflow_copy):
    text = dry_run_shell(workflow_copy)
    assert "workflow/profiles/default" in text  # the workflow profile is picked up ...
    for stage in ("sft", "grpo", "merge", "eval"):
        assert shell_of(text, stage).startswith("--gpus 0 ")  # ... and forces no GPUs on the CPU profile
    assert not re.search(r"gpu=[1-9]", text)


def test_merges_run_on_a_gpu_when_given_one(tmp_path, workflow_copy):
    from conftest import complete_config

    overlay = tmp_path / "merge_gpu.yaml"
    overlay.write_text("gpus: {sft: 0, grpo: 0, merge: 1, eval: 0}\n")
    on_gpu = dry_run_shell(workflow_copy, "--configfile", str(complete_config(overlay, tmp_path / "gpu.yaml")))
    assert shell_of(on_gpu, "merge").startswith("--gpus 1 ")
    assert re.search(r"-- merge .*--device cuda ", on_gpu)
    on_cpu = dry_run_shell(workflow_copy)
    assert re.search(r"-- merge .*--device cpu ", on_cpu) and "--device cuda" not in on_cpu
