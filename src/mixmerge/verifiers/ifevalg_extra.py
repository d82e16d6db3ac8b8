"""IFEvalG instructions that neither lm-eval's IFEval checkers nor IFBench's (if-verifiable) provide, written
here from each instruction's text and kwargs (AllenAI open-instruct ``open_instruct/IFEvalG``, the checker set
the study's IF reward uses; its registry holds 54 ids, 25 of them IFEval's).

Where IFEvalG's own check contradicts the instruction it states, the check here follows the instruction; each
such place says so (``Differs:``). Everything else keeps IFEvalG's reading, quirks included (keyword counts
match inside longer words, as IFEval's do).
"""
from __future__ import annotations

import re

from mixmerge.verifiers.ifevalg_rules import (Rule, bare, checker_factory, compare, count_phrase, int_arg,
                                              paragraphs, relation_arg, sentences, text_arg, word_arg, words)

_STARS = r"\s?\*\*\*\s?"


def repeat_phrase(text: str, phrase: str, small_n: int) -> bool:
    """Every stretch of as many words as the phrase that starts and ends with the phrase's first and last words
    is a repetition; there must be ``small_n`` of them, each with exactly one inner word changed.
    Differs: words compare ignoring case and the punctuation around them, and IFEvalG's copy that the study
    vendored accepts when only the last repetition has a changed word (open-instruct fixed that later)."""
    ref = [bare(t) for t in phrase.split()]
    tokens = [bare(t) for t in text.split()]
    found, i = 0, 0
    while i + len(ref) <= len(tokens):
        window = tokens[i:i + len(ref)]
        if window[0] == ref[0] and window[-1] == ref[-1]:
            if sum(a != b for a, b in zip(window, ref)) != 1:
                return False
            found, i = found + 1, i + len(ref)
        else:
            i += 1
    return found == small_n


def _phrase_has_a_middle(args: dict) -> None:
    if len(args["phrase"].split()) < 3:
        raise ValueError(f"phrase {args['phrase']!r} has no inner word to change")


def copy_verbatim(text: str, prompt_to_repeat: str) -> bool:
    return text.strip().lower() == prompt_to_repeat.strip().lower()


def copy_span(text: str, prompt_to_repeat: str, n_start: int, n_end: int) -> bool:
    """Differs: the instruction says the span includes character ``n_end``; IFEvalG's check excludes it.
    Either reading passes here."""
    return any(copy_verbatim(text, prompt_to_repeat[n_start:end]) for end in (n_end, n_end + 1))


def _span_not_empty(args: dict) -> None:
    if args["n_end"] <= args["n_start"] or not args["prompt_to_repeat"][args["n_start"]:args["n_end"]].strip():
        raise ValueError(f"characters {args['n_start']}..{args['n_end']} of the prompt hold no text")


def copy_many(text: str, prompt_to_repeat: str, N: int) -> bool:
    parts = text.split("******")
    return len(parts) == N and all(copy_verbatim(p, prompt_to_repeat) for p in parts)


def sentence_hyphens(text: str) -> bool:
    """The parts between hyphens, with no space around them, are exactly the response's sentences.
    Differs: IFEvalG compares only as many parts as the shorter list holds."""
    parts = text.split("-")
    return all(p and p == p.strip() for p in parts) and sentences(" ".join(parts)) == parts


def no_adjacent_consecutive(text: str) -> bool:
    """Differs: a word's first letter is taken after any opening punctuation, and only letters count as
    "letters of the alphabet" (IFEvalG also fails '1 2')."""
    firsts = [w[0] for w in (bare(t) for t in text.split()) if w]
    return not any(a.isalpha() and b.isalpha() and ord(b) - ord(a) == 1 for a, b in zip(firsts, firsts[1:]))


def square_brackets(text: str) -> bool:
    return all(t.startswith("[") and t.endswith("]") for t in text.split())


def exclude_word(text: str, keyword: str) -> bool:
    """Differs: the word is found in any case and next to punctuation; IFEvalG only looks for it between two
    spaces, so 'Paris,' or a sentence-initial use passes there."""
    return re.search(rf"(?<!\w){re.escape(bare(keyword))}(?!\w)", text, flags=re.IGNORECASE) is None


def _keyword_is_a_word(args: dict) -> None:
    if not bare(args["keyword"]):
        raise ValueError(f"keyword {args['keyword']!r} holds no word")


def paragraph_count(divider: str, n: int):
    def check(text: str) -> bool:
        parts = paragraphs(text, divider)
        return parts is not None and len(parts) == n
    return check


def first_word_each_sentence(text: str, first_word: str) -> bool:
    found = sentences(text)
    return bool(found) and all(s.split() and s.split()[0].lower() == first_word.lower() for s in found)


