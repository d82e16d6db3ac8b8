"""Tables (CSV + Markdown), a figure and a short report from the eval summaries and Snakemake benchmark files."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from mixmerge import grid
from mixmerge.grid import Grid


def load_summaries(paths: list[Path]) -> pd.DataFrame:
    records = []
    for path in paths:
        summary = json.loads(path.read_text())
        records.append({"model": summary["model"], "benchmark": summary["benchmark"], "domain": summary["domain"],
                        "n": summary["n"], "k": summary["k"], "strict": summary["avg_at_k"],
                        "strict_se": summary["avg_at_k_stderr"], "lenient": summary["lenient_avg_at_k"],
                        "lenient_se": summary["lenient_avg_at_k_stderr"], "pass_at_k": summary["pass_at_k"],
                        "truncation": summary["truncation_rate"]})
    if not records:
        raise FileNotFoundError("no eval summaries to report")
    return pd.DataFrame(records)


def wide(frame: pd.DataFrame, metric: str, models: list[str], benchmarks: list[str]) -> pd.DataFrame:
    table = frame.pivot(index="benchmark", columns="model", values=metric).reindex(index=benchmarks, columns=models)
    table.loc["Avg."] = table.mean(axis=0)
    return table


def both(strict: pd.DataFrame, lenient: pd.DataFrame) -> pd.DataFrame:
    """Cells as 'strict / lenient' percentages for Markdown."""
    return strict.map(lambda v: f"{100 * v:.1f}").astype(str) + " / " + lenient.map(lambda v: f"{100 * v:.1f}")


def to_markdown(table: pd.DataFrame, caption: str) -> str:
    cols = [str(table.index.name or "")] + [str(c) for c in table.columns]
    lines = [f"**{caption}**", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in table.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [str(v) for v in row.values]) + " |")
    return "\n".join(lines) + "\n"


def gpu_hours(wall_seconds: float, gpus: int) -> float:
    """A node's cost: its benchmark wall time x the GPUs it held."""
    return wall_seconds * gpus / 3600


def bench_wall(path: Path) -> float:
    """Wall seconds from a Snakemake benchmark file (the mean when the rule was benchmarked with repeats)."""
    return float(pd.read_csv(path, sep="\t")["s"].mean())


COMPUTE_STAGES = [("sft", "sft.tsv", "sft"), ("grpo", "*.tsv", "grpo"), ("merge", "*.tsv", "merge")]


def compute_table(bench_dir: str | Path, config: dict) -> pd.DataFrame:
    """Wall seconds per node from Snakemake ``benchmark:`` files; GPU-hours = wall time x the rule's GPUs
    (``gpus.<stage>`` of the config the grid ran with). Values are unrounded; outputs round them."""
    gpus = config.get("gpus", {})
    rows = []
    for rule, node_glob, gpu_key in COMPUTE_STAGES:
        for path in sorted(Path(bench_dir, rule).glob(node_glob)):
            rows.append({"node": path.stem, "stage": rule, "wall_seconds": bench_wall(path),
                         "gpus": int(gpus.get(gpu_key, 0))})
    for path in sorted(Path(bench_dir, "eval").glob("*/*.tsv")):
        rows.append({"node": f"eval:{path.parent.name}/{path.stem}", "stage": "eval", "wall_seconds": bench_wall(path),
                     "gpus": int(gpus.get("eval", 0))})
    frame = pd.DataFrame(rows, columns=["node", "stage", "wall_seconds", "gpus"])
    frame["gpu_hours"] = [gpu_hours(w, g) for w, g in zip(frame["wall_seconds"], frame["gpus"])]
    return frame


