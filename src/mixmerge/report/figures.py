"""The report's figures (matplotlib, Agg; every axis labelled with its unit): avg@k with CIs per benchmark and
model, the transfer heatmap with significance marks, the merge methods, quality against compute with the Pareto
front, and the per-domain reward curves of the RL runs."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from mixmerge.report.compare import AVG

DPI = 110


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def color_of(model: str) -> str:
    if model.startswith("merge-"):
        return "tab:green"
    if model == "rl-mixed":
        return "tab:red"
    if model.startswith("rl-"):
        return "tab:blue"
    return {"opd": "tab:purple", "sft": "dimgray"}.get(model, "silver")


def _save(fig, out: Path) -> None:
    if not fig.legends:
        fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    _plt().close(fig)


def _hbars(ax, cells: pd.DataFrame, models: list[str], title: str) -> None:
    """Strict avg@k bars with 95% CI whiskers, lenient as open diamonds, one row per model of ``models`` (a model
    without this benchmark, such as a pairwise merge, keeps its row empty, so panels sharing the axis align)."""
    table = cells.set_index("model")
    shown = [m for m in models if m in table.index]
    y = np.array([models.index(m) for m in shown])
    strict = np.array([100 * table.loc[m, "strict"] for m in shown])
    err = np.array([[100 * (table.loc[m, "strict"] - table.loc[m, "strict_lo"]) for m in shown],
                    [100 * (table.loc[m, "strict_hi"] - table.loc[m, "strict"]) for m in shown]])
    ax.barh(y, strict, xerr=err, color=[color_of(m) for m in shown], alpha=0.85, capsize=2, label="strict (reward)")
    ax.scatter([100 * table.loc[m, "lenient"] for m in shown], y, marker="D", facecolors="none",
               edgecolors="black", s=18, zorder=3, label="lenient (answer, any format)")
    ax.set_yticks(np.arange(len(models)), models, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("avg@k (%)")
    n = int(table["n"].iloc[0]) if len(table) else 0
    ax.set_title(f"{title} (n={n})", fontsize=9)


def main_figure(cells: pd.DataFrame, models: list[str], benchmarks: list[str], out: Path) -> None:
    plt = _plt()
    panels = benchmarks + ([AVG] if (cells["benchmark"] == AVG).any() else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels) + 1, 0.28 * len(models) + 1.6),
                             sharey=True, squeeze=False)
    for ax, bench in zip(axes[0], panels):
        _hbars(ax, cells[cells["benchmark"] == bench], models, bench)
    axes[0][0].set_ylabel("model")
    _legend_below(fig, axes[0][-1])
    fig.suptitle("avg@k per benchmark and model: strict with 95% bootstrap CI over items; lenient ◇", fontsize=10)
    _save(fig, out)


def _legend_below(fig, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 0.94))


def transfer_figure(delta: pd.DataFrame, marks: pd.DataFrame, out: Path) -> None:
    """``delta``: strict avg@k minus SFT (models x benchmarks, fractions); ``marks``: Holm-adjusted p-values."""
    plt = _plt()
    from matplotlib.colors import TwoSlopeNorm

    values = 100 * delta.to_numpy(dtype=float)
    bound = max(1.0, float(np.nanmax(np.abs(values)))) if values.size else 1.0
    fig, ax = plt.subplots(figsize=(1.2 * delta.shape[1] + 3, 0.35 * delta.shape[0] + 1.8))
    image = ax.imshow(values, cmap="RdBu", norm=TwoSlopeNorm(0.0, -bound, bound), aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        p = marks.iat[i, j]
        star = "" if math.isnan(p) else "**" if p < 0.01 else "*" if p < 0.05 else ""
        ax.text(j, i, f"{v:+.1f}{star}", ha="center", va="center", fontsize=7,
                color="white" if abs(v) > 0.6 * bound else "black")
    ax.set_xticks(range(delta.shape[1]), delta.columns)
    ax.set_yticks(range(delta.shape[0]), delta.index, fontsize=7)
    ax.set_xlabel("benchmark")
    ax.set_ylabel("model")
    fig.colorbar(image, ax=ax, label="Δ strict avg@k vs SFT (points)")
    ax.set_title("Transfer: change over SFT (* Holm p < 0.05, ** < 0.01; paired sign-flip test)", fontsize=9)
    _save(fig, out)


def merge_figure(cells: pd.DataFrame, merges: list[str], refs: dict[str, dict[str, float]], out: Path) -> None:
    """Merge nodes per benchmark with CIs; vertical lines: rl-mixed and the best expert (``refs``)."""
    plt = _plt()
    panels = list(dict.fromkeys(cells["benchmark"]))
    if not panels:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, "no merge node evaluated yet", ha="center", va="center")
        ax.set_xlabel("avg@k (%)")
        ax.set_ylabel("merge node")
        _save(fig, out)
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels) + 1, 0.3 * len(merges) + 1.8),
                             sharey=True, squeeze=False)
    for ax, bench in zip(axes[0], panels):
        _hbars(ax, cells[cells["benchmark"] == bench], merges, bench)
        for label, style in (("rl-mixed", ("tab:red", "--")), ("best expert", ("tab:blue", ":"))):
            value = refs.get(label, {}).get(bench)
            if value is not None and not math.isnan(value):
                ax.axvline(100 * value, color=style[0], linestyle=style[1], label=label)
    axes[0][0].set_ylabel("merge node")
    _legend_below(fig, axes[0][-1])
    fig.suptitle("Merge methods: strict avg@k with 95% CI; lines: rl-mixed and the best expert", fontsize=10)
    _save(fig, out)


def pareto(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """The points no other point beats on both axes (cost lower or equal, quality higher or equal)."""
    ordered = points.sort_values([x, y], ascending=[True, False])
    front, best = [], -math.inf
    for row in ordered.itertuples():
        if getattr(row, y) > best:
            front.append(row.Index)
            best = getattr(row, y)
    return ordered.loc[front]


def cost_figure(cost: pd.DataFrame, out: Path) -> str:
    """Avg. strict avg@k against total compute; returns the x axis used (GPU-hours, or CPU wall-clock hours
    when the grid ran without GPUs)."""
    plt = _plt()
    data = cost.dropna(subset=["strict"]).copy()
    gpu = bool((data["gpu_hours"] > 0).any())
    x = "gpu_hours" if gpu else "wall_hours"
    label = ("total GPU-hours to produce the model (own + parents)" if gpu else
             "total wall-clock hours to produce the model, own + parents (CPU run: no GPU-hours)")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    err = [100 * (data["strict"] - data["strict_lo"]), 100 * (data["strict_hi"] - data["strict"])]
    ax.errorbar(data[x], 100 * data["strict"], yerr=err, fmt="none", ecolor="gray", capsize=2)
    ax.scatter(data[x], 100 * data["strict"], c=[color_of(m) for m in data["model"]], zorder=3)
    for row in data.itertuples():
        ax.annotate(row.model, (getattr(row, x), 100 * row.strict), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    front = pareto(data, x, "strict")
    ax.step(front[x], 100 * front["strict"], where="post", color="black", linewidth=1, label="Pareto front")
    ax.set_xlabel(label)
    ax.set_ylabel("average strict avg@k over benchmarks (%)")
    ax.set_title("Quality against compute (95% CI over items)", fontsize=10)
    ax.legend(fontsize=7)
    _save(fig, out)
    return x


def curves_figure(curves: pd.DataFrame, domains: list[str], out: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, len(domains), figsize=(3.2 * len(domains) + 0.5, 3.2), squeeze=False)
    for ax, domain in zip(axes[0], domains):
        mine = curves[curves["domain"] == domain]
        for (model, seed), line in mine.groupby(["model", "seed"], sort=False):
            line = line.sort_values("step")
            first = seed == mine[mine["model"] == model]["seed"].iloc[0]
            ax.plot(line["step"], line["reward"], color=color_of(model), linewidth=1,
                    linestyle="-" if model == f"rl-{domain}" else "--", label=model if first else None)
        ax.set_title(domain, fontsize=9)
        ax.set_xlabel("GRPO step")
        ax.set_ylim(-0.02, 1.02)
        if len(mine):
            ax.legend(fontsize=6)
    axes[0][0].set_ylabel("mean reward (fraction, 0-1)")
    fig.suptitle("Per-domain reward during GRPO (TRL rewards/<domain>_reward/mean)", fontsize=10)
    _save(fig, out)
