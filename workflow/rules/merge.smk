# merge-<name>: base = sft, experts = every rl-<domain>; one node per method and parameter value, and per
# training seed (merge-ties.s1 merges the .s1 experts).
rule merge:
    input:
        sft=node_model_input("sft"),
        experts=merge_experts,
    output:
        model_output("results/models/merge-{merge}", "merge"),
    params:
        run=RUN_MERGE,
        base=sft_model,
        sft_path=sft_path_param(),
        method=lambda w: merge_point(w)["method"],
        params=lambda w: as_json(merge_point(w)["params"]),
        seed=config["merge_seed"],
        dtype=config["merge_dtype"],
        device="cuda" if config["gpus"]["merge"] > 0 else "cpu",
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
        "--experts {input.experts} --seed {params.seed} --dtype {params.dtype} --device {params.device} --out {output} "
        "> {log} 2>&1"
