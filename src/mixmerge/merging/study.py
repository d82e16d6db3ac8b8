"""The study's merge semantics (study.md Appendix C), built on mergekit without changing it.

- TIES: a streaming pre-pass finds each expert's *global* magnitude threshold exactly (radix
  selection on float32 bit patterns, two histogram passes, bounded memory), then a third pass turns
  it into per-tensor keep counts, which mergekit `ties` receives as per-tensor densities.
- DARE: a seeded preprocessing step, element-wise Bernoulli drop, division by (1 - p), in the
  study's order (experts in order, parameters in `named_parameters()` order, one generator).
- SCE: a merge method registered through mergekit's API that differs from `sce` only in the
  weight fallback (uniform only when the sum is exactly 0) and the divisor (0 -> 1, no clamp).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from mergekit.merge_methods import (
    BasePolicy,
    InputContract,
    TensorGroup,
    merge_method,
    register,
    registered_methods,
)
from mergekit.merge_methods.sce import sce_mask

from mixmerge.merging.checkpoints import TensorSource

SELECTION_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_BINS = 1 << 16
_INF_BIN = 0x7F80  # high 16 bits of +inf; NaN patterns lie at or above it


def abs_delta(base: torch.Tensor, expert: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """|expert - base| computed in the compute dtype, as float32 (exact for the allowed dtypes)."""
    delta = expert.to(dtype) - base.to(dtype)
    return delta.abs_().to(torch.float32).reshape(-1)


# ---------------------------------------------------------------- TIES: exact global threshold
@dataclass
class TiesPrepass:
    """Result of the global-threshold pre-pass, one entry per expert."""

    n_entries: int
    k: int
    thresholds: list[float]
    zero_fraction: list[float]
    trims_nothing: list[bool]
    kept: list[dict[str, int]] = field(default_factory=list)
    numel: dict[str, int] = field(default_factory=dict)
    elected_positive: int = 0
    elected_negative: int = 0
    zero_sum_entries: int = 0

    @property
    def majority_sign(self) -> int:
        """The study's fallback sign for entries whose elected sum is exactly 0."""
        diff = self.elected_positive - self.elected_negative
        return (diff > 0) - (diff < 0)

    def densities(self, expert: int) -> dict[str, float]:
        """Per-tensor densities that make mergekit's magnitude top-k keep exactly the entries with
        |delta| >= threshold: k = int(density * n) must equal the count c, so use (c + 0.5) / n
        (float error is far below 0.5), 1.0 when everything is kept and 0.0 when nothing is."""
        out = {}
        for name, n in self.numel.items():
            c = self.kept[expert][name]
            out[name] = 1.0 if c == n else 0.0 if c == 0 else (c + 0.5) / n
        return out


def _first_reaching(hist: torch.Tensor, k: int) -> tuple[int, int]:
    """Index of the bin holding the k-th smallest item (1-based) and k's rank inside that bin."""
    cumulative = hist.cumsum(0)
    index = int(torch.searchsorted(cumulative, torch.tensor([k], dtype=cumulative.dtype)))
    before = int(cumulative[index - 1]) if index > 0 else 0
    return index, k - before


def ties_prepass(base: TensorSource, experts: Sequence[TensorSource], names: Sequence[str],
                 density: float, dtype: torch.dtype = torch.float32,
                 weights: Sequence[float] | None = None) -> TiesPrepass:
    """The study's TIES trim, found exactly with memory bounded by a few tensors.

    For each expert i: N = entries over all `names`, k = int(N * (1 - density)), tau_i = the k-th
    smallest |delta_i| (torch kthvalue semantics), keep |delta_i| >= tau_i; tau_i = 0 (trim
    nothing) when k = 0. Also counts the elected signs so the caller can apply the study's
    tie rule (an exactly-zero elected sum takes the global majority sign)."""
    if dtype not in SELECTION_DTYPES:
        raise ValueError(f"TIES threshold needs a float32/bfloat16/float16 compute dtype, not {dtype}")
    n_exp = len(experts)
    weights = list(weights) if weights is not None else [1.0] * n_exp
    numel = {name: base.get(name).numel() for name in names}
    n_entries = sum(numel.values())
    k = int(n_entries * (1.0 - density))

    # pass 1: histogram of the high 16 bits of |delta| (non-negative floats sort like their bits)
    high = torch.zeros(n_exp, _BINS, dtype=torch.int64)
    zeros = [0] * n_exp
    for name in names:
        b = base.get(name)
        for i, expert in enumerate(experts):
            bits = abs_delta(b, expert.get(name), dtype).view(torch.int32)
            high[i] += torch.bincount(bits >> 16, minlength=_BINS)
            zeros[i] += int((bits == 0).sum())

    if int(high[:, _INF_BIN:].sum()):
        raise ValueError("a task vector has inf or NaN entries")
    thresholds: list[float | None] = [None] * n_exp
    targets: dict[int, tuple[int, int]] = {}
    for i in range(n_exp):
        if k == 0 or zeros[i] >= k:
            thresholds[i] = 0.0
        else:
            targets[i] = _first_reaching(high[i], k)

    # pass 2: inside the selected high bin, histogram of the low 16 bits -> the exact bit pattern
    if targets:
        low = torch.zeros(n_exp, _BINS, dtype=torch.int64)
        for name in names:
            b = base.get(name)
            for i, (hi_bin, _) in targets.items():
                bits = abs_delta(b, experts[i].get(name), dtype).view(torch.int32)
                low[i] += torch.bincount(bits[(bits >> 16) == hi_bin] & 0xFFFF, minlength=_BINS)
        for i, (hi_bin, rank) in targets.items():
            lo_bin, _ = _first_reaching(low[i], rank)
            pattern = torch.tensor([(hi_bin << 16) | lo_bin], dtype=torch.int32)
            thresholds[i] = float(pattern.view(torch.float32)[0])

    result = TiesPrepass(
        n_entries=n_entries, k=k, thresholds=[float(t) for t in thresholds],
        zero_fraction=[z / n_entries if n_entries else 0.0 for z in zeros],
        trims_nothing=[t == 0.0 for t in thresholds],
        kept=[{} for _ in experts], numel=numel)
    _count_kept_and_signs(result, base, experts, names, dtype, weights)
    return result


