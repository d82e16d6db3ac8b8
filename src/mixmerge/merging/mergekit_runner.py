"""Stock mergekit methods: the mergekit config built from our parameters, run as mergekit runs it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from mixmerge.merging.params import expert_weights
from mixmerge.merging.registry import MergeMethod, RunOptions, torch_dtype


@dataclass(frozen=True)
class MergekitMethod(MergeMethod):
    """A mergekit method unchanged; `shared` and `per_model` map our parameters to mergekit's."""

    mergekit_method: str = ""
    shared: Callable[[dict], dict] = lambda p: {}
    per_model: Callable[[dict], dict] = lambda p: {}
    uses_base: bool = True

    def mergekit_parameters(self, params: dict, n: int) -> tuple[dict, list[dict]]:
        """(global parameters, one parameter dict per expert), in mergekit's names."""
        weights = expert_weights(params, n) if "weight" in self.param_names else [None] * n
        per_model = [({"weight": w} if w is not None else {}) | self.per_model(params) for w in weights]
        return self.shared(params), per_model

    def record(self) -> dict:
        return {**super().record(), "engine": "mergekit", "mergekit_method": self.mergekit_method}

    def config(self, base: str, experts: Sequence[str], params: dict, opts: RunOptions) -> dict:
        shared, per_model = self.mergekit_parameters(params, len(experts))
        cfg: dict = {"merge_method": self.mergekit_method}
        if self.uses_base:
            cfg["base_model"] = str(base)
        cfg.update(models=[{"model": str(p), "parameters": m} for p, m in zip(experts, per_model)],
                   parameters=shared, dtype=opts.dtype)
        if opts.out_dtype:
            cfg["out_dtype"] = opts.out_dtype
        return cfg

    def merge_checkpoints(self, base: str, experts: Sequence[str], out: Path, params: dict,
                          opts: RunOptions) -> tuple[dict, dict]:
        from mergekit.config import MergeConfiguration
        from mergekit.merge import MergeOptions, run_merge

        cfg = self.config(base, experts, params, opts)
        options = MergeOptions(write_model_card=False, copy_tokenizer=True, random_seed=opts.seed,
                               quiet=True, allow_crimes=False, device=opts.device)
        run_merge(MergeConfiguration.model_validate(cfg), str(out), options)
        return {}, cfg

    def merge_state_dicts(self, base, experts, params, opts):
        import torch
        from mergekit.merge_methods import merge_tensors

        shared, per_model = self.mergekit_parameters(params, len(experts))
        per_input = {k: [m[k] for m in per_model] for k in per_model[0]}
        dt = torch_dtype(opts.dtype)
        torch.manual_seed(opts.seed)   # mergekit's random methods draw from the global generator
        merged = {}
        for name in base:
            tensors = [e[name].to(opts.device) for e in experts]
            if self.uses_base:
                merged[name] = merge_tensors([base[name].to(opts.device)] + tensors, self.mergekit_method,
                                             parameters={**shared, **per_input}, base_index=0, dtype=dt)
            else:
                merged[name] = merge_tensors(tensors, self.mergekit_method, parameters={**shared, **per_input},
                                             dtype=dt)
        return {k: v.cpu() for k, v in merged.items()}, {}
