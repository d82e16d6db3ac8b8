"""``mixmerge report``: reads the grid's records (per-item eval records, summaries, model cards, attempts and
benchmark files, TensorBoard events) and writes every table (CSV + Markdown), every figure, report.md and the
self-contained report.html (``mixmerge.grid.REPORT_FILES``)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from mixmerge import grid
from mixmerge.grid import Grid
from mixmerge.report import captions, figures
from mixmerge.report.analyses import analysis_items
from mixmerge.report.headroom import headroom_items
from mixmerge.report.compare import AVG, FAMILIES, cell_table, comparisons, pass_table, seed_table
from mixmerge.report.compute import compute_markdown, compute_table, cost_table, mix_vs_experts
from mixmerge.report.curves import reward_curves
from mixmerge.report.records import load_scores, model_names
from mixmerge.report.render import Page, cells_display, comparisons_display, pass_display, pct, to_markdown


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


def sampling(the_grid: Grid, root: str | Path) -> dict[str, dict]:
    """Each benchmark's sampling settings and backend, from the first summary that exists."""
    out = {}
    for node, bench in the_grid.cells():
        path = Path(root, grid.eval_summary(node, bench))
        if bench not in out and path.exists():
            summary = json.loads(path.read_text())
            out[bench] = {**summary.get("sampling", {}), "k": summary.get("k"), "backend": summary.get("backend")}
    return out


def wide_main(cells: pd.DataFrame, benchmarks: list[str]) -> pd.DataFrame:
    """benchmarks x ``<model>:<metric>`` (strict, lenient and their SE and CI bounds), no Avg. row."""
    rows = cells[cells["benchmark"] != AVG]
    metrics = ["strict", "strict_se", "strict_lo", "strict_hi", "lenient", "lenient_se", "lenient_lo", "lenient_hi"]
    main = rows.pivot(index="benchmark", columns="model", values=metrics)
    main.columns = [f"{model}:{metric}" for metric, model in main.columns]
    order = [f"{m}:{x}" for m in dict.fromkeys(rows["model"]) for x in metrics]
    return main.reindex(index=benchmarks, columns=order).rename_axis("benchmark")


