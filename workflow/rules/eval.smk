# One cell per (model node, benchmark): results/eval/<node>/<benchmark>.{jsonl,json}
rule evaluate:
    input:
        model=lambda w: node_model_input(w.node),
        data=lambda w: bench_file(w.benchmark),
    output:
        jsonl="results/eval/{node}/{benchmark}.jsonl",
        summary="results/eval/{node}/{benchmark}.json",
    params:
        run=RUN_EVAL,
        model=eval_model_path,
        bench=lambda w: as_json(config["benchmarks"][w.benchmark]),
        settings=as_json(config["eval"]),
        reward=lambda w: as_json(bench_reward(w.benchmark)),
    threads: 1
    resources:
        gpu=config["gpus"]["eval"],
    conda:
        "../envs/eval.yaml"
    log:
        "logs/eval/{node}/{benchmark}.log",
    benchmark:
        "benchmarks/eval/{node}/{benchmark}.tsv"
    shell:
        "{params.run} eval --model {params.model} --node {wildcards.node} --benchmark {wildcards.benchmark} "
        "--bench {params.bench:q} --data {input.data} --eval-settings {params.settings:q} "
        "--reward {params.reward:q} --threads {threads} --out-jsonl {output.jsonl} --out-json {output.summary} "
        "> {log} 2>&1"
