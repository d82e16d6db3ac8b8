if config["data"]["source"] == "tiny":

    rule data_prep:
        output:
            train="results/data/{domain}/train.parquet",
            held_out="results/data/{domain}/eval.parquet",
        params:
            run=MIXMERGE,
            out="results/data/{domain}",
            train_n=config["data"]["train_per_domain"],
            eval_n=config["data"]["eval_per_domain"],
            seed=config["seed"],
        conda:
            "../envs/data.yaml"
        log:
            "logs/data_prep/{domain}.log",
        benchmark:
            "benchmarks/data_prep/{domain}.tsv"
        shell:
            "{params.run} data --domain {wildcards.domain} --train-n {params.train_n} "
            "--eval-n {params.eval_n} --seed {params.seed} --out {params.out} > {log} 2>&1"

else:

    # RL training rows for every domain from the one blend file (one read, one job).
    rule rl_blend:
        input:
            tokenizer=blend_tokenizer_input(),
        output:
            train=[f"results/data/{d}/train.parquet" for d in DOMAINS],
            cards=[f"results/data/{d}/train.card.json" for d in DOMAINS],
        params:
            run=MIXMERGE,
            spec=as_json(config["data"]["rl_blend"]),
            domains=" ".join(DOMAINS),
            tokenizer=blend_tokenizer(),
            cache=cache_arg(),
        conda:
            "../envs/data.yaml"
        log:
            "logs/data_prep/rl_blend.log",
        benchmark:
            "benchmarks/data_prep/rl_blend.tsv"
        shell:
            "{params.run} data-blend --spec {params.spec:q} --domains {params.domains} "
            "--tokenizer {params.tokenizer} {params.cache} --out-dir results/data > {log} 2>&1"

    rule sft_blend:
        output:
            rows=SFT_CHATS,
            card=SFT_CHATS.replace(".parquet", ".card.json"),
        params:
            run=MIXMERGE,
            spec=lambda w: as_json(config["data"]["sft_blend"]),
            cache=cache_arg(),
        conda:
            "../envs/data.yaml"
        log:
            "logs/data_prep/sft_blend.log",
        benchmark:
            "benchmarks/data_prep/sft_blend.tsv"
        shell:
            "{params.run} data-sft --spec {params.spec:q} {params.cache} --out {output.rows} > {log} 2>&1"

    rule bench_prep:
        output:
            rows="results/data/bench/{benchmark}.parquet",
            card="results/data/bench/{benchmark}.card.json",
        params:
            run=MIXMERGE,
            spec=lambda w: as_json(bench_data_spec(w.benchmark)),
            cache=cache_arg(),
        conda:
            "../envs/data.yaml"
        log:
            "logs/data_prep/bench/{benchmark}.log",
        benchmark:
            "benchmarks/data_prep/bench/{benchmark}.tsv"
        shell:
            "{params.run} data-bench --name {wildcards.benchmark} --spec {params.spec:q} {params.cache} "
            "--out {output.rows} > {log} 2>&1"
