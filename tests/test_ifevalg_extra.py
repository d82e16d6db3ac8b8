"""The IFEvalG checkers written here: every id of IFEvalG's registry is checkable, each new id passes responses
that follow it and fails ones that violate it, kwargs errors are data errors, and odd output (empty, huge,
unicode) gets a plain verdict quickly."""
import pytest

from ifevalg_cases import CASES, PROMPT
from mixmerge.domains import get_domain
from mixmerge.verifiers import nltk_offline

# open-instruct open_instruct/IFEvalG/instructions_registry.py INSTRUCTION_DICT (54 ids; the copy M2RL vendors
# into slime/rewards/IFEvalG has the same ids).
IFEVALG_IDS = """
keywords:existence keywords:frequency keywords:forbidden_words keywords:letter_frequency
language:response_language length_constraints:number_sentences length_constraints:number_paragraphs
length_constraints:number_words length_constraints:nth_paragraph_first_word detectable_content:number_placeholders
detectable_content:postscript detectable_format:number_bullet_lists detectable_format:constrained_response
detectable_format:number_highlighted_sections detectable_format:multiple_sections detectable_format:json_format
detectable_format:title combination:two_responses combination:repeat_prompt startend:end_checker
change_case:capital_word_frequency change_case:english_capital change_case:english_lowercase punctuation:no_comma
startend:quotation copy:repeat_phrase copy:copy new:copy_span_idx detectable_format:sentence_hyphens
keywords:no_adjacent_consecutive detectable_format:square_brackets keywords:word_once
keywords:word_count_different_numbers keywords:exclude_word_harder paragraphs:paragraphs paragraphs:paragraphs2
first_word:first_word_sent first_word:first_word_answer last_word:last_word_sent last_word:last_word_answer
detectable_format:bigram_wrapping copy:copying_simple copy:copying_multiple punctuation:punctuation_dot
punctuation:punctuation_exclamation count:lowercase_counting letters:letter_counting letters:letter_counting2
count:counting_composition count:count_unique count:count_increment_word keywords:palindrome
keywords:keyword_specific_position keywords:start_end
""".split()


def followed(text, instruction_id, kwargs):
    return nltk_offline.all_instructions_followed(text, [instruction_id], [kwargs])


def checker(instruction_id, kwargs):
    made = nltk_offline.instruction_registry()[instruction_id](instruction_id)
    made.build_description(**kwargs)
    return made


def test_every_ifevalg_id_is_checkable_and_the_new_ones_are_tested():
    from if_verifiable.ifbench.instructions_registry import INSTRUCTION_DICT as ifbench
    from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT as ifeval
    from mixmerge.verifiers.ifevalg_extra import INSTRUCTION_DICT as extra

    assert len(IFEVALG_IDS) == len(set(IFEVALG_IDS)) == 54
    assert [i for i in IFEVALG_IDS if not nltk_offline.is_supported(i)] == []
    assert set(extra) == set(IFEVALG_IDS) - set(ifeval) - set(ifbench)
    assert len(extra) == 29 and set(CASES) == set(extra)


@pytest.mark.parametrize("instruction_id", sorted(CASES))
def test_follows_and_violates(instruction_id):
    kwargs, good, bad = CASES[instruction_id]
    assert good and bad
    for text in good:
        assert followed(text, instruction_id, kwargs), text
    for text in bad:
        assert not followed(text, instruction_id, kwargs), text


