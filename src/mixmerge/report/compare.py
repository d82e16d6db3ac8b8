"""The report's numbers: each cell's avg@k (strict and lenient) with n, SE, bootstrap CI and the spread between
seeds; pass@k' for every k' <= k; and every paired comparison the report makes, Holm-corrected per family."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mixmerge.report import stats
from mixmerge.report.records import Scores

AVG = "Avg."
METRICS = ("strict", "lenient")
ALPHA = 0.05
FAMILIES = {
    "rl_vs_sft": "each RL node minus SFT",
    "opd_vs_sft": "opd (the experts distilled into SFT) minus SFT",
    "merge_vs_sft": "each merge minus SFT",
    "mixed_vs_merge": "rl-mixed minus each merge (and opd)",
    "merge_vs_best_expert": "each merge minus the best expert on that benchmark",
}


def _cell(model: str, bench: str, cells: list[Scores]) -> dict:
    row = {"model": model, "benchmark": bench, "n": sum(len(c.ids) for c in cells),
           "k": cells[0].k if len({c.k for c in cells}) == 1 else math.nan, "seeds": len(cells[0].seeds)}
    for metric in METRICS:
        strata = [c.item_means(metric) for c in cells]
        row[metric] = float(np.mean([s.mean() for s in strata]))
        row[f"{metric}_se"] = stats.standard_error(strata)
        row[f"{metric}_lo"], row[f"{metric}_hi"] = stats.mean_ci(strata)
        per_seed = np.mean([c.seed_means(metric) for c in cells], axis=0)
        row[f"{metric}_seed_sd"] = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else math.nan
    row["truncation"] = float(np.mean([c.truncation for c in cells]))
    return row


def cell_table(scores: dict[tuple[str, str], Scores], models: list[str], benchmarks: list[str]) -> pd.DataFrame:
    """One row per (model, benchmark) plus an ``Avg.`` row per model (the mean of its benchmark means, items
    resampled within each benchmark) when it has every benchmark."""
    rows = []
    for model in models:
        present = [b for b in benchmarks if (model, b) in scores]
        rows += [_cell(model, b, [scores[(model, b)]]) for b in present]
        if len(present) == len(benchmarks) > 1:
            rows.append(_cell(model, AVG, [scores[(model, b)] for b in benchmarks]))
    return pd.DataFrame(rows)


def seed_table(scores: dict[tuple[str, str], Scores]) -> pd.DataFrame:
    """Strict and lenient avg@k of every training seed of every cell (the replicas the means average)."""
    rows = []
    for (model, bench), cell in scores.items():
        for i, seed in enumerate(cell.seeds):
            rows.append({"model": model, "benchmark": bench, "seed": seed, "n": len(cell.ids),
                         "strict": float(cell.strict[:, i].mean()), "lenient": float(cell.lenient[:, i].mean())})
    return pd.DataFrame(rows, columns=["model", "benchmark", "seed", "n", "strict", "lenient"])


def pass_table(scores: dict[tuple[str, str], Scores], models: list[str], benchmarks: list[str]) -> pd.DataFrame:
    """Unbiased pass@k' (strict) for k' = 1..k of every cell, the mean over seeds."""
    rows = []
    for model in models:
        for bench in benchmarks:
            cell = scores.get((model, bench))
            if cell is None:
                continue
            curves = [stats.pass_curve(cell.correct[:, i], cell.k) for i in range(len(cell.seeds))]
            row = {"model": model, "benchmark": bench, "n": len(cell.ids), "k": cell.k}
            row.update({f"pass@{j}": float(np.mean([c[j] for c in curves])) for j in range(1, cell.k + 1)})
            rows.append(row)
    return pd.DataFrame(rows)


def _paired_row(scores, family: str, a: str, b_by_bench: dict[str, str], label_b: str, bench: str) -> dict | None:
    strata = {m: [] for m in METRICS}
    for sub, b in b_by_bench.items():
        left, right = scores.get((a, sub)), scores.get((b, sub))
        if left is None or right is None:
            return None
        ids = sorted(set(left.ids) & set(right.ids))
        for m in METRICS:
            strata[m].append((left.aligned(m, ids), right.aligned(m, ids)))
    res = {m: stats.paired([x for x, _ in strata[m]], [y for _, y in strata[m]]) for m in METRICS}
    s, le = res["strict"], res["lenient"]
    return {"family": family, "a": a, "b": label_b, "benchmark": bench, "n": s.n, "strict_diff": s.diff,
            "strict_lo": s.lo, "strict_hi": s.hi, "strict_se": s.se, "p": s.p, "lenient_diff": le.diff,
            "lenient_lo": le.lo, "lenient_hi": le.hi}


def _family(scores, family: str, pairs: list[tuple[str, dict[str, str], str]], benchmarks: list[str]) -> list:
    """Rows for (a, {benchmark: b}, label) pairs: one per benchmark, and the Avg. over all of them."""
    rows = []
    for a, b_by_bench, label in pairs:
        for bench in [b for b in benchmarks if b in b_by_bench]:
            rows.append(_paired_row(scores, family, a, {bench: b_by_bench[bench]}, b_by_bench[bench], bench))
        if len(benchmarks) > 1 and set(benchmarks) <= set(b_by_bench):
            rows.append(_paired_row(scores, family, a, b_by_bench, label, AVG))
    return [r for r in rows if r is not None]


def best_experts(cells: pd.DataFrame, experts: list[str], benchmarks: list[str]) -> dict[str, str]:
    """The expert with the highest strict avg@k on each benchmark."""
    table = cells.set_index(["model", "benchmark"])["strict"]
    candidates = {b: [e for e in experts if (e, b) in table.index] for b in benchmarks}
    return {b: max(found, key=lambda e: table[(e, b)]) for b, found in candidates.items() if found}


def comparisons(scores, cells: pd.DataFrame, models: list[str], benchmarks: list[str]) -> pd.DataFrame:
    """Every comparison the report shows, as paired differences on the same items, Holm-corrected within each
    family (FAMILIES); ``reading`` says whether a significant strict gain is also a lenient one or format."""
    rl = [m for m in models if m.startswith("rl-")]
    experts = [m for m in rl if m != "rl-mixed"]
    merges = [m for m in models if m.startswith("merge-")]
    every = lambda b: {bench: b for bench in benchmarks}  # noqa: E731
    rows = _family(scores, "rl_vs_sft", [(m, every("sft"), "sft") for m in rl], benchmarks)
    rows += _family(scores, "opd_vs_sft", [(m, every("sft"), "sft") for m in models if m == "opd"], benchmarks)
    rows += _family(scores, "merge_vs_sft", [(m, every("sft"), "sft") for m in merges], benchmarks)
    if "rl-mixed" in models:
        others = merges + [m for m in models if m == "opd"]
        rows += _family(scores, "mixed_vs_merge", [("rl-mixed", every(m), m) for m in others], benchmarks)
    if experts and merges:
        best = best_experts(cells, experts, benchmarks)
        rows += _family(scores, "merge_vs_best_expert", [(m, best, "best expert") for m in merges], benchmarks)
    frame = pd.DataFrame(rows, columns=["family", "a", "b", "benchmark", "n", "strict_diff", "strict_lo",
                                        "strict_hi", "strict_se", "p", "lenient_diff", "lenient_lo", "lenient_hi"])
    frame["p_holm"] = np.nan
    for _, index in frame.groupby("family").groups.items():
        frame.loc[index, "p_holm"] = stats.holm(frame.loc[index, "p"].to_numpy())
    frame["reading"] = [reading(r) for r in frame.itertuples()]
    return frame


def reading(row) -> str:
    """Plain words for one comparison: not significant, or which way, and whether answers moved or only format."""
    if not row.p_holm < ALPHA:
        return "no significant difference"
    up = row.strict_diff > 0
    same = row.lenient_lo > 0 if up else row.lenient_hi < 0
    opposite = row.lenient_hi < 0 if up else row.lenient_lo > 0
    head = f"{'higher' if up else 'lower'} reward; "
    if same:
        return head + "answers too (lenient)"
    return head + "format only" + ("; lenient moved the other way" if opposite else "")
