"""``mixmerge check-config``: build every trainer config, merge plan and eval setting from a config, no model loaded."""
from __future__ import annotations

import tempfile

from mixmerge.config import ConfigError, check_local_paths, load_yaml, overlay, validate


def load_layers(paths: list[str]) -> dict:
    """Config files layered left to right (later files overlay earlier ones, as ``snakemake --configfile``),
    each read strictly: a YAML syntax error or a duplicate key is a ConfigError naming the file and line."""
    merged: dict = {}
    for path in paths:
        merged = overlay(merged, load_yaml(path))
    return merged


def _build(key: str, build):
    """Run ``build()``; any TRL/transformers complaint becomes a ConfigError naming ``key``."""
    try:
        return build()
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        message = str(err)
        raise ConfigError(message if "config key" in message else f"config key '{key}': {message}") from None


def merge_plans(merges: dict, n_experts: int) -> dict[str, dict]:
    """Every merge node with its method's full parameters, checked for its experts: those it names, else
    ``n_experts`` (one per domain)."""
    from mixmerge.merging.methods import merge_plan

    plans: dict[str, dict] = {}
    for name, spec in merges.items():
        named = spec.get("experts") if isinstance(spec, dict) else None
        plans.update(merge_plan(name, spec, len(named) if isinstance(named, list) else n_experts))
    return plans


def _without_gpu_only(config: dict, lines: list[str]) -> dict:
    """On a machine without a GPU, TrainingArguments refuses bf16 at construction; check those blocks with bf16
    off (the field name was already checked) and say so."""
    import torch

    if torch.cuda.is_available():
        return config
    out = dict(config)
    for kind in ("sft", "grpo", "opd"):
        if config[kind]["trl"].get("bf16"):
            out[kind] = {**config[kind], "trl": {**config[kind]["trl"], "bf16": False}}
            lines.append(f"{kind}: bf16 checked by name only (no GPU on this machine)")
    return out


def _budget(plan: dict) -> str:
    if plan["max_tokens_per_device"] is None:
        return "no token budget set"
    return (f"longest sequence {plan['longest_sequence']:,} tokens, micro-batch {plan['tokens_per_micro_batch']:,} "
            f"<= {plan['max_tokens_per_device']:,} tokens per device")


def _rollout(config: dict, kind: str) -> str:
    trl_block = config[kind]["trl"]
    if not trl_block.get("use_vllm"):
        return "generation: transformers"
    return (f"vLLM {trl_block.get('vllm_mode', 'colocate')} at {trl_block.get('vllm_gpu_memory_utilization', 0.3)} of "
            f"GPU memory, sleep mode {'on' if trl_block.get('vllm_enable_sleep_mode') else 'off'}")


def _opd_line(config: dict, scratch: str) -> str:
    """Build the distillation config (TRL DistillationConfig) of the opd node; its plan as one line."""
    from mixmerge.compute.teacher_servers import teacher_gpus
    from mixmerge.training.trainer_args import grpo_batch_plan, opd_args, with_prompt_limit

    served = teacher_gpus(config["opd"].get("teachers"), config["domains"])
    opd, world = with_prompt_limit(config, "opd"), max(config["gpus"]["opd"] - served, 1)
    args = _build("opd.trl", lambda: opd_args(opd, seed=config["seed"], checkpoint_dir=scratch, world=world))
    plan = grpo_batch_plan(opd, world, opd["samples_per_prompt"], "opd")
    teachers = ", ".join(f"rl-{d}" for d in config["domains"]) + (
        f" on vLLM servers ({served} of the job's {config['gpus']['opd']} GPUs)" if served else " in-process")
    return (f"opd: DistillationConfig ok, loss {opd['loss']}, teachers {teachers}; {opd['prompts_per_step']} "
            f"prompts x {opd['samples_per_prompt']} samples per step over {world} process(es): "
            f"{args.per_device_train_batch_size} per device per micro-batch x {args.gradient_accumulation_steps} "
            f"accumulation, {opd['steps']} steps; {_budget(plan)}; {_rollout(config, 'opd')}")


