"""KL cross-matrix and policy neighbourhoods (study §6.2, Figure 4).

For each expert E_B and each benchmark of domain A, the Monte-Carlo estimate of ``KL(π_EB ‖ π_mixed)`` on
responses sampled from E_B on A's prompts: the mean over E_B's samples of ``log π_EB(ŷ|x) - log π_mixed(ŷ|x)``,
per sequence and per token (the sequence sum over the mean response length). The samples are E_B's own eval
generations (``results/eval/rl-B/<benchmark>.jsonl``): nothing is generated again, both models only score them.
Beside each cell ``ΔPerf = rl-mixed - E_B`` on that benchmark (paired, on the same items); on the diagonal
(B = A) that is the study's ``rl-mixed - E_A``. B is a neighbour of A when its KL is below ``ε_A``, set from
``KL(π_EA ‖ π_mixed)`` on A by the configured rule. Pearson's r between KL and ΔPerf over the cells, with its
Fisher-z CI.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from mixmerge.report import stats

LEVELS = ("sequence", "token")


def mc_kl(log_p: np.ndarray, log_q: np.ndarray, tokens: np.ndarray) -> tuple[float, float]:
    """(per-sequence, per-token) Monte-Carlo KL(p ‖ q) from samples of p: the mean log-ratio of the sequences, and
    that over the mean number of tokens per sequence."""
    ratio = np.asarray(log_p, dtype=float) - np.asarray(log_q, dtype=float)
    per_seq = float(ratio.mean()) if len(ratio) else math.nan
    mean_tokens = float(np.mean(tokens)) if len(tokens) else math.nan
    return per_seq, per_seq / mean_tokens if mean_tokens > 0 else math.nan


def kl_ci(item_of: np.ndarray, log_p: np.ndarray, log_q: np.ndarray, tokens: np.ndarray, seed: int,
          n_resamples: int = stats.N_BOOT, level: float = stats.LEVEL) -> dict[str, float]:
    """Both estimates with percentile bootstrap CIs over items (an item's samples resampled together)."""
    items = np.unique(item_of)
    ratio = np.asarray(log_p, dtype=float) - np.asarray(log_q, dtype=float)
    per_item = np.array([ratio[item_of == i].sum() for i in items])
    count = np.array([(item_of == i).sum() for i in items])
    toks = np.array([np.asarray(tokens)[item_of == i].sum() for i in items])
    picks = np.random.default_rng(seed).integers(0, len(items), size=(n_resamples, len(items)))
    seq = per_item[picks].sum(1) / count[picks].sum(1)
    tok = per_item[picks].sum(1) / toks[picks].sum(1)
    tail = 100 * (1 - level) / 2
    point_seq, point_tok = mc_kl(log_p, log_q, tokens)
    (seq_lo, seq_hi), (tok_lo, tok_hi) = np.percentile(seq, [tail, 100 - tail]), np.percentile(tok, [tail, 100 - tail])
    return {"kl_sequence": point_seq, "kl_sequence_lo": float(seq_lo), "kl_sequence_hi": float(seq_hi),
            "kl_token": point_tok, "kl_token_lo": float(tok_lo), "kl_token_hi": float(tok_hi)}


def epsilon(own_kl: float, rule: str, value: float) -> float:
    """The neighbourhood threshold of domain A from its own expert's KL: ``ratio`` = value x own KL, ``margin`` =
    own KL + value, ``absolute`` = value (own KL unused)."""
    if rule == "ratio":
        return value * own_kl
    if rule == "margin":
        return own_kl + value
    if rule == "absolute":
        return value
    raise ValueError(f"config key 'analysis.kl_neighbourhood.epsilon_rule': unknown rule {rule!r}")


def mark_neighbours(table: pd.DataFrame, level: str, rule: str, value: float) -> pd.DataFrame:
    """Adds ``epsilon`` (per benchmark, from the row whose expert is the benchmark's own) and ``neighbour``."""
    column = f"kl_{level}"
    own = table[table["expert"] == "rl-" + table["domain"]].set_index("benchmark")[column]
    out = table.copy()
    out["epsilon"] = [epsilon(own.get(b, math.nan), rule, value) for b in out["benchmark"]]
    out["neighbour"] = out[column] < out["epsilon"]
    return out


def correlation(kl: np.ndarray, delta: np.ndarray, level: float = stats.LEVEL) -> dict[str, float]:
    """Pearson's r between KL and ΔPerf over the cells, its two-sided p and Fisher-z CI (NaN below 4 cells)."""
    kl, delta = np.asarray(kl, dtype=float), np.asarray(delta, dtype=float)
    keep = np.isfinite(kl) & np.isfinite(delta)
    n = int(keep.sum())
    if n < 4 or np.ptp(kl[keep]) == 0 or np.ptp(delta[keep]) == 0:
        return {"n": n, "r": math.nan, "lo": math.nan, "hi": math.nan, "p": math.nan}
    res = sps.pearsonr(kl[keep], delta[keep])
    ci = res.confidence_interval(confidence_level=level)
    return {"n": n, "r": float(res.statistic), "lo": float(ci.low), "hi": float(ci.high), "p": float(res.pvalue)}
