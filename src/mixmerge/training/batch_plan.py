"""Micro-batches under a token budget: how one optimiser step's sequences split over processes and accumulation.

TRL 1.16's GRPO and distillation trainers pad each micro-batch to its longest sequence and have no dynamic
(token-count) batching, and GRPO refuses context parallelism, so a budget of ``max_tokens_per_device`` holds only
as a worst case: micro-batch size x the longest possible sequence (prompt limit + completion limit).
"""
from __future__ import annotations


def _split(kind: str, completions: int, world: int) -> int:
    if completions % world:
        raise ValueError(f"config key '{kind}.prompts_per_step': {completions} completions per step do not split "
                         f"evenly over {world} processes")
    return completions // world


def longest_sequence(cfg: dict, kind: str, prompt_limit: int | None) -> int:
    """Prompt limit + completion limit: the most tokens one rollout sequence can have."""
    completion = cfg["trl"].get("max_completion_length")
    if completion is None:
        raise ValueError(f"config key '{kind}.trl.max_completion_length': needed by '{kind}.max_tokens_per_device' "
                         "(the longest possible sequence)")
    if prompt_limit is None:
        raise ValueError(f"config key '{kind}.max_tokens_per_device': needs a prompt limit "
                         "('data.rl_blend.max_prompt_tokens', real data only)")
    return prompt_limit + completion


def rollout_plan(cfg: dict, world: int, generations: int, kind: str, prompt_limit: int | None = None) -> dict:
    """One optimiser step = one rollout of ``prompts_per_step`` x ``generations`` completions over ``world``
    processes. Without ``max_tokens_per_device`` each process takes its share in one micro-batch; with it, the
    largest micro-batch that divides the share and keeps micro-batch x longest sequence within the budget."""
    completions = cfg["prompts_per_step"] * generations
    share = _split(kind, completions, world)
    plan = {"completions_per_step": completions, "per_process": share, "max_tokens_per_device": None,
            "longest_sequence": None, "tokens_per_micro_batch": None}
    budget = cfg.get("max_tokens_per_device")
    per_device = share
    if budget is not None:
        longest = longest_sequence(cfg, kind, prompt_limit)
        fits = budget // longest
        if fits == 0:
            raise ValueError(
                f"config key '{kind}.max_tokens_per_device': {budget} tokens per device hold not even one sequence of "
                f"the longest possible {longest} tokens ('data.rl_blend.max_prompt_tokens' {prompt_limit} + "
                f"'{kind}.trl.max_completion_length' {longest - prompt_limit}); raise the budget or lower the limits")
        per_device = max(d for d in range(1, min(fits, share) + 1) if share % d == 0)
        plan.update(max_tokens_per_device=budget, longest_sequence=longest, tokens_per_micro_batch=per_device * longest)
    plan.update(per_device_train_batch_size=per_device, gradient_accumulation_steps=share // per_device)
    return plan


def check_sft_budget(cfg: dict) -> dict:
    """SFT sets its micro-batch in ``sft.trl``; with ``sft.max_tokens_per_device`` the micro-batch x
    ``max_length`` (each sequence's cap) must fit. Returns the plan's numbers."""
    budget, trl_block = cfg.get("max_tokens_per_device"), cfg["trl"]
    per_device = trl_block.get("per_device_train_batch_size", 8)  # TrainingArguments' default
    plan = {"per_device_train_batch_size": per_device, "max_tokens_per_device": budget,
            "gradient_accumulation_steps": trl_block.get("gradient_accumulation_steps", 1)}
    if budget is None:
        return plan
    if trl_block.get("max_length") is None:
        raise ValueError("config key 'sft.trl.max_length': needed by 'sft.max_tokens_per_device' (no sequence cap)")
    tokens = per_device * trl_block["max_length"]
    if tokens > budget:
        raise ValueError(f"config key 'sft.trl.per_device_train_batch_size': {per_device} sequences x "
                         f"'sft.trl.max_length' {trl_block['max_length']} = {tokens} tokens per micro-batch exceed "
                         f"'sft.max_tokens_per_device' {budget}; lower the micro-batch and raise "
                         "'sft.trl.gradient_accumulation_steps'")
    return {**plan, "tokens_per_micro_batch": tokens}
