"""A real (tiny, CPU) GRPO run through ``mixmerge grpo``: TRL's ``report_to: tensorboard`` writes event files to the
node's log directory that the report reads back as per-domain reward curves, the run records its attempt in the
model card, and logging leaves the trained weights bit-identical."""
import json

import pytest
from safetensors.numpy import load_file

from mixmerge.cli import main as mixmerge
from mixmerge.report.curves import event_scalars, reward_rows

SPEC = {"architecture": "qwen2", "vocab_size": 400, "hidden_size": 64, "intermediate_size": 128, "num_layers": 2,
        "num_heads": 2, "num_kv_heads": 1, "max_positions": 256, "tokenizer_texts_per_domain": 200}
GRPO = {"prompts_per_step": 4, "trl": {"num_generations": 2, "max_completion_length": 8, "learning_rate": 1e-3,
                                       "logging_steps": 1, "save_steps": 2, "beta": 0.0, "loss_type": "dapo",
                                       "gradient_checkpointing": False, "bf16": False, "use_vllm": False,
                                       "disable_tqdm": True}}
REWARD = {"require_think": True, "math_timeout_s": 10}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    mixmerge(["data", "--domain", "math", "--train-n", "40", "--eval-n", "4", "--out", str(root / "math")])
    mixmerge(["base", "--spec", json.dumps(SPEC), "--domains", "math", "--out", str(root / "base")])
    return root


def grpo(root, name, *extra):
    mixmerge(["grpo", "--node", "rl-math", "--model", str(root / "base"), "--train",
              f"math={root / 'math' / 'train.parquet'}", "--settings", json.dumps(GRPO), "--reward",
              json.dumps(REWARD), "--steps", "3", "--threads", "1", "--out", str(root / name),
              "--checkpoints", str(root / f"ckpt-{name}"), *extra])
    return load_file(str(root / name / "model.safetensors"))


def test_tensorboard_curves_attempts_and_unchanged_numerics(base, monkeypatch):
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    plain = grpo(base, "plain")
    logged = grpo(base, "logged", "--tensorboard", str(base / "logs/tensorboard/rl-math"))
    assert plain.keys() == logged.keys()
    assert all((plain[k] == logged[k]).all() for k in plain), "TensorBoard logging changed the weights"

    events = list((base / "logs/tensorboard/rl-math").rglob("events.out.tfevents.*"))
    assert len(events) == 1 and not list((base / "ckpt-plain").rglob("events.out.tfevents.*"))
    curve = reward_rows(event_scalars(base / "logs/tensorboard/rl-math"))
    assert curve["step"].tolist() == [1, 2, 3] and set(curve["domain"]) == {"math"}
    history = json.loads((base / "logged" / "train_log.json").read_text())
    assert curve["reward"].tolist() == pytest.approx([e["rewards/math_reward/mean"] for e in history
                                                      if "rewards/math_reward/mean" in e])

    card = json.loads((base / "logged" / "mixmerge_card.json").read_text())["compute"]
    assert card["n_attempts"] == 1 and card["attempts"][0]["status"] == "finished"
    assert card["attempts"][0]["step"] == 3 and card["gpus"] == 0 and card["gpu_hours"] == 0
    assert 0 < card["load_seconds"] < card["wall_seconds"] and card["train_seconds"] > 0
    assert (base / "logged" / "attempts.jsonl").exists()
