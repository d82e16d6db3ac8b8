"""The grid, written once: node ids, evaluation cells and every result path, for the Snakefile and the report."""
from __future__ import annotations

from dataclasses import dataclass

RESULTS = "results"
REPORT_FILES = ("main_table.csv", "main_table.md", "merge_table.csv", "merge_table.md", "transfer_matrix.csv",
                "transfer_matrix.md", "compute_table.csv", "compute_table.md", "merge_records.csv", "main_table.png",
                "rl_checks.json", "report.md")


def model_dir(node: str) -> str:
    return f"{RESULTS}/models/{node}"


def checkpoint_dir(node: str) -> str:
    return f"{RESULTS}/checkpoints/{node}"


def eval_summary(node: str, benchmark: str) -> str:
    return f"{RESULTS}/eval/{node}/{benchmark}.json"


def eval_records(node: str, benchmark: str) -> str:
    return f"{RESULTS}/eval/{node}/{benchmark}.jsonl"


def report_file(name: str) -> str:
    return f"{RESULTS}/report/{name}"


def benchmark_file(node: str) -> str:
    """The Snakemake benchmark file of the job that made ``node`` (wall time: the compute accounting)."""
    if node == "sft":
        return "benchmarks/sft/sft.tsv"
    if node.startswith("rl-"):
        return f"benchmarks/grpo/{node}.tsv"
    if node.startswith("merge-"):
        return f"benchmarks/merge/{node}.tsv"
    raise ValueError(f"node {node!r} is not trained or merged by the grid")


def eval_benchmark_file(node: str, benchmark: str) -> str:
    return f"benchmarks/eval/{node}/{benchmark}.tsv"


@dataclass(frozen=True)
class Grid:
    domains: tuple[str, ...]
    merges: tuple[str, ...]          # merge node suffixes, sweeps expanded
    benchmarks: tuple[str, ...]

    @classmethod
    def from_config(cls, config: dict) -> "Grid":
        from mixmerge.merging.methods import expand_merges

        return cls(tuple(config["domains"]), tuple(expand_merges(config["merges"])), tuple(config["benchmarks"]))

    @property
    def experts(self) -> list[str]:
        return [f"rl-{d}" for d in self.domains]

    @property
    def merge_nodes(self) -> list[str]:
        return [f"merge-{m}" for m in self.merges]

    @property
    def nodes(self) -> list[str]:
        return ["base", "sft", *self.experts, "rl-mixed", *self.merge_nodes]

    def cells(self) -> list[tuple[str, str]]:
        return [(node, bench) for node in self.nodes for bench in self.benchmarks]

    def as_dict(self) -> dict:
        return {"domains": list(self.domains), "merges": list(self.merges), "benchmarks": list(self.benchmarks)}
