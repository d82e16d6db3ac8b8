"""Math: word problems adding two two-digit numbers with a carry, worked column by column; the answer is the
last ``\\boxed{}``, graded by ``reward.math_grader`` (the study's rules or math-verify)."""
from __future__ import annotations

import random
import re

from mixmerge.domains import Domain
from mixmerge.domains._arith import carry_pairs, column_sum, pair_key
from mixmerge.domains._text import final_answer, held_out, think_wrap
from mixmerge.domains._verifier import field

NAME = "math"

PROMPT_SUFFIX = "Put the final answer in \\boxed{}."
NAMES = ["Tom", "Ana", "Li", "Sam", "Mia", "Raj", "Eva", "Kai"]
ITEMS = ["apples", "books", "coins", "cards", "shells", "stamps"]
TEMPLATE = "{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?"


def make_row(a: int, b: int, rng: random.Random, split: str) -> dict:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    question = TEMPLATE.format(name=name, item=item, a=a, b=b)
    steps, result = column_sum(a, b)
    slip, wrong = column_sum(a, b, keep_carry=False)
    return {
        "id": f"{NAME}-{split}-{a}_{b}",
        "domain": NAME,
        "prompt": [{"role": "user", "content": f"{question} {PROMPT_SUFFIX}"}],
        "verifier": {"answer": str(result)},
        "source": f"tiny-synthetic:{NAME}:{a}_{b}",
        "solution": think_wrap(steps, f"The answer is \\boxed{{{result}}}."),
        "flawed_solution": think_wrap(slip, f"The answer is \\boxed{{{wrong}}}."),
    }


def generate(n: int, seed: int, split: str) -> list[dict]:
    keys = [(a, b) for a, b in carry_pairs() if held_out(pair_key(a, b)) == (split == "eval")]
    rng = random.Random(f"{NAME}-{split}-{seed}")
    rng.shuffle(keys)
    if n > len(keys) and split == "train":
        keys = [rng.choice(keys) for _ in range(n)]  # few distinct problems: training repeats them
    rows = [make_row(a, b, rng, split) for a, b in keys[:n]]
    for i, row in enumerate(rows):
        row["id"] = f"{row['id']}-{i}"
    return rows


_LAST_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def score(completion: str, verifier: dict, *, lenient: bool = False, settings: dict | None = None) -> float:
    from mixmerge.verifiers import mathcheck

    answer = str(field(verifier, "answer", (str, int, float)))
    settings = settings or {}
    text = final_answer(completion, require_think=settings.get("require_think", True) and not lenient)
    if text is None:
        return 0.0
    timeout = float(settings.get("math_timeout_s", 10))
    grader = settings.get("math_grader", "math_verify")
    if lenient:
        boxed = mathcheck.boxed_answer(text)
        numbers = _LAST_NUMBER.findall(text)
        candidate = boxed if boxed is not None else (numbers[-1] if numbers else None)
        if candidate is None:
            return 0.0
        return mathcheck.score_math(f"\\boxed{{{candidate}}}", answer, timeout_s=timeout, grader=grader)
    return mathcheck.score_math(text, answer, timeout_s=timeout, grader=grader)


# The study's RL blend (study.md §1.4): the two math subsets, gold answer as is, a fixed instruction prefix.
BLEND_PREFIX = ("Solve the following math problem step by step. The last line of your response should be of "
                "the form Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n")


def blend_verifier(rec, counters) -> dict:
    return {"answer": rec.text("expected_answer")}


def rewrite_prompt(messages: list[dict]) -> list[dict]:
    return [{**messages[0], "content": BLEND_PREFIX + messages[0]["content"]}, *messages[1:]]


def item_timeout(settings: dict) -> float:
    return float(settings.get("math_timeout_s", 10)) + 5


DOMAIN = Domain(
    name=NAME, generate=generate, score=score, item_timeout=item_timeout,
    preload=("mixmerge.verifiers.mathcheck", "math_verify"),
    blend_subsets=("nano_v3_sft_profiled_dapo17k", "nano_v3_sft_profiled_skywork_no_omni"),
    blend_verifier=blend_verifier, rewrite_prompt=rewrite_prompt,
)
