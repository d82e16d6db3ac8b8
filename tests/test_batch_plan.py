"""Micro-batches under the token budget: the study's grid fits, a budget that cannot hold a sequence is refused
naming the keys, and the in-training eval reaches TRL's GRPOConfig."""
import copy
import re
from pathlib import Path

import pytest
import yaml

from mixmerge.check_config import check
from mixmerge.config import ConfigError
from mixmerge.training.batch_plan import check_sft_budget, rollout_plan
from mixmerge.training.trainer_args import eval_benchmarks, grpo_args, with_prompt_limit

REPO = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((REPO / "config/paper.yaml").read_text())


def plan_numbers(line: str) -> tuple[int, int, int, int]:
    """(per device, accumulation, tokens per micro-batch, budget) from a check-config plan line."""
    found = re.search(r"(\d+) per device per micro-batch x (\d+) accumulation.*micro-batch ([\d,]+) <= ([\d,]+) "
                      r"tokens per device", line)
    return tuple(int(g.replace(",", "")) for g in found.groups())


def test_paper_grid_as_shipped_fits_its_token_budgets():
    lines = check(copy.deepcopy(PAPER), check_paths=False)
    grpo = next(line for line in lines if line.startswith("grpo: GRPOConfig ok"))
    opd = next(line for line in lines if line.startswith("opd: DistillationConfig ok"))
    assert plan_numbers(grpo) == (1, 256, 2048 + 32768, 35200)   # 8 x 1 x 256 = 2048 completions per step
    assert plan_numbers(opd) == (1, 256, 2048 + 16384, 18432)    # 4 training GPUs (4 serve teachers) x 1 x 256 = 1024
    assert "sleep mode on" in grpo and "sleep mode on" in opd
    assert any(line.startswith("grpo eval: every 20 steps") for line in lines)


def test_sft_plan_fits_18432_tokens_per_device():
    plan = check_sft_budget(PAPER["sft"])
    assert plan["tokens_per_micro_batch"] == 16384 <= plan["max_tokens_per_device"] == 18432
    assert plan["per_device_train_batch_size"] * plan["gradient_accumulation_steps"] * PAPER["gpus"]["sft"] == 512


@pytest.mark.parametrize("edit,keys", [
    (lambda c: c["grpo"].update(max_tokens_per_device=18432),
     ["grpo.max_tokens_per_device", "data.rl_blend.max_prompt_tokens", "grpo.trl.max_completion_length", "34816"]),
    (lambda c: c["opd"].update(max_tokens_per_device=18431), ["opd.max_tokens_per_device", "18432"]),
    (lambda c: (c["sft"].update(enabled=True), c["sft"]["trl"].update(per_device_train_batch_size=4)),
     ["sft.trl.per_device_train_batch_size", "sft.trl.max_length", "sft.max_tokens_per_device", "65536"]),
    (lambda c: c["grpo"]["eval"].update(benchmarks=["aime42"]), ["grpo.eval.benchmarks[0]"]),
])
def test_a_plan_over_budget_is_refused_naming_the_keys(edit, keys):
    config = copy.deepcopy(PAPER)
    edit(config)
    with pytest.raises(ConfigError) as err:
        check(config, check_paths=False)
    for key in keys:
        assert key in str(err.value)


def test_micro_batch_is_the_largest_that_divides_the_share_and_fits():
    cfg = {"prompts_per_step": 128, "max_tokens_per_device": 3 * 1000, "trl": {"max_completion_length": 900}}
    plan = rollout_plan(cfg, world=8, generations=16, kind="grpo", prompt_limit=100)
    # 3 sequences of 1000 tokens fit, but 3 does not divide the 256 completions per process: 2
    assert (plan["per_device_train_batch_size"], plan["gradient_accumulation_steps"]) == (2, 128)
    assert plan["tokens_per_micro_batch"] == 2000
    unbounded = rollout_plan({**cfg, "max_tokens_per_device": None}, world=8, generations=16, kind="grpo")
    assert (unbounded["per_device_train_batch_size"], unbounded["gradient_accumulation_steps"]) == (256, 1)


def test_grpo_eval_reaches_trl_for_runs_with_validation_sets(tmp_path):
    grpo = with_prompt_limit(PAPER, "grpo")
    grpo["trl"] = {**grpo["trl"], "bf16": False}
    assert eval_benchmarks(grpo, PAPER["benchmarks"], ["code"]) == []      # the study evaluated no code set
    assert eval_benchmarks(grpo, PAPER["benchmarks"], PAPER["domains"]) == ["aime24", "gpqa_diamond", "ifbench"]
    args = grpo_args(grpo, steps=200, seed=0, checkpoint_dir=str(tmp_path), world=8, evaluate=True)
    assert (args.eval_strategy.value, args.eval_steps, args.num_generations_eval) == ("steps", 20, 4)
    assert args.per_device_eval_batch_size == 256   # a process's share of a rollout: generated as efficiently
    plain = grpo_args(grpo, steps=200, seed=0, checkpoint_dir=str(tmp_path), world=8)
    assert plain.eval_strategy.value == "no"
