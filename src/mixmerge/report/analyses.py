"""The mechanism analyses in the report: each analysis's table (``results/analysis/<name>/table.csv``, read
back) shown with its caption, and its figure; an analysis whose outputs are missing is named as not computed."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from mixmerge import grid
from mixmerge.report import captions
from mixmerge.report.render import pct, pvalue


def _num(x: float, digits: int = 3) -> str:
    return "n/a" if pd.isna(x) else f"{x:.{digits}f}"


def _spread(mean: float, sd: float, n: int) -> str:
    return f"{_num(mean)} ±{_num(sd)} (n={int(n)} seeds)"


def weight_shift_display(pairs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "a": pairs["a"], "b": pairs["b"], "n weights": pairs["n_params"],
        "density a / b (%)": [f"{pct(x)} / {pct(y)}" for x, y in zip(pairs["density_a"], pairs["density_b"])],
        "Jaccard": pairs["jaccard"].map(_num),
        "random: expected / draw": [f"{_num(x)} / {_num(y)}" for x, y in zip(pairs["random_expected"],
                                                                             pairs["random_draw"])],
        "cosine exact (all / joint)": [f"{_num(x)} / {_num(y)}" for x, y in zip(pairs["cosine_exact"],
                                                                                pairs["cosine_exact_joint"])],
        "cosine projected, all": [_spread(*v) for v in zip(pairs["cosine_proj"], pairs["cosine_proj_sd"],
                                                           pairs["projection_seeds"])],
        "cosine projected, joint": [_spread(*v) for v in zip(pairs["cosine_proj_joint"],
                                                             pairs["cosine_proj_joint_sd"], pairs["projection_seeds"])],
    }).set_index("a")


def density_display(density: pd.DataFrame) -> pd.DataFrame:
    sizes = density.drop_duplicates("family").set_index("family")["n_params"]
    wide = density.pivot(index="node", columns="family", values="density").reindex(
        index=list(dict.fromkeys(density["node"])), columns=list(sizes.index))
    wide.columns = [f"{family} (n={int(sizes[family])})" for family in wide.columns]
    return wide.map(pct)


def kl_display(table: pd.DataFrame) -> pd.DataFrame:
    delta = table.get("delta_perf", pd.Series(float("nan"), index=table.index))
    lo = table.get("delta_perf_lo", delta)
    hi = table.get("delta_perf_hi", delta)
    return pd.DataFrame({
        "expert": table["expert"], "benchmark (domain)": table["benchmark"] + " (" + table["domain"] + ")",
        "n items / samples": [f"{i} / {s}" for i, s in zip(table["n_items"], table["n_samples"])],
        "KL per sequence [95% CI] (nats)": [f"{_num(x)} [{_num(a)}, {_num(b)}]" for x, a, b in zip(
            table["kl_sequence"], table["kl_sequence_lo"], table["kl_sequence_hi"])],
        "KL per token [95% CI] (nats)": [f"{_num(x, 4)} [{_num(a, 4)}, {_num(b, 4)}]" for x, a, b in zip(
            table["kl_token"], table["kl_token_lo"], table["kl_token_hi"])],
        "ε": table["epsilon"].map(_num), "neighbour": table["neighbour"].map({True: "yes", False: "no"}),
        "ΔPerf rl-mixed − expert [95% CI] (pts)": [f"{pct(d, True)} [{pct(a, True)}, {pct(b, True)}]"
                                                    for d, a, b in zip(delta, lo, hi)],
    }).set_index("expert")


def correlation_display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "KL": table["kl"], "n cells": table["n"], "Pearson r [95% CI]": [f"{_num(r)} [{_num(a)}, {_num(b)}]" for r, a, b
                                                                         in zip(table["r"], table["lo"], table["hi"])],
        "p": table["p"].map(pvalue)}).set_index("KL")


def verification_display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "model": table["model"], "benchmark": table["benchmark"], "mode": table["mode"],
        "n items / samples": [f"{i} / {s}" for i, s in zip(table["n_items"], table["n_samples"])],
        "correct (%)": table["correct_share"].map(pct), "judged correct (%)": table["judged_correct_share"].map(pct),
        "unparsable": table["unparsable"],
        "balanced accuracy [95% CI] (%)": [f"{pct(b)} [{pct(lo)}, {pct(hi)}]" for b, lo, hi in zip(
            table["balanced_accuracy"], table["lo"], table["hi"])],
    }).set_index("model")


def inheritance_display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "benchmark": table["benchmark"], "model": table["model"], "n items": table["n"],
        "consistency [95% CI]": [f"{_num(c)} [{_num(lo)}, {_num(hi)}]"
                                 for c, lo, hi in zip(table["consistency"], table["lo"], table["hi"])],
        "mean gain / union (pts)": [f"{pct(x)} / {pct(y)}" for x, y in zip(table["mean_gain"],
                                                                          table["union_mean_gain"])],
        "items gained / union": [f"{x} / {y}" for x, y in zip(table["items_gained"], table["union_items_gained"])],
    }).set_index("benchmark")


def pairwise_display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "merge": table["merge"], "experts": table["experts"], "benchmark (domain)":
            table["benchmark"] + " (" + table["domain"] + ")", "n items": table["n"], "single expert": table["expert"],
        "expert (%)": table["expert_score"].map(pct), "merged (%)": table["merged_score"].map(pct),
        "Δ [95% CI] (pts)": [f"{pct(d, True)} [{pct(lo, True)}, {pct(hi, True)}]"
                             for d, lo, hi in zip(table["diff"], table["lo"], table["hi"])],
        "p": table["p"].map(pvalue), "p (Holm)": table["p_holm"].map(pvalue),
    }).set_index("merge")


def analysis_items(root: str | Path) -> list[tuple[str, object, str]]:
    """[(kind, payload, caption)] for the report's analyses section: "figure" (an absolute PNG path), "table"
    (a DataFrame) or "text" (a sentence)."""
    items: list[tuple[str, object, str]] = []
    shown = {"weight_shift": [("table", weight_shift_display, captions.WEIGHT_SHIFT)],
             "kl_neighbourhood": [("table", kl_display, captions.KL)],
             "skill_inheritance": [("table", inheritance_display, captions.INHERITANCE)],
             "pairwise_merges": [("table", pairwise_display, captions.PAIRWISE)],
             "self_verification": [("table", verification_display, captions.VERIFICATION)]}
    for name in grid.ANALYSES:
        files = {key: Path(root, path).resolve() for key, path in grid.analysis_outputs(name).items()}
        if not all(path.exists() for path in files.values()):
            items.append(("text", f"{name}: not computed (no {grid.analysis_outputs(name)['table']}).", ""))
            continue
        items.append(("figure", files["figure"], captions.ANALYSIS_FIGURES[name]))
        for kind, display, caption in shown[name]:
            items.append((kind, display(pd.read_csv(files["table"])), caption))
        if name == "weight_shift":
            items.append(("table", density_display(pd.read_csv(files["density"])), captions.DENSITY))
        if name == "kl_neighbourhood":
            items.append(("table", correlation_display(pd.read_csv(files["correlation"])), captions.KL_CORRELATION))
    return items
