"""Text helpers every domain shares: the study's ``</think>`` gate, the reference-answer shape, the held-out split."""
from __future__ import annotations

import hashlib

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


def held_out(key: str) -> bool:
    """Deterministic split: one key in ten is held out, so train and eval never share a problem."""
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % 10 == 0