def mix_vs_experts(compute: pd.DataFrame, experts: list[str]) -> dict:
    """rl-mixed's cost over the summed cost of the per-domain experts (the study: 2166.4 / 6524.8 GPU-hours
    = 33.2%). NaN where a side is missing or costs nothing (e.g. GPU-hours of a CPU-only grid)."""
    by_node = compute.set_index("node")
    missing = [e for e in experts + ["rl-mixed"] if e not in by_node.index]

    def ratio(column: str) -> tuple[float, float, float]:
        if missing:
            return math.nan, math.nan, math.nan
        mixed = float(by_node.loc["rl-mixed", column])
        summed = sum(float(by_node.loc[e, column]) for e in experts)
        return mixed, summed, (mixed / summed if summed else math.nan)

    mixed_wall, experts_wall, wall_ratio = ratio("wall_seconds")
    mixed_gpuh, experts_gpuh, gpuh_ratio = ratio("gpu_hours")
    return {"mixed_wall_seconds": mixed_wall, "experts_wall_seconds": experts_wall,
            "mixed_over_experts_wall": wall_ratio, "mixed_gpu_hours": mixed_gpuh, "experts_gpu_hours": experts_gpuh,
            "mixed_over_experts_gpu_hours": gpuh_ratio, "missing_nodes": missing}


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def compute_markdown(compute: pd.DataFrame, ratio: dict) -> str:
    shown = compute.round({"wall_seconds": 1, "gpu_hours": 3}).set_index("node")
    text = to_markdown(shown, "Compute per node (Snakemake benchmark files; GPU-hours = wall time x GPUs)")
    by_stage = compute.groupby("stage", sort=False)["gpu_hours"].sum()
    text += "\nGPU-hours by stage: " + ", ".join(f"{stage} {hours:.2f}" for stage, hours in by_stage.items()) + "\n"
    if ratio["missing_nodes"]:
        return text + f"\nrl-mixed vs experts: n/a (no benchmark for {', '.join(ratio['missing_nodes'])})\n"
    text += (f"\nrl-mixed / sum of the experts: GPU-hours {ratio['mixed_gpu_hours']:.2f} / "
             f"{ratio['experts_gpu_hours']:.2f} = {_pct(ratio['mixed_over_experts_gpu_hours'])} (the study: "
             f"2166.4 / 6524.8 = 33.2%); wall time {ratio['mixed_wall_seconds']:.0f} s / "
             f"{ratio['experts_wall_seconds']:.0f} s = {_pct(ratio['mixed_over_experts_wall'])}\n")
    return text


def rl_checks(frame: pd.DataFrame, config: dict) -> list[dict]:
    """Does each expert beat SFT on its own domain, and rl-mixed on each domain? Gap in standard errors."""
    cells = frame.set_index(["model", "benchmark"])
    checks = []
    for bench, spec in config["benchmarks"].items():
        if ("sft", bench) not in cells.index:
            continue
        sft = cells.loc[("sft", bench)]
        for model in (f"rl-{spec['domain']}", "rl-mixed"):
            if (model, bench) not in cells.index:
                continue
            cell = cells.loc[(model, bench)]
            gap = cell["strict"] - sft["strict"]
            noise = math.sqrt(cell["strict_se"] ** 2 + sft["strict_se"] ** 2)
            checks.append({"model": model, "benchmark": bench, "n": int(cell["n"]), "k": int(cell["k"]),
                           "sft": sft["strict"], "rl": cell["strict"], "gain": gap,
                           "gain_in_se": gap / noise if noise else math.inf,
                           "sft_lenient": sft["lenient"], "rl_lenient": cell["lenient"]})
    return checks


