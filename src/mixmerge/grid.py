"""The grid, written once: node ids (with the training-seed axis), evaluation cells and every result path, for
the Snakefile and the report.

Seeds: ``seeds: [0, 1, 2]`` replicates the RL-trained nodes and the merges built from them. The first seed's
nodes keep the plain ids (``rl-math``, ``merge-ties``), so a one-seed grid has exactly the paths it always had;
every other seed ``s`` adds ``.s<s>`` (``rl-math.s1``, ``rl-mixed.s1``, ``merge-ties.s1``, whose experts are the
``.s1`` experts). ``base`` and ``sft`` are shared by all seeds: the axis measures the spread of RL training from
one SFT start. Without ``seeds`` the grid has one seed, the top-level ``seed``.
"""
from __future__ import annotations

from dataclasses import dataclass

RESULTS = "results"
TABLES = ("main_table", "pass_at_k", "merge_table", "transfer_matrix", "comparisons", "seeds", "compute_table",
          "cost")
FIGURES = ("main_table.png", "transfer.png", "merge_methods.png", "quality_vs_cost.png", "reward_curves.png")
REPORT_FILES = (*(f"{t}.{ext}" for t in TABLES for ext in ("csv", "md")), "merge_records.csv", "curves.csv",
                *FIGURES, "report.md", "report.html")


def train_rows(domain: str) -> str:
    return f"{RESULTS}/data/{domain}/train.parquet"


def held_out_rows(domain: str) -> str:
    return f"{RESULTS}/data/{domain}/eval.parquet"


def bench_rows(benchmark: str) -> str:
    return f"{RESULTS}/data/bench/{benchmark}.parquet"


SFT_CHATS = f"{RESULTS}/data/sft/train.parquet"
HEADROOM = f"{RESULTS}/headroom/sft.json"  # the SFT model on a training slice: what RL can gain


def model_dir(node: str) -> str:
    return f"{RESULTS}/models/{node}"


def checkpoint_dir(node: str) -> str:
    return f"{RESULTS}/checkpoints/{node}"


def model_card(node: str) -> str:
    """The provenance card a training job writes into its model (parents, settings, steps, compute)."""
    return f"{model_dir(node)}/mixmerge_card.json"


def tensorboard_dir(node: str) -> str:
    """TRL's TensorBoard event files of a trained node (``report_to: tensorboard``); the rule declares it as a
    log, and Snakemake leaves a non-empty one in place when a job reruns, so a resumed run's curve is whole."""
    return f"logs/tensorboard/{node}"


def eval_summary(node: str, benchmark: str) -> str:
    return f"{RESULTS}/eval/{node}/{benchmark}.json"


def eval_records(node: str, benchmark: str) -> str:
    return f"{RESULTS}/eval/{node}/{benchmark}.jsonl"


ANALYSES = ("weight_shift", "kl_neighbourhood", "pairwise_merges", "skill_inheritance", "self_verification")


def analysis_outputs(name: str) -> dict[str, str]:
    """``results/analysis/<name>/``: table.csv, figure.png, settings.json (weight_shift also density.csv,
    kl_neighbourhood also correlation.csv)."""
    files = {"table": "table.csv", "figure": "figure.png", "settings": "settings.json"}
    if name == "weight_shift":
        files["density"] = "density.csv"
    if name == "kl_neighbourhood":
        files["correlation"] = "correlation.csv"
    return {key: f"{RESULTS}/analysis/{name}/{file}" for key, file in files.items()}


def report_file(name: str) -> str:
    return f"{RESULTS}/report/{name}"


def benchmark_file(node: str) -> str:
    """The Snakemake benchmark file of the job that made ``node`` (its last attempt's wall time)."""
    if node == "sft":
        return "benchmarks/sft/sft.tsv"
    if node.startswith("rl-"):
        return f"benchmarks/grpo/{node}.tsv"
    if node.startswith("merge-"):
        return f"benchmarks/merge/{node}.tsv"
    if node.split(".")[0] == "opd":
        return f"benchmarks/opd/{node}.tsv"
    raise ValueError(f"node {node!r} is not trained or merged by the grid")


def eval_benchmark_file(node: str) -> str:
    """The Snakemake benchmark of a node's eval job (all its benchmarks, one model load)."""
    return f"benchmarks/eval/{node}.tsv"


def seed_tag(seed: int, primary: int) -> str:
    """The node-id suffix of a training seed: none for the first (primary) seed, ``.s<seed>`` otherwise."""
    return "" if seed == primary else f".s{seed}"


