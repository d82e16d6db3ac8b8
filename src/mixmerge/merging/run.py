"""Merge nodes of the grid: run any registered method on checkpoint directories or on state dicts.

Public API: METHODS, expand_merges, merge_plan, run_merge_node (and merge_in_memory for small state
dicts). Stock methods run mergekit as is; the study-exact ones run on the streaming engine (study.py),
with the same arithmetic. See study.md Appendix C for the semantics.
"""

from __future__ import annotations

import json
import shutil
import time
from importlib.metadata import version
from pathlib import Path
from typing import Sequence

import yaml

from mixmerge import atomic
from mixmerge.merging.methods import METHODS, PARAM_DEFAULTS, expand_merges, merge_plan, resolve_params
from mixmerge.merging.registry import RunOptions, get_method

__all__ = ["METHODS", "PARAM_DEFAULTS", "expand_merges", "merge_plan", "resolve_params", "run_merge_node",
           "merge_in_memory"]

TOKENIZER_FILES = ("tokenizer_config.json", "special_tokens_map.json", "tokenizer.json",
                   "tokenizer.model", "added_tokens.json", "vocab.json", "merges.txt",
                   "chat_template.jinja", "chat_template.json", "generation_config.json")


def merge_in_memory(method: str, params: dict | None, base: dict, experts: Sequence[dict], seed: int = 0,
                    dtype: str = "float32", device: str = "cpu") -> tuple[dict, dict]:
    """The same merge as run_merge_node on state dicts (tensor order = parameter order).
    Returns (merged tensors in the compute dtype, details)."""
    m = get_method(method)
    return m.merge_state_dicts(base, list(experts), m.resolve(params, len(experts)),
                               RunOptions(seed, dtype, None, device).check())


def _write_config(out: Path, method, cfg: dict) -> None:
    with open(out / "mergekit_config.yml", "w") as fh:
        if method.family != "mergekit":
            fh.write(f"# {method.name} runs on mixmerge's streaming engine, not mergekit (the arithmetic is "
                     "mergekit's where it has it); merge_record.json has the details\n")
        yaml.safe_dump(cfg, fh, sort_keys=False)


def run_merge_node(method: str, params: dict, base: str, experts: list[str], out_dir: str,
                   seed: int = 0, dtype: str = "float32", out_dtype: str | None = None,
                   device: str = "cpu") -> dict:
    """Merge the expert HF checkpoint dirs onto base and write an HF checkpoint into out_dir, with
    out_dir/mergekit_config.yml (the config run, or for study methods its description) and
    out_dir/merge_record.json. `device`: where the arithmetic runs ("cpu", "cuda", "cuda:1"). Returns the
    record. Never touches the network."""
    start = time.perf_counter()
    m = get_method(method)
    params = m.resolve(params, len(experts))
    opts = RunOptions(seed, dtype, out_dtype, device).check()
    record = {**m.record(), "params": params, "seed": seed, "dtype": dtype, "out_dtype": out_dtype or dtype,
              "device": device, "base": str(base), "experts": [str(e) for e in experts],
              "mergekit_version": version("mergekit")}
    # Written under out_dir.partial and renamed when complete: a killed merge never looks finished.
    with atomic.partial_dir(out_dir) as out:
        fields, cfg = m.merge_checkpoints(str(base), [str(e) for e in experts], out, params, opts)
        record.update(fields)
        _write_config(out, m, cfg)
        for name in TOKENIZER_FILES:
            if (Path(base) / name).exists():
                shutil.copy(Path(base) / name, out / name)
        record["wall_seconds"] = round(time.perf_counter() - start, 3)
        (out / "merge_record.json").write_text(json.dumps(record, indent=1))
    return record
