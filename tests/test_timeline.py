"""One patient's timeline (analysis/metrics/timeline.py): who is in view, the
summary and the visits by hand on the tiny clinic, and against the outcome
model on the demo clinic."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from analysis.metrics import timeline
from analysis.core.filters import Filters


# --------------------------------------------------------------------------
# timeline


def test_patients_in_view_and_search(tiny):
    assert list(timeline.patients_in_view(tiny)["patient_id"]) == list("ABCDEF")
    assert list(timeline.patients_in_view(tiny, Filters(sites=("Denver",)))["patient_id"]) \
        == list("ACEF")
    # an untreated patient has no route and no index date: those filters leave them out
    assert "F" not in set(timeline.patients_in_view(tiny, Filters(routes=("IV",)))["patient_id"])
    assert timeline.patients_in_view(tiny, Filters(sites=("Nowhere",))).empty
    ids = ["P000101", "P000102", "Q000200"]
    assert timeline.search_patients(ids, " p0001") == ["P000101", "P000102"]
    assert timeline.search_patients(ids, "") == ids
    assert timeline.search_patients(ids, "zzz") == []


def test_patient_summary_by_hand(tiny):
    a = timeline.patient_summary(tiny, "A", "pain30")
    assert (a.condition, a.site, a.route, a.treated) == ("Migraine", "Denver", "IV", True)
    assert a.index_date == dt.date(2029, 1, 2)
    assert (a.baseline_pain, a.baseline_pain_date) == (8, dt.date(2029, 1, 2))
    assert (a.baseline_mme, a.baseline_mme_date) == (100, dt.date(2029, 1, 1))
    assert (a.infusions, a.boosters, a.visits) == (1, 0, 5)   # the telehealth row is quarantined
    status = {t.timepoint: t for t in a.timepoints}
    assert list(status) == ["4w", "3m", "6m", "12m"]
    # 4w window [Jan 16, Feb 13], target Jan 30: Feb 12, pain 4 = 50% less
    assert (status["4w"].window_start, status["4w"].window_end) == \
        (dt.date(2029, 1, 16), dt.date(2029, 2, 13))
    assert status["4w"].follow_up_pain == 4 and status["4w"].pain_reduction == pytest.approx(0.5)
    assert status["4w"].responder and status["4w"].status == "responder"
    assert status["3m"].follow_up_mme == 60 and status["3m"].responder
    # the cutoff (May 4) is before the 6m window closes and there is no follow-up yet
    assert not status["6m"].due and status["6m"].status == "not yet due"

    d = timeline.patient_summary(tiny, "D", "pain30")
    d_status = {t.timepoint: t for t in d.timepoints}
    assert d.baseline_mme is None and d.baseline_pain == 5
    assert d_status["4w"].due and not d_status["4w"].complete
    assert d_status["4w"].status.startswith("no follow-up in the window")
    # 3-month window [Mar 22, May 21] still open at the cutoff (May 4): the
    # Apr 21 score (5 -> 2) is provisional, never a responder yet (SPEC §3).
    assert not d_status["3m"].due and d_status["3m"].provisional
    assert not d_status["3m"].responder and d_status["3m"].provisional_responder
    assert d_status["3m"].status == ("provisional: responder so far (not yet due, not counted; "
                                     "window closes 2029-05-21)")

    c = timeline.patient_summary(tiny, "C", "mme50")
    assert all(t.status == "not counted: not on opioids at baseline" for t in c.timepoints)
    e = timeline.patient_summary(tiny, "E", "mme_stop")
    # E (index Feb 3) stopped on May 4: the 3-month window closes Jun 3.
    assert [t.responder for t in e.timepoints] == [False, False, False, False]
    assert [t.provisional_responder for t in e.timepoints] == [False, True, False, False]

    f = timeline.patient_summary(tiny, "F")
    assert not f.treated and f.index_date is None and f.timepoints == ()
    assert timeline.patient_summary(tiny, "nobody") is None
    with pytest.raises(ValueError):
        timeline.patient_summary(tiny, "A", "pain99")


def test_patient_visits(tiny):
    visits = timeline.patient_visits(tiny, "A")
    assert list(visits["visit_date"].map(str)) == ["2029-01-01", "2029-01-02", "2029-01-15",
                                                  "2029-02-12", "2029-04-02"]
    assert list(visits["day"]) == [-1, 0, 13, 41, 90]
    assert list(visits["visit_type"]) == ["intake", "infusion", "follow_up", "follow_up",
                                          "follow_up"]
    assert visits.loc[1, "adverse_event"] == "nausea" and visits.loc[1, "pain_post"] == 4
    assert "patient_name" not in visits.columns
    untreated = timeline.patient_visits(tiny, "F")
    assert len(untreated) == 1 and pd.isna(untreated.loc[0, "day"])


def test_patient_summary_matches_the_outcome_model(demo_snapshot):
    outcomes = demo_snapshot.query(
        "SELECT * FROM patient_outcomes WHERE definition = 'pain50' ORDER BY patient_id LIMIT 40")
    for patient_id, rows in outcomes.groupby("patient_id"):
        summary = timeline.patient_summary(demo_snapshot, patient_id, "pain50")
        expected = rows.set_index("timepoint")
        for t in summary.timepoints:
            assert t.responder == bool(expected.loc[t.timepoint, "responder"])
            assert t.due == bool(expected.loc[t.timepoint, "due"])
            assert t.eligible == bool(expected.loc[t.timepoint, "eligible"])
