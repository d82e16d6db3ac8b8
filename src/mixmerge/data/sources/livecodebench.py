"""LiveCodeBench (``livecodebench/code_generation_lite``): a release (``release_vN`` = files ``test.jsonl``,
``test2.jsonl`` ... ``testN.jsonl``) and a contest-date window from config. Columns: ``question_id``,
``question_content``, ``contest_date``, ``starter_code``, ``public_test_cases`` (JSON),
``private_test_cases`` (JSON, or base64 + zlib + pickle of the JSON text), ``metadata`` (JSON; ``func_name``).

The pickled tests are decoded with an unpickler that refuses every global, so only plain data (the JSON
string) can come out of it; nothing in the file can run code here.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import io
import json
import pickle
import zlib

from mixmerge.data.sources import DataError, Dropped, Record, user

COLUMNS = ["question_id", "question_content", "contest_date", "starter_code", "public_test_cases",
           "private_test_cases", "metadata"]
STDIN_NOTE = ("Read the input from standard input and write the answer to standard output. Give the complete "
              "Python program in one ```python code block.")
CALL_NOTE = "Complete the following starter code in Python and give the whole solution in one ```python code block:"


def release_files(release: str) -> list[str]:
    if not release.startswith("release_v") or not release[len("release_v"):].isdigit():
        raise DataError(f"benchmark release {release!r}: expected release_v<N>")
    n = int(release[len("release_v"):])
    return ["test.jsonl"] + [f"test{i}.jsonl" for i in range(2, n + 1)]


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refused global {module}.{name}: only plain data may be unpickled")


def decode_tests(text: str) -> list:
    """The test list from plain JSON, or from base64(zlib(pickle(json text)))."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        raw = zlib.decompress(base64.b64decode(text, validate=False))
    except (binascii.Error, zlib.error, ValueError) as err:
        raise ValueError(f"neither JSON nor base64+zlib data ({err})") from None
    value = _PlainDataUnpickler(io.BytesIO(raw)).load()
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def to_test(rec: Record, where: str, case, func_name: str | None, is_class: bool) -> dict:
    if not isinstance(case, dict) or not isinstance(case.get("input"), str) or not isinstance(case.get("output"), str):
        raise rec.fail(where, "expected {'input': str, 'output': str, 'testtype': ...}")
    if case.get("testtype") == "stdin":
        return {"stdin": case["input"], "stdout": case["output"]}
    if case.get("testtype") == "functional":
        if not func_name:
            raise rec.fail("metadata", "functional tests need 'func_name'")
        try:
            args = [json.loads(line) for line in case["input"].split("\n") if line.strip()]
            expected = json.loads(case["output"])
        except json.JSONDecodeError as err:
            raise rec.fail(where, f"functional test is not JSON ({err})") from None
        return {"call": f"Solution.{func_name}" if is_class else func_name, "args": args, "expected": expected}
    raise rec.fail(f"{where}.testtype", f"unknown test type {case.get('testtype')!r}")


def convert(rec: Record, spec: dict, name: str) -> dict | Dropped:
    date = rec.get("contest_date", (str, datetime.date))  # Arrow may parse it as a timestamp
    date = (date.isoformat() if isinstance(date, datetime.date) else date.strip())[:10]
    if spec.get("date_from") and date < str(spec["date_from"]):
        return Dropped("before_date_window")
    if spec.get("date_to") and date > str(spec["date_to"]):
        return Dropped("after_date_window")
    question, starter = rec.text("question_content"), rec.text("starter_code", optional=True)
    try:
        meta = json.loads(rec.get("metadata", str) or "{}")
        public = json.loads(rec.get("public_test_cases", str) or "[]")
    except json.JSONDecodeError as err:
        raise rec.fail("metadata/public_test_cases", f"malformed JSON ({err})") from None
    try:
        private = decode_tests(rec.get("private_test_cases", str)) if rec.data["private_test_cases"] else []
    except (ValueError, pickle.UnpicklingError, EOFError) as err:
        raise rec.fail("private_test_cases", str(err)) from None
    if not isinstance(public, list) or not isinstance(private, list) or not public + private:
        raise rec.fail("public_test_cases", "no test cases")
    is_class = bool(starter) and "class Solution" in starter
    func_name = meta.get("func_name") if isinstance(meta, dict) else None
    tests = [to_test(rec, f"public_test_cases[{i}]", c, func_name, is_class) for i, c in enumerate(public)]
    tests += [to_test(rec, f"private_test_cases[{i}]", c, func_name, is_class) for i, c in enumerate(private)]
    note = f"{CALL_NOTE}\n```python\n{starter}\n```" if starter else STDIN_NOTE
    item = rec.text("question_id")
    return {"id": f"{name}-{item}", "domain": "code", "prompt": user(f"{question}\n\n{note}"),
            "verifier": {"tests": tests}, "source": f"{rec.where}:{item}"}
