"""Every merge method the grid accepts, one object each: stock mergekit ones, then the study-exact ones."""

from __future__ import annotations

from mixmerge.merging.mergekit_runner import MergekitMethod
from mixmerge.merging.params import DENSITY, DROP, LAMBDA, SELECT_TOPK, WEIGHT
from mixmerge.merging.registry import register
from mixmerge.merging.stream_runner import StudyMethod

_TA = (LAMBDA, WEIGHT)


def _ta(p: dict) -> dict:
    return {"lambda": p["lambda"], "normalize": False}


def _ties(p: dict) -> dict:
    return {"lambda": p["lambda"], "normalize": True}


def _dare(p: dict) -> dict:
    return {"density": 1.0 - p["drop"]}


# ---------------------------------------------------------------- stock mergekit
register(MergekitMethod(
    "average", "mergekit", "mean of the experts (mergekit linear, normalized); equals the study's average",
    (WEIGHT,), mergekit_method="linear", shared=lambda p: {"normalize": True}, uses_base=False))
register(MergekitMethod(
    "task_arithmetic", "mergekit", "base + lambda * sum of task vectors; equals the study's TA",
    _TA, mergekit_method="task_arithmetic", shared=_ta))
register(MergekitMethod(
    "ta_dare", "mergekit", "mergekit dare_linear: its own RNG order and L1-norm rescale, not the study's 1/(1-p)",
    _TA + (DROP,), mergekit_method="dare_linear", shared=lambda p: {**_ta(p), "rescale": True}, per_model=_dare))
register(MergekitMethod(
    "ties", "mergekit", "mergekit ties: trims per tensor, not per expert over the whole model",
    _TA + (DENSITY,), mergekit_method="ties", shared=_ties, per_model=lambda p: {"density": p["density"]}))
register(MergekitMethod(
    "ties_dare", "mergekit", "mergekit dare_ties (normalize on): random drop + sign election, no magnitude trim",
    _TA + (DROP,), mergekit_method="dare_ties", shared=lambda p: {**_ties(p), "rescale": True}, per_model=_dare))
register(MergekitMethod(
    "sce", "mergekit", "mergekit sce: uniform weights whenever the weight sum is below 1e-6",
    (SELECT_TOPK,), mergekit_method="sce", shared=lambda p: {"select_topk": p["select_topk"]}))

# ---------------------------------------------------------------- the study's exact semantics (Appendix C)
register(StudyMethod(
    "average_study", "study", "mean of the experts (streamed; bitwise equal to average)",
    (WEIGHT,), runner="run_average"))
register(StudyMethod(
    "task_arithmetic_study", "study", "base + lambda * sum of task vectors (streamed; bitwise equal to "
    "task_arithmetic)", _TA, runner="run_task_arithmetic"))
register(StudyMethod(
    "ta_dare_study", "study", "study DARE (seeded Bernoulli drop, / (1-p)) then task arithmetic",
    _TA + (DROP,), runner="run_task_arithmetic", dare=True))
register(StudyMethod(
    "ties_study", "study", "study TIES: global per-expert magnitude threshold, elect, disjoint mean",
    _TA + (DENSITY,), runner="run_ties"))
register(StudyMethod(
    "ties_dare_study", "study", "study DARE then study global-threshold TIES",
    _TA + (DROP, DENSITY), runner="run_ties", dare=True))
register(StudyMethod(
    "sce_study", "study", "study SCE: weights sum(d^2)/numel in double, uniform only if their sum is exactly 0",
    (SELECT_TOPK,), runner="run_sce"))
