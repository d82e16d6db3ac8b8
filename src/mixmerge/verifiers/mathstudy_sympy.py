"""The study's sympy check (DeepScaleR's ``grade_answer_sympy``), written here from its rules (study.md §1.5).

Both answers are normalised: an enclosing ``\\text{}``, ``$`` and ``%`` go; " or "/" and " become commas;
million/billion/trillion become powers of ten; unit words (cm, meter, hour, ...) and ``^\\circ`` go; one outer
brace pair goes; an integer-valued float becomes that integer; LaTeX becomes plain text (``latex_to_text``); a
mixed number "7 3/4" becomes "7+3/4"; spaces and braces go; letters are lower-cased; an integer (commas allowed)
is written canonically. Equal normal forms are right. Otherwise both are split as tuples/intervals (outer
``()[]`` and no inner brackets); the brackets must agree, the element counts must agree, and each element pair
must pass: two plain fractions ``a/b`` must be identical strings (an unreduced fraction is not reduced), an
integer only matches an integer (by the normal form), anything else must simplify to a zero difference under
sympy, attempted only for at most two distinct letters and no ``^{``, ``^(``, ``^n^`` or multi-digit exponent
(inputs on which sympy may hang). The caller bounds the time (10 s -> 0, ``mathcheck``).
"""
from __future__ import annotations

import re

_UNITS = ("degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day", "week", "month", "year",
          "foot", "feet", "inch", "yard")
_UNIT_PATTERNS = [re.compile(unit + r"(es)?(s)? *(\^[0-9]+)?") for unit in _UNITS]
_SYMBOLS = {"pi": "pi", "infty": "inf", "cup": "U", "cdot": "*", "times": "*", "div": "/", "le": "<=", "leq": "<=",
            "ge": ">=", "geq": ">=", "neq": "!=", "ne": "!=", "circ": "", "left": "", "right": "", "displaystyle": "",
            ",": " ", ";": " ", ":": " ", " ": " ", "!": "", "{": "{", "}": "}", "%": "%", "$": "$", "\\": " "}
_UNWRAP = {"text", "textbf", "textit", "mathrm", "mathbf", "mathit", "operatorname", "mbox", "boxed"}
_FRACS = {"frac", "dfrac", "tfrac"}
_PLAIN_ARG = re.compile(r"[0-9.]+|[A-Za-z]")
_PLAIN_FRACTION = re.compile(r"-?[0-9]+.?/0*[1-9][0-9]*.?")
_FORMATTED_COMMA = re.compile(r"(\d)(,)(\d\d\d)($|\D)")
_HANG_RISKS = (re.compile(r"\^[0-9]+\^"), re.compile(r"\^[0-9][0-9]+"))
_BRACKETS = "()[]"


def _argument(text: str, i: int) -> tuple[str, int]:
    """The macro argument starting at ``text[i]`` (a braced group or one character), converted, and the end."""
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text):
        raise ValueError("missing macro argument")
    if text[i] != "{":
        return (text[i], i + 1) if text[i] != "\\" else _macro(text, i)
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return latex_to_text(text[i + 1:j]), j + 1
    raise ValueError("unbalanced braces")


def _wrap(part: str) -> str:
    return part if _PLAIN_ARG.fullmatch(part) else f"({part})"


def _macro(text: str, i: int) -> tuple[str, int]:
    """Plain text for the macro at ``text[i] == '\\'``, and where it ends."""
    name = re.match(r"[A-Za-z]+", text[i + 1:])
    if name is None:
        symbol = text[i + 1:i + 2]
        return _SYMBOLS.get(symbol, symbol), i + 2
    word, end = name.group(0), i + 1 + len(name.group(0))
    if word in _FRACS:
        numerator, end = _argument(text, end)
        denominator, end = _argument(text, end)
        return f" {_wrap(numerator)}/{_wrap(denominator)}", end
    if word == "sqrt":
        index = re.match(r"\[([^\]]*)\]", text[end:])
        body, after = _argument(text, end + (index.end() if index else 0))
        return (f"({body})^(1/({index.group(1)}))" if index else f"sqrt({body})"), after
    if word in _UNWRAP:
        return _argument(text, end)
    return _SYMBOLS.get(word, word), end


