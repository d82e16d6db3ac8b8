"""Instruction ids and kwargs checked against the checkers the instruct scorer uses (IFEval + IFBench + the
IFEvalG ids neither has).

An id that cannot be checked here (in none of the registries, or its NLTK data is not installed) is dropped and
counted per id in the data card rather than scored 0; kwargs that the checker rejects are a bad row.
"""
from __future__ import annotations

from collections import Counter

from mixmerge.data.sources import Dropped, Record


def clean_kwargs(rec: Record, kwargs: list) -> list[dict]:
    out = []
    for i, kw in enumerate(kwargs):
        if kw is None:
            kw = {}
        if not isinstance(kw, dict):
            raise rec.fail(f"kwargs[{i}]", f"expected an object, got {type(kw).__name__}")
        out.append({k: v for k, v in kw.items() if v is not None})
    return out


def unsupported_reason(instruction_id: str) -> str:
    from mixmerge.verifiers import nltk_offline

    resource = nltk_offline.missing_nltk_data(instruction_id)
    return f"{instruction_id} (needs NLTK data {resource})" if resource else instruction_id


def check_instructions(rec: Record, ids: list, kwargs: list, unsupported: Counter) -> dict | Dropped:
    from mixmerge.verifiers import nltk_offline

    if not ids or not all(isinstance(i, str) for i in ids):
        raise rec.fail("instruction_id_list", "expected a non-empty list of strings")
    if len(kwargs) != len(ids):
        raise rec.fail("kwargs", f"{len(kwargs)} entries for {len(ids)} instruction ids")
    kwargs = clean_kwargs(rec, kwargs)
    missing = [unsupported_reason(i) for i in ids if not nltk_offline.is_supported(i)]
    if missing:
        unsupported.update(missing)
        return Dropped("unsupported_instruction_id")
    try:  # builds every checker with its kwargs; the probe response itself does not matter
        nltk_offline.all_instructions_followed("probe", ids, kwargs)
    except (KeyError, TypeError, ValueError) as err:
        raise rec.fail("kwargs", f"rejected by the instruction checkers: {err}") from None
    return {"instruction_id_list": list(ids), "kwargs": kwargs}
