"""The study's prompt-length filter: prompts longer than ``max_tokens`` after the model's chat template."""
from __future__ import annotations


def prompt_lengths(tokenizer, prompts: list[list[dict]], chunk: int = 256) -> list[int]:
    lengths = []
    for start in range(0, len(prompts), chunk):
        batch = prompts[start:start + chunk]
        texts = tokenizer.apply_chat_template(batch, tokenize=False, add_generation_prompt=True)
        lengths += [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return lengths


def filter_by_length(rows: list[dict], tokenizer, max_tokens: int) -> tuple[list[dict], int]:
    """(rows whose templated prompt has at most ``max_tokens`` tokens, number dropped)."""
    lengths = prompt_lengths(tokenizer, [r["prompt"] for r in rows])
    kept = [r for r, n in zip(rows, lengths) if n <= max_tokens]
    return kept, len(rows) - len(kept)


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if not tokenizer.chat_template:
        raise ValueError(f"tokenizer {name_or_path!r} has no chat template; the length filter counts templated "
                         "prompts (set data.rl_blend.tokenizer to one that has)")
    return tokenizer
