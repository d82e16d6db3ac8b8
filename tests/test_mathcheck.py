import pytest

from mixmerge.verifiers import mathcheck
from mixmerge.verifiers.mathcheck import boxed_answer, check_gold, is_equivalent, score_math


@pytest.mark.parametrize("text, expected", [
    (r"so \boxed{42}", "42"),
    (r"\boxed{1} then \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
    (r"\boxed{\{1,2\}}", r"\{1,2\}"),
    (r"Answer: \boxed{3}", "3"),
    (r"\boxed{5} Answer: 7", None),  # after the last "Answer:" there is no box
    (r"Answer: \boxed{5} ... Answer: \boxed{6}", "6"),
    (r"\fbox{3}", None),
    (r"\boxed{3", None),
    ("no box 42", None),
    ("", None),
])
def test_boxed_answer(text, expected):
    assert boxed_answer(text) == expected


def test_is_equivalent_gold_first():
    assert is_equivalent("0.5", r"\frac{1}{2}")
    assert is_equivalent(r"\frac{2}{4}", r"\boxed{\frac{1}{2}}")
    assert not is_equivalent("3", "4")
    assert not is_equivalent("", "4")


def test_score_math():
    assert score_math(r"The answer is \boxed{12}.", "12") == 1.0
    assert score_math(r"The answer is \boxed{13}.", "12") == 0.0
    assert score_math("The answer is 12.", "12") == 0.0  # a box is required


def test_batch():
    pairs = [(rf"\boxed{{{i}}}", str(i if i % 2 else i + 1)) for i in range(10)]
    assert mathcheck.score_math_batch(pairs) == [0.0, 1.0] * 5


def test_check_gold():
    assert check_gold(r"\frac{1}{2}") and check_gold("12") and check_gold(r"\boxed{x^2}")
    assert not check_gold("") and not check_gold(r"\boxed{}") and not check_gold("   ")
