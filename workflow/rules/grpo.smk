# rl-<domain>: one GRPO expert per domain; rl-mixed: one GRPO run on the blend of all domains. One run per
# training seed (``seeds``): rl-math, rl-math.s1, ... (mixmerge.grid).
rule grpo:
    input:
        sft=node_model_input("sft"),
        train=lambda w: list(train_files(rl_domains(w)).values()),
        validation=lambda w: list(grpo_eval_files(w).values()),
    output:
        model_output("results/models/rl-{rl}", "grpo"),
    wildcard_constraints:
        rl="|".join(f"{r}{t}".replace(".", r"\.") for r in DOMAINS for t in TAGS),
    params:
        run=RUN_GRPO,
        model=sft_model,
        sft_path=sft_path_param(),
        settings=as_json(grpo_settings()),
        reward=as_json(config["reward"]),
        train=lambda w: train_args(rl_domains(w)),
        validation=grpo_eval_args,
        steps=lambda w: config["grpo"]["steps"][rl_name(w)],
        checkpoints="results/checkpoints/rl-{rl}",
        seed=lambda w: GRID.seed_of(f"rl-{w.rl}"),
    threads: stage_threads("grpo")
    resources:
        gpu=config["gpus"]["grpo"],
    conda:
        "../envs/train.yaml"
    log:
        out="logs/grpo/rl-{rl}.log",
        tensorboard=grid.tensorboard_dir("rl-{rl}"),
    benchmark:
        "benchmarks/grpo/rl-{rl}.tsv"
    shell:
        "{params.run} grpo --node rl-{wildcards.rl} --model {params.model} --train {params.train} "
        "--settings {params.settings:q} --reward {params.reward:q} --steps {params.steps} --seed {params.seed} "
        "--threads {threads} --out {output} --checkpoints {params.checkpoints} {params.validation} "
        "--tensorboard {log.tensorboard} > {log.out} 2>&1"


# The mixed run is the longest job on the critical path (sft -> rl-mixed -> its eval): start it before the experts.
use rule grpo as grpo_mixed with:
    wildcard_constraints:
        rl="|".join(f"mixed{t}".replace(".", r"\.") for t in TAGS),
    priority: 10
