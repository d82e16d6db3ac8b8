"""Instruction ids and kwargs checked against the IFEval checker registry the instruct scorer uses.

An id the registry lacks cannot be scored, so the row is dropped (counted per id in the data card) rather
than scored 0; kwargs that the checker rejects are a bad row.
"""
from __future__ import annotations

from collections import Counter

from mixmerge.sources import Dropped, Record


def clean_kwargs(rec: Record, kwargs: list) -> list[dict]:
    out = []
    for i, kw in enumerate(kwargs):
        if kw is None:
            kw = {}
        if not isinstance(kw, dict):
            raise rec.fail(f"kwargs[{i}]", f"expected an object, got {type(kw).__name__}")
        out.append({k: v for k, v in kw.items() if v is not None})
    return out


def check_instructions(rec: Record, ids: list, kwargs: list, unsupported: Counter) -> dict | Dropped:
    from mixmerge import nltk_offline

    if not ids or not all(isinstance(i, str) for i in ids):
        raise rec.fail("instruction_id_list", "expected a non-empty list of strings")
    if len(kwargs) != len(ids):
        raise rec.fail("kwargs", f"{len(kwargs)} entries for {len(ids)} instruction ids")
    kwargs = clean_kwargs(rec, kwargs)
    missing = [i for i in ids if i not in nltk_offline.instruction_registry()]
    if missing:
        unsupported.update(missing)
        return Dropped("unsupported_instruction_id")
    try:  # builds every checker with its kwargs; the probe response itself does not matter
        nltk_offline.ifeval_all_followed("probe", ids, kwargs)
    except (KeyError, TypeError, ValueError) as err:
        raise rec.fail("kwargs", f"rejected by the IFEval checkers: {err}") from None
    return {"instruction_id_list": list(ids), "kwargs": kwargs}
