"""IFEval (``google/IFEval``) and IFBench (``allenai/IFBench_test``): ``key``, ``prompt``,
``instruction_id_list``, ``kwargs``. Scored by the instruct scorer, prompt-level strict, with lm-eval's IFEval
checkers or IFBench's. An item with an id that cannot be checked here (unknown, or its NLTK data missing) is
dropped and counted per id in the data card (never scored 0); ``on_unsupported: error`` makes that an error."""
from __future__ import annotations

from collections import Counter

from mixmerge.data.sources import DataError, Dropped, Record, user
from mixmerge.data.sources.ifcheck import check_instructions

COLUMNS = ["key", "prompt", "instruction_id_list", "kwargs"]


def make_converter(unsupported: Counter):
    def convert(rec: Record, spec: dict, name: str) -> dict | Dropped:
        prompt = rec.text("prompt")
        verifier = check_instructions(rec, rec.get("instruction_id_list", list), rec.get("kwargs", list),
                                      unsupported)
        if isinstance(verifier, Dropped) and spec.get("on_unsupported", "drop") == "error":
            raise DataError(f"{rec.where}: row {rec.index}: field 'instruction_id_list': ids not in the checker "
                            f"registry: {sorted(unsupported)}")
        if isinstance(verifier, Dropped):
            return verifier
        item = rec.get("key", (str, int))
        return {"id": f"{name}-{item}", "domain": "instruct", "prompt": user(prompt), "verifier": verifier,
                "source": f"{rec.where}:{item}"}
    return convert
