import json
import math

import pandas as pd
import pytest

from mixmerge.evaluation.avgk import pass_at_k, summarise
from mixmerge.report.tables import build_report, rl_checks

CONFIG = {
    "domains": ["math", "code"],
    "merges": {"ties": {"method": "ties_study", "params": {"density": 0.2}}},
    "benchmarks": {"math": {"domain": "math"}, "code": {"domain": "code"}},
    "gpus": {"sft": 0, "grpo": 0, "merge": 0, "eval": 0},
}


def test_pass_at_k_matches_the_closed_form():
    assert pass_at_k(4, 0, 1) == 0.0 and pass_at_k(4, 4, 1) == 1.0
    assert math.isclose(pass_at_k(4, 1, 1), 0.25)
    assert math.isclose(pass_at_k(5, 2, 2), 1 - (3 * 2) / (5 * 4))


def test_summarise_avg_at_k_and_truncation():
    samples = lambda scores: [{"score": s, "lenient": 1.0, "finish_reason": "stop" if s else "length",  # noqa: E731
                               "num_tokens": 3} for s in scores]
    items = [{"samples": samples([1, 0])}, {"samples": samples([1, 1])}]
    out = summarise(items, 2)
    assert out["avg_at_k"] == 0.75 and out["lenient_avg_at_k"] == 1.0 and out["pass_at_k"] == 1.0
    assert out["truncation_rate"] == 0.25
    assert math.isclose(out["avg_at_k_stderr"], math.sqrt(0.125 / 2))


def write_cell(root, model, bench, strict, n=10, k=4):
    path = root / "results" / "eval" / model / f"{bench}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model": model, "benchmark": bench, "domain": bench, "n": n, "k": k,
                                "avg_at_k": strict, "avg_at_k_stderr": 0.01, "lenient_avg_at_k": strict + 0.1,
                                "lenient_avg_at_k_stderr": 0.01, "pass_at_k": strict, "truncation_rate": 0.0}))


@pytest.fixture
def grid(tmp_path):
    values = {"base": 0.0, "sft": 0.2, "rl-math": 0.5, "rl-code": 0.3, "rl-mixed": 0.4, "merge-ties": 0.35}
    for model, value in values.items():
        for bench in ("math", "code"):
            write_cell(tmp_path, model, bench, value + (0.1 if bench == "code" else 0.0))
    for rule, node, seconds in [("sft", "sft", 100), ("grpo", "rl-math", 200), ("grpo", "rl-code", 300),
                                ("grpo", "rl-mixed", 250), ("merge", "merge-ties", 5)]:
        path = tmp_path / "benchmarks" / rule / f"{node}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\n{seconds}\t0:00:00\n")
    record = tmp_path / "results" / "models" / "merge-ties" / "merge_record.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"family": "study", "method": "ties_study", "params": {"density": 0.2}, "seed": 0,
                                  "dtype": "float32", "notes": ["expert 1: trims nothing"]}))
    return tmp_path


def test_build_report_tables(grid):
    out = grid / "report"
    build_report(CONFIG, str(out), root=str(grid))
    main = pd.read_csv(out / "main_table.csv", index_col=0)
    assert list(main.index) == ["math", "code"]
    assert math.isclose(main.loc["code", "rl-math:strict"], 0.6)
    transfer = pd.read_csv(out / "transfer_matrix.csv", index_col=0)
    assert math.isclose(transfer.loc["math", "rl-math"], 0.3)
    compute = pd.read_csv(out / "compute_table.csv")
    assert set(compute["node"]) >= {"sft", "rl-math", "rl-code", "rl-mixed", "merge-ties"}
    report = (out / "report.md").read_text()
    assert "250 s / 500 s = 50.0%" in (out / "compute_table.md").read_text()
    assert "trims nothing" in report and "ties_study" in report
    assert (out / "main_table.png").stat().st_size > 1000


def test_rl_checks_gain_in_standard_errors(grid):
    from mixmerge.report.tables import load_summaries

    checks = {(c["model"], c["benchmark"]): c for c in rl_checks(load_summaries(sorted(grid.glob("results/eval/*/*.json"))), CONFIG)}
    math_check = checks[("rl-math", "math")]
    assert math.isclose(math_check["gain"], 0.3)
    assert math.isclose(math_check["gain_in_se"], 0.3 / math.sqrt(2 * 0.01 ** 2))
    assert ("rl-mixed", "code") in checks
