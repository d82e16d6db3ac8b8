"""Each domain scorer gives 1 to a correct reference answer and 0 to a wrong one on fixture rows of every
real loader (the study's reward rules: text after </think>, binary)."""
from pathlib import Path

import pytest

from mixmerge.domains import get_domain
from mixmerge.data.sources.benchmarks import load_benchmark
from mixmerge.data.sources.nemotron_blend import load_blend

FIX = Path(__file__).parent / "fixtures"
SETTINGS = {"require_think": True, "math_timeout_s": 10, "max_tests": 20, "test_seed": 0,
            "sandbox_backend": "local", "strict_single_letter": True,
            "sandbox_limits": {"cpu_s": 5, "wall_s": 10, "memory_mb": 1024}}

ADD = "a, b = map(int, input().split())\nprint(a + b)"
SUB = "a, b = map(int, input().split())\nprint(a - b)"
TWO_SUM = ("class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n        for i, x in enumerate(nums):\n"
           "            if target - x in seen:\n                return [seen[target - x], i]\n            seen[x] = i\n")
TWO_SUM_WRONG = "class Solution:\n    def twoSum(self, nums, target):\n        return [0, 0]\n"


def think(answer: str) -> str:
    return f"<think>\nworking\n</think>\n{answer}"


def py(code: str) -> str:
    return think(f"```python\n{code}\n```")


# row id -> (correct response, wrong response)
CASES = {
    "aime24-60": (think("Answer: \\boxed{204}"), think("Answer: \\boxed{205}")),
    "aime24-61": (think("Answer: \\boxed{25}"), think("Answer: \\boxed{52}")),
    "aime25-0": (think("Answer: \\boxed{70}"), think("Answer: \\boxed{7}")),
    "hle-66e8a1": (think("Answer: \\boxed{101}"), think("Answer: \\boxed{103}")),
    "hle-66e8a2": (think("Answer: C"), think("Answer: A")),
    "mmlu_redux-anatomy-0": (think("Answer: B"), think("Answer: D")),
    "ifeval-1001": (think("dear sam, see you at the lake on sunday."), think("Dear Sam, see you on Sunday.")),
    "ifbench-101": (think("Boats rest and gulls wait, but the tide turns, so the day begins."),
                    think("Boats rest and gulls wait.")),
    "ifbench-102": (think("Of 3 towns, 2 recovered."), think("Of 3 towns, 2 recovered in 1990.")),
    "lcb-abc999_a": (py(ADD), py(SUB)),
    "lcb-9001": (py(TWO_SUM), py(TWO_SUM_WRONG)),
    "math-dapo17k-0": (think("Answer: \\boxed{16}"), think("Answer: 16")),
    "science-stem_mcqa-0": (think("Answer: B"), think("Answer: A")),
    "code-comp_coding_50tests-0": (py(ADD), py(SUB)),
    "instruct-instruction_following-0": (think("a tall white tower. its lamp turns all night."),
                                         think("A tall, white tower.")),
    "instruct-instruction_following-2": (think("snow falls\nquiet fields rest\nwinter breath"),
                                         think("rain falls\nloud fields rest")),
    "instruct-instruction_following-1": (think("rain taps softly on the roof all night rain"),
                                         think("Rain taps softly on the roof all night.")),
    "instruct-instruction_following-4": (think("Name three rivers in Europe and say where each one ends."),
                                         think("The Danube ends in the Black Sea.")),
    "instruct-instruction_following-8": (think("The harbor wakes with the tide; the tide turns."),
                                         think("The harbor wakes; the harbor sleeps with the tide.")),
    "instruct-instruction_following-21": (think("Toast the bread, add butter, then more butter."),
                                          think("Toast the bread and add butter.")),
}


def fixture_rows() -> dict:
    specs = {
        "aime24": {"loader": "aime", "source": {"path": str(FIX / "aime24.jsonl")}},
        "aime25": {"loader": "aime", "source": {"path": str(FIX / "aime25.jsonl")}},
        "hle": {"loader": "hle", "source": {"path": str(FIX / "hle.jsonl")}},
        "mmlu_redux": {"loader": "mmlu_redux", "source": {"path": str(FIX / "mmlu_redux"), "data_files": "*.jsonl"}},
        "ifeval": {"loader": "ifeval", "source": {"path": str(FIX / "ifeval.jsonl")}},
        "ifbench": {"loader": "ifbench", "source": {"path": str(FIX / "ifbench.jsonl")}},
        "lcb": {"loader": "livecodebench", "release": "release_v1", "source": {"path": str(FIX / "livecodebench")}},
    }
    rows = {}
    for name, spec in specs.items():
        rows.update({r["id"]: r for r in load_benchmark(name, spec)[0]})
    by_domain, _ = load_blend({"source": {"path": str(FIX / "nemotron_blend.jsonl")}},
                              ["math", "code", "science", "instruct"])
    rows.update({r["id"]: r for domain_rows in by_domain.values() for r in domain_rows})
    return rows


@pytest.fixture(scope="module")
def rows():
    return fixture_rows()


@pytest.mark.parametrize("row_id", list(CASES))
def test_reference_scores_one_wrong_scores_zero(rows, row_id):
    row = rows[row_id]
    score = get_domain(row["domain"]).score
    right, wrong = CASES[row_id]
    assert score(right, row["verifier"], settings=SETTINGS) == 1.0
    assert score(wrong, row["verifier"], settings=SETTINGS) == 0.0


def test_gpqa_rows_score_by_their_shuffled_letter(rows):
    gpqa = load_benchmark("gpqa", {"loader": "gpqa", "seed": 0, "source": {"path": str(FIX / "gpqa_diamond.csv")}})[0]
    score = get_domain("science").score
    for row in gpqa:
        letter = row["verifier"]["correct_letter"]
        other = next(x for x in "ABCD" if x != letter)
        assert score(think(f"Answer: {letter}"), row["verifier"], settings=SETTINGS) == 1.0
        assert score(think(f"Answer: {other}"), row["verifier"], settings=SETTINGS) == 0.0
