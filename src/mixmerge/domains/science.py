"""Science: multiple-choice questions (A-D) on quantities with units, answerable from the prompt: two lengths,
masses or durations are combined by column addition (the skill math and code share). The options rise in steps
of ten, so the letter is the sum's tens digit minus option A's, and one wrong option is always the sum without
its carry. The chosen letter is extracted."""
from __future__ import annotations

import random

from mixmerge.domains import Domain
from mixmerge.domains._arith import carry_pairs, column_sum, pair_key
from mixmerge.domains._text import final_answer, held_out, think_wrap
from mixmerge.domains._verifier import field
from mixmerge.verifiers.errors import VerifierError

NAME = "science"
LETTERS = "ABCD"
INSTRUCTION = "Answer the multiple choice question. End with 'Answer: $LETTER' (one of ABCD)."
QUESTIONS = (  # (key, question with {a} {b} {unit}, units)
    ("length", "A rod of {a} {unit} is joined end to end with a rod of {b} {unit}. How long is it now?", ("cm", "m")),
    ("mass", "A box of {a} {unit} is put on a scale with a box of {b} {unit}. What does the scale show?", ("g", "kg")),
    ("time", "A task takes {a} {unit} and the next takes {b} {unit}. How long do both take?", ("s", "min")),
)


def make_row(kind: int, a: int, b: int, split: str) -> dict:
    key, template, units = QUESTIONS[kind]
    rng = random.Random(f"{key}-{a}-{b}")
    unit = rng.choice(units)
    steps, result = column_sum(a, b)
    slip, dropped = column_sum(a, b, keep_carry=False)
    index = rng.randint(1, min(3, result // 10 - 1))  # option A at result - 10 * index, never below 10
    lowest = result - 10 * index
    body = "\n".join(f"{L}) {lowest + 10 * i} {unit}" for i, L in enumerate(LETTERS))

    def choice(value: int) -> str:
        offset = value // 10 - lowest // 10
        return f"{value // 10}-{lowest // 10}={offset} {LETTERS[offset]}"

    question = template.format(a=a, b=b, unit=unit)
    return {
        "id": f"science-{split}-{key}-{a}_{b}",
        "domain": NAME,
        "prompt": [{"role": "user", "content": f"{INSTRUCTION}\n\n{question}\n\n{body}"}],
        "verifier": {"correct_letter": LETTERS[index], "valid_letters": LETTERS,
                     "answer_text": f"{result} {unit}"},
        "source": f"tiny-synthetic:science:{key}:{a}_{b}",
        "solution": think_wrap(f"{steps} {choice(result)}", f"Answer: {LETTERS[index]}"),
        "flawed_solution": think_wrap(f"{slip} {choice(dropped)}", f"Answer: {LETTERS[index - 1]}"),
    }


def generate(n: int, seed: int, split: str) -> list[dict]:
    items = [(kind, a, b) for kind in range(len(QUESTIONS)) for a, b in carry_pairs()
             if held_out(pair_key(a, b)) == (split == "eval")]
    rng = random.Random(f"{NAME}-{split}-{seed}")
    rng.shuffle(items)
    if n > len(items) and split == "train":
        items = [rng.choice(items) for _ in range(n)]
    rows = [make_row(kind, a, b, split) for kind, a, b in items[:n]]
    for i, row in enumerate(rows):
        row["id"] = f"{row['id']}-{i}"
    return rows


def score(completion: str, verifier: dict, *, lenient: bool = False, settings: dict | None = None) -> float:
    from mixmerge.verifiers import mcq

    correct = field(verifier, "correct_letter", str)
    valid = verifier.get("valid_letters") or "ABCDEFGH"
    if not isinstance(valid, str) or not valid.isalpha() or not valid.isupper():
        raise VerifierError("valid_letters", f"expected capital letters, got {valid!r}")
    if len(correct) != 1 or correct not in valid:
        raise VerifierError("correct_letter", f"expected one of {valid!r}, got {correct!r}")
    settings = settings or {}
    text = final_answer(completion, require_think=settings.get("require_think", True) and not lenient)
    if text is None:
        return 0.0
    letter = mcq.extract_letter(text, valid, strict_single_letter=settings.get("strict_single_letter", True),
                                rule=settings.get("mcq_letters", "strict_case"))
    if letter is not None:
        return float(letter == correct)
    if lenient and verifier.get("answer_text"):
        return float(text.strip() == str(verifier["answer_text"]).strip())
    return 0.0


# The study's RL blend: MCQ rows carry the correct letter; training rows have no valid_letters (A-H).
BLEND_LETTERS = "ABCDEFGH"
MCQ_LEAD = "Answer the following multiple choice question."
MCQ_LEAD_STEPS = "Answer the following multiple choice question step by step."


def blend_verifier(rec, counters):
    from mixmerge.data.sources import Dropped

    letter = rec.text("expected_answer")
    if len(letter) != 1 or not letter.isupper():
        raise rec.fail("expected_answer", f"expected one capital letter, got {letter!r}")
    if letter not in BLEND_LETTERS:
        return Dropped("answer_letter_outside_A-H")
    return {"correct_letter": letter, "valid_letters": BLEND_LETTERS}


def rewrite_prompt(messages: list[dict]) -> list[dict]:
    """The study asks for step-by-step answers: its lead sentence gains "step by step"."""
    first = messages[0]["content"]
    if not first.startswith(MCQ_LEAD):
        return messages
    return [{**messages[0], "content": MCQ_LEAD_STEPS + first[len(MCQ_LEAD):]}, *messages[1:]]


DOMAIN = Domain(
    name=NAME, generate=generate, score=score, item_timeout=lambda settings: 60.0,
    preload=("mixmerge.verifiers.mcq",),
    blend_subsets=("nano_v3_sft_profiled_stem_mcqa",), blend_verifier=blend_verifier, rewrite_prompt=rewrite_prompt,
)
