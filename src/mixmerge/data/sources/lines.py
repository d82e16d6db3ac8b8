"""Local JSON Lines files checked line by line before loading, so a bad line is an error naming file, row and field.

HF ``datasets`` fails a whole file on one non-UTF-8 byte, one truncated line or one ``NaN`` (no row named, and
``skip_bad_rows`` cannot skip it). Here every line is checked first: a clean file loads as before; a file with
bad lines loads from a sanitised copy (the same rows, bad ones emptied) and the bad rows are reported by
``Table.records()`` at their own row numbers, so ``convert`` raises on the first or, with ``skip_bad_rows``,
skips and counts every one.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

_NAN = object()


def _constant(name: str):
    return _NAN  # NaN, Infinity, -Infinity: Python reads them, JSON (and Arrow) do not


def _nan_field(obj, prefix: str = "") -> str | None:
    if obj is _NAN:
        return prefix or "<line>"
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        found = _nan_field(value, f"{prefix}.{key}" if prefix else str(key))
        if found:
            return found
    return None


def line_problem(raw: bytes, last_unterminated: bool, parse: bool = True) -> tuple[str, str] | None:
    """(field, problem) for a line that is not UTF-8, not a JSON object (truncated?) or holds NaN; else None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return "<line>", f"not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})"
    if not parse:
        return None
    try:
        obj = json.loads(text, parse_constant=_constant)
    except json.JSONDecodeError as err:
        cut = " (truncated: the file ends inside this line)" if last_unterminated else ""
        return "<line>", f"malformed JSON{cut}: {err.msg} at column {err.colno}"
    if not isinstance(obj, dict):
        return "<line>", f"expected a JSON object, got {type(obj).__name__}"
    nan = _nan_field(obj)
    if nan:
        return nan, "NaN/Infinity is not a value (a missing or broken entry)"
    return None


def split_lines(path: Path) -> tuple[list[bytes], bool]:
    """The file's lines (without newlines) and whether its last line lacks one (a cut-off write)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines, bool(data) and not data.endswith(b"\n")


def is_json_lines(path: Path) -> bool:
    """``.jsonl``, or a ``.json`` holding lines (not one JSON array or object spanning the file)."""
    if path.suffix == ".jsonl":
        return True
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    return path.suffix == ".json" and head.startswith(b"{") and b"\n{" in head.rstrip()


def text_rows(path: Path) -> tuple[list[dict], dict[int, str]]:
    """Every line as ``{"text": line}`` (as the ``text`` builder reads it) and the rows that are not UTF-8."""
    lines, _ = split_lines(path)
    rows, bad = [], {}
    for i, raw in enumerate(lines):
        problem = line_problem(raw.rstrip(b"\r"), False, parse=False)
        if problem:
            bad[i] = f"{path}: row {i} (line {i + 1}): field {problem[0]!r}: {problem[1]}"
            rows.append({"text": ""})
        else:
            rows.append({"text": raw.rstrip(b"\r").decode("utf-8")})
    return rows, bad


def check_json_lines(path: Path) -> tuple[Path, dict[int, str]]:
    """(file to load, {row: error}) for a JSON Lines file: the file itself when clean, else a sanitised copy
    with the same rows (blank lines dropped, as Arrow's reader drops them; bad rows as ``{}``)."""
    lines, unterminated = split_lines(path)
    kept, bad = [], {}
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        problem = line_problem(raw, unterminated and number == len(lines))
        if problem:
            bad[len(kept)] = f"{path}: row {len(kept)} (line {number}): field {problem[0]!r}: {problem[1]}"
            raw = b"{}"
        kept.append(raw)
    if not bad:
        return path, {}
    folder = Path(tempfile.mkdtemp(prefix="mixmerge-sanitised-"))
    copy = folder / path.name
    copy.write_bytes(b"\n".join(kept) + b"\n")
    return copy, bad
