"""Headroom after SFT: the per-domain figures, the warning, and scoring each distinct completion once."""
from __future__ import annotations

import json

import pytest

from mixmerge.data.rows import write_rows
from mixmerge.domains import get_domain
from mixmerge.evaluation.headroom import distinct_rows, domain_headroom, headroom
from mixmerge.evaluation.sample import Sample
from mixmerge.verifiers import scoring


def _item(strict: list[float], lenient: list[float]) -> dict:
    return {"samples": [{"score": s, "lenient": le, "finish_reason": "stop", "num_tokens": 9}
                        for s, le in zip(strict, lenient)]}


def test_domain_headroom_by_hand():
    items = [_item([1, 1, 1, 1], [1, 1, 1, 1]), _item([1, 0, 1, 0], [1, 1, 1, 0]), _item([0, 0, 0, 0], [0, 0, 0, 0])]
    found = domain_headroom(items, k=4, min_gap=0.25)
    assert found["avg_at_k"] == pytest.approx(0.5)
    assert found["pass_at_k"] == pytest.approx(2 / 3)
    assert found["gap"] == pytest.approx(2 / 3 - 0.5)
    assert found["lenient_avg_at_k"] == pytest.approx(7 / 12)
    assert found["format_share"] == pytest.approx(6 / 7)
    assert found["enough"] is False
    assert domain_headroom(items, k=4, min_gap=0.1)["enough"] is True


def test_distinct_rows_skips_repeated_problems(tmp_path):
    rows = get_domain("math").generate(400, 0, "train")
    write_rows(rows, tmp_path / "train.parquet")
    picked = distinct_rows(str(tmp_path / "train.parquet"), 30)
    assert len(picked) == 30 and len({r["source"] for r in picked}) == 30


class ScriptedBackend:
    """Stands in for the model: answers right on every other sample, always in the rewarded format."""

    def __init__(self, by_prompt: dict[str, tuple[str, str]]):
        self.by_prompt = by_prompt

    def generate(self, prompts, k, sampling, progress=None):
        out = []
        for prompt in prompts:
            right, wrong = self.by_prompt[prompt[0]["content"]]
            out.append([Sample(right if j % 2 == 0 else wrong, "stop", 10) for j in range(k)])
        return out


def test_headroom_writes_figures_and_warns_by_name(tmp_path, capsys):
    rows = get_domain("math").generate(40, 0, "train")
    write_rows(rows, tmp_path / "math.parquet")
    backend = ScriptedBackend({r["prompt"][0]["content"]: (r["solution"], r["flawed_solution"]) for r in rows})
    settings = {"items": 6, "k": 4, "min_gap": 0.75, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 48}
    found = headroom(backend, {"math": str(tmp_path / "math.parquet")}, settings, {}, str(tmp_path / "h.json"))
    math = found["domains"]["math"]
    assert (math["n"], math["avg_at_k"], math["pass_at_k"], math["format_share"]) == (6, 0.5, 1.0, 1.0)
    assert json.loads((tmp_path / "h.json").read_text())["domains"]["math"]["gap"] == pytest.approx(0.5)
    assert "WARNING: domain 'math' has little headroom" in capsys.readouterr().err


def test_each_distinct_completion_is_scored_once(monkeypatch):
    calls = []

    def counting(domain, completion, verifier, settings, lenient):
        calls.append(completion)
        return float(completion == "right")

    monkeypatch.setattr(scoring, "_score_item", counting)
    monkeypatch.setattr(scoring.workers, "score_batch",
                        lambda fn, items, timeout_s, default: [fn(*item) for item in items])
    texts = ["right", "wrong", "right", "right", "wrong"]
    verifiers = [{"answer": "1"}] * 4 + [{"answer": "2"}]
    assert scoring.score_many(["math"] * 5, texts, verifiers, {}) == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert calls == ["right", "wrong", "wrong"]  # the last "wrong" has another verifier: scored again


def test_a_formatted_code_completion_is_not_run_twice(monkeypatch):
    """Strict and lenient run the same program when the reasoning is closed and the code fenced."""
    from mixmerge.evaluation import avgk

    rows = get_domain("code").generate(2, 0, "eval")
    wrong = rows[0]["flawed_solution"]                                  # formatted, wrong
    unfenced = wrong.replace("```python\n", "").replace("\n```", "")     # right format missing
    calls = []
    real = avgk.score_many

    def counting(domains, texts, verifiers, reward, lenient=False, ids=None):
        calls.append((lenient, len(texts)))
        return real(domains, texts, verifiers, reward, lenient=lenient, ids=ids)

    monkeypatch.setattr(avgk, "score_many", counting)
    samples = [[Sample(wrong, "stop", 9), Sample(unfenced, "stop", 9)]]
    items = avgk.score_groups(rows[:1], samples, 2, {})
    assert calls == [(False, 2), (True, 1)]   # only the unfenced one is scored leniently
    assert [s["lenient"] for s in items[0]["samples"]] == [0.0, 0.0]
