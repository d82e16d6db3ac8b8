"""TRL trainer configs from a trainer block: the project's own keys plus ``trl:``, handed to TRL unchanged.

``sft.trl`` becomes ``SFTConfig(**sft.trl, ...)``, ``grpo.trl`` ``GRPOConfig(**grpo.trl, ...)`` and ``opd.trl``
``DistillationConfig(**opd.trl, ...)``; mixmerge
adds only what it owns (paths, seeds, steps, the per-device batch split), and a block that sets one of those is
an error, as is a field the installed TRL/transformers does not have.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path

from mixmerge.training.batch_plan import check_sft_budget, rollout_plan

# Fields mixmerge sets itself; a trl block may not set them.
OWNED = {
    "sft": {"output_dir", "seed", "data_seed", "report_to", "completion_only_loss", "use_cpu"},
    "grpo": {"output_dir", "max_steps", "seed", "data_seed", "report_to", "remove_unused_columns",
             "per_device_train_batch_size", "gradient_accumulation_steps", "eval_strategy", "eval_steps",
             "per_device_eval_batch_size", "num_generations_eval"},
    "opd": {"output_dir", "max_steps", "seed", "data_seed", "report_to", "remove_unused_columns",
            "per_device_train_batch_size", "gradient_accumulation_steps", "beta", "teacher_model_name_or_path",
            "teacher_model_init_kwargs"},
}
CLASSES = {"sft": ("trl", "SFTConfig"), "grpo": ("trl", "GRPOConfig"), "opd": ("trl", "DistillationConfig")}


class TrainerFieldError(ValueError):
    """A trl block names a field TRL does not have, or one mixmerge owns. The message names the key."""


def _versions() -> str:
    return "-".join(f"{p}{importlib.metadata.version(p)}" for p in ("trl", "transformers"))


def _cache_file() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "mixmerge" / f"trainer-fields-{_versions()}.json"


def trainer_fields() -> dict[str, set[str]]:
    """Field names of every trainer config class. Importing TRL takes about 11 s on 2 cores, and the workflow
    checks these names on every Snakemake start, so the names are cached per installed TRL/transformers."""
    cache = _cache_file()
    try:
        cached = json.loads(cache.read_text())
        if set(cached) >= set(CLASSES):  # a cache written before a trainer kind was added is rebuilt
            return {k: set(v) for k, v in cached.items()}
    except (OSError, ValueError):
        pass
    import dataclasses

    fields = {kind: sorted(f.name for f in dataclasses.fields(_config_class(kind))) for kind in CLASSES}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(fields))
    tmp.replace(cache)
    return {k: set(v) for k, v in fields.items()}


def _config_class(kind: str):
    module, name = CLASSES[kind]
    return getattr(importlib.import_module(module), name)


def check_fields(kind: str, trl_block: dict) -> None:
    """Raise TrainerFieldError naming ``<kind>.trl.<field>`` for an unknown or mixmerge-owned field."""
    known = trainer_fields()[kind]
    for name in trl_block:
        if name in OWNED[kind]:
            raise TrainerFieldError(f"config key '{kind}.trl.{name}': set by mixmerge, remove it from the config")
        if name not in known:
            _, cls = CLASSES[kind]
            raise TrainerFieldError(f"config key '{kind}.trl.{name}': {cls} has no such field "
                                    f"(installed: {_versions()})")


def report_to(tensorboard_dir: str | None) -> str:
    """``report_to`` for a trainer: ``tensorboard`` with its event files in ``tensorboard_dir`` (transformers 5
    reads the directory from ``TENSORBOARD_LOGGING_DIR``; a run's writer only logs, so numerics are unchanged),
    or ``none``. An empty file in its place (Snakemake touches a missing log after a failed job) is removed."""
    if not tensorboard_dir:
        return "none"
    path = Path(tensorboard_dir)
    if path.is_file() and path.stat().st_size == 0:
        path.unlink()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(path.resolve())
    return "tensorboard"


def sft_args(cfg: dict, *, seed: int, checkpoint_dir: str, chats: bool, use_cpu: bool,
             tensorboard_dir: str | None = None):
    """SFTConfig from the ``sft`` block; ``chats``: the loss mask comes from the chats' assistant masks."""
    check_fields("sft", cfg["trl"])
    check_sft_budget(cfg)
    return _config_class("sft")(
        **cfg["trl"], output_dir=checkpoint_dir, seed=seed, data_seed=seed, report_to=report_to(tensorboard_dir),
        completion_only_loss=not chats, use_cpu=use_cpu)


def with_prompt_limit(config: dict, kind: str) -> dict:
    """The ``kind`` block with ``prompt_limit``: the longest prompt the data keeps (real data:
    ``data.rl_blend.max_prompt_tokens``; the tiny tasks have none), which the token budget needs."""
    limit = (config["data"].get("rl_blend") or {}).get("max_prompt_tokens") if config["data"]["source"] == "real" \
        else None
    return {**config[kind], "prompt_limit": limit}


def grpo_batch_plan(cfg: dict, world: int, generations: int | None = None, kind: str = "grpo") -> dict:
    """How one optimiser step's completions split over ``world`` processes: per-device micro-batch and
    accumulation (mixmerge.training.batch_plan), so that one step consumes exactly one rollout of
    ``prompts_per_step`` prompts (x ``generations`` samples each: ``trl.num_generations`` for GRPO,
    ``samples_per_prompt`` for OPD)."""
    generations = cfg["trl"]["num_generations"] if generations is None else generations
    return rollout_plan(cfg, world, generations, kind, cfg.get("prompt_limit"))


def eval_fields(cfg: dict, plan: dict) -> dict:
    """TRL's in-training eval (``grpo.eval``): every ``every_steps`` optimiser steps, ``num_generations``
    samples per validation prompt; an eval batch is as large as a process's share of a rollout (whole prompt
    groups), generated and scored only (mixmerge.training.grpo_eval)."""
    spec = cfg.get("eval")
    if not spec:
        return {}
    n = spec["num_generations"]
    return {"eval_strategy": "steps", "eval_steps": spec["every_steps"], "num_generations_eval": n,
            "per_device_eval_batch_size": max(plan["per_process"] // n, 1) * n}


def eval_benchmarks(cfg: dict, benchmarks: dict, domains: list[str]) -> list[str]:
    """The ``grpo.eval`` benchmarks a run on ``domains`` evaluates: those of its own domains (its reward
    functions score only those)."""
    names = (cfg.get("eval") or {}).get("benchmarks") or []
    return [b for b in names if benchmarks[b]["domain"] in domains]


def grpo_args(cfg: dict, *, steps: int, seed: int, checkpoint_dir: str, world: int,
              tensorboard_dir: str | None = None, evaluate: bool = False, max_turns: int | None = None):
    """GRPOConfig from the ``grpo`` block for a run of ``steps`` optimiser steps over ``world`` processes;
    ``evaluate``: the run has validation rows, so ``grpo.eval`` (when set) turns TRL's eval on. ``max_turns``
    (runs with tool environments, ``reward.agent_max_turns``): TRL's tool loop runs up to that many tool rounds, so
    a call past the environment's budget of ``max_turns - 1`` reaches it and ends the episode with reward 0."""
    check_fields("grpo", cfg["trl"])
    trl_block = cfg["trl"]
    if trl_block.get("use_vllm") and trl_block.get("vllm_mode", "colocate") == "colocate":
        tp = trl_block.get("vllm_tensor_parallel_size", 1)
        if world % tp:
            raise ValueError(f"config key 'grpo.trl.vllm_tensor_parallel_size': {tp} does not divide the {world} "
                             "training processes")
    plan = grpo_batch_plan(cfg, world)
    return _config_class("grpo")(
        **trl_block, output_dir=checkpoint_dir, max_steps=steps, seed=seed, data_seed=seed,
        report_to=report_to(tensorboard_dir),
        remove_unused_columns=False, per_device_train_batch_size=plan["per_device_train_batch_size"],
        gradient_accumulation_steps=plan["gradient_accumulation_steps"], **(eval_fields(cfg, plan) if evaluate else {}),
        **({"max_tool_calling_iterations": max_turns} if max_turns else {}))


def opd_args(cfg: dict, *, seed: int, checkpoint_dir: str, world: int, tensorboard_dir: str | None = None):
    """DistillationConfig from the ``opd`` block: ``steps`` optimiser steps of ``prompts_per_step`` prompts x
    ``samples_per_prompt`` responses over ``world`` processes. ``beta`` is 1 (TRL's reverse KL), the
    ``full_reverse_kl`` loss; the ``study`` loss replaces TRL's (mixmerge.training.opd_trainer)."""
    check_fields("opd", cfg["trl"])
    plan = grpo_batch_plan(cfg, world, cfg["samples_per_prompt"], "opd")
    return _config_class("opd")(
        **cfg["trl"], output_dir=checkpoint_dir, max_steps=cfg["steps"], seed=seed, data_seed=seed,
        report_to=report_to(tensorboard_dir), remove_unused_columns=False, beta=1.0,
        per_device_train_batch_size=plan["per_device_train_batch_size"],
        gradient_accumulation_steps=plan["gradient_accumulation_steps"])
