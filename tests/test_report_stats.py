"""The report's statistics on simulated data (seeded): bootstrap CIs cover the true mean, paired p-values are
uniform under the null and small under a shifted alternative, Holm is right, pass@k' matches enumeration."""
import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mixmerge.evaluation.avgk import pass_at_k
from mixmerge.report import stats

K = 4
ITEMS = 60
BETA = (1.2, 1.8)  # item difficulty ~ Beta(1.2, 1.8): true mean 0.4


def avg_at_k(rng, p):
    """Per-item avg@k: k Bernoulli samples of each item's success probability, the item's samples together."""
    return rng.binomial(K, p) / K


def test_bootstrap_ci_covers_the_true_mean():
    rng = np.random.default_rng(20261203)
    truth = BETA[0] / sum(BETA)
    covered = 0
    for i in range(200):
        lo, hi = stats.mean_ci([avg_at_k(rng, rng.beta(*BETA, size=ITEMS))], seed=i)
        covered += lo <= truth <= hi
    assert covered / 200 >= 0.90, covered


def test_stratified_ci_covers_the_mean_of_benchmark_means():
    rng = np.random.default_rng(7)
    truth = (0.4 + 0.7) / 2
    covered = 0
    for i in range(200):
        strata = [avg_at_k(rng, rng.beta(1.2, 1.8, size=40)), avg_at_k(rng, rng.beta(3.5, 1.5, size=80))]
        lo, hi = stats.mean_ci(strata, seed=i)
        covered += lo <= truth <= hi
    assert covered / 200 >= 0.90, covered


def null_and_shifted(shift, n_sets, seed):
    """p-values of the paired test for model a vs model b on the same items, b = a's difficulty + shift."""
    rng = np.random.default_rng(seed)
    pvalues = []
    for i in range(n_sets):
        p = rng.beta(*BETA, size=ITEMS)
        a, b = avg_at_k(rng, p), avg_at_k(rng, np.clip(p + shift, 0, 1))
        pvalues.append(stats.sign_flip_p([b - a], n_resamples=2000, seed=i))
    return np.array(pvalues)


def test_paired_p_values_are_uniform_under_the_null():
    pvalues = null_and_shifted(0.0, 200, seed=11)
    assert scipy_stats.kstest(pvalues, "uniform").pvalue > 0.01
    assert 0.02 <= np.mean(pvalues < 0.05) <= 0.09   # size close to the nominal 5%


def test_paired_p_values_are_small_under_a_shift():
    pvalues = null_and_shifted(0.15, 50, seed=12)
    assert np.median(pvalues) < 0.01 and np.mean(pvalues < 0.05) >= 0.9


def test_pairing_uses_the_same_items():
    """Two models that differ by a little on every item: paired, clearly different; the unpaired spread of
    either model alone is far wider than the paired CI."""
    rng = np.random.default_rng(3)
    a = rng.random(100)
    res = stats.paired([a + 0.02], [a])
    assert res.diff == pytest.approx(0.02) and res.lo == pytest.approx(0.02) and res.p < 0.001
    assert res.n == 100 and res.se == pytest.approx(0.0, abs=1e-12)


def test_sign_flip_matches_exhaustive_enumeration():
    d = np.array([0.5, -0.25, 0.75, 1.0, 0.25, 0.0, 0.5])
    flips = np.array(list(itertools.product([-1, 1], repeat=len(d))))
    null = np.abs((flips * d).mean(axis=1))
    observed = abs(d.mean())
    tol = 1e-12
    expected = (np.sum(null > observed + tol) + 0.5 * np.sum(np.abs(null - observed) <= tol)) / len(null)
    assert stats.sign_flip_p([d]) == pytest.approx(expected)
    assert stats.sign_flip_p([np.zeros(5)]) == 1.0


def test_holm_step_down():
    adjusted = stats.holm([0.01, 0.04, 0.03, np.nan, 0.005])
    assert np.allclose(adjusted[[4, 0, 2, 1]], [0.02, 0.03, 0.06, 0.06])  # 4p, 3p, 2p, then monotone
    assert math.isnan(adjusted[3])
    assert stats.holm([0.6, 0.9]).tolist() == [1.0, 1.0]


def brute_force_pass(samples: list[list[int]], k: int) -> float:
    """Mean over items of the share of k-subsets of an item's samples holding a correct one."""
    shares = []
    for item in samples:
        subsets = list(itertools.combinations(range(len(item)), k))
        shares.append(sum(any(item[i] for i in s) for s in subsets) / len(subsets))
    return sum(shares) / len(shares)


def test_pass_at_k_matches_enumeration_for_every_k():
    rng = np.random.default_rng(5)
    samples = [list(rng.integers(0, 2, size=6)) for _ in range(12)] + [[0] * 6, [1] * 6]
    correct = [sum(s) for s in samples]
    curve = stats.pass_curve(correct, 6)
    assert list(curve) == [1, 2, 3, 4, 5, 6]
    for k, value in curve.items():
        assert value == pytest.approx(brute_force_pass(samples, k))
        assert value == pytest.approx(np.mean([pass_at_k(6, c, k) for c in correct]))
    assert curve[1] == pytest.approx(np.mean(correct) / 6)
    assert math.isnan(stats.pass_at(correct, 6, 7))


def test_degenerate_cells():
    assert stats.mean_ci([np.zeros(10)]) == (0.0, 0.0)
    assert all(math.isnan(x) for x in stats.mean_ci([np.array([])]))
    assert math.isnan(stats.standard_error([np.array([1.0])]))
