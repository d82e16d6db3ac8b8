"""The three scorer switches (reward.mcq_letters, reward.math_grader, reward.test_sampling): for each, the study's
rule and the alternative differ on the cases the issue names, through the domain scorers the reward uses."""
import time

import pytest

from mixmerge.domains import get_domain
from mixmerge.verifiers import mathcheck, sandbox
from mixmerge.verifiers.mcq import extract_letter, score_mcq

SCIENCE = {"correct_letter": "B", "valid_letters": "ABCD"}
SLACK = {"math_timeout_s": 120}  # verdicts that must not time out on a loaded machine


# ------------------------------------------------------------------ reward.mcq_letters
@pytest.mark.parametrize("answer", ["Answer: I think it's B.", "Answer: b", "ANSWER: b", "The answer is b."])
def test_mcq_study_rule_reads_what_strict_case_misses(answer):
    for strict in (True, False):
        assert extract_letter(answer, "ABCD", strict, rule="study") == "B"
        assert extract_letter(answer, "ABCD", strict, rule="strict_case") is None
    science = get_domain("science")
    completion = f"<think>x</think>{answer}"
    assert science.score(completion, SCIENCE, settings={"mcq_letters": "study"}) == 1.0
    assert science.score(completion, SCIENCE, settings={"mcq_letters": "strict_case"}) == 0.0


@pytest.mark.parametrize("text, study, strict_case", [
    ("Answer: Z. The correct one: C is the correct option", "C", None),   # invalid first match falls through
    ("Answer: E\nfinal answer: A", "A", None),                             # to pattern 3
    ("Answer: E. So A", "A", None),                                         # to the fallback
    ("The answer is a bit long; D", "A", "D"),                             # the study's rule reads "a" as A
    ("Answer: C", "C", "C"), ("no letter here", None, None), ("", None, None),
])
def test_mcq_rules_side_by_side(text, study, strict_case):
    assert extract_letter(text, "ABCD", False, rule="study") == study
    assert extract_letter(text, "ABCD", False, rule="strict_case") == strict_case


def test_mcq_hardening_applies_under_both_rules():
    for rule in ("study", "strict_case"):
        assert extract_letter("Answer: A, B, C, D", "ABCD", True, rule=rule) is None
        assert score_mcq("Answer: A, B, C, D", "A", "ABCD", False, rule=rule) == 1.0
    assert extract_letter("Answer: A or b", "ABCD", True, rule="study") is None  # "b" is a letter here
    with pytest.raises(ValueError, match="unknown MCQ letter rule"):
        extract_letter("Answer: A", "ABCD", rule="lenient")


@pytest.mark.parametrize("text", [
    "answer" + " " * 200_000 + "1", "answer" + " \n" * 100_000 + "B", ("Answer: " + "x" * 50 + " ") * 4_000,
    "{" * 200_000, "Answer: ſ", "Answer: \u212a is the correct", "Answer:\u00a0\u2003b", "Ответ: Б. Answer: ı",
])
def test_mcq_adversarial_inputs_are_fast(text):
    """Whitespace runs are squeezed first: raw, 200,000 spaces would make the first pattern backtrack for most of
    an hour (2,000 took 0.3 s; quadratic). Squeezed, each of these takes under 0.3 s on an idle core."""
    for rule in ("study", "strict_case"):
        started = time.monotonic()
        letter = extract_letter(text, "ABCDEFGH", True, rule=rule)
        assert letter is None or letter in "ABCDEFGH"
        assert time.monotonic() - started < 30


def test_mcq_unicode_spaces_and_case():
    assert extract_letter("Answer:\u00a0\u2003b", "ABCD", rule="study") == "B"
    assert extract_letter("Answer: ı", "ABCDEFGHI", rule="study") == "I"   # re.IGNORECASE folds dotless i


