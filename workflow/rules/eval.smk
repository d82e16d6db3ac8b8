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


# After SFT, before RL: avg@k, pass@k and the format share of the SFT model on a slice of each domain's
# training prompts; a domain where pass@k - avg@k < min_gap gets a warning naming it (in the log and the report).
rule headroom:
    input:
        model=node_model_input("sft"),
        train=list(train_files(DOMAINS).values()),
    output:
        grid.HEADROOM,
    params:
        run=RUN_EVAL,
        model=node_model_path("sft"),
        train=train_args(DOMAINS),
        settings=as_json(config["headroom"]),
        eval_settings=as_json(config["eval"]),
        reward=as_json(config["reward"]),
    threads: 1
    resources:
        gpu=config["gpus"]["eval"],
    conda:
        "../envs/eval.yaml"
    log:
        "logs/headroom.log",
    benchmark:
        "benchmarks/headroom.tsv"
    shell:
        "{params.run} headroom --model {params.model} --train {params.train} --settings {params.settings:q} "
        "--eval-settings {params.eval_settings:q} --reward {params.reward:q} --threads {threads} --out {output} "
        "> {log} 2>&1"
