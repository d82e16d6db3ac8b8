rule report:
    input:
        **report_inputs(),
    output:
        report_outputs(),
    params:
        spec=as_json(report_spec()),
    log:
        "logs/report.log",
    shell:
        "{MIXMERGE} report --spec {params.spec:q} --out results/report > {log} 2>&1"