def first_word_answer(text: str, first_word: str) -> bool:
    tokens = text.split()
    return bool(tokens) and tokens[0].lower() == first_word.lower()


def _without_punct(token: str) -> str:
    return "".join(c for c in token if c.isalnum() or c == "_" or c.isspace()).lower()


def last_word_each_sentence(text: str, last_word: str) -> bool:
    found = sentences(text)
    return bool(found) and all(s.split() and _without_punct(s.split()[-1]) == last_word.lower() for s in found)


def last_word_answer(text: str, last_word: str) -> bool:
    tokens = text.split()
    return bool(tokens) and _without_punct(tokens[-1]) == last_word.lower()


def bigram_wrapping(text: str) -> bool:
    tokens = text.split()
    return all(tokens[i].startswith("<<") and tokens[i + 1].endswith(">>") for i in range(0, len(tokens) - 1, 2))


def lowercase_counting(text: str, N: int) -> bool:
    """IFEvalG's reading: the response holds at most N all-lowercase words in total."""
    return len(re.findall(r"\b[a-z]+\b", text)) <= N


def letter_counting(text: str, N: int, relation: str) -> bool:
    return compare(sum(c.isascii() and c.isalpha() for c in text), relation, N)


def letter_frequency(text: str, letter: str, let_frequency: int, let_relation: str) -> bool:
    return compare(text.lower().count(letter), let_relation, let_frequency)


def _below_zero(count: str, relation: str):
    def validate(args: dict) -> None:
        if args[relation] == "less than" and args[count] == 0:
            raise ValueError(f"'less than 0' ({count}) cannot be met")
    return validate


def _one_ascii_letter(name: str, value) -> str:
    value = text_arg(name, value).lower()
    if len(value) != 1 or not ("a" <= value <= "z"):
        raise ValueError(f"kwarg {name!r} must be one letter a-z, got {value!r:.80}")
    return value


def counting_composition(text: str, n_sent: int, n_words: int) -> bool:
    """Three paragraphs, each of n_sent sentences of n_words words.
    Differs: IFEvalG counts punctuation marks as words and accepts only '***' although the instruction shows
    '* * *' as the divider; here words are words and either divider separates paragraphs."""
    parts = paragraphs(text, r"\s?(?:\*\*\*|\* \* \*)\s?")
    if parts is None or len(parts) != 3:
        return False
    for part in parts:
        found = sentences(part)
        if len(found) != n_sent or any(len(words(s)) != n_words for s in found):
            return False
    return True


def count_unique(text: str) -> bool:
    """Differs: IFEvalG's tokens include punctuation (two full stops fail) and are case-sensitive."""
    found = [w.lower() for w in words(text)]
    return len(found) == len(set(found))


def palindrome(text: str) -> bool:
    """Differs: IFEvalG counts any one-character token ('a', 'I') as the palindrome; here it is a word of at
    least three letters or digits that reads the same backwards, ignoring case and punctuation."""
    return any(len(w) >= 3 and w == w[::-1] for w in (_without_punct(t) for t in text.split()))


def keyword_position(text: str, keyword: str, n: int, m: int) -> bool:
    """Differs: IFEvalG counts punctuation marks as words and compares case-sensitively."""
    found = sentences(text)
    if len(found) < n:
        return False
    in_sentence = words(found[n - 1])
    return len(in_sentence) >= m and in_sentence[m - 1].lower() == keyword.lower()


def start_end(text: str) -> bool:
    """Same first and last word, and nothing (not even punctuation) before the first or after the last."""
    stripped = text.strip()
    found = words(stripped)
    return len(found) >= 2 and stripped.startswith(found[0]) and stripped.endswith(found[-1]) and \
        found[0].lower() == found[-1].lower()


