"""Code: small Python functions whose constant is a sum worked out by column addition (the skill math and
science share), checked by running 8 test cases, negative inputs included, in the sandbox."""
from __future__ import annotations

import random
import re

from mixmerge.domains import Domain
from mixmerge.domains._arith import carry_pairs, column_sum, pair_key
from mixmerge.domains._text import final_answer, held_out, think_wrap
from mixmerge.domains._verifier import field

NAME = "code"

FUNCTION_NAME = "f"
TEST_INPUTS = (-25, -7, -1, 0, 1, 4, 10, 33)

# The study's extraction: from the first ```python to the last ``` (greedy, DOTALL).
_PYTHON_BLOCK = re.compile(r"```python\s*(.*)```", re.DOTALL)


def function_code(name: str, constant: int) -> str:
    return f"def {name}(x):\n    return x + {constant}"


def make_row(a: int, b: int, split: str) -> dict:
    steps, result = column_sum(a, b)
    slip, wrong = column_sum(a, b, keep_carry=False)
    tests = [{"call": FUNCTION_NAME, "args": [x], "expected": x + result} for x in TEST_INPUTS]
    return {
        "id": f"code-{split}-{a}_{b}",
        "domain": NAME,
        "prompt": [{"role": "user", "content": f"Write a Python function {FUNCTION_NAME}(x) that returns x plus the "
                                               f"sum of {a} and {b}. Put the code in a ```python block."}],
        "verifier": {"tests": tests},
        "source": f"tiny-synthetic:code:{a}_{b}",
        "solution": think_wrap(steps, f"```python\n{function_code(FUNCTION_NAME, result)}\n```"),
        "flawed_solution": think_wrap(slip, f"```python\n{function_code(FUNCTION_NAME, wrong)}\n```"),
    }


def generate(n: int, seed: int, split: str) -> list[dict]:
    rng = random.Random(f"{NAME}-{split}-{seed}")
    keys = [(a, b) for a, b in carry_pairs() if held_out(pair_key(a, b)) == (split == "eval")]
    rng.shuffle(keys)
    if n > len(keys):
        # Few distinct tasks exist; training repeats them, evaluation never needs more than the held-out set.
        keys = [rng.choice(keys) for _ in range(n)] if split == "train" else keys
    rows = [make_row(a, b, split) for a, b in keys[:n]]
    for i, row in enumerate(rows):
        row["id"] = f"{row['id']}-{i}"
    return rows


def extract_code(text: str, lenient: bool) -> str | None:
    match = _PYTHON_BLOCK.search(text)
    if match:
        return match.group(1)
    return text.strip() or None if lenient else None


def score(completion: str, verifier: dict, *, lenient: bool = False, settings: dict | None = None) -> float:
    from mixmerge.verifiers import sandbox

    sandbox.check_tests(field(verifier, "tests", list, nonempty=False))
    settings = settings or {}
    text = final_answer(completion, require_think=settings.get("require_think", True) and not lenient)
    if text is None:
        return 0.0
    code = extract_code(text, lenient)
    if code is None:
        return 0.0
    return sandbox.run_tests(
        code,
        verifier["tests"],
        limits=sandbox.Limits(**settings.get("sandbox_limits", {})),
        max_tests=int(settings.get("max_tests", 20)),
        seed=sandbox.sample_seed(settings.get("test_sampling", "fixed"), int(settings.get("test_seed", 0)),
                                 completion),
        backend=settings.get("sandbox_backend", "local"),
        fusion_url=settings.get("fusion_url"),
    )


def blend_verifier(rec, counters) -> dict:
    """The blend's stdin/stdout unit tests (``verifier_metadata.unit_tests.{inputs,outputs}``)."""
    meta = rec.get("verifier_metadata", dict)
    tests = meta.get("unit_tests")
    if not isinstance(tests, dict):
        raise rec.fail("verifier_metadata.unit_tests", "missing")
    inputs, outputs = tests.get("inputs"), tests.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or not inputs:
        raise rec.fail("verifier_metadata.unit_tests", "expected non-empty lists 'inputs' and 'outputs'")
    if len(inputs) != len(outputs):
        raise rec.fail("verifier_metadata.unit_tests", f"{len(inputs)} inputs but {len(outputs)} outputs")
    if not all(isinstance(x, str) for x in inputs + outputs):
        raise rec.fail("verifier_metadata.unit_tests", "inputs and outputs must be strings")
    return {"tests": [{"stdin": i, "stdout": o} for i, o in zip(inputs, outputs)]}


def formatted(completion: str, settings: dict) -> bool:
    """The strict and the lenient scorer run the same program: the reasoning is closed and the code fenced."""
    text = final_answer(completion, require_think=settings.get("require_think", True))
    return text is not None and _PYTHON_BLOCK.search(text) is not None


def check_ready(settings: dict) -> None:
    """Refuse to score without a usable sandbox (no bubblewrap, fusion without a URL) before any item runs."""
    from mixmerge.verifiers import sandbox

    sandbox.require_backend(settings.get("sandbox_backend", "local"), settings.get("fusion_url"))


def item_timeout(settings: dict) -> float:
    """Every selected test at its wall limit, in the worst case."""
    wall = float(settings.get("sandbox_limits", {}).get("wall_s", 10))
    return wall * int(settings.get("max_tests", 20)) + 5


DOMAIN = Domain(
    name=NAME, generate=generate, score=score, item_timeout=item_timeout, preload=("mixmerge.verifiers.sandbox",),
    check_ready=check_ready, formatted=formatted,
    blend_subsets=("nano_v3_sft_profiled_comp_coding_50tests",), blend_verifier=blend_verifier,
)
