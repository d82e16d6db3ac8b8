"""GPQA-Diamond (``Idavidrein/gpqa``, config ``gpqa_diamond``): ``Question``, ``Correct Answer``,
``Incorrect Answer 1..3``. The study shuffles the options unseeded; here each item's order comes from a
per-item seed (config ``seed`` + the record id), so the benchmark file is reproducible."""
from __future__ import annotations

from mixmerge.data.sources import Record, user

COLUMNS = ["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"]
INSTRUCTION = ("Answer the following multiple choice question. The last line of your response should be of the "
               "following format: 'Answer: $LETTER' (without quotes) where LETTER is one of {letters}. Think "
               "step by step before answering.")


def mcq_prompt(question: str, options: list[str], letters: str) -> str:
    body = "\n".join(f"{letter}) {option}" for letter, option in zip(letters, options))
    return f"{INSTRUCTION.format(letters=letters)}\n\n{question}\n\n{body}"


def convert(rec: Record, spec: dict, name: str) -> dict:
    from mixmerge.verifiers.mcq import shuffle_options

    question = rec.text("Question")
    options = [rec.text(c) for c in COLUMNS[1:]]
    item = rec.data.get("Record ID") or f"row{rec.index}"
    shuffled, letter = shuffle_options(options, 0, f"{spec.get('seed', 0)}:{item}")
    return {"id": f"{name}-{item}", "domain": "science", "prompt": user(mcq_prompt(question, shuffled, "ABCD")),
            "verifier": {"correct_letter": letter, "valid_letters": "ABCD", "answer_text": options[0]},
            "source": f"{rec.where}:{item}"}
