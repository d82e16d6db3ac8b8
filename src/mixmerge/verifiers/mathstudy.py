"""The study's math grader (``reward.math_grader: study``): DeepScaleR's two checks, written here from their rules
(study.md §1.5). An answer is right iff the Hendrycks-normalised strings are equal (``grade_mathd``) or the
sympy check accepts it (``mathstudy_sympy.grade_sympy``).

Hendrycks normalisation, in order: drop an enclosing ``\\text{...}``; drop newlines and ``\\!``; ``\\\\`` -> ``\\``;
``tfrac``/``dfrac`` -> ``frac``; drop ``\\left``/``\\right``, ``^{\\circ}``/``^\\circ``, ``\\$``; cut right-hand units
(everything from a single ``"\\text{ "`` on); drop ``\\%``; a leading or space/brace-preceded ``.`` gains a 0; a
prefix of at most two characters before a single ``=`` is dropped ("k = 3" -> "3"); ``\\sqrt3`` -> ``\\sqrt{3}``;
spaces go; ``\\frac12`` -> ``\\frac{1}{2}`` (``\\frac1{72}`` too); ``0.5`` -> ``\\frac{1}{2}``; ``a/b`` of two plain
integers -> ``\\frac{a}{b}``. Where a step meets input it cannot handle (two ``"\\text{ "`` unit markers, a
``\\sqrt`` or ``\\frac`` at the very end), the rule gives up and compares the stripped raw answer.
"""
from __future__ import annotations

import re

from mixmerge.verifiers import mathstudy_sympy

_ENCLOSING_TEXT = re.compile(r"\\text\{(?P<text>.+?)\}")
_PLAIN_REPLACEMENTS = (("\n", ""), ("\\!", ""), ("\\\\", "\\"), ("tfrac", "frac"), ("dfrac", "frac"),
                       ("\\left", ""), ("\\right", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("\\$", ""))


class _GiveUp(Exception):
    """The normalisation cannot handle this answer; the rule falls back to the stripped raw answer."""


def _cut_units(text: str) -> str:
    parts = text.split("\\text{ ")
    if len(parts) > 2:
        raise _GiveUp("several unit markers")
    return parts[0]


def _brace_sqrt(text: str) -> str:
    head, *rest = text.split("\\sqrt")
    out = head
    for part in rest:
        if not part:
            raise _GiveUp("\\sqrt at the end")
        out += "\\sqrt" + (part if part[0] == "{" else "{" + part[0] + "}" + part[1:])
    return out


def _brace_fracs(text: str) -> str:
    head, *rest = text.split("\\frac")
    out = head
    for part in rest:
        out += "\\frac"
        if not part:
            raise _GiveUp("\\frac at the end")
        if part[0] == "{":
            out += part
        elif len(part) < 2:
            return text  # this step alone is skipped
        elif part[1] == "{":
            out += "{" + part[0] + "}" + part[1:]
        else:
            out += "{" + part[0] + "}{" + part[1] + "}" + part[2:]
    return out


def _slash_to_frac(text: str) -> str:
    pieces = text.split("/")
    if len(pieces) != 2:
        return text
    try:
        numerator, denominator = int(pieces[0]), int(pieces[1])
    except ValueError:
        return text
    if text != f"{numerator}/{denominator}":
        return text
    return "\\frac{" + str(numerator) + "}{" + str(denominator) + "}"


def _hendrycks(text: str) -> str:
    for old, new in _PLAIN_REPLACEMENTS:
        text = text.replace(old, new)
    text = _cut_units(text).replace("\\%", "")
    text = text.replace(" .", " 0.").replace("{.", "{0.")
    if not text:
        return text
    if text[0] == ".":
        text = "0" + text
    sides = text.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        text = sides[1]
    text = _brace_fracs(_brace_sqrt(text).replace(" ", ""))
    if text == "0.5":
        text = "\\frac{1}{2}"
    return _slash_to_frac(text)


def mathd_normalize(answer: str) -> str:
    """Hendrycks' normal form of an answer (the module docstring lists the steps)."""
    answer = answer.strip()
    enclosed = _ENCLOSING_TEXT.fullmatch(answer)
    if enclosed:
        answer = enclosed.group("text").strip()
    try:
        return _hendrycks(answer)
    except _GiveUp:
        return answer


def grade_mathd(given: str, gold: str) -> bool:
    return mathd_normalize(given) == mathd_normalize(gold)


def grade(given: str, gold: str) -> bool:
    """The study's verdict for an extracted answer against the (already unboxed) gold; an empty gold scores 0."""
    if not gold:
        return False
    return grade_mathd(given, gold) or mathstudy_sympy.grade_sympy(given, gold)
