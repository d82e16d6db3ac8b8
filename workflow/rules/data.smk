rule data_prep:
    output:
        train="results/data/{domain}/train.parquet",
        held_out="results/data/{domain}/eval.parquet",
    params:
        out="results/data/{domain}",
    log:
        "logs/data_prep/{domain}.log",
    benchmark:
        "benchmarks/data_prep/{domain}.tsv"
    shell:
        "{MIXMERGE} data --domain {wildcards.domain} --train-n {config[data][train_per_domain]} "
        "--eval-n {config[data][eval_per_domain]} --seed {config[seed]} --out {params.out} > {log} 2>&1"
