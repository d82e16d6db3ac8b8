rule report:
    input:
        eval_outputs(),
    output:
        [f"results/report/{name}" for name in REPORT_FILES],
    params:
        config=as_json(config),
    log:
        "logs/report.log",
    shell:
        "{MIXMERGE} report --config {params.config:q} --eval-dir results/eval --bench-dir benchmarks "
        "--out results/report > {log} 2>&1"
