"""Runs the self-verification analysis (``mixmerge.analysis.self_verification``): for each model, a seeded subset
of its own eval samples per benchmark is judged by that model in each mode (one generation backend per model,
as the eval stage builds it), and the table, figure and settings are written."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mixmerge.analysis.self_verification import cell_row, judge_prompt, parse_verdict, shown_response
from mixmerge.analysis.outputs import write_outputs


def pick_samples(records: str, max_items: int | None, per_item: int, seed: int) -> list[tuple[str, str, float]]:
    """(item id, response text, strict score) for up to ``per_item`` samples of up to ``max_items`` items."""
    items = [json.loads(line) for line in Path(records).read_text().splitlines() if line.strip()]
    rng = np.random.default_rng(seed)
    if max_items and len(items) > max_items:
        items = [items[i] for i in sorted(rng.choice(len(items), size=max_items, replace=False))]
    return [(str(it["id"]), s["text"], float(s["score"])) for it in items for s in it["samples"][:per_item]]


def question_of(prompt) -> str:
    """The question a judge reads: the last user turn of the benchmark prompt."""
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else str(prompt)


def judge_model(model_dir: str, cells: dict[str, list], questions: dict[str, dict], settings: dict,
                eval_cfg: dict, threads: int) -> list[tuple[str, str, list, np.ndarray, list]]:
    """[(benchmark, mode, item ids, scores, verdicts)] of one model over its cells, in one generation call."""
    from mixmerge.evaluation.generation import make_backend

    jobs, prompts = [], []
    for bench, samples in cells.items():
        for mode in settings["modes"]:
            jobs.append((bench, mode, samples))
            prompts += [judge_prompt(settings["prompt"], question_of(questions[bench][item]),
                                     shown_response(text, mode)) for item, text, _ in samples]
    backend = make_backend(eval_cfg["backend"], model_dir, eval_cfg["batch_size"], settings["seed"], threads,
                           eval_cfg.get("vllm"))
    sampling = {key: settings[key] for key in ("temperature", "top_p", "max_new_tokens")}
    texts = [group[0].text for group in backend.generate(prompts, 1, sampling)] if prompts else []
    del backend
    out, at = [], 0
    for bench, mode, samples in jobs:
        verdicts = [parse_verdict(t, settings["verdict_pattern"], settings["verdict_yes"], settings["verdict_no"])
                    for t in texts[at:at + len(samples)]]
        at += len(samples)
        out.append((bench, mode, np.array([s[0] for s in samples]), np.array([s[2] for s in samples]), verdicts))
    return out


def run_self_verification(settings: dict, eval_cfg: dict, models: dict[str, str], rows: dict[str, str],
                          records: dict[tuple[str, str], str], out: dict[str, str], threads: int = 1) -> pd.DataFrame:
    """``records``: {(model, benchmark): eval records path}; ``rows``: {benchmark: rows path}."""
    from mixmerge.analysis.plots import verification_figure
    from mixmerge.data.rows import read_rows

    started = time.monotonic()
    questions = {b: {str(r["id"]): r["prompt"] for r in read_rows(path)} for b, path in rows.items()}
    table = []
    for model, model_dir in models.items():
        cells = {b: pick_samples(records[(model, b)], settings["max_items"], settings["samples_per_item"],
                                 settings["seed"]) for m, b in records if m == model}
        for bench, mode, item_of, scores, verdicts in judge_model(model_dir, cells, questions, settings, eval_cfg,
                                                                   threads):
            table.append(cell_row(model, bench, mode, item_of, scores, verdicts, settings["seed"]))
    frame = pd.DataFrame(table)
    write_outputs(out, {"table": frame}, lambda path: verification_figure(frame, path),
                  {"analysis": "self_verification", "settings": settings, "eval": eval_cfg, "models": models,
                   "labels": "strict score of each sample in the eval records (1 = correct)",
                   "seconds": round(time.monotonic() - started, 2)})
    return frame
