"""The pieces the IFEvalG checkers written here share: kwargs parsing, the checker object the instruction
registry hands out, and the text units (words, sentences, paragraphs) the checks count.

A checker behaves like lm-eval's: ``Checker(instruction_id)``, then ``build_description(**kwargs)`` (kwargs
already without None values), then ``check_following(response) -> bool``. Unlike IFEvalG, a missing kwarg is
an error, not a value drawn at random: a random target would make the reward noise.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Callable

RELATIONS = ("less than", "at least")
# A word: letters/digits, with inner apostrophes or hyphens ("don't", "well-known" are one word each).
WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")
_EDGE_PUNCT = "\"'`.,;:!?()[]{}<>*_~\u2018\u2019\u201c\u201d\u00ab\u00bb\u2026"


def words(text: str) -> list[str]:
    return WORD.findall(text)


def bare(token: str) -> str:
    """A whitespace token without the punctuation around it, lower-cased."""
    return token.strip(_EDGE_PUNCT).lower()


def sentences(text: str) -> list[str]:
    """IFEval's sentence splitter (regex rules, no NLTK data), as IFEvalG uses it."""
    from lm_eval.tasks.ifeval.instructions_util import split_into_sentences

    return split_into_sentences(text)


def count_phrase(phrase: str, text: str) -> int:
    """Case-insensitive occurrences of ``phrase`` anywhere in ``text`` (inside longer words too, as in IFEval's
    keyword frequency)."""
    return len(re.findall(re.escape(phrase), text, flags=re.IGNORECASE))


def paragraphs(text: str, divider: str) -> list[str] | None:
    """Parts of ``text`` between dividers; an empty first or last part is dropped, an empty inner part
    (two dividers in a row) gives None."""
    parts = re.split(divider, text)
    if parts and not parts[0].strip():
        parts = parts[1:]
    if parts and not parts[-1].strip():
        parts = parts[:-1]
    return None if any(not p.strip() for p in parts) else parts


def compare(count: int, relation: str, target: int) -> bool:
    return count < target if relation == "less than" else count >= target


# ---------------------------------------------------------------------------------------- kwargs
def text_arg(name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"kwarg {name!r} must be a non-empty string, got {value!r:.80}")
    return value.strip()


def word_arg(name: str, value) -> str:
    """A word; IFEvalG also takes it as a one-element list."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return text_arg(name, value)


def int_arg(minimum: int) -> Callable[[str, object], int]:
    def parse(name: str, value) -> int:
        # the blend's kwargs come through JSON/Arrow, where an integer may arrive as 3.0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ValueError(f"kwarg {name!r} must be an integer, got {value!r:.80}")
        if int(value) < minimum:
            raise ValueError(f"kwarg {name!r} must be at least {minimum}, got {value!r}")
        return int(value)
    return parse


def relation_arg(name: str, value) -> str:
    if value not in RELATIONS:
        raise ValueError(f"kwarg {name!r} must be one of {RELATIONS}, got {value!r:.80}")
    return value


@dataclass(frozen=True)
class Rule:
    """One instruction: its text, its kwargs (name -> parser), and ``check(response, **kwargs) -> bool``."""
    description: str
    check: Callable[..., bool]
    params: dict[str, Callable] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()  # kwargs IFEvalG accepts but does not check with
    validate: Callable[[dict], None] | None = None  # raises ValueError for kwargs no response can follow


class RuleChecker:
    """The checker object for one instruction id (the interface lm-eval's and IFBench's checkers share)."""

    def __init__(self, rule: Rule, instruction_id: str):
        self.rule, self.id, self.args = rule, instruction_id, None

    def build_description(self, **kwargs) -> str:
        unknown = sorted(set(kwargs) - set(self.rule.params) - set(self.rule.ignored))
        if unknown:
            raise TypeError(f"{self.id}: unexpected kwargs {unknown} (takes {sorted(self.rule.params)})")
        missing = sorted(set(self.rule.params) - set(kwargs))
        if missing:
            raise ValueError(f"{self.id}: missing kwargs {missing}")
        try:
            args = {name: parse(name, kwargs[name]) for name, parse in self.rule.params.items()}
            if self.rule.validate:
                self.rule.validate(args)
        except ValueError as err:
            raise ValueError(f"{self.id}: {err}") from None
        self.args = args
        return self.rule.description.format(**args)

    def get_instruction_args(self) -> dict | None:
        return dict(self.args) if self.args else None

    def check_following(self, value: str) -> bool:
        if self.args is None:
            raise RuntimeError(f"{self.id}: build_description was not called")
        return bool(self.rule.check(value, **self.args))


def checker_factory(rule: Rule) -> Callable[[str], RuleChecker]:
    """What the registry holds for an id: called with the id, like a checker class."""
    return functools.partial(RuleChecker, rule)
