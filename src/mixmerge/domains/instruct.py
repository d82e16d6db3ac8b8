"""Instruction following: prompts with verifiable constraints, checked by the IFEval, IFBench and IFEvalG
instruction checkers (``verifiers.nltk_offline``); the reward is 1 only if every constraint holds."""
from __future__ import annotations

import random

from mixmerge.domains import Domain
from mixmerge.domains._text import final_answer, held_out, think_wrap
from mixmerge.domains._verifier import field
from mixmerge.verifiers.errors import ScoringError, VerifierError

NAME = "instruct"

SUBJECTS = ["cats", "dogs", "birds", "trees", "rivers", "books", "trains", "robots", "gardens", "stars",
            "clouds", "horses", "boats", "cities", "songs", "apples", "bees", "forests", "lamps", "bridges",
            "roads", "shoes", "clocks", "storms", "islands", "kites", "owls", "farms", "tigers", "maps",
            "candles", "rockets", "whales", "gloves", "castles", "lakes", "drums", "bikes", "moths", "tents"]
ADJECTIVES = ["calm", "soft", "bright", "old", "fast", "loud", "green", "small", "warm", "cold", "tall", "kind"]


def topic_sentence(subject: str) -> str:
    rng = random.Random(subject)
    a, b, c = rng.sample(ADJECTIVES, 3)
    return f"{subject.capitalize()} are {a}, {b} and {c}."


KEYWORDS = ["sun", "water", "friend", "light", "stone", "night", "music", "home", "gold", "wind"]
END_PHRASES = ["Is there anything else?", "That is all.", "Thank you."]


def constraints() -> list[tuple[str, str, dict, callable]]:
    """(key, instruction text, IFEval id + kwargs, how to satisfy it) for every constraint variant."""
    out = [
        ("lower", "Your entire response should be in English, and in all lowercase letters.",
         ("change_case:english_lowercase", {}), lambda r: r.lower()),
        ("ps", "At the end of your response, please explicitly add a postscript starting with P.S.",
         ("detectable_content:postscript", {"postscript_marker": "P.S."}), lambda r: f"{r} P.S. I like it."),
        ("nocomma", "Do not use any commas in your response.",
         ("punctuation:no_comma", {}), lambda r: r.replace(",", "")),
        ("quote", "Wrap your entire response with double quotation marks.",
         ("startend:quotation", {}), lambda r: f'"{r}"'),
        ("title", "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>.",
         ("detectable_format:title", {}), lambda r: f"<<{r.split()[0].lower()}>> {r}"),
    ]
    for phrase in END_PHRASES:
        out.append((f"end-{phrase}", f"Finish your response with this exact phrase: {phrase}",
                    ("startend:end_checker", {"end_phrase": phrase}), lambda r, p=phrase: f"{r} {p}"))
    for word in KEYWORDS:
        out.append((f"kw-{word}", f"Include the keyword '{word}' in the response.",
                    ("keywords:existence", {"keywords": [word]}), lambda r, w=word: f"{r} I like the {w}."))
    return out


def generate(n: int, seed: int, split: str) -> list[dict]:
    items = [
        (topic, c)
        for topic in SUBJECTS
        for c in constraints()
        if held_out(f"instruct-{topic}-{c[0]}") == (split == "eval")
    ]
    rng = random.Random(f"{NAME}-{split}-{seed}")
    rng.shuffle(items)
    if n > len(items):
        items = [rng.choice(items) for _ in range(n)] if split == "train" else items
    rows = []
    for i, (topic, (key, text, (inst_id, kwargs), apply)) in enumerate(items[:n]):
        base = topic_sentence(topic)
        rows.append({
            "id": f"instruct-{split}-{topic.replace(' ', '_')}-{key}-{i}",
            "domain": NAME,
            "prompt": [{"role": "user", "content": f"Write one sentence about {topic}. {text}"}],
            "verifier": {"instruction_id_list": [inst_id], "kwargs": [kwargs]},
            "source": f"tiny-synthetic:instruct:{topic}:{key}",
            "solution": think_wrap(key.split("-")[0], apply(base)),
            "flawed_solution": think_wrap(key.split("-")[0], base),
        })
    return rows


def score(completion: str, verifier: dict, *, lenient: bool = False, settings: dict | None = None) -> float:
    from mixmerge.verifiers import nltk_offline

    ids = field(verifier, "instruction_id_list", list)
    kwargs = field(verifier, "kwargs", list)
    if len(ids) != len(kwargs) or not all(isinstance(i, str) for i in ids) or \
            not all(isinstance(k, dict) for k in kwargs):
        raise VerifierError("kwargs", f"expected one object per instruction id ({len(ids)}), got {kwargs!r:.100}")
    settings = settings or {}
    text = final_answer(completion, require_think=settings.get("require_think", True) and not lenient)
    try:
        # the checkers are built first (from the verifier alone), so an unknown id or a bad kwarg raises here
        ok = nltk_offline.all_instructions_followed((text or "").strip(), ids, kwargs)
    except (KeyError, TypeError, ValueError) as exc:
        raise VerifierError("instruction_id_list", f"{type(exc).__name__}: {exc}") from None
    except LookupError as exc:  # NLTK data missing on this machine: a set-up problem, not a zero
        raise ScoringError(str(exc)) from None
    return float(ok and text is not None)


def blend_verifier(rec, counters):
    """Instruction ids and kwargs, checked against the checkers the scorer uses; unknown ids are counted."""
    from mixmerge.data.sources.ifcheck import check_instructions

    ids = rec.get("instruction_id_list", list)
    kwargs = rec.get("kwargs", list)
    return check_instructions(rec, ids, kwargs, counters["unsupported_instruction_ids"])


DOMAIN = Domain(
    name=NAME, generate=generate, score=score, item_timeout=lambda settings: 60.0, lenient_forgives_format=False,
    blend_subsets=("nano_v3_sft_profiled_instruction_following",), blend_verifier=blend_verifier,
)
