"""The study's math grader (reward.math_grader: study) against its rules, and where math-verify departs from it."""
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from mixmerge.verifiers import mathcheck
from mixmerge.verifiers.mathstudy import grade, mathd_normalize
from mixmerge.verifiers.mathstudy_sympy import latex_to_text, normalize, split_tuple

CORPUS = Path(__file__).parent / "fixtures" / "math_grader_pairs.jsonl"
SLACK_S = 120  # a bound for verdicts that must not time out on a loaded machine (the 10 s rule is tested apart)
# Pairs the study scores 0 and math-verify 1, by corpus family (benchmarks/math_grader_pairs.py --compare).
DEPARTURES = {
    "unreduced_frac": 10,    # \frac{2}{4} vs \frac{1}{2}
    "unreduced_slash": 5,    # 3/6 vs \frac{1}{2}
    "frac_vs_int": 5,        # \frac{6}{2} vs 3
    "power_vs_int": 3,       # 2^3 vs 8
    "exponent_guard": 3,     # 2^{10} vs 1024
    "set_reordered": 5,      # \{2,1\} vs \{1,2\}
    "list_reordered": 5,     # 2, 1 vs 1, 2
    "long_prefix": 5,        # abc = 3 vs 3
}


@pytest.fixture(scope="module")
def scored():
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    pairs = [(f"\\boxed{{{r['given']}}}", r["gold"]) for r in rows]
    study = mathcheck.score_math_batch(pairs, timeout_s=SLACK_S, grader="study")
    lenient = mathcheck.score_math_batch(pairs, timeout_s=SLACK_S, grader="math_verify")
    return rows, study, lenient


def test_corpus_is_large_and_has_both_verdicts(scored):
    rows, _, _ = scored
    assert len(rows) >= 200
    assert Counter(r["study"] for r in rows)[0] >= 50 and Counter(r["study"] for r in rows)[1] >= 100


def test_study_grader_follows_the_rules_on_every_pair(scored):
    rows, study, _ = scored
    wrong = [(r["family"], r["given"], r["gold"], r["study"], s) for r, s in zip(rows, study) if s != r["study"]]
    assert not wrong, wrong


def test_departures_from_math_verify(scored):
    rows, study, lenient = scored
    departures = Counter((r["family"], int(s), int(m)) for r, s, m in zip(rows, study, lenient) if s != m)
    print(f"\n{sum(departures.values())} of {len(rows)} pairs: study != math_verify")
    for (family, s, m), n in sorted(departures.items()):
        print(f"  {family:16s} study {s}  math_verify {m}  x{n}")
    assert departures == Counter({(family, 0, 1): n for family, n in DEPARTURES.items()})


@pytest.mark.parametrize("raw, normal", [
    (r"\text{5}", "5"), (r"\dfrac{1}{2}", r"\frac{1}{2}"), (r"\left(1,2\right)", "(1,2)"), (r"90^\circ", "90"),
    (r"\$5", "5"), (r"5\%", "5"), (r"3 \text{ cm}", "3"), ("k = 3", "3"), ("abc = 3", "abc=3"), (".5", r"\frac{1}{2}"),
    (r"\sqrt3", r"\sqrt{3}"), (r"\frac12", r"\frac{1}{2}"), (r"\frac1{72}", r"\frac{1}{72}"), ("1/2", r"\frac{1}{2}"),
    ("1.0/2", "1.0/2"), (r"1 \text{ a} 2 \text{ b}", r"1 \text{ a} 2 \text{ b}"), (r"2\sqrt", r"2\sqrt"),
    (r"\frac", r"\frac"), (r"\frac1", r"\frac1"), ("", ""),
])
def test_hendrycks_normalisation(raw, normal):
    assert mathd_normalize(raw) == normal


