import json
import math

from mixmerge.domains import get_domain
from mixmerge.training.grpo import make_reward_fn, rl_dataset_rows
from mixmerge.training.trainer_args import grpo_args
from mixmerge.data.rows import write_rows


def test_reward_functions_route_by_domain_column():
    rows = get_domain("science").generate(2, 0, "eval") + get_domain("math").generate(2, 0, "eval")
    completions = [[{"role": "assistant", "content": r["solution"]}] for r in rows]
    kwargs = {"domain": [r["domain"] for r in rows], "verifier": [json.dumps(r["verifier"]) for r in rows]}
    science = make_reward_fn("science", {})
    maths = make_reward_fn("math", {})
    assert science.__name__ == "science_reward"
    assert science(completions, **kwargs) == [1.0, 1.0, None, None]
    assert maths(completions, **kwargs) == [None, None, 1.0, 1.0]
    wrong = [[{"role": "assistant", "content": "<think>x</think>\\boxed{-1}"}]] * len(rows)
    assert maths(wrong, **kwargs) == [None, None, 0.0, 0.0]


def test_mixed_dataset_is_the_natural_union(tmp_path):
    files = {}
    for name, n in [("math", 5), ("code", 3)]:
        write_rows(get_domain(name).generate(n, 0, "train"), tmp_path / f"{name}.parquet")
        files[name] = str(tmp_path / f"{name}.parquet")
    rows = rl_dataset_rows(files, seed=0)
    assert sorted(r["domain"] for r in rows) == ["code"] * 3 + ["math"] * 5
    assert rows == rl_dataset_rows(files, seed=0)
    assert all(isinstance(json.loads(r["verifier"]), dict) for r in rows)


def test_grpo_config_writes_every_study_setting(tmp_path):
    cfg = {"prompts_per_step": 3, "trl": {
        "loss_type": "grpo", "epsilon": 0.2, "epsilon_high": 0.28, "beta": 0.0, "num_generations": 4,
        "max_completion_length": 32, "temperature": 1.0, "top_p": 1.0, "learning_rate": 2e-6,
        "lr_scheduler_type": "constant", "weight_decay": 0.1, "adam_beta2": 0.98, "save_steps": 20, "bf16": False}}
    args = grpo_args(cfg, steps=7, checkpoint_dir=str(tmp_path), seed=3, world=1)
    assert (args.loss_type, args.epsilon, args.epsilon_high, args.beta) == ("grpo", 0.2, 0.28, 0.0)
    assert args.num_generations == 4 and args.max_steps == 7 and args.learning_rate == 2e-6
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 12  # one update per rollout
    assert args.lr_scheduler_type.value == "constant" and math.isclose(args.adam_beta2, 0.98)
