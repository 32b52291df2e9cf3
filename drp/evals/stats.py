"""The statistics reviewers ask for: spread over seeds, bootstrap CIs over problems, paired tests.

Thin wrappers over SciPy that also handle the degenerate cases a small eval produces (one seed, all problems
equal, no discordant pairs) with the textbook answer instead of a NaN or an exception.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value)."""
    values = [float(v) for v in values]
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def bootstrap_ci(
    values: Sequence[float], confidence: float = 0.95, n_resamples: int = 5000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean, resampling problems (seeded: the same data give the same CI)."""
    import numpy as np
    from scipy.stats import bootstrap

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return math.nan, math.nan
    if data.size < 2 or np.all(data == data[0]):
        return float(data.mean()), float(data.mean())
    result = bootstrap(
        (data,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclass(frozen=True)
class McNemar:
    only_a: int  # problems A gets right and B wrong
    only_b: int  # problems B gets right and A wrong
    pvalue: float


def mcnemar_exact(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> McNemar:
    """Exact (binomial) McNemar test on paired outcomes: two-sided binomial test on the discordant pairs."""
    from scipy.stats import binomtest

    if len(a_correct) != len(b_correct):
        raise ValueError("McNemar needs paired outcomes of equal length")
    only_a = sum(1 for a, b in zip(a_correct, b_correct) if a and not b)
    only_b = sum(1 for a, b in zip(a_correct, b_correct) if b and not a)
    discordant = only_a + only_b
    pvalue = 1.0 if discordant == 0 else float(binomtest(only_a, discordant, 0.5).pvalue)
    return McNemar(only_a, only_b, pvalue)


@dataclass(frozen=True)
class Wilcoxon:
    statistic: float
    pvalue: float
    n_nonzero: int  # pairs with a difference (zero differences carry no information here)


def wilcoxon_signed_rank(x: Sequence[float], y: Sequence[float]) -> Wilcoxon:
    """Two-sided Wilcoxon signed-rank test on paired values (SciPy; zero differences dropped)."""
    from scipy.stats import wilcoxon

    if len(x) != len(y):
        raise ValueError("Wilcoxon needs paired values of equal length")
    nonzero = sum(1 for a, b in zip(x, y) if a != b)
    if nonzero == 0:
        return Wilcoxon(0.0, 1.0, 0)
    result = wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
    return Wilcoxon(float(result.statistic), float(result.pvalue), nonzero)


def standard_error(values: Sequence[float]) -> float:
    """Standard error of the mean: sample sd / √n (0.0 for a single value, NaN for none)."""
    _, sd = mean_std(values)
    return sd / math.sqrt(len(values)) if values else math.nan


def summary(values: Sequence[float]) -> dict:
    """A per-problem score over problems: its mean, standard error and 95% bootstrap CI."""
    mean, _ = mean_std(values)
    return {"value": mean, "se": standard_error(values), "ci95": list(bootstrap_ci(values))}


def distribution(values: Sequence[float]) -> dict:
    """Mean, median and 90th percentile (linear interpolation, NumPy's default); None for no values."""
    import numpy as np

    if not values:
        return {"mean": None, "median": None, "p90": None}
    data = np.asarray(values, dtype=float)
    return {"mean": float(data.mean()), "median": float(np.median(data)), "p90": float(np.percentile(data, 90))}


@dataclass(frozen=True)
class SignFlip:
    mean_difference: float  # mean of y - x over the pairs
    pvalue: float
    exact: bool  # every sign assignment enumerated (2^n within the resample budget)


def sign_flip_test(x: Sequence[float], y: Sequence[float], n_resamples: int = 10000, seed: int = 0) -> SignFlip:
    """Two-sided paired permutation test on the mean difference: under the null each pair's difference is as
    likely to have either sign (SciPy's permutation_test, exact when 2^n ≤ n_resamples)."""
    import numpy as np
    from scipy.stats import permutation_test

    if len(x) != len(y):
        raise ValueError("a sign-flip test needs paired values of equal length")
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    difference = float((b - a).mean()) if a.size else math.nan
    if a.size == 0 or np.all(a == b):
        return SignFlip(difference, 1.0, True)
    result = permutation_test(
        (b, a),
        lambda u, v, axis: np.mean(u - v, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return SignFlip(difference, float(result.pvalue), 2**a.size <= n_resamples)
