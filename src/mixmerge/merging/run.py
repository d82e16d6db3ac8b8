"""Merge nodes of the grid: stock mergekit methods and the study's exact ones, side by side.

Public API: METHODS, expand_merges, run_merge_node (and merge_in_memory for small state dicts).
Every merge runs through mergekit (imported, never modified); the study-exact methods add a
streaming pre-pass (global TIES threshold), a seeded DARE preprocessing step, or a registered
method (`sce_study`). See study.md Appendix C for the semantics.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Sequence

import torch
import yaml

from mixmerge.merging import study as merge_study
from mixmerge.merging.checkpoints import CheckpointReader, DictSource, ShardedWriter, parameter_order
from mixmerge.merging.methods import METHODS, PARAM_DEFAULTS, MethodInfo, expand_merges, resolve_params

__all__ = ["METHODS", "PARAM_DEFAULTS", "expand_merges", "run_merge_node", "merge_in_memory"]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TOKENIZER_FILES = ("tokenizer_config.json", "special_tokens_map.json", "tokenizer.json",
                   "tokenizer.model", "added_tokens.json", "vocab.json", "merges.txt",
                   "chat_template.jinja", "chat_template.json", "generation_config.json")


def _torch_dtype(name: str) -> torch.dtype:
    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {name!r}")
    return _DTYPES[name]


def _weights(params: dict, n: int) -> list[float]:
    w = params.get("weight", 1.0)
    return list(w) if isinstance(w, list) else [w] * n


def mergekit_parameters(info: MethodInfo, params: dict, n: int) -> tuple[dict, list[dict]]:
    """Our parameter names -> mergekit's: (global parameters, per-expert parameters)."""
    per_model = [{} for _ in range(n)]
    if "weight" in info.params:
        for entry, w in zip(per_model, _weights(params, n)):
            entry["weight"] = w
    method = info.mergekit_method
    if method in ("sce", "sce_study"):
        return {"select_topk": params["select_topk"]}, per_model
    if method == "linear":
        return {"normalize": True}, per_model
    shared = {"lambda": params["lambda"], "normalize": method in ("ties", "dare_ties")}
    if method in ("dare_linear", "dare_ties"):
        shared["rescale"] = True
        for entry in per_model:
            entry["density"] = 1.0 - params["drop"]
    elif method == "ties":
        for entry in per_model:
            entry["density"] = params["density"]
    return shared, per_model


# ----------------------------------------------------------------------------- in memory
def merge_in_memory(method: str, params: dict | None, base: dict[str, torch.Tensor],
                    experts: Sequence[dict[str, torch.Tensor]], seed: int = 0,
                    dtype: str = "float32") -> tuple[dict[str, torch.Tensor], dict]:
    """The same pipeline as run_merge_node on state dicts (tensor order = parameter order).
    Returns (merged tensors, study details)."""
    from mergekit.merge_methods import merge_tensors

    info = METHODS.get(method) or _unknown(method)
    params = resolve_params(method, params, len(experts))
    dt = _torch_dtype(dtype)
    names = list(base)
    details: dict = {}
    if info.dare:
        gen = torch.Generator().manual_seed(seed)
        src = DictSource(base)
        experts = [dict(merge_study.dare_expert_tensors(src, DictSource(e), names, params["drop"], gen, dt))
                   for e in experts]
    shared, per_model = mergekit_parameters(info, params, len(experts))
    per_tensor = [{} for _ in experts]
    if info.global_ties:
        prepass, per_tensor = _ties_study(DictSource(base), [DictSource(e) for e in experts],
                                          names, params, dt, per_model, details)
    torch.manual_seed(seed)  # mergekit's own random methods draw from the global generator
    merged = {}
    for name in names:
        tensors = [e[name] for e in experts]
        model_params = [{**m, **{k: v[name] for k, v in t.items()}} for m, t in zip(per_model, per_tensor)]
        per_input = {k: [m[k] for m in model_params] for k in model_params[0]}
        if info.mergekit_method == "linear":
            merged[name] = merge_tensors(tensors, "linear", parameters={**shared, **per_input}, dtype=dt)
        else:
            merged[name] = merge_tensors([base[name]] + tensors, info.mergekit_method,
                                         parameters={**shared, **per_input}, base_index=0, dtype=dt)
    return merged, details


