"""The analyses' figures (matplotlib, Agg): weight-shift overlap, direction and density; skill-inheritance
consistency; pairwise merge minus single expert."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _square(pairs: pd.DataFrame, nodes: list[str], column: str) -> np.ndarray:
    out = np.full((len(nodes), len(nodes)), np.nan)
    where = {n: i for i, n in enumerate(nodes)}
    for row in pairs.itertuples():
        out[where[row.a], where[row.b]] = out[where[row.b], where[row.a]] = getattr(row, column)
    return out


def _heatmap(ax, matrix: np.ndarray, nodes: list[str], title: str, vmin: float, vmax: float, cmap: str) -> None:
    image = ax.imshow(matrix, vmin=vmin, vmax=vmax, cmap=cmap)
    ax.set_xticks(range(len(nodes)), nodes, rotation=90, fontsize=7)
    ax.set_yticks(range(len(nodes)), nodes, fontsize=7)
    ax.set_title(title, fontsize=9)
    if len(nodes) <= 8:
        for (i, j), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7)
    plt.colorbar(image, ax=ax, fraction=0.046)


def weight_shift_figure(pairs: pd.DataFrame, density: pd.DataFrame, nodes: list[str], path: str) -> None:
    """Jaccard of changed-weight masks, projected cosine of the shifts, and update density per tensor family."""
    side = min(6.0, 2.5 + 0.3 * len(nodes))
    fig, axes = plt.subplots(1, 3, figsize=(3 * side + 2, side + 1))
    _heatmap(axes[0], _square(pairs, nodes, "jaccard"), nodes, "Jaccard of changed-weight masks (fraction)", 0, 1,
             "viridis")
    _heatmap(axes[1], _square(pairs, nodes, "cosine_proj"), nodes,
             "Cosine of shifts, random projection (mean over seeds)", -1, 1, "coolwarm")
    families = [f for f in dict.fromkeys(density["family"])]
    width = 0.8 / max(len(families), 1)
    for k, family in enumerate(families):
        sub = density[density["family"] == family].set_index("node").reindex(nodes)
        axes[2].bar(np.arange(len(nodes)) + k * width, 100 * sub["density"], width, label=family)
    axes[2].set_xticks(np.arange(len(nodes)) + 0.4 - width / 2, nodes, rotation=90, fontsize=7)
    axes[2].set_ylabel("weights changed vs SFT (%)")
    axes[2].set_title("Update density per tensor family", fontsize=9)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _grouped_bars(ax, table: pd.DataFrame, group: str, series: str, value: str, lo: str, hi: str) -> None:
    groups = list(dict.fromkeys(table[group]))
    names = list(dict.fromkeys(table[series]))
    width = 0.8 / max(len(names), 1)
    for k, name in enumerate(names):
        sub = table[table[series] == name].set_index(group).reindex(groups)
        y = sub[value].to_numpy(dtype=float)
        err = np.abs(np.vstack([y - sub[lo].to_numpy(dtype=float), sub[hi].to_numpy(dtype=float) - y]))
        ax.bar(np.arange(len(groups)) + k * width, y, width, yerr=np.nan_to_num(err), capsize=2, label=name)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups, rotation=30, fontsize=8)
    ax.legend(fontsize=7, ncol=2)


def _empty(path: str, text: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def inheritance_figure(table: pd.DataFrame, path: str) -> None:
    """Consistency cosine(g_union, g_m) per benchmark and model, with the bootstrap CIs."""
    if table.empty:
        _empty(path, "no benchmark has records for SFT, every expert and a combined model")
        return
    fig, ax = plt.subplots(figsize=(2 + 1.2 * table["benchmark"].nunique() * max(1, table["model"].nunique() / 4),
                                    4.5))
    _grouped_bars(ax, table, "benchmark", "model", "consistency", "lo", "hi")
    ax.set_ylabel("consistency = cosine(g_union, g_model) (unitless)")
    ax.set_xlabel("benchmark")
    ax.set_title("Skill inheritance: per-item gains over SFT shared with the experts' union (95% CI)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pairwise_figure(table: pd.DataFrame, path: str) -> None:
    """Merged minus single expert per benchmark of each pairwise merge, in points, with the paired CIs."""
    if table.empty:
        _empty(path, "no merge names its experts (merges.<name>.experts), or their records are missing")
        return
    shown = table.assign(label=table["benchmark"] + " (" + table["domain"] + ")",
                         diff_pt=100 * table["diff"], lo_pt=100 * table["lo"], hi_pt=100 * table["hi"])
    fig, ax = plt.subplots(figsize=(2 + 1.2 * shown["label"].nunique(), 4.5))
    _grouped_bars(ax, shown, "label", "merge", "diff_pt", "lo_pt", "hi_pt")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("merged minus single expert (avg@k points)")
    ax.set_xlabel("benchmark (the domain whose expert it is compared with)")
    ax.set_title("Pairwise merges vs the single expert (95% paired bootstrap CI)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def kl_figure(table: pd.DataFrame, level: str, path: str) -> None:
    """KL(expert ‖ rl-mixed) per expert (rows) and benchmark (columns), annotated with ΔPerf = rl-mixed minus
    that expert in points; a box marks a neighbour (KL below the benchmark's epsilon)."""
    experts, benches = list(dict.fromkeys(table["expert"])), list(dict.fromkeys(table["benchmark"]))
    cells = table.set_index(["expert", "benchmark"])
    matrix = np.array([[cells.loc[(e, b), f"kl_{level}"] for b in benches] for e in experts], dtype=float)
    fig, ax = plt.subplots(figsize=(2.5 + 1.1 * len(benches), 1.8 + 0.7 * len(experts)))
    image = ax.imshow(matrix, cmap="magma_r")
    for i, e in enumerate(experts):
        for j, b in enumerate(benches):
            row = cells.loc[(e, b)]
            delta = row.get("delta_perf", np.nan)
            ax.text(j, i, f"{matrix[i, j]:.3g}\nΔ {100 * delta:+.1f}", ha="center", va="center", fontsize=7,
                    color="tab:blue")
            if bool(row["neighbour"]):
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="lime", linewidth=2))
    ax.set_xticks(range(len(benches)), benches, rotation=30, fontsize=8)
    ax.set_yticks(range(len(experts)), experts, fontsize=8)
    ax.set_xlabel("benchmark (prompts the expert's samples answer)")
    ax.set_ylabel("expert E_B")
    unit = "nats per sequence" if level == "sequence" else "nats per token"
    plt.colorbar(image, ax=ax, fraction=0.046, label=f"KL(E_B ‖ rl-mixed) ({unit})")
    ax.set_title("KL to rl-mixed on each benchmark; Δ = rl-mixed − E_B (avg@k points); box = neighbour",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def verification_figure(table: pd.DataFrame, path: str) -> None:
    """Balanced accuracy of each model judging its own samples, outcome vs process mode, one panel per
    benchmark, with the bootstrap CIs."""
    if table.empty:
        _empty(path, "no eval records to judge")
        return
    benches = list(dict.fromkeys(table["benchmark"]))
    cols = min(3, len(benches))
    rows = -(-len(benches) // cols)
    width = 1.5 + 0.45 * table["model"].nunique()
    fig, axes = plt.subplots(rows, cols, figsize=(cols * width, rows * 3.6), squeeze=False)
    for ax, bench in zip(axes.flat, benches):
        _grouped_bars(ax, table[table["benchmark"] == bench], "model", "mode", "balanced_accuracy", "lo", "hi")
        ax.axhline(0.5, color="grey", linestyle=":", linewidth=0.8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("balanced accuracy (fraction)")
        ax.set_title(f"{bench}: self-judgement (dotted: chance)", fontsize=9)
    for ax in list(axes.flat)[len(benches):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
