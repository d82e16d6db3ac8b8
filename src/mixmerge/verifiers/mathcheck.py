"""The study's math reward: last ``\\boxed{}`` answer, checked by math-verify under a hard timeout.

The ``</think>`` gate is the caller's job (the domain module); this module scores the final-answer text.
"""
from __future__ import annotations

import logging
import threading

from mixmerge.verifiers import workers

log = logging.getLogger(__name__)
workers.preload([__name__, "math_verify"])
logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns on every call with timeouts disabled
_MAX_CHARS = 2000  # longer answers are not parsed: math-verify/sympy can hang on pathological input


def _last_boxed(text: str) -> str | None:
    """The last ``\\boxed...`` group with matched braces (``\\fbox`` is found but rejected), as in the study."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None  # the study would locate a \fbox here and then reject it
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                group = text[start:i + 1]
                return group[len("\\boxed{"):-1] if group.startswith("\\boxed{") else None
    return None


def boxed_answer(text: str) -> str | None:
    """Content of the last ``\\boxed{}`` after the last "Answer:" (if any), else None."""
    if "Answer:" in text:
        text = text.rsplit("Answer:", 1)[1]
    return _last_boxed(text)


def gold_answer(label: str) -> str:
    """The study uses the label raw, or its ``\\boxed{}`` content if it has one."""
    boxed = _last_boxed(label)
    return boxed if boxed is not None else label


def _parse(answer: str, timeout: int | None):
    from math_verify import parse
    return parse("\\boxed{" + answer + "}", parsing_timeout=timeout)


def is_equivalent(pred: str, gold: str) -> bool:
    """math-verify ``verify(gold, pred)`` on both answers. Its own signal timeouts are used only in a main
    thread (where they work); elsewhere they are off and the caller must bound the time (``score_math``)."""
    from math_verify import verify
    if not pred or len(pred) > _MAX_CHARS:
        return False
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    gold_parsed = _parse(gold_answer(gold), timeout)
    pred_parsed = _parse(pred, timeout)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))


def _equivalent_text(answer_text: str, gold: str) -> float:
    pred = boxed_answer(answer_text)
    return 1.0 if pred is not None and is_equivalent(pred, gold) else 0.0


def score_math(answer_text: str, gold: str, timeout_s: float = 10) -> float:
    """1.0 iff the last boxed answer equals the gold; 0.0 otherwise or after ``timeout_s`` (hard, in a worker)."""
    if boxed_answer(answer_text) is None:
        return 0.0
    return workers.call_with_timeout(_equivalent_text, (answer_text, gold), timeout_s, default=0.0)


def score_math_batch(pairs: list[tuple[str, str]], timeout_s: float = 10) -> list[float]:
    """``score_math`` for many (answer_text, gold) pairs across all cores."""
    return workers.score_batch(_equivalent_text, pairs, timeout_s, default=0.0)


def check_gold(gold: str) -> bool:
    """Can math-verify parse this gold answer? Use at data-prep time; report (never silently score) failures."""
    answer = gold_answer(gold).strip()
    if not answer:
        return False
    return bool(workers.call_with_timeout(_gold_parses, (answer,), 10, default=False))


def golds_self_verify(golds: list[str], timeout_s: float = 10) -> list[bool]:
    """Does each gold answer, boxed as a response, score 1 against itself? A gold that fails (braces that break
    the box, a parse that times out) can never be matched, so data prep drops it rather than train on a
    reward that is always 0."""
    scores = score_math_batch([(f"\\boxed{{{gold_answer(g)}}}", g) for g in golds], timeout_s)
    return [s == 1.0 for s in scores]


def _gold_parses(answer: str) -> bool:
    parsed = _parse(answer, 5 if threading.current_thread() is threading.main_thread() else None)
    return len(parsed) > 0
