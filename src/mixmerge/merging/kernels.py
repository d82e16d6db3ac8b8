"""Per-chunk merge arithmetic, op for op as mergekit and the study compute it (so results match bitwise).

Every function takes a base chunk `b` and the experts' chunks (same shape, compute dtype) and is purely
elementwise across positions, so a tensor merged chunk by chunk equals the tensor merged whole. Sums over
experts use torch's CPU `sum(dim=0)` (what mergekit and the study call), which adds up to 4 rows in order
from +0; for 5 or more rows its order depends on the tensor's shape and thread split, and a GPU reduction
has its own, so those sums are done in expert order from +0 instead (equal to the CPU's for up to 4).
"""

from __future__ import annotations

from typing import Sequence

import torch


def expert_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over dim 0 (experts): torch's CPU sum for up to 4 rows (in order, from +0), else in order from +0."""
    if x.shape[0] <= 4 and x.device.type == "cpu":
        return x.sum(dim=0)
    out = torch.zeros_like(x[0])
    for row in x:
        out += row
    return out


def stack_deltas(b: torch.Tensor, experts: Sequence[torch.Tensor]) -> torch.Tensor:
    """(n, *shape) tensor of expert - base, as mergekit fills it."""
    deltas = b.new_empty((len(experts), *b.shape))
    for i, e in enumerate(experts):
        torch.sub(e, b, out=deltas[i])
    return deltas


def weight_column(weights: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """The weights as mergekit builds them: a tensor in the deltas' dtype, broadcast over positions."""
    w = torch.tensor(list(weights), dtype=like.dtype, device=like.device)
    return w.reshape((-1,) + (1,) * (like.dim() - 1))


def linear(experts: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """mergekit `linear`, normalize on: sum_i w_i x_i / sum_i w_i (accumulated in float32/float64)."""
    first = experts[0]
    acc = torch.float64 if first.dtype == torch.float64 else torch.float32
    weight = torch.tensor([list(weights)], dtype=acc)
    denominator = weight.sum(dim=1).reshape((1,) + (1,) * (first.dim() - 1)).to(first.device)
    result = torch.zeros_like(first, dtype=acc)
    for tensor, coefficient in zip(experts, weight.unbind(1)):
        result.addcmul_(tensor, coefficient.reshape((1,) + (1,) * (first.dim() - 1)).to(first.device))
    result.div_(denominator)
    return result.to(first.dtype)


def task_arithmetic(b: torch.Tensor, experts: Sequence[torch.Tensor], weights: Sequence[float],
                    lam: float) -> torch.Tensor:
    """mergekit `task_arithmetic` (normalize off): b + lambda * sum_i w_i (x_i - b)."""
    deltas = stack_deltas(b, experts)
    deltas.mul_(weight_column(weights, deltas))
    mixed = expert_sum(deltas)
    if lam != 1:
        mixed *= lam
    return (b + mixed).to(b.dtype)


def ties_elect(trimmed: torch.Tensor, weights: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """mergekit `ties` after its trim, first half: weight the (n, *shape) trimmed deltas (in place) and sum
    them for the sign election. Returns (weighted deltas, weight column, elected sum)."""
    w = weight_column(weights, trimmed)
    trimmed.mul_(w)
    return trimmed, w, expert_sum(trimmed)


def ties_combine(b: torch.Tensor, weighted: torch.Tensor, w: torch.Tensor, elected: torch.Tensor,
                 lam: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Second half (normalize on): keep the deltas whose sign is the elected one (a zero sum elects +),
    disjoint weighted mean, lambda, add to the base. Also returns where the divisor was 0 although a delta
    was kept (possible only when the weights differ in sign; None when they cannot)."""
    sign = weighted.sign()
    majority = (elected >= 0).to(b.dtype) * 2 - 1
    mask = sign == majority
    mixed = expert_sum(weighted * mask)
    divisor = expert_sum(w * mask)
    zero = divisor == 0
    cancel = None
    if not (bool((w > 0).all()) or bool((w < 0).all())):
        cancel = zero & (expert_sum(mask.to(b.dtype)) > 0)
    divisor[zero] = 1
    mixed /= divisor
    if lam != 1:
        mixed *= lam
    return (b + mixed).to(b.dtype), cancel


def ties(b: torch.Tensor, trimmed: torch.Tensor, weights: Sequence[float], lam: float) -> torch.Tensor:
    """mergekit `ties` after its trim (normalize on); `trimmed` is overwritten."""
    weighted, w, elected = ties_elect(trimmed, weights)
    return ties_combine(b, weighted, w, elected, lam)[0]


def trim(delta: torch.Tensor, threshold: float, kept_in_tensor: int, numel: int) -> torch.Tensor:
    """mergekit's magnitude trim given the tensor's keep count: all of it, nothing (+0), or delta * mask
    where the mask is |delta| >= threshold (the entries a global top-k keeps)."""
    if kept_in_tensor >= numel:
        return delta
    if kept_in_tensor <= 0:
        return torch.zeros_like(delta)
    return delta * (delta.abs().float() >= threshold).to(delta.dtype)


def sce_score(delta: torch.Tensor) -> float:
    """The study's SCE score of one expert's whole tensor: sum(delta^2) (a float32 torch sum) / numel,
    as a Python double."""
    return torch.sum(delta ** 2).item() / delta.numel()


def sce_weights(scores: Sequence[float], dtype: torch.dtype) -> torch.Tensor:
    """The study's SCE weights: scores normalised in double, uniform only when their sum is exactly 0,
    then cast to the compute dtype."""
    total = sum(scores)
    if total == 0:
        weights = [1.0 / len(scores)] * len(scores)
    else:
        weights = [s / total for s in scores]
    return torch.tensor(weights, dtype=dtype)


def sce_select(deltas: torch.Tensor, select_topk: float) -> torch.Tensor:
    """The study's SCE selection mask (whole tensor): top `select_topk` of the nonzero-variance positions."""
    variance = torch.var(deltas, dim=0, unbiased=False, keepdim=False)
    k = int(select_topk * torch.count_nonzero(variance))
    mask = torch.zeros_like(variance)
    if k == 0:
        return mask
    mask.view(-1)[torch.topk(variance.abs().view(-1), k=k, largest=True).indices] = 1
    return mask


def sce(b: torch.Tensor, experts: Sequence[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """The study's SCE erase and merge with given weights: keep deltas whose sign is the sign of their sum
    (ties +), then sum_i w_i m_i d_i / sum_i w_i m_i (0 divisor -> 1)."""
    deltas = stack_deltas(b, experts)
    sign = deltas.sign().to(b.dtype)
    majority = (expert_sum(deltas) >= 0).to(b.dtype) * 2 - 1
    erase = sign == majority
    erased = weights.to(deltas.device).reshape((-1,) + (1,) * (deltas.dim() - 1)) * erase
    mixed = expert_sum(deltas * erased)
    divisor = expert_sum(erased)
    divisor[divisor == 0] = 1
    mixed /= divisor
    return (b + mixed).to(b.dtype)
