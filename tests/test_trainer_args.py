"""Trainer blocks reach TRL unchanged; check-config builds every config and names the first bad key."""
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mixmerge.check_config import check, load_layers
from mixmerge.config import ConfigError
from mixmerge.training.trainer_args import check_fields, grpo_args, grpo_batch_plan, opd_args, sft_args, \
    TrainerFieldError, with_prompt_limit

REPO = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((REPO / "config/config.yaml").read_text())
PAPER = yaml.safe_load((REPO / "config/paper.yaml").read_text())


def plain(value):
    return getattr(value, "value", value)


@pytest.mark.parametrize("config", [TINY, PAPER], ids=["tiny", "paper"])
def test_every_trl_field_reaches_the_trainer_config_unchanged(config, tmp_path):
    grpo = {k: v for k, v in with_prompt_limit(config, "grpo").items() if k != "steps"}
    grpo["trl"] = {**grpo["trl"], "bf16": False}  # no GPU here: TrainingArguments refuses bf16 on CPU
    sft = {**config["sft"], "trl": {**config["sft"]["trl"], "bf16": False}}
    opd = with_prompt_limit(config, "opd")
    opd["trl"] = {**opd["trl"], "bf16": False}
    built = [(opd_args(opd, seed=1, checkpoint_dir=str(tmp_path), world=max(config["gpus"]["opd"], 1)), opd["trl"]),
             (grpo_args(grpo, steps=3, seed=1, checkpoint_dir=str(tmp_path), world=max(config["gpus"]["grpo"], 1)),
              grpo["trl"]),
             (sft_args(sft, seed=1, checkpoint_dir=str(tmp_path), chats=False, use_cpu=True), sft["trl"])]
    for args, block in built:
        for key, value in block.items():
            assert plain(getattr(args, key)) == value, key


def test_study_batch_plan_is_one_rollout_per_step():
    plan = grpo_batch_plan(with_prompt_limit(PAPER, "grpo"), world=PAPER["gpus"]["grpo"])
    assert plan["completions_per_step"] == 128 * 16
    assert plan["per_device_train_batch_size"] * PAPER["gpus"]["grpo"] * plan["gradient_accumulation_steps"] == 2048


def test_study_opd_batch_is_256_prompts_times_4_per_step(tmp_path):
    opd = with_prompt_limit(PAPER, "opd")
    opd["trl"] = {**opd["trl"], "bf16": False}
    world = PAPER["gpus"]["opd"]
    args = opd_args(opd, seed=0, checkpoint_dir=str(tmp_path), world=world)
    assert args.per_device_train_batch_size * world * args.gradient_accumulation_steps == 256 * 4
    assert args.max_steps == 200 and args.beta == 1.0 and args.remove_unused_columns is False


def test_a_batch_that_does_not_split_is_an_error():
    with pytest.raises(ValueError, match="do not split evenly over 3 processes"):
        grpo_batch_plan(TINY["grpo"], world=3)


def test_colocated_tensor_parallel_must_divide_the_processes(tmp_path):
    grpo = copy.deepcopy(TINY["grpo"])
    grpo["trl"].update(use_vllm=True, vllm_mode="colocate", vllm_tensor_parallel_size=3)
    with pytest.raises(ValueError, match="grpo.trl.vllm_tensor_parallel_size"):
        grpo_args(grpo, steps=1, seed=0, checkpoint_dir=str(tmp_path), world=8)


@pytest.mark.parametrize("kind,field,message", [
    ("sft", "warmup_ratio", "sft.trl.warmup_ratio': SFTConfig has no such field"),
    ("grpo", "lerning_rate", "grpo.trl.lerning_rate': GRPOConfig has no such field"),
    ("grpo", "output_dir", "grpo.trl.output_dir': set by mixmerge"),
    ("opd", "lerning_rate", "opd.trl.lerning_rate': DistillationConfig has no such field"),
    ("opd", "beta", "opd.trl.beta': set by mixmerge"),
])
def test_unknown_or_owned_fields_are_named(kind, field, message):
    with pytest.raises(TrainerFieldError, match=message):
        check_fields(kind, {field: 1})


def test_paper_with_sft_enabled_builds_every_config():
    config = copy.deepcopy(PAPER)
    config["sft"]["enabled"] = True
    lines = check(config, check_paths=False)
    assert any(line.startswith("sft: SFTConfig ok") and "micro-batch 16,384 <= 18,432 tokens per device" in line
               for line in lines)
    assert any("2048 completions per step over 8 process(es)" in line for line in lines)


def broken(path: Path, edit) -> Path:
    config = copy.deepcopy(PAPER)
    edit(config)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("edit,key", [
    (lambda c: c["sft"]["trl"].update(warmup_ratio=0.1), "sft.trl.warmup_ratio"),
    (lambda c: c["grpo"]["trl"].update(max_completion_lenght=10), "grpo.trl.max_completion_lenght"),
    (lambda c: c["opd"]["trl"].update(teacher_model_name_or_path="x"), "opd.trl.teacher_model_name_or_path"),
    (lambda c: c["opd"].update(loss="forward_kl"), "opd.loss"),
    (lambda c: c["merges"]["ties"]["params"].update(densty=0.5), "densty"),
    (lambda c: c["benchmarks"]["aime24"].update(k=0), "benchmarks.aime24.k"),
])
def test_check_config_fails_naming_the_key(tmp_path, edit, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check(load_layers([str(broken(tmp_path / "bad.yaml", edit))]), check_paths=False)


def test_check_config_command_on_the_shipped_configs_and_a_bad_copy(tmp_path):
    run = lambda *files: subprocess.run([sys.executable, "-m", "mixmerge", "check-config", *files], cwd=REPO,
                                        capture_output=True, text=True)
    ok = run("config/paper.yaml", "--no-paths")  # its hand-made RL blend file is not on this machine
    assert ok.returncode == 0, ok.stderr
    assert "2048 completions per step" in ok.stdout
    assert "opd: DistillationConfig ok, loss study" in ok.stdout and "256 prompts x 4 samples" in ok.stdout
    missing = run("config/paper.yaml")
    assert missing.returncode == 1 and "data.rl_blend.source.path" in missing.stderr
    bad = run(str(broken(tmp_path / "bad.yaml", lambda c: c["sft"]["trl"].update(warmup_ratio=0.1))))
    assert bad.returncode == 1 and "sft.trl.warmup_ratio" in bad.stderr
