"""Real datasets into the row contract.

A source is a hub id or a local path (config ``source: {path | hub_id, name, split, revision, data_files}``),
loaded with HF ``datasets`` (which caches it; local files never touch the network). Errors name the file,
the row and the field; with ``skip_bad_rows`` a malformed row is counted and skipped instead, and the count
goes into the data card. Filtering the study does on purpose (a dropped subset, an unsupported checker) is a
``Dropped`` reason, counted per reason, never an error.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from mixmerge.data.sources import lines

log = logging.getLogger(__name__)
BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
MAX_BAD_EXAMPLES = 20


class DataError(ValueError):
    """A data problem: missing file, missing column, malformed row. The message names where."""


@dataclass(frozen=True)
class Dropped:
    reason: str


@dataclass
class Record:
    where: str   # the file (or hub id/config) it came from
    index: int   # row number within that file/config, 0-based
    data: dict
    error: DataError | None = None  # the row could not be read at all (not UTF-8, not JSON, NaN)

    def fail(self, name: str, problem: str) -> DataError:
        return DataError(f"{self.where}: row {self.index}: field {name!r}: {problem}")

    def get(self, name: str, types: type | tuple = object, *, optional: bool = False):
        if name not in self.data or self.data[name] is None:
            if optional:
                return None
            raise self.fail(name, "missing")
        value = self.data[name]
        if isinstance(value, float) and not math.isfinite(value):  # pandas/Arrow's missing value, or a NaN gold
            raise self.fail(name, f"{value} (a missing or broken value)")
        if not isinstance(value, types):
            raise self.fail(name, f"expected {_type_names(types)}, got {type(value).__name__}")
        return value

    def text(self, name: str, *, optional: bool = False) -> str | None:
        value = self.get(name, (str, int, float), optional=optional)
        if value is None:
            return None
        value = str(value).strip()
        if not value and not optional:
            raise self.fail(name, "empty")
        return value or None


def _type_names(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in types)


class LinesPart(list):
    """A local file read as raw lines (``text_lines``): ``{"text": line}`` rows, like the ``text`` builder's."""
    column_names = ["text"]


@dataclass
class Table:
    description: str                  # hub id / path, for error messages and cards
    parts: list[tuple[str, object]]   # (where, HF Dataset) per file or config
    info: dict = field(default_factory=dict)
    bad: dict[str, dict[int, str]] = field(default_factory=dict)  # where -> {row: why it could not be read}

    def require(self, columns: list[str]) -> None:
        for where, ds in self.parts:
            missing = [c for c in columns if c not in ds.column_names]
            if missing and self.bad.get(where) and len(self.bad[where]) == len(ds):
                raise DataError(next(iter(self.bad[where].values())))  # nothing readable: say why
            if missing:
                raise DataError(f"{where}: missing column {missing[0]!r} (columns: {sorted(ds.column_names)})")

    def records(self) -> Iterator[Record]:
        for where, ds in self.parts:
            bad = self.bad.get(where, {})
            for i, row in enumerate(ds):
                yield Record(where, i, {}, DataError(bad[i])) if i in bad else Record(where, i, row)

    def __len__(self) -> int:
        return sum(len(ds) for _, ds in self.parts)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _local_files(root: Path, patterns: list[str]) -> list[Path]:
    if root.is_file():
        return [root]
    files = []
    for pattern in patterns or ["*"]:
        matched = sorted(p for p in root.glob(pattern) if p.is_file() and p.suffix in BUILDERS)
        if not matched:
            raise DataError(f"{root / pattern}: file not found (source.data_files)")
        files += matched
    return files


def load_table(spec: dict, *, cache_dir: str | None = None, text_lines: bool = False,
               data_files: list[str] | None = None, builder: str | None = None) -> Table:
    """Load a source. ``text_lines``: read JSONL as raw lines (each parsed by the caller, so one malformed or
    oddly typed row cannot break Arrow's schema inference for the whole file). ``data_files`` overrides the
    spec's (a loader that derives files from other settings, e.g. a LiveCodeBench release); ``builder``
    reads a hub repo's data files with a packaged builder (for repos whose loading script ``datasets`` no
    longer runs)."""
    import datasets

    patterns = data_files if data_files is not None else _as_list(spec.get("data_files"))
    if spec.get("path"):
        root = Path(spec["path"]).expanduser()
        if not root.exists():
            raise DataError(f"{root}: file not found (source.path)")
        files = _local_files(root, patterns)
        parts, bad = _load_local(files, text_lines, cache_dir)
        info = {"path": str(root), "revision": spec.get("revision"),
                "files": [{"file": str(f), "sha256": _sha256(f)} for f in files]}
        return Table(str(root), parts, info, bad)
    hub_id = spec.get("hub_id")
    if not hub_id:
        raise DataError("source: give 'path' (local file or directory) or 'hub_id'")
    revision = spec.get("revision")
    info = {"hub_id": hub_id, "revision": revision, "split": spec.get("split"), "data_files": patterns or None}
    if text_lines or builder:
        at = f"@{revision}" if revision else ""
        urls = [f"hf://datasets/{hub_id}{at}/{p}" for p in patterns]
        if not urls:
            raise DataError(f"{hub_id}: source.data_files is required to read its files directly")
        ds = datasets.load_dataset("text" if text_lines else builder, data_files=urls, split="train",
                                   cache_dir=cache_dir)
        return Table(hub_id, [(hub_id, ds)], info)
    parts = []
    splits = _as_list(spec.get("split")) or ["train"]
    for name in _as_list(spec.get("name")) or [None]:
        for split in splits:
            ds = datasets.load_dataset(hub_id, name, split=split, revision=revision, data_files=patterns or None,
                                       cache_dir=cache_dir)
            label = ",".join(x for x in (name, split if len(splits) > 1 else None) if x)
            parts.append((f"{hub_id}" + (f"[{label}]" if label else ""), ds))
    info["names"] = _as_list(spec.get("name")) or None
    return Table(hub_id, parts, info)


