"""Data errors are errors: every scorer raises ``VerifierError`` naming the item and the field for a malformed
verifier, whatever the completion, and scores 0 (never raises) for anything the model wrote."""
import re

import pytest

from mixmerge.domains import domain_names, get_domain
from mixmerge.verifiers.errors import VerifierError
from mixmerge.verifiers.scoring import score_many

GOOD = "<think>\nok\n</think>\n"
EMPTY_STATE = {"tasks": [], "emails": [], "balance": 0}
MALFORMED = {
    "math": [({}, "answer"), ({"answer": ""}, "answer"), ({"answer": None}, "answer"), ({"answer": []}, "answer"),
             ("42", "<verifier>")],
    "science": [({}, "correct_letter"), ({"correct_letter": "AB"}, "correct_letter"),
                ({"correct_letter": "E", "valid_letters": "ABCD"}, "correct_letter"),
                ({"correct_letter": "A", "valid_letters": "ab"}, "valid_letters")],
    "code": [({}, "tests"), ({"tests": []}, "tests"), ({"tests": [{"input": "1"}]}, "tests[0]"),
             ({"tests": [{"stdin": "1", "stdout": 2}]}, "tests[0].stdout"), ({"tests": "print(2)"}, "tests"),
             ({"tests": [{"call": "f", "args": [1]}]}, "tests[0].expected")],
    "instruct": [({}, "instruction_id_list"), ({"instruction_id_list": ["punctuation:no_comma"]}, "kwargs"),
                 ({"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}, {}]}, "kwargs"),
                 ({"instruction_id_list": ["no:such_checker"], "kwargs": [{}]}, "instruction_id_list")],
    "agent": [({}, "initial_state"), ("42", "<verifier>"), ({"initial_state": EMPTY_STATE}, "expected_state"),
              ({"initial_state": {"tasks": []}, "expected_state": EMPTY_STATE}, "initial_state"),
              ({"initial_state": EMPTY_STATE, "expected_state": {**EMPTY_STATE, "balance": "5"}}, "expected_state")],
}


def test_every_registered_domain_has_malformed_cases():
    assert set(MALFORMED) == set(domain_names())


@pytest.mark.parametrize("name, verifier, field",
                         [(name, v, f) for name, cases in MALFORMED.items() for v, f in cases])
@pytest.mark.parametrize("completion", [GOOD + "42", "no think block at all", ""])
def test_malformed_verifier_raises_naming_field(name, verifier, field, completion):
    with pytest.raises(VerifierError) as err:
        get_domain(name).score(completion, verifier, settings={})
    assert err.value.field == field


def test_score_many_names_the_item_and_the_field():
    rows = get_domain("math").generate(4, 0, "eval")
    verifiers = [r["verifier"] for r in rows]
    verifiers[2] = {"gold": "1"}
    with pytest.raises(VerifierError, match=re.escape(f"item '{rows[2]['id']}': verifier field 'answer': missing")):
        score_many(["math"] * 4, [r["solution"] for r in rows], verifiers, {}, ids=[r["id"] for r in rows])
    code = get_domain("code").generate(2, 0, "eval")
    code[1]["verifier"] = {"tests": []}
    with pytest.raises(VerifierError, match=re.escape(f"item '{code[1]['id']}': verifier field 'tests': expected a non-empty")):
        score_many(["code"] * 2, [r["solution"] for r in code], [r["verifier"] for r in code], {},
                   ids=[r["id"] for r in code])


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_model_output_never_raises(name):
    row = get_domain(name).generate(1, 0, "eval")[0]
    junk = ["", GOOD, GOOD + "```python\nraise SystemExit(3)\n```", "\x00" * 50, GOOD + "\\boxed{" * 50,
            GOOD + "Answer: Z", "</think>" * 10]
    assert score_many([name] * len(junk), junk, [row["verifier"]] * len(junk), {}) == [0.0] * len(junk)
