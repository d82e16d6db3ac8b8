"""The study's mechanism analyses (study §6), one module each: weight_shift (§6.1), pairwise_merges (§6.3) and
skill_inheritance (§6.4). Each is pure functions plus a writer of ``results/analysis/<name>/`` (a CSV table, a
figure, a JSON of settings); ``mixmerge.analysis.commands`` holds their CLI sub-commands."""
