"""GRPO (TRL GRPOTrainer): one expert per domain, or one mixed run on the blend with one reward function per
domain routed by the ``domain`` column (so TRL logs a reward curve per domain)."""
from __future__ import annotations

import json
import random
import time

from mixmerge.training.attempts import AttemptLog
from mixmerge.training.distributed import world_size
from mixmerge.data.rows import read_rows
from mixmerge.verifiers.scoring import check_ready, score_many
from mixmerge.training.save_resume import resume_point, save_final, set_threads, train
from mixmerge.training.trainer_args import grpo_args


def make_reward_fn(name: str, settings: dict):
    """A TRL reward function scoring only domain ``name``'s rows (None elsewhere, which TRL ignores)."""

    def reward(completions, domain, verifier, **kwargs):
        texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
        mine = [i for i, d in enumerate(domain) if d == name]
        ids = kwargs.get("id")
        scores = score_many([name] * len(mine), [texts[i] for i in mine],
                            [json.loads(verifier[i]) for i in mine], settings,
                            ids=[ids[i] for i in mine] if ids is not None else None)
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


def train_grpo(node: str, model_dir: str, train_files: dict[str, str], cfg: dict, reward: dict, steps: int,
               seed: int, threads: int, out_dir: str, checkpoint_dir: str, tensorboard_dir: str | None = None) -> None:
    """Train ``node``; TRL logs to TensorBoard in ``tensorboard_dir``, and every attempt (a resume too) is
    recorded in the checkpoint directory's attempts log, summed into the model card."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    check_ready(train_files, reward)  # no sandbox for code (say): stop before loading anything
    set_threads(threads)
    started = time.time()
    resume = resume_point(checkpoint_dir)
    attempts = AttemptLog(checkpoint_dir, node).start(resume)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="bfloat16" if cfg["trl"].get("bf16") else "float32")
    dataset = Dataset.from_list(rl_dataset_rows(train_files, seed))
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[make_reward_fn(d, reward) for d in sorted(train_files)],
        args=grpo_args(cfg, steps=steps, seed=seed, checkpoint_dir=checkpoint_dir, world=world_size(),
                       tensorboard_dir=tensorboard_dir),
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[attempts.callback()],
    )
    attempts.mark("load")
    train(trainer, resume, checkpoint_dir)
    attempts.mark("train")
    save_final(trainer, tokenizer, out_dir, {"node": node, "parents": [model_dir], "domains": sorted(train_files),
                                             "config": cfg, "reward": reward, "steps": steps, "seed": seed}, started,
               attempts)
