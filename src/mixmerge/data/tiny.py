"""Data preparation: normalised rows per domain (the row contract) for training and held-out evaluation."""
from __future__ import annotations

import json
from pathlib import Path

from mixmerge.domains import get_domain
from mixmerge.data.rows import write_rows


def prepare_tiny(domain: str, train_n: int, eval_n: int, seed: int, out_dir: str | Path) -> dict:
    module = get_domain(domain)
    train = module.generate(train_n, seed, "train")
    held_out = module.generate(eval_n, seed, "eval")
    overlap = {r["source"] for r in train} & {r["source"] for r in held_out}
    if overlap:
        raise RuntimeError(f"{domain}: train and eval share items, e.g. {sorted(overlap)[:3]}")
    out_dir = Path(out_dir)
    write_rows(train, out_dir / "train.parquet")
    write_rows(held_out, out_dir / "eval.parquet")
    card = {"domain": domain, "source": "tiny-synthetic", "seed": seed, "train_rows": len(train),
            "eval_rows": len(held_out), "distinct_train_items": len({r["source"] for r in train})}
    (out_dir / "data_card.json").write_text(json.dumps(card, indent=2))
    return card


def reference_messages(domain: str, target: str) -> list[dict]:
    """A tiny row's reference answer as chat messages: one assistant message, or, for a multi-turn domain, the
    transcript its ``solution`` holds as JSON (assistant turns with their tool calls, tool answers, the final
    answer)."""
    if get_domain(domain).environment is None:
        return [{"role": "assistant", "content": target}]
    return json.loads(target)


def tokenizer_texts(domains: list[str], per_domain: int, seed: int) -> list[str]:
    texts = []
    for domain in domains:
        for row in get_domain(domain).generate(per_domain, seed, "train"):
            texts += [m["content"] for m in row["prompt"]]
            for target in (row["solution"], row["flawed_solution"]):
                texts += [m["content"] for m in reference_messages(domain, target)]
    return texts
