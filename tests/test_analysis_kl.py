"""The analyses that run models (kl_neighbourhood, self_verification) on hand-computed toys: the Monte-Carlo KL
against the exact KL on a two-token vocabulary, the neighbourhood rule on a toy matrix, the correlation, the
scorer's teacher-forced log-probabilities against a hand computation, balanced accuracy; and both runs on tiny
models."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from mixmerge.analysis.kl_neighbourhood import correlation, epsilon, kl_ci, mark_neighbours, mc_kl
from mixmerge.analysis.kl_run import Scorer


def test_monte_carlo_kl_matches_the_exact_kl_on_two_tokens():
    p, q, length, n = np.array([0.7, 0.3]), np.array([0.4, 0.6]), 5, 20000
    exact_token = float(np.sum(p * np.log(p / q)))
    rng = np.random.default_rng(0)
    tokens = rng.choice(2, size=(n, length), p=p)
    log_p, log_q = np.log(p)[tokens].sum(1), np.log(q)[tokens].sum(1)
    per_seq, per_token = mc_kl(log_p, log_q, np.full(n, length))
    assert per_seq == pytest.approx(length * exact_token, rel=0.03)
    assert per_token == pytest.approx(exact_token, rel=0.03)
    items = np.repeat(np.arange(n // 4), 4)              # 4 samples per item
    ci = kl_ci(items, log_p, log_q, np.full(n, length), seed=0, n_resamples=500)
    assert ci["kl_sequence_lo"] < length * exact_token < ci["kl_sequence_hi"]
    assert ci["kl_token_lo"] < exact_token < ci["kl_token_hi"]
    assert mc_kl(log_p, log_p, np.full(n, length)) == (0.0, 0.0)


def test_neighbourhood_rule_on_a_toy_matrix():
    # benchmark m (math): own KL 2.0, code 2.5 (< 1.5 x 2), instruct 4.0; benchmark c (code): own 1.0, math 3.0
    table = pd.DataFrame({"expert": ["rl-math", "rl-code", "rl-instruct", "rl-code", "rl-math"],
                          "benchmark": ["m", "m", "m", "c", "c"], "domain": ["math", "math", "math", "code", "code"],
                          "kl_sequence": [2.0, 2.5, 4.0, 1.0, 3.0]})
    marked = mark_neighbours(table, "sequence", "ratio", 1.5)
    assert marked["epsilon"].tolist() == [3.0, 3.0, 3.0, 1.5, 1.5]
    assert marked["neighbour"].tolist() == [True, True, False, True, False]   # asymmetric: code ~ math, not back
    assert mark_neighbours(table, "sequence", "margin", 0.6)["neighbour"].tolist() == [True, True, False, True,
                                                                                        False]
    assert mark_neighbours(table, "sequence", "absolute", 2.6)["neighbour"].tolist() == [True, True, False, True,
                                                                                          False]
    assert epsilon(2.0, "ratio", 1.5) == 3.0
    with pytest.raises(ValueError, match="epsilon_rule"):
        epsilon(2.0, "nearest", 1.0)


def test_correlation_has_a_ci_and_needs_four_cells():
    kl = np.array([0.1, 0.5, 0.9, 1.3, 1.7, 2.1])
    res = correlation(kl, -2 * kl + 0.01 * np.array([1, -1, 1, -1, 1, -1]))
    assert res["n"] == 6 and res["r"] < -0.99 and res["lo"] <= res["r"] <= res["hi"] and res["p"] < 0.01
    assert math.isnan(correlation(kl[:3], kl[:3])["r"])


class _Tokenizer:
    """Characters 'a'/'b' are tokens 0/1, the end token is 2; the chat template is the last message's text."""
    eos_token_id, pad_token_id = 2, 3

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        return messages[-1]["content"]

    def __call__(self, text, add_special_tokens):
        return {"input_ids": ["ab".index(c) for c in text]}


