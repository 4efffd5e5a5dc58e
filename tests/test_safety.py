"""Infusion safety (analysis/metrics/safety.py, issue 7): a hand-worked export,
each number worked out on paper, and the demo clinic's counts against a pandas
count of the infusion rows."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from analysis.metrics import safety
from analysis.core import stats
from analysis.core.filters import Filters
from tests.helpers.builders import iso_date, measures_clinic


# --------------------------------------------------------------------------
# safety

SAFETY_ROWS = [
    # S1: IV.  Weight 80 at intake and V1, 60 at V3.
    {"patient_id": "S1", "visit_date": "2025-01-01", "visit_type": "intake", "weight_kg": 80},
    # V1: 40 mg / 80 kg = 0.5 mg/kg (band 0.5–<1.0); two adverse events on one visit
    {"patient_id": "S1", "visit_date": "2025-01-05", "visit_type": "infusion", "route": "IV",
     "ketamine_mg": 40, "weight_kg": 80, "adverse_event": "Nausea; Headache",
     "sbp_max": 185, "spo2_min": 95},
    # V2: no weight; nearest recorded weight is 60 kg on 01-10 (2 days), not
    # 80 kg on 01-05 (3 days): 30 / 60 = 0.5 mg/kg (0.375 with the wrong weight)
    {"patient_id": "S1", "visit_date": "2025-01-08", "visit_type": "infusion", "route": "IV",
     "ketamine_mg": 30, "adverse_event": "nausea", "sbp_max": 150, "spo2_min": 88},
    # V3: booster, 120 mg / 60 kg = 2.0 mg/kg; no BP or SpO2 recorded
    {"patient_id": "S1", "visit_date": "2025-01-10", "visit_type": "booster", "route": "IV",
     "ketamine_mg": 120, "weight_kg": 60},
    # V4: intranasal, dose not recorded -> unknown band; "dizziness, nausea"
    {"patient_id": "S1", "visit_date": "2025-04-02", "visit_type": "infusion",
     "route": "intranasal", "adverse_event": "Dizziness , NAUSEA", "sbp_max": 180,
     "spo2_min": 90},
    {"patient_id": "S1", "visit_date": "2025-04-20", "visit_type": "follow_up",
     "adverse_event": "headache"},   # not an infusion: never counted
    # S2: IM, never weighed -> unknown band
    {"patient_id": "S2", "visit_date": "2025-04-03", "visit_type": "infusion", "route": "IM",
     "ketamine_mg": 50, "sbp_max": 120, "spo2_min": 97, "site": "Boulder"},
    # S3: weights 100 kg two days before and 50 kg two days after: the tie goes
    # to the earlier weight -> 50 / 100 = 0.5 mg/kg (1.0 with the later one)
    {"patient_id": "S3", "visit_date": "2025-02-01", "visit_type": "intake", "weight_kg": 100},
    {"patient_id": "S3", "visit_date": "2025-02-03", "visit_type": "infusion", "route": "IV",
     "ketamine_mg": 50},
    {"patient_id": "S3", "visit_date": "2025-02-05", "visit_type": "follow_up", "weight_kg": 50},
]


@pytest.fixture(scope="module")
def safety_clinic(tmp_path_factory):
    return measures_clinic(tmp_path_factory.mktemp("safety"), SAFETY_ROWS)


def test_infusion_rows_by_hand(safety_clinic):
    rows = safety.infusions(safety_clinic).set_index(["patient_id", "visit_date"])
    assert len(rows) == 6                                   # V1-V4, S2, S3
    v1 = rows.loc[("S1", pd.Timestamp("2025-01-05"))]
    assert v1.adverse_events == ["headache", "nausea"] and v1.mg_per_kg == pytest.approx(0.5)
    assert v1.dose_band == "0.5–<1.0" and v1.weight_source == "this visit"
    v2 = rows.loc[("S1", pd.Timestamp("2025-01-08"))]
    assert v2.weight_used == 60 and v2.weight_source == "nearest visit"
    assert v2.dose_band == "0.5–<1.0"
    assert rows.loc[("S1", pd.Timestamp("2025-01-10"))].dose_band == "≥ 1.5"
    v4 = rows.loc[("S1", pd.Timestamp("2025-04-02"))]
    assert v4.adverse_events == ["dizziness", "nausea"] and v4.dose_band == "unknown"
    assert rows.loc[("S2", pd.Timestamp("2025-04-03"))].dose_band == "unknown"
    s3 = rows.loc[("S3", pd.Timestamp("2025-02-03"))]
    assert s3.weight_used == 100 and s3.dose_band == "0.5–<1.0"


def test_adverse_events_per_100_by_hand(safety_clinic):
    summary = safety.safety_summary(safety_clinic)
    assert summary.sessions == 6 and summary.patients == 3
    assert (summary.infusion_visits, summary.boosters) == (5, 1)   # S1 V3 is the booster
    # any: V1, V2, V4 -> 3 of 6; V1's two events count once here
    any_ae = summary.rate("any_adverse_event")
    assert (any_ae.events, any_ae.n, any_ae.per_100) == (3, 6, pytest.approx(50.0))
    p = stats.proportion(3, 6)
    assert (any_ae.ci_low, any_ae.ci_high) == pytest.approx((100 * p.ci_low, 100 * p.ci_high))
    # by type: nausea on V1, V2, V4; headache (V1 only: the follow-up visit is
    # not an infusion) and dizziness once each
    assert summary.adverse_event_types == ["nausea", "dizziness", "headache"]
    assert summary.rate("nausea").events == 3
    headache = summary.rate("headache")
    assert (headache.events, headache.n) == (1, 6)
    assert headache.per_100 == pytest.approx(100 / 6)
    # BP recorded on V1, V2, V4, S2: 185 and 180 are >= 180
    sbp = summary.rate("sbp_180")
    assert (sbp.events, sbp.n) == (2, 4)
    # SpO2 recorded on V1, V2, V4, S2: only 88 is below 90 (90 is not)
    spo2 = summary.rate("spo2_below_90")
    assert (spo2.events, spo2.n, spo2.per_100) == (1, 4, pytest.approx(25.0))
    assert safety.per_100_text(spo2).startswith("25.0 per 100 (95% CI ")
    assert safety.per_100_cell(spo2).endswith(" · 1 of 4 ⚠")


def test_safety_by_route_dose_and_quarter(safety_clinic):
    summary = safety.safety_summary(safety_clinic)
    n = {g: summary.rate("any_adverse_event", "route", g).n for g in summary.groups("route")}
    assert n == {"IM": 1, "IV": 4, "intranasal": 1}
    assert summary.rate("any_adverse_event", "route", "IV").events == 2      # V1, V2
    bands = {g: summary.rate("any_adverse_event", "dose_band", g).n
             for g in summary.groups("dose_band")}
    assert bands == {"< 0.5": 0, "0.5–<1.0": 3, "1.0–<1.5": 0, "≥ 1.5": 1, "unknown": 2}
    assert summary.rate("any_adverse_event", "dose_band", "< 0.5").per_100 is None
    assert summary.weight_from_nearest_visit == 2 and summary.dose_unknown == 2
    quarters = {g: (summary.rate("any_adverse_event", "quarter", g).events,
                    summary.rate("any_adverse_event", "quarter", g).n)
                for g in summary.groups("quarter")}
    assert quarters == {"2025Q1": (2, 4), "2025Q2": (1, 2)}
    assert summary.rate("nausea", "quarter", "2025Q2").events == 1


def test_safety_filters_and_date_range(safety_clinic):
    boulder = safety.safety_summary(safety_clinic, Filters(sites=("Boulder",)))
    assert boulder.sessions == 1 and boulder.rate("any_adverse_event").events == 0
    q2 = safety.safety_summary(safety_clinic, visits_from=iso_date("2025-04-01"),
                               visits_to=iso_date("2025-06-30"))
    assert q2.sessions == 2 and q2.rate("any_adverse_event").events == 1
    none = safety.safety_summary(safety_clinic, Filters(sites=("Nowhere",)))
    assert none.sessions == 0 and none.rate("any_adverse_event").per_100 is None


def _safety_counts_in_pandas(frame: pd.DataFrame, dimension: str, group: str) -> dict:
    """A second method: count one group's safety events from the infusion rows."""
    part = frame if dimension == "overall" else frame[frame[dimension] == group]
    counts = {
        "any_adverse_event": (int(part["any_adverse_event"].sum()), len(part)),
        "sbp_180": (int((part["sbp_max"].dropna() >= 180).sum()), int(part["sbp_max"].notna().sum())),
        "spo2_below_90": (int((part["spo2_min"].dropna() < 90).sum()),
                          int(part["spo2_min"].notna().sum())),
    }
    for events in frame["adverse_events"]:
        for name in events:
            counts[name] = (sum(name in e for e in part["adverse_events"]), len(part))
    return counts


