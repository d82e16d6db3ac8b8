"""One generated sample, as every generation backend returns it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Sample:
    text: str
    finish_reason: str  # "stop" (end token emitted) or "length" (hit max_new_tokens)
    num_tokens: int
    extra: dict | None = None  # fields kept in the sample's record (a multi-turn episode's turn and call counts)