class _Bigram:
    """Logits of the next token depend on the current token only: the decoder's state is the token one-hot, the
    output head a fixed 4 x 4 table."""

    def __init__(self, table):
        self.table = torch.tensor(table, dtype=torch.float32)

    def get_decoder(self):
        return lambda input_ids, attention_mask: type(
            "Out", (), {"last_hidden_state": torch.nn.functional.one_hot(input_ids, 4).float()})()

    def get_output_embeddings(self):
        return lambda hidden: hidden @ self.table


def test_scorer_sums_the_response_tokens_only():
    table = np.log(np.array([[0.6, 0.3, 0.1, 1e-9], [0.2, 0.5, 0.3, 1e-9], [0.25] * 4, [0.25] * 4]))
    scorer = Scorer.__new__(Scorer)
    scorer.tokenizer, scorer.model, scorer.device, scorer.batch_size = _Tokenizer(), _Bigram(table), "cpu", 2
    probs = np.exp(table) / np.exp(table).sum(1, keepdims=True)
    samples = [("i0", [{"role": "user", "content": "ab"}], "ba", True),     # b|b, a|b, eos|a
               ("i1", [{"role": "user", "content": "a"}], "bb", False),     # b|a, b|b
               ("i2", [{"role": "user", "content": "bab"}], "a", True)]     # a|b, eos|a
    sums, counts = scorer.logprobs(samples)
    lp = np.log(probs)
    expected = [lp[1, 1] + lp[1, 0] + lp[0, 2], lp[0, 1] + lp[1, 1], lp[1, 0] + lp[0, 2]]
    assert counts.tolist() == [3, 2, 2]
    assert sums == pytest.approx(expected, abs=1e-5)


def _tiny_grid(root):
    """rl-math, rl-code (two random tiny models) and rl-mixed = a copy of rl-math, tiny math and code rows (6
    held-out items each) and eval records with two samples per item; returns (spec, models, rows)."""
    import json
    import shutil

    from mixmerge import grid
    from mixmerge.data.tiny import prepare_tiny, tokenizer_texts
    from mixmerge.training.base_model import build_base

    spec = {"domains": ["math", "code"], "merges": {}, "seed": 0,
            "benchmarks": {"math": {"domain": "math"}, "code": {"domain": "code"}}}
    tiny = {"architecture": "qwen2", "vocab_size": 300, "hidden_size": 32, "intermediate_size": 64, "num_layers": 1,
            "num_heads": 2, "num_kv_heads": 1, "max_positions": 256}
    texts = tokenizer_texts(["math", "code"], 50, 0)
    build_base(texts, tiny, 0, root / grid.model_dir("rl-math"))
    build_base(texts, tiny, 1, root / grid.model_dir("rl-code"))
    shutil.copytree(root / grid.model_dir("rl-math"), root / grid.model_dir("rl-mixed"))
    rows = {}
    for domain in spec["domains"]:
        prepare_tiny(domain, 4, 6, 0, root / "data" / domain)
        rows[domain] = str(root / "data" / domain / "eval.parquet")
        items = pd.read_parquet(rows[domain])["id"].tolist()
        for node in ("rl-math", "rl-code", "rl-mixed"):
            path = root / grid.eval_records(node, domain)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps({"id": i, "domain": domain, "samples": [
                {"text": f"<think>x</think> {j}", "score": float((j + len(node)) % 2), "lenient": 0.0,
                 "finish_reason": "stop" if j else "length"} for j in range(2)]}) + "\n" for i in items))
    models = {n: str(root / grid.model_dir(n)) for n in ("rl-math", "rl-code", "rl-mixed")}
    return spec, models, rows


def _outs(root, kinds):
    return {k: str(root / "out" / f"{k}.{'png' if k == 'figure' else 'json' if k == 'settings' else 'csv'}")
            for k in kinds}