def latex_to_text(text: str) -> str:
    """LaTeX as sympy-readable text: ``\\frac{a}{b}`` -> `` a/b`` (parenthesised unless a number or one letter),
    ``\\sqrt{x}`` -> ``sqrt(x)``, ``\\pi`` -> ``pi``, ``\\infty`` -> ``inf``, ``\\cdot``/``\\times`` -> ``*``, ``\\cup``
    -> ``U``, text macros unwrapped, group braces dropped, other macros by name. Raises ValueError if malformed."""
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            piece, i = _macro(text, i)
            out.append(piece)
        elif char == "{":
            piece, i = _argument(text, i)
            out.append(piece)
        elif char == "}":
            raise ValueError("unbalanced braces")
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _strip_formatted_commas(expr: str) -> str:
    while True:
        stripped = _FORMATTED_COMMA.sub(r"\1\3\4", expr)
        if stripped == expr:
            return expr
        expr = stripped


def _as_int(text: str) -> int | None:
    """The integer an answer writes (commas as thousands separators allowed), within 1e-7; else None."""
    try:
        value = float(_strip_formatted_commas(text))
        nearest = int(round(value))
    except (ValueError, OverflowError):
        return None
    return nearest if abs(value - nearest) <= 1e-7 else None


def _drop_units(expr: str) -> str:
    for pattern in _UNIT_PATTERNS:
        expr = pattern.sub("", expr)
    return re.sub(r"\^ *\\circ", "", expr)


def normalize(expr: str) -> str:
    """The sympy check's normal form (module docstring)."""
    enclosed = re.fullmatch(r"\\text\{(?P<text>.+?)\}", expr)
    if enclosed:
        expr = enclosed.group("text")
    expr = expr.replace("\\%", "%").replace("\\$", "$").replace("$", "").replace("%", "")
    expr = expr.replace(" or ", " , ").replace(" and ", " , ")
    expr = expr.replace("million", "*10^6").replace("billion", "*10^9").replace("trillion", "*10^12")
    expr = _drop_units(expr)
    if len(expr) > 1 and expr[0] == "{" and expr[-1] == "}":
        expr = expr[1:-1]
    expr = re.sub(r",\\! *", "", expr)
    try:
        value = float(expr)
        if abs(value - round(value)) <= 1e-7:
            expr = str(int(round(value)))
    except (ValueError, OverflowError):
        pass
    if "\\" in expr:
        try:
            expr = latex_to_text(expr)
        except (ValueError, RecursionError):
            pass  # the rule: unparseable LaTeX is compared as written
    expr = re.sub(r"- *", "-", expr)
    expr = re.sub(r"([0-9]) +([0-9])", r"\1+\2", expr)
    expr = expr.replace(" ", "").replace("{", "").replace("}", "").lower()
    whole = _as_int(expr)
    if whole is not None:
        expr = str(int(float(expr.replace(",", ""))))
    return expr


def _may_evaluate(expr: str) -> bool:
    letters = {ch for ch in expr.replace("sqrt", "").replace("frac", "") if ch.isalpha()}
    if len(letters) > 2 or "^{" in expr or "^(" in expr:
        return False
    return not any(risk.search(expr) for risk in _HANG_RISKS)


def equal_under_sympy(gold: str, given: str) -> bool:
    """Does sympy simplify (gold) - (given) to 0? Any parse or evaluation failure is False."""
    import sympy
    from sympy.parsing import sympy_parser

    difference = f"({gold})-({given})"
    if not _may_evaluate(difference):
        return False
    transformations = sympy_parser.standard_transformations + (sympy_parser.implicit_multiplication_application,)
    try:
        parsed = sympy_parser.parse_expr(difference.replace("^", "**"), transformations=transformations)
        return bool(sympy.simplify(parsed) == 0)
    except Exception:  # noqa: BLE001 - the rule: anything sympy cannot do is "not equal"
        return False


def split_tuple(expr: str) -> list[str]:
    expr = _strip_formatted_commas(expr)
    if not expr:
        return []
    inner = expr[1:-1]
    if len(expr) > 2 and expr[0] in _BRACKETS and expr[-1] in _BRACKETS and not any(c in inner for c in _BRACKETS):
        return [part.strip() for part in inner.split(",")]
    return [expr]


def _elements_match(gold: str, given: str) -> bool:
    if _PLAIN_FRACTION.fullmatch(gold) and _PLAIN_FRACTION.fullmatch(given):
        return gold == given
    if (_as_int(gold) is None) != (_as_int(given) is None):
        return False
    return equal_under_sympy(gold, given)


def grade_sympy(given: str, gold: str) -> bool:
    gold_norm, given_norm = normalize(gold), normalize(given)
    if gold_norm == given_norm:
        return True
    if not given_norm:
        return False
    gold_parts, given_parts = split_tuple(gold_norm), split_tuple(given_norm)
    if len(gold_parts) > 1 and (gold_norm[0] != given_norm[0] or gold_norm[-1] != given_norm[-1]):
        return False
    if len(gold_parts) != len(given_parts):
        return False
    return all(_elements_match(g, p) for g, p in zip(gold_parts, given_parts))