def _count_kept_and_signs(prepass: TiesPrepass, base: TensorSource, experts: Sequence[TensorSource],
                          names: Sequence[str], dtype: torch.dtype, weights: Sequence[float]) -> None:
    """Pass 3: per-tensor keep counts, and the elected-sign census over the trimmed deltas."""
    for name in names:
        b = base.get(name).to(dtype)
        stacked = b.new_empty((len(experts), *b.shape))
        for i, expert in enumerate(experts):
            delta = expert.get(name).to(dtype) - b
            keep = delta.abs().to(torch.float32) >= prepass.thresholds[i]
            prepass.kept[i][name] = int(keep.sum())
            stacked[i] = delta * keep
            del delta, keep
        any_kept = (stacked != 0).any(dim=0)
        # same operations, same order as mergekit's TIES election (weights, then a dim-0 sum)
        w = torch.tensor(list(weights), dtype=dtype).reshape((-1,) + (1,) * b.dim())
        elected = stacked.mul_(w).sum(dim=0)
        prepass.elected_positive += int((elected > 0).sum())
        prepass.elected_negative += int((elected < 0).sum())
        prepass.zero_sum_entries += int(((elected == 0) & any_kept).sum())


# ---------------------------------------------------------------- DARE
def dare_delta(delta: torch.Tensor, drop: float, generator: torch.Generator) -> torch.Tensor:
    """The study's DARE on one task-vector tensor: drop ~ Bernoulli(p) per element, then / (1 - p)."""
    dropped = torch.bernoulli(torch.full_like(delta, drop), generator=generator)
    kept = delta * (1 - dropped)
    if drop != 1.0:
        kept = torch.div(kept, 1 - drop)
    return kept


def dare_expert_tensors(base: TensorSource, expert: TensorSource, names: Sequence[str], drop: float,
                        generator: torch.Generator, dtype: torch.dtype):
    """Yield (name, base + DARE(delta)) in `names` order; the generator is shared across experts."""
    for name in names:
        b = base.get(name).to(dtype)
        delta = expert.get(name).to(dtype) - b
        yield name, b + dare_delta(delta, drop, generator)


# ---------------------------------------------------------------- SCE with the study's fallback
@merge_method(
    name="sce_study",
    pretty_name="SCE (study-exact weight fallback)",
    reference_url="https://arxiv.org/abs/2602.12566",
    contract=InputContract(base=BasePolicy.REQUIRED),
)
def sce_study_merge(group: TensorGroup, select_topk: float = 1.0) -> torch.Tensor:
    """mergekit `sce` except: uniform weights only if sum_j mean(delta_j^2) is exactly 0 (mergekit:
    below 1e-6), and a zero divisor becomes 1 (mergekit clamps the divisor at 1e-6)."""
    base = group.base.tensor
    tensors = [entry.tensor for entry in group.non_base]
    if not tensors:
        return base
    deltas = torch.stack([t - base for t in tensors], dim=0)
    if select_topk < 1:
        deltas = deltas * sce_mask(deltas, select_topk, deltas.dtype).unsqueeze(0)
    majority = torch.where(deltas.sum(dim=0) >= 0, 1.0, -1.0).to(deltas.dtype)
    erase = (deltas.sign() == majority).to(deltas.dtype)
    weights = deltas.square().reshape(deltas.shape[0], -1).mean(dim=1)
    total = weights.sum()
    if total == 0:
        weights = torch.full_like(weights, 1.0 / weights.shape[0])
    else:
        weights = weights / total
    weights = weights.reshape((-1,) + (1,) * (deltas.dim() - 1))
    erased = weights * erase
    divisor = erased.sum(dim=0)
    divisor = torch.where(divisor == 0, torch.ones_like(divisor), divisor)
    merged = (deltas * erased).sum(dim=0) / divisor
    return (base + merged).to(base.dtype)


def register_study_methods() -> None:
    """Make `sce_study` available to mergekit by name (idempotent)."""
    if all(m.spec.name != "sce_study" for m in registered_methods()):
        register(sce_study_merge)


register_study_methods()
