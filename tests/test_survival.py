"""Tests for analysis.core.survival (Kaplan-Meier), each against an independent
computation: lifelines is the test-only reference, and the 6-MP textbook
example is worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import median_survival_times

from analysis.core import survival as S

TIGHT = dict(rel=1e-9, abs=1e-12)


def approx(x):
    return pytest.approx(x, **TIGHT)



# Freireich et al. (1963), 6-MP arm of the leukemia remission trial.
MP6 = "6 6 6 6* 7 9* 10 10* 11* 13 16 17* 19* 20* 22 23 25* 32* 32* 34* 35*".split()
MP6_T = [float(x.rstrip("*")) for x in MP6]
MP6_E = [not x.endswith("*") for x in MP6]


def _lifelines(durations, observed):
    kmf = KaplanMeierFitter().fit(durations, observed)
    return kmf


def _check_against_lifelines(km, durations, observed):
    kmf = _lifelines(durations, observed)
    sf = kmf.survival_function_.iloc[:, 0]
    ci = kmf.confidence_interval_
    et = kmf.event_table
    assert list(km.time) == list(sf.index.astype(float))
    np.testing.assert_allclose(km.survival, sf.to_numpy(), rtol=1e-12, atol=1e-14)
    # Both use Greenwood's variance on the log(-log S) scale.
    np.testing.assert_allclose(km.ci_low, ci.iloc[:, 0].to_numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(km.ci_high, ci.iloc[:, 1].to_numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(km.at_risk, et["at_risk"].reindex(sf.index).to_numpy())
    for t in sf.index:
        assert km.survival_at(t) == approx(float(kmf.predict(t)))
    med = kmf.median_survival_time_
    assert km.median == (None if math.isinf(med) else med)
    lo, hi = median_survival_times(ci).iloc[0]
    assert km.median_ci_low == (None if math.isinf(lo) else lo)
    assert km.median_ci_high == (None if math.isinf(hi) else hi)
    assert km.n == len(durations) and km.events == int(np.sum(observed))


def test_km_6mp_textbook():
    km = S.kaplan_meier(MP6_T, MP6_E)
    assert km.median == 23.0
    # Classic hand values (Kleinbaum & Klein): S(6)=18/21, S(7)=0.807,
    # S(10)=0.753, S(13)=0.690, S(16)=0.627, S(22)=0.538, S(23)=0.448.
    assert km.survival_at(6) == approx(18 / 21)
    assert km.survival_at(6.5) == approx(18 / 21)
    assert km.survival_at(7) == approx(18 / 21 * 16 / 17)
    assert km.survival_at(10) == approx(18 / 21 * 16 / 17 * 14 / 15)
    assert km.survival_at(23) == approx(18 / 21 * 16 / 17 * 14 / 15 * 11 / 12
                                        * 10 / 11 * 6 / 7 * 5 / 6)
    assert km.survival_at(-1) == 1.0 and km.survival_at(0) == 1.0
    assert km.survival_at(100) == km.survival[-1]
    assert km.time[0] == 0.0 and km.survival[0] == 1.0
    assert (km.n, km.events) == (21, 9)
    # Numbers at risk: patients with duration >= t.
    assert km.at_risk_at(0) == 21
    assert km.at_risk_at(6) == 21
    assert km.at_risk_at(7) == 17
    assert km.at_risk_at(12) == 12
    assert km.at_risk_at(35) == 1
    assert km.at_risk_at(36) == 0
    for t in np.arange(-1, 40, 0.5):
        assert km.at_risk_at(t) == sum(d >= t for d in MP6_T)
    # Median CI read off the bands (lifelines agrees): [13, not reached).
    assert (km.median_ci_low, km.median_ci_high) == (13.0, None)
    _check_against_lifelines(km, MP6_T, MP6_E)


def test_km_random_censored_matches_lifelines():
    rng = np.random.default_rng(2024)
    n = 150
    event_t = np.ceil(rng.exponential(120, n))        # integer days -> ties
    censor_t = np.ceil(rng.uniform(10, 400, n))
    durations = np.minimum(event_t, censor_t)
    observed = event_t <= censor_t
    km = S.kaplan_meier(durations, observed)
    assert km.median is not None and km.median_ci_high is not None
    _check_against_lifelines(km, durations, observed)


def test_km_all_events_exact_half_and_bands_at_zero():
    # S(2) is exactly 0.5: the median is 2 (smallest t with S <= 0.5).
    km = S.kaplan_meier([1, 2, 3, 4], [True] * 4)
    assert km.median == 2.0
    assert km.survival[-1] == 0.0 and km.ci_low[-1] == 0.0 and km.ci_high[-1] == 0.0
    _check_against_lifelines(km, [1, 2, 3, 4], [1, 1, 1, 1])


def test_km_censoring_before_first_event():
    d, e = [5, 6, 1, 2, 7], [1, 1, 0, 0, 0]
    km = S.kaplan_meier(d, e)
    assert list(km.ci_low[:3]) == [1.0, 1.0, 1.0]   # S == 1: degenerate band, not NaN
    _check_against_lifelines(km, d, e)


def test_km_all_censored():
    km = S.kaplan_meier([3, 8, 8, 20], [False] * 4)
    assert km.median is None and km.median_ci_low is None and km.median_ci_high is None
    assert np.all(km.survival == 1.0) and np.all(km.ci_low == 1.0)
    assert km.events == 0 and km.n == 4
    assert list(km.time) == [0.0, 3.0, 8.0, 20.0]
    assert list(km.at_risk) == [4, 4, 3, 1]
    _check_against_lifelines(km, [3, 8, 8, 20], [0, 0, 0, 0])


def test_km_empty():
    km = S.kaplan_meier([], [])
    assert (km.n, km.events, km.median) == (0, 0, None)
    assert km.time.size == 0 and km.survival.size == 0
    assert math.isnan(km.survival_at(5)) and km.at_risk_at(5) == 0


def test_km_event_at_time_zero():
    km = S.kaplan_meier([0, 4, 5], [True, True, False])
    assert km.time[0] == 0.0 and km.survival[0] == approx(2 / 3)
    assert km.at_risk[0] == 3
    _check_against_lifelines(km, [0, 4, 5], [1, 1, 0])


def test_km_is_read_only_and_validates():
    km = S.kaplan_meier(MP6_T, MP6_E)
    with pytest.raises(ValueError):
        km.survival[0] = 0.5
    with pytest.raises(ValueError):
        S.kaplan_meier([1, 2], [True])
    with pytest.raises(ValueError):
        S.kaplan_meier([1, -2], [True, True])
    with pytest.raises(ValueError):
        S.kaplan_meier([1, 2], [True, 2])
