"""The study's global TIES threshold: each expert's exact k-th smallest |delta| over the whole model, streamed.

Non-negative floats sort like their bit patterns, so the k-th smallest is found by radix selection:
pass 1 histograms the high 16 bits of every |delta| (one `bincount` per chunk and expert, plus each
tensor's largest |delta|), which names the bin holding the k-th value; pass 2 collects the few entries
in that bin (about 1 in 200) and the exact threshold is a k-th value among them. Two reads of the
checkpoints, memory a few chunks, no Python per element.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mixmerge.merging import fastops
from mixmerge.merging.stream import Chunk, Stream

SELECTION_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_BINS = 1 << 16
_INF_BIN = 0x7F80  # high 16 bits of +inf; NaN patterns lie at or above it


@dataclass
class TiesPrepass:
    """Result of the global-threshold pre-pass, one entry per expert (and the elected-sign census)."""

    n_entries: int
    k: int
    thresholds: list[float]
    zero_fraction: list[float]
    trims_nothing: list[bool]
    kept: list[int] = field(default_factory=list)                  # entries kept (|delta| >= tau)
    tensor_max: list[list[float]] = field(default_factory=list)    # per expert, per tensor: max |delta|
    numel: dict[str, int] = field(default_factory=dict)
    elected_positive: int = 0
    elected_negative: int = 0
    zero_sum_entries: int = 0

    @property
    def majority_sign(self) -> int:
        """The study's fallback sign for entries whose elected sum is exactly 0."""
        diff = self.elected_positive - self.elected_negative
        return (diff > 0) - (diff < 0)

    def keeps_nothing(self, expert: int, tensor: int) -> bool:
        """True when tensor `tensor` has no entry at or above expert's threshold (mergekit: zeros)."""
        return self.tensor_max[expert][tensor] < self.thresholds[expert]


def _bits_to_float(bits: int) -> float:
    return float(torch.tensor([bits], dtype=torch.int32).view(torch.float32)[0])


def _first_reaching(hist: torch.Tensor, k: int) -> tuple[int, int]:
    """Index of the bin holding the k-th smallest item (1-based) and k's rank inside that bin."""
    cumulative = hist.cumsum(0)
    index = int(torch.searchsorted(cumulative, torch.tensor([k], dtype=cumulative.dtype)))
    before = int(cumulative[index - 1]) if index > 0 else 0
    return index, k - before


def _chunk_histograms(ch: Chunk, zero_check: bool):
    n, dev = len(ch.experts), ch.base.device
    hist = torch.empty(n, _BINS, dtype=torch.int64, device=dev)
    zeros = torch.zeros(n, dtype=torch.int64, device=dev)
    top = torch.zeros(n, dtype=torch.int32, device=dev)
    for i, e in enumerate(ch.experts):
        bits = fastops.abs_bits(ch.base, e)
        key = torch.bitwise_right_shift(bits, 16, out=fastops.scratch("sel.key", bits.shape, torch.int32, dev))
        hist[i] = torch.bincount(key, minlength=_BINS)
        if bits.numel():
            top[i] = bits.max()
        if not zero_check or int(hist[i, 0]):
            zeros[i] = torch.count_nonzero(bits == 0)
    return ch.tensor, hist, zeros, top


def _histograms(stream: Stream) -> tuple[torch.Tensor, list[int], list[list[float]]]:
    """Pass 1: per expert, the histogram of the high 16 bits of |delta|, the exact-zero count, and each
    tensor's largest |delta|."""
    n = stream.n_experts
    hist = torch.zeros(n, _BINS, dtype=torch.int64, device=stream.device)
    zeros = torch.zeros(n, dtype=torch.int64, device=stream.device)
    top = torch.zeros(len(stream.names), n, dtype=torch.int32, device=stream.device)
    cpu = stream.device.type == "cpu"
    for t, h, z, m in stream.map(lambda ch: _chunk_histograms(ch, cpu)):
        hist += h
        zeros += z
        torch.maximum(top[t], m, out=top[t])
    hist = hist.cpu()
    if int(hist[:, _INF_BIN:].sum()):
        raise ValueError("a task vector has inf or NaN entries")
    tensor_max = top.cpu().view(torch.float32).T.tolist()
    return hist, zeros.cpu().tolist(), tensor_max


def _chunk_bin(ch: Chunk, targets: dict[int, int]) -> dict[int, torch.Tensor]:
    out = {}
    for i, hi_bin in targets.items():
        bits = fastops.abs_bits(ch.base, ch.experts[i])
        key = torch.bitwise_right_shift(bits, 16, out=fastops.scratch("sel.key", bits.shape, torch.int32,
                                                                      bits.device))
        out[i] = bits[key == hi_bin]
    return out


def _refine(stream: Stream, targets: dict[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """Pass 2: for each expert i with (high bin, rank), the exact threshold bits and how many entries of
    the bin lie below it."""
    inbin: dict[int, list[torch.Tensor]] = {i: [] for i in targets}
    for per_expert in stream.map(lambda ch: _chunk_bin(ch, {i: h for i, (h, _) in targets.items()})):
        for i, values in per_expert.items():
            inbin[i].append(values)
    out = {}
    for i, (_, rank) in targets.items():
        values = torch.cat(inbin[i])
        tau = int(torch.sort(values).values[rank - 1])
        out[i] = (tau, int(torch.count_nonzero(values < tau)))
    return out


def global_thresholds(stream: Stream, density: float) -> TiesPrepass:
    """The study's TIES trim, found exactly: N entries per expert, k = int(N * (1 - density)), tau_i = the
    k-th smallest |delta_i| (kthvalue semantics; 0 when k = 0 or at least k deltas are exactly 0, which
    trims nothing); keep |delta_i| >= tau_i."""
    if stream.dtype not in SELECTION_DTYPES:
        raise ValueError(f"TIES threshold needs a float32/bfloat16/float16 compute dtype, not {stream.dtype}")
    n_entries = stream.n_entries
    k = int(n_entries * (1.0 - density))
    hist, zeros, tensor_max = _histograms(stream)
    targets = {i: _first_reaching(hist[i], k) for i in range(stream.n_experts) if not (k == 0 or zeros[i] >= k)}
    refined = _refine(stream, targets) if targets else {}
    thresholds, kept = [], []
    for i in range(stream.n_experts):
        if i in refined:
            tau, below_in_bin = refined[i]
            thresholds.append(_bits_to_float(tau))
            kept.append(n_entries - int(hist[i, :targets[i][0]].sum()) - below_in_bin)
        else:
            thresholds.append(0.0)
            kept.append(n_entries)
    return TiesPrepass(
        n_entries=n_entries, k=k, thresholds=thresholds,
        zero_fraction=[z / n_entries if n_entries else 0.0 for z in zeros],
        trims_nothing=[t == 0.0 for t in thresholds], kept=kept, tensor_max=tensor_max,
        numel=dict(zip(stream.names, stream.numels)))
