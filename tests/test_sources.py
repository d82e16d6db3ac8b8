"""Real-data loaders on hand-written fixture files of each dataset's schema: rows valid, verifier data
round-trips, errors name file/row/field, bad rows can be skipped and are counted in the data card."""
import json
import shutil
from pathlib import Path

import pytest

from mixmerge.data.rows import read_rows, write_rows
from mixmerge.data.sources import DataError, load_table
from mixmerge.data.sources.benchmarks import card_path, load_benchmark, prepare_benchmark
from mixmerge.data.sources.blend import prepare_blend
from mixmerge.data.sources.livecodebench import decode_tests
from mixmerge.data.sources.nemotron_blend import load_blend
from mixmerge.domains.math import BLEND_PREFIX as MATH_PREFIX

FIX = Path(__file__).parent / "fixtures"
DOMAINS = ["math", "code", "science", "instruct"]


@pytest.fixture(scope="module")
def word_tokenizer(tmp_path_factory):
    """One token per word, with a chat template: enough to test the prompt-length filter offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "<|im_start|>": 1, "<|im_end|>": 2}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    fast.chat_template = ("{% for m in messages %}<|im_start|> {{ m.role }} {{ m.content }} <|im_end|> "
                          "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}")
    out = tmp_path_factory.mktemp("tok")
    fast.save_pretrained(out)
    return str(out)


def blend_spec(path="nemotron_blend.jsonl", **extra):
    return {"source": {"path": str(FIX / path)}, "max_prompt_tokens": 200, **extra}


def test_blend_maps_subsets_rewrites_and_filters(tmp_path, word_tokenizer):
    cards = prepare_blend(blend_spec(), DOMAINS, word_tokenizer, tmp_path)
    rows = {d: read_rows(tmp_path / d / "train.parquet") for d in DOMAINS}
    assert {d: len(r) for d, r in rows.items()} == {"math": 3, "code": 1, "science": 1, "instruct": 23}
    blend = cards["math"]["blend"]
    assert blend["rows_read"] == 35
    assert blend["drops"] == {"answer_letter_outside_A-H": 1, "gold_fails_math_check": 1,
                              "unsupported_instruction_id": 1,
                              "subset_dropped:nano_v3_sft_profiled_structured_outputs": 1,
                              "domain_not_selected:agent": 1}
    assert blend["duplicates_dropped"] == 1
    assert blend["unsupported_instruction_ids"] == {"detectable_content:rephrase_paragraph": 1}
    where = f"{FIX / 'nemotron_blend.jsonl'}:nano_v3_sft_profiled_dapo17k:7:line13"
    assert blend["gold_fails_math_check_examples"] == [f"{where}: '{{0, 1'"]
    assert cards["math"]["filters"]["dropped_prompt_too_long"] == 1
    assert json.loads(card_path(tmp_path / "math" / "train.parquet").read_text())["rows"] == 3
    math = {r["id"]: r for r in rows["math"]}
    first = math["math-dapo17k-0"]
    assert first["prompt"][0]["content"].startswith(MATH_PREFIX + "Let $x$ satisfy")
    assert first["verifier"] == {"answer": "16"}
    assert math["math-skywork_no_omni-0"]["prompt"][0]["content"].endswith("Compute $\\frac{3}{4} + \\frac{1}{4}$.")
    science = rows["science"][0]
    assert science["prompt"][0]["content"].startswith("Answer the following multiple choice question step by step.")
    assert science["verifier"] == {"correct_letter": "B", "valid_letters": "ABCDEFGH"}
    assert rows["code"][0]["verifier"]["tests"][1] == {"stdin": "10 -3\n", "stdout": "7\n"}
    instruct = {r["id"]: r["verifier"] for r in rows["instruct"]}
    assert instruct["instruct-instruction_following-0"] == {
        "instruction_id_list": ["change_case:english_lowercase", "punctuation:no_comma"], "kwargs": [{}, {}]}
    assert instruct["instruct-instruction_following-2"]["kwargs"] == [{"keywords": ["snow", "quiet"]}]
    assert instruct["instruct-instruction_following-3"]["kwargs"] == [
        {"phrase": "The early bird catches the worm", "small_n": 2.0}]


def test_blend_keeps_rows_of_every_ifevalg_id_written_here():
    from mixmerge.verifiers.ifevalg_extra import INSTRUCTION_DICT as ifevalg_extra

    by_domain, card = load_blend(blend_spec(), ["instruct"])
    kept = {i for row in by_domain["instruct"] for i in row["verifier"]["instruction_id_list"]}
    assert set(ifevalg_extra) <= kept
    assert card["unsupported_instruction_ids"] == {"detectable_content:rephrase_paragraph": 1}


def test_blend_bad_rows_name_file_row_field():
    with pytest.raises(DataError, match=r"nemotron_blend_bad.jsonl: row 1: field 'expected_answer': missing"):
        load_blend(blend_spec("nemotron_blend_bad.jsonl"), DOMAINS)


def test_blend_skip_bad_rows_counts_them():
    by_domain, card = load_blend(blend_spec("nemotron_blend_bad.jsonl", skip_bad_rows=True), DOMAINS)
    assert [r["id"] for r in by_domain["math"]] == ["math-dapo17k-0"]
    assert card["skipped_bad_rows"] == 4
    joined = "\n".join(card["bad_row_examples"])
    for expected in ["row 1: field 'expected_answer'", "row 2: field 'responses_create_params.input[0].content'",
                     "row 3: field 'verifier_metadata.unit_tests': 2 inputs but 1 outputs",
                     "row 4: field '<line>': malformed JSON"]:
        assert expected in joined


def test_blend_unknown_subset_is_an_error(tmp_path):
    line = {"dataset": "nano_v3_new_thing", "responses_create_params": {"input": [{"role": "user", "content": "x"}]}}
    path = tmp_path / "blend.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(DataError, match=r"row 0: field 'dataset': unknown subset 'nano_v3_new_thing'"):
        load_blend({"source": {"path": str(path)}}, DOMAINS)


def test_missing_file_and_missing_column(tmp_path):
    with pytest.raises(DataError, match=r"nope.jsonl: file not found"):
        load_table({"path": str(tmp_path / "nope.jsonl")})
    csv = tmp_path / "gpqa.csv"
    csv.write_text("Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2\nq,a,b,c\n")
    with pytest.raises(DataError, match=r"gpqa.csv: missing column 'Incorrect Answer 3'"):
        load_benchmark("gpqa", {"loader": "gpqa", "source": {"path": str(csv)}})


BENCHMARKS = {
    "aime24": ({"loader": "aime", "source": {"path": str(FIX / "aime24.jsonl")}}, 2, {}),
    "aime25": ({"loader": "aime", "source": {"path": str(FIX / "aime25.jsonl")}}, 2, {}),
    "gpqa": ({"loader": "gpqa", "seed": 0, "source": {"path": str(FIX / "gpqa_diamond.csv")}}, 2, {}),
    "ifeval": ({"loader": "ifeval", "source": {"path": str(FIX / "ifeval.jsonl")}}, 2, {}),
    "ifbench": ({"loader": "ifbench", "source": {"path": str(FIX / "ifbench.jsonl")}}, 2,
                {"unsupported_instruction_id": 2}),
    "lcb": ({"loader": "livecodebench", "release": "release_v2", "date_from": "2024-08-01", "date_to": "2025-02-01",
             "skip_bad_rows": True, "source": {"path": str(FIX / "livecodebench")}}, 2,
            {"before_date_window": 1, "after_date_window": 1}),
    "mmlu_redux": ({"loader": "mmlu_redux", "source": {"path": str(FIX / "mmlu_redux"), "data_files": "*.jsonl"}},
                   2, {"error_type:wrong_groundtruth": 1}),
    "hle": ({"loader": "hle", "source": {"path": str(FIX / "hle.jsonl")}}, 2,
            {"has_image": 1, "exact_match_needs_judge": 1}),
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    result = {}
    for name, (spec, _, _) in BENCHMARKS.items():
        rows, _ = load_benchmark(name, spec)
        card = prepare_benchmark(name, spec, out / f"{name}.parquet")
        result[name] = (rows, read_rows(out / f"{name}.parquet"), card)
    return result


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_benchmark_rows_round_trip(prepared, name):
    _, n, drops = BENCHMARKS[name]
    rows, stored, card = prepared[name]
    assert len(stored) == n == card["rows"]
    assert card["drops"] == drops
    for row, back in zip(rows, stored):
        assert (back["id"], back["domain"], back["prompt"], back["verifier"]) == \
               (row["id"], row["domain"], row["prompt"], row["verifier"])


def test_lcb_card_counts_the_refused_pickle(prepared):
    card = prepared["lcb"][2]
    assert card["skipped_bad_rows"] == 1
    assert "refused global" in card["bad_row_examples"][0] and "test2.jsonl: row 0" in card["bad_row_examples"][0]


def test_lcb_release_picks_files(tmp_path):
    spec = BENCHMARKS["lcb"][0]
    rows, card = load_benchmark("lcb", {**spec, "release": "release_v1"})
    assert [r["id"] for r in rows] == ["lcb-abc999_a", "lcb-9001"] and card["skipped_bad_rows"] == 0
    shutil.copy(FIX / "livecodebench" / "test.jsonl", tmp_path / "test.jsonl")
    with pytest.raises(DataError, match=r"test2.jsonl: file not found"):
        load_benchmark("lcb", {**spec, "source": {"path": str(tmp_path)}})


def test_restricted_unpickler_refuses_globals():
    import base64, pickle, zlib

    payload = base64.b64encode(zlib.compress(pickle.dumps(print))).decode()
    with pytest.raises(pickle.UnpicklingError, match="refused global builtins.print"):
        decode_tests(payload)
    plain = base64.b64encode(zlib.compress(pickle.dumps('[{"input": "1", "output": "2"}]'))).decode()
    assert decode_tests(plain) == [{"input": "1", "output": "2"}]


def test_gpqa_shuffle_is_seeded_per_item():
    spec = BENCHMARKS["gpqa"][0]
    first, _ = load_benchmark("gpqa", spec)
    again, _ = load_benchmark("gpqa", spec)
    assert first == again
    for row in first:
        letter = row["verifier"]["correct_letter"]
        assert f"{letter}) {row['verifier']['answer_text']}" in row["prompt"][0]["content"]
    other = [load_benchmark("gpqa", {**spec, "seed": s})[0] for s in range(1, 6)]
    assert any(o[0]["prompt"] != first[0]["prompt"] for o in other)


def test_ifbench_card_names_ids_without_nltk_data(prepared):
    assert prepared["ifbench"][2]["unsupported_instruction_ids"] == {
        "ratio:stop_words (needs NLTK data corpora/stopwords)": 1,
        "words:start_verb (needs NLTK data taggers/averaged_perceptron_tagger_eng)": 1}


def test_ifbench_error_mode_names_the_ids():
    spec = {**BENCHMARKS["ifbench"][0], "on_unsupported": "error"}
    with pytest.raises(DataError, match=r"row 2: field 'instruction_id_list'.*"
                                       r"ratio:stop_words \(needs NLTK data corpora/stopwords\)"):
        load_benchmark("ifbench", spec)


def test_written_rows_keep_the_contract(tmp_path, prepared):
    rows = prepared["hle"][0]
    write_rows(rows, tmp_path / "x.parquet")
    assert {r["domain"] for r in read_rows(tmp_path / "x.parquet")} == {"math", "science"}


def test_hub_source_reads_every_listed_split(tmp_path):
    from mixmerge.data.sources import load_table

    repo, cache = tmp_path / "repo", str(tmp_path / "cache")  # a local dataset repo stands in for the hub
    repo.mkdir()
    (repo / "train.jsonl").write_text('{"q": "a"}\n{"q": "b"}\n')
    (repo / "test.jsonl").write_text('{"q": "c"}\n')
    table = load_table({"hub_id": str(repo), "split": ["train", "test"]}, cache_dir=cache)
    assert [(where, len(ds)) for where, ds in table.parts] == [(f"{repo}[train]", 2), (f"{repo}[test]", 1)]
    single = load_table({"hub_id": str(repo), "split": "test"}, cache_dir=cache)
    assert [(where, len(ds)) for where, ds in single.parts] == [(str(repo), 1)]


def test_blend_workplace_rows_become_agent_rows_whose_scoring_asks_for_their_environment(tmp_path, word_tokenizer):
    from mixmerge.domains import get_domain
    from mixmerge.verifiers.errors import ScoringError

    prepare_blend(blend_spec(), [*DOMAINS, "agent"], word_tokenizer, tmp_path)
    [row] = read_rows(tmp_path / "agent" / "train.parquet")
    assert row["id"] == "agent-workbench-0" and row["prompt"][-1]["content"] == "Email Ana the agenda."
    assert row["verifier"] == {"ground_truth": [{"name": "email_send_email", "arguments": {}}]}
    with pytest.raises(ScoringError, match="27-tool environment"):
        get_domain("agent").score("[]", row["verifier"])


def test_workplace_assistant_benchmark_rows_name_the_bad_row(tmp_path):
    from mixmerge.data.sources import DataError

    spec = {"loader": "workplace_assistant", "source": {"path": str(FIX / "workplace_assistant.jsonl")}}
    with pytest.raises(DataError, match=r"ground_truth\[0\]\.arguments.*malformed JSON"):
        load_benchmark("agent_workplace", spec)
    rows, card = load_benchmark("agent_workplace", {**spec, "skip_bad_rows": True})
    assert [r["id"] for r in rows] == ["agent_workplace-wa-0", "agent_workplace-wa-1"] and card["skipped_bad_rows"] == 1
    assert rows[1]["verifier"]["ground_truth"] == [
        {"name": "analytics_create_plot", "arguments": {"metric": "revenue"}},
        {"name": "email_send_email", "arguments": {"recipient": "team@example.com"}}]
    assert rows[0]["prompt"][0] == {"role": "system", "content": "You are a workplace assistant."}
