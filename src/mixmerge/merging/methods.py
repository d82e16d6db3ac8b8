"""The merge methods the grid accepts, their parameters, and config expansion into grid points."""

from __future__ import annotations

import itertools
import numbers
import re
from dataclasses import dataclass

PARAM_DEFAULTS = {"lambda": 1.0, "density": 0.2, "drop": 0.2, "select_topk": 1.0, "weight": 1.0}


@dataclass(frozen=True)
class MethodInfo:
    family: str            # "mergekit": stock mergekit; "study": the study's exact semantics
    mergekit_method: str   # the mergekit method that finally runs
    params: tuple[str, ...]
    description: str
    dare: bool = False         # study DARE preprocessing of the experts first
    global_ties: bool = False  # study global-threshold pre-pass -> per-tensor densities


_TA = ("lambda", "weight")
METHODS: dict[str, MethodInfo] = {
    "average": MethodInfo("mergekit", "linear", ("weight",),
                          "mean of the experts (mergekit linear, normalized); equals the study's average"),
    "task_arithmetic": MethodInfo("mergekit", "task_arithmetic", _TA,
                                  "base + lambda * sum of task vectors; equals the study's TA"),
    "ta_dare": MethodInfo("mergekit", "dare_linear", _TA + ("drop",),
                          "mergekit dare_linear: its own RNG order and L1-norm rescale, not the study's 1/(1-p)"),
    "ties": MethodInfo("mergekit", "ties", _TA + ("density",),
                       "mergekit ties: trims per tensor, not per expert over the whole model"),
    "ties_dare": MethodInfo("mergekit", "dare_ties", _TA + ("drop",),
                            "mergekit dare_ties (normalize on): random drop + sign election, no magnitude trim"),
    "sce": MethodInfo("mergekit", "sce", ("select_topk",),
                      "mergekit sce: uniform weights whenever the weight sum is below 1e-6"),
    "average_study": MethodInfo("study", "linear", ("weight",), "alias of average (already exact)"),
    "task_arithmetic_study": MethodInfo("study", "task_arithmetic", _TA,
                                        "alias of task_arithmetic (already exact)"),
    "ta_dare_study": MethodInfo("study", "task_arithmetic", _TA + ("drop",),
                                "study DARE (seeded Bernoulli drop, / (1-p)) then task arithmetic",
                                dare=True),
    "ties_study": MethodInfo("study", "ties", _TA + ("density",),
                             "study TIES: global per-expert magnitude threshold, elect, disjoint mean",
                             global_ties=True),
    "ties_dare_study": MethodInfo("study", "ties", _TA + ("drop", "density"),
                                  "study DARE then study global-threshold TIES",
                                  dare=True, global_ties=True),
    "sce_study": MethodInfo("study", "sce_study", ("select_topk",),
                            "SCE with the study's fallback: uniform weights only if the sum is exactly 0"),
}

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_param(method: str, name: str, value, where: str) -> None:
    """Raise ValueError (naming `where`) unless `value` is valid for parameter `name` of `method`."""
    if name not in METHODS[method].params:
        raise ValueError(f"{where}: method {method!r} takes no parameter {name!r} "
                         f"(it takes {', '.join(METHODS[method].params)})")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{where}: {name} must be a number, got {value!r}")
    value = float(value)
    bounds = {"density": (0.0, 1.0, False, True), "drop": (0.0, 1.0, True, False),
              "select_topk": (0.0, 1.0, False, True)}
    if name in bounds:
        lo, hi, lo_in, hi_in = bounds[name]
        ok = (value > lo or (lo_in and value == lo)) and (value < hi or (hi_in and value == hi))
        if not ok:
            interval = f"{'[' if lo_in else '('}{lo}, {hi}{']' if hi_in else ')'}"
            raise ValueError(f"{where}: {name}={value} outside {interval}")


def resolve_params(method: str, params: dict | None, n_experts: int | None = None) -> dict:
    """Defaults filled in and every value checked; `weight` may also be a list, one per expert."""
    if method not in METHODS:
        raise ValueError(f"unknown merge method {method!r}; known: {', '.join(METHODS)}")
    resolved = {p: PARAM_DEFAULTS[p] for p in METHODS[method].params}
    for name, value in (params or {}).items():
        if name == "weight" and isinstance(value, (list, tuple)):
            if n_experts is not None and len(value) != n_experts:
                raise ValueError(f"params.weight: {len(value)} values for {n_experts} experts")
            for v in value:
                check_param(method, name, v, "params.weight")
            resolved[name] = [float(v) for v in value]
        else:
            check_param(method, name, value, f"params.{name}")
            resolved[name] = float(value)
    return resolved


def _fmt(value) -> str:
    return f"{float(value):g}"


def expand_merges(merges_cfg: dict) -> dict[str, dict]:
    """Config block -> {node_suffix: {"method": str, "params": {...}}}, one entry per grid point.

    `merges_cfg` maps a name to {"method": <method>, "params": {name: value-or-list}}. A list with
    more than one value is a sweep axis (cartesian product); each grid point's suffix is the name
    followed by "-<param><value>" for each swept parameter (e.g. "ta-lambda0.5"); single-valued
    entries keep the plain name. Params come back complete (defaults filled in)."""
    out: dict[str, dict] = {}
    for name, entry in (merges_cfg or {}).items():
        where = f"merges.{name}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"{where}: a merge name must match {_NAME.pattern}")
        if not isinstance(entry, dict) or "method" not in entry:
            raise ValueError(f"{where}: expected a mapping with a 'method' key")
        extra = set(entry) - {"method", "params"}
        if extra:
            raise ValueError(f"{where}: unknown keys {sorted(extra)}")
        method = entry["method"]
        if method not in METHODS:
            raise ValueError(f"{where}.method: unknown merge method {method!r}; known: {', '.join(METHODS)}")
        params = entry.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError(f"{where}.params: expected a mapping")
        axes = []
        for pname, value in params.items():
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            if not values:
                raise ValueError(f"{where}.params.{pname}: empty list")
            for v in values:
                check_param(method, pname, v, f"{where}.params.{pname}")
            axes.append((pname, [float(v) for v in values], len(values) > 1))
        for combo in itertools.product(*(values for _, values, _ in axes)):
            suffix = name + "".join(f"-{p}{_fmt(v)}" for (p, _, swept), v in zip(axes, combo) if swept)
            if suffix in out:
                raise ValueError(f"{where}: grid point {suffix!r} defined twice")
            point = {p: PARAM_DEFAULTS[p] for p in METHODS[method].params}
            point.update({p: v for (p, _, _), v in zip(axes, combo)})
            out[suffix] = {"method": method, "params": point}
    return out
