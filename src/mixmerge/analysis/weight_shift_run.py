"""Runs the weight-shift analysis (``mixmerge.analysis.weight_shift``) on checkpoints: streams every tensor the
SFT checkpoint and all nodes hold, chunk by chunk, and writes ``results/analysis/weight_shift/``: the pair table
(Jaccard, random reference, cosines), the density table (per node and tensor family), the figure and the
settings."""
from __future__ import annotations

import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mixmerge.analysis.weight_shift import (FAMILIES, ShiftStats, changed_mask, cosine_matrix, jaccard,
                                            random_draw, random_reference, tensor_family)
from mixmerge.merging.checkpoints import CheckpointReader
from mixmerge.analysis.outputs import write_outputs


def shared_tensors(sft: CheckpointReader, readers: dict[str, CheckpointReader]) -> tuple[list[str], list[str]]:
    """(names every checkpoint holds with the SFT shape, in SFT order; names left out). A floating tensor whose
    shape differs between nodes is an error: the nodes are not the same architecture."""
    kept, skipped = [], []
    for name in sft.names:
        shape, dtype = sft.meta(name)
        if not dtype.is_floating_point or any(name not in r.names for r in readers.values()):
            skipped.append(name)
            continue
        for node, reader in readers.items():
            if reader.meta(name)[0] != shape:
                raise ValueError(f"{node}: tensor {name} has shape {reader.meta(name)[0]}, SFT has {shape}")
        kept.append(name)
    return kept, skipped


def local_checkpoint(ref: str) -> str:
    """A checkpoint directory as given, or a hub id's weights and config fetched to the HF cache (``sft.path``
    may name the study's released SFT model)."""
    if Path(ref).is_dir():
        return ref
    from huggingface_hub import snapshot_download

    return snapshot_download(ref, allow_patterns=["*.safetensors", "*.json"])


def stream(sft_dir: str, node_dirs: dict[str, str], settings: dict) -> tuple[ShiftStats, list[str]]:
    """Every shared tensor, ``chunk_elements`` flat entries at a time, of SFT and every node."""
    readers = {node: CheckpointReader(path) for node, path in node_dirs.items()}
    sft = CheckpointReader(local_checkpoint(sft_dir))
    try:
        names, skipped = shared_tensors(sft, readers)
        step = int(settings["chunk_elements"])
        acc = ShiftStats(len(readers), settings["projection_dim"], list(settings["projection_seeds"]), step)
        for name in names:
            family = tensor_family(name)
            size = math.prod(sft.meta(name)[0])
            for start in range(0, size, step):
                stop = min(size, start + step)
                base = sft.get_range(name, start, stop).float()
                weights = torch.stack([r.get_range(name, start, stop).float() for r in readers.values()])
                acc.add(family, weights - base, changed_mask(weights, base, settings["eta"]))
                del weights
    finally:
        sft.close()
        for reader in readers.values():
            reader.close()
    return acc, skipped


def pair_table(acc: ShiftStats, nodes: list[str], settings: dict) -> pd.DataFrame:
    """One row per node pair: densities, Jaccard, the random reference (expected and one draw), exact cosines and
    projected cosines (mean and sd over the projection seeds)."""
    density = acc.changed / acc.total
    jac = jaccard(acc.inter, acc.changed)
    raw = cosine_matrix(acc.dot)
    raw_joint = acc.joint_cosines()
    projected = [s.cosines() for s in acc.sketches]
    rows = []
    for i, j in itertools.combinations(range(len(nodes)), 2):
        whole = np.array([p[0][i, j] for p in projected])
        joint = np.array([p[1][i, j] for p in projected])
        rows.append({
            "a": nodes[i], "b": nodes[j], "n_params": acc.total, "density_a": density[i], "density_b": density[j],
            "changed_both": int(acc.inter[i, j]), "jaccard": jac[i, j],
            "random_expected": random_reference(density[i], density[j]),
            "random_draw": random_draw(density[i], density[j], acc.total, settings["reference_seed"] + len(rows)),
            "cosine_exact": raw[i, j], "cosine_exact_joint": raw_joint[i, j],
            "cosine_proj": _mean(whole), "cosine_proj_sd": _sd(whole),
            "cosine_proj_joint": _mean(joint), "cosine_proj_joint_sd": _sd(joint), "projection_seeds": len(whole)})
    return pd.DataFrame(rows)


def density_table(acc: ShiftStats, nodes: list[str]) -> pd.DataFrame:
    rows = []
    for i, node in enumerate(nodes):
        rows.append({"node": node, "family": "all", "n_params": acc.total, "changed": int(acc.changed[i]),
                     "density": acc.changed[i] / acc.total})
        for family in FAMILIES:
            size = acc.family_size[family]
            if size:
                changed = acc.family_changed[family][i]
                rows.append({"node": node, "family": family, "n_params": size, "changed": int(changed),
                             "density": changed / size})
    return pd.DataFrame(rows)


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def _sd(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.std(ddof=1)) if len(finite) > 1 else math.nan


def run_weight_shift(sft_dir: str, node_dirs: dict[str, str], settings: dict, out: dict[str, str],
                     threads: int = 1) -> dict:
    """Streams the checkpoints and writes ``out``'s table, density, figure and settings files."""
    from mixmerge.analysis.plots import weight_shift_figure

    torch.set_num_threads(threads)
    started = time.monotonic()
    acc, skipped = stream(sft_dir, node_dirs, settings)
    nodes = list(node_dirs)
    pairs, density = pair_table(acc, nodes, settings), density_table(acc, nodes)
    record = {"analysis": "weight_shift", "settings": settings, "sft": sft_dir, "nodes": node_dirs,
              "n_params": acc.total, "tensors_left_out": skipped, "seconds": round(time.monotonic() - started, 2)}
    write_outputs(out, {"table": pairs, "density": density},
                  lambda path: weight_shift_figure(pairs, density, nodes, path), record)
    return record
