"""Domain registry. A domain is one module exposing:

- ``NAME``: the domain id used in config, paths and the ``domain`` column;
- ``generate(n, seed, split) -> list[dict]``: tiny synthetic rows (the row contract, see ``mixmerge.data.rows``),
  each with a reference ``solution`` and a ``plain_solution`` (right answer, required format missing);
- ``score(completion, verifier, *, lenient=False, settings=None) -> float``: the reward (strict) or the
  format-free correctness check (lenient). Never raises on model output.
"""
from __future__ import annotations

import importlib
from types import ModuleType

DOMAIN_MODULES = {
    "math": "mixmerge.domains.math",
    "code": "mixmerge.domains.code",
    "science": "mixmerge.domains.science",
    "instruct": "mixmerge.domains.instruct",
}


def get_domain(name: str) -> ModuleType:
    if name not in DOMAIN_MODULES:
        raise KeyError(f"unknown domain {name!r}; known: {sorted(DOMAIN_MODULES)}")
    return importlib.import_module(DOMAIN_MODULES[name])


THINK_CLOSE = "</think>"
END_MARKERS = ("<|im_end|>", "<|endoftext|>")


def final_answer(completion: str, require_think: bool = True) -> str | None:
    """The study's gate: the text after the last ``</think>`` (trailing end marker removed), or None when the
    reasoning is not closed and the gate is on. Without the gate, the whole text minus any think block."""
    text = completion
    for marker in END_MARKERS:
        if text.endswith(marker):
            text = text[: -len(marker)]
    if THINK_CLOSE in text:
        return text.rsplit(THINK_CLOSE, 1)[1]
    if require_think:
        return None
    return text.replace("<think>", "")


def think_wrap(reasoning: str, answer: str) -> str:
    return f"<think>\n{reasoning}\n</think>\n{answer}"
