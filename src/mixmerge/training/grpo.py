"""GRPO (TRL GRPOTrainer): one expert per domain, or one mixed run on the blend with one reward function per
domain routed by the ``domain`` column (so TRL logs a reward curve per domain)."""
from __future__ import annotations

import json
import random
import time

from mixmerge.training.distributed import world_size
from mixmerge.data.rows import read_rows
from mixmerge.verifiers.scoring import score_many
from mixmerge.training.save_resume import resume_point, save_final, set_threads


def make_reward_fn(name: str, settings: dict):
    """A TRL reward function scoring only domain ``name``'s rows (None elsewhere, which TRL ignores)."""

    def reward(completions, domain, verifier, **kwargs):
        texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
        mine = [i for i, d in enumerate(domain) if d == name]
        scores = score_many([name] * len(mine), [texts[i] for i in mine],
                            [json.loads(verifier[i]) for i in mine], settings)
        out: list[float | None] = [None] * len(texts)
        for i, s in zip(mine, scores):
            out[i] = s
        return out

    reward.__name__ = f"{name}_reward"
    return reward


def rl_dataset_rows(train_files: dict[str, str], seed: int) -> list[dict]:
    """The natural union of the domains' training rows, shuffled (the study's mixture: no re-weighting)."""
    rows = []
    for domain, path in sorted(train_files.items()):
        for row in read_rows(path):
            rows.append({"prompt": row["prompt"], "domain": row["domain"], "verifier": json.dumps(row["verifier"]),
                         "id": row["id"]})
    random.Random(seed).shuffle(rows)
    return rows


VLLM_COLOCATE_KEYS = ("vllm_gpu_memory_utilization", "vllm_tensor_parallel_size", "vllm_max_model_length",
                      "vllm_enable_sleep_mode")
VLLM_SERVER_KEYS = ("vllm_server_base_url", "vllm_server_host", "vllm_server_port", "vllm_server_timeout")


def vllm_grpo_kwargs(cfg: dict, world: int) -> dict:
    """GRPOConfig's vLLM fields from the ``grpo`` config block: rollouts in vLLM colocated with training (each
    process holds an engine on its own GPU) or on a separate ``vllm serve`` / ``trl vllm-serve`` server."""
    if not cfg.get("use_vllm"):
        return {}
    mode = cfg.get("vllm_mode", "colocate")
    out = {"use_vllm": True, "vllm_mode": mode,
           "vllm_importance_sampling_correction": cfg.get("importance_sampling_correction", False)}
    if out["vllm_importance_sampling_correction"]:
        out["vllm_importance_sampling_mode"] = cfg.get("importance_sampling_mode", "token_truncate")
        out["vllm_importance_sampling_clip_max"] = cfg.get("importance_sampling_cap", 2.0)
    keys = VLLM_COLOCATE_KEYS if mode == "colocate" else VLLM_SERVER_KEYS
    out.update({key: cfg[key] for key in keys if cfg.get(key) is not None})
    if mode == "colocate":
        out.setdefault("vllm_gpu_memory_utilization", 0.3)
        tp = out.get("vllm_tensor_parallel_size", 1)
        if world % tp:
            raise ValueError(f"config key 'grpo.vllm_tensor_parallel_size': {tp} does not divide the {world} "
                             "training processes")
    return out


def grpo_config(cfg: dict, steps: int, checkpoint_dir: str, seed: int):
    from trl import GRPOConfig

    completions_per_step = cfg["prompts_per_step"] * cfg["num_generations"]
    world = world_size()  # processes started by accelerate launch (1 for a plain process)
    per_device = cfg.get("per_device_prompts", cfg["prompts_per_step"]) * cfg["num_generations"] // world
    if per_device == 0 or completions_per_step % (per_device * world):
        raise ValueError(f"config key 'grpo.prompts_per_step': {completions_per_step} completions per step do not "
                         f"split evenly over {world} processes")
    accumulation = max(completions_per_step // (per_device * world), 1)
    extra = vllm_grpo_kwargs(cfg, world)
    return GRPOConfig(
        output_dir=checkpoint_dir,
        max_steps=steps,
        loss_type=cfg["loss_type"],
        epsilon=cfg["epsilon"],
        epsilon_high=cfg["epsilon_high"],
        beta=cfg["beta"],
        num_generations=cfg["num_generations"],
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        num_iterations=cfg.get("num_iterations", 1),
        max_completion_length=cfg["max_completion_length"],
        temperature=cfg["temperature"],
        top_p=cfg.get("top_p", 1.0),
        top_k=cfg.get("top_k", 0),
        learning_rate=cfg["learning_rate"],
        lr_scheduler_type=cfg["lr_scheduler_type"],
        warmup_steps=cfg.get("warmup_steps", 0),
        weight_decay=cfg.get("weight_decay", 0.0),
        adam_beta1=cfg.get("adam_beta1", 0.9),
        adam_beta2=cfg.get("adam_beta2", 0.999),
        max_grad_norm=cfg.get("max_grad_norm", 1.0),
        scale_rewards=cfg.get("scale_rewards", "group"),
        mask_truncated_completions=cfg.get("mask_truncated_completions", False),
        gradient_checkpointing=cfg.get("gradient_checkpointing", False),
        bf16=cfg.get("bf16", False),
        save_steps=cfg["save_steps"],
        logging_steps=cfg.get("logging_steps", 5),
        seed=seed,
        data_seed=seed,
        report_to="none",
        remove_unused_columns=False,
        **extra,
    )


def train_grpo(node: str, model_dir: str, train_files: dict[str, str], cfg: dict, reward: dict, steps: int,
               seed: int, threads: int, out_dir: str, checkpoint_dir: str) -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    set_threads(threads)
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="bfloat16" if cfg.get("bf16") else "float32")
    dataset = Dataset.from_list(rl_dataset_rows(train_files, seed))
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[make_reward_fn(d, reward) for d in sorted(train_files)],
        args=grpo_config(cfg, steps, checkpoint_dir, seed),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train(resume_from_checkpoint=resume_point(checkpoint_dir))
    save_final(trainer, tokenizer, out_dir, {"node": node, "parents": [model_dir], "domains": sorted(train_files),
                                             "config": cfg, "reward": reward, "steps": steps, "seed": seed}, started)
