# merge-<name>: base = sft, experts = every rl-<domain>; one node per method and parameter value.
rule merge:
    input:
        base=node_model_input("sft"),
        experts=[model_dir(e) for e in EXPERTS],
    output:
        model_output("results/models/merge-{merge}", "merge"),
    params:
        base=sft_source(),
        method=lambda w: MERGES[w.merge]["method"],
        params=lambda w: as_json(MERGES[w.merge]["params"]),
    resources:
        gpu=config["gpus"]["merge"],
    conda:
        "../envs/merge.yaml"
    log:
        "logs/merge/merge-{merge}.log",
    benchmark:
        "benchmarks/merge/merge-{merge}.tsv"
    shell:
        "{RUN_MERGE} merge --method {params.method} --params {params.params:q} --base {params.base} "
        "--experts {input.experts} --seed {config[merge_seed]} --dtype {config[merge_dtype]} --out {output} "
        "> {log} 2>&1"
