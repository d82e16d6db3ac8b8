"""Benchmarks into the row contract: one loader per source, one parquet + data card per benchmark."""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from mixmerge.data.rows import write_rows
from mixmerge.data.sources import (DataError, convert, dedupe, drop_unverifiable_math, load_table,
                                   write_card)
from mixmerge.data.sources import aime, gpqa, hle, ifeval, livecodebench, mmlu_redux, workplace
from mixmerge.data.sources.ids import unique_ids

log = logging.getLogger(__name__)
LOADERS = ("aime", "gpqa", "ifeval", "ifbench", "livecodebench", "mmlu_redux", "hle", "workplace_assistant")


def _loader(kind: str, unsupported: Counter):
    if kind == "aime":
        return aime.COLUMNS, aime.convert
    if kind == "gpqa":
        return gpqa.COLUMNS, gpqa.convert
    if kind in ("ifeval", "ifbench"):
        return ifeval.COLUMNS, ifeval.make_converter(unsupported)
    if kind == "livecodebench":
        return livecodebench.COLUMNS, livecodebench.convert
    if kind == "mmlu_redux":
        return mmlu_redux.COLUMNS, mmlu_redux.convert
    if kind == "hle":
        return hle.COLUMNS, hle.convert
    if kind == "workplace_assistant":
        return workplace.COLUMNS, workplace.convert
    raise DataError(f"unknown benchmark loader {kind!r}; known: {', '.join(LOADERS)}")


def load_benchmark(name: str, spec: dict, *, cache_dir: str | None = None) -> tuple[list[dict], dict]:
    """(rows, card) for benchmark ``name`` with config entry ``spec`` (its ``loader`` and ``source``)."""
    unsupported: Counter = Counter()
    columns, to_row = _loader(spec["loader"], unsupported)
    files, builder = None, None
    if spec["loader"] == "livecodebench":
        files, builder = livecodebench.release_files(spec["release"]), "json"
    table = load_table(spec["source"], cache_dir=cache_dir, data_files=files, builder=builder)
    table.require(columns)
    result = convert(table.records(), lambda rec: to_row(rec, spec, name), spec.get("skip_bad_rows", False))
    bad_golds = drop_unverifiable_math(result, table.description)
    result.rows, duplicates = dedupe(result.rows)
    unique_ids(result, table.description, spec.get("skip_bad_rows", False))
    rows = result.rows
    if not rows:
        raise DataError(f"{table.description}: benchmark {name!r} has no usable rows "
                        f"(drops: {dict(result.drops)}, unsupported instruction ids: {dict(unsupported)})")
    card = {"benchmark": name, "loader": spec["loader"], "source": table.info, **result.card(),
            "duplicates_dropped": duplicates, "rows": len(rows),
            "rows_per_domain": dict(Counter(r["domain"] for r in rows)),
            "settings": {k: spec[k] for k in ("release", "date_from", "date_to", "seed", "keep_error_types",
                                              "on_unsupported") if k in spec}}
    if bad_golds:
        card["gold_fails_math_check_examples"] = bad_golds
    if spec["loader"] == "hle":
        card.update(hle.judge_note(name, spec, rows, result.drops))
    if unsupported:
        card["unsupported_instruction_ids"] = dict(unsupported.most_common())
        log.warning("%s: %d items dropped for instruction ids outside the checker registry: %s", name,
                    result.drops["unsupported_instruction_id"], dict(unsupported.most_common()))
    return rows, card


def prepare_benchmark(name: str, spec: dict, out: str | Path, *, cache_dir: str | None = None) -> dict:
    rows, card = load_benchmark(name, spec, cache_dir=cache_dir)
    out = Path(out)
    write_rows(rows, out)
    write_card(card_path(out), card)
    log.info("%s: %d rows (read %d, drops %s, bad rows skipped %d)", name, card["rows"], card["rows_read"],
             card["drops"], card["skipped_bad_rows"])
    return card


def card_path(parquet: str | Path) -> Path:
    parquet = Path(parquet)
    return parquet.with_name(parquet.name.removesuffix(".parquet") + ".card.json")