def _unknown(method: str):
    raise ValueError(f"unknown merge method {method!r}; known: {', '.join(METHODS)}")


def _ties_study(base, experts, names, params, dt, per_model, details):
    """Global-threshold pre-pass; returns (prepass, per-expert {'density': {tensor: density}})
    and records the evidence in `details`. Flips the weight signs when the study's tie rule needs
    the negative sign (see _tie_rule)."""
    weights = [m["weight"] for m in per_model]
    started = time.perf_counter()
    prepass = merge_study.ties_prepass(base, experts, names, params["density"], dt, weights)
    details["prepass_seconds"] = round(time.perf_counter() - started, 3)
    flip = _tie_rule(prepass, details)
    if flip:
        for m in per_model:
            m["weight"] = -m["weight"]
    details.update(
        tensor_count=len(names), delta_entries_per_expert=prepass.n_entries, kth=prepass.k,
        thresholds=prepass.thresholds, zero_delta_fraction=prepass.zero_fraction,
        trims_nothing=prepass.trims_nothing,
        kept_fraction=[sum(k.values()) / prepass.n_entries for k in prepass.kept])
    notes = details.setdefault("notes", [])
    for i, (frac, nothing) in enumerate(zip(prepass.zero_fraction, prepass.trims_nothing)):
        if nothing and params["density"] < 1:
            notes.append(f"expert {i}: {frac:.1%} of its delta entries are exactly zero "
                         f"(>= {1 - params['density']:.0%}), so the study's TIES trims nothing for it")
    return prepass, [{"density": prepass.densities(i)} for i in range(len(experts))]


def _tie_rule(prepass: merge_study.TiesPrepass, details: dict) -> bool:
    """The study gives an exactly-zero elected sum the global majority sign; mergekit gives it +1.
    Negating every weight makes mergekit elect the negative sign there and leaves every other
    entry bit-identical (normalize divides by the equally negated weight sum). Returns whether to
    flip. A zero global majority (as many + as - elected entries) cannot be expressed: recorded."""
    sign = prepass.majority_sign
    details.update(elected_positive=prepass.elected_positive, elected_negative=prepass.elected_negative,
                   zero_sum_entries=prepass.zero_sum_entries, global_majority_sign=sign)
    if prepass.zero_sum_entries and sign == 0:
        details["exact"] = False
        details.setdefault("notes", []).append(
            f"{prepass.zero_sum_entries} entries have an exactly-zero elected sum and the global "
            "majority sign is 0: the study zeroes them, mergekit takes the + experts there")
    else:
        details["exact"] = True
    flip = bool(prepass.zero_sum_entries) and sign < 0
    details["weights_negated_for_tie_rule"] = flip
    return flip


# ----------------------------------------------------------------------------- on disk
def _dare_checkpoints(base: str, experts: Sequence[str], drop: float, seed: int,
                      dt: torch.dtype, work: Path) -> tuple[list[str], list[str]]:
    """Write each expert as base + DARE(delta) (compute dtype) under `work`, as the study does
    before merging. Returns (new expert dirs, parameter order used)."""
    gen = torch.Generator().manual_seed(seed)
    out_dirs = []
    with CheckpointReader(base) as b:
        names = parameter_order(base, b.names)
        for i, expert in enumerate(experts):
            target = work / f"dare-expert{i}"
            writer = ShardedWriter(target)
            with CheckpointReader(expert) as e:
                for name, tensor in merge_study.dare_expert_tensors(b, e, names, drop, gen, dt):
                    writer.add(name, tensor)
                for name in e.names:
                    if name not in names:  # buffers / tied duplicates: copied unchanged
                        writer.add(name, e.get(name))
            writer.close()
            shutil.copy(Path(expert) / "config.json", target / "config.json")
            out_dirs.append(str(target))
    return out_dirs, names


