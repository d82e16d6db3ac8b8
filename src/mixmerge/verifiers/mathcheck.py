"""The math reward: the last ``\\boxed{}`` answer after the last "Answer:", graded under a hard timeout.

Graders (``reward.math_grader``): ``study``, the study's DeepScaleR rules (``mathstudy``: Hendrycks
normalisation or the sympy check; an unreduced fraction or a reordered set is wrong), or ``math_verify``, the
math-verify library, which is more lenient (``\\frac{2}{4}`` equals ``\\frac{1}{2}``, ``\\{2,1\\}`` equals
``\\{1,2\\}``); config/README.md lists where the two disagree. Either way an answer that overruns the timeout
scores 0 (the worker is killed: ``workers``). The ``</think>`` gate is the caller's job (the domain module).
"""
from __future__ import annotations

import logging
import threading

from mixmerge.verifiers import mathstudy, workers

log = logging.getLogger(__name__)
GRADERS = ("study", "math_verify")
workers.preload([__name__, "math_verify", "sympy"])
logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns on every call with timeouts disabled
_MAX_CHARS = 2000  # longer answers score 0 unparsed (a project bound: math-verify/sympy can hang on them)


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
    """The label raw, or its ``\\boxed{}`` content if it has one."""
    boxed = _last_boxed(label)
    return boxed if boxed is not None else label


def study_gold(label: str) -> str | None:
    """The study's gold: the label raw, or, if it holds ``\\boxed``/``\\fbox``, its last box (None if that fails)."""
    if "\\boxed" in label or "\\fbox" in label:
        return _last_boxed(label)
    return label


def _parse(answer: str, timeout: int | None):
    from math_verify import parse
    return parse("\\boxed{" + answer + "}", parsing_timeout=timeout)


def is_equivalent(pred: str, gold: str, grader: str = "math_verify") -> bool:
    """Is the extracted answer ``pred`` right for the label ``gold`` under ``grader``? The caller bounds the time
    (``score_math``); math-verify's own signal timeouts are used only in a main thread (where they work)."""
    if grader not in GRADERS:
        raise ValueError(f"unknown math grader {grader!r}; expected one of {GRADERS}")
    if not pred or len(pred) > _MAX_CHARS:
        return False
    if grader == "study":
        gold = study_gold(gold)
        return gold is not None and mathstudy.grade(pred, gold)
    return _math_verify(pred, gold)


def _math_verify(pred: str, gold: str) -> bool:
    """math-verify ``verify(gold, pred)`` on both answers."""
    from math_verify import verify
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    gold_parsed = _parse(gold_answer(gold), timeout)
    pred_parsed = _parse(pred, timeout)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=timeout))


def _equivalent_text(answer_text: str, gold: str, grader: str = "math_verify") -> float:
    pred = boxed_answer(answer_text)
    return 1.0 if pred is not None and is_equivalent(pred, gold, grader) else 0.0


def score_math(answer_text: str, gold: str, timeout_s: float = 10, grader: str = "math_verify") -> float:
    """1.0 iff the last boxed answer equals the gold; 0.0 otherwise or after ``timeout_s`` (hard, in a worker)."""
    if grader not in GRADERS:
        raise ValueError(f"unknown math grader {grader!r}; expected one of {GRADERS}")
    if boxed_answer(answer_text) is None:
        return 0.0
    return workers.call_with_timeout(_equivalent_text, (answer_text, gold, grader), timeout_s, default=0.0)


def score_math_batch(pairs: list[tuple[str, str]], timeout_s: float = 10, grader: str = "math_verify") -> list[float]:
    """``score_math`` for many (answer_text, gold) pairs across all cores."""
    if grader not in GRADERS:
        raise ValueError(f"unknown math grader {grader!r}; expected one of {GRADERS}")
    return workers.score_batch(_equivalent_text, [(text, gold, grader) for text, gold in pairs], timeout_s,
                               default=0.0)


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
