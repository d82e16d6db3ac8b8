"""A mixed GRPO run over math and agent rows through ``train_grpo``: agent rows go through TRL's own tool loop
(``environment_factory``) and are scored by the environment's ``get_reward``; math rows stay single-turn, see no
tools and are scored by the math reward. Generation is scripted per conversation (TRL's parsing, tool execution
and re-generation after each tool answer are its own), so the tiny random model "emits" known turns."""
import json

import pytest

import mixmerge.training.grpo as grpo_module
from mixmerge.data.rows import write_rows
from mixmerge.data.tiny import reference_messages, tokenizer_texts
from mixmerge.domains import get_domain
from mixmerge.training.base_model import build_tiny_model, train_tokenizer

SPEC = {"architecture": "qwen2", "hidden_size": 32, "intermediate_size": 64, "num_layers": 1, "num_heads": 2,
        "num_kv_heads": 1, "max_positions": 512}
GRPO = {"prompts_per_step": 6, "trl": {"num_generations": 2, "max_completion_length": 120, "learning_rate": 1e-4,
                                       "logging_steps": 1, "save_steps": 10, "beta": 0.0, "loss_type": "grpo",
                                       "gradient_checkpointing": False, "bf16": False, "use_vllm": False,
                                       "disable_tqdm": True}}
REWARD = {"require_think": True, "math_timeout_s": 10, "agent_max_turns": 6}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("agent-grpo")
    files = {}
    for domain in ("math", "agent"):
        rows = get_domain(domain).generate(3, 0, "train")
        write_rows(rows, root / f"{domain}.parquet")
        files[domain] = str(root / f"{domain}.parquet")
    tokenizer = train_tokenizer(tokenizer_texts(["math", "agent"], 50, 0), 400, root / "model")
    build_tiny_model(tokenizer, SPEC, seed=0).save_pretrained(str(root / "model"))
    rows = [r for d in ("math", "agent") for r in get_domain(d).generate(3, 0, "train")]
    return root, files, {r["prompt"][-1]["content"]: r for r in rows}


def scripted(tokenizer, rows_by_question, monkeypatch, script):
    """Generation by script: ``script(row, assistant turns so far)`` -> the next turn's text."""
    from trl import GRPOTrainer

    seen = []

    def generate(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        out = []
        for ids in prompt_ids:
            text = tokenizer.decode(ids)
            seen.append(text)
            question = text.split("<|im_start|>user\n")[1].split("<|im_end|>")[0]
            turns = text.count("<|im_start|>assistant\n") - 1
            out.append(tokenizer.encode(script(rows_by_question[question], turns)) + [tokenizer.eos_token_id])
        return out, None

    monkeypatch.setattr(GRPOTrainer, "_generate_single_turn", generate)
    return seen


def reference_turns(row) -> list[str]:
    messages = reference_messages(row["domain"], row["solution"])
    return [m["content"] for m in messages if m["role"] == "assistant"]


def run(root, files, name, cfg=GRPO):
    grpo_module.train_grpo(f"rl-{name}", str(root / "model"), files, cfg, REWARD, 1, 0, 1, str(root / name),
                           str(root / f"ckpt-{name}"))
    return json.loads((root / name / "train_log.json").read_text())


def test_agent_rows_run_trl_tool_loop_and_math_rows_stay_single_turn(setup, monkeypatch):
    from transformers import AutoTokenizer

    root, files, rows = setup
    tokenizer = AutoTokenizer.from_pretrained(str(root / "model"))

    def script(row, turns):
        return row["solution"] if row["domain"] == "math" else reference_turns(row)[turns]

    seen = scripted(tokenizer, rows, monkeypatch, script)
    history = run(root, files, "mixed")
    step = next(e for e in history if "rewards/TaskBoard/mean" in e)
    assert step["rewards/TaskBoard/mean"] == 1.0 and step["rewards/math_reward/mean"] == 1.0
    assert step["tools/call_frequency"] > 0 and step["tools/failure_frequency"] == 0.0
    after_tool = [t for t in seen if "<|im_start|>tool\nok<|im_end|>" in t]
    assert after_tool and all("Tools: add_task" in t for t in after_tool)   # a second turn after each tool answer
    math_prompts = [t for t in seen if "\\boxed" in t]
    assert math_prompts and not any("<tool_call>" in t or "Tools:" in t for t in math_prompts)


def test_wrong_calls_and_endless_calls_score_zero_in_training(setup, monkeypatch):
    from transformers import AutoTokenizer

    root, files, rows = setup
    tokenizer = AutoTokenizer.from_pretrained(str(root / "model"))

    def script(row, turns):
        if row["domain"] == "math":
            return row["solution"]
        return '<tool_call>{"name": "finish_task", "arguments": {"title": "Nothing"}}</tool_call>'   # never stops

    seen = scripted(tokenizer, rows, monkeypatch, script)
    history = run(root, {"agent": files["agent"]}, "looping", {**GRPO, "prompts_per_step": 3})
    step = next(e for e in history if "rewards/TaskBoard/mean" in e)
    assert step["rewards/TaskBoard/mean"] == 0.0 and step["tools/failure_frequency"] == 1.0
    # the tool rounds stop at reward.agent_max_turns: 1 first turn + 6 after tool answers per rollout
    assert max(t.count("<|im_start|>tool\n") for t in seen) <= 6
