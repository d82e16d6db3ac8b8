"""A fake finished grid on disk for report tests: per-item eval records and summaries (seeded draws), benchmark
files, model cards with compute records, merge records and TensorBoard event files, at the grid's own paths."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mixmerge import grid
from mixmerge.grid import Grid

SPEC = {
    "domains": ["math", "code"],
    "merges": {"ties": {"method": "ties_study", "params": {"density": 0.2}}, "average": {"method": "average"}},
    "benchmarks": {"math": {"domain": "math"}, "code": {"domain": "code"}},
    "gpus": {"sft": 0, "grpo": 0, "merge": 0, "eval": 0},
    "seed": 0,
}
# Strict success probability per model and benchmark; lenient adds FORMAT_GAP (right answer, wrong format).
STRICT = {"base": 0.02, "sft": 0.3, "rl-math": {"math": 0.7, "code": 0.3}, "rl-code": {"math": 0.3, "code": 0.75},
          "rl-mixed": 0.65, "opd": 0.6, "merge-ties": 0.55, "merge-average": 0.4}
FORMAT_GAP = {"sft": 0.3}


def probability(node: str, bench: str) -> float:
    value = STRICT.get(node.split(".s")[0], 0.3)
    return value[bench] if isinstance(value, dict) else value


def write_cell(root: Path, node: str, bench: str, rng, n: int, k: int) -> None:
    p = probability(node, bench)
    gap = FORMAT_GAP.get(node, 0.0)
    items = []
    for i in range(n):
        difficulty = np.clip(p + rng.normal(0, 0.15), 0, 1)
        samples = []
        for _ in range(k):
            u = rng.random()
            strict, lenient = float(u < difficulty), float(u < min(1.0, difficulty + gap))
            samples.append({"text": "...", "score": strict, "lenient": lenient,
                            "finish_reason": "length" if rng.random() < 0.05 else "stop", "num_tokens": 10})
        items.append({"id": f"{bench}-{i:03d}", "domain": bench, "samples": samples})
    path = root / grid.eval_records(node, bench)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(it) + "\n" for it in items))
    summary = {"model": node, "benchmark": bench, "domain": bench, "n": n, "k": k, "backend": "hf",
               "sampling": {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 48}}
    (root / grid.eval_summary(node, bench)).write_text(json.dumps(summary))


def write_bench(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\n{seconds}\t0:00:00\n")


def write_card(root: Path, node: str, wall: float, gpus: int = 0, attempts: int = 1) -> None:
    compute = {"attempts": [], "n_attempts": attempts, "wall_seconds": wall, "lease_wait_seconds": 1.0,
               "load_seconds": 2.0, "startup_seconds": 3.0, "train_seconds": wall - 6.0, "save_seconds": 1.0,
               "gpus": gpus, "gpu_hours": wall * gpus / 3600}
    path = root / grid.model_card(node)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"node": node, "compute": compute}))


def write_events(root: Path, node: str, domains: list[str], steps: int = 10) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(root / grid.tensorboard_dir(node)))
    for step in range(1, steps + 1):
        for d in domains:
            writer.add_scalar(f"train/rewards/{d}_reward/mean", min(1.0, 0.2 + 0.05 * step), step)
    writer.close()


def make(root: Path, spec: dict = SPEC, n: int = 40, k: int = 4, seed: int = 0, events: bool = True) -> Grid:
    """Write a finished fake grid for ``spec`` under ``root``; returns its Grid."""
    the_grid = Grid.from_config(spec)
    rng = np.random.default_rng(seed)
    for node, bench in the_grid.cells():
        write_cell(root, node, bench, rng, n, k)
    for node in the_grid.nodes:
        if node == "base":
            continue
        wall = 100.0 if node == "sft" else 5.0 if node.startswith("merge-") else 200.0
        write_bench(root / grid.benchmark_file(node), wall)
        if not node.startswith("merge-"):
            write_card(root, node, wall)
            if node.startswith("rl-") and events:
                name = the_grid.split(node)[0]
                write_events(root, node, list(the_grid.domains) if name == "rl-mixed" else [name[3:]])
        else:
            record = {"family": "study", "method": "ties_study", "params": {"density": 0.2}, "seed": 0,
                      "dtype": "float32", "notes": ["expert 1: trims nothing"]}
            (root / grid.model_dir(node) / "merge_record.json").parent.mkdir(parents=True, exist_ok=True)
            (root / grid.model_dir(node) / "merge_record.json").write_text(json.dumps(record))
    for node in dict.fromkeys(node for node, _ in the_grid.cells()):
        write_bench(root / grid.eval_benchmark_file(node), 10.0)
    return the_grid
