"""The merge-method registry: what a method object is (name, parameters, how it runs) and the name lookup."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from mixmerge.merging.params import Param

if TYPE_CHECKING:   # torch is imported only when a merge runs, not to validate a config
    import torch

DTYPES = ("float32", "bfloat16", "float16")


def torch_dtype(name: str) -> "torch.dtype":
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {name!r}")
    import torch

    return getattr(torch, name)


@dataclass(frozen=True)
class RunOptions:
    """How a merge runs: seed (random methods), compute dtype, output dtype, device ('cpu', 'cuda', ...)."""

    seed: int = 0
    dtype: str = "float32"
    out_dtype: str | None = None
    device: str = "cpu"

    def check(self) -> "RunOptions":
        torch_dtype(self.dtype)
        if self.out_dtype is not None:
            torch_dtype(self.out_dtype)
        return self


@dataclass(frozen=True)
class MergeMethod:
    """One merge method. Subclasses say how it runs on checkpoint directories and on state dicts."""

    name: str
    family: str          # "mergekit": stock mergekit; "study": the study's exact semantics
    description: str
    params: tuple[Param, ...]

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def resolve(self, params: dict | None, n_experts: int | None = None, where: str = "params") -> dict:
        """Every parameter with its default filled in and every given value checked (ValueError naming the
        key `where.<param>`); `weight` may be a list, one value per expert."""
        if params is not None and not isinstance(params, dict):
            raise ValueError(f"{where}: expected a mapping")
        specs = {p.name: p for p in self.params}
        resolved = {p.name: p.default for p in self.params}
        for key, value in (params or {}).items():
            if key not in specs:
                raise ValueError(f"{where}.{key}: unknown parameter {key!r} for method {self.name!r} "
                                 f"(it takes {', '.join(self.param_names) or 'none'})")
            resolved[key] = specs[key].resolve(value, f"{where}.{key}", n_experts)
        return resolved

    def record(self) -> dict:
        """What the merge record says about the method itself."""
        return {"method": self.name, "family": self.family, "description": self.description}

    def merge_checkpoints(self, base: str, experts: Sequence[str], out: Path, params: dict,
                          opts: RunOptions) -> tuple[dict, dict]:
        """Write the merged checkpoint (tensors and config.json) into `out`. Returns (record fields,
        the config to save as mergekit_config.yml)."""
        raise NotImplementedError

    def merge_state_dicts(self, base: dict[str, torch.Tensor], experts: Sequence[dict[str, torch.Tensor]],
                          params: dict, opts: RunOptions) -> tuple[dict[str, torch.Tensor], dict]:
        """The same merge on state dicts (tensor order = parameter order). Returns (merged, details)."""
        raise NotImplementedError


METHODS: dict[str, MergeMethod] = {}


def register(method: MergeMethod) -> MergeMethod:
    if method.name in METHODS:
        raise ValueError(f"merge method {method.name!r} registered twice")
    METHODS[method.name] = method
    return method


def get_method(name, where: str = "method") -> MergeMethod:
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"{where}: unknown merge method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]
