"""Allocation-free versions of the hot chunk kernels (per-thread scratch buffers), bitwise equal to kernels.py.

A fresh tensor per op costs page faults and cache misses on every chunk; these write into buffers
reused by the same thread. Every value is produced by the same IEEE operation as in kernels.py (which
mirrors mergekit), only the storage differs; tests/test_merge_kernels.py checks them against each other.
"""

from __future__ import annotations

import math
import threading
from typing import Sequence

import torch

from mixmerge.merging.kernels import expert_sum

_local = threading.local()


def scratch(key: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A reusable buffer of this thread (contents undefined); a key must not be in use twice at once."""
    buffers = _local.__dict__.setdefault("buffers", {})
    need = math.prod(shape)
    buf = buffers.get(key)
    if buf is None or buf.numel() < need or buf.dtype != dtype or buf.device != device:
        buf = buffers[key] = torch.empty(need, dtype=dtype, device=device)
    return buf[:need].view(shape)


def esum(x: torch.Tensor, key: str) -> torch.Tensor:
    """expert_sum into a scratch buffer."""
    if x.shape[0] > 4 or x.device.type != "cpu":
        return expert_sum(x)
    return torch.sum(x, dim=0, out=scratch(key, x.shape[1:], x.dtype, x.device))


def abs_bits(b: torch.Tensor, e: torch.Tensor, key: str = "abs") -> torch.Tensor:
    """|e - b| (compute dtype, then float32) as int32 bit patterns, in a scratch buffer."""
    a = torch.sub(e, b, out=scratch(key, b.shape, b.dtype, b.device)).abs_()
    return (a if a.dtype == torch.float32 else a.float()).view(torch.int32)


def sce_score_(delta: torch.Tensor) -> float:
    """kernels.sce_score, squaring `delta` in place (the same values as delta ** 2)."""
    return torch.sum(delta.square_()).item() / delta.numel()


def dare_expert(b: torch.Tensor, e: torch.Tensor, keep: torch.Tensor, drop: float, i: int) -> torch.Tensor:
    """kernels: b + dare_apply(e - b, dropped, drop), with `keep` = 1 - dropped (0/1, delta's dtype)."""
    d = torch.sub(e, b, out=scratch(f"dare{i}", b.shape, b.dtype, b.device))
    d.mul_(keep)
    if drop != 1.0 and d.device.type == "cpu":
        d.div_(1 - drop)                  # the study's torch.div(kept, 1 - p), as is
    elif drop != 1.0:                     # CUDA divides by a CPU scalar as a * (1/p); a device tensor divides
        d.div_(torch.tensor(1 - drop, dtype=torch.float32, device=d.device))
    return torch.add(b, d, out=d)


def task_arithmetic(b: torch.Tensor, experts: Sequence[torch.Tensor], weights: Sequence[float],
                    lam: float) -> torch.Tensor:
    """kernels.task_arithmetic."""
    deltas = scratch("ta.deltas", (len(experts), *b.shape), b.dtype, b.device)
    for i, e in enumerate(experts):
        torch.sub(e, b, out=deltas[i])
    if any(w != 1.0 for w in weights):
        deltas.mul_(torch.tensor(list(weights), dtype=b.dtype, device=b.device).reshape(-1, *([1] * b.dim())))
    mixed = esum(deltas, "ta.mixed")
    if lam != 1:
        mixed *= lam
    return b + mixed


def ties_trim(b: torch.Tensor, experts: Sequence[torch.Tensor], taus: Sequence[float],
              nothing: Sequence[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """The trimmed deltas (n, C) as kernels.trim gives them, and per position how many experts kept a
    nonzero delta (float count; > 0 is the census's 'any kept')."""
    n = len(experts)
    trimmed = scratch("ties.trimmed", (n, *b.shape), b.dtype, b.device)
    kept = scratch("ties.kept", b.shape, b.dtype, b.device).zero_()
    mask = scratch("ties.mask", b.shape, b.dtype, b.device)
    for i, e in enumerate(experts):
        delta = torch.sub(e, b, out=trimmed[i])
        if nothing[i]:                       # this tensor keeps none of expert i: mergekit's zeros
            delta.zero_()
        elif taus[i] > 0:                    # keep |delta| >= tau (> 0, so kept entries are nonzero)
            a = torch.abs(delta, out=scratch("ties.abs", b.shape, b.dtype, b.device))
            torch.ge(a if a.dtype == torch.float32 else a.float(), taus[i], out=mask)
            delta.mul_(mask)
            kept.add_(mask)
        else:                                # tau 0: keeps everything (delta * 1 is delta)
            kept.add_(torch.ne(delta, 0, out=mask))
    return trimmed, kept


def ties_merge(b: torch.Tensor, trimmed: torch.Tensor, weights: Sequence[float],
               lam: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """kernels.ties_elect + ties_combine on `trimmed` (weighted in place). Returns (merged, elected sum,
    where the divisor was 0 with a delta kept or None when weights cannot cancel)."""
    dt, dev = b.dtype, b.device
    w = torch.tensor(list(weights), dtype=dt, device=dev).reshape(-1, *([1] * b.dim()))
    ones = all(x == 1.0 for x in weights)
    if not ones:
        trimmed.mul_(w)
    elected = esum(trimmed, "ties.elected")
    majority = torch.ge(elected, 0, out=scratch("ties.majority", b.shape, dt, dev)).mul_(2).sub_(1)
    mask = torch.eq(torch.sign(trimmed, out=scratch("ties.sign", trimmed.shape, dt, dev)), majority,
                    out=scratch("ties.emask", trimmed.shape, dt, dev))
    work = scratch("ties.work", trimmed.shape, dt, dev)
    mixed = expert_sum(torch.mul(trimmed, mask, out=work))
    divisor = esum(mask if ones else torch.mul(mask, w, out=work), "ties.divisor")
    zero = torch.eq(divisor, 0, out=scratch("ties.zero", b.shape, dt, dev))
    cancel = None
    if not (all(x > 0 for x in weights) or all(x < 0 for x in weights)):
        cancel = zero.bool() & (esum(mask, "ties.count") > 0)
    divisor.add_(zero)
    mixed.div_(divisor)
    if lam != 1:
        mixed.mul_(lam)
    return torch.add(b, mixed, out=mixed), elected, cancel
