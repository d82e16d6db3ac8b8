"""Skill inheritance (study §6.4, Figure 5): does a combined model gain on the same items as the single-domain
experts?

Per benchmark and model m, the per-item gain over SFT ``g_m(i) = max(a_m(i) - a_SFT(i), 0)``, where a(i) is the
item's mean score over its k samples (and over training seeds); the experts' union ``g_union(i) = max_e g_e(i)``;
and the consistency ``cosine(g_union, g_m)`` for rl-mixed, every merge and opd, with a percentile bootstrap CI
over items (items resampled with their gains paired)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mixmerge.grid import Grid
from mixmerge.report import stats
from mixmerge.report.records import Scores, load_scores, model_names
from mixmerge.analysis.outputs import write_outputs

COLUMNS = ["benchmark", "model", "n", "consistency", "lo", "hi", "undefined_resamples", "mean_gain",
           "union_mean_gain", "items_gained", "union_items_gained"]


def gains(model: np.ndarray, sft: np.ndarray) -> np.ndarray:
    """Per-item positive gain over SFT."""
    return np.maximum(np.asarray(model, dtype=float) - np.asarray(sft, dtype=float), 0.0)


def union_gain(expert_gains: list[np.ndarray]) -> np.ndarray:
    return np.max(np.stack(expert_gains), axis=0)


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row pair of two (R x n) arrays; NaN where a row is all zero."""
    denom = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, np.sum(a * b, axis=-1) / np.where(denom > 0, denom, 1), np.nan)


def consistency(union: np.ndarray, model: np.ndarray, seed: int = 0, n_resamples: int = stats.N_BOOT,
                level: float = stats.LEVEL) -> tuple[float, float, float, int]:
    """(cosine(g_union, g_m), CI low, CI high, resamples where a resampled vector was all zero and the cosine is
    undefined; the CI is over the others). NaN when either vector is all zero."""
    union, model = np.asarray(union, dtype=float), np.asarray(model, dtype=float)
    point = float(row_cosines(union[None], model[None])[0])
    if math.isnan(point):
        return math.nan, math.nan, math.nan, 0
    picks = np.random.default_rng(seed).integers(0, len(union), size=(n_resamples, len(union)))
    boots = row_cosines(union[picks], model[picks])
    finite = boots[np.isfinite(boots)]
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(finite, [tail, 100 - tail]) if len(finite) else (math.nan, math.nan)
    return point, float(lo), float(hi), int(len(boots) - len(finite))


def combined_models(the_grid: Grid) -> list[str]:
    """The models the study compares with the experts' union: rl-mixed, every merge, opd (names without seeds)."""
    return [m for m in model_names(the_grid) if m == "rl-mixed" or m.startswith("merge-") or m == "opd"]


def inheritance_table(scores: dict[tuple[str, str], Scores], the_grid: Grid, metric: str, seed: int) -> pd.DataFrame:
    experts = [the_grid.split(e)[0] for e in the_grid.experts]
    rows = []
    for bench in the_grid.benchmarks:
        needed = ["sft", *experts]
        if any((m, bench) not in scores for m in needed):
            continue
        present = [m for m in combined_models(the_grid) if (m, bench) in scores]
        ids = sorted(set.intersection(*(set(scores[(m, bench)].ids) for m in needed + present)))
        sft = scores[("sft", bench)].aligned(metric, ids)
        union = union_gain([gains(scores[(e, bench)].aligned(metric, ids), sft) for e in experts])
        for model in present:
            gain = gains(scores[(model, bench)].aligned(metric, ids), sft)
            point, lo, hi, undefined = consistency(union, gain, seed)
            rows.append({"benchmark": bench, "model": model, "n": len(ids), "consistency": point, "lo": lo,
                         "hi": hi, "undefined_resamples": undefined, "mean_gain": gain.mean(),
                         "union_mean_gain": union.mean(), "items_gained": int((gain > 0).sum()),
                         "union_items_gained": int((union > 0).sum())})
    return pd.DataFrame(rows, columns=COLUMNS)


def run_skill_inheritance(spec: dict, settings: dict, out: dict[str, str], root: str = ".") -> pd.DataFrame:
    """Reads the grid's per-item eval records under ``root`` and writes the table, figure and settings."""
    from mixmerge.analysis.plots import inheritance_figure

    the_grid = Grid.from_config(spec)
    table = inheritance_table(load_scores(the_grid, root), the_grid, settings["metric"], settings["seed"])
    write_outputs(out, {"table": table}, lambda path: inheritance_figure(table, path),
                  {"analysis": "skill_inheritance", "settings": settings, "experts": the_grid.experts,
                   "bootstrap": {"level": stats.LEVEL, "resamples": stats.N_BOOT}})
    return table
