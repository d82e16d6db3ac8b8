"""The study's exact merges (study.md Appendix C) as streaming passes: average, TA, global TIES, SCE.

Each runner reads a `Stream` (DARE, when the method asks for it, is already applied to the experts),
writes merged chunks to a sink (CheckpointWriter or DictSink) and returns details for the record.
The arithmetic is mergekit's op for op (kernels.py), so the results equal the old mergekit-based
pipeline bit for bit; SCE weights follow the study's code (Python doubles).
"""

from __future__ import annotations

import time

import torch

from mixmerge.merging import fastops, kernels
from mixmerge.merging.params import expert_weights
from mixmerge.merging.selection import TiesPrepass, global_thresholds
from mixmerge.merging.stream import Chunk, Stream


def run_average(stream: Stream, params: dict, sink) -> dict:
    """Mean of the experts (mergekit linear, normalize on; equals the study's average)."""
    weights = expert_weights(params, stream.n_experts)
    for _ in stream.map(lambda ch: sink.write(ch.name, kernels.linear(ch.experts, weights), ch.start)):
        pass
    return {}


def run_task_arithmetic(stream: Stream, params: dict, sink) -> dict:
    """base + lambda * sum_i w_i delta_i (mergekit task_arithmetic; the study's TA)."""
    weights = expert_weights(params, stream.n_experts)
    lam = params["lambda"]
    for _ in stream.map(lambda ch: sink.write(ch.name, fastops.task_arithmetic(ch.base, ch.experts, weights, lam),
                                              ch.start)):
        pass
    return {}


