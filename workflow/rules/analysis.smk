# The study's mechanism analyses (§6): results/analysis/<name>/ = table.csv, figure.png, settings.json.
# Each reads what earlier rules wrote (model weights, per-item eval records); `snakemake <one output>` reruns one.
rule weight_shift:
    input:
        sft=node_model_input("sft"),
        nodes=[model_dir(n) for n in GRID.compared],
    output:
        **grid.analysis_outputs("weight_shift"),
    params:
        run=MIXMERGE,
        sft=sft_model,
        sft_path=sft_path_param(),
        nodes=" ".join(f"{n}={model_dir(n)}" for n in GRID.compared),
        settings=as_json(config["analysis"]["weight_shift"]),
    threads: stage_threads("analysis")
    conda:
        "../envs/report.yaml"
    log:
        "logs/analysis/weight_shift.log",
    benchmark:
        "benchmarks/analysis/weight_shift.tsv"
    shell:
        "{params.run} weight-shift --sft {params.sft} --node {params.nodes} --settings {params.settings:q} "
        "--threads {threads} --out table={output.table} density={output.density} figure={output.figure} "
        "settings={output.settings} > {log} 2>&1"


rule skill_inheritance:
    input:
        records_of(["sft", *EXPERTS, *combined_models()]),
    output:
        **grid.analysis_outputs("skill_inheritance"),
    params:
        run=MIXMERGE,
        spec=as_json(report_spec()),
        settings=as_json(config["analysis"]["skill_inheritance"]),
    conda:
        "../envs/report.yaml"
    log:
        "logs/analysis/skill_inheritance.log",
    benchmark:
        "benchmarks/analysis/skill_inheritance.tsv"
    shell:
        "{params.run} skill-inheritance --spec {params.spec:q} --settings {params.settings:q} "
        "--out table={output.table} figure={output.figure} settings={output.settings} > {log} 2>&1"


rule pairwise_merges:
    input:
        records_of([*EXPERTS, *GRID.pairwise_merges]),
    output:
        **grid.analysis_outputs("pairwise_merges"),
    params:
        run=MIXMERGE,
        spec=as_json(report_spec()),
        settings=as_json(config["analysis"]["pairwise_merges"]),
    conda:
        "../envs/report.yaml"
    log:
        "logs/analysis/pairwise_merges.log",
    benchmark:
        "benchmarks/analysis/pairwise_merges.tsv"
    shell:
        "{params.run} pairwise-merges --spec {params.spec:q} --settings {params.settings:q} "
        "--out table={output.table} figure={output.figure} settings={output.settings} > {log} 2>&1"


# Scores the experts' own eval samples under each expert and rl-mixed (forward passes on the eval GPUs).
rule kl_neighbourhood:
    input:
        records=records_of(["rl-mixed", *EXPERTS]),
        models=[model_dir(n) for n in [*EXPERTS, "rl-mixed"]],
        rows=[bench_file(b) for b in BENCHMARKS],
    output:
        **grid.analysis_outputs("kl_neighbourhood"),
    params:
        run=RUN_EVAL,
        spec=as_json(report_spec()),
        settings=as_json(config["analysis"]["kl_neighbourhood"]),
        models=" ".join(f"{n}={model_dir(n)}" for n in [*EXPERTS, "rl-mixed"]),
        rows=" ".join(f"{b}={bench_file(b)}" for b in BENCHMARKS),
    threads: stage_threads("analysis")
    resources:
        gpu=config["gpus"]["eval"],
    conda:
        "../envs/eval.yaml"
    log:
        "logs/analysis/kl_neighbourhood.log",
    benchmark:
        "benchmarks/analysis/kl_neighbourhood.tsv"
    shell:
        "{params.run} kl-neighbourhood --spec {params.spec:q} --settings {params.settings:q} "
        "--model {params.models} --bench {params.rows} --threads {threads} --out table={output.table} "
        "correlation={output.correlation} figure={output.figure} settings={output.settings} > {log} 2>&1"


# Each model judges a seeded subset of its own eval samples (generation on the eval GPUs).
rule self_verification:
    input:
        records=list(judged_records().values()),
        models=[node_model_input(n) for n in judged_models()],
        rows=[bench_file(b) for b in BENCHMARKS],
    output:
        **grid.analysis_outputs("self_verification"),
    params:
        run=RUN_EVAL,
        # a function: the judge prompt's {question} and {response} are not wildcards
        settings=lambda wildcards: as_json(config["analysis"]["self_verification"]),
        eval=as_json(config["eval"]),
        models=" ".join(f"{n}={path}" for n, path in judged_models().items()),
        rows=" ".join(f"{b}={bench_file(b)}" for b in BENCHMARKS),
        records=" ".join(f"{n}:{b}={path}" for (n, b), path in judged_records().items()),
    threads: stage_threads("analysis")
    resources:
        gpu=config["gpus"]["eval"],
    conda:
        "../envs/eval.yaml"
    log:
        "logs/analysis/self_verification.log",
    benchmark:
        "benchmarks/analysis/self_verification.tsv"
    shell:
        "{params.run} self-verification --settings {params.settings:q} --eval-settings {params.eval:q} "
        "--model {params.models} --bench {params.rows} --records {params.records} --threads {threads} "
        "--out table={output.table} figure={output.figure} settings={output.settings} > {log} 2>&1"
