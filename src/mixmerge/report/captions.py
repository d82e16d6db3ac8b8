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


def intro(r: dict) -> str:
    the_grid = r["grid"]
    settings = "; ".join(
        f"{b}: k={s.get('k')}, temperature {s.get('temperature')}, top_p {s.get('top_p')}, "
        f"max_new_tokens {s.get('max_new_tokens')}, {s.get('backend')} backend" for b, s in r["sampling"].items())
    return (f"{len(r['models'])} models x {len(r['benchmarks'])} benchmarks; training seeds "
            f"{list(the_grid.seeds)} (node ids of seed s > the first end in .s<s>; base and sft are shared). "
            f"Sampling: {settings}.")


def sections(r: dict, cost_axis: str, families: dict[str, str]) -> list:
    """[(section title, [(kind, payload, caption)])]: kind "figure" (payload: a PNG in the report directory),
    "table" (a DataFrame shown with its index) or "rows" (without)."""
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
        ("Training", [
            ("figure", "reward_curves.png", "Per-domain mean reward during GRPO of every RL node (solid: the "
             "domain's expert; dashed: rl-mixed, whose reward functions route by domain), read from the runs' "
             "TensorBoard event files (TRL report_to: tensorboard), or from TRL's log history in the model when a "
             "run has none (column 'source' of curves.csv)."),
            ("table", r["seeds"].round(4).set_index("model"), SEEDS)]),
    ]

