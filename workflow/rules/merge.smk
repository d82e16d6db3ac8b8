# merge-<name>: base = sft, experts = every rl-<domain>; one node per method and parameter value.
rule merge:
    input:
        sft=node_model_input("sft"),
        experts=[model_dir(e) for e in EXPERTS],
    output:
        model_output("results/models/merge-{merge}", "merge"),
    params:
        run=RUN_MERGE,
        base=sft_model,
        sft_path=sft_path_param(),
        method=lambda w: MERGES[w.merge]["method"],
        params=lambda w: as_json(MERGES[w.merge]["params"]),
        seed=config["merge_seed"],
        dtype=config["merge_dtype"],
    resources:
        gpu=config["gpus"]["merge"],
    conda:
        "../envs/merge.yaml"
    log:
        "logs/merge/merge-{merge}.log",
    benchmark:
        "benchmarks/merge/merge-{merge}.tsv"
    shell:
        "{params.run} merge --method {params.method} --params {params.params:q} --base {params.base} "
        "--experts {input.experts} --seed {params.seed} --dtype {params.dtype} --out {output} "
        "> {log} 2>&1"
