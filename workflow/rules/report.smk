rule report:
    input:
        **report_inputs(),
    output:
        report_outputs(),
    params:
        run=MIXMERGE,
        spec=as_json(report_spec()),
    conda:
        "../envs/report.yaml"
    log:
        "logs/report.log",
    shell:
        "{params.run} report --spec {params.spec:q} --out results/report > {log} 2>&1"
