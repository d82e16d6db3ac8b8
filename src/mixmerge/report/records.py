"""Per-item eval records (``results/eval/<node>/<benchmark>.jsonl``) as arrays for the report: per item and
training seed, the strict and lenient mean over the k samples and the count of strictly correct samples;
replicas of one node (``rl-math``, ``rl-math.s1``, ...) are gathered under the node's name."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixmerge import grid
from mixmerge.grid import Grid

CORRECT = 1.0 - 1e-9   # a sample scoring this or more counts as correct for pass@k'


@dataclass
class Scores:
    """One model on one benchmark: items x seeds arrays, items sorted by id."""
    ids: list[str]
    seeds: list[int]
    strict: np.ndarray
    lenient: np.ndarray
    correct: np.ndarray        # strictly correct samples out of k
    k: int
    truncation: float

    def item_means(self, metric: str) -> np.ndarray:
        """Per item, the mean over seeds of the avg over k samples (``strict`` or ``lenient``)."""
        return getattr(self, metric).mean(axis=1)

    def seed_means(self, metric: str) -> np.ndarray:
        """Per seed, avg@k over the items."""
        return getattr(self, metric).mean(axis=0)

    def aligned(self, metric: str, ids: list[str]) -> np.ndarray:
        where = {item: i for i, item in enumerate(self.ids)}
        return self.item_means(metric)[[where[i] for i in ids]]


def read_cell(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, int, float]:
    """ids, strict means, lenient means, correct counts, k, truncation rate of one JSONL file."""
    items = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if not items:
        raise ValueError(f"{path}: no items")
    items.sort(key=lambda it: str(it["id"]))
    k = len(items[0]["samples"])
    if any(len(it["samples"]) != k for it in items):
        raise ValueError(f"{path}: items have different numbers of samples")
    strict = np.array([[s["score"] for s in it["samples"]] for it in items], dtype=float)
    lenient = np.array([[s["lenient"] for s in it["samples"]] for it in items], dtype=float)
    truncated = np.mean([s.get("finish_reason") == "length" for it in items for s in it["samples"]])
    return ([str(it["id"]) for it in items], strict.mean(axis=1), lenient.mean(axis=1),
            (strict >= CORRECT).sum(axis=1), k, float(truncated))


def load_scores(the_grid: Grid, root: str | Path) -> dict[tuple[str, str], Scores]:
    """{(node name, benchmark): Scores} for every cell whose records exist under ``root``, seeds gathered."""
    gathered: dict[tuple[str, str], list] = {}
    for node, bench in the_grid.cells():
        path = Path(root, grid.eval_records(node, bench))
        if not path.exists():
            continue
        name, seed = the_grid.split(node)
        gathered.setdefault((name, bench), []).append((seed, read_cell(path)))
    out = {}
    for key, replicas in gathered.items():
        replicas.sort(key=lambda r: the_grid.seeds.index(r[0]))
        ids = replicas[0][1][0]
        if any(r[1][0] != ids for r in replicas):
            raise ValueError(f"{key[0]} on {key[1]}: the seeds' records hold different items")
        ks = {r[1][4] for r in replicas}
        if len(ks) != 1:
            raise ValueError(f"{key[0]} on {key[1]}: the seeds used different k ({sorted(ks)})")
        stack = lambda i: np.stack([r[1][i] for r in replicas], axis=1)  # noqa: E731
        out[key] = Scores(ids, [r[0] for r in replicas], stack(1), stack(2), stack(3), ks.pop(),
                          float(np.mean([r[1][5] for r in replicas])))
    if not out:
        raise FileNotFoundError(f"no per-item eval records under {root}/{grid.RESULTS}/eval")
    return out


def model_names(the_grid: Grid) -> list[str]:
    """Node names without seed tags, in grid order: base, sft, experts, rl-mixed, merges."""
    seen: list[str] = []
    for node in the_grid.nodes:
        name = the_grid.split(node)[0]
        if name not in seen:
            seen.append(name)
    return seen
