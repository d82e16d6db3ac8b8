"""The streaming merge engine: base and expert chunks, read range by range, on the compute device.

A `Stream` walks the merged tensors in parameter order and each tensor in flat chunks of `chunk`
entries, reading the same range of the base and of every expert (cast to the compute dtype, moved to
the device, with the study's DARE applied to the experts when asked). Memory stays at a few chunks
per model whatever the model size; every kernel is elementwise across positions, so chunking never
changes a result. `map` runs a function on every chunk in `workers` threads, each chunk's torch ops
on one thread (no OpenMP barriers, which stall badly on a shared or oversubscribed machine). Work
that needs a whole tensor (SCE weights) asks for it with `whole`.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence, TypeVar

import torch

from mixmerge.merging import fastops
from mixmerge.merging.checkpoints import TensorSource
from mixmerge.merging.dare import DareMasks, dare_expert

CHUNK = 1 << 18   # entries per chunk (a multiple of 8: DARE masks are bit-packed)
R = TypeVar("R")


@dataclass
class Chunk:
    """One flat range [start, stop) of tensor `name` (index `tensor` in the stream's order)."""

    name: str
    tensor: int
    start: int
    stop: int
    numel: int
    base: torch.Tensor
    experts: list[torch.Tensor]


@contextlib.contextmanager
def _torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Stream:
    base: TensorSource
    experts: Sequence[TensorSource]
    names: list[str]
    dtype: torch.dtype = torch.float32
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    chunk: int | None = None      # entries per chunk; None: the module's CHUNK
    dare: DareMasks | None = None
    workers: int | None = None    # threads for `map`; None: torch's thread count on CPU, 2 on a GPU

    def __post_init__(self):
        self.chunk = self.chunk or CHUNK
        if self.chunk % 8:
            raise ValueError("chunk must be a multiple of 8")
        if self.workers is None:
            self.workers = torch.get_num_threads() if self.device.type == "cpu" else 2
        self.numels = [math.prod(self.base.meta(n)[0]) for n in self.names]

    @property
    def n_experts(self) -> int:
        return len(self.experts)

    @property
    def n_entries(self) -> int:
        return sum(self.numels)

    def _load(self, source: TensorSource, name: str, start: int, stop: int, device=None,
              slot: str | None = None) -> torch.Tensor:
        """Entries [start, stop) of `name`; with a `slot`, read into that scratch buffer of this thread."""
        out = None
        if slot is not None:
            out = fastops.scratch(f"read.{slot}", (stop - start,), source.meta(name)[1], torch.device("cpu"))
        return source.get_range(name, start, stop, out).to(device or self.device).to(self.dtype)

    def _expert(self, t: int, i: int, b: torch.Tensor, start: int, stop: int, reuse: bool = False) -> torch.Tensor:
        e = self._load(self.experts[i], self.names[t], start, stop, b.device, f"e{i}" if reuse else None)
        if self.dare is None or t >= len(self.dare.packed[i]):
            return e
        if reuse:
            keep = self.dare.keep(i, t, start, stop, fastops.scratch("keep", (stop - start,), self.dtype,
                                                                     torch.device("cpu")))
            return fastops.dare_expert(b, e, keep.to(b.device), self.dare.drop, i)
        return dare_expert(b, e, self.dare.dropped(i, t, start, stop).to(b.device), self.dare.drop)

    def _ranges(self, tensors: Sequence[int] | None) -> Iterator[tuple[int, int, int]]:
        for t in range(len(self.names)) if tensors is None else tensors:
            for start in range(0, max(self.numels[t], 1), self.chunk):
                yield t, start, min(self.numels[t], start + self.chunk)

    def _chunk(self, t: int, start: int, stop: int, reuse: bool = False) -> Chunk:
        """One chunk; with `reuse`, its tensors live in this thread's buffers until its next chunk."""
        b = self._load(self.base, self.names[t], start, stop, slot="base" if reuse else None)
        experts = [self._expert(t, i, b, start, stop, reuse) for i in range(self.n_experts)]
        return Chunk(self.names[t], t, start, stop, self.numels[t], b, experts)

    def chunks(self, tensors: Sequence[int] | None = None) -> Iterator[Chunk]:
        """Every chunk of the given tensor indices (all by default), in order, in this thread."""
        for t, start, stop in self._ranges(tensors):
            yield self._chunk(t, start, stop)

    def map(self, fn: Callable[[Chunk], R], tensors: Sequence[int] | None = None) -> Iterator[R]:
        """fn(chunk) for every chunk (reading included) on `workers` threads; results in chunk order."""
        work = lambda r: fn(self._chunk(*r, reuse=True))   # noqa: E731
        if self.workers <= 1:
            yield from map(work, self._ranges(tensors))
            return
        with _torch_threads(1), ThreadPoolExecutor(self.workers) as pool:
            pending: deque = deque()
            for r in self._ranges(tensors):
                pending.append(pool.submit(work, r))
                if len(pending) >= 2 * self.workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    def parallel(self, fn: Callable[..., R], items: Sequence) -> list[R]:
        """[fn(item) for item in items] on `workers` threads, each with one torch thread."""
        if self.workers <= 1 or len(items) <= 1:
            return [fn(item) for item in items]
        with _torch_threads(1), ThreadPoolExecutor(min(self.workers, len(items))) as pool:
            return list(pool.map(fn, items))

    def whole(self, t: int, device: torch.device | None = None, experts: bool = True) -> Chunk:
        """Tensor `t` in one piece (shaped as stored), on `device` (default: the stream's); the base only
        when `experts` is false (then `expert` loads them one at a time)."""
        name, numel = self.names[t], self.numels[t]
        b = self._load(self.base, name, 0, numel, device).reshape(self.base.meta(name)[0])
        es = [self.expert(t, i, b) for i in range(self.n_experts)] if experts else []
        return Chunk(name, t, 0, numel, numel, b, es)

    def expert(self, t: int, i: int, b: torch.Tensor) -> torch.Tensor:
        """Expert i's whole tensor t (DARE applied if set), shaped and placed like the whole base `b`."""
        return self._expert(t, i, b.reshape(-1), 0, self.numels[t]).reshape(b.shape)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'cpu', 'cuda', 'cuda:1' ...; a CUDA device must be available."""
    device = torch.device(device or "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"merge device {device} requested but torch sees no CUDA device")
    return device
