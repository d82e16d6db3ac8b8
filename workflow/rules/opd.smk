# opd: multi-teacher on-policy distillation. Student = sft, teachers = every rl-<domain> (each response scored by
# its domain's expert), prompts = the mixed blend with its domain column. One run per training seed (opd.s1
# distils the .s1 experts). With opd.teachers.backend vllm_server the launcher serves the experts on GPUs of the
# job (logs/opd/<node>.teachers/) and trains on the rest.
rule opd:
    input:
        sft=node_model_input("sft"),
        experts=lambda w: [model_dir(e) for e in GRID.teachers_of(w.opd).values()],
        train=list(train_files(DOMAINS).values()),
    output:
        model_output("results/models/{opd}", "opd"),
    params:
        run=opd_launcher,
        model=sft_model,
        sft_path=sft_path_param(),
        teachers=opd_teachers,
        settings=as_json(opd_settings()),
        train=train_args(DOMAINS),
        checkpoints="results/checkpoints/{opd}",
        seed=lambda w: GRID.seed_of(w.opd),
    threads: stage_threads("opd")
    resources:
        gpu=config["gpus"]["opd"],
    conda:
        "../envs/train.yaml"
    log:
        out="logs/opd/{opd}.log",
        tensorboard=grid.tensorboard_dir("{opd}"),
    benchmark:
        "benchmarks/opd/{opd}.tsv"
    shell:
        "{params.run} opd --node {wildcards.opd} --model {params.model} --teachers {params.teachers} "
        "--train {params.train} --settings {params.settings:q} --seed {params.seed} --threads {threads} "
        "--out {output} --checkpoints {params.checkpoints} --tensorboard {log.tensorboard} > {log.out} 2>&1"
