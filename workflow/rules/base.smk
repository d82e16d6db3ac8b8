rule base_model:
    output:
        directory("results/models/base"),
    params:
        run=MIXMERGE,
        spec=as_json(config["base"].get("tiny", {})),
        domains=" ".join(DOMAINS),
        seed=config["seed"],
    conda:
        "../envs/train.yaml"
    log:
        "logs/base_model.log",
    benchmark:
        "benchmarks/base_model/base.tsv"
    shell:
        "{params.run} base --spec {params.spec:q} --domains {params.domains} --seed {params.seed} "
        "--out {output} > {log} 2>&1"
