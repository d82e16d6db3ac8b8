"""The study's SFT blend (study.md §1.2): Nemotron post-training chat datasets, each sampled to a target count.

Each source holds ``messages`` (role, content, optional ``reasoning_content`` and ``tool_calls``) and optionally
``tools``. A row is dropped when a user or assistant turn has no content, no reasoning and no tool calls (the
study's rule), or when its user turn is the ``"-"`` placeholder the competitive-programming set ships (the
study fills those from TACO/APPS/code_contests/codeforces; mixmerge does not, and counts them). Kept rows are
sampled per source with one seeded generator: without replacement down to the target, with replacement up to
it (the study's "repeat"), all rows when the target is null. The result is shuffled and written as parquet
(``id``, ``messages``, ``tools`` and ``source``, the chat columns as JSON strings) through ``datasets``, so
sources far larger than memory stay on disk.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from mixmerge.data.sources import MAX_BAD_EXAMPLES, DataError, Record, load_table, write_card

log = logging.getLogger(__name__)
ROLES = ("system", "user", "assistant", "tool")
PLACEHOLDER = "-"
COLUMNS = ["id", "messages", "tools", "source"]


def _json_field(rec: Record, name: str, value):
    """``tool_calls``/``tools`` come as JSON strings or as objects; empty means none."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise rec.fail(name, f"malformed JSON ({err})") from None
    if not isinstance(value, list):
        raise rec.fail(name, f"expected a list, got {type(value).__name__}")
    return value or None


def clean_messages(rec: Record) -> tuple[list[dict], str | None]:
    """(messages keeping role, content, reasoning_content, tool_calls; drop reason or None)."""
    raw = rec.get("messages", list)
    if not raw:
        raise rec.fail("messages", "empty")
    messages, drop = [], None
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise rec.fail(where, f"expected an object, got {type(m).__name__}")
        role = m.get("role")
        if role not in ROLES:
            raise rec.fail(f"{where}.role", f"{role!r} is not one of {', '.join(ROLES)}")
        content, reasoning = m.get("content") or "", m.get("reasoning_content") or ""
        if not isinstance(content, str) or not isinstance(reasoning, str):
            raise rec.fail(where, "content and reasoning_content must be strings")
        tool_calls = _json_field(rec, f"{where}.tool_calls", m.get("tool_calls"))
        out = {"role": role, "content": content}
        if reasoning:
            out["reasoning_content"] = reasoning
        if tool_calls:
            out["tool_calls"] = tool_calls
        messages.append(out)
        if role in ("user", "assistant") and not (content.strip() or reasoning.strip() or tool_calls):
            drop = drop or "empty_turn"
        if role == "user" and content.strip() == PLACEHOLDER:
            drop = drop or "placeholder_prompt"
    if not any(m["role"] == "assistant" for m in messages):
        raise rec.fail("messages", "no assistant turn to train on")
    return messages, drop


def _converter(where: str, skip_bad_rows: bool, unreadable: dict[int, str]):
    def convert(row: dict, index: int) -> dict:
        rec = Record(where, index, row)
        try:
            if index in unreadable:  # not UTF-8, not JSON, NaN: found before loading (sources.lines)
                raise DataError(unreadable[index])
            messages, drop = clean_messages(rec)
            tools = _json_field(rec, "tools", row.get("tools"))
        except DataError as err:
            if not skip_bad_rows:
                raise
            return {"messages": "", "tools": "", "source": f"{where}:{index}", "drop": "bad_row", "error": str(err)}
        return {"messages": json.dumps(messages, ensure_ascii=False), "tools": json.dumps(tools) if tools else "",
                "source": f"{where}:{index}", "drop": drop or "", "error": ""}
    return convert


def sample_indices(n: int, target: int | None, rng) -> tuple[list[int], str]:
    if target is None:
        return list(range(n)), "all"
    if n >= target:
        return rng.choice(n, size=target, replace=False).tolist(), "without replacement"
    return rng.integers(0, n, size=target).tolist(), "with replacement"


def load_source(name: str, spec: dict, rng, *, skip_bad_rows: bool, num_proc: int | None, cache_dir: str | None):
    """(sampled dataset with COLUMNS, card) for one source of the blend."""
    import datasets

    table = load_table(spec["source"], cache_dir=cache_dir)
    table.require(["messages"])
    converted = []
    for where, ds in table.parts:
        extra = [c for c in ds.column_names if c not in ("messages", "tools")]
        converted.append(ds.map(_converter(where, skip_bad_rows, table.bad.get(where, {})), with_indices=True,
                                remove_columns=extra,
                                num_proc=num_proc, desc=f"sft_blend {name}: {where}"))
    ds = datasets.concatenate_datasets(converted)
    reasons = Counter(ds["drop"])
    kept = ds.filter(lambda drop: drop == "", input_columns="drop", num_proc=num_proc)
    if len(kept) == 0:
        raise DataError(f"{table.description}: SFT source {name!r} has no usable rows (drops: {dict(reasons)})")
    indices, how = sample_indices(len(kept), spec.get("target"), rng)
    sampled = kept.select(indices).select_columns(["messages", "tools", "source"])
    sampled = sampled.map(lambda _, i: {"id": f"{name}-{i}"}, with_indices=True, num_proc=num_proc)
    bad = ds.filter(lambda drop: drop == "bad_row", input_columns="drop")["error"][:MAX_BAD_EXAMPLES]
    card = {"source": table.info, "rows_read": len(ds), "drops": {k: v for k, v in sorted(reasons.items()) if k},
            "skipped_bad_rows": reasons.get("bad_row", 0), "bad_row_examples": bad, "kept": len(kept),
            "target": spec.get("target"), "sampling": how, "rows": len(sampled),
            "distinct_rows_used": len(set(indices))}
    log.info("sft_blend %s: read %d, kept %d, %s -> %d rows; drops %s", name, len(ds), len(kept), how,
             len(sampled), card["drops"])
    return sampled.select_columns(COLUMNS), card


def prepare_sft_blend(spec: dict, out: str | Path, *, cache_dir: str | None = None) -> dict:
    """Write the blend to ``out`` (parquet) and its data card beside it; returns the card."""
    import datasets
    import numpy as np

    from mixmerge.data.sources.benchmarks import card_path

    seed = spec["seed"]
    rng = np.random.default_rng(seed)
    parts, cards = [], {}
    for name, source_spec in spec["sources"].items():
        ds, cards[name] = load_source(name, source_spec, rng, skip_bad_rows=spec.get("skip_bad_rows", False),
                                      num_proc=spec.get("num_proc"), cache_dir=cache_dir)
        parts.append(ds)
    blend = datasets.concatenate_datasets(parts).shuffle(seed=seed).flatten_indices()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    blend.to_parquet(str(tmp))
    tmp.replace(out)  # a crash never leaves a half-written file under the final name
    card = {"dataset": "sft_blend", "rows": len(blend), "seed": seed,
            "rows_per_source": {name: c["rows"] for name, c in cards.items()}, "sources": cards}
    write_card(card_path(out), card)
    log.info("sft_blend: %d rows from %d sources -> %s", len(blend), len(cards), out)
    return card
