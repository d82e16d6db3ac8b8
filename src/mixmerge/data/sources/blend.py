"""Prepare the RL training files (one parquet + data card per domain) from the Nemotron blend."""
from __future__ import annotations

import logging
from pathlib import Path

from mixmerge.data.rows import write_rows
from mixmerge.data.sources import DataError, write_card
from mixmerge.data.sources.benchmarks import card_path
from mixmerge.data.sources.nemotron_blend import load_blend
from mixmerge.data.sources.prompt_length import filter_by_length, load_tokenizer

log = logging.getLogger(__name__)


def prepare_blend(spec: dict, domains: list[str], tokenizer: str, out_dir: str | Path, *,
                  cache_dir: str | None = None) -> dict:
    """Write ``<out_dir>/<domain>/train.parquet`` and ``train.card.json`` for every domain; returns the cards."""
    by_domain, blend_card = load_blend(spec, domains, cache_dir=cache_dir)
    tok = load_tokenizer(tokenizer)
    limit = spec["max_prompt_tokens"]
    cards = {}
    for domain in domains:
        rows, too_long = filter_by_length(by_domain[domain], tok, limit)
        if not rows:
            raise DataError(f"{blend_card['source']}: no training rows left for domain {domain!r}")
        path = Path(out_dir) / domain / "train.parquet"
        write_rows(rows, path)
        cards[domain] = {"dataset": "rl_blend", "domain": domain, "rows": len(rows),
                         "filters": {"max_prompt_tokens": limit, "tokenizer": tokenizer,
                                     "dropped_prompt_too_long": too_long},
                         "blend": blend_card}
        write_card(card_path(path), cards[domain])
        log.info("rl_blend %s: %d rows (%d dropped as longer than %d tokens)", domain, len(rows), too_long, limit)
    log.info("rl_blend drops: %s; duplicates: %d; bad rows skipped: %d", blend_card["drops"],
             blend_card["duplicates_dropped"], blend_card["skipped_bad_rows"])
    return cards
