"""Merge config entries to checked plans and grid points (no model loaded, no torch imported)."""

from __future__ import annotations

import itertools
import re

from mixmerge.merging import catalog  # noqa: F401  (registers every method)
from mixmerge.merging.params import PARAM_DEFAULTS, PARAMS
from mixmerge.merging.registry import METHODS, get_method

__all__ = ["METHODS", "PARAM_DEFAULTS", "check_param", "resolve_params", "merge_plan", "expand_merges"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_param(method: str, name: str, value, where: str) -> None:
    """Raise ValueError (naming `where`) unless `value` is valid for parameter `name` of `method`."""
    m = get_method(method)
    if name not in m.param_names:
        raise ValueError(f"{where}: unknown parameter {name!r} for method {method!r} "
                         f"(it takes {', '.join(m.param_names) or 'none'})")
    PARAMS[name].check(value, where)


def resolve_params(method: str, params: dict | None, n_experts: int | None = None) -> dict:
    """Defaults filled in and every value checked; `weight` may also be a list, one per expert."""
    return get_method(method).resolve(params, n_experts)


def _fmt(value) -> str:
    return f"{float(value):g}"


def _axes(method: str, params, where: str) -> list[tuple[str, list[float], bool]]:
    """Each given parameter as (name, values, swept): a list with more than one value is a sweep axis."""
    if not isinstance(params, dict):
        raise ValueError(f"{where}: expected a mapping")
    axes = []
    for pname, value in params.items():
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if not values:
            raise ValueError(f"{where}.{pname}: empty list")
        for v in values:
            check_param(method, pname, v, f"{where}.{pname}")
        axes.append((pname, [float(v) for v in values], len(values) > 1))
    return axes


def _experts(value, where: str) -> list[str] | None:
    """A merge's own experts, as domain names (None: every domain's expert)."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) < 2 or not all(isinstance(d, str) for d in value):
        raise ValueError(f"{where}: expected a list of at least two domain names")
    if len(set(value)) != len(value):
        raise ValueError(f"{where}: a domain is listed twice: {value}")
    return list(value)


def merge_plan(name: str, spec, n_experts: int | None = None) -> dict[str, dict]:
    """One `merges:` entry, checked completely without loading anything, as its grid points:
    {node_suffix: {"method", "params" (complete), "family", "engine", "description"}}.

    `spec` is {"method": <name>, "params": {param: value or list}, "experts": [domain, ...] (optional: the
    domains whose experts it merges, default all)}; a list with more than one value is a
    sweep axis (cartesian product) and each point's suffix is the name followed by "-<param><value>" per
    swept parameter (e.g. "ta-lambda0.5"). Errors are ValueErrors naming the key, e.g.
    "merges.ties.params.densty: unknown parameter ...". With `n_experts`, each point's params are also
    resolved for that many experts."""
    where = f"merges.{name}"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{where}: a merge name must match {_NAME.pattern}")
    if not isinstance(spec, dict) or "method" not in spec:
        raise ValueError(f"{where}: expected a mapping with a 'method' key")
    extra = set(spec) - {"method", "params", "experts"}
    if extra:
        raise ValueError(f"{where}: unknown keys {sorted(extra)}")
    method = get_method(spec["method"], f"{where}.method")
    experts = _experts(spec.get("experts"), f"{where}.experts")
    axes = _axes(method.name, spec.get("params") or {}, f"{where}.params")
    plan: dict[str, dict] = {}
    for combo in itertools.product(*(values for _, values, _ in axes)):
        suffix = name + "".join(f"-{p}{_fmt(v)}" for (p, _, swept), v in zip(axes, combo) if swept)
        if suffix in plan:
            raise ValueError(f"{where}: grid point {suffix!r} defined twice")
        point = {p.name: p.default for p in method.params}
        point.update({p: v for (p, _, _), v in zip(axes, combo)})
        if n_experts is not None:
            point = method.resolve(point, n_experts, f"{where}.params")
        engine = method.record()["engine"]
        plan[suffix] = {"method": method.name, "params": point, "family": method.family, "engine": engine,
                        "description": method.description}
        if experts is not None:
            plan[suffix]["experts"] = experts
    return plan


def expand_merges(merges_cfg: dict) -> dict[str, dict]:
    """Config block -> {node_suffix: {"method": str, "params": {...}}}, plus "experts": [domain, ...] for a merge
    of named experts, one entry per grid point (see merge_plan; params come back complete, defaults filled in)."""
    out: dict[str, dict] = {}
    for name, entry in (merges_cfg or {}).items():
        for suffix, point in merge_plan(name, entry).items():
            if suffix in out:
                raise ValueError(f"merges.{name}: grid point {suffix!r} defined twice")
            out[suffix] = {key: point[key] for key in ("method", "params", "experts") if key in point}
    return out
