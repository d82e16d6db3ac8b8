import os
import subprocess
import sys

import pytest

from mixmerge import nltk_offline


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
        "from mixmerge.nltk_offline import ifeval_all_followed\n"
        "r = 'Dr. Smith went home. He slept. Then he woke up.'\n"
        "print(ifeval_all_followed(r, ['length_constraints:number_sentences'],"
        " [{'num_sentences': 3, 'relation': 'at least'}]))\n"
    )
    env = dict(os.environ, MIXMERGE_NLTK_DATA=str(tmp_path / "d"), NLTK_DATA="")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_strict_all_followed():
    ids = ["punctuation:no_comma", "change_case:english_lowercase"]
    assert nltk_offline.ifeval_all_followed("all lower and no commas here", ids, [{}, {}])
    assert not nltk_offline.ifeval_all_followed("all lower, with a comma", ids, [{}, {}])
    assert not nltk_offline.ifeval_all_followed("No Comma But Upper", ids, [{}, {}])


def test_none_kwargs_removed():
    ids = ["keywords:existence"]
    assert nltk_offline.ifeval_all_followed("apples and pears", ids, [{"keywords": ["pears"], "num_words": None}])


def test_data_errors_raise():
    with pytest.raises(KeyError):
        nltk_offline.ifeval_all_followed("x", ["no:such_instruction"], [{}])
