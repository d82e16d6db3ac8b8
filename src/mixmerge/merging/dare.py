"""The study's DARE: seeded Bernoulli drop masks in the study's random order, and the drop-and-rescale step.

The study draws one mask per parameter from one generator seeded once: expert 0's parameters in
`named_parameters()` order, then expert 1's, and so on (`torch.bernoulli(full_like(delta, p))`). The
masks depend only on the seed, p and the tensor sizes, so they are drawn once up front, kept
bit-packed (one bit per entry and expert), and a streaming merge reads any chunk of them in any order.
Drawing uses numpy's MT19937 (the same Mersenne Twister torch's CPU generator runs, about twice as
fast here); it is checked against `torch.bernoulli` first and torch is used if they ever disagree.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

_MANTISSA = 1 << 24          # torch draws a float uniform from the low 24 bits of one 32-bit output
_CHECK = 4096                # draws compared against torch.bernoulli before trusting the fast path


def dare_delta(delta: torch.Tensor, drop: float, generator: torch.Generator) -> torch.Tensor:
    """The study's DARE on one task-vector tensor: drop ~ Bernoulli(p) per element, then / (1 - p)."""
    return dare_apply(delta, torch.bernoulli(torch.full_like(delta, drop), generator=generator), drop)


def dare_apply(delta: torch.Tensor, dropped: torch.Tensor, drop: float) -> torch.Tensor:
    """delta * (1 - dropped) / (1 - p), op for op as the study (`dropped` is 0/1 in delta's dtype)."""
    kept = delta * (1 - dropped)
    if drop != 1.0:
        kept = torch.div(kept, 1 - drop)
    return kept


def dare_expert(b: torch.Tensor, e: torch.Tensor, dropped: torch.Tensor, drop: float) -> torch.Tensor:
    """The expert as the study rewrites it before merging: base + DARE(expert - base)."""
    return b + dare_apply(e - b, dropped, drop)


class _NumpyStream:
    """torch's CPU Mersenne Twister stream, drawn by numpy, turned into torch.bernoulli's 0/1 values."""

    def __init__(self, seed: int, p: float):
        self.bits = np.random.MT19937()
        self.bits._legacy_seeding(seed & 0xFFFFFFFF)
        self.cut = math.ceil(p * _MANTISSA)      # u < p  <=>  (draw & (2^24 - 1)) < ceil(p * 2^24)

    def draw(self, n: int) -> np.ndarray:
        """The next n draws as booleans: True where torch.bernoulli gives 1 (the entry is dropped)."""
        return (self.bits.random_raw(n) & (_MANTISSA - 1)) < self.cut


class _TorchStream:
    def __init__(self, seed: int, drop: float, dtype: torch.dtype):
        self.gen = torch.Generator().manual_seed(seed)
        self.drop, self.dtype = drop, dtype

    def draw(self, n: int) -> np.ndarray:
        mask = torch.bernoulli(torch.full((n,), self.drop, dtype=self.dtype), generator=self.gen)
        return mask.to(torch.bool).numpy()


def _stream(seed: int, drop: float, dtype: torch.dtype):
    p = float(torch.tensor(drop, dtype=dtype))       # the probability the kernel sees (p in delta's dtype)
    fast = _NumpyStream(seed, p)
    want = torch.bernoulli(torch.full((_CHECK,), drop, dtype=dtype), generator=torch.Generator().manual_seed(seed))
    if np.array_equal(fast.draw(_CHECK), want.to(torch.bool).numpy()):
        return _NumpyStream(seed, p)
    return _TorchStream(seed, drop, dtype)


class DareMasks:
    """Every expert's drop masks over `numels` (tensor sizes in parameter order), kept bit-packed as
    keep masks (1 - dropped)."""

    def __init__(self, numels: Sequence[int], n_experts: int, drop: float, seed: int,
                 dtype: torch.dtype = torch.float32, piece: int = 1 << 16):
        self.drop, self.dtype, self.seed = drop, dtype, seed
        stream = _stream(seed, drop, dtype)
        self.packed: list[list[np.ndarray]] = []
        for _ in range(n_experts):
            per_tensor = []
            for numel in numels:
                packed = np.empty((numel + 7) // 8, dtype=np.uint8)
                for start in range(0, numel, piece):          # piece is a multiple of 8
                    bits = np.packbits(~stream.draw(min(piece, numel - start)))
                    packed[start // 8:start // 8 + len(bits)] = bits
                per_tensor.append(packed)
            self.packed.append(per_tensor)
        self.stream = type(stream).__name__

    def keep(self, expert: int, tensor: int, start: int, stop: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """1 - dropped (0/1 in the compute dtype, CPU) for entries [start, stop) of a tensor, into `out` if
        given; `start` is a multiple of 8."""
        if start % 8:
            raise ValueError("mask ranges must start at a multiple of 8")
        bits = np.unpackbits(self.packed[expert][tensor][start // 8:(stop + 7) // 8], count=stop - start)
        out = torch.empty(stop - start, dtype=self.dtype) if out is None else out
        return out.copy_(torch.from_numpy(bits))

    def dropped(self, expert: int, tensor: int, start: int, stop: int) -> torch.Tensor:
        """The study's torch.bernoulli values (1 = dropped) for entries [start, stop) of a tensor."""
        return 1 - self.keep(expert, tensor, start, stop)

    def nbytes(self) -> int:
        return sum(p.nbytes for per_tensor in self.packed for p in per_tensor)