def test_kl_run_on_tiny_models(tmp_path):
    """KL(rl-math ‖ rl-mixed) is exactly 0 everywhere: rl-mixed is a copy of rl-math."""
    from mixmerge.analysis.kl_run import run_kl_neighbourhood

    spec, models, rows = _tiny_grid(tmp_path)
    settings = {"level": "sequence", "epsilon_rule": "ratio", "epsilon_value": 1.5, "max_items": None,
                "batch_size": 4, "seed": 0}
    out = _outs(tmp_path, ("table", "correlation", "figure", "settings"))
    table = run_kl_neighbourhood(spec, settings, models, rows, out, str(tmp_path)).set_index(["expert", "benchmark"])
    assert len(table) == 4 and (table["n_items"] == 6).all() and (table["n_samples"] == 12).all()
    assert table.loc[("rl-math", "math"), "kl_sequence"] == 0 and table.loc[("rl-math", "code"), "kl_token"] == 0
    assert np.isfinite(table.loc[("rl-code", "code"), "kl_sequence"])
    assert table.loc[("rl-math", "math"), "delta_perf"] == 0           # rl-mixed scored like rl-math
    assert pd.read_csv(out["correlation"])["n"].tolist() == [4, 4]


def test_self_verification_run_on_tiny_models(tmp_path):
    """Random tiny judges: their verdicts are unparsable, counted, and scored as wrong (balanced accuracy 0)."""
    import yaml

    from mixmerge import grid
    from mixmerge.analysis.self_verification_run import run_self_verification

    spec, models, rows = _tiny_grid(tmp_path)
    config = yaml.safe_load(open("config/config.yaml"))
    settings = {**config["analysis"]["self_verification"], "max_items": 4}
    records = {(n, b): str(tmp_path / grid.eval_records(n, b)) for n in models for b in rows}
    out = _outs(tmp_path, ("table", "figure", "settings"))
    table = run_self_verification(settings, {"backend": "hf", "batch_size": 8}, models, rows, records, out)
    assert len(table) == 3 * 2 * 2 and set(table["mode"]) == {"outcome", "process"}
    assert (table["n_items"] == 4).all() and (table["n_samples"] == 8).all()
    assert (table["correct_share"] == 0.5).all()
    parsed = table["n_samples"] - table["unparsable"]
    assert ((parsed > 0) | (table["balanced_accuracy"] == 0)).all()


def test_balanced_accuracy_counts_unparsable_verdicts_as_wrong():
    from mixmerge.analysis.self_verification import balanced_accuracy, ba_ci, cell_row, parse_verdict, shown_response

    labels = np.array([1, 1, 1, 0, 0], dtype=bool)
    verdicts = [True, True, None, False, True]       # TPR 2/3 (the unparsable one is wrong), TNR 1/2
    assert balanced_accuracy(labels, verdicts) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert balanced_accuracy(labels, [True] * 5) == pytest.approx(0.5)       # always "yes": chance
    assert math.isnan(balanced_accuracy(np.ones(3, bool), [True] * 3))       # one class only
    row = cell_row("m", "b", "outcome", np.array(["a", "a", "b", "c", "c"]), np.array([1, 1, 1, 0, 0.5]),
                   verdicts, seed=0)
    assert (row["unparsable"], row["n_items"], row["n_samples"]) == (1, 3, 5)
    assert row["correct_share"] == pytest.approx(0.6) and row["lo"] <= row["balanced_accuracy"] <= row["hi"]
    assert ba_ci(np.arange(4), np.array([1, 1, 0, 0], bool), [True, True, False, False], 0) == (1.0, 1.0)
    pattern = r"\\boxed\{\s*(yes|no)\s*\}"
    assert parse_verdict(r"maybe \boxed{no} ... \boxed{ Yes }", pattern, "yes", "no") is True
    assert parse_verdict("looks fine", pattern, "yes", "no") is None
    assert shown_response("<think>plan</think> 42", "outcome") == "42"
    assert shown_response("<think>plan</think> 42", "process") == "<think>plan</think> 42"
