"""Durability (analysis/metrics/durability.py, issue 7): time to the first
booster and to the loss of a response on a hand-worked export, and the
Kaplan–Meier curves checked against lifelines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import median_survival_times

from analysis.metrics import durability
from analysis.core.filters import Filters
from tests.helpers.builders import iso_date, measures_clinic


# --------------------------------------------------------------------------
# durability
#
# K1 (baseline pain 7, index 2025-01-05): 6 on 01-20 (14%, no); 4.9 on 02-04
#   (exactly 30%: first response); 4.0 on the 03-01 booster (still); 5.0 on
#   04-05 (29%: loss); 3 on 05-05 (a second response, ignored).
#   response: 04-05 - 02-04 = 60 days, lost.  booster: 03-01 - 01-05 = 55 days.
# K2 (baseline 8, index 2025-01-10): 4 on 02-09 (response), 5 on 03-11, 5 on
#   05-10 (still responding), a visit without pain on 06-09; no booster.
#   response: censored at the last pain score, 05-10 - 02-09 = 90 days.
#   booster: censored at the last visit, 06-09 - 01-10 = 150 days.
# K3 (baseline 6, index 2025-01-15): 6 and 5 later, never responds; booster
#   02-14: 30 days.
# K4: index visit is a booster (01-20), next booster 03-21: 60 days; no pain
#   recorded: not on the response curve.
# K5: baseline pain 0, index 2025-01-05 and nothing after: booster curve
#   censored at iso_date 0; not on the response curve.
# Cutoff 2025-06-09.

DURABILITY_ROWS = [
    {"patient_id": "K1", "visit_date": "2025-01-01", "visit_type": "intake", "pain_score": 7},
    {"patient_id": "K1", "visit_date": "2025-01-05", "visit_type": "infusion", "pain_score": 7},
    {"patient_id": "K1", "visit_date": "2025-01-20", "visit_type": "follow_up", "pain_score": 6},
    {"patient_id": "K1", "visit_date": "2025-02-04", "visit_type": "follow_up", "pain_score": 4.9},
    {"patient_id": "K1", "visit_date": "2025-03-01", "visit_type": "booster", "pain_score": 4},
    {"patient_id": "K1", "visit_date": "2025-04-05", "visit_type": "follow_up", "pain_score": 5},
    {"patient_id": "K1", "visit_date": "2025-05-05", "visit_type": "follow_up", "pain_score": 3},
    {"patient_id": "K2", "visit_date": "2025-01-10", "visit_type": "infusion", "pain_score": 8,
     "condition": "Neuropathy"},
    {"patient_id": "K2", "visit_date": "2025-02-09", "visit_type": "follow_up", "pain_score": 4},
    {"patient_id": "K2", "visit_date": "2025-03-11", "visit_type": "follow_up", "pain_score": 5},
    {"patient_id": "K2", "visit_date": "2025-05-10", "visit_type": "follow_up", "pain_score": 5},
    {"patient_id": "K2", "visit_date": "2025-06-09", "visit_type": "follow_up"},
    {"patient_id": "K3", "visit_date": "2025-01-15", "visit_type": "infusion", "pain_score": 6},
    {"patient_id": "K3", "visit_date": "2025-01-30", "visit_type": "follow_up", "pain_score": 6},
    {"patient_id": "K3", "visit_date": "2025-02-14", "visit_type": "booster", "pain_score": 5},
    {"patient_id": "K4", "visit_date": "2025-01-20", "visit_type": "booster"},
    {"patient_id": "K4", "visit_date": "2025-03-21", "visit_type": "booster"},
    {"patient_id": "K5", "visit_date": "2025-01-05", "visit_type": "infusion", "pain_score": 0},
]


@pytest.fixture(scope="module")
def durability_clinic(tmp_path_factory):
    return measures_clinic(tmp_path_factory.mktemp("durability"), DURABILITY_ROWS)


def test_time_to_first_booster_by_hand(durability_clinic):
    rows = durability.booster_durations(durability_clinic).set_index("patient_id")
    assert rows[["days", "event"]].to_dict("index") == {
        "K1": {"days": 55, "event": True},
        "K2": {"days": 150, "event": False},
        "K3": {"days": 30, "event": True},
        "K4": {"days": 60, "event": True},   # the index booster itself does not count
        "K5": {"days": 0, "event": False},
    }


def test_loss_of_response_by_hand(durability_clinic):
    rows = durability.response_durations(durability_clinic).set_index("patient_id")
    assert set(rows.index) == {"K1", "K2", "K3"}       # K4 no baseline pain, K5 baseline 0
    assert rows.loc["K1", "response_date"].date() == iso_date("2025-02-04")   # 7 -> 4.9 is 30%
    assert rows.loc["K1", "loss_date"].date() == iso_date("2025-04-05")       # 7 -> 5 is 29%
    assert (rows.loc["K1", "days"], rows.loc["K1", "event"]) == (60, True)
    assert rows.loc["K2", "end_date"].date() == iso_date("2025-05-10")        # last pain score
    assert (rows.loc["K2", "days"], rows.loc["K2", "event"]) == (90, False)
    assert not rows.loc["K3", "responded"] and pd.isna(rows.loc["K3", "days"])
    result = durability.durability(durability_clinic, "response")
    assert result.excluded == {"treated": 5, "no_baseline_pain": 2,
                               "no_pain_score_after_index": 0, "never_responded": 1}
    assert (result.pooled.n, result.pooled.events) == (2, 1)
    # K1 (Migraine) and K2 (Neuropathy), each alone: flagged too few
    assert [(c.group, c.n, c.too_few) for c in result.by_condition] == [
        ("Migraine", 1, True), ("Neuropathy", 1, True)]


def test_booster_curve_by_hand(durability_clinic):
    # Durations 0+, 30, 55, 60, 150+ (+ = censored).  K5 leaves at iso_date 0
    # before any event, so 4 are at risk at iso_date 30: S(30) = 3/4; 3 at risk at
    # iso_date 55: S(55) = 3/4 * 2/3 = 1/2 (the median: first S <= 0.5); 2 at risk
    # at iso_date 60: S(60) = 1/2 * 1/2 = 1/4; K2 censored at 150.
    result = durability.durability(durability_clinic, "booster")
    km = result.pooled.km
    assert (km.n, km.events) == (5, 3)
    assert km.survival_at(29) == pytest.approx(1.0)
    assert km.survival_at(30) == pytest.approx(3 / 4)
    assert km.survival_at(55) == pytest.approx(1 / 2)
    assert km.survival_at(60) == pytest.approx(1 / 4)
    assert km.survival_at(150) == pytest.approx(1 / 4)
    assert km.median == 55
    assert result.pooled.at_risk == {0: 5, 30: 4, 60: 2, 90: 1, 180: 0, 365: 0}
    assert durability.median_text(km).startswith("55 days (95% CI ")


def test_durability_empty_selection(durability_clinic):
    result = durability.durability(durability_clinic, "response", Filters(sites=("Nowhere",)))
    assert result.pooled.n == 0 and result.by_condition == []
    assert durability.median_text(result.pooled.km) == "–"


def test_kaplan_meier_matches_lifelines(demo_snapshot):
    """The curves on the demo clinic's own durations, against lifelines."""
    for curve in durability.CURVES:
        frame = durability.durations(demo_snapshot, curve)
        result = durability.durability(demo_snapshot, curve)
        km = result.pooled.km
        assert km.n == len(frame) > 50 and km.events > 10
        fitter = KaplanMeierFitter().fit(frame["days"], frame["event"], alpha=0.05)
        expected = fitter.survival_function_at_times(km.time).to_numpy()
        np.testing.assert_allclose(km.survival, expected, rtol=1e-9, atol=1e-12)
        band = fitter.confidence_interval_survival_function_
        low = band.iloc[:, 0].reindex(km.time, method="ffill").to_numpy()
        high = band.iloc[:, 1].reindex(km.time, method="ffill").to_numpy()
        np.testing.assert_allclose(km.ci_low, low, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(km.ci_high, high, rtol=1e-6, atol=1e-9)
        assert km.median == fitter.median_survival_time_
        medians = median_survival_times(fitter.confidence_interval_)
        lower, upper = medians.iloc[0, 0], medians.iloc[0, 1]
        assert km.median_ci_low == lower
        assert (km.median_ci_high is None and np.isinf(upper)) or km.median_ci_high == upper
        durations = frame["days"].to_numpy()
        for d in durability.AT_RISK_DAYS:
            assert result.pooled.at_risk[d] == int((durations >= d).sum())
        # each condition's curve is the same estimator on its own patients
        for c in result.by_condition:
            part = frame[frame["condition"] == c.group]
            assert c.n == len(part) and c.events == int(part["event"].sum())
            assert c.too_few == (len(part) < 11)
