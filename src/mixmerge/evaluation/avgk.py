"""avg@k evaluation of one model on its benchmarks, one model load for all: per benchmark, per-item JSONL and a
summary JSON."""
from __future__ import annotations

import json
import sys
import time

from mixmerge import atomic
from mixmerge.data.rows import read_rows
from mixmerge.domains import get_domain
from mixmerge.verifiers.scoring import check_ready, score_many


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct."""
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def summarise(items: list[dict], k: int) -> dict:
    n = len(items)
    strict = [sum(s["score"] for s in it["samples"]) / k for it in items]
    lenient = [sum(s["lenient"] for s in it["samples"]) / k for it in items]
    samples = [s for it in items for s in it["samples"]]
    correct = [sum(s["score"] >= 1.0 for s in it["samples"]) for it in items]
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    var = lambda xs: sum((x - mean(xs)) ** 2 for x in xs) / (len(xs) - 1) if len(xs) > 1 else 0.0  # noqa: E731
    return {
        "n": n,
        "k": k,
        "avg_at_k": mean(strict),
        "avg_at_k_stderr": (var(strict) / n) ** 0.5 if n else float("nan"),
        "lenient_avg_at_k": mean(lenient),
        "lenient_avg_at_k_stderr": (var(lenient) / n) ** 0.5 if n else float("nan"),
        "pass_at_k": mean([pass_at_k(k, int(round(a * k)), k) for a in strict]),
        "pass_at": {str(j): mean([pass_at_k(k, c, j) for c in correct]) for j in range(1, k + 1)},  # unbiased
        "truncation_rate": mean([s["finish_reason"] == "length" for s in samples]),
        "mean_tokens": mean([s["num_tokens"] for s in samples]),
    }


def score_groups(rows: list[dict], samples: list, k: int, reward: dict) -> list[dict]:
    """Per item: its k samples with strict (the reward) and lenient scores."""
    flat = [(r, s) for r, group in zip(rows, samples) for s in group]
    domains = [r["domain"] for r, _ in flat]
    texts = [s.text for _, s in flat]
    verifiers = [r["verifier"] for r, _ in flat]
    ids = [r["id"] for r, _ in flat]
    strict = score_many(domains, texts, verifiers, reward, ids=ids)
    # Strictly right implies leniently right (same answer, format too), and a completion that passes its domain's
    # format gates scores the same either way: score only the rest leniently.
    formatted = {name: get_domain(name).formatted for name in set(domains)}
    redo = [i for i, s in enumerate(strict)
            if s < 1.0 and not (formatted[domains[i]] and formatted[domains[i]](texts[i], reward))]
    redone = score_many([domains[i] for i in redo], [texts[i] for i in redo], [verifiers[i] for i in redo],
                        reward, lenient=True, ids=[ids[i] for i in redo])
    lenient = list(strict)
    for i, s in zip(redo, redone):
        lenient[i] = s
    items = []
    for i, (row, group) in enumerate(zip(rows, samples)):
        scored = [
            {"text": s.text, "score": strict[i * k + j], "lenient": lenient[i * k + j],
             "finish_reason": s.finish_reason, "num_tokens": s.num_tokens}
            for j, s in enumerate(group)
        ]
        items.append({"id": row["id"], "domain": row["domain"], "samples": scored})
    return items


def evaluate_node(model_dir: str, node: str, cells: list[dict], eval_cfg: dict, threads: int) -> list[dict]:
    """Every benchmark of one model with one model load. ``cells``: one dict per benchmark with ``benchmark``
    (its name), ``bench`` (its settings), ``data`` (its rows), ``reward``, ``out_jsonl`` and ``out_json``."""
    from mixmerge.evaluation.generation import make_backend

    for cell in cells:  # every scorer ready before the model is loaded
        check_ready({r["domain"] for r in read_rows(cell["data"])}, cell["reward"])
    backend = make_backend(eval_cfg["backend"], model_dir, eval_cfg["batch_size"], eval_cfg["seed"], threads,
                           eval_cfg.get("vllm"))
    return [evaluate_cell(backend, node, cell, eval_cfg) for cell in cells]


def evaluate_cell(backend, node: str, cell: dict, eval_cfg: dict) -> dict:
    started = time.time()
    name, bench, reward = cell["benchmark"], cell["bench"], cell["reward"]
    rows = read_rows(cell["data"])
    k = bench["k"]
    progress = lambda done, total: print(f"[{node}/{name}] generated {done}/{total} prompts",  # noqa: E731
                                         file=sys.stderr, flush=True)
    samples = backend.generate([r["prompt"] for r in rows], k, bench, progress=progress)
    items = score_groups(rows, samples, k, reward)
    summary = summarise(items, k)
    summary.update({"model": node, "benchmark": name, "domain": bench["domain"],
                    "sampling": {key: bench[key] for key in ("temperature", "top_p", "max_new_tokens")},
                    "backend": eval_cfg["backend"], "seed": eval_cfg["seed"],
                    "wall_seconds": round(time.time() - started, 1)})
    # Each file complete or absent (a temporary file renamed); the summary, which Snakemake and the report take
    # as the cell's mark of completion, is written last.
    atomic.write_text(cell["out_jsonl"], "".join(json.dumps(it) + "\n" for it in items))
    atomic.write_text(cell["out_json"], json.dumps(summary, indent=2))
    return summary
