"""Pairwise-merge ablation (study §6.3, Table 6): a merge that names its experts (``experts: [math, code]``) is
compared, on each of its domains' benchmarks, with that domain's single expert: merged minus expert on the same
items, with a bootstrap CI and a paired sign-flip p-value (``mixmerge.report.stats.paired``), Holm-corrected over
the table. Such merges are evaluated on their own domains' benchmarks only (``Grid.evaluated_on``)."""
from __future__ import annotations


import numpy as np
import pandas as pd

from mixmerge.grid import Grid
from mixmerge.report import stats
from mixmerge.report.records import Scores, load_scores
from mixmerge.analysis.outputs import write_outputs

COLUMNS = ["merge", "experts", "domain", "benchmark", "n", "expert", "expert_score", "merged_score", "diff", "lo",
           "hi", "se", "p", "p_holm"]


def pair_rows(scores: dict[tuple[str, str], Scores], merge: str, domains: list[str],
              bench_domains: dict[str, str], metric: str, seed: int) -> list[dict]:
    """One row per benchmark of each of the merge's domains where both it and the domain's expert have records."""
    rows = []
    for domain in domains:
        expert = f"rl-{domain}"
        for bench in [b for b, d in bench_domains.items() if d == domain]:
            merged, single = scores.get((merge, bench)), scores.get((expert, bench))
            if merged is None or single is None:
                continue
            ids = sorted(set(merged.ids) & set(single.ids))
            a, b = merged.aligned(metric, ids), single.aligned(metric, ids)
            res = stats.paired([a], [b], seed=seed)
            rows.append({"merge": merge, "experts": "+".join(domains), "domain": domain, "benchmark": bench,
                         "n": res.n, "expert": expert, "expert_score": float(b.mean()),
                         "merged_score": float(a.mean()), "diff": res.diff, "lo": res.lo, "hi": res.hi, "se": res.se,
                         "p": res.p})
    return rows


def pairwise_table(scores: dict[tuple[str, str], Scores], the_grid: Grid, metric: str, seed: int) -> pd.DataFrame:
    bench_domains = dict(the_grid.bench_domains)
    rows = []
    for merge in the_grid.pairwise_merges:
        rows += pair_rows(scores, merge, list(the_grid.domains_of(merge)), bench_domains, metric, seed)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["p_holm"] = stats.holm(table["p"].to_numpy(dtype=float)) if len(table) else np.array([])
    return table


def run_pairwise_merges(spec: dict, settings: dict, out: dict[str, str], root: str = ".") -> pd.DataFrame:
    """Reads the grid's per-item eval records under ``root`` and writes the table, figure and settings."""
    from mixmerge.analysis.plots import pairwise_figure

    the_grid = Grid.from_config(spec)
    table = pairwise_table(load_scores(the_grid, root), the_grid, settings["metric"], settings["seed"])
    write_outputs(out, {"table": table}, lambda path: pairwise_figure(table, path),
                  {"analysis": "pairwise_merges", "settings": settings,
                   "merges": {m: list(the_grid.domains_of(m)) for m in the_grid.pairwise_merges},
                   "evaluated_on": "each pairwise merge is evaluated on its own domains' benchmarks only",
                   "bootstrap": {"level": stats.LEVEL, "resamples": stats.N_BOOT, "sign_flips": stats.N_PERM}})
    return table
