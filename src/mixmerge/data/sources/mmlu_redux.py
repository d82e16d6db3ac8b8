"""MMLU-Redux 2.0 (``edinburgh-dawg/mmlu-redux-2.0``, one config per subject, split ``test``): ``question``,
``choices`` (list), ``answer`` (index), ``error_type``. Items whose ``error_type`` is not in
``keep_error_types`` (default: ``ok``) are dropped and counted; options keep their canonical order."""
from __future__ import annotations

import string
from pathlib import Path

from mixmerge.data.sources import Dropped, Record, user
from mixmerge.data.sources.gpqa import mcq_prompt

COLUMNS = ["question", "choices", "answer"]


def convert(rec: Record, spec: dict, name: str) -> dict | Dropped:
    keep = spec.get("keep_error_types", ["ok"])
    if keep is not None:
        error_type = rec.text("error_type")
        if error_type not in keep:
            return Dropped(f"error_type:{error_type}")
    question = rec.text("question")
    choices = rec.get("choices", list)
    if not 2 <= len(choices) <= 26 or not all(isinstance(c, str) for c in choices):
        raise rec.fail("choices", "expected 2-26 option strings")
    answer = rec.get("answer", (int, str))
    letters = string.ascii_uppercase[:len(choices)]
    if isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip() in letters:
        letter = answer.strip()
    elif isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(choices):
        letter = letters[answer]
    else:
        raise rec.fail("answer", f"{answer!r} is not an option index or letter")
    subject = rec.data.get("subject") or (rec.where.rsplit("[", 1)[-1].rstrip("]") if rec.where.endswith("]")
                                          else Path(rec.where).stem)
    return {"id": f"{name}-{subject}-{rec.index}", "domain": "science",
            "prompt": user(mcq_prompt(question, [c.strip() for c in choices], letters)),
            "verifier": {"correct_letter": letter, "valid_letters": letters,
                         "answer_text": choices[letters.index(letter)]},
            "source": f"{rec.where}:{rec.index}"}
