"""Mood, safety and durability (issue 7): hand-worked exports, each number
worked out on paper, and the Kaplan–Meier curves checked against lifelines."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import median_survival_times

from analysis.metrics import durability, mood, safety
from analysis.core import stats
from analysis.core.filters import Filters
from tests.helpers.builders import measures_clinic

def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# --------------------------------------------------------------------------
# mood
#
# Index (first infusion) 2025-01-05 for everyone but G; 3 months = day 90
# (2025-04-05), window [60, 120].  Cutoff = 2025-06-10 (G's last visit), so the
# 3-month window has closed for everyone but G.

def _patient(pid, intake=None, follow_ups=(), index="2025-01-05", condition="Migraine",
             extra=()):
    rows = []
    if intake is not None:
        rows.append({"patient_id": pid, "visit_date": intake.pop("date", "2025-01-01"),
                     "visit_type": "intake", "condition": condition, **intake})
    rows.append({"patient_id": pid, "visit_date": index, "visit_type": "infusion",
                 "condition": condition})
    for visit in follow_ups:
        rows.append({"patient_id": pid, "visit_type": "follow_up", **visit})
    rows.extend({"patient_id": pid, **e} for e in extra)
    return rows


MOOD_ROWS = [
    # A: PHQ-9 20 -> 9 is a response (55%), not a remission; PCL-5 50 -> 40 is
    # an improvement (exactly 10 points).  Pain 8 -> 4: pain responder.
    *_patient("A", {"phq9": 20, "pcl5": 50, "pain_score": 8},
              [{"visit_date": "2025-04-05", "phq9": 9, "pcl5": 40, "pain_score": 4}]),
    # B: PHQ-9 20 -> 11 is not a response (45%); PCL-5 50 -> 41 (9 points) is
    # not an improvement.  Pain 8 -> 7: not a pain responder.
    *_patient("B", {"phq9": 20, "pcl5": 50, "pain_score": 8},
              [{"visit_date": "2025-04-05", "phq9": 11, "pcl5": 41, "pain_score": 7}]),
    # C: PHQ-9 12 -> 4: response and remission; PCL-5 never asked.  Pain 8 -> 5.
    *_patient("C", {"phq9": 12, "pain_score": 8},
              [{"visit_date": "2025-04-05", "phq9": 4, "pain_score": 5}]),
    # D: baseline PHQ-9 9 (below 10, mild): not eligible, whatever follows;
    # PCL-5 30 (below 33): not eligible.
    *_patient("D", {"phq9": 9, "pcl5": 30, "pain_score": 8},
              [{"visit_date": "2025-04-05", "phq9": 2, "pcl5": 5, "pain_score": 2}],
              condition="Neuropathy"),
    # E: the only PHQ-9 is 31 days before the index: no baseline score.
    *_patient("E", {"date": "2024-12-05", "phq9": 20},
              [{"visit_date": "2025-04-05", "phq9": 2}], condition="Neuropathy"),
    # F: eligible, window closed, no follow-up at all: ITT non-responder.
    *_patient("F", {"phq9": 20, "pain_score": 8}, [], condition="Neuropathy"),
    # G: eligible but treated 2025-06-01: 3-month window still open, not due.
    *_patient("G", {"date": "2025-05-28", "phq9": 20, "pain_score": 8}, [],
              index="2025-06-01", condition="Neuropathy",
              extra=[{"visit_date": "2025-06-10", "visit_type": "infusion"}]),
    # H: two PHQ-9 follow-ups equally far from day 90 (day 85: 15, day 95: 8):
    # the later one counts -> response; PCL-5 33 -> 23 at day 95: improvement.
    # Pain 8 -> 7 at day 95: not a pain responder.
    *_patient("H", {"phq9": 20, "pcl5": 33, "pain_score": 8},
              [{"visit_date": "2025-03-31", "phq9": 15, "pain_score": 3},
               {"visit_date": "2025-04-10", "phq9": 8, "pcl5": 23, "pain_score": 7}],
              condition="Neuropathy"),
    # J: PHQ-9 20 -> 15 (not a response), pain 8 -> 4 (pain responder).
    *_patient("J", {"phq9": 20, "pain_score": 8},
              [{"visit_date": "2025-04-05", "phq9": 15, "pain_score": 4}],
              condition="Neuropathy"),
]


@pytest.fixture(scope="module")
def mood_clinic(tmp_path_factory):
    return measures_clinic(tmp_path_factory.mktemp("mood"), MOOD_ROWS)


def _at_3m(snap, measure):
    frame = mood.mood_outcomes(snap)
    return frame[(frame.timepoint == "3m") & (frame.measure == measure)].set_index("patient_id")


def test_phq9_response_by_hand(mood_clinic):
    rows = _at_3m(mood_clinic, "phq9_response")
    assert rows.loc["A", "baseline"] == 20 and rows.loc["A", "follow_up"] == 9
    assert rows.loc["A", "responder"]           # 20 -> 9: 55% lower
    assert not rows.loc["B", "responder"]       # 20 -> 11: 45% lower
    assert rows.loc["C", "responder"]           # 12 -> 4
    assert not rows.loc["D", "eligible"]        # baseline 9 < 10
    assert rows.loc["D", "itt_exclusion"] == "baseline below threshold"
    assert rows.loc["E", "itt_exclusion"] == "no baseline score"
    assert rows.loc["F", "due"] and not rows.loc["F", "complete"]
    assert rows.loc["G", "eligible"] and not rows.loc["G", "due"]
    assert rows.loc["H", "follow_up"] == 8      # tie at 5 days from target: later visit
    assert rows.loc["H", "follow_up_date"].date() == day("2025-04-10")
    assert rows.loc["H", "responder"]


def test_phq9_remission_and_pcl5_improvement_by_hand(mood_clinic):
    remission = _at_3m(mood_clinic, "phq9_remission")
    assert not remission.loc["A", "responder"]  # 9 is not below 5
    assert remission.loc["C", "responder"]      # 4 is below 5
    assert not remission.loc["D", "eligible"]   # 2 at follow-up, but baseline 9 < 10
    pcl = _at_3m(mood_clinic, "pcl5_improvement")
    assert pcl.loc["A", "responder"]            # 50 -> 40: exactly 10 points
    assert not pcl.loc["B", "responder"]        # 50 -> 41: 9 points
    assert pcl.loc["H", "eligible"] and pcl.loc["H", "responder"]   # 33 -> 23
    assert not pcl.loc["D", "eligible"]         # baseline 30 < 33: no probable PTSD
    assert pcl.loc["C", "itt_exclusion"] == "no baseline score"


def test_mood_rates_itt_and_completers(mood_clinic):
    # PHQ-9 response at 3 months.  Eligible: A B C F G H J; due: all but G.
    # ITT: A C H respond of A B C F H J (F missing = non-responder) -> 3 / 6.
    # Completers: A B C H J -> 3 / 5.
    itt = mood.mood_rates(mood_clinic, "3m", "itt")
    completers = mood.mood_rates(mood_clinic, "3m", "completers")
    g = itt.get("phq9_response").overall
    assert (g.responders, g.n) == (3, 6)
    assert (g.rate, g.ci_low, g.ci_high) == pytest.approx(
        (0.5, *(lambda p: (p.ci_low, p.ci_high))(stats.proportion(3, 6))))
    assert g.too_few
    c = completers.get("phq9_response").overall
    assert (c.responders, c.n) == (3, 5)
    assert (itt.get("phq9_remission").overall.responders,
            itt.get("phq9_remission").overall.n) == (1, 6)
    assert (completers.get("phq9_remission").overall.responders,
            completers.get("phq9_remission").overall.n) == (1, 5)
    # PCL-5: eligible A B H (D 30 < 33), all due and complete: A and H improve.
    assert (itt.get("pcl5_improvement").overall.responders,
            itt.get("pcl5_improvement").overall.n) == (2, 3)
    # by condition: Migraine = A B C (A, C respond); Neuropathy = F H J (H).
    by = {r.group: (r.responders, r.n) for r in itt.get("phq9_response").by_condition}
    assert by == {"Migraine": (2, 3), "Neuropathy": (1, 3)}
    excluded = itt.get("phq9_response").excluded
    assert excluded == {"treated": 9, "no_baseline_score": 1, "baseline_below_threshold": 1,
                        "not_yet_due": 1, "provisional": 0,
                        "missing_follow_up_counted_as_non_responder": 1}
    # the grid carries the same cell
    grid = mood.mood_grid(mood_clinic)
    cell = grid[(grid.timepoint == "3m") & (grid.measure == "phq9_response")
                & (grid.population == "itt") & (grid.group == "All")].iloc[0]
    assert (cell.responders, cell.n) == (3, 6)


def test_mood_respects_filters(mood_clinic):
    rates = mood.mood_rates(mood_clinic, "3m", "itt", Filters(conditions=("Migraine",)))
    assert rates.treated == 3
    assert (rates.get("phq9_response").overall.responders,
            rates.get("phq9_response").overall.n) == (2, 3)
    empty = mood.mood_rates(mood_clinic, "3m", "itt", Filters(sites=("Nowhere",)))
    assert empty.treated == 0 and empty.get("phq9_response").overall.rate is None


def test_pain_mood_table_by_hand(mood_clinic):
    # SPEC §4: on patients with both follow-ups observed (3 months): A B C H J.
    # F (eligible and due for both, no follow-up at all) is in both ITT
    # denominators but never in the 2x2 table, where ITT would have made it
    # "neither" and inflated the association.
    #   A pain 8->4 yes, PHQ yes  -> both       C 8->5 yes, yes -> both
    #   J 8->4 yes, PHQ 20->15 no -> pain only  H 8->7 no, yes  -> mood only
    #   B 8->7 no, no             -> neither
    table = mood.pain_mood_table(mood_clinic, "3m")
    assert (table.both, table.pain_only, table.mood_only, table.neither) == (2, 1, 1, 1)
    assert table.n == 5
    expected = stats.odds_ratio(2, 1, 1, 1)
    assert table.odds_ratio == expected
    assert table.odds_ratio.odds_ratio == pytest.approx(2.0)      # (2*1)/(1*1)
    # Fisher's exact test by hand: hypergeometric over tables with margins
    # (3, 2) x (3, 2): P(a) for a = 1, 2, 3 is 3/10, 6/10, 1/10; the observed
    # a = 2 is the most likely, so two-sided p = 1.
    assert table.odds_ratio.p_value == pytest.approx(1.0)
    assert table.mood_rate_given_pain(True) == pytest.approx(2 / 3)
    assert table.mood_rate_given_pain(False) == pytest.approx(1 / 2)
    assert mood.odds_ratio_text(table).startswith("2.0 (95% CI ")
    g = mood.mood_rates(mood_clinic, "3m", "itt").get("phq9_response").overall
    p = stats.proportion(3, 6)
    assert mood.rate_cell(g) == (f"50% ({100 * p.ci_low:.0f}–{100 * p.ci_high:.0f}%) "
                                 f"· 3 of 6 ⚠")
    pairs = mood.pain_mood_pairs(mood_clinic, "3m")
    assert list(pairs["patient_id"]) == ["A", "B", "C", "H", "J"]


def test_unknown_arguments_are_refused(mood_clinic):
    with pytest.raises(ValueError):
        mood.mood_rates(mood_clinic, "5y")
    with pytest.raises(ValueError):
        mood.mood_rates(mood_clinic, "3m", "everyone")


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
    q2 = safety.safety_summary(safety_clinic, visits_from=day("2025-04-01"),
                               visits_to=day("2025-06-30"))
    assert q2.sessions == 2 and q2.rate("any_adverse_event").events == 1
    none = safety.safety_summary(safety_clinic, Filters(sites=("Nowhere",)))
    assert none.sessions == 0 and none.rate("any_adverse_event").per_100 is None


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
#   censored at day 0; not on the response curve.
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
    assert rows.loc["K1", "response_date"].date() == day("2025-02-04")   # 7 -> 4.9 is 30%
    assert rows.loc["K1", "loss_date"].date() == day("2025-04-05")       # 7 -> 5 is 29%
    assert (rows.loc["K1", "days"], rows.loc["K1", "event"]) == (60, True)
    assert rows.loc["K2", "end_date"].date() == day("2025-05-10")        # last pain score
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
    # Durations 0+, 30, 55, 60, 150+ (+ = censored).  K5 leaves at day 0
    # before any event, so 4 are at risk at day 30: S(30) = 3/4; 3 at risk at
    # day 55: S(55) = 3/4 * 2/3 = 1/2 (the median: first S <= 0.5); 2 at risk
    # at day 60: S(60) = 1/2 * 1/2 = 1/4; K2 censored at 150.
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


@pytest.mark.parametrize("filters", [Filters(), Filters(conditions=("Fibromyalgia", "Migraine")),
                                     Filters(index_from=dt.date(2024, 1, 1))])
def test_mood_counts_in_sql_equal_a_pandas_count_of_the_patient_rows(demo_snapshot, filters):
    # The grid and the 2x2 table are counted in SQL; counting the per-patient
    # rows in pandas (a second method) gives the same n and responders.
    frame = mood.mood_outcomes(demo_snapshot, filters)
    grid = mood.mood_grid(demo_snapshot, filters).set_index(
        ["timepoint", "measure", "population", "group"])
    in_population = {"itt": frame["eligible"] & frame["due"],
                     "completers": frame["eligible"] & frame["due"] & frame["complete"]}
    checked = 0
    for population, chosen in in_population.items():
        rows = frame[chosen]
        for (timepoint, measure), part in rows.groupby(["timepoint", "measure"]):
            cell = grid.loc[(timepoint, measure, population, "All")]
            assert (cell.n, cell.responders) == (len(part), int(part["responder"].sum()))
            for condition, group in part.groupby("condition"):
                cell = grid.loc[(timepoint, measure, population, condition)]
                assert (cell.n, cell.responders) == (len(group), int(group["responder"].sum()))
                checked += 1
    assert checked > 20
    for cell in grid.sample(40, random_state=1).itertuples():   # intervals one at a time
        one = stats.proportion(cell.responders, cell.n, method="wilson")
        if cell.n:
            assert (cell.rate, cell.ci_low, cell.ci_high) == pytest.approx(
                (one.rate, one.ci_low, one.ci_high), rel=1e-9)
        else:
            assert np.isnan(cell.rate)
    assert set(grid.index.get_level_values("group")) == {"All", *frame["condition"].dropna()}

    rates = mood.mood_rates(demo_snapshot, "6m", "itt", filters)
    at = frame[(frame["timepoint"] == "6m") & (frame["measure"] == "pcl5_improvement")]
    excluded = rates.get("pcl5_improvement").excluded
    assert excluded["treated"] == len(at) == rates.treated == frame["patient_id"].nunique()
    assert excluded["no_baseline_score"] == int((at["itt_exclusion"] == "no baseline score").sum())
    assert excluded["not_yet_due"] == int((at["eligible"] & ~at["due"]).sum())
    assert excluded["missing_follow_up_counted_as_non_responder"] == int(
        (at["eligible"] & at["due"] & ~at["complete"]).sum())

    # The association: patients with both follow-ups observed (SPEC §4),
    # worked out from the raw facts rather than the models' completer flag,
    # and its odds ratio against statsmodels' Table2x2.
    table = mood.pain_mood_table(demo_snapshot, "3m", filters)
    where, params = filters.sql()
    pain = demo_snapshot.query(
        "SELECT patient_id, follow_up_pain, baseline_pain FROM patient_outcomes "
        "WHERE definition = 'pain30' AND timepoint = '3m' AND eligible AND due "
        f"AND follow_up_pain IS NOT NULL AND {where}", params)
    pain["pain_met"] = (pain.baseline_pain - pain.follow_up_pain) / pain.baseline_pain >= 0.3 - 1e-9
    phq = frame[(frame["timepoint"] == "3m") & (frame["measure"] == "phq9_response")
                & frame["eligible"] & frame["due"] & frame["follow_up"].notna()].copy()
    phq["mood_met"] = (phq.baseline - phq.follow_up) / phq.baseline >= 0.5 - 1e-9
    both = phq.merge(pain, on="patient_id")
    assert table.n == len(both) > 0
    cells = [int((both.pain_met & both.mood_met).sum()), int((both.pain_met & ~both.mood_met).sum()),
             int((~both.pain_met & both.mood_met).sum()), int((~both.pain_met & ~both.mood_met).sum())]
    assert [table.both, table.pain_only, table.mood_only, table.neither] == cells
    from statsmodels.stats.contingency_tables import Table2x2
    reference = Table2x2(np.array([cells[:2], cells[2:]], dtype=float))
    if min(cells) > 0:
        assert table.odds_ratio.odds_ratio == pytest.approx(reference.oddsratio, rel=1e-9)
        low, high = reference.oddsratio_confint(0.05)
        assert (table.odds_ratio.ci_low, table.odds_ratio.ci_high) == pytest.approx((low, high),
                                                                                    rel=1e-9)
    # A pair whose follow-up is missing on one side is in neither table cell.
    itt_pain = demo_snapshot.query(
        "SELECT count(*) AS n FROM patient_outcomes WHERE definition = 'pain30' "
        f"AND timepoint = '3m' AND eligible AND due AND {where}", params).n.iloc[0]
    assert table.n < itt_pain
