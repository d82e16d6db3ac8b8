"""AIME 2024 (``math-ai/aime24``: ``problem``, ``solution`` = ``\\boxed{answer}``) and AIME 2025
(``math-ai/aime25``: ``problem``, ``answer``) -> math rows with the study's validation prompt."""
from __future__ import annotations

from mixmerge.data.sources import Record, user

COLUMNS = ["problem"]
PREFIX = ("Solve the following math problem step by step. The last line of your response should be of the "
          "form Answer: \\boxed{$Answer} (without quotes) where $Answer is the answer to the problem.\n\n")


def convert(rec: Record, spec: dict, name: str) -> dict:
    from mixmerge.verifiers.mathcheck import gold_answer

    problem = rec.text("problem")
    if rec.data.get("answer") is not None:
        answer = rec.text("answer")
    elif rec.data.get("solution") is not None:
        answer = gold_answer(rec.text("solution")).strip()  # the study: the \boxed{} content of the solution
        if not answer:
            raise rec.fail("solution", "no answer inside \\boxed{}")
    else:
        raise rec.fail("answer", "missing (and no 'solution' with a \\boxed{} answer)")
    item = rec.data.get("id", rec.index)
    return {"id": f"{name}-{item}", "domain": "math", "prompt": user(PREFIX + problem),
            "verifier": {"answer": answer}, "source": f"{rec.where}:{item}"}
