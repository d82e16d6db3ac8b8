"""Multiple-choice answers: the study's letter extraction, an anti-listing hardening and seeded shuffling.

Study rule: three patterns tried in order, the first match wins; otherwise the last standalone capital letter
that is a valid option. The keywords match in any case; the letter itself must be a capital (our reading:
matching it case-insensitively would turn "the answer is a bit long" into "A").

``strict_single_letter`` (a hardening on top of the study rule, on by default in the reward): a response
that names several different valid letters as its answer, e.g. "Answer: A, B, C or D", an "answer is A"
next to an "answer is C", or a last line "A B C D", gets no letter, so listing every option scores 0.
"""
from __future__ import annotations

import hashlib
import random
import re
import string

DEFAULT_LETTERS = "ABCDEFGH"  # the study's default when an item gives no valid_letters
_PATTERNS = (
    re.compile(r"(?i:answer|option|choice)\s*(?i:is|:)?\s*([A-Z])"),
    re.compile(r"([A-Z])\s*(?i:is)\s*(?i:the)?\s*(?i:correct)"),
    re.compile(r"(?i:final)\s*(?i:answer|option)\s*(?i:is|:)?\s*([A-Z])"),
)
_STANDALONE = re.compile(r"\b([A-Z])\b")
_ALTERNATIVE = re.compile(r"\)?\s*(?:[,;/&|+]|\bor\b|\band\b)\s*\(?([A-Z])\b", re.IGNORECASE)


def _study_letter(text: str, valid: str) -> tuple[str | None, re.Match | None]:
    for pattern in _PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1), match
    standalone = [m for m in _STANDALONE.findall(text) if m in valid]
    return (standalone[-1] if standalone else None), None


def _names_several(text: str, valid: str, match: re.Match | None) -> bool:
    if match is None:  # fallback path: judge the last non-empty line
        lines = [ln for ln in text.splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        return len({m for m in _STANDALONE.findall(last) if m in valid}) > 1
    stated = {m.group(1) for p in _PATTERNS for m in p.finditer(text)} & set(valid)
    if len(stated) > 1:
        return True
    alternative = _ALTERNATIVE.match(text, match.end())
    return bool(alternative and alternative.group(1) in valid and alternative.group(1) != match.group(1))


def extract_letter(text: str, valid_letters: str = DEFAULT_LETTERS, strict_single_letter: bool = True) -> str | None:
    """The answer letter of a response (study rule), or None; with ``strict_single_letter`` also None when the
    response names several different valid letters as its answer."""
    if not isinstance(text, str) or not text:
        return None
    letter, match = _study_letter(text, valid_letters)
    if letter is None or letter not in valid_letters:
        return None
    if strict_single_letter and _names_several(text, valid_letters, match):
        return None
    return letter


def score_mcq(text: str, correct_letter: str, valid_letters: str = DEFAULT_LETTERS,
              strict_single_letter: bool = True) -> float:
    return 1.0 if extract_letter(text, valid_letters, strict_single_letter) == correct_letter else 0.0


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
