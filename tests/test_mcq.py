import pytest

from mixmerge.verifiers.mcq import extract_letter, score_mcq, shuffle_options


@pytest.mark.parametrize("text, expected", [
    ("Let me think. Answer: C", "C"),
    ("The answer is B.", "B"),
    ("So B is the correct one", "B"),
    ("final answer: D", "D"),
    ("I pick A here.\nNo wait: D", "D"),  # fallback: last standalone valid letter
    ("nothing here", None),
    ("Answer: Z", None),  # not a valid letter
    ("", None),
])
def test_study_rule(text, expected):
    assert extract_letter(text, "ABCD") == expected


@pytest.mark.parametrize("text", [
    "Answer: A, B, C, D",
    "Answer: A or C",
    "The answer is A. Actually the answer is C.",
    "A B C D",
    "Answer: (A)/(B)",
])
def test_listing_letters_is_rejected_in_strict_mode(text):
    assert extract_letter(text, "ABCD") is None
    assert score_mcq(text, "A", "ABCD") == 0.0


def test_study_mode_keeps_first_match():
    assert extract_letter("Answer: A, B, C, D", "ABCD", strict_single_letter=False) == "A"
    assert extract_letter("A B C D", "ABCD", strict_single_letter=False) == "D"
    assert extract_letter("I pick A here, no wait, D", "ABCD", strict_single_letter=False) == "D"


def test_consistent_repeats_are_fine():
    assert extract_letter("The answer is C. Final answer: C", "ABCD") == "C"


def test_shuffle_is_seeded_per_item():
    options = ["right", "w1", "w2", "w3"]
    shuffled, letter = shuffle_options(options, 0, "gpqa-17")
    assert sorted(shuffled) == sorted(options)
    assert shuffled["ABCD".index(letter)] == "right"
    assert shuffle_options(options, 0, "gpqa-17") == (shuffled, letter)
    letters = {shuffle_options(options, 0, f"gpqa-{i}")[1] for i in range(40)}
    assert letters == set("ABCD")
    with pytest.raises(ValueError):
        shuffle_options(options, 4, "x")
