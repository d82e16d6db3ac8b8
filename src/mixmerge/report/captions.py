"""What each table and figure of the report shows and how it was computed (the captions), and the order of the
HTML page's sections."""
from __future__ import annotations

from mixmerge.report import stats
from mixmerge.report.compute import with_study_reference
from mixmerge.report.render import cells_display, comparisons_display, pass_display

CI = (f"{int(100 * stats.LEVEL)}% percentile bootstrap CI over items ({stats.N_BOOT} resamples; an item's k "
      "samples stay together; for Avg. items are resampled within each benchmark)")
MAIN = ("Main table: avg@k in %, strict (the reward: answer and format) ±SE [" + CI + "] / lenient (right answer, "
        "any format) ±SE. n = items, k = samples per item; with several training seeds: the mean over seeds and "
        "their standard deviation (seed sd)")
MERGES = "Merge methods (and rl-mixed): avg@k in %, as in the main table"
TRANSFER = ("Transfer: strict avg@k minus SFT, points; * Holm-adjusted p < 0.05, ** < 0.01 (paired sign-flip "
            "test over the same items; families rl_vs_sft and merge_vs_sft)")
COMPARISONS = ("Paired comparisons: a minus b on the same items, in points; Δ strict with its bootstrap CI and SE; p "
               f"from a two-sided paired sign-flip permutation test ({stats.N_PERM} sign patterns, ties count half), "
               "Holm-corrected within each family; Δ lenient beside it, so a gain that is only format reads "
               "'format only'")
PASS = ("Unbiased pass@k' (strict) in %, for every k' <= k: the mean over items of 1 - C(k-c, k')/C(k, k') with c of "
        "the k samples correct; the mean over seeds")
SEEDS = "Every training seed's avg@k (fractions): the replicas that the tables average"
COST = ("Cost of each final model: its own GPU-hours and those of its parents (SFT; for a merge or opd also the "
        "experts it merges or distils), wall hours alike, the mean over seeds, beside its Avg. strict avg@k and CI")
MERGE_RECORDS = ("Merge nodes: family (mergekit = stock mergekit method; study = the study's exact semantics), "
                 "parameters, notes")
COMPUTE = ("Compute per node: wall seconds measured by the training process summed over every attempt (a resumed "
           "job counts each attempt), with the GPU-lease wait and the model loading shown apart, and the GPUs "
           "the run recorded (source: run record); merges and evaluations, and runs without a record, use their "
           "Snakemake benchmark file (the last attempt) and the configured GPUs. GPU-hours = wall time x GPUs; "
           "study_gpu_hours: the study's own figure for that run (Table 2: experts, rl-mixed, MT-OPD)")

WEIGHT_SHIFT = ("Weight-shift footprint (study §6.1, Table 5) per node pair, relative to SFT over all n weights: a "
                "weight changed when |w - w_SFT| > eta·max(|w|, |w_SFT|) (eta in settings.json); density = share "
                "changed; Jaccard of the changed sets (exact count, no sampling) beside the random reference for "
                "independent masks of the same densities, pq/(p+q-pq), and one seeded draw of such masks; cosine of "
                "the shifts w - w_SFT, exact and after a seeded orthonormal random projection (mean ±sd over the "
                "projection seeds), over all weights and over the pair's jointly changed weights. The first "
                "training seed's nodes")
DENSITY = "Update density (% of weights changed vs SFT) per node and tensor family; n = weights in the family"
KL = ("KL cross-matrix (study §6.2, Figure 4): Monte-Carlo KL(E_B ‖ rl-mixed) = the mean over E_B's own eval "
      "samples on the benchmark of log π_EB(y|x) − log π_mixed(y|x), re-scored by both models (teacher forcing; "
      "samples drawn at the benchmark's temperature and top-p, so with top-p < 1 or temperature ≠ 1 the estimate "
      "is of the truncated sampler's KL), per sequence and per token, with " + f"{int(100 * stats.LEVEL)}% "
      "percentile bootstrap CIs over items; ε from KL(E_A ‖ rl-mixed) on the benchmark's own domain A by the "
      "configured rule (settings.json); neighbour = KL < ε; ΔPerf = rl-mixed minus E_B on the same items (strict "
      "avg@k, paired bootstrap CI)")
KL_CORRELATION = ("Pearson's r between KL(E_B ‖ rl-mixed) and ΔPerf over the matrix's cells, with the Fisher-z 95% "
                  "CI and two-sided p (the study reports no significant correlation)")
INHERITANCE = ("Skill inheritance (study §6.4, Figure 5): per benchmark, per-item gains over SFT g(i) = max(a(i) - "
               "a_SFT(i), 0), a = the item's mean strict score over its k samples (and training seeds); consistency "
               f"= cosine(g_union, g_model), g_union = the experts' item-wise maximum; {int(100 * stats.LEVEL)}% "
               f"percentile bootstrap CI over items ({stats.N_BOOT} resamples, an item's two gains resampled "
               "together); n = items every model has; mean gain in points")
PAIRWISE = ("Pairwise merges (study §6.3, Table 6): a merge of named experts against each of its domains' single "
            "expert on that domain's benchmarks (where it is evaluated), strict avg@k in %; Δ = merged minus "
            "expert on the same n items with a 95% paired bootstrap CI; p from the paired sign-flip test, Holm "
            "over the table")
