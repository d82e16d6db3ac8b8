"""GRPO through ``train_grpo`` (the path the tiny profile runs) with a Qwen3-style tokenizer: the reward sees the
reasoning and ``</think>`` exactly as the model emitted them, even though the tokenizer's response template makes
TRL parse the reasoning into its own field; and the optional in-training eval logs per-domain rewards to the
node's TensorBoard directory. Generation is scripted (the decoding and parsing after it are TRL's own), so the
tiny random model "emits" a known completion."""
import json
from pathlib import Path

import pytest

import mixmerge.training.grpo as grpo_module
from mixmerge.data.rows import write_rows
from mixmerge.domains import get_domain
from mixmerge.report.curves import event_scalars
from mixmerge.training.base_model import build_tiny_model, train_tokenizer

TEMPLATE = Path(__file__).parent / "fixtures" / "qwen3_think_chat_template.jinja"
# Qwen3-style response parsing (transformers' response_template format): the think block -> reasoning_content
RESPONSE_TEMPLATE = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "reasoning_content": {"open": "<think>", "close_pattern": r"</think>\s*", "content": "text"},
        "content": {"close_pattern": r"<\|im_end\|>\s*", "content": "text"},
    },
}
SPEC = {"architecture": "qwen3", "hidden_size": 32, "intermediate_size": 64, "num_layers": 1, "num_heads": 2,
        "num_kv_heads": 1, "max_positions": 256}
GRPO = {"prompts_per_step": 2, "trl": {"num_generations": 2, "max_completion_length": 48, "learning_rate": 1e-4,
                                       "logging_steps": 1, "save_steps": 10, "beta": 0.0, "loss_type": "grpo",
                                       "gradient_checkpointing": False, "bf16": False, "use_vllm": False,
                                       "disable_tqdm": True}}
REWARD = {"require_think": True, "math_timeout_s": 10}


def emitted(row) -> str:
    """What the scripted model writes for a math row: the reference solution, think block included."""
    return row["solution"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("qwen3-think")
    math = get_domain("math")
    train, held_out = math.generate(8, 0, "train"), math.generate(2, 0, "eval")
    write_rows(train, root / "train.parquet")
    write_rows(held_out, root / "eval.parquet")
    texts = [r["prompt"][0]["content"] + " " + r["solution"] for r in train + held_out]
    tokenizer = train_tokenizer(texts, 400, root / "model")
    tokenizer.chat_template = TEMPLATE.read_text()
    tokenizer.response_template = RESPONSE_TEMPLATE
    tokenizer.save_pretrained(str(root / "model"))
    build_tiny_model(tokenizer, SPEC, seed=0).save_pretrained(str(root / "model"))
    return root, {r["prompt"][0]["content"]: r for r in train + held_out}


def test_fixture_template_handles_think_blocks_as_qwen3(setup):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(setup[0] / "model"))
    assert tokenizer.response_template == RESPONSE_TEMPLATE  # saved with the model: TRL will parse responses
    chat = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "<think>\nr1\n</think>\n\na1"},
            {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2", "reasoning_content": "r2"}]
    text = tokenizer.apply_chat_template(chat, tokenize=False)
    assert "r1" not in text and "<|im_start|>assistant\na1<|im_end|>" in text   # an earlier turn loses its reasoning
    assert "<|im_start|>assistant\n<think>\nr2\n</think>\n\na2<|im_end|>" in text
    prompt = tokenizer.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def scripted_generation(tokenizer, rows_by_prompt, monkeypatch):
    """Every completion is its row's solution + end of turn; TRL still decodes and parses it."""
    from trl import GRPOTrainer

    def generate(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        out = []
        for ids in prompt_ids:
            question = tokenizer.decode(ids).split("<|im_start|>user\n")[-1].split("<|im_end|>")[0]
            out.append(tokenizer.encode(emitted(rows_by_prompt[question])) + [tokenizer.eos_token_id])
        return out, None

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", generate)


def recording_scorer(monkeypatch) -> list[str]:
    seen: list[str] = []
    real = grpo_module.score_many

    def score_many(domains, texts, *args, **kwargs):
        seen.extend(texts)
        return real(domains, texts, *args, **kwargs)

    monkeypatch.setattr(grpo_module, "score_many", score_many)
    return seen


def run(root, name, steps, cfg, **extra):
    grpo_module.train_grpo(f"rl-math-{name}", str(root / "model"), {"math": str(root / "train.parquet")}, cfg, REWARD,
                           steps, 0, 1, str(root / name), str(root / f"ckpt-{name}"), **extra)
    return json.loads((root / name / "train_log.json").read_text())


def test_reward_receives_reasoning_and_think_close_as_emitted(setup, monkeypatch):
    from transformers import AutoTokenizer
    from trl.chat_template_utils import parse_response

    root, rows = setup
    tokenizer = AutoTokenizer.from_pretrained(str(root / "model"))
    row = next(iter(rows.values()))
    prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    parsed = parse_response(tokenizer, tokenizer.encode(row["solution"]) + [tokenizer.eos_token_id],
                            prefix=tokenizer.encode(prompt))
    assert "</think>" not in parsed["content"] and parsed["reasoning_content"]  # what TRL hands a reward function
    with pytest.raises(ValueError, match="reasoning_content"):
        grpo_module.completion_texts([[parsed]], None, None)  # content alone would fail the gate: refused

    scripted_generation(tokenizer, rows, monkeypatch)
    seen = recording_scorer(monkeypatch)
    history = run(root, "think", 1, GRPO)
    assert len(seen) == 4 and all(text in {emitted(r) for r in rows.values()} for text in seen)
    assert all("<think>" in text and "</think>" in text for text in seen)
    rewards = [e["rewards/math_reward/mean"] for e in history if "rewards/math_reward/mean" in e]
    assert rewards == [1.0]   # every reference solution passes the </think> gate and the boxed answer


def test_in_training_eval_logs_per_domain_rewards(setup, monkeypatch):
    from transformers import AutoTokenizer

    root, rows = setup
    scripted_generation(AutoTokenizer.from_pretrained(str(root / "model")), rows, monkeypatch)
    seen = recording_scorer(monkeypatch)
    # an eval batch of 4 prompts x 2 (a rollout's size) over 2 validation prompts: one partial batch, as when
    # AIME's 30 prompts meet the paper plan's 2,048-completion eval batch
    cfg = {**GRPO, "prompts_per_step": 4, "eval": {"every_steps": 1, "num_generations": 2, "benchmarks": ["math_eval"]}}
    history = run(root, "eval", 2, cfg, tensorboard_dir=str(root / "tb"),
                  eval_files={"math_eval": str(root / "eval.parquet")})
    evals = [e for e in history if "eval_rewards/math_reward/mean" in e]
    assert [e["step"] for e in evals] == [1, 2] and all(e["eval_rewards/math_reward/mean"] == 1.0 for e in evals)
    assert len(seen) == 2 * 8 + 2 * 2 * 2   # 2 steps x 8 completions + 2 evals x 2 prompts x 2 samples
    scalars = event_scalars(root / "tb")
    curve = scalars[scalars["tag"] == "eval/rewards/math_reward/mean"]
    assert curve["step"].tolist() == [1, 2] and curve["value"].tolist() == [1.0, 1.0]
    assert not (scalars["tag"] == "eval/loss").any()   # eval generates and scores; no loss pass
