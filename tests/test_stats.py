"""Tests for analysis.core.stats, each against an independent computation.

statsmodels and lifelines are test-only references; hand-worked formulas use
the standard library only.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from statistics import NormalDist

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import binom_test, proportion_confint

from analysis.core import binomial, survival
from analysis.core import stats as S

TIGHT = dict(rel=1e-9, abs=1e-12)


def approx(x):
    return pytest.approx(x, **TIGHT)


# --------------------------------------------------------------------------
# proportion

GRID = [(0, 1), (1, 1), (0, 11), (1, 11), (5, 11), (10, 11), (11, 11),
        (0, 1000), (1, 1000), (437, 1000), (999, 1000), (1000, 1000), (7, 10)]


@pytest.mark.parametrize("k,n", GRID)
@pytest.mark.parametrize("method,sm_method", [("wilson", "wilson"), ("exact", "beta")])
def test_proportion_matches_statsmodels(k, n, method, sm_method):
    res = S.proportion(k, n, method=method)
    lo, hi = proportion_confint(k, n, alpha=0.05, method=sm_method)
    assert res.rate == approx(k / n)
    assert res.ci_low == pytest.approx(lo, rel=1e-8, abs=1e-10)
    assert res.ci_high == pytest.approx(hi, rel=1e-8, abs=1e-10)
    assert (res.responders, res.n, res.method) == (k, n, method)
    assert 0.0 <= res.ci_low <= res.rate <= res.ci_high <= 1.0


# n = 0, k = 0, k = n and n up to 20,000: the intervals are plain Python
# (analysis.core.binomial, issue 20), checked against two independent
# implementations, statsmodels' (beta quantiles) and scipy's binomtest (root search).
WIDE_GRID = [(k, n) for n in (0, 1, 2, 3, 10, 11, 40, 97, 500, 2_000, 20_000)
             for k in sorted({0, 1, 2, n // 3, n // 2, (7 * n) // 10, n - 2, n - 1, n})
             if 0 <= k <= n]


@pytest.mark.parametrize("method,sm_method", [("wilson", "wilson"), ("exact", "beta")])
def test_proportion_wide_grid_matches_statsmodels_and_binomtest(method, sm_method):
    worst = 0.0
    for k, n in WIDE_GRID:
        res = S.proportion(k, n, method=method)
        if n == 0:
            assert (res.rate, res.ci_low, res.ci_high) == (None, None, None)
            continue
        lo, hi = proportion_confint(k, n, alpha=0.05, method=sm_method)
        ci = scipy.stats.binomtest(k, n).proportion_ci(0.95, method=method)
        worst = max(worst, abs(res.ci_low - lo), abs(res.ci_high - hi),
                    abs(res.ci_low - ci.low), abs(res.ci_high - ci.high))
        assert res.rate == k / n
        assert 0.0 <= res.ci_low <= res.rate <= res.ci_high <= 1.0
        assert (res.ci_low == 0.0) == (k == 0) and (res.ci_high == 1.0) == (k == n)
    assert worst < 1e-12, worst


@pytest.mark.parametrize("method", ["wilson", "exact"])
def test_intervals_are_proportion_cell_by_cell(method):
    ks = [k for k, _ in WIDE_GRID]
    ns = [n for _, n in WIDE_GRID]
    rate, low, high = S.intervals(np.array(ks), np.array(ns), method)
    for i, (k, n) in enumerate(WIDE_GRID):
        p = S.proportion(k, n, method)
        if n == 0:
            assert math.isnan(rate[i]) and math.isnan(low[i]) and math.isnan(high[i])
        else:
            assert (rate[i], low[i], high[i]) == (p.rate, p.ci_low, p.ci_high)


@pytest.mark.parametrize("method", ["wilson", "exact"])
def test_intervals_of_a_missing_count_are_nan(method):
    rate, low, high = S.intervals([3.0, np.nan, 2.0], [10.0, 5.0, np.nan], method)
    assert rate[0] == 0.3 and low[0] < 0.3 < high[0]
    assert all(math.isnan(a[i]) for a in (rate, low, high) for i in (1, 2))


def test_binomial_tails_match_scipy():
    """analysis.core.binomial's pmf and P(X >= k) against scipy.stats.binom,
    both tails, small and large n."""
    worst = 0.0
    for k, n in WIDE_GRID:
        for p in (0.001, 0.05, 0.3, 0.5, 0.7, 0.95, 0.999):
            for ours, theirs in ((binomial.pmf(k, n, p), scipy.stats.binom.pmf(k, n, p)),
                                 (binomial.sf(k, n, p), scipy.stats.binom.sf(k - 1, n, p))):
                assert ours == pytest.approx(theirs, rel=1e-11, abs=1e-300), (k, n, p)
                worst = max(worst, abs(ours - theirs))
    assert worst < 1e-13, worst


def test_exact_bounds_are_the_roots_in_exact_arithmetic():
    """Each exact bound solves its tail equation, checked with exact
    rational arithmetic (no floating point in the check): the true root
    lies within 8 units in the last place of the bound (scipy's betaincinv:
    up to 28 there), n up to 30."""
    from fractions import Fraction

    def upper_tail(k, n, p):       # P(X >= k | p), exactly
        p = Fraction(p)
        return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))

    alpha = 0.025
    exact_alpha = Fraction(alpha)
    for n in range(1, 31):
        for k in range(n + 1):
            low = binomial.lower_bound(k, n, alpha)
            high = binomial.upper_bound(k, n, alpha)
            if k > 0:
                step = 8 * math.ulp(low)
                assert upper_tail(k, n, low - step) < exact_alpha < upper_tail(k, n, low + step)
            if k < n:               # P(X <= k | p) = 1 - P(X >= k + 1 | p)
                step = 8 * math.ulp(high)
                assert (1 - upper_tail(k + 1, n, high + step) < exact_alpha
                        < 1 - upper_tail(k + 1, n, high - step)), (k, n)


def test_proportion_other_confidence_matches_statsmodels():
    res = S.proportion(30, 50, confidence=0.90)
    lo, hi = proportion_confint(30, 50, alpha=0.10, method="wilson")
    assert (res.ci_low, res.ci_high) == (approx(lo), approx(hi))


def test_wilson_hand_worked_7_of_10():
    k, n = 7, 10
    z = NormalDist().inv_cdf(0.975)  # 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    res = S.proportion(7, 10)
    assert res.ci_low == approx(centre - half)
    assert res.ci_high == approx(centre + half)
    # Rounded values as printed in textbooks: 0.3968 to 0.8922.
    assert (round(res.ci_low, 4), round(res.ci_high, 4)) == (0.3968, 0.8922)


def test_clopper_pearson_hand_worked_boundaries():
    # k = 0: upper = 1 - (alpha/2)^(1/n); k = n: lower = (alpha/2)^(1/n).
    assert S.proportion(0, 11, method="exact").ci_high == approx(1 - 0.025 ** (1 / 11))
    assert S.proportion(0, 11, method="exact").ci_low == 0.0
    assert S.proportion(11, 11, method="exact").ci_low == approx(0.025 ** (1 / 11))
    assert S.proportion(11, 11, method="exact").ci_high == 1.0


def test_proportion_n_zero_is_none():
    for method in ("wilson", "exact"):
        res = S.proportion(0, 0, method=method)
        assert res == S.Proportion(0, 0, None, None, None, method)


@pytest.mark.parametrize("args,kwargs", [
    ((-1, 10), {}), ((11, 10), {}), ((1, -1), {}), ((1.5, 10), {}),
    ((True, 10), {}), (("3", 10), {}), ((3, 10), {"method": "clopper"}),
    ((3, 10), {"confidence": 1.0}), ((3, 10), {"confidence": 0.0}),
])
def test_proportion_bad_input_raises(args, kwargs):
    with pytest.raises(ValueError):
        S.proportion(*args, **kwargs)


def test_proportion_accepts_numpy_ints_and_whole_floats():
    assert S.proportion(np.int64(3), np.int32(10)).rate == approx(0.3)
    assert S.proportion(3.0, 10.0).rate == approx(0.3)


def test_results_are_frozen():
    res = S.proportion(3, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.rate = 0.5  # type: ignore[misc]


# --------------------------------------------------------------------------
# claim_test

@pytest.mark.parametrize("k,n,verdict", [
    (850, 1000, "supported"),
    (550, 1000, "contradicted"),
    (8, 10, "inconclusive"),
    (10, 10, "supported"),        # one-sided lower bound 0.05^(1/10) = 0.741 > 0.70
    (9, 10, "inconclusive"),
    (0, 10, "contradicted"),
    (30, 30, "supported"),
])
def test_claim_test_verdicts_against_statsmodels(k, n, verdict):
    res = S.claim_test(k, n)
    # Independent one-sided bounds: two-sided 90% Clopper-Pearson.
    lo, hi = proportion_confint(k, n, alpha=0.10, method="beta")
    assert res.lower_bound == pytest.approx(lo, rel=1e-8, abs=1e-10)
    assert res.upper_bound == pytest.approx(hi, rel=1e-8, abs=1e-10)
    assert res.p_value == approx(binom_test(k, n, 0.70, alternative="larger"))
    assert res.p_value == approx(scipy.stats.binom.sf(k - 1, n, 0.70))
    expected = "supported" if lo > 0.70 else "contradicted" if hi < 0.70 else "inconclusive"
    assert res.verdict == expected == verdict
    assert (res.n, res.responders, res.target) == (n, k, 0.70)
    assert res.rate == approx(k / n)


def test_claim_test_hand_worked_bounds():
    # k = n: one-sided lower bound alpha^(1/n); k = 0: upper 1 - alpha^(1/n).
    assert S.claim_test(5, 5).lower_bound == approx(0.05 ** (1 / 5))
    assert S.claim_test(5, 5).upper_bound == 1.0
    assert S.claim_test(0, 5).upper_bound == approx(1 - 0.05 ** (1 / 5))
    assert S.claim_test(0, 5).lower_bound == 0.0


def test_claim_test_no_data():
    res = S.claim_test(0, 0)
    assert res == S.ClaimTest("no data", 0, 0, None, None, None, None, 0.70)


def test_claim_test_edge_is_inconclusive():
    # The bounds do not depend on the target, so aim the target exactly at a
    # bound: the comparisons are strict, so the verdict is "inconclusive".
    ref = S.claim_test(85, 100)
    at_lower = S.claim_test(85, 100, target=ref.lower_bound)
    assert at_lower.lower_bound == at_lower.target
    assert at_lower.verdict == "inconclusive"
    at_upper = S.claim_test(85, 100, target=ref.upper_bound)
    assert at_upper.upper_bound == at_upper.target
    assert at_upper.verdict == "inconclusive"
    # A hair inside/outside flips it.
    assert S.claim_test(85, 100, target=ref.lower_bound - 1e-9).verdict == "supported"
    assert S.claim_test(85, 100, target=ref.upper_bound + 1e-9).verdict == "contradicted"


def test_claim_supported_iff_p_below_alpha():
    # Duality of the exact test and the Clopper-Pearson bound.
    for n in (1, 5, 11, 40, 97):
        for k in range(n + 1):
            for target in (0.5, 0.7):
                res = S.claim_test(k, n, target=target)
                assert (res.verdict == "supported") == (res.p_value < 0.05), (k, n, target)


def test_claim_test_other_confidence():
    res = S.claim_test(80, 100, confidence=0.99)
    lo, hi = proportion_confint(80, 100, alpha=0.02, method="beta")
    assert (res.lower_bound, res.upper_bound) == (approx(lo), approx(hi))


def test_claim_test_bad_input():
    for args in ((11, 10), (-1, 10)):
        with pytest.raises(ValueError):
            S.claim_test(*args)
    with pytest.raises(ValueError):
        S.claim_test(5, 10, target=1.5)


# --------------------------------------------------------------------------
# median_change

# Hollander & Wolfe (1973) p.29, Hamilton depression scale, first visit x and
# second visit y (the example in R's ?wilcox.test).
HW_X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
HW_Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]


def _exact_signed_rank_two_sided(d):
    """Enumerate all 2^m sign patterns over the non-zero |d| midranks."""
    d = [v for v in d if v != 0]
    ranks = scipy.stats.rankdata(np.abs(d))  # midranks for ties
    t_obs = sum(r for r, v in zip(ranks, d) if v > 0)
    sums = [sum(r for r, s in zip(ranks, signs) if s)
            for signs in itertools.product((0, 1), repeat=len(d))]
    ge = sum(s >= t_obs - 1e-9 for s in sums) / len(sums)
    le = sum(s <= t_obs + 1e-9 for s in sums) / len(sums)
    return min(1.0, 2 * min(ge, le))


def test_median_change_textbook_wilcoxon():
    changes = [y - x for x, y in zip(HW_X, HW_Y)]
    res = S.median_change(changes)
    # T+ of x - y is 40 of a possible 45: 10 of the 512 sign patterns reach
    # it, so the exact two-sided p is 20/512 (R: V = 40, p = 0.03906).
    assert res.wilcoxon_p == approx(20 / 512)
    assert res.wilcoxon_p == approx(_exact_signed_rank_two_sided(changes))
    assert res.n == 9
    assert res.median == approx(float(np.median(changes)))


def test_median_change_ties_and_zeros_exhaustive():
    # Ties and zeros (n <= 13): scipy runs an exhaustive permutation test.
    changes = [-3, -2, -2, 0, -1, -4, 1, -2, 0, -3, -5, 2]
    res = S.median_change(changes)
    assert res.wilcoxon_p == approx(_exact_signed_rank_two_sided(changes))
    assert res.median == approx(-2.0)


def test_median_change_large_sample_normal_approximation():
    rng = np.random.default_rng(7)
    changes = rng.normal(-0.4, 1.0, size=80)
    res = S.median_change(changes)
    n = len(changes)
    ranks = scipy.stats.rankdata(np.abs(changes))
    t_plus = ranks[changes > 0].sum()
    z = (t_plus - n * (n + 1) / 4) / math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    assert res.wilcoxon_p == pytest.approx(2 * NormalDist().cdf(-abs(z)), rel=1e-9)
    assert res.median == approx(float(np.median(changes)))


@pytest.mark.parametrize("n, ranks", [(5, None), (6, (1, 6)), (9, (2, 8)), (20, (6, 15)),
                                      (100, (40, 61))])
def test_median_ranks_by_hand(n, ranks):
    # P(B <= l - 1) <= 2.5% for B ~ Bin(n, 1/2), l as large as possible:
    #   n = 5: P(B = 0) = 1/32 = 3.1% > 2.5%: no 95% interval
    #   n = 6: P(B = 0) = 1/64 = 1.6%, P(B <= 1) = 7/64 = 10.9%: l = 1
    #   n = 9: P(B <= 1) = 10/512 = 2.0%, P(B <= 2) = 46/512 = 9.0%: l = 2
    #   n = 20: P(B <= 5) = 21,700/1,048,576 = 2.07%, P(B <= 6) = 5.8%: l = 6
    #   n = 100: the textbook (40, 61) (e.g. Conover, Practical Nonparametric Statistics)
    assert S.median_ranks(n) == ranks
    if ranks:
        l, u = ranks
        assert scipy.stats.binom.cdf(l - 1, n, 0.5) <= 0.025 < scipy.stats.binom.cdf(l, n, 0.5)
        assert u == n + 1 - l


def test_median_change_ci_is_the_order_statistic_interval():
    changes = [y - x for x, y in zip(HW_X, HW_Y)]      # n = 9: ranks 2 and 8
    res = S.median_change(changes)
    ordered = sorted(changes)
    assert (res.ci_low, res.ci_high) == (ordered[1], ordered[7])
    assert res.ci_low <= res.median <= res.ci_high


@pytest.mark.parametrize("seed", range(4))
def test_median_change_ci_matches_scipy_quantile_test_on_whole_and_half_points(seed):
    # An independent implementation: scipy's quantile test inverts the sign
    # test into the same exact interval, ties and all.
    rng = np.random.default_rng(seed)
    for n in (6, 7, 13, 40, 41, 150, 999):
        changes = np.round(rng.normal(-2.0, 2.0, size=n) * 2) / 2   # whole and half points
        res = S.median_change(changes)
        ci = scipy.stats.quantile_test(changes, q=0, p=0.5).confidence_interval(0.95)
        assert (res.ci_low, res.ci_high) == (float(ci.low), float(ci.high))


def test_median_change_ci_inverts_statsmodels_sign_test():
    # On continuous data the interval is the set of m the two-sided exact
    # sign test does not reject at 5%: just inside either end p > 0.05, just
    # outside p <= 0.05 (statsmodels' sign test, a second method).
    from statsmodels.stats.descriptivestats import sign_test
    changes = np.random.default_rng(12).normal(-1.0, 1.5, size=57)
    res = S.median_change(changes)
    eps = 1e-9
    assert sign_test(changes, res.ci_low + eps)[1] > 0.05
    assert sign_test(changes, res.ci_high - eps)[1] > 0.05
    assert sign_test(changes, res.ci_low - eps)[1] <= 0.05
    assert sign_test(changes, res.ci_high + eps)[1] <= 0.05


def test_median_change_ci_covers_on_discrete_scores():
    # Whole- and half-point changes (a discrete distribution whose median is
    # -2.0, with a lot of mass on it): the interval covers the median in at
    # least 95% of samples, where a collapsing percentile bootstrap did not
    # promise to.  Deterministic: a fixed generator.
    values = np.array([-5, -4, -3, -2.5, -2, -2, -2, -1.5, -1, 0, 1])
    rng = np.random.default_rng(2024)
    assert np.median(values) == -2.0
    for n in (20, 40, 120):   # (n <= 13 with ties: scipy's slow exhaustive Wilcoxon)
        covered = 0
        for _ in range(1000):
            res = S.median_change(rng.choice(values, size=n))
            covered += res.ci_low <= -2.0 <= res.ci_high
        assert covered >= 950, (n, covered)


def test_median_change_is_deterministic():
    changes = np.round(np.random.default_rng(11).normal(-2.0, 1.5, size=60), 1)
    assert S.median_change(changes) == S.median_change(list(changes)[::-1])


def test_median_change_edge_cases():
    assert S.median_change([]) == S.PairedChange(0, None, None, None, None)
    one = S.median_change([-2.5])
    assert (one.n, one.median, one.ci_low, one.ci_high) == (1, -2.5, None, None)
    assert one.wilcoxon_p == 1.0
    zeros = S.median_change([0.0] * 6)
    assert zeros.median == 0.0 and zeros.wilcoxon_p is None
    assert (zeros.ci_low, zeros.ci_high) == (0.0, 0.0)          # every change is 0
    five = S.median_change([-1.0, -2.0, -3.0, -2.0, 0.0])
    assert five.median == -2.0 and (five.ci_low, five.ci_high) == (None, None)  # n <= 5
    with pytest.raises(ValueError):
        S.median_change([1.0, float("nan")])


# --------------------------------------------------------------------------
# holm

@pytest.mark.parametrize("ps", [
    [0.01, 0.04, 0.03, 0.005],
    [0.2, 0.2, 0.2],
    [0.001],
    [0.5, 0.9, 0.01, 0.03, 0.04, 0.3, 0.049],
    [0.04, 0.04, 0.5, 0.001, 1.0],
])
def test_holm_matches_statsmodels(ps):
    ours = S.holm(ps)
    assert ours == [approx(v) for v in multipletests(ps, method="holm")[1]]


def test_holm_with_none_entries():
    ps = [None, 0.01, float("nan"), 0.04, None, 0.03]
    present = [0.01, 0.04, 0.03]
    ref = multipletests(present, method="holm")[1]
    out = S.holm(ps)
    assert out[0] is None and out[2] is None and out[4] is None
    assert [out[1], out[3], out[5]] == [approx(v) for v in ref]


def test_holm_monotone_capped_and_empty():
    assert S.holm([]) == []
    assert S.holm([None, None]) == [None, None]
    out = S.holm([0.6, 0.3, 0.9])
    assert out == [1.0, approx(0.9), 1.0]          # 3 * 0.3, then max(0.9, 2 * 0.6) capped
    with pytest.raises(ValueError):
        S.holm([0.1, 1.2])


# --------------------------------------------------------------------------
# compare_groups

def test_compare_groups_fisher_and_holm():
    counts = {"CRPS": (18, 25), "fibromyalgia": (9, 30), "migraine": (20, 40),
              "neuropathic": (12, 22), "empty": (0, 0)}
    out = S.compare_groups(counts)
    assert [g.group for g in out] == list(counts)
    total_k = sum(k for k, _ in counts.values())
    total_n = sum(n for _, n in counts.values())
    ps = []
    for row, (name, (k, n)) in zip(out, counts.items()):
        if n == 0:
            assert row.p_value is None and row.p_holm is None and row.odds_ratio is None
            continue
        ok, on = total_k - k, total_n - n
        assert (row.responders, row.n, row.other_responders, row.other_n) == (k, n, ok, on)
        ref = scipy.stats.fisher_exact([[k, n - k], [ok, on - ok]])
        assert row.p_value == approx(ref.pvalue)
        assert row.odds_ratio == approx((k * (on - ok)) / ((n - k) * ok))
        ps.append(row.p_value)
    holm_ref = multipletests(ps, method="holm")[1]
    assert [r.p_holm for r in out if r.p_value is not None] == [approx(v) for v in holm_ref]


def test_compare_groups_nothing_to_compare():
    only = S.compare_groups({"all": (7, 10)})
    assert only[0].p_value is None and only[0].p_holm is None
    assert (only[0].other_responders, only[0].other_n) == (0, 0)
    with_empty = S.compare_groups({"a": (7, 10), "b": (0, 0)})
    assert all(r.p_value is None for r in with_empty)
    assert S.compare_groups({}) == []


def test_compare_groups_zero_cells_do_not_raise():
    out = S.compare_groups({"a": (10, 10), "b": (5, 10)})
    assert out[0].odds_ratio == math.inf
    assert out[1].odds_ratio == 0.0
    assert out[0].p_value == approx(scipy.stats.fisher_exact([[10, 0], [5, 5]]).pvalue)
    every = S.compare_groups({"a": (10, 10), "b": (4, 4)})   # all responders
    assert every[0].odds_ratio is None and every[0].p_value == 1.0


def test_compare_groups_bad_input():
    with pytest.raises(ValueError):
        S.compare_groups({"a": (11, 10), "b": (1, 2)})


# --------------------------------------------------------------------------
# p_chart

def test_p_chart_hand_worked():
    # 3 months: 6/10, 12/20, 0/0, 12/30 -> centre 30/60 = 0.5.
    lim = S.p_chart([6, 12, 0, 12], [10, 20, 0, 30])
    assert lim.centre == 0.5
    # n=10: 3*sqrt(.25/10) = 0.4743 -> [0.0257, 0.9743]
    half10 = 3 * math.sqrt(0.25 / 10)
    half20 = 3 * math.sqrt(0.25 / 20)
    half30 = 3 * math.sqrt(0.25 / 30)
    assert lim.lower == [approx(0.5 - half10), approx(0.5 - half20), None, approx(0.5 - half30)]
    assert lim.upper == [approx(0.5 + half10), approx(0.5 + half20), None, approx(0.5 + half30)]
    assert round(lim.lower[0], 4) == 0.0257


def test_p_chart_clipping_sigma_and_empty():
    lim = S.p_chart([5, 0], [10, 1])          # centre 5/11; n=1: +/- 1.49 -> clipped
    assert lim.centre == approx(5 / 11)
    assert lim.lower[1] == 0.0 and lim.upper[1] == 1.0
    high = S.p_chart([9, 1], [10, 1])         # centre 10/11: only the top is clipped
    assert high.upper[1] == 1.0
    assert high.lower[1] == approx(10 / 11 - 3 * math.sqrt(10 / 11 * 1 / 11))
    two = S.p_chart([9, 1], [10, 1], sigma=2.0)
    assert two.lower[0] == approx(10 / 11 - 2 * math.sqrt(10 / 11 * 1 / 11 / 10))
    empty = S.p_chart([0, 0], [0, 0])
    assert empty == S.ControlLimits(None, [None, None], [None, None])
    with pytest.raises(ValueError):
        S.p_chart([1], [1, 2])
    with pytest.raises(ValueError):
        S.p_chart([3], [2])


# --------------------------------------------------------------------------
# odds_ratio

def _fisher_two_sided_by_hand(a, b, c, d):
    """Sum of hypergeometric tables no more likely than the observed one."""
    r1, c1, n = a + b, a + c, a + b + c + d
    def prob(x):
        return math.comb(c1, x) * math.comb(n - c1, r1 - x) / math.comb(n, r1)
    p_obs = prob(a)
    lo, hi = max(0, r1 + c1 - n), min(r1, c1)
    return min(1.0, sum(prob(x) for x in range(lo, hi + 1) if prob(x) <= p_obs * (1 + 1e-7)))


def test_odds_ratio_hand_worked():
    res = S.odds_ratio(10, 5, 4, 12)
    assert res.odds_ratio == approx(6.0)          # (10*12)/(5*4)
    se = math.sqrt(1 / 10 + 1 / 5 + 1 / 4 + 1 / 12)
    z = NormalDist().inv_cdf(0.975)
    assert res.ci_low == approx(math.exp(math.log(6) - z * se))
    assert res.ci_high == approx(math.exp(math.log(6) + z * se))
    assert res.p_value == approx(_fisher_two_sided_by_hand(10, 5, 4, 12))
    assert 0.01 < res.p_value < 0.05


def test_odds_ratio_confidence_level():
    res = S.odds_ratio(20, 10, 10, 20, confidence=0.90)
    se = math.sqrt(1 / 20 + 1 / 10 + 1 / 10 + 1 / 20)
    z = NormalDist().inv_cdf(0.95)
    assert res.odds_ratio == approx(4.0)
    assert (res.ci_low, res.ci_high) == (approx(4 * math.exp(-z * se)), approx(4 * math.exp(z * se)))


def test_odds_ratio_zero_cells_never_raise():
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # nothing leaks either
        inf = S.odds_ratio(5, 0, 3, 4)
        zero = S.odds_ratio(0, 5, 3, 4)
        undefined = S.odds_ratio(0, 0, 3, 4)
        nothing = S.odds_ratio(0, 0, 0, 0)
    assert inf.odds_ratio == math.inf and inf.ci_low is None and inf.ci_high == math.inf
    assert inf.p_value == approx(_fisher_two_sided_by_hand(5, 0, 3, 4))
    assert zero.odds_ratio == 0.0 and zero.ci_low == 0.0 and zero.ci_high is None
    assert undefined.odds_ratio is None
    assert (undefined.ci_low, undefined.ci_high, undefined.p_value) == (0.0, math.inf, 1.0)
    assert nothing.odds_ratio is None and nothing.p_value == 1.0
    with pytest.raises(ValueError):
        S.odds_ratio(-1, 2, 3, 4)


@pytest.mark.parametrize("module", [S, survival, binomial], ids=lambda m: m.__name__)
def test_no_streamlit_or_test_only_imports_in_module(module):
    import ast
    import pathlib
    tree = ast.parse(pathlib.Path(module.__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    assert not names & {"streamlit", "statsmodels", "lifelines"}