# ---------------------------------------------------------------- TIES
def _ties_chunk(ch: Chunk, pre: TiesPrepass, weights: list[float], lam: float, sink):
    """Merge one chunk with the weights as given; return its elected-sign census and, for the entries the
    tie rule could change (elected sum exactly 0, a zero divisor), the values they take when the
    negative sign wins (the merge with every weight negated, op for op)."""
    nothing = [pre.keeps_nothing(i, ch.tensor) for i in range(len(ch.experts))]
    trimmed, kept = fastops.ties_trim(ch.base, ch.experts, pre.thresholds, nothing)
    merged, elected, cancel = fastops.ties_merge(ch.base, trimmed, weights, lam)
    sink.write(ch.name, merged, ch.start)
    zero = elected == 0
    zero_sum = zero & (kept > 0)
    nonzero = torch.count_nonzero(elected)
    balance = torch.sign(elected).sum().to(torch.int64)
    census = torch.stack([(nonzero + balance) // 2, (nonzero - balance) // 2, torch.count_nonzero(zero_sum)])
    touched = zero_sum
    if bool((ch.base == 0).any()):
        touched = touched | (zero & (ch.base == 0) & torch.signbit(ch.base))
    if cancel is not None:
        touched = touched | cancel
    index = touched.nonzero().reshape(-1)
    if not index.numel():
        return census, None
    flipped = -trimmed[:, index]
    w = kernels.weight_column(weights, flipped)
    alt, _ = kernels.ties_combine(ch.base[index], flipped, -w, kernels.expert_sum(flipped), lam)
    return census, (ch.name, (index + ch.start).cpu(), alt.cpu())


def _ties_pass(stream: Stream, pre: TiesPrepass, weights: list[float], lam: float, sink) -> list:
    """The merge pass; the study's census goes into `pre`, the tie-rule patches come back."""
    census = torch.zeros(3, dtype=torch.int64, device=stream.device)
    patches = []
    for counts, patch in stream.map(lambda ch: _ties_chunk(ch, pre, weights, lam, sink)):
        census += counts
        if patch is not None:
            patches.append(patch)
    pre.elected_positive, pre.elected_negative, pre.zero_sum_entries = (int(c) for c in census.cpu())
    return patches


def _tie_rule(pre: TiesPrepass, details: dict) -> bool:
    """The study gives an exactly-zero elected sum the global majority sign; mergekit's election gives it +1.
    Negating every weight makes it elect the negative sign there and leaves every other entry bit-identical
    (normalize divides by the equally negated weight sum), so the negative case is the merge with negated
    weights at the patched entries. A zero global majority cannot be expressed: recorded as inexact."""
    sign = pre.majority_sign
    details.update(elected_positive=pre.elected_positive, elected_negative=pre.elected_negative,
                   zero_sum_entries=pre.zero_sum_entries, global_majority_sign=sign)
    details["exact"] = not (pre.zero_sum_entries and sign == 0)
    if not details["exact"]:
        details.setdefault("notes", []).append(
            f"{pre.zero_sum_entries} entries have an exactly-zero elected sum and the global majority "
            "sign is 0: the study zeroes them, this merge takes the + experts there")
    flip = bool(pre.zero_sum_entries) and sign < 0
    details["weights_negated_for_tie_rule"] = flip
    return flip


def _ties_details(pre: TiesPrepass, density: float, details: dict) -> None:
    details.update(
        tensor_count=len(pre.numel), delta_entries_per_expert=pre.n_entries, kth=pre.k,
        thresholds=pre.thresholds, zero_delta_fraction=pre.zero_fraction, trims_nothing=pre.trims_nothing,
        kept_fraction=[k / pre.n_entries if pre.n_entries else 1.0 for k in pre.kept])
    notes = details.setdefault("notes", [])
    for i, (frac, nothing) in enumerate(zip(pre.zero_fraction, pre.trims_nothing)):
        if nothing and density < 1:
            notes.append(f"expert {i}: {frac:.1%} of its delta entries are exactly zero "
                         f"(>= {1 - density:.0%}), so the study's TIES trims nothing for it")


def run_ties(stream: Stream, params: dict, sink) -> dict:
    """The study's TIES: global per-expert magnitude threshold, sum-sign election (an exactly-zero sum takes
    the global majority sign), disjoint weighted mean, lambda. Three streamed passes."""
    details: dict = {}
    started = time.perf_counter()
    pre = global_thresholds(stream, params["density"])
    details["prepass_seconds"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    patches = _ties_pass(stream, pre, expert_weights(params, stream.n_experts), params["lambda"], sink)
    flip = _tie_rule(pre, details)
    for name, index, values in patches if flip else []:
        sink.patch(name, index, values)
    details["merge_pass_seconds"] = round(time.perf_counter() - started, 3)
    details["patched_entries"] = sum(len(index) for _, index, _ in patches) if flip else 0
    _ties_details(pre, params["density"], details)
    return details


# ---------------------------------------------------------------- SCE
def _sce_tensor_weights(stream: Stream, t: int, select_topk: float) -> torch.Tensor:
    """One tensor's SCE weights from whole tensors, on the CPU (the study's float32 sums, exactly)."""
    cpu = torch.device("cpu")
    if select_topk < 1:
        whole = stream.whole(t, cpu)
        deltas = torch.stack([e - whole.base for e in whole.experts], dim=0)
        mask = kernels.sce_select(deltas, select_topk)
        scores = [kernels.sce_score(d * mask) for d in deltas]
    else:
        b = stream.whole(t, cpu, experts=False).base
        scores = stream.parallel(lambda i: fastops.sce_score_(torch.sub(stream.expert(t, i, b), b)),
                                 range(stream.n_experts))
    return kernels.sce_weights(scores, stream.dtype)


def run_sce(stream: Stream, params: dict, sink) -> dict:
    """The study's SCE per tensor: weights sum(d^2)/numel in double (selection, if any, only shapes the
    weights, as in the study's code), majority-sign erase, weighted disjoint mean."""
    weights = [_sce_tensor_weights(stream, t, params["select_topk"]) for t in range(len(stream.names))]
    for _ in stream.map(lambda ch: sink.write(ch.name, kernels.sce(ch.base, ch.experts, weights[ch.tensor]),
                                              ch.start)):
        pass
    return {}
