"""Device check for GRPO under the token budget: one GRPO step and one in-training eval through
``mixmerge.training.grpo.train_grpo`` with a Qwen3-4B-layout model (its hidden size, heads, MLP and vocabulary;
random weights, ``--layers`` layers, built here: nothing is downloaded), printing the micro-batch plan, the
times and the peak GPU memory.

The default shape mirrors config/paper.yaml's GRPO micro-batch: prompt limit 256 + completion 4,096 = 4,352
tokens per sequence, and ``--max-tokens-per-device 35200`` gives 8 completions per micro-batch = 34,816 tokens,
the paper plan's one 34,816-token sequence. Run it at two layer counts (say 2 and 6) to read the memory per
layer and extrapolate to Qwen3-4B's 36.

    PYTHONPATH=src python benchmarks/gpu_check_grpo.py [--layers 4] [--vllm] [--dry-run]

``--dry-run`` builds the model, the data and the GRPOConfig on the CPU and prints the plan without training
(what a machine without a GPU can check). Without a GPU and without ``--dry-run`` it stops with exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

QWEN3_4B = {"hidden_size": 2560, "intermediate_size": 9728, "num_attention_heads": 32, "num_key_value_heads": 8,
            "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 40960, "rope_theta": 1000000.0,
            "tie_word_embeddings": True, "rms_norm_eps": 1e-6}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=4, help="decoder layers (Qwen3-4B has 36)")
    p.add_argument("--completion-length", type=int, default=4096)
    p.add_argument("--prompt-limit", type=int, default=256, help="the plan's prompt limit (the prompts are shorter)")
    p.add_argument("--max-tokens-per-device", type=int, default=35200)
    p.add_argument("--prompts", type=int, default=4, help="prompts per step")
    p.add_argument("--generations", type=int, default=8, help="samples per prompt (training and eval)")
    p.add_argument("--vllm", action="store_true", help="generate with vLLM colocate (0.7 of memory, sleep mode)")
    p.add_argument("--dry-run", action="store_true", help="build everything on the CPU, print the plan, no step")
    return p.parse_args(argv)


def settings(a: argparse.Namespace) -> dict:
    """A grpo block as the workflow hands it to train_grpo (paper.yaml's recipe at this shape)."""
    trl = {"loss_type": "grpo", "epsilon": 0.2, "epsilon_high": 0.28, "beta": 0.0, "num_generations": a.generations,
           "max_completion_length": a.completion_length, "temperature": 1.0, "top_p": 1.0, "top_k": 0,
           "learning_rate": 2e-6, "lr_scheduler_type": "constant", "weight_decay": 0.1, "adam_beta2": 0.98,
           "max_grad_norm": 1.0, "scale_rewards": "group", "gradient_checkpointing": True, "bf16": not a.dry_run,
           "logging_steps": 1, "save_steps": 1000, "disable_tqdm": True, "use_vllm": a.vllm,
           "vllm_importance_sampling_correction": a.vllm}
    if a.vllm:
        trl.update(vllm_mode="colocate", vllm_gpu_memory_utilization=0.7, vllm_enable_sleep_mode=True,
                   vllm_max_model_length=a.prompt_limit + a.completion_length)
    return {"prompts_per_step": a.prompts, "max_tokens_per_device": a.max_tokens_per_device,
            "prompt_limit": a.prompt_limit, "trl": trl,
            "eval": {"every_steps": 1, "num_generations": a.generations, "benchmarks": ["math_eval"]}}


def build(root: Path, a: argparse.Namespace) -> dict[str, str]:
    """Math rows (train and eval) and the Qwen3-layout model with a small tokenizer; returns the row files."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from mixmerge.data.rows import write_rows
    from mixmerge.domains import get_domain
    from mixmerge.training.base_model import train_tokenizer

    math = get_domain("math")
    train, held_out = math.generate(4 * a.prompts, 0, "train"), math.generate(a.prompts, 0, "eval")
    write_rows(train, root / "train.parquet")
    write_rows(held_out, root / "eval.parquet")
    tokenizer = train_tokenizer([r["prompt"][0]["content"] + " " + r["solution"] for r in train], 400, root / "model")
    config = Qwen3Config(**QWEN3_4B, num_hidden_layers=a.layers, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(str(root / "model"))
    params = sum(t.numel() for t in model.parameters())
    print(f"model: {params / 1e9:.3f} B parameters; one process, no ZeRO sharding: weights, gradients and AdamW "
          f"states (all bf16, 8 bytes per parameter) take about {8 * params / 2 ** 30:.1f} GiB of the peak")
    longest_prompt = max(len(tokenizer.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True))
                         for r in train + held_out)  # characters: an upper bound on tokens
    if longest_prompt > a.prompt_limit:
        raise SystemExit(f"prompts reach {longest_prompt} characters, over --prompt-limit {a.prompt_limit}")
    return {"train": str(root / "train.parquet"), "eval": str(root / "eval.parquet")}


def plan_line(cfg: dict) -> str:
    from mixmerge.training.trainer_args import grpo_batch_plan

    plan = grpo_batch_plan(cfg, world=1)
    return (f"plan: {plan['completions_per_step']} completions per step: {plan['per_device_train_batch_size']} per "
            f"micro-batch x {plan['gradient_accumulation_steps']} accumulation; longest sequence "
            f"{plan['longest_sequence']:,} tokens, micro-batch {plan['tokens_per_micro_batch']:,} <= "
            f"{plan['max_tokens_per_device']:,} tokens per device")


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    import torch

    if not a.dry_run and not torch.cuda.is_available():
        print("gpu_check_grpo: no CUDA device here; run it on a GPU machine (or --dry-run to check the plan)",
              file=sys.stderr)
        return 2
    cfg = settings(a)
    print(plan_line(cfg))
    with tempfile.TemporaryDirectory(prefix="gpu-check-grpo-") as tmp:
        root = Path(tmp)
        started = time.time()
        files = build(root, a)
        print(f"built Qwen3 layout, {a.layers} layers, in {time.time() - started:.1f} s")
        if a.dry_run:
            from mixmerge.training.trainer_args import grpo_args

            args = grpo_args(cfg, steps=1, seed=0, checkpoint_dir=str(root / "ckpt"), world=1, evaluate=True)
            print(f"dry run: GRPOConfig ok (per device {args.per_device_train_batch_size}, accumulation "
                  f"{args.gradient_accumulation_steps}, eval batch {args.per_device_eval_batch_size}); no step taken")
            return 0
        return train_and_measure(root, files, cfg)


def train_and_measure(root: Path, files: dict[str, str], cfg: dict) -> int:
    import torch

    from mixmerge.training.grpo import train_grpo

    torch.cuda.reset_peak_memory_stats()
    started = time.time()
    train_grpo("rl-math-gpu-check", str(root / "model"), {"math": files["train"]}, cfg,
               {"require_think": True, "math_timeout_s": 10}, 1, 0, 8, str(root / "out"), str(root / "ckpt"),
               eval_files={"math_eval": files["eval"]})
    wall = time.time() - started
    history = json.loads((root / "out" / "train_log.json").read_text())
    evals = [e for e in history if "eval_rewards/math_reward/mean" in e]
    gib = 2 ** 30
    print(f"one GRPO step + {len(evals)} eval(s) in {wall:.1f} s on {torch.cuda.get_device_name()}")
    print(f"peak GPU memory (this process): allocated {torch.cuda.max_memory_allocated() / gib:.2f} GiB, reserved "
          f"{torch.cuda.max_memory_reserved() / gib:.2f} GiB of {torch.cuda.get_device_properties(0).total_memory / gib:.1f}"
          " GiB")
    for entry in history:
        keys = ("step", "loss", "rewards/math_reward/mean", "eval_rewards/math_reward/mean", "completions/mean_length")
        print("  " + ", ".join(f"{k}={entry[k]}" for k in keys if k in entry))
    return 0 if evals else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    sys.exit(main())
