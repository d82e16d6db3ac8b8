"""avg@k evaluation of one model on its benchmarks, one model load for all: per benchmark, per-item JSONL and a
summary JSON."""
from __future__ import annotations

import json
import sys
import time

from mixmerge import atomic
from mixmerge.data.rows import read_rows
from mixmerge.domains import get_domain
from mixmerge.evaluation import judge
from mixmerge.evaluation.episodes import generate_rows
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


def rule_scores(flat: list[tuple[dict, str]], reward: dict) -> tuple[list[float], list[float]]:
    """(strict, lenient) of (row, response) pairs by their domains' scorers."""
    domains = [r["domain"] for r, _ in flat]
    texts = [text for _, text in flat]
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
    return strict, lenient


def score_all(flat: list[tuple[dict, str]], reward: dict, judge_cfg: dict | None, eval_cfg: dict | None,
              threads: int | None) -> tuple[list[float], list[float], dict[int, dict]]:
    """(strict, lenient, judge record by position) of (row, response) pairs: rows the benchmark's LLM judge
    scores (``judge.is_judged``) by the judge (``judge_cfg``, served as ``eval_cfg`` says), the rest by their
    domains' scorers."""
    judged = [i for i, (row, _) in enumerate(flat) if judge.is_judged(row)]
    ruled = [i for i, (row, _) in enumerate(flat) if not judge.is_judged(row)]
    strict, lenient = [0.0] * len(flat), [0.0] * len(flat)
    rule_strict, rule_lenient = rule_scores([flat[i] for i in ruled], reward)
    for i, s, lenient_score in zip(ruled, rule_strict, rule_lenient, strict=True):
        strict[i], lenient[i] = s, lenient_score
    records = {}
    if judged:
        if not judge_cfg:
            raise ValueError(f"{len(judged)} samples need an LLM judge and no judge is configured")
        cases = [(flat[i][0]["verifier"], flat[i][1]) for i in judged]
        judge_strict, judge_lenient, judge_records = judge.judge_samples(cases, judge_cfg, reward, eval_cfg, threads)
        for i, s, lenient_score, record in zip(judged, judge_strict, judge_lenient, judge_records, strict=True):
            strict[i], lenient[i], records[i] = s, lenient_score, record
    return strict, lenient, records


def score_groups(rows: list[dict], samples: list, k: int, reward: dict, judge_cfg: dict | None = None,
                 eval_cfg: dict | None = None, threads: int | None = None) -> list[dict]:
    """Per item: its k samples with strict (the reward) and lenient scores (and the judge's record, if judged)."""
    flat = [(r, s.text) for r, group in zip(rows, samples) for s in group]
    strict, lenient, judged = score_all(flat, reward, judge_cfg, eval_cfg, threads)
    items = []
    for i, (row, group) in enumerate(zip(rows, samples)):
        scored = [
            {"text": s.text, "score": strict[i * k + j], "lenient": lenient[i * k + j],
             "finish_reason": s.finish_reason, "num_tokens": s.num_tokens, **(s.extra or {}),
             **({judge.KEY: judged[i * k + j]} if i * k + j in judged else {})}
            for j, s in enumerate(group)
        ]
        items.append({"id": row["id"], "domain": row["domain"], "samples": scored})
    return items


def evaluate_node(model_dir: str, node: str, cells: list[dict], eval_cfg: dict, threads: int) -> list[dict]:
    """Every benchmark of one model with one model load. ``cells``: one dict per benchmark with ``benchmark``
    (its name), ``bench`` (its settings), ``data`` (its rows), ``reward``, ``out_jsonl`` and ``out_json``.
    A cell with rows for an LLM judge is generated with the others and judged after the model is released."""
    from mixmerge.evaluation.generation import make_backend

    for cell in cells:  # every scorer and judge setting ready before the model is loaded
        rows = read_rows(cell["data"])
        check_ready({r["domain"] for r in rows}, cell["reward"])
        judge.check_cell(rows, cell["benchmark"], cell["bench"], cell["data"])
    backend = make_backend(eval_cfg["backend"], model_dir, eval_cfg["batch_size"], eval_cfg["seed"], threads,
                           eval_cfg.get("vllm"))
    summaries, to_judge = {}, {}
    for i, cell in enumerate(cells):
        generated = generate_cell(backend, node, cell)
        if any(judge.is_judged(row) for row in generated[0]):
            to_judge[i] = generated
        else:
            summaries[i] = finish_cell(node, cell, *generated, eval_cfg, threads)
    backend.close()  # the judge, if any, is served next on the same devices
    for i, generated in to_judge.items():
        summaries[i] = finish_cell(node, cells[i], *generated, eval_cfg, threads)
    return [summaries[i] for i in range(len(cells))]


def generate_cell(backend, node: str, cell: dict) -> tuple[list[dict], list, float]:
    """(rows, k samples per row, seconds) of one benchmark."""
    started = time.time()
    name, bench = cell["benchmark"], cell["bench"]
    rows = read_rows(cell["data"])
    progress = lambda done, total: print(f"[{node}/{name}] generated {done}/{total} prompts",  # noqa: E731
                                         file=sys.stderr, flush=True)
    samples = generate_rows(backend, rows, bench["k"], bench, cell["reward"], progress=progress)
    return rows, samples, time.time() - started


def finish_cell(node: str, cell: dict, rows: list[dict], samples: list, seconds: float, eval_cfg: dict,
                threads: int) -> dict:
    """Score one benchmark's samples (by rule or judge) and write its records and summary."""
    started = time.time()
    name, bench, k = cell["benchmark"], cell["bench"], cell["bench"]["k"]
    items = score_groups(rows, samples, k, cell["reward"], bench.get(judge.KEY), eval_cfg, threads)
    summary = summarise(items, k)
    summary.update({"model": node, "benchmark": name, "domain": bench["domain"],
                    "sampling": {key: bench[key] for key in ("temperature", "top_p", "max_new_tokens")},
                    "backend": eval_cfg["backend"], "seed": eval_cfg["seed"],
                    "wall_seconds": round(seconds + time.time() - started, 1)})
    judged = [[s[judge.KEY] for s in it["samples"] if judge.KEY in s] for it in items]
    if any(judged):
        summary[judge.KEY] = judge.summary(bench[judge.KEY], [r for rs in judged for r in rs], sum(map(bool, judged)))
    # Each file complete or absent (a temporary file renamed); the summary, which Snakemake and the report take
    # as the cell's mark of completion, is written last.
    atomic.write_text(cell["out_jsonl"], "".join(json.dumps(it) + "\n" for it in items))
    atomic.write_text(cell["out_json"], json.dumps(summary, indent=2))
    return summary
