"""IFEval, IFBench and IFEvalG strict checking fully offline.

lm-eval's IFEval utilities (and the IFBench checkers) call ``nltk.download("punkt_tab")`` at import when the
data is missing (which fails offline and leaves sentence counting broken). No package ships ``punkt_tab``, so
the project writes the four files of an untrained Punkt model itself, with an abbreviation list, and puts the
directory on NLTK's path before the checker modules are imported; with the data present that import downloads
nothing.
"""
from __future__ import annotations

import contextlib
import logging
import os

log = logging.getLogger(__name__)
MAX_RESPONSE_CHARS = 200_000  # longer responses fail without being checked

# Lower-case, without the final period, as Punkt stores them.
_ABBREVIATIONS = """
mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e a.m p.m approx dept est fig inc ltd co corp jan feb mar apr
jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun no vol vols pp ed eds gen gov lt col capt sgt
rev hon u.s u.k u.n ph.d m.d b.a m.a b.sc m.sc al cf ca viz
""".split()
_PUNKT_FILES = {
    "abbrev_types.txt": "\n".join(_ABBREVIATIONS) + "\n",
    "collocations.tab": "",
    "sent_starters.txt": "",
    "ortho_context.tab": "",
}


def default_data_dir() -> str:
    return os.environ.get("MIXMERGE_NLTK_DATA") or os.path.join(
        os.path.expanduser("~"), ".cache", "mixmerge", "nltk_data")


def ensure_punkt(data_dir: str | None = None) -> str:
    """Create the Punkt files (if missing) and put ``data_dir`` first on NLTK's search path; returns it."""
    data_dir = os.path.abspath(data_dir or default_data_dir())
    english = os.path.join(data_dir, "tokenizers", "punkt_tab", "english")
    os.makedirs(english, exist_ok=True)
    for name, content in _PUNKT_FILES.items():
        path = os.path.join(english, name)
        if not os.path.exists(path):
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(content)
            os.replace(tmp, path)  # atomic, so concurrent workers never read a half-written file
    paths = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p and p != data_dir]
    os.environ["NLTK_DATA"] = os.pathsep.join([data_dir, *paths])
    import nltk
    if data_dir not in nltk.data.path:
        nltk.data.path.insert(0, data_dir)
    return data_dir


# IFBench checkers that need NLTK data nobody can write by hand (a word list, a trained tagger). They are
# supported only where that data is installed (``python -m nltk.downloader -d DIR stopwords
# averaged_perceptron_tagger_eng`` with DIR on ``NLTK_DATA``); elsewhere their items are dropped and counted.
NLTK_RESOURCES = {
    "ratio:stop_words": "corpora/stopwords",
    "words:start_verb": "taggers/averaged_perceptron_tagger_eng",
}
_registry = None


@contextlib.contextmanager
def _no_downloads():
    """Both checker libraries call ``nltk.download`` at import for missing data: on an offline node that waits on
    the network, and what it would fetch is either written here (punkt_tab) or checked per id (NLTK_RESOURCES)."""
    import nltk
    download = nltk.download
    nltk.download = lambda *args, **kwargs: False
    try:
        yield
    finally:
        nltk.download = download


def instruction_registry() -> dict:
    """Instruction id -> checker class: lm-eval's IFEval registry, IFBench's (``if-verifiable``, a port of
    ``allenai/IFBench``'s checkers) and the IFEvalG ids neither has (``ifevalg_extra``, written here), imported
    with the offline data in place. No id is in two of the sets."""
    global _registry
    if _registry is None:
        ensure_punkt()
        import nltk
        nltk.data.find("tokenizers/punkt_tab/english/")  # raises LookupError rather than downloading
        with _no_downloads():
            from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT as ifeval
            from if_verifiable.ifbench.instructions_registry import INSTRUCTION_DICT as ifbench
            from mixmerge.verifiers.ifevalg_extra import INSTRUCTION_DICT as ifevalg
        sets = {"IFEval": ifeval, "IFBench": ifbench, "IFEvalG": ifevalg}
        for a, b in [("IFEval", "IFBench"), ("IFEval", "IFEvalG"), ("IFBench", "IFEvalG")]:
            shared = set(sets[a]) & set(sets[b])
            if shared:
                raise RuntimeError(f"{a} and {b} checkers share instruction ids {sorted(shared)}")
        import langdetect
        langdetect.DetectorFactory.seed = 0  # its language guesses are random otherwise
        _registry = {**ifeval, **ifbench, **ifevalg}
    return _registry


def missing_nltk_data(instruction_id: str) -> str | None:
    """The NLTK resource this checker needs and this machine lacks, else None."""
    resource = NLTK_RESOURCES.get(instruction_id)
    if resource is None:
        return None
    import nltk
    try:
        nltk.data.find(resource)
    except LookupError:
        return resource
    return None


def is_supported(instruction_id: str) -> bool:
    return instruction_id in instruction_registry() and missing_nltk_data(instruction_id) is None


def _checker(instruction_id: str, kwargs: dict | None, prompt: str):
    """A configured checker; errors here come from the data (ids, kwargs), never from model output."""
    registry = instruction_registry()
    if instruction_id not in registry:
        raise KeyError(f"unknown instruction id {instruction_id!r} (not in IFEval, IFBench or IFEvalG)")
    missing = missing_nltk_data(instruction_id)
    if missing:  # without it the checker would fail every response
        raise LookupError(f"instruction {instruction_id!r} needs the NLTK data {missing!r}; install it into a "
                          "directory on NLTK_DATA")
    checker = registry[instruction_id](instruction_id)
    checker.build_description(**{k: v for k, v in (kwargs or {}).items() if v is not None})
    args = checker.get_instruction_args()
    if args and "prompt" in args:
        checker.build_description(prompt=prompt)
    return checker


def all_instructions_followed(response: str, instruction_ids: list[str], kwargs: list[dict],
                              prompt: str = "") -> bool:
    """Prompt-level strict IFEval/IFBench/IFEvalG: True iff every instruction is followed (an empty response fails).

    Never raises on model output; unknown ids or kwargs that do not fit (data problems) raise."""
    if len(kwargs) != len(instruction_ids):
        raise TypeError("instruction_ids and kwargs differ in length")
    checkers = [_checker(i, kw, prompt) for i, kw in zip(instruction_ids, kwargs)]
    if not isinstance(response, str) or not response.strip() or len(response) > MAX_RESPONSE_CHARS:
        return False
    for instruction_id, checker in zip(instruction_ids, checkers):
        try:
            if not checker.check_following(response):
                return False
        except Exception as exc:  # a checker choking on odd output means the instruction was not followed
            log.debug("instruction checker %s raised on the response: %r", instruction_id, exc)
            return False
    return True
