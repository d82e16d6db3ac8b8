import os
import subprocess
import sys

import pytest

from mixmerge.verifiers import nltk_offline


def test_ensure_punkt_writes_files(tmp_path):
    d = nltk_offline.ensure_punkt(str(tmp_path / "nltk"))
    english = tmp_path / "nltk" / "tokenizers" / "punkt_tab" / "english"
    names = {"collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"}
    assert {p.name for p in english.iterdir()} == names
    assert "dr" in (english / "abbrev_types.txt").read_text().split()
    assert os.environ["NLTK_DATA"].split(os.pathsep)[0] == d


def test_import_downloads_nothing(tmp_path):
    # Fresh interpreter with an empty data dir: importing the registry must neither download nor fail,
    # and sentence counting must work. nltk.download is replaced by a function that fails loudly.
    code = (
        "import nltk\n"
        "def no(*a, **k): raise SystemExit('download attempted')\n"
        "nltk.download = no\n"
        "from mixmerge.verifiers.nltk_offline import all_instructions_followed\n"
        "r = 'Dr. Smith went home. He slept. Then he woke up.'\n"
        "print(all_instructions_followed(r, ['length_constraints:number_sentences'],"
        " [{'num_sentences': 3, 'relation': 'at least'}]))\n"
    )
    env = dict(os.environ, MIXMERGE_NLTK_DATA=str(tmp_path / "d"), NLTK_DATA="")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_strict_all_followed():
    ids = ["punctuation:no_comma", "change_case:english_lowercase"]
    assert nltk_offline.all_instructions_followed("all lower and no commas here", ids, [{}, {}])
    assert not nltk_offline.all_instructions_followed("all lower, with a comma", ids, [{}, {}])
    assert not nltk_offline.all_instructions_followed("No Comma But Upper", ids, [{}, {}])


def test_none_kwargs_removed():
    ids = ["keywords:existence"]
    assert nltk_offline.all_instructions_followed("apples and pears", ids, [{"keywords": ["pears"], "num_words": None}])


def test_data_errors_raise():
    with pytest.raises(KeyError):
        nltk_offline.all_instructions_followed("x", ["no:such_instruction"], [{}])


def test_ifbench_checkers():
    conj = ["count:conjunctions"]
    assert nltk_offline.all_instructions_followed("I came and saw, but left, so what.", conj, [{"small_n": 3.0}])
    assert not nltk_offline.all_instructions_followed("I came and saw and left.", conj, [{"small_n": 3.0}])
    span = ["repeat:repeat_span"]
    kwargs = [{"prompt_to_repeat": "zero one two three four five", "n_start": 1, "n_end": 3}]
    assert nltk_offline.all_instructions_followed("One two", span, kwargs)  # words 1 to 3, end excluded
    assert not nltk_offline.all_instructions_followed("one two three", span, kwargs)


def test_ifbench_id_without_its_nltk_data_is_unsupported_and_refused():
    assert "ratio:stop_words" in nltk_offline.instruction_registry()
    assert nltk_offline.missing_nltk_data("ratio:stop_words") == "corpora/stopwords"
    assert not nltk_offline.is_supported("ratio:stop_words")
    assert nltk_offline.is_supported("count:conjunctions")
    with pytest.raises(LookupError, match="needs the NLTK data 'corpora/stopwords'"):
        nltk_offline.all_instructions_followed("the cat", ["ratio:stop_words"], [{"percentage": 50}])


def test_ifbench_id_with_its_nltk_data_installed(tmp_path):
    stopwords = tmp_path / "data" / "corpora" / "stopwords"
    stopwords.mkdir(parents=True)
    (stopwords / "english").write_text("the\na\nis\n")
    code = (
        "from mixmerge.verifiers import nltk_offline as n\n"
        "ids = ['ratio:stop_words']\n"
        "print(n.is_supported(ids[0]), n.all_instructions_followed('the cat is a cat', ids, [{'percentage': 50}]),"
        " n.all_instructions_followed('the cat is a cat', ids, [{'percentage': 70}]))\n"
    )
    env = dict(os.environ, MIXMERGE_NLTK_DATA=str(tmp_path / "punkt"), NLTK_DATA=str(tmp_path / "data"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "True"]  # 3 stop words of 5 words = 60%