_N1, _N0 = int_arg(1), int_arg(0)
RULES = {
    "copy:repeat_phrase": Rule(
        "Repeat the phrase {phrase} exactly {small_n} times, transforming it slightly each time by replacing "
        "only one word in the center of the phrase.", repeat_phrase, {"phrase": text_arg, "small_n": _N1},
        validate=_phrase_has_a_middle),
    "copy:copy": Rule("Copy this instruction verbatim: {prompt_to_repeat}", copy_verbatim,
                      {"prompt_to_repeat": text_arg}),
    "new:copy_span_idx": Rule(
        "Copy the span between (and including) character indices {n_start} and {n_end} of: {prompt_to_repeat}",
        copy_span, {"prompt_to_repeat": text_arg, "n_start": _N0, "n_end": _N1}, validate=_span_not_empty),
    "detectable_format:sentence_hyphens": Rule(
        "All sentences must be connected using hyphens, with no spaces between them.", sentence_hyphens),
    "keywords:no_adjacent_consecutive": Rule(
        "No two adjacent words can start with consecutive letters of the alphabet.", no_adjacent_consecutive),
    "detectable_format:square_brackets": Rule(
        "Enclose every word in your response within square brackets.", square_brackets),
    "keywords:word_once": Rule("Include keyword {keyword} in your response (exactly once).",
                               lambda text, keyword: count_phrase(keyword, text) == 1, {"keyword": word_arg}),
    "keywords:word_count_different_numbers": Rule(
        "In your response, the word {keyword} should appear {relation} {frequency} times.",
        lambda text, keyword, frequency, relation: compare(count_phrase(keyword, text), relation, frequency),
        {"keyword": word_arg, "frequency": _N0, "relation": relation_arg},
        validate=_below_zero("frequency", "relation")),
    "keywords:exclude_word_harder": Rule("Do not include keyword {keyword} in the response.", exclude_word,
                                         {"keyword": word_arg}, ignored=("instruction",),
                                         validate=_keyword_is_a_word),
    "paragraphs:paragraphs": Rule(
        "There should be 2 paragraphs. Paragraphs are separated with the markdown divider: ***",
        paragraph_count(_STARS, 2)),
    "paragraphs:paragraphs2": Rule(
        "There should be 2 paragraphs. Paragraphs and only paragraphs are separated with each other by two "
        "line breaks.", paragraph_count(r"\n\n", 2)),
    "first_word:first_word_sent": Rule("The first word of each sentence should be the word {first_word}.",
                                       first_word_each_sentence, {"first_word": word_arg}),
    "first_word:first_word_answer": Rule("The first word of your response should be the word {first_word}.",
                                         first_word_answer, {"first_word": word_arg}),
    "last_word:last_word_sent": Rule(
        "The last word of each sentence, before punctuation, should be the word {last_word}.",
        last_word_each_sentence, {"last_word": word_arg}),
    "last_word:last_word_answer": Rule("The last word of your response should be the word {last_word}.",
                                       last_word_answer, {"last_word": word_arg}),
    "detectable_format:bigram_wrapping": Rule(
        "Wrap every word bigram in double angular brackets, such as <<I am>> <<at home>>.", bigram_wrapping),
    "copy:copying_simple": Rule("Repeat the request without change: {prompt_to_repeat}", copy_verbatim,
                                {"prompt_to_repeat": text_arg}),
    "copy:copying_multiple": Rule(
        "Repeat the request without change {N} times, separated by 6 asterisk symbols: {prompt_to_repeat}",
        copy_many, {"prompt_to_repeat": text_arg, "N": _N1}),
    "punctuation:punctuation_dot": Rule("In your entire response, refrain from the use of . (i.e. dots).",
                                        lambda text: "." not in text),
    "punctuation:punctuation_exclamation": Rule(
        "In your entire response, refrain from the use of ! (i.e. exclamation marks).", lambda text: "!" not in text),
    "count:lowercase_counting": Rule("In your response, all lowercase words should appear at most {N} times.",
                                     lowercase_counting, {"N": _N0}),
    "letters:letter_counting": Rule("Answer with {relation} {N} letters.", letter_counting,
                                    {"N": _N0, "relation": relation_arg}, validate=_below_zero("N", "relation")),
    "letters:letter_counting2": Rule(
        "In your response, the letter {letter} should appear {let_relation} {let_frequency} times.",
        letter_frequency, {"letter": _one_ascii_letter, "let_frequency": _N0, "let_relation": relation_arg},
        validate=_below_zero("let_frequency", "let_relation")),
    "count:counting_composition": Rule(
        "Write 3 paragraphs, delimited by the markdown divider: * * *, with exactly {n_sent} sentences each, "
        "with exactly {n_words} words in each sentence.", counting_composition, {"n_sent": _N1, "n_words": _N1}),
    "count:count_unique": Rule("Only use unique words in your response, no word should be repeated!",
                               count_unique),
    "count:count_increment_word": Rule(
        "Include keyword {keyword1} once in your response, keyword {keyword2} twice in your response.",
        lambda text, keyword1, keyword2: count_phrase(keyword1, text) == 1 and count_phrase(keyword2, text) == 2,
        {"keyword1": word_arg, "keyword2": word_arg}),
    "keywords:palindrome": Rule("Include a palindrome in your response.", palindrome),
    "keywords:keyword_specific_position": Rule(
        "Include keyword {keyword} in the {n}-th sentence, as the {m}-th word of that sentence.",
        keyword_position, {"keyword": word_arg, "n": _N1, "m": _N1}),
    "keywords:start_end": Rule(
        "Start and end your response with the same word (do not write anything after the last word, not even "
        "punctuation).", start_end),
}
INSTRUCTION_DICT = {instruction_id: checker_factory(rule) for instruction_id, rule in RULES.items()}