def plot(strict: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = strict.drop(index="Avg.").T
    ax = data.plot.bar(figsize=(max(8, 0.7 * len(data)), 4.5), width=0.8)
    ax.set_ylabel("avg@k (strict)")
    ax.set_ylim(0, 1)
    ax.set_title("Every model on every benchmark")
    ax.legend(title="benchmark", fontsize=8)
    plt.xticks(rotation=45, ha="right")
    plt.tight_layout()
    plt.savefig(out, dpi=120)
    plt.close()


def merge_records(models_dir: str | Path, merge_nodes: list[str]) -> pd.DataFrame:
    """Which merge each node is (mergekit's own or study-exact), its parameters, and its notes, e.g. that the
    study's global TIES trims nothing for an expert whose delta is >= 80% exact zeros."""
    rows = []
    for node in merge_nodes:
        path = Path(models_dir) / node / "merge_record.json"
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        params = ", ".join(f"{k}={v}" for k, v in sorted(record.get("params", {}).items()))
        rows.append({"node": node, "family": record.get("family"), "method": record.get("method"),
                     "params": params, "seed": record.get("seed"), "dtype": record.get("dtype"),
                     "notes": "; ".join(record.get("notes", [])) or ""})
    return pd.DataFrame(rows, columns=["node", "family", "method", "params", "seed", "dtype", "notes"])


def build_report(config: dict, out: str, root: str = ".") -> None:
    """``config``: the report's slice (domains, merges, benchmarks with their domains, gpus); every file read is
    a grid path (``mixmerge.grid``) under ``root``."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    the_grid = Grid.from_config(config)
    frame = load_summaries([Path(root, grid.eval_summary(n, b)) for n, b in the_grid.cells()])
    order = {"experts": the_grid.experts, "merges": the_grid.merge_nodes}
    benchmarks = list(the_grid.benchmarks)
    models = [m for m in the_grid.nodes if m in set(frame["model"])]
    strict, lenient = wide(frame, "strict", models, benchmarks), wide(frame, "lenient", models, benchmarks)

    main = frame.pivot(index="benchmark", columns="model", values=["strict", "lenient"])
    main.columns = [f"{model}:{metric}" for metric, model in main.columns]
    main.reindex(index=benchmarks).to_csv(out_dir / "main_table.csv")
    main_md = to_markdown(both(strict, lenient), "Main table: avg@k, strict (the reward) / lenient (right answer, any format), %")
    (out_dir / "main_table.md").write_text(main_md)

    merge_models = [m for m in order["merges"] + ["rl-mixed"] if m in models]
    merge_strict = wide(frame, "strict", merge_models, benchmarks).T
    merge_strict.to_csv(out_dir / "merge_table.csv")
    merge_md = to_markdown(both(wide(frame, "strict", merge_models, benchmarks),
                                wide(frame, "lenient", merge_models, benchmarks)).T,
                           "Merge methods (and rl-mixed): avg@k strict / lenient, %")
    (out_dir / "merge_table.md").write_text(merge_md)

    delta = strict.drop(columns=[c for c in ("base", "sft") if c in strict.columns]).sub(strict["sft"], axis=0)
    delta.to_csv(out_dir / "transfer_matrix.csv")
    transfer_md = to_markdown(delta.map(lambda v: f"{100 * v:+.1f}"), "Transfer: strict avg@k minus SFT, points")
    (out_dir / "transfer_matrix.md").write_text(transfer_md)

    compute = compute_table(Path(root, "benchmarks"), config)
    compute.round({"wall_seconds": 1, "gpu_hours": 4}).to_csv(out_dir / "compute_table.csv", index=False)
    ratio = mix_vs_experts(compute, order["experts"])
    compute_md = compute_markdown(compute, ratio)
    (out_dir / "compute_table.md").write_text(compute_md)

    plot(strict, out_dir / "main_table.png")
    checks = rl_checks(frame, config)
    check_lines = [
        f"- {c['model']} on {c['benchmark']} (n={c['n']}, k={c['k']}): SFT {100 * c['sft']:.1f}% -> "
        f"{100 * c['rl']:.1f}% strict ({100 * c['gain']:+.1f} points, {c['gain_in_se']:+.1f} SE); lenient "
        f"{100 * c['sft_lenient']:.1f}% -> {100 * c['rl_lenient']:.1f}%"
        for c in checks
    ]
    (out_dir / "rl_checks.json").write_text(json.dumps(checks, indent=2))
    merges = merge_records(Path(root, grid.RESULTS, "models"), order["merges"])
    merges.to_csv(out_dir / "merge_records.csv", index=False)
    merges_md = to_markdown(merges.set_index("node"), "Merge nodes: family (mergekit = stock mergekit method; "
                            "study = the study's exact semantics), parameters, notes")
    report = ["# mixmerge report", "", main_md, "![avg@k per model and benchmark](main_table.png)", "",
              "## Does RL help? (gain over SFT on the strict reward; SE = combined standard error)", "",
              *check_lines, "", merge_md, merges_md, transfer_md, compute_md]
    (out_dir / "report.md").write_text("\n".join(report))