def transfer(cells: pd.DataFrame, comps: pd.DataFrame, models: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Strict avg@k minus SFT (benchmarks x models) and the Holm-adjusted p-values of those differences."""
    strict = cells.pivot(index="benchmark", columns="model", values="strict")
    others = [m for m in models if m not in ("base", "sft") and m in strict.columns]
    benches = list(dict.fromkeys(cells["benchmark"]))
    delta = strict.reindex(index=benches)[others].sub(strict.reindex(index=benches)["sft"], axis=0)
    vs_sft = comps[comps["family"].isin(["rl_vs_sft", "opd_vs_sft", "merge_vs_sft"])]
    marks = vs_sft.pivot(index="benchmark", columns="a", values="p_holm").reindex(index=benches, columns=others)
    return delta, marks


def build_report(config: dict, out: str, root: str = ".") -> None:
    """``config``: the report's slice (domains, merges, benchmarks with their domains, gpus, seed, seeds); every
    file read is a grid path (``mixmerge.grid``) under ``root``."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    the_grid = Grid.from_config(config)
    scores = load_scores(the_grid, root)
    benchmarks = list(the_grid.benchmarks)
    models = [m for m in model_names(the_grid) if any((m, b) in scores for b in benchmarks)]
    cells = cell_table(scores, models, benchmarks)
    comps = comparisons(scores, cells, models, benchmarks)
    compute = compute_table(Path(root, "benchmarks"), config, Path(root, grid.RESULTS, "models"))
    results = {"grid": the_grid, "models": models, "benchmarks": benchmarks, "cells": cells, "comparisons": comps,
               "passes": pass_table(scores, models, benchmarks), "seeds": seed_table(scores),
               "compute": compute, "cost": cost_table(compute, the_grid, cells),
               "ratio": mix_vs_experts(compute, the_grid.experts), "curves": reward_curves(the_grid, root),
               "merge_records": merge_records(Path(root, grid.RESULTS, "models"), the_grid.merge_nodes),
               "sampling": sampling(the_grid, root), "analyses": analysis_items(root),
               "headroom": headroom_items(root)}
    markdown = write_tables(results, out_dir)
    cost_axis = write_figures(results, out_dir)
    write_pages(results, markdown, cost_axis, out_dir)


def write_tables(r: dict, out_dir: Path) -> dict[str, str]:
    """CSV and Markdown of every table; returns the Markdown by table name."""
    cells, comps, models = r["cells"], r["comparisons"], r["models"]
    wide_main(cells, r["benchmarks"]).to_csv(out_dir / "main_table.csv")
    merge_models = [m for m in models if m.startswith("merge-") or m in ("rl-mixed", "opd")]
    merge_cells = cells[cells["model"].isin(merge_models)]
    merge_wide = merge_cells.pivot(index="model", columns="benchmark", values=["strict", "strict_lo", "strict_hi"])
    merge_wide.columns = [b if m == "strict" else f"{b}:{m[len('strict_'):]}" for m, b in merge_wide.columns]
    order = [f"{b}{x}" for b in [*r["benchmarks"], AVG] for x in ("", ":lo", ":hi") if f"{b}{x}" in merge_wide]
    present = [m for m in merge_models if m in merge_wide.index]
    merge_wide.reindex(index=present, columns=order).to_csv(out_dir / "merge_table.csv")
    delta, marks = transfer(cells, comps, models)
    delta.to_csv(out_dir / "transfer_matrix.csv")
    comps.to_csv(out_dir / "comparisons.csv", index=False)
    r["passes"].to_csv(out_dir / "pass_at_k.csv", index=False)
    r["seeds"].to_csv(out_dir / "seeds.csv", index=False)
    r["compute"].round(4).to_csv(out_dir / "compute_table.csv", index=False)
    r["cost"].to_csv(out_dir / "cost.csv", index=False)
    r["curves"].to_csv(out_dir / "curves.csv", index=False)
    r["merge_records"].to_csv(out_dir / "merge_records.csv", index=False)
    shown = transfer_display(delta, marks)
    md = {"main_table": to_markdown(cells_display(cells, models), captions.MAIN),
          "merge_table": to_markdown(cells_display(merge_cells, merge_models), captions.MERGES),
          "transfer_matrix": to_markdown(shown, captions.TRANSFER),
          "comparisons": to_markdown(comparisons_display(comps).set_index("family"), captions.COMPARISONS),
          "pass_at_k": to_markdown(pass_display(r["passes"]), captions.PASS),
          "seeds": to_markdown(r["seeds"].set_index("model"), captions.SEEDS),
          "compute_table": compute_markdown(r["compute"], r["ratio"], r["grid"].experts),
          "cost": to_markdown(r["cost"].round(4).set_index("model"), captions.COST)}
    for name, text in md.items():
        (out_dir / f"{name}.md").write_text(text)
    r["transfer"] = shown
    r["transfer_raw"] = (delta, marks)
    return md


def transfer_display(delta: pd.DataFrame, marks: pd.DataFrame) -> pd.DataFrame:
    star = lambda p: "" if pd.isna(p) else "**" if p < 0.01 else "*" if p < 0.05 else ""  # noqa: E731
    return pd.DataFrame([[f"{pct(delta.iat[i, j], True)}{star(marks.iat[i, j])}" for j in range(delta.shape[1])]
                         for i in range(delta.shape[0])], index=delta.index, columns=delta.columns)


def write_figures(r: dict, out_dir: Path) -> str:
    cells, models = r["cells"], r["models"]
    figures.main_figure(cells, models, r["benchmarks"], out_dir / "main_table.png")
    delta, marks = r["transfer_raw"]
    figures.transfer_figure(delta.T, marks.T, out_dir / "transfer.png")
    merges = [m for m in models if m.startswith("merge-")]
    table = cells.set_index(["model", "benchmark"])["strict"]
    best = r["comparisons"][r["comparisons"]["family"] == "merge_vs_best_expert"]
    refs = {"rl-mixed": {b: table.get(("rl-mixed", b), float("nan")) for b in dict.fromkeys(cells["benchmark"])},
            "best expert": {row.benchmark: table.get((row.a, row.benchmark)) - row.strict_diff
                            for row in best.itertuples()}}
    figures.merge_figure(cells[cells["model"].isin(merges)], merges, refs, out_dir / "merge_methods.png")
    axis = figures.cost_figure(r["cost"], out_dir / "quality_vs_cost.png")
    figures.curves_figure(r["curves"], list(r["grid"].domains), out_dir / "reward_curves.png")
    return axis


def analysis_markdown(kind: str, payload, caption: str, out_dir: Path) -> str:
    """One analysis item in report.md: a table, a figure linked relative to the report, or a sentence."""
    if kind == "table":
        return to_markdown(payload, caption)
    if kind == "figure":
        return f"![{caption}]({os.path.relpath(payload, out_dir)})"
    return payload


def write_pages(r: dict, md: dict[str, str], cost_axis: str, out_dir: Path) -> None:
    """report.md (the Markdown tables) and report.html (tables and figures, each with its caption)."""
    intro = captions.intro(r)
    (out_dir / "report.md").write_text("\n".join(
        ["# mixmerge report", "", intro, "", md["main_table"], "![avg@k per model and benchmark](main_table.png)",
         "", md["comparisons"], md["pass_at_k"], md["merge_table"], md["transfer_matrix"],
         to_markdown(r["merge_records"].set_index("node"), captions.MERGE_RECORDS), md["seeds"],
         md["compute_table"], md["cost"], "## Headroom after SFT", "",
         *(analysis_markdown(kind, payload, caption, out_dir) for kind, payload, caption in r["headroom"]),
         "## Mechanism analyses", "",
         *(analysis_markdown(kind, payload, caption, out_dir) for kind, payload, caption in r["analyses"])]))
    page = Page("mixmerge report: mix or merge?")
    page.paragraph(intro)
    for section, items in captions.sections(r, cost_axis, FAMILIES):
        page.heading(section)
        for kind, payload, caption in items:
            if kind == "figure":
                page.figure(out_dir / payload, caption)
            elif kind == "text":
                page.paragraph(payload)
            else:
                page.table(payload, caption, index=kind == "table")
    page.write(out_dir / "report.html")