def _load_local(files: list[Path], text_lines: bool, cache_dir: str | None):
    """(parts, bad rows per file) for local files; JSON Lines are checked line by line first (``lines``)."""
    import datasets

    parts, bad = [], {}
    for f in files:
        builder = "text" if text_lines else BUILDERS.get(f.suffix)
        if builder is None:
            raise DataError(f"{f}: unsupported file type {f.suffix!r} (use one of {sorted(BUILDERS)})")
        if text_lines:
            rows, bad[str(f)] = lines.text_rows(f)
            parts.append((str(f), LinesPart(rows)))
            continue
        load_from = f
        if builder == "json" and lines.is_json_lines(f):
            load_from, bad[str(f)] = lines.check_json_lines(f)
        try:
            ds = datasets.load_dataset(builder, data_files=str(load_from), split="train", cache_dir=cache_dir)
        except Exception as err:  # Arrow/datasets errors name neither the file nor the row
            raise DataError(f"{f}: cannot be read as {builder}: {type(err).__name__}: {err}") from None
        parts.append((str(f), ds))
    return parts, {where: rows for where, rows in bad.items() if rows}


def parse_json_line(rec: Record) -> Record:
    """A ``text_lines`` record -> the JSON object on that line."""
    line = rec.data.get("text")
    try:
        obj = json.loads(line)
    except (TypeError, json.JSONDecodeError) as err:
        raise DataError(f"{rec.where}: row {rec.index}: field '<line>': malformed JSON ({err})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{rec.where}: row {rec.index}: field '<line>': expected a JSON object")
    return Record(rec.where, rec.index, obj)


@dataclass
class Converted:
    rows: list[dict] = field(default_factory=list)
    read: int = 0
    drops: Counter = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)

    def card(self) -> dict:
        return {"rows_read": self.read, "drops": dict(sorted(self.drops.items())),
                "skipped_bad_rows": len(self.bad), "bad_row_examples": self.bad[:MAX_BAD_EXAMPLES]}


def convert(records, fn: Callable[[Record], dict | Dropped], skip_bad_rows: bool) -> Converted:
    """Apply ``fn`` to every record; a DataError (an unreadable row included) stops everything unless
    ``skip_bad_rows``, which skips and counts it."""
    out = Converted()
    for rec in records:
        out.read += 1
        try:
            if rec.error:
                raise rec.error
            result = fn(rec)
        except DataError as err:
            if not skip_bad_rows:
                raise
            out.bad.append(str(err))
            continue
        if isinstance(result, Dropped):
            out.drops[result.reason] += 1
        else:
            out.rows.append(result)
    if out.bad:
        log.warning("skipped %d bad rows, e.g. %s", len(out.bad), out.bad[0])
    return out


def dedupe(rows: list[dict]) -> tuple[list[dict], int]:
    """Keep the first row of each (domain, prompt) with whitespace normalised; returns (rows, dropped)."""
    seen, kept = set(), []
    for row in rows:
        key = (row["domain"], json.dumps([[m["role"], " ".join(m["content"].split())] for m in row["prompt"]]))
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept, len(rows) - len(kept)


def user(content: str) -> list[dict]:
    return [{"role": "user", "content": content}]


def write_card(path: str | Path, card: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(card, indent=2, default=str) + "\n")


def drop_unverifiable_math(result: Converted, where: str) -> list[str]:
    """Drop the math rows of ``result`` whose gold answer fails the math scorer's own check, counting them in its
    drops; returns examples for the data card."""
    from mixmerge.verifiers.mathcheck import golds_self_verify

    math = [r for r in result.rows if r["domain"] == "math"]
    bad = [r for r, ok in zip(math, golds_self_verify([r["verifier"]["answer"] for r in math])) if not ok]
    if not bad:
        return []
    bad_rows = {id(r) for r in bad}
    result.rows = [r for r in result.rows if id(r) not in bad_rows]
    result.drops["gold_fails_math_check"] += len(bad)
    examples = [f"{r['source']}: {r['verifier']['answer']!r}" for r in bad[:5]]
    log.warning("%s: %d math rows dropped: their gold answer does not score 1 against itself (e.g. %s)",
                where, len(bad), examples[0])
    return examples
