# One job per model node evaluates every benchmark of that node with one model load: the cells
# results/eval/<node>/<benchmark>.{jsonl,json}. Nodes evaluated on the same benchmarks share a rule (pairwise merges
# see only their own domains' benchmarks). Rerunning one cell (snakemake -f results/eval/<node>/<bench>.json)
# reruns its node's job.
for rule_name, benches, nodes in GRID.eval_rules():

    rule:
        name:
            rule_name
        wildcard_constraints:
            node="|".join(re.escape(n) for n in nodes),
        input:
            model=lambda w: node_model_input(w.node),
            data=[bench_file(b) for b in benches],
        output:
            jsonl=[f"results/eval/{{node}}/{b}.jsonl" for b in benches],
            summary=[f"results/eval/{{node}}/{b}.json" for b in benches],
        params:
            run=RUN_EVAL,
            model=eval_model_path,
            settings=as_json(config["eval"]),
            cells=lambda w, benches=benches: eval_cell_args(w.node, benches),
        threads: 1
        resources:
            gpu=config["gpus"]["eval"],
        conda:
            "../envs/eval.yaml"
        log:
            "logs/eval/{node}.log",
        benchmark:
            "benchmarks/eval/{node}.tsv"
        shell:
            "{params.run} eval --model {params.model} --node {wildcards.node} --eval-settings {params.settings:q} "
            "--threads {threads} {params.cells} > {log} 2>&1"


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
        model=lambda w: node_model_path("sft"),
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