@dataclass(frozen=True)
class Grid:
    domains: tuple[str, ...]
    merges: tuple[str, ...]          # merge node suffixes, sweeps expanded
    benchmarks: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)    # training seeds; the first one's nodes have the plain ids
    # merges of named experts (``experts: [math, code]``): (merge suffix, its domains); the others merge all
    merge_domains: tuple[tuple[str, tuple[str, ...]], ...] = ()
    bench_domains: tuple[tuple[str, str], ...] = ()    # (benchmark, its domain), where known

    @classmethod
    def from_config(cls, config: dict) -> "Grid":
        from mixmerge.merging.methods import expand_merges

        seeds = tuple(int(s) for s in (config.get("seeds") or [config.get("seed", 0)]))
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"config key 'seeds': a seed is listed twice: {list(seeds)}")
        merges = expand_merges(config["merges"])
        benchmarks = config["benchmarks"]
        bench_domains = tuple((b, spec["domain"]) for b, spec in benchmarks.items()
                              if isinstance(spec, dict) and "domain" in spec) if isinstance(benchmarks, dict) else ()
        made = cls(tuple(config["domains"]), tuple(merges), tuple(benchmarks), seeds,
                   tuple((m, tuple(p["experts"])) for m, p in merges.items() if p.get("experts")), bench_domains)
        clash = [m for m in made.merges for s in seeds[1:] if m.endswith(seed_tag(s, seeds[0]))]
        if clash:
            raise ValueError(f"config key 'merges.{clash[0]}': the name ends like a seed replica's id; rename it")
        return made

    @property
    def primary_seed(self) -> int:
        return self.seeds[0]

    def tag(self, seed: int) -> str:
        return seed_tag(seed, self.primary_seed)

    def experts_of(self, seed: int) -> list[str]:
        return [f"rl-{d}{self.tag(seed)}" for d in self.domains]

    @property
    def experts(self) -> list[str]:
        """The first seed's experts (the plain ids)."""
        return self.experts_of(self.primary_seed)

    @property
    def merge_nodes(self) -> list[str]:
        """The first seed's merge nodes (the plain ids)."""
        return [f"merge-{m}" for m in self.merges]

    def replicated(self, seed: int) -> list[str]:
        """Every node trained or merged with ``seed``: the experts, rl-mixed, opd (the experts distilled into SFT),
        the merges."""
        return [*self.experts_of(seed), f"rl-mixed{self.tag(seed)}", f"opd{self.tag(seed)}",
                *(f"merge-{m}{self.tag(seed)}" for m in self.merges)]

    def teachers_of(self, node: str) -> dict[str, str]:
        """The experts an ``opd`` node distils, by domain: those of its own training seed."""
        seed = self.seed_of(node)
        return dict(zip(self.domains, self.experts_of(seed)))

    @property
    def nodes(self) -> list[str]:
        return ["base", "sft", *(n for s in self.seeds for n in self.replicated(s))]

    def domains_of(self, node: str) -> tuple[str, ...]:
        """The domains whose experts a merge (or opd) node combines: the ones it names, else every domain."""
        return dict(self.merge_domains).get(self.split(node)[0][len("merge-"):], self.domains)

    def experts_for(self, node: str) -> list[str]:
        """The experts (of its own training seed) that a merge node merges."""
        return [f"rl-{d}{self.tag(self.seed_of(node))}" for d in self.domains_of(node)]

    @property
    def compared(self) -> list[str]:
        """The analyses' comparison set: the first seed's RL nodes and merges, and opd when the grid has it."""
        return [n for n in self.nodes if self.seed_of(n) == self.primary_seed
                and (n.startswith(("rl-", "merge-")) or n == "opd")]

    @property
    def pairwise_merges(self) -> list[str]:
        """The first seed's merge nodes that name their experts (a subset of the domains)."""
        return [f"merge-{m}" for m, _ in self.merge_domains]

    def evaluated_on(self, node: str, bench: str) -> bool:
        """A merge of named experts is evaluated on those domains' benchmarks only (the pairwise ablation asks how
        each expert's own domain fares; the other domains would cost evaluations no table reads)."""
        if node.startswith("merge-") and self.split(node)[0][len("merge-"):] in dict(self.merge_domains):
            known = dict(self.bench_domains)
            return bench not in known or known[bench] in self.domains_of(node)
        return True

    def cells(self) -> list[tuple[str, str]]:
        return [(node, bench) for node in self.nodes for bench in self.benchmarks if self.evaluated_on(node, bench)]

    def eval_rules(self) -> list[tuple[str, tuple[str, ...], list[str]]]:
        """[(rule name, benchmarks, nodes evaluated on exactly those)]: one eval rule per benchmark set, the
        largest set first and named ``evaluate``; each job of such a rule evaluates one node on the set."""
        sets: dict[tuple[str, ...], list[str]] = {}
        for node in self.nodes:
            benches = tuple(b for b in self.benchmarks if self.evaluated_on(node, b))
            if benches:
                sets.setdefault(benches, []).append(node)
        ordered = sorted(sets.items(), key=lambda item: -len(item[0]))
        return [("evaluate" if i == 0 else f"evaluate_set{i}", benches, nodes)
                for i, (benches, nodes) in enumerate(ordered)]

    def split(self, node: str) -> tuple[str, int]:
        """``rl-math.s1`` -> (``rl-math``, 1); a shared node (base, sft) -> (node, the first seed)."""
        for seed in self.seeds[1:]:
            tag = self.tag(seed)
            if node.endswith(tag):
                return node[: -len(tag)], seed
        return node, self.primary_seed

    def seed_of(self, node: str) -> int:
        return self.split(node)[1]

    def parents(self, node: str) -> list[str]:
        """The nodes whose training ``node`` builds on (its compute counts theirs): sft for an RL run, sft and
        the same seed's experts for a merge or an on-policy distillation (``opd``)."""
        name, seed = self.split(node)
        if name in ("base", "sft"):
            return []
        if name.startswith("merge-"):
            return ["sft", *self.experts_for(node)]
        if name == "opd":
            return ["sft", *self.experts_of(seed)]
        return ["sft"]

    def as_dict(self) -> dict:
        return {"domains": list(self.domains), "merges": list(self.merges), "benchmarks": list(self.benchmarks),
                "seeds": list(self.seeds), "merge_domains": {m: list(d) for m, d in self.merge_domains},
                "bench_domains": dict(self.bench_domains)}