VERIFICATION = ("Self-verification (study §6.5, Table 7): each model judges a seeded subset of its own eval samples "
                "(n items / samples) with the configured judge prompt, seeing the final answer only (outcome) or "
                "the whole response (process); label = the sample's strict score; correct = class balance; "
                "balanced accuracy = (TPR + TNR) / 2 with an unparsable verdict counted as wrong (and counted), "
                f"{int(100 * stats.LEVEL)}% percentile bootstrap CI over items")
ANALYSIS_FIGURES = {
    "weight_shift": "Left: Jaccard of the changed-weight masks for every node pair (fraction); middle: cosine of "
                    "the weight shifts after the random projection (mean over projection seeds); right: share of "
                    "weights changed vs SFT per tensor family (%).",
    "kl_neighbourhood": "KL(E_B ‖ rl-mixed) per expert (rows) and benchmark (columns), annotated with ΔPerf = "
                        "rl-mixed minus that expert (points); a green box marks a neighbour (KL below the "
                        "benchmark's ε).",
    "self_verification": "Balanced accuracy of each model judging its own samples, outcome vs process mode, "
                         "per benchmark; whiskers: 95% bootstrap CI over items; dotted line: chance (0.5).",
    "skill_inheritance": "Consistency cosine(g_union, g_model) per benchmark for rl-mixed, each merge and opd; "
                         "whiskers: 95% bootstrap CI over items.",
    "pairwise_merges": "Merged minus single expert (avg@k points) on each benchmark of the expert's domain; "
                       "whiskers: 95% paired bootstrap CI over items.",
}


def intro(r: dict) -> str:
    the_grid = r["grid"]
    settings = "; ".join(
        f"{b}: k={s.get('k')}, temperature {s.get('temperature')}, top_p {s.get('top_p')}, "
        f"max_new_tokens {s.get('max_new_tokens')}, {s.get('backend')} backend" for b, s in r["sampling"].items())
    return (f"{len(r['models'])} models x {len(r['benchmarks'])} benchmarks; training seeds "
            f"{list(the_grid.seeds)} (node ids of seed s > the first end in .s<s>; base and sft are shared). "
            f"Sampling: {settings}.")


def sections(r: dict, cost_axis: str, families: dict[str, str]) -> list:
    """[(section title, [(kind, payload, caption)])]: kind "figure" (payload: a PNG in the report directory, or
    a path), "table" (a DataFrame shown with its index), "rows" (without) or "text" (a sentence)."""
    cells, models = r["cells"], r["models"]
    merges = [m for m in models if m.startswith("merge-") or m in ("rl-mixed", "opd")]
    axis = ("total GPU-hours" if cost_axis == "gpu_hours" else
            "total wall-clock hours (this grid recorded no GPUs, so GPU-hours are 0)")
    family_text = "; ".join(f"{k}: {v}" for k, v in families.items())
    return [
        ("Quality", [
            ("figure", "main_table.png", "Every model on every benchmark: bars = strict avg@k with whiskers = "
             + CI + "; open diamonds = lenient avg@k. Colours: grey base/SFT, blue experts, red rl-mixed, "
             "purple opd, "
             "green merges."),
            ("table", cells_display(cells, models), MAIN)]),
        ("Paired comparisons", [("rows", comparisons_display(r["comparisons"]), COMPARISONS + ". Families: "
                                 + family_text)]),
        ("Transfer", [
            ("figure", "transfer.png", "Change of strict avg@k over SFT in points for every model and benchmark; "
             "marks: Holm-adjusted paired sign-flip p < 0.05 (*) or < 0.01 (**)."),
            ("table", r["transfer"], TRANSFER)]),
        ("Merge methods", [
            ("figure", "merge_methods.png", "Each merge node's strict avg@k with " + CI + "; dashed red line: "
             "rl-mixed; dotted blue line: the best expert on that benchmark (Avg.: the mean of the best experts)."),
            ("table", cells_display(cells[cells["model"].isin(merges)], merges), MERGES),
            ("table", r["merge_records"].set_index("node"), MERGE_RECORDS)]),
        ("pass@k'", [("table", pass_display(r["passes"]), PASS)]),
        ("Cost", [
            ("figure", "quality_vs_cost.png", f"Average strict avg@k over the benchmarks (whiskers: {CI}) against "
             f"the {axis} to produce each model, counting its parents (SFT; the experts for a merge or opd); "
             "the black step line is the Pareto front (no model is cheaper and better)."),
            ("table", r["cost"].round(4).set_index("model"), COST),
            ("table", with_study_reference(r["compute"].round(2).set_index("node")), COMPUTE)]),
        ("Headroom after SFT", r.get("headroom", [])),
        ("Training", [
            ("figure", "reward_curves.png", "Per-domain mean reward during GRPO of every RL node (solid: the "
             "domain's expert; dashed: rl-mixed, whose reward functions route by domain), read from the runs' "
             "TensorBoard event files (TRL report_to: tensorboard), or from TRL's log history in the model when a "
             "run has none (column 'source' of curves.csv)."),
            ("table", r["seeds"].round(4).set_index("model"), SEEDS)]),
        ("Mechanism analyses", r.get("analyses", [])),
    ]

