"""Statistics against values computed by hand (exact binomial and signed-rank distributions)."""

import math

import pytest

from drp.evals.stats import bootstrap_ci, mcnemar_exact, mean_std, wilcoxon_signed_rank


def test_mean_and_sample_sd():
    mean, sd = mean_std([0.5, 0.7, 0.9])
    assert mean == pytest.approx(0.7)
    assert sd == pytest.approx(0.2)  # sqrt((0.04 + 0 + 0.04) / 2)
    assert mean_std([0.42]) == (0.42, 0.0)
    assert all(math.isnan(v) for v in mean_std([]))


def test_mcnemar_exact_matches_the_binomial_by_hand():
    # 10 concordant problems, 1 only A solves, 6 only B solves.
    a = [True] * 5 + [False] * 5 + [True] + [False] * 6
    b = [True] * 5 + [False] * 5 + [False] + [True] * 6
    result = mcnemar_exact(a, b)
    assert (result.only_a, result.only_b) == (1, 6)
    # Two-sided exact: 2 * P(X <= 1), X ~ Bin(7, 1/2) = 2 * (1 + 7) / 128.
    assert result.pvalue == pytest.approx(16 / 128)
    assert mcnemar_exact(b, a).pvalue == pytest.approx(16 / 128)


def test_mcnemar_without_discordant_pairs_is_not_significant():
    result = mcnemar_exact([True, False, True], [True, False, True])
    assert (result.only_a, result.only_b, result.pvalue) == (0, 0, 1.0)
    with pytest.raises(ValueError):
        mcnemar_exact([True], [True, False])


def test_wilcoxon_all_one_direction():
    # Differences 1..5, all positive: W- = 0; exact two-sided p = 2 / 2**5.
    result = wilcoxon_signed_rank([11, 12, 13, 14, 15], [10, 10, 10, 10, 10])
    assert result.statistic == 0
    assert result.pvalue == pytest.approx(2 / 32)
    assert result.n_nonzero == 5


def test_wilcoxon_mixed_signs_by_hand():
    # Differences -1, 2, 3, 4, 5, 6 → ranks 1..6, W- = 1. Subsets of ranks summing to <= 1: {} and {1},
    # so the exact two-sided p = 2 * 2 / 64.
    x = [9, 12, 13, 14, 15, 16]
    y = [10] * 6
    result = wilcoxon_signed_rank(x, y)
    assert result.statistic == 1
    assert result.pvalue == pytest.approx(4 / 64)


def test_wilcoxon_identical_runs():
    assert wilcoxon_signed_rank([3, 4], [3, 4]).pvalue == 1.0


def test_bootstrap_ci_covers_a_proportion_like_the_normal_approximation():
    values = [1.0] * 200 + [0.0] * 200
    low, high = bootstrap_ci(values)
    half_width = 1.96 * math.sqrt(0.25 / 400)  # 0.049
    assert low == pytest.approx(0.5 - half_width, abs=0.01)
    assert high == pytest.approx(0.5 + half_width, abs=0.01)
    assert bootstrap_ci(values) == (low, high)  # seeded: same data, same interval


def test_bootstrap_ci_degenerate_cases():
    assert bootstrap_ci([0.0, 0.0, 0.0]) == (0.0, 0.0)
    assert bootstrap_ci([7.0]) == (7.0, 7.0)
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_standard_error_and_distribution_by_hand():
    from drp.evals.stats import distribution, standard_error

    assert standard_error([1, 2, 3, 4]) == pytest.approx(math.sqrt(5 / 3) / 2)  # sd² = (2.25+0.25)·2/3
    assert standard_error([0.3]) == 0.0
    assert distribution(list(range(1, 11))) == {"mean": 5.5, "median": 5.5, "p90": pytest.approx(9.1)}
    assert distribution([]) == {"mean": None, "median": None, "p90": None}


def test_sign_flip_all_one_direction_is_exact():
    from drp.evals.stats import sign_flip_test

    result = sign_flip_test([0, 0, 0, 0], [1, 0.5, 1, 0.25])
    assert result.exact and result.mean_difference == pytest.approx(0.6875)
    assert result.pvalue == pytest.approx(2 / 16)  # only all-plus and all-minus are as extreme


def test_sign_flip_matches_enumerating_every_sign():
    import itertools

    from drp.evals.stats import sign_flip_test

    base, other = [0.5, 0.0, 1.0, 0.25, 0.75], [1.0, 1.0, 0.75, 0.5, 0.5]
    diffs = [b - a for a, b in zip(base, other)]
    observed = abs(sum(diffs))
    signs = list(itertools.product((1, -1), repeat=len(diffs)))
    as_extreme = sum(abs(sum(s * d for s, d in zip(flip, diffs))) >= observed - 1e-12 for flip in signs)
    result = sign_flip_test(base, other)
    assert result.pvalue == pytest.approx(as_extreme / len(signs))
    assert sign_flip_test([1, 0], [1, 0]).pvalue == 1.0