def _grpo_lines(config: dict, scratch: str) -> list[str]:
    """Build the GRPOConfig of every GRPO run (with its eval when it has validation benchmarks); the plan."""
    from mixmerge.training.trainer_args import eval_benchmarks, grpo_args, grpo_batch_plan, with_prompt_limit

    grpo, world = with_prompt_limit(config, "grpo"), max(config["gpus"]["grpo"], 1)
    evaluated = {}
    for run, steps in grpo["steps"].items():
        names = eval_benchmarks(grpo, config["benchmarks"], config["domains"] if run == "mixed" else [run])
        evaluated.update({n: config["benchmarks"][n]["domain"] for n in names})
        _build("grpo.trl", lambda: grpo_args(grpo, steps=steps, seed=config["seed"], checkpoint_dir=scratch,
                                             world=world, evaluate=bool(names)))
    plan = _build("grpo.max_tokens_per_device", lambda: grpo_batch_plan(grpo, world))
    lines = [f"grpo: GRPOConfig ok for {len(grpo['steps'])} runs; {grpo['prompts_per_step']} prompts x "
             f"{grpo['trl']['num_generations']} = {plan['completions_per_step']} completions per step over {world} "
             f"process(es): {plan['per_device_train_batch_size']} per device per micro-batch x "
             f"{plan['gradient_accumulation_steps']} accumulation; {_budget(plan)}; {_rollout(config, 'grpo')}"]
    spec = grpo.get("eval")
    if spec:
        lines.append(f"grpo eval: every {spec['every_steps']} steps, {spec['num_generations']} samples per prompt, on "
                     + ", ".join(f"{n} ({d})" for n, d in evaluated.items()) + " (each run: its own domains')")
    else:
        lines.append("grpo eval: off")
    return lines


def _sft_line(config: dict, scratch: str) -> str:
    from mixmerge.training.batch_plan import check_sft_budget
    from mixmerge.training.trainer_args import sft_args

    args = _build("sft.trl", lambda: sft_args(config["sft"], seed=config["seed"], checkpoint_dir=scratch,
                                              chats=config["data"]["source"] != "tiny", use_cpu=True))
    plan = check_sft_budget(config["sft"])
    budget = "no token budget set" if plan["max_tokens_per_device"] is None else (
        f"micro-batch {plan['tokens_per_micro_batch']:,} <= {plan['max_tokens_per_device']:,} tokens per device")
    return (f"sft: SFTConfig ok ({args.per_device_train_batch_size} sequences per device x "
            f"{args.gradient_accumulation_steps} accumulation x {max(config['gpus']['sft'], 1)} process(es); "
            f"{budget})")


def check(config: dict, check_paths: bool = True) -> list[str]:
    """Every check; returns the lines of the plan it built. Raises ConfigError on the first problem."""
    from mixmerge.evaluation.vllm_backend import engine_kwargs, sampling_kwargs

    validate(config, check_paths=False)
    lines: list[str] = check_local_paths(config) if check_paths else ["local paths not checked (--no-paths)"]
    config = _without_gpu_only(config, lines)
    scratch = tempfile.mkdtemp(prefix="mixmerge-check-")
    if config["sft"]["enabled"]:
        lines.append(_sft_line(config, scratch))
    lines.extend(_grpo_lines(config, scratch))
    lines.append(_opd_line(config, scratch))
    plans = _build("merges", lambda: merge_plans(config["merges"], len(config["domains"])))
    lines.append(f"merges: {len(plans)} merge nodes planned ({', '.join(plans)})")
    eval_cfg = config["eval"]
    if eval_cfg["backend"] in ("vllm", "auto"):
        _build("eval.vllm", lambda: engine_kwargs("MODEL", eval_cfg["seed"], eval_cfg.get("vllm"),
                                                  max(config["gpus"]["eval"], 1)))
    for name, bench in config["benchmarks"].items():
        _build(f"benchmarks.{name}", lambda: sampling_kwargs(bench["k"], bench, eval_cfg["seed"]))
    lines.append(f"eval: {eval_cfg['backend']} backend, {len(config['benchmarks'])} benchmarks")
    return lines


def main(paths: list[str], check_paths: bool = True) -> int:
    import sys

    try:
        lines = check(load_layers(paths), check_paths)
    except ConfigError as err:
        print(f"mixmerge check-config {' '.join(paths)}: {err}", file=sys.stderr)
        return 1
    print(f"mixmerge check-config {' '.join(paths)}: ok")
    for line in lines:
        print(f"  {line}")
    return 0
