"""GRPO (TRL GRPOTrainer): one expert per domain, or one mixed run on the blend with one reward function per
domain routed by the ``domain`` column (so TRL logs a reward curve per domain)."""
from __future__ import annotations

import json
import random
import time
from functools import partial

from mixmerge.domains import get_domain
from mixmerge.training import base_model
from mixmerge.training.attempts import AttemptLog
from mixmerge.training.distributed import world_size
from mixmerge.data.rows import read_rows
from mixmerge.verifiers.scoring import check_ready, score_many
from mixmerge.training.save_resume import resume_point, save_final, set_threads, train
from mixmerge.training.trainer_args import grpo_args


def completion_texts(completions, completion_ids, decode) -> list[str]:
    """The completions as the model wrote them. With a tokenizer that has a response template (Qwen3's parses
    ``<think>...</think>`` into ``reasoning_content``), TRL hands over parsed messages whose ``content`` lacks
    the reasoning and ``</think>``, so the text is decoded from the completion's token ids instead (as TRL
    decodes when it does not parse: special tokens such as the end-of-turn dropped)."""
    if decode is not None and completion_ids is not None:
        return [decode(ids) for ids in completion_ids]
    texts = []
    for c in completions:
        if isinstance(c, list):
            if set(c[0]) - {"role", "content"}:
                raise ValueError(f"a parsed completion with fields {sorted(c[0])}: its content alone is not what "
                                 "the model wrote; give the reward function the tokenizer's decode")
            c = c[0]["content"]
        texts.append(c)
    return texts


def make_reward_fn(name: str, settings: dict, decode=None):
    """A TRL reward function scoring only domain ``name``'s rows (None elsewhere, which TRL ignores);
    ``decode``: token ids -> text (mixmerge.training.grpo.completion_texts)."""

    def reward(completions, domain, verifier, completion_ids=None, **kwargs):
        texts = completion_texts(completions, completion_ids, decode)
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


def rl_dataset_rows(files: dict[str, str], seed: int, tools: bool | None = None) -> list[dict]:
    """The natural union of the rows of ``files`` (domain or benchmark -> rows), shuffled (the study's mixture: no
    re-weighting). In a run with tool environments (``tools``; default: a multi-turn domain among the rows), each
    row names its TRL environment: its domain's, or ``NO_TOOLS`` for a single-turn row."""
    rows = [row for _, path in sorted(files.items()) for row in read_rows(path)]
    tool_domains = set(environment_domains({row["domain"] for row in rows}))
    if tools is None:
        tools = bool(tool_domains)
    out = []
    for row in rows:
        env = {"environment": row["domain"] if row["domain"] in tool_domains else NO_TOOLS} if tools else {}
        out.append({"prompt": row["prompt"], "domain": row["domain"], "verifier": json.dumps(row["verifier"]),
                    "id": row["id"], **env})
    random.Random(seed).shuffle(out)
    return out


NO_TOOLS = "single_turn"


class SingleTurn:
    """The environment of a single-turn row in a run with tool environments: no tools, no reward of its own."""

    def reset(self, **row) -> None:
        return None


def environment_domains(domains) -> list[str]:
    """The multi-turn domains (those with a tool environment) among ``domains``."""
    return [d for d in sorted(domains) if get_domain(d).environment is not None]


def tool_setup(train_files: dict[str, str], reward: dict, tokenizer) -> dict:
    """GRPOTrainer arguments for the run's multi-turn domains: ``environment_factory`` (one per domain, plus
    ``SingleTurn`` for the other rows); TRL's tool loop then runs their episodes, and each environment's
    ``get_reward`` scores them. A tiny model's tokenizer gets the response template TRL parses tool calls with."""
    tool_domains = environment_domains(train_files)
    if not tool_domains:
        return {}
    factories = {d: get_domain(d).environment(reward) for d in tool_domains}
    factories[NO_TOOLS] = SingleTurn   # single-turn rows of the run, its validation rows included
    if getattr(tokenizer, "response_template", None) is None and tokenizer.chat_template == base_model.CHAT_TEMPLATE:
        tokenizer.response_template = base_model.RESPONSE_TEMPLATE
    return {"environment_factory": factories}


def train_grpo(node: str, model_dir: str, train_files: dict[str, str], cfg: dict, reward: dict, steps: int,
               seed: int, threads: int, out_dir: str, checkpoint_dir: str, tensorboard_dir: str | None = None,
               eval_files: dict[str, str] | None = None) -> None:
    """Train ``node``; TRL logs to TensorBoard in ``tensorboard_dir``, and every attempt (a resume too) is
    recorded in the checkpoint directory's attempts log, summed into the model card. ``eval_files``
    (benchmark -> rows): the validation rows of ``grpo.eval``, scored every ``every_steps`` steps."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if eval_files and cfg.get("eval"):
        from mixmerge.training.grpo_eval import ValidatingGRPOTrainer as Trainer
    else:
        from trl import GRPOTrainer as Trainer
        eval_files = None

    check_ready(train_files, reward)  # no sandbox for code (say): stop before loading anything
    set_threads(threads)
    started = time.time()
    resume = resume_point(checkpoint_dir)
    attempts = AttemptLog(checkpoint_dir, node).start(resume)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="bfloat16" if cfg["trl"].get("bf16") else "float32")
    tools = tool_setup(train_files, reward, tokenizer)
    tool_domains = [d for d in tools.get("environment_factory", {}) if d != NO_TOOLS]
    dataset = Dataset.from_list(rl_dataset_rows(train_files, seed, bool(tools)))
    decode = partial(tokenizer.decode, skip_special_tokens=True)
    trainer = Trainer(
        model=model,
        reward_funcs=[make_reward_fn(d, reward, decode) for d in sorted(train_files) if d not in tool_domains],
        args=grpo_args(cfg, steps=steps, seed=seed, checkpoint_dir=checkpoint_dir, world=world_size(),
                       tensorboard_dir=tensorboard_dir, evaluate=bool(eval_files),
                       max_turns=max((get_domain(d).max_turns(reward) for d in tool_domains), default=None)),
        train_dataset=dataset,
        eval_dataset=Dataset.from_list(rl_dataset_rows(eval_files, seed, bool(tools))) if eval_files else None,
        processing_class=tokenizer,
        callbacks=[attempts.callback()],
        **tools,
    )
    attempts.mark("load")
    train(trainer, resume, checkpoint_dir)
    attempts.mark("train")
    save_final(trainer, tokenizer, out_dir, {"node": node, "parents": [model_dir], "domains": sorted(train_files),
                                             "config": cfg, "reward": reward, "steps": steps, "seed": seed}, started,
               attempts)
