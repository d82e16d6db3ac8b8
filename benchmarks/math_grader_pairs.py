"""The math-grader corpus: (given, gold) answer pairs with the study's verdict derived from its rules by hand.

Each family below is one rule of study.md §1.5 (DeepScaleR's ``grade_answer_mathd`` or ``grade_answer_sympy``)
applied to many values; the verdict and the rule that gives it are written next to the family, never computed by
the grader under test. ``--write`` rebuilds tests/fixtures/math_grader_pairs.jsonl; ``--compare`` scores the corpus
with both graders (``reward.math_grader: study`` and ``math_verify``) and prints where they disagree, by family.

    PYTHONPATH=src python benchmarks/math_grader_pairs.py --write
    PYTHONPATH=src python benchmarks/math_grader_pairs.py --compare
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "math_grader_pairs.jsonl"
INTS = [0, 1, 7, 12, 42, 99, 100, 250, 512, 999, 1024, 2025, -3, -17, 33, 64, 81, 128, 300, 777]
REDUCED = [(1, 2), (1, 3), (2, 3), (3, 4), (5, 6), (7, 8), (3, 5), (4, 7), (9, 10), (5, 12), (11, 13), (7, 9)]
EXACT_DECIMALS = [("0.25", 1, 4), ("0.75", 3, 4), ("1.5", 3, 2), ("2.5", 5, 2), ("0.125", 1, 8), ("0.375", 3, 8)]


def _integers():
    yield from (("int_exact", str(n), str(n), 1, "equal strings") for n in INTS)
    yield from (("int_wrong", str(n + 1), str(n), 0, "different integers") for n in INTS)
    yield from (("int_float_form", f"{n}.0", str(n), 1, "sympy: an integer-valued float becomes the integer")
                for n in INTS[:10])
    for n in (1000, 1234, 4096, 10000, 65536, 123456, 1000000, 2500000, 31415, 99999):
        yield "thousands_comma", f"{n:,}", str(n), 1, "sympy: thousands commas dropped from an integer"
    yield from (("big_int", str(10**k + 7), str(10**k + 7), 1, "equal strings") for k in (12, 18, 25))


def _decorations():
    for n in (5, 12, 99, 250, 7):
        yield "dollar", f"\\${n}", str(n), 1, "mathd: \\$ dropped"
        yield "percent", f"{n}\\%", str(n), 1, "mathd: \\% dropped"
        yield "degrees", f"{n}^\\circ", str(n), 1, "mathd: ^\\circ dropped"
        yield "degrees", f"{n}^{{\\circ}}", str(n), 1, "mathd: ^{\\circ} dropped"
        yield "text_units", f"{n} \\text{{ cm}}", str(n), 1, "mathd: units after '\\text{ ' cut"
        yield "text_wrapped", f"\\text{{{n}}}", str(n), 1, "mathd: an enclosing \\text{} dropped"
    for n, unit in ((5, "cm"), (12, "meters"), (3, "hours"), (40, "feet"), (8, "inches")):
        yield "unit_words", f"{n} {unit}", str(n), 1, "sympy: unit words dropped"
    for n in (3, 10, 42, -2, 7):
        yield "short_prefix", f"x = {n}", str(n), 1, "mathd: a prefix of <= 2 characters before '=' dropped"
        yield "long_prefix", f"abc = {n}", str(n), 0, "mathd keeps a 3-character prefix; sympy: not an integer"
    yield from (("negative_space", f"- {n}", f"-{n}", 1, "mathd: spaces dropped") for n in (3, 12, 250))
    yield from (("leading_dot", f".{d}", f"0.{d}", 1, "mathd: a leading '.' gains a 0") for d in ("5", "25", "75"))


def _fractions():
    for a, b in REDUCED:
        frac = f"\\frac{{{a}}}{{{b}}}"
        yield "frac_macro", f"\\dfrac{{{a}}}{{{b}}}", frac, 1, "mathd: dfrac -> frac"
        yield "frac_macro", f"\\tfrac{{{a}}}{{{b}}}", frac, 1, "mathd: tfrac -> frac"
        yield "frac_slash", f"{a}/{b}", frac, 1, "mathd: a/b of integers -> \\frac{a}{b}"
        yield "frac_wrong", f"\\frac{{{a}}}{{{b + 1}}}", frac, 0, "different fractions"
    for a, b in REDUCED[:10]:
        yield "unreduced_frac", f"\\frac{{{2 * a}}}{{{2 * b}}}", f"\\frac{{{a}}}{{{b}}}", 0, \
            "sympy: two plain fractions must be identical strings"
    for a, b in REDUCED[:5]:
        yield "unreduced_slash", f"{3 * a}/{3 * b}", f"\\frac{{{a}}}{{{b}}}", 0, \
            "sympy: two plain fractions must be identical strings"
    for a, b in ((1, 2), (3, 4), (5, 6), (7, 8)):
        yield "frac_short", f"\\frac{a}{b}", f"\\frac{{{a}}}{{{b}}}", 1, "mathd: \\frac12 -> \\frac{1}{2}"
    yield "half", "0.5", "\\frac{1}{2}", 1, "mathd: 0.5 -> \\frac{1}{2}"
    for decimal, a, b in EXACT_DECIMALS:
        yield "decimal_vs_frac", decimal, f"\\frac{{{a}}}{{{b}}}", 1, "sympy: the difference simplifies to 0"
    for n, k in ((3, 2), (2, 4), (5, 3), (4, 5), (6, 7)):
        yield "frac_vs_int", f"\\frac{{{n * k}}}{{{k}}}", str(n), 0, "sympy: an integer gold needs an integer"
    for whole, a, b in ((7, 3, 4), (1, 1, 2), (2, 2, 3)):
        yield "mixed_number", f"{whole}\\frac{{{a}}}{{{b}}}", f"\\frac{{{whole * b + a}}}{{{b}}}", 1, \
            "sympy: '7 3/4' reads as 7+3/4"


def _expressions():
    yield "sqrt_short", "\\sqrt2", "\\sqrt{2}", 1, "mathd: \\sqrt2 -> \\sqrt{2}"
    yield "sqrt_short", "\\sqrt3", "\\sqrt{3}", 1, "mathd: \\sqrt3 -> \\sqrt{3}"
    for k, n in ((2, 2), (3, 2), (2, 3), (5, 5)):
        yield "sqrt_equiv", f"{k}\\sqrt{{{n}}}", f"\\sqrt{{{k * k * n}}}", 1, "sympy: equal values"
    yield "sqrt_equiv", "\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", 1, "sympy: equal values"
    yield "sqrt_wrong", "\\sqrt{3}", "\\sqrt{2}", 0, "different values"
    yield "sqrt_wrong", "2\\sqrt{3}", "\\sqrt{6}", 0, "different values"
    yield "pi", "\\frac{\\pi}{2}", "\\pi/2", 1, "sympy: equal values"
    yield "pi", "2\\pi", "\\pi \\cdot 2", 1, "sympy: equal values"
    yield "pi", "\\pi", "3.14", 0, "sympy: different values"
    yield "pi", "\\frac{3\\pi}{4}", "\\frac{3}{4}\\pi", 1, "sympy: equal values"
    yield "polynomial", "x^2+2x+1", "(x+1)^2", 1, "sympy: the difference simplifies to 0"
    yield "polynomial", "(x-1)(x+1)", "x^2-1", 1, "sympy: the difference simplifies to 0"
    yield "polynomial", "x^2+1", "(x+1)^2", 0, "sympy: a non-zero difference"
    yield "polynomial", "2x+2", "2(x+1)", 1, "sympy: the difference simplifies to 0"
    yield "equation", "y = 2x+3", "2x+3", 1, "mathd: the 'y' prefix dropped"
    for base, exp in ((2, 10), (3, 12), (10, 15)):
        yield "exponent_guard", f"{base}^{{{exp}}}", str(base ** exp), 0, \
            "sympy: an integer gold needs an integer (^10 is not evaluated either)"
    for base, exp in ((2, 3), (3, 2), (5, 2)):
        yield "power_vs_int", f"{base}^{exp}", str(base ** exp), 0, "sympy: an integer gold needs an integer"
    yield "million", "3 million", "3000000", 0, "sympy: '3*10^6' is not an integer string"
    for name in ("Monday", "Tuesday", "red"):
        yield "text", f"\\text{{{name}}}", name, 1, "mathd: an enclosing \\text{} dropped"
        yield "text_case", name.lower(), name, 1, "sympy: lower-cased"
    yield "text", "Tuesday", "Monday", 0, "different words"


def _tuples_and_sets():
    for a, b in ((1, 2), (3, 5), (-1, 4), (0, 7), (2, 9)):
        yield "tuple_spaces", f"({a}, {b})", f"({a},{b})", 1, "mathd: spaces dropped"
        yield "tuple_reordered", f"({b},{a})", f"({a},{b})", 0, "sympy: elements compared in order"
        yield "interval_bracket", f"[{a}, {b})", f"[{a},{b}]", 0, "sympy: brackets must agree"
        yield "set_reordered", f"\\{{{b},{a}\\}}", f"\\{{{a},{b}\\}}", 0, \
            "neither rule reorders; sympy cannot subtract tuples"
        yield "list_reordered", f"{b}, {a}", f"{a}, {b}", 0, "neither rule reorders"
        yield "set_spaces", f"\\{{{a}, {b}\\}}", f"\\{{{a},{b}\\}}", 1, "mathd: spaces dropped"
    for a, b in ((1, 2), (3, 4), (1, 4)):
        yield "tuple_equiv_elems", f"({a / b}, 3)", f"(\\frac{{{a}}}{{{b}}}, 3)", 1, \
            "sympy: element-wise, each difference simplifies to 0"
    yield "left_right", "\\left(1,2\\right)", "(1,2)", 1, "mathd: \\left/\\right dropped"
    yield "left_right", "\\left[0,\\infty\\right)", "[0,\\infty)", 1, "mathd: \\left/\\right dropped"


def build() -> list[dict]:
    rows = []
    for family_rows in (_integers(), _decorations(), _fractions(), _expressions(), _tuples_and_sets()):
        for family, given, gold, study, rule in family_rows:
            rows.append({"family": family, "given": given, "gold": gold, "study": study, "rule": rule})
    return rows


def compare(rows: list[dict]) -> Counter:
    """Score every pair with both graders (in worker processes, under the 10 s timeout) and count the
    disagreements by (family, study verdict, math-verify verdict)."""
    from mixmerge.verifiers.mathcheck import score_math_batch

    pairs = [(f"\\boxed{{{r['given']}}}", r["gold"]) for r in rows]
    study = score_math_batch(pairs, grader="study")
    lenient = score_math_batch(pairs, grader="math_verify")
    return Counter((r["family"], int(s), int(m)) for r, s, m in zip(rows, study, lenient) if s != m)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    rows = build()
    if args.write:
        FIXTURE.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        print(f"{len(rows)} pairs -> {FIXTURE}")
    if args.compare:
        departures = compare(rows)
        print(f"{sum(departures.values())} of {len(rows)} pairs: study != math_verify")
        for (family, study, lenient), n in sorted(departures.items()):
            print(f"  {family:20s} study {study}  math_verify {lenient}  x{n}")


if __name__ == "__main__":
    main()
