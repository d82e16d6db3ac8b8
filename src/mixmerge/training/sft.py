"""SFT of the base (TRL SFTTrainer): the tiny warm-up on the domains' reference answers, stopped partly trained,
or the study's SFT blend of chats (``sources.sft_blend``) with the loss on assistant tokens only."""
from __future__ import annotations

import json
import random
import time

from mixmerge.data.rows import read_rows
from mixmerge.data.tiny import reference_messages
from mixmerge.training.attempts import AttemptLog
from mixmerge.training.save_resume import resume_point, save_final, set_threads, train
from mixmerge.training.trainer_args import sft_args


def sft_examples(train_files: dict[str, str], per_domain: int, flawed_fraction: float, seed: int) -> list[dict]:
    """Prompt-completion pairs, all in the rewarded format: ``flawed_fraction`` of them make the domain's typical
    slip (a dropped carry, an ignored constraint), so the SFT model is right only part of the time and RL has
    correctness, not format, to gain."""
    rng = random.Random(seed)
    examples = []
    for domain, path in sorted(train_files.items()):
        rows = read_rows(path)
        for row in rows[:per_domain]:
            if "solution" not in row:
                raise ValueError(f"{path}: row {row['id']!r} has no 'solution' for SFT")
            target = row["flawed_solution"] if rng.random() < flawed_fraction else row["solution"]
            examples.append({"prompt": row["prompt"], "completion": reference_messages(domain, target)})
    rng.shuffle(examples)
    return examples


def tokenized_chats(path: str, tokenizer, num_proc: int | None = None):
    """The SFT blend as ``input_ids`` + ``assistant_masks``, rendered by TRL's training chat template for this
    tokenizer (the Qwen3 one renders reasoning and tool calls). Tokenized here rather than by SFTTrainer because
    the chats' free-form tool schemas do not fit one Arrow schema; SFTTrainer turns the masks into labels."""
    from datasets import load_dataset
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    template = tokenizer.chat_template
    if not has_generation_markers(template):
        template = get_training_chat_template(tokenizer)
    ds = load_dataset("parquet", data_files=str(path), split="train")

    def tokenize(row: dict) -> dict:
        out = tokenizer.apply_chat_template(
            json.loads(row["messages"]), tools=json.loads(row["tools"]) if row["tools"] else None,
            chat_template=template, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        if 1 not in out["assistant_masks"]:
            raise ValueError(f"{path}: row {row['id']!r}: the chat template marks no assistant tokens")
        return {"input_ids": out["input_ids"], "assistant_masks": out["assistant_masks"]}

    return ds.map(tokenize, remove_columns=ds.column_names, num_proc=num_proc, desc="tokenizing the SFT blend")


def train_sft(base: str, cfg: dict, seed: int, threads: int, out_dir: str, checkpoint_dir: str, *,
              train_files: dict[str, str] | None = None, chats: str | None = None,
              tensorboard_dir: str | None = None) -> None:
    """Train on the tiny domains' ``train_files`` or on the prepared SFT blend ``chats`` (one of the two); TRL
    logs to TensorBoard in ``tensorboard_dir``; every attempt is recorded (``mixmerge.training.attempts``)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    set_threads(threads)
    started = time.time()
    resume = resume_point(checkpoint_dir)
    attempts = AttemptLog(checkpoint_dir, "sft").start(resume)
    tokenizer = AutoTokenizer.from_pretrained(base)
    if chats:
        dataset = tokenized_chats(chats, tokenizer, cfg.get("num_proc"))
    else:
        dataset = Dataset.from_list(sft_examples(train_files, cfg["examples_per_domain"], cfg["flawed_fraction"],
                                                 seed))
    model = AutoModelForCausalLM.from_pretrained(base, dtype="float32")
    args = sft_args(cfg, seed=seed, checkpoint_dir=checkpoint_dir, chats=bool(chats), use_cpu=not _has_cuda(),
                    tensorboard_dir=tensorboard_dir)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[attempts.callback()])
    attempts.mark("load")
    train(trainer, resume, checkpoint_dir)
    attempts.mark("train")
    save_final(trainer, tokenizer, out_dir, {"node": "sft", "parents": [base], "config": cfg, "seed": seed,
                                             "examples": len(dataset), "data": chats or train_files}, started,
               attempts)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
