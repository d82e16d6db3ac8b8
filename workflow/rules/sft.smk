rule sft:
    input:
        base=model_dir("base"),
        train=sft_inputs(),
    output:
        model_output("results/models/sft", "sft"),
    params:
        run=RUN_SFT,
        settings=as_json(config["sft"]),
        data=sft_data_args(),
        checkpoints="results/checkpoints/sft",
        seed=config["seed"],
    threads: stage_threads("sft")
    resources:
        gpu=config["gpus"]["sft"],
    conda:
        "../envs/train.yaml"
    log:
        out="logs/sft.log",
        tensorboard=grid.tensorboard_dir("sft"),
    benchmark:
        "benchmarks/sft/sft.tsv"
    shell:
        "{params.run} sft --base {input.base} {params.data} --settings {params.settings:q} "
        "--seed {params.seed} --threads {threads} --out {output} --checkpoints {params.checkpoints} "
        "--tensorboard {log.tensorboard} > {log.out} 2>&1"
