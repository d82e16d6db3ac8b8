"""The row contract shared by every domain, training set and benchmark.

``id`` (str), ``domain`` (str), ``prompt`` (list of chat messages), ``verifier`` (JSON-serialisable dict the
domain's scorer reads), ``source`` (dataset and index). Tiny synthetic rows also carry ``solution`` (reference
response in the required format) and ``flawed_solution`` (the same format, with the domain's typical slip, so a
wrong answer), used to build the SFT warm-up set. In parquet, ``prompt`` and ``verifier`` are stored as JSON
strings so every domain shares one schema.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

REQUIRED = ("id", "domain", "prompt", "verifier", "source")


def validate_row(row: dict, where: str) -> None:
    for key in REQUIRED:
        if key not in row or row[key] is None:
            raise ValueError(f"{where}: row {row.get('id', '?')!r} lacks field {key!r}")
    prompt = row["prompt"]
    if not isinstance(prompt, list) or not prompt or not all(
        isinstance(m, dict) and {"role", "content"} <= set(m) for m in prompt
    ):
        raise ValueError(f"{where}: row {row['id']!r} field 'prompt' must be a non-empty list of chat messages")
    if not isinstance(row["verifier"], dict):
        raise ValueError(f"{where}: row {row['id']!r} field 'verifier' must be a dict")


def write_rows(rows: list[dict], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = set()
    for i, row in enumerate(rows):
        validate_row(row, f"{path} (row {i})")
        if row["id"] in ids:
            raise ValueError(f"{path}: duplicate id {row['id']!r} at row {i}")
        ids.add(row["id"])
    frame = pd.DataFrame(
        [
            {**row, "prompt": json.dumps(row["prompt"]), "verifier": json.dumps(row["verifier"]),
             "source": json.dumps(row["source"]) if not isinstance(row["source"], str) else row["source"]}
            for row in rows
        ]
    )
    tmp = path.with_suffix(".tmp.parquet")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)


def read_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    frame = pd.read_parquet(path)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    rows = frame.to_dict("records")
    for i, row in enumerate(rows):
        try:
            row["prompt"] = json.loads(row["prompt"])
            row["verifier"] = json.loads(row["verifier"])
        except (TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: row {i} ({row.get('id')!r}) has malformed JSON in prompt/verifier: {err}")
        validate_row(row, f"{path} (row {i})")
    return rows