@pytest.mark.parametrize("filters", [Filters(), Filters(routes=("IV",)),
                                     Filters(index_from=dt.date(2024, 1, 1))])
def test_safety_counts_in_sql_equal_a_pandas_count_of_the_infusions(demo_snapshot, filters):
    # The rates are counted in SQL; the infusion rows counted in pandas agree
    # for every dimension, group and measure on the (messy) demo clinic.
    summary = safety.safety_summary(demo_snapshot, filters)
    frame = safety.infusions(demo_snapshot, filters)
    assert summary.sessions == len(frame) > 0
    assert summary.infusion_visits == int((frame["visit_type"] == "infusion").sum())
    assert summary.boosters == int((frame["visit_type"] == "booster").sum())
    assert summary.patients == frame["patient_id"].nunique()
    assert summary.dose_unknown == int((frame["dose_band"] == "unknown").sum())
    assert summary.weight_from_nearest_visit == int(
        ((frame["weight_source"] == "nearest visit") & frame["mg_per_kg"].notna()).sum())
    seen_types = {name for events in frame["adverse_events"] for name in events}
    assert set(summary.adverse_event_types) == seen_types
    checked = 0
    for (dimension, group), rows in summary.rates.groupby(["dimension", "group"]):
        expected = _safety_counts_in_pandas(frame, dimension, group)
        for row in rows.itertuples():
            assert (row.events, row.n) == expected[row.measure], (dimension, group, row.measure)
            one = stats.proportion(row.events, row.n)     # intervals one cell at a time
            if row.n:
                assert (row.per_100, row.ci_low, row.ci_high) == pytest.approx(
                    (100 * one.rate, 100 * one.ci_low, 100 * one.ci_high), rel=1e-9)
            else:
                assert pd.isna(row.per_100) and pd.isna(row.ci_low)
            checked += 1
    assert checked > 100
