"""Loader errors name file, row and field, for rows the data libraries cannot even read: non-UTF-8 bytes, a
truncated last line, NaN golds (JSON, CSV, Parquet), duplicate ids (both rows shown). ``skip_bad_rows`` skips
and counts every one of them in the data card."""
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from mixmerge.data.sources import DataError
from mixmerge.data.sources.benchmarks import load_benchmark
from mixmerge.data.sources.nemotron_blend import load_blend
from mixmerge.data.sources.sft_blend import prepare_sft_blend

FIX = Path(__file__).parent / "fixtures"
AIME = [json.loads(line) for line in (FIX / "aime25.jsonl").read_text().splitlines()]


def aime_file(tmp_path: Path, lines: list[bytes], name="aime.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines))
    return path


def good(i: int) -> bytes:
    row = AIME[i % len(AIME)]
    return json.dumps({**row, "id": f"p{i}", "problem": f"({i}) {row['problem']}"}).encode()


def bench(path: Path, skip: bool = False):
    return load_benchmark("aime", {"loader": "aime", "source": {"path": str(path)}, "skip_bad_rows": skip})


CASES = {
    "not_utf8": ([good(0), good(1).replace(b"problem", b"probl\xffem"), good(2)], 1, "'<line>': not UTF-8 (byte 0xff"),
    "truncated": ([good(0), good(1), good(2)[:40]], 2, "'<line>': malformed JSON (truncated: the file ends inside"),
    "nan_gold": ([good(0), good(1).replace(b'"answer": "', b'"answer": NaN, "x": "'), good(2)], 1,
                 "field 'answer': NaN"),
    "not_an_object": ([good(0), b"[1, 2]", good(2)], 1, "'<line>': expected a JSON object"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_unreadable_rows_name_file_row_field_and_can_be_skipped(tmp_path, case):
    lines, row, message = CASES[case]
    path = aime_file(tmp_path, lines + ([] if case == "truncated" else [b""]))
    with pytest.raises(DataError, match=re.escape(f"{path}: row {row} (line {row + 1}): field ") + ".*"
                       + re.escape(message.split("field ")[-1])):
        bench(path)
    rows, card = bench(path, skip=True)
    assert len(rows) == 2 and card["skipped_bad_rows"] == 1
    assert card["bad_row_examples"][0].startswith(f"{path}: row {row}")


def test_every_bad_row_is_skipped_and_counted(tmp_path):
    lines = [good(0), b"\xfe\xff", good(1), b"{\"id\": 3,", b"", good(2), b"{\"answer\": NaN, \"problem\": \"x\"}"]
    path = aime_file(tmp_path, lines)
    rows, card = bench(path, skip=True)
    assert card["rows_read"] == 6 and card["skipped_bad_rows"] == 3 and len(rows) == 3  # the blank line is no row
    assert [e.split(": field")[0].rsplit(": ", 1)[1] for e in card["bad_row_examples"]] == \
        ["row 1 (line 2)", "row 3 (line 4)", "row 5 (line 7)"]


def test_nan_gold_in_csv_and_parquet(tmp_path):
    frame = pd.DataFrame({"id": ["a", "b"], "problem": ["What is 1+1?", "What is 2+2?"], "answer": [2.0, float("nan")]})
    for path in (tmp_path / "aime.csv", tmp_path / "aime.parquet"):
        frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(path)
        with pytest.raises(DataError, match=re.escape(f"{path}: row 1: field 'answer'")):
            bench(path)
        rows, card = bench(path, skip=True)
        assert len(rows) == 1 and card["skipped_bad_rows"] == 1


def test_duplicate_ids_show_both_rows(tmp_path):
    first, second = AIME[0], {**AIME[1], "id": AIME[0]["id"]}  # different problems, one id
    path = aime_file(tmp_path, [json.dumps(first).encode(), json.dumps(second).encode(), good(2)])
    with pytest.raises(DataError, match=re.escape(f"duplicate id 'aime-{first['id']}': row '{path}:{first['id']}' "
                                                  f"and row '{path}:{first['id']}'")):
        bench(path)
    rows, card = bench(path, skip=True)
    assert len(rows) == 2 and card["skipped_bad_rows"] == 1 and "duplicate id" in card["bad_row_examples"][0]


def test_blend_lines_not_utf8_nan_and_duplicates(tmp_path):
    lines = (FIX / "nemotron_blend.jsonl").read_bytes().split(b"\n")
    bad = [lines[0], lines[1].replace(b"What", b"Wh\xe9t"), lines[0].replace(b'"16"', b"NaN")]
    path = tmp_path / "blend.jsonl"
    path.write_bytes(b"\n".join(bad) + b"\n")
    spec = {"source": {"path": str(path)}, "max_prompt_tokens": 200}
    with pytest.raises(DataError, match=re.escape(f"{path}: row 1 (line 2): field '<line>': not UTF-8")):
        load_blend(spec, ["math"])
    by_domain, card = load_blend({**spec, "skip_bad_rows": True}, ["math"])
    assert card["skipped_bad_rows"] == 2 and len(by_domain["math"]) == 1
    assert "row 2: field 'expected_answer': nan" in card["bad_row_examples"][1]
    clash = tmp_path / "clash.jsonl"  # same subset and index, different prompts
    clash.write_bytes(lines[0] + b"\n" + lines[0].replace(b"Find $x^2$", b"Find $x^3$").replace(b'"16"', b'"64"'))
    with pytest.raises(DataError, match=r"duplicate id 'math-dapo17k-0': row '.*line0' and row '.*line1'"):
        load_blend({**spec, "source": {"path": str(clash)}}, ["math"])


def test_sft_blend_unreadable_line(tmp_path):
    lines = (FIX / "sft_blend" / "math.jsonl").read_bytes().rstrip(b"\n").split(b"\n")
    path = tmp_path / "math.jsonl"
    path.write_bytes(b"\n".join([lines[0], lines[1][:30], lines[2]]) + b"\n")
    spec = {"seed": 0, "sources": {"math": {"source": {"path": str(path)}, "target": None}}}
    with pytest.raises(DataError, match=re.escape(f"{path}: row 1 (line 2): field '<line>': malformed JSON")):
        prepare_sft_blend(spec, tmp_path / "out.parquet")
    card = prepare_sft_blend({**spec, "skip_bad_rows": True}, tmp_path / "out.parquet")
    assert card["sources"]["math"]["skipped_bad_rows"] == 1 and card["sources"]["math"]["rows"] == 2
