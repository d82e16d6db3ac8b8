"""Science: multiple-choice questions (A-D) built from real facts shipped in packages: element data
(``periodictable``) and unit conversions (``scipy.constants``). The chosen letter is extracted."""
from __future__ import annotations

import random

from mixmerge.domains import Domain
from mixmerge.domains._text import final_answer, held_out, think_wrap
from mixmerge.domains._verifier import field
from mixmerge.verifiers.errors import VerifierError

NAME = "science"
LETTERS = "ABCD"
INSTRUCTION = "Answer the multiple choice question. End with 'Answer: $LETTER' (one of ABCD)."
VARIANTS = 12  # distinct distractor/order draws per fact; the split is taken over (fact, variant)


def element_facts(max_number: int = 36) -> list[dict]:
    import periodictable

    facts = []
    elements = [el for el in periodictable.elements if 1 <= el.number <= max_number]
    for el in elements:
        name = el.name.capitalize()
        facts.append({"key": f"symbol-{el.symbol}", "question": f"What is the chemical symbol of {name}?",
                      "answer": el.symbol, "pool": [e.symbol for e in elements],
                      "reasoning": f"{name} is {el.symbol}."})
        facts.append({"key": f"number-{el.symbol}", "question": f"What is the atomic number of {name}?",
                      "answer": str(el.number), "pool": [str(e.number) for e in elements],
                      "reasoning": f"{name} has {el.number} protons."})
    return facts


def conversion_facts() -> list[dict]:
    import scipy.constants as const

    units = [  # (large unit, small unit, factor taken from scipy.constants)
        ("kilometres", "metres", const.kilo), ("kilograms", "grams", const.kilo),
        ("metres", "centimetres", 1 / const.centi), ("litres", "millilitres", 1 / const.milli),
        ("hours", "minutes", const.hour / const.minute), ("minutes", "seconds", const.minute),
        ("days", "hours", const.day / const.hour),
    ]
    facts = []
    for big, small, factor in units:
        for value in range(2, 10):
            answer = int(round(value * factor))
            pool = sorted({int(round(value * f)) for _, _, f in units} | {answer * 10, value * 10, value + 100})
            facts.append({"key": f"convert-{big}-{value}", "question": f"How many {small} are in {value} {big}?",
                          "answer": str(answer), "pool": [str(p) for p in pool],
                          "reasoning": f"{value}*{int(round(factor))}={answer}"})
    return facts


def make_row(fact: dict, variant: int, split: str) -> dict:
    rng = random.Random(f"{fact['key']}-{variant}")
    distractors = rng.sample([p for p in fact["pool"] if p != fact["answer"]], 3)
    options = distractors + [fact["answer"]]
    rng.shuffle(options)
    letter = LETTERS[options.index(fact["answer"])]
    body = "\n".join(f"{L}) {opt}" for L, opt in zip(LETTERS, options))
    return {
        "id": f"science-{split}-{fact['key']}-{variant}",
        "domain": NAME,
        "prompt": [{"role": "user", "content": f"{INSTRUCTION}\n\n{fact['question']}\n\n{body}"}],
        "verifier": {"correct_letter": letter, "valid_letters": LETTERS, "answer_text": fact["answer"]},
        "source": f"tiny-synthetic:science:{fact['key']}:{variant}",
        "solution": think_wrap(fact["reasoning"], f"Answer: {letter}"),
        "plain_solution": think_wrap(fact["reasoning"], fact["answer"]),
    }


def generate(n: int, seed: int, split: str) -> list[dict]:
    items = [
        (fact, v)
        for fact in element_facts() + conversion_facts()
        for v in range(VARIANTS)
        if held_out(f"science-{fact['key']}-{v}") == (split == "eval")
    ]
    rng = random.Random(f"{NAME}-{split}-{seed}")
    rng.shuffle(items)
    if n > len(items) and split == "train":
        items = [rng.choice(items) for _ in range(n)]
    rows = [make_row(fact, v, split) for fact, v in items[:n]]
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
    letter = mcq.extract_letter(text, valid, strict_single_letter=settings.get("strict_single_letter", True))
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