# ------------------------------------------------------------------ reward.math_grader
@pytest.mark.parametrize("answer, gold", [
    (r"\frac{2}{4}", r"\frac{1}{2}"), (r"\{2,1\}", r"\{1,2\}"), (r"\frac{6}{2}", "3"), ("2, 1", "1, 2"),
])
def test_math_study_grader_is_stricter_than_math_verify(answer, gold):
    text = f"Answer: \\boxed{{{answer}}}"
    assert mathcheck.score_math(text, gold, timeout_s=120, grader="study") == 0.0
    assert mathcheck.score_math(text, gold, timeout_s=120, grader="math_verify") == 1.0
    math = get_domain("math")
    completion = f"<think>x</think>{text}"
    assert math.score(completion, {"answer": gold}, settings={**SLACK, "math_grader": "study"}) == 0.0
    assert math.score(completion, {"answer": gold}, settings={**SLACK, "math_grader": "math_verify"}) == 1.0


def test_math_graders_agree_on_the_tiny_tasks():
    """The tiny math answers are integers: both graders give the same verdicts (measured on the eval split)."""
    rows = get_domain("math").generate(40, 0, "eval")
    pairs = [(f"\\boxed{{{v}}}", r["verifier"]["answer"]) for r in rows
             for v in (r["verifier"]["answer"], int(r["verifier"]["answer"]) + 1, f"{r['verifier']['answer']}.0")]
    study = mathcheck.score_math_batch(pairs, timeout_s=120, grader="study")
    assert study == mathcheck.score_math_batch(pairs, timeout_s=120, grader="math_verify")
    assert sum(study) == len(rows) * 2  # the right answer and its n.0 form


def test_unknown_math_grader_is_refused():
    with pytest.raises(ValueError, match="unknown math grader"):
        mathcheck.score_math(r"\boxed{1}", "1", grader="sympy")


# ------------------------------------------------------------------ reward.test_sampling
TESTS = [{"call": "f", "args": [i], "expected": i + 1} for i in range(50)]
FAILS_ON_7 = "def f(x):\n    return x + 1 if x != 7 else 0"


def _responses(n: int) -> list[str]:
    return [f"<think>variant {i}</think>```python\n{FAILS_ON_7}\n# {i}\n```" for i in range(n)]


def test_fresh_draws_a_new_sample_per_response_and_fixed_one_per_item():
    responses = _responses(40)
    for sampling, distinct in (("fixed", 1), ("fresh", 40)):
        subsets = {tuple(t["args"][0] for t in sandbox._select(TESTS, 20, sandbox.sample_seed(sampling, 0, r)))
                   for r in responses}
        assert len(subsets) == distinct
    assert sandbox.sample_seed("fresh", 0, "a") == sandbox.sample_seed("fresh", 0, "a")   # reproducible
    assert sandbox.sample_seed("fresh", 0, "a") != sandbox.sample_seed("fresh", 1, "a")   # seeded
    with pytest.raises(ValueError, match="unknown test sampling"):
        sandbox.sample_seed("every", 0, "a")


def test_fresh_and_fixed_rewards_differ_for_a_program_failing_one_test():
    """Sampling 20 of 50 tests, a program wrong on one input passes 60 % of samples: under ``fresh`` the rewards
    of different responses vary, under ``fixed`` every response to the item gets the same reward."""
    code = get_domain("code")
    base = {"max_tests": 20, "test_seed": 0, "sandbox_backend": "local"}
    responses = _responses(12)
    fixed = [code.score(r, {"tests": TESTS}, settings={**base, "test_sampling": "fixed"}) for r in responses]
    fresh = [code.score(r, {"tests": TESTS}, settings={**base, "test_sampling": "fresh"}) for r in responses]
    assert len(set(fixed)) == 1
    assert set(fresh) == {0.0, 1.0}
    assert fresh == [code.score(r, {"tests": TESTS}, settings={**base, "test_sampling": "fresh"}) for r in responses]
