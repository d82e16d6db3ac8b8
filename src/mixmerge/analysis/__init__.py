"""The study's mechanism analyses (study §6), one module each: weight_shift (§6.1), kl_neighbourhood (§6.2),
pairwise_merges (§6.3), skill_inheritance (§6.4) and self_verification (§6.5). Each is pure functions plus a writer
of ``results/analysis/<name>/`` (a CSV table, a figure, a JSON of settings); ``mixmerge.analysis.commands`` holds
their CLI sub-commands and ``mixmerge.analysis.plots`` their figures."""
