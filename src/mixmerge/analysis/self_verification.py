"""Self-verification (study §6.5, Table 7, Figure 7): each model judges its own eval generations as a generative
reward model, in two modes: ``outcome`` (the judge sees the question and the final answer only: the text after
the last ``</think>``) and ``process`` (the whole response, reasoning included). The judge prompt and the verdict
pattern come from the config; the label of a sample is its strict score from the eval records (1 = correct).

Per model x benchmark x mode: balanced accuracy = (TPR + TNR) / 2 with a percentile bootstrap CI over items
(an item's judged samples resampled together), the class balance (share of correct samples), and the count of
unparsable verdicts, each scored as a wrong judgement.
"""
from __future__ import annotations

import math
import re

import numpy as np

from mixmerge.report import stats

MODES = ("outcome", "process")
CORRECT = 1.0 - 1e-9


def shown_response(text: str, mode: str) -> str:
    """What the judge sees of a response: the whole text (process) or the part after the last ``</think>``
    (outcome; the whole text when the reasoning is never closed, so the judge still sees an answer)."""
    if mode == "process":
        return text
    if mode == "outcome":
        return text.rsplit("</think>", 1)[-1].strip()
    raise ValueError(f"unknown judge mode {mode!r} (outcome, process)")


def judge_prompt(template: str, question: str, response: str) -> list[dict]:
    """The judge's chat: one user turn, the template with ``{question}`` and ``{response}`` filled in."""
    return [{"role": "user", "content": template.replace("{question}", question).replace("{response}", response)}]


def parse_verdict(text: str, pattern: str, yes: str, no: str) -> bool | None:
    """True (judged correct), False (judged wrong) or None (unparsable): the last match of ``pattern``'s first
    group, compared case-insensitively with ``yes`` and ``no``."""
    found = re.findall(pattern, text, flags=re.IGNORECASE | re.DOTALL)
    if not found:
        return None
    last = found[-1] if isinstance(found[-1], str) else found[-1][0]
    word = last.strip().lower()
    return True if word == yes.lower() else False if word == no.lower() else None


def balanced_accuracy(labels: np.ndarray, verdicts: list[bool | None]) -> float:
    """(TPR + TNR) / 2, an unparsable verdict counting as wrong; NaN when a class is absent."""
    labels = np.asarray(labels, dtype=bool)
    right = np.array([v is not None and v == y for v, y in zip(verdicts, labels)], dtype=bool)
    if labels.all() or not labels.any():
        return math.nan
    return float((right[labels].mean() + right[~labels].mean()) / 2)


def ba_ci(item_of: np.ndarray, labels: np.ndarray, verdicts: list, seed: int, n_resamples: int = stats.N_BOOT,
          level: float = stats.LEVEL) -> tuple[float, float]:
    """Percentile bootstrap CI of the balanced accuracy over items (resamples missing a class are left out)."""
    labels = np.asarray(labels, dtype=bool)
    right = np.array([v is not None and v == y for v, y in zip(verdicts, labels)], dtype=float)
    items = np.unique(item_of)
    index = np.searchsorted(items, item_of)
    per = {name: np.bincount(index, weights=w, minlength=len(items)) for name, w in
           (("pos", labels), ("neg", ~labels), ("tp", right * labels), ("tn", right * ~labels))}
    picks = np.random.default_rng(seed).integers(0, len(items), size=(n_resamples, len(items)))
    pos, neg = per["pos"][picks].sum(1), per["neg"][picks].sum(1)
    ok = (pos > 0) & (neg > 0)
    if not ok.any():
        return math.nan, math.nan
    values = (per["tp"][picks].sum(1)[ok] / pos[ok] + per["tn"][picks].sum(1)[ok] / neg[ok]) / 2
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def cell_row(model: str, bench: str, mode: str, item_of: np.ndarray, scores: np.ndarray, verdicts: list,
             seed: int) -> dict:
    labels = np.asarray(scores, dtype=float) >= CORRECT
    lo, hi = ba_ci(item_of, labels, verdicts, seed)
    return {"model": model, "benchmark": bench, "mode": mode, "n_items": len(np.unique(item_of)),
            "n_samples": len(labels), "correct_share": float(labels.mean()) if len(labels) else math.nan,
            "judged_correct_share": float(np.mean([v is True for v in verdicts])) if verdicts else math.nan,
            "unparsable": int(sum(v is None for v in verdicts)),
            "balanced_accuracy": balanced_accuracy(labels, verdicts), "lo": lo, "hi": hi}
