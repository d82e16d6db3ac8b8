rule base_model:
    output:
        directory("results/models/base"),
    params:
        spec=as_json(config["base"].get("tiny", {})),
        domains=" ".join(DOMAINS),
    log:
        "logs/base_model.log",
    benchmark:
        "benchmarks/base_model/base.tsv"
    shell:
        "{MIXMERGE} base --spec {params.spec:q} --domains {params.domains} --seed {config[seed]} "
        "--out {output} > {log} 2>&1"
