# rl-<domain>: one GRPO expert per domain; rl-mixed: one GRPO run on the blend of all domains.
rule grpo:
    input:
        model=node_model_input("sft"),
        train=lambda w: list(train_files(rl_domains(w)).values()),
    output:
        model_output("results/models/rl-{rl}", "grpo"),
    wildcard_constraints:
        rl="|".join(DOMAINS + ["mixed"]),
    params:
        model=sft_source(),
        settings=as_json(grpo_settings()),
        reward=as_json(config["reward"]),
        train=lambda w: train_args(rl_domains(w)),
        steps=lambda w: config["grpo"]["steps"][w.rl],
        checkpoints="results/checkpoints/rl-{rl}",
    threads: config["threads"]
    resources:
        gpu=config["gpus"]["grpo"],
    conda:
        "../envs/train.yaml"
    log:
        "logs/grpo/rl-{rl}.log",
    benchmark:
        "benchmarks/grpo/rl-{rl}.tsv"
    shell:
        "{RUN_GRPO} grpo --node rl-{wildcards.rl} --model {params.model} --train {params.train} "
        "--settings {params.settings:q} --reward {params.reward:q} --steps {params.steps} --seed {config[seed]} "
        "--threads {threads} --out {output} --checkpoints {params.checkpoints} > {log} 2>&1"
