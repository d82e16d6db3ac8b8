"""The report's statistics, with numpy and scipy: bootstrap CIs over items (stratified by benchmark for averages),
paired differences with a bootstrap CI and a sign-flip permutation test, Holm's correction, and the unbiased
pass@k' for every k' <= k. Every resampling uses a fixed seed, so a report is reproducible."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

LEVEL = 0.95
N_BOOT = 2000
N_PERM = 9999


def _mean_of_means(*samples, axis=-1):
    return np.mean([np.mean(s, axis=axis) for s in samples], axis=0)


def mean_ci(strata: list, level: float = LEVEL, n_resamples: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of per-item values, or of the mean over strata (benchmarks) of their
    means: items are resampled within each stratum. An item enters as one value (e.g. its mean over k samples,
    or a paired difference), so its k samples stay together."""
    strata = [np.asarray(s, dtype=float) for s in strata]
    point = float(_mean_of_means(*strata)) if strata and all(len(s) for s in strata) else math.nan
    if math.isnan(point):
        return math.nan, math.nan
    if all(len(s) < 2 or np.ptp(s) == 0 for s in strata):
        return point, point  # nothing varies: the resampled mean is the mean
    res = stats.bootstrap(tuple(strata), _mean_of_means, n_resamples=n_resamples, confidence_level=level,
                          method="percentile", vectorized=True, paired=False, rng=seed)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def standard_error(strata: list) -> float:
    """SE of the mean over strata of per-stratum means (independent strata): sqrt(sum SE_s^2) / S."""
    strata = [np.asarray(s, dtype=float) for s in strata]
    if not strata or any(len(s) < 2 for s in strata):
        return math.nan
    return math.sqrt(sum(np.var(s, ddof=1) / len(s) for s in strata)) / len(strata)


def sign_flip_p(strata: list, n_resamples: int = N_PERM, seed: int = 0) -> float:
    """Two-sided p-value of the paired sign-flip permutation test that the mean over strata of the mean paired
    difference is 0: scipy's ``permutation_test`` (paired samples: each item's difference keeps or flips its
    sign) gives the null distribution. Each difference is weighted by 1 / (strata x its stratum's items), so
    flipping signs item by item tests the mean of the strata means. Avg@k differences lie on a grid, so the
    statistic ties often; ties count half (mid-p), which keeps p-values near uniform under the null instead
    of piling them up near 1."""
    strata = [np.asarray(s, dtype=float) for s in strata]
    if not strata or not all(len(s) for s in strata):
        return math.nan
    weighted = np.concatenate([s / (len(strata) * len(s)) for s in strata]) * sum(len(s) for s in strata)
    if not np.any(weighted):
        return 1.0
    res = stats.permutation_test((weighted,), np.mean, permutation_type="samples", vectorized=True,
                                 n_resamples=n_resamples, alternative="two-sided", rng=seed)
    observed, null = abs(res.statistic), np.abs(res.null_distribution)
    tol = 1e-9 * max(observed, np.abs(weighted).max())
    above, ties = np.sum(null > observed + tol), np.sum(np.abs(null - observed) <= tol)
    exact = len(null) == 2 ** len(weighted)  # scipy enumerated every sign pattern, the observed one included
    if exact:
        return float((above + 0.5 * ties) / len(null))
    return float((above + 0.5 * (ties + 1)) / (len(null) + 1))


@dataclass(frozen=True)
class Paired:
    n: int
    diff: float
    lo: float
    hi: float
    se: float
    p: float


def paired(a_strata: list, b_strata: list, seed: int = 0) -> Paired:
    """Model a minus model b on the same items (aligned arrays per stratum): the mean difference, its
    bootstrap CI and SE, and the sign-flip p-value."""
    diffs = [np.asarray(a, dtype=float) - np.asarray(b, dtype=float) for a, b in zip(a_strata, b_strata)]
    lo, hi = mean_ci(diffs, seed=seed)
    point = float(_mean_of_means(*diffs)) if diffs and all(len(d) for d in diffs) else math.nan
    return Paired(sum(len(d) for d in diffs), point, lo, hi, standard_error(diffs), sign_flip_p(diffs, seed=seed))


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment over one family of tests (NaNs are left out of the family and kept)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if not len(ok):
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def pass_at(correct, n: int, k: int) -> float:
    """Unbiased pass@k from n samples per item with ``correct`` of them right (Chen et al. 2021): the mean over
    items of 1 - C(n - c, k) / C(n, k)."""
    c = np.asarray(correct, dtype=float)
    if k > n or not len(c):
        return math.nan
    return float(np.mean(1.0 - special.comb(n - c, k) / special.comb(n, k)))


def pass_curve(correct, n: int) -> dict[int, float]:
    """pass@k' for every k' = 1..n."""
    return {k: pass_at(correct, n, k) for k in range(1, n + 1)}
