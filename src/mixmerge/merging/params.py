"""Merge parameters: each one's default, valid range and check (shared by every merge method)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """One numeric merge parameter. `lo`/`hi` bound it (None: unbounded); `per_expert`: may be a list."""

    name: str
    default: float
    doc: str
    lo: float | None = None
    hi: float | None = None
    lo_closed: bool = True
    hi_closed: bool = True
    per_expert: bool = False

    def interval(self) -> str:
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        return f"{'[' if self.lo_closed and self.lo is not None else '('}{lo}, {hi}" \
               f"{']' if self.hi_closed and self.hi is not None else ')'}"

    def check(self, value, where: str) -> float:
        """The value as a float; ValueError naming `where` unless it is a finite number in range."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{where}: {self.name} must be a finite number, got {value!r}")
        value = float(value)
        low_ok = self.lo is None or value > self.lo or (self.lo_closed and value == self.lo)
        high_ok = self.hi is None or value < self.hi or (self.hi_closed and value == self.hi)
        if not (low_ok and high_ok):
            raise ValueError(f"{where}: {self.name}={value:g} outside {self.interval()}")
        return value

    def resolve(self, value, where: str, n_experts: int | None = None) -> float | list[float]:
        """A checked value; a per-expert parameter may also be a list, one value per expert."""
        if self.per_expert and isinstance(value, (list, tuple)):
            if not value:
                raise ValueError(f"{where}: empty list")
            if n_experts is not None and len(value) != n_experts:
                raise ValueError(f"{where}: {len(value)} values for {n_experts} experts")
            return [self.check(v, where) for v in value]
        return self.check(value, where)


LAMBDA = Param("lambda", 1.0, "scale of the merged task vector")
WEIGHT = Param("weight", 1.0, "each expert's weight (one value, or a list with one per expert)", per_expert=True)
DENSITY = Param("density", 0.2, "fraction of each expert's delta entries TIES keeps", 0.0, 1.0, lo_closed=False)
DROP = Param("drop", 0.2, "DARE drop probability p (kept entries are scaled by 1/(1-p))", 0.0, 1.0,
             hi_closed=False)
SELECT_TOPK = Param("select_topk", 1.0, "SCE: fraction of highest-variance positions selected", 0.0, 1.0,
                    lo_closed=False)

PARAMS: dict[str, Param] = {p.name: p for p in (LAMBDA, WEIGHT, DENSITY, DROP, SELECT_TOPK)}
PARAM_DEFAULTS: dict[str, float] = {name: p.default for name, p in PARAMS.items()}


def expert_weights(params: dict, n: int) -> list[float]:
    """The per-expert weights of resolved params (1.0 each when the method takes no weight)."""
    w = params.get("weight", 1.0)
    return [float(v) for v in w] if isinstance(w, list) else [float(w)] * n