@pytest.mark.parametrize("raw, normal", [
    ("1,000,000", "1000000"), ("5 meters", "5"), ("3 or 4", "3,4"), ("2 million", "2*10^6"), (r"7\frac{3}{4}", "7+3/4"),
    (r"\frac{x+1}{2}", "(x+1)/2"), (r"\sqrt[3]{8}", "(8)^(1/(3))"), (r"\{1, 2\}", "1,2"), ("{5}", "5"), ("- 3", "-3"),
    ("YES", "yes"), (r"\frac{1}{2", r"\frac12"),  # unbalanced LaTeX: compared as written (braces still dropped)
])
def test_sympy_normalisation(raw, normal):
    assert normalize(raw) == normal


def test_tuple_split_and_latex():
    assert split_tuple("(1,2)") == ["1", "2"] and split_tuple("(1,(2))") == ["(1,(2))"]
    assert split_tuple("[1,000,5]") == ["1000", "5"] and split_tuple("") == []
    assert latex_to_text(r"\frac{\pi}{2}") == " (pi)/2" and latex_to_text(r"\dfrac{1}{x}") == " 1/x"
    with pytest.raises(ValueError):
        latex_to_text(r"\frac{1}")


@pytest.mark.parametrize("given, gold, verdict", [
    (r"\frac{2}{4}", r"\frac{1}{2}", False), (r"\{2,1\}", r"\{1,2\}", False), ("0.5", r"\frac{1}{2}", True),
    ("3", "", False), ("", "3", False), ("(1,2)", "(1,2,3)", False), ("(1,2)", "[1,2]", False),
])
def test_study_verdicts(given, gold, verdict):
    assert grade(given, gold) is verdict


def test_study_gold_rules():
    assert mathcheck.is_equivalent("5", r"\boxed{5}", "study")
    assert not mathcheck.is_equivalent("5", r"\fbox{5}", "study")      # located, then rejected: no gold
    assert not mathcheck.is_equivalent("5", r"\boxed{5", "study")       # unbalanced: no gold
    assert mathcheck.is_equivalent("5", "5", "study")


# ------------------------------------------------------------------ adversarial inputs
@pytest.mark.parametrize("grader", ["study", "math_verify"])
def test_huge_answer_scores_zero_fast(grader):
    huge, padded = "\\boxed{" + "1" * 1_000_000 + "}", "x " * 500_000 + "\\boxed{7}"
    started = time.monotonic()
    assert mathcheck._equivalent_text(huge, "1", grader) == 0.0  # in this process: the bound, no parsing
    assert time.monotonic() - started < 5
    assert mathcheck.score_math(huge, "1", timeout_s=SLACK_S, grader=grader) == 0.0
    assert mathcheck.score_math(padded, "7", timeout_s=SLACK_S, grader=grader) == 1.0


def test_nested_braces_and_unicode():
    deep = "\\sqrt{" * 600 + "2" + "}" * 600
    assert mathcheck.score_math(f"\\boxed{{{deep}}}", "2", timeout_s=SLACK_S, grader="study") == 0.0
    assert not grade(deep, r"\frac{1}{2}")        # recursion too deep for the LaTeX pass: compared as written
    assert grade(deep, deep) and grade("{" * 600 + "7" + "}" * 600, "7")  # sympy pass: braces dropped
    assert grade("３", "3")                        # Python's float() reads Unicode digits, so the rule does
    assert not grade("½", r"\frac{1}{2}") and not grade("😀", "1") and not grade("\ud800", "1")
    assert mathcheck.score_math("\\boxed{\\frac{}{}}", "1", grader="study") == 0.0
    assert mathcheck.score_math("Answer: \\boxed{\\text{ü}}", "ü", timeout_s=SLACK_S, grader="study") == 1.0


def test_non_terminating_sympy_input_times_out_to_zero():
    """9**9**9 passes the rule's hang filters (they look for ^, not **) and sympy would compute 9^387420489."""
    started = time.monotonic()
    assert mathcheck.score_math(r"\boxed{9**9**9}", r"\frac{1}{2}", timeout_s=2, grader="study") == 0.0
    assert time.monotonic() - started < 60  # sympy alone would need many minutes (and gigabytes)
    assert mathcheck.score_math(r"\boxed{1/2}", r"\frac{1}{2}", timeout_s=SLACK_S, grader="study") == 1.0  # recovered