def _mergekit_yaml(info, base, experts, shared, per_model, dtype, out_dtype) -> dict:
    models = [{"model": str(p), "parameters": m} for p, m in zip(experts, per_model)]
    cfg = {"merge_method": info.mergekit_method}
    if info.mergekit_method != "linear":
        cfg["base_model"] = str(base)
    cfg.update(models=models, parameters=shared, dtype=dtype)
    if out_dtype:
        cfg["out_dtype"] = out_dtype
    return cfg


def _filter_list(densities: dict[str, float]) -> list[dict]:
    """mergekit matches a filter by substring, first match wins: longest names first makes every
    full tensor name match only itself."""
    return [{"filter": n, "value": densities[n]} for n in sorted(densities, key=len, reverse=True)]


def run_merge_node(method: str, params: dict, base: str, experts: list[str], out_dir: str,
                   seed: int = 0, dtype: str = "float32", out_dtype: str | None = None) -> dict:
    """Merge the expert HF checkpoint dirs onto base and write an HF checkpoint into out_dir, with
    out_dir/mergekit_config.yml (the mergekit config actually run) and out_dir/merge_record.json.
    Returns the record. Never touches the network."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    start = time.perf_counter()
    info = METHODS.get(method) or _unknown(method)
    params = resolve_params(method, params, len(experts))
    dt = _torch_dtype(dtype)
    if out_dtype is not None:
        _torch_dtype(out_dtype)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = {"method": method, "family": info.family, "mergekit_method": info.mergekit_method,
              "description": info.description, "params": params, "seed": seed, "dtype": dtype,
              "out_dtype": out_dtype or dtype, "base": str(base), "experts": [str(e) for e in experts],
              "mergekit_version": version("mergekit")}
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-work-", dir=out.parent))
    try:
        inputs = list(experts)
        if info.dare:
            inputs, _ = _dare_checkpoints(base, experts, params["drop"], seed, dt, work)
            record["dare"] = {"drop": params["drop"], "rescale": f"/ (1 - {params['drop']})",
                              "generator": f"torch.Generator seeded {seed}, experts in order, "
                                           "parameters in named_parameters() order",
                              "preprocessed_dirs_removed": inputs}
        shared, per_model = mergekit_parameters(info, params, len(experts))
        if info.global_ties:
            details: dict = {}
            with CheckpointReader(base) as b:
                names = parameter_order(base, b.names)
                readers = [CheckpointReader(p) for p in inputs]
                try:
                    _, per_tensor = _ties_study(b, readers, names, params, dt, per_model, details)
                finally:
                    for r in readers:
                        r.close()
            for m, t in zip(per_model, per_tensor):
                m["density"] = _filter_list(t["density"])
            record["ties_global"] = details
            record["zero_delta_fraction"] = details["zero_delta_fraction"]
            record["trims_nothing"] = details["trims_nothing"]
            record["notes"] = details.get("notes", [])
        cfg = _mergekit_yaml(info, base, inputs, shared, per_model, dtype, out_dtype)
        options = MergeOptions(write_model_card=False, copy_tokenizer=True, random_seed=seed,
                               quiet=True, allow_crimes=False)
        run_merge(MergeConfiguration.model_validate(cfg), str(out), options)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(out / "mergekit_config.yml", "w") as fh:
        if info.dare:
            fh.write("# experts were the study-DARE'd copies listed below (temporary, removed)\n")
        yaml.safe_dump(cfg, fh, sort_keys=False)
    for name in TOKENIZER_FILES:
        if (Path(base) / name).exists():
            shutil.copy(Path(base) / name, out / name)
    record["wall_seconds"] = round(time.perf_counter() - start, 3)
    (out / "merge_record.json").write_text(json.dumps(record, indent=1))
    return record
