"""Humanity's Last Exam (``cais/hle``, split ``test``): ``id``, ``question``, ``image``, ``answer``,
``answer_type``. Text-only items (empty ``image``) are kept. ``multipleChoice`` items go to the science (MCQ)
scorer with the letters listed under the question; ``exactMatch`` items with a numeric answer go to the math
scorer; the other exact-match answers need an LLM judge: with the benchmark's ``judge`` block they are kept, scored
by that judge (``mixmerge.evaluation.judge``), else dropped, counted in the data card and logged."""
from __future__ import annotations

import logging
import re

from mixmerge.data.sources import Dropped, Record, user
from mixmerge.data.sources.aime import PREFIX as MATH_PREFIX
from mixmerge.evaluation.judge import KEY as JUDGE

log = logging.getLogger(__name__)

COLUMNS = ["id", "question", "image", "answer", "answer_type"]
MCQ_INSTRUCTION = ("Answer the following multiple choice question. The last line of your response should be of "
                   "the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of {letters}. "
                   "Think step by step before answering.\n\n")
FREE_FORM_INSTRUCTION = ("Answer the following question. Reason step by step, then give your final answer, as short "
                         "as the question allows, on the last line in the form 'Answer: <your answer>'.\n\n")
NEEDS_JUDGE = "exact_match_needs_judge"
_OPTION = re.compile(r"^\s*([A-Z])[.)]\s", re.MULTILINE)
_NUMERIC = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\d+/\d+|-?\\frac\{\d+\}\{\d+\}")


def is_numeric(answer: str) -> bool:
    text = answer.strip().strip("$").replace(" ", "")
    return bool(_NUMERIC.fullmatch(text))


def convert(rec: Record, spec: dict, name: str) -> dict | Dropped:
    if rec.data.get("image"):
        return Dropped("has_image")
    item = rec.text("id")
    question, answer, kind = rec.text("question"), rec.text("answer"), rec.text("answer_type")
    base = {"id": f"{name}-{item}", "source": f"{rec.where}:{item}"}
    if kind == "multipleChoice":
        letters = "".join(dict.fromkeys(_OPTION.findall(question)))
        if not letters:
            raise rec.fail("question", "multipleChoice item without lettered options")
        if answer not in letters:
            raise rec.fail("answer", f"{answer!r} is not one of the options {letters}")
        return {**base, "domain": "science",
                "prompt": user(MCQ_INSTRUCTION.format(letters=letters) + question),
                "verifier": {"correct_letter": answer, "valid_letters": letters}}
    if kind == "exactMatch":
        if is_numeric(answer):
            return {**base, "domain": "math", "prompt": user(MATH_PREFIX + question), "verifier": {"answer": answer}}
        if not spec.get(JUDGE):
            return Dropped(NEEDS_JUDGE)
        return {**base, "domain": "science", "prompt": user(FREE_FORM_INSTRUCTION + question),
                "verifier": {JUDGE: {"question": question, "reference": answer}}}
    raise rec.fail("answer_type", f"unknown answer type {kind!r}")


def judge_note(name: str, spec: dict, rows: list[dict], drops: dict) -> dict:
    """The data card's account of the judge-scored items (logged when they were dropped)."""
    if drops.get(NEEDS_JUDGE):
        log.warning("%s: %d exact-match items with non-numeric answers dropped: they need an LLM judge and "
                    "config key 'benchmarks.%s.judge' is not set", name, drops[NEEDS_JUDGE], name)
    return {"judge": bool(spec.get(JUDGE)), "rows_judged": sum(JUDGE in r["verifier"] for r in rows)}
