"""Multiple-choice answers: the study's letter extraction, an anti-listing hardening and seeded shuffling.

Letter rules (``reward.mcq_letters``): three patterns tried in order, (1) "answer|option|choice [is|:] X",
(2) "X is [the] correct", (3) "final answer|option [is|:] X"; otherwise the last standalone capital letter that
is a valid option.

``study`` (the study's code): the patterns match in any case, the letter too (upper-cased: "Answer: b" is B),
and a match whose letter is not a valid option falls through to the next pattern, then to the fallback
("Answer: I think it's B." is B). Also "the answer is a bit long" reads as A: that is the study's rule.
``strict_case`` (this project's earlier reading): the keywords match in any case but the letter must be a
capital, and the first pattern that matches decides, valid option or not (both examples above score nothing).

``strict_single_letter`` (a hardening on top of either rule): a response that names several different valid
letters as its answer, e.g. "Answer: A, B, C or D", an "answer is A" next to an "answer is C", or a last line
"A B C D", gets no letter, so listing every option scores 0. Under ``study`` it counts lower-case letters too.
"""
from __future__ import annotations

import hashlib
import random
import re
import string

DEFAULT_LETTERS = "ABCDEFGH"  # the study's default when an item gives no valid_letters
LETTER_RULES = ("study", "strict_case")
_PATTERN_TEXTS = (
    r"(?i:answer|option|choice)\s*(?i:is|:)?\s*([A-Z])",
    r"([A-Z])\s*(?i:is)\s*(?i:the)?\s*(?i:correct)",
    r"(?i:final)\s*(?i:answer|option)\s*(?i:is|:)?\s*([A-Z])",
)
_PATTERNS = {"strict_case": tuple(re.compile(p) for p in _PATTERN_TEXTS),
             "study": tuple(re.compile(p, re.IGNORECASE) for p in _PATTERN_TEXTS)}
_STANDALONE = re.compile(r"\b([A-Z])\b")
_ALTERNATIVE = re.compile(r"\)?\s*(?:[,;/&|+]|\bor\b|\band\b)\s*\(?([A-Z])\b", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def _squeeze(text: str) -> str:
    """Each whitespace run as one space, or one newline if it breaks a line: the patterns' ``\\s*`` match the
    same, and a long run no longer makes them backtrack for seconds (quadratic in its length)."""
    return _WHITESPACE.sub(lambda run: "\n" if len((run.group() + "x").splitlines()) > 1 else " ", text)


def _pattern_letter(text: str, valid: str, rule: str) -> tuple[str | None, re.Match | None]:
    for pattern in _PATTERNS[rule]:
        match = pattern.search(text)
        if match is None:
            continue
        letter = match.group(1).upper()
        if rule == "strict_case" or letter in valid:
            return letter, match
    return None, None


def _study_letter(text: str, valid: str, rule: str) -> tuple[str | None, re.Match | None]:
    letter, match = _pattern_letter(text, valid, rule)
    if match is not None:
        return letter, match
    standalone = [m for m in _STANDALONE.findall(text) if m in valid]
    return (standalone[-1] if standalone else None), None


def _names_several(text: str, valid: str, match: re.Match | None, rule: str) -> bool:
    if match is None:  # fallback path: judge the last non-empty line
        lines = [ln for ln in text.splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        return len({m for m in _STANDALONE.findall(last) if m in valid}) > 1
    stated = {m.group(1).upper() for p in _PATTERNS[rule] for m in p.finditer(text)} & set(valid)
    if len(stated) > 1:
        return True
    alternative = _ALTERNATIVE.match(text, match.end())
    if not alternative:
        return False
    other = alternative.group(1).upper() if rule == "study" else alternative.group(1)
    return other in valid and other != match.group(1).upper()


def extract_letter(text: str, valid_letters: str = DEFAULT_LETTERS, strict_single_letter: bool = True,
                   rule: str = "strict_case") -> str | None:
    """The answer letter of a response under the letter ``rule`` (module docstring), or None; with
    ``strict_single_letter`` also None when the response names several different valid letters as its answer."""
    if rule not in LETTER_RULES:
        raise ValueError(f"unknown MCQ letter rule {rule!r}; expected one of {LETTER_RULES}")
    if not isinstance(text, str) or not text:
        return None
    text = _squeeze(text)
    letter, match = _study_letter(text, valid_letters, rule)
    if letter is None or letter not in valid_letters:
        return None
    if strict_single_letter and _names_several(text, valid_letters, match, rule):
        return None
    return letter


def score_mcq(text: str, correct_letter: str, valid_letters: str = DEFAULT_LETTERS,
              strict_single_letter: bool = True, rule: str = "strict_case") -> float:
    return 1.0 if extract_letter(text, valid_letters, strict_single_letter, rule) == correct_letter else 0.0


def item_rng(seed_key: str) -> random.Random:
    """A per-item RNG from a stable hash of the key (Python's ``hash()`` is salted per process)."""
    return random.Random(int.from_bytes(hashlib.sha256(seed_key.encode("utf-8")).digest()[:8], "big"))


def shuffle_options(options: list[str], correct_index: int, seed_key: str) -> tuple[list[str], str]:
    """Options in a per-item reproducible order, and the letter of the correct one."""
    if not 0 <= correct_index < len(options) <= len(string.ascii_uppercase):
        raise ValueError(f"correct_index {correct_index} out of range for {len(options)} options")
    order = list(range(len(options)))
    item_rng(seed_key).shuffle(order)
    return [options[i] for i in order], string.ascii_uppercase[order.index(correct_index)]