@pytest.mark.parametrize("instruction_id", sorted(CASES))
def test_empty_huge_and_unicode_output(instruction_id, timer):
    kwargs, good, _ = CASES[instruction_id]
    made = checker(instruction_id, kwargs)
    hostile = ["", " ", "\n" * 1000, "\U0001F600" * 20000, "a\u0301" * 20000, "\u0130stanbul \u0131 " * 5000,
               "\u05e9\u05dc\u05d5\u05dd \u200f\u200b" * 5000, "(" * 20000 + ")" * 20000, "<<" * 30000,
               "*" * 50000, "-." * 40000, "word " * 39000, good[0] * (190_000 // len(good[0]))]
    with timer:
        for text in hostile:
            assert made.check_following(text) in (True, False)  # raises nothing
    assert timer.elapsed < 5
    assert not followed("", instruction_id, kwargs) and not followed(" \n\t", instruction_id, kwargs)
    too_long = good[0] + " " * nltk_offline.MAX_RESPONSE_CHARS
    assert not followed(too_long, instruction_id, kwargs)


def test_unicode_words():
    assert followed("\u00c9t\u00e9 chaud \u00e9t\u00e9", "keywords:start_end", {})
    assert not followed("\u00c9t\u00e9 chaud \u00e9t\u00e9\u3002", "keywords:start_end", {})
    assert followed("\u4e0a\u6d77\u81ea\u6765\u6c34\u6765\u81ea\u6d77\u4e0a", "keywords:palindrome", {})
    assert not followed("\u00c9t\u00e9 \u00e9t\u00e9", "count:count_unique", {})
    assert followed("\u03b1\u03bb\u03c6\u03b1 \u03b3\u03ac\u03bc\u03bc\u03b1", "keywords:no_adjacent_consecutive", {})
    assert not followed("\u03b1\u03bb\u03c6\u03b1 \u03b2\u03ae\u03c4\u03b1", "keywords:no_adjacent_consecutive", {})
    assert followed("\u0130yi g\u00fcnler", "keywords:no_adjacent_consecutive", {})  # 'İ' lower-cases to two chars
    assert not followed("Caf\u00e9 ouvert", "keywords:exclude_word_harder", {"keyword": "caf\u00e9"})
    assert followed("Cafe\u0301s ouverts", "keywords:exclude_word_harder", {"keyword": "caf"})


def test_copy_span_accepts_either_end_reading():
    kwargs = {"prompt_to_repeat": PROMPT, "n_start": 8, "n_end": 18}  # "short stor" / "short story"
    assert followed("short stor", "new:copy_span_idx", kwargs)
    assert followed("short story", "new:copy_span_idx", kwargs)
    assert not followed("short sto", "new:copy_span_idx", kwargs)


@pytest.mark.parametrize("instruction_id,kwargs,error", [
    ("copy:repeat_phrase", {"phrase": "Time flies"}, "missing kwargs \\['small_n'\\]"),
    ("copy:repeat_phrase", {"phrase": "Time flies", "small_n": 2}, "no inner word"),
    ("copy:repeat_phrase", {"phrase": "Time flies when having fun", "small_n": 2.5}, "must be an integer"),
    ("copy:copy", {}, "missing kwargs \\['prompt_to_repeat'\\]"),
    ("copy:copy", {"prompt_to_repeat": "  "}, "non-empty string"),
    ("new:copy_span_idx", {"prompt_to_repeat": "abc", "n_start": 5, "n_end": 9}, "hold no text"),
    ("new:copy_span_idx", {"prompt_to_repeat": "abc", "n_start": -1, "n_end": 2}, "at least 0"),
    ("keywords:word_count_different_numbers", {"keyword": "a", "frequency": 2, "relation": "exactly"},
     "must be one of"),
    ("letters:letter_counting2", {"letter": "ab", "let_frequency": 2, "let_relation": "at least"}, "one letter"),
    ("letters:letter_counting2", {"letter": "\u00e9", "let_frequency": 2, "let_relation": "at least"}, "one letter"),
    ("count:lowercase_counting", {"N": True}, "must be an integer"),
    ("letters:letter_counting", {"N": 0, "relation": "less than"}, "cannot be met"),
    ("letters:letter_counting2", {"letter": "e", "let_frequency": 0.0, "let_relation": "less than"}, "cannot be met"),
    ("keywords:exclude_word_harder", {"keyword": "!!"}, "holds no word"),
    ("keywords:word_once", {"keyword": ["a", "b"]}, "non-empty string"),
])
def test_kwargs_no_response_can_follow_are_data_errors(instruction_id, kwargs, error):
    with pytest.raises(ValueError, match=error):
        followed("anything", instruction_id, kwargs)


def test_unknown_kwargs_are_data_errors():
    with pytest.raises(TypeError, match="unexpected kwargs \\['num_words'\\]"):
        followed("x", "keywords:start_end", {"num_words": 3})
    assert followed("Rome is old", "keywords:exclude_word_harder", {"keyword": "paris", "instruction": "Say."})


def test_instruct_scorer_uses_them():
    score = get_domain("instruct").score
    verifier = {"instruction_id_list": ["keywords:start_end", "punctuation:punctuation_dot"], "kwargs": [{}, {}]}
    assert score("<think>x</think>hello big world hello", verifier) == 1.0
    assert score("<think>x</think>hello big world hello.", verifier) == 0.0
    assert score("<think>x</think>", verifier) == 0.0
