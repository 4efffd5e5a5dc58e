"""Opioid tapering (analysis/metrics/opioids.py) against a hand-worked tiny clinic
and, on the demo clinic, against independent pandas computations and the
outcome grid of analysis.metrics.outcomes."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from analysis.metrics import charts, opioids, outcomes
from analysis.storage import db, store
from analysis.ingest.pipeline import ingest_file
from analysis.core.filters import Filters
from tests.helpers.builders import TINY_COLUMNS, TINY_INGEST_DATE, write_csv


# --------------------------------------------------------------------------
# the pace of a taper, by hand


def test_taper_pace_by_hand():
    # 100 -> 70 in 2 weeks: 30% of the baseline in 2 weeks = 15% a week
    assert opioids.taper_pace(100, 70, 100, 14) == pytest.approx(0.15)
    # 100 -> 90 in 4 weeks = 2.5% a week
    assert opioids.taper_pace(100, 90, 100, 28) == pytest.approx(0.025)
    # measured against the baseline, not the dose before: 60 -> 30 in 1 week of a 120 baseline
    assert opioids.taper_pace(60, 30, 120, 7) == pytest.approx(0.25)
    assert opioids.taper_pace(50, 60, 100, 7) == pytest.approx(-0.10)  # an increase
    with pytest.raises(ValueError):
        opioids.taper_pace(100, 50, 0, 7)
    with pytest.raises(ValueError):
        opioids.taper_pace(100, 50, 100, 0)


def test_fast_tapers_flag_intervals_at_least_as_fast_as_the_threshold(tiny):
    intervals = opioids.taper_intervals(tiny)
    by_patient = {p: part.reset_index(drop=True) for p, part in intervals.groupby("patient_id")}
    assert set(by_patient) == {"A", "B", "E"}          # baseline users only
    a = by_patient["A"]
    assert list(a["from_date"].map(str)) == ["2029-01-01", "2029-01-15", "2029-02-12"]
    assert list(a["days"]) == [14, 28, 49]
    assert a["pace"].tolist() == pytest.approx([0.15, 0.025, 0.0])
    assert a["pace_per_30_days"].tolist() == pytest.approx([0.15 * 30 / 7, 0.025 * 30 / 7, 0])
    assert a["flagged"].tolist() == a["rapid"].tolist() == [True, False, False]
    # 2.5%/week = 10.7% per 30 days: faster than the usual starting pace
    assert a["faster_than_usual"].tolist() == [True, True, False]
    assert by_patient["B"]["pace"].tolist() == pytest.approx([0.025, 0.5 / 9])
    assert by_patient["E"]["pace"].tolist() == pytest.approx([1.0 / (92 / 7)])
    assert not by_patient["B"]["rapid"].any() and not by_patient["E"]["rapid"].any()
    # E stopped (60 -> 0 over 92 days = 19.6% per 30 days): a stop is a drop
    assert by_patient["E"]["faster_than_usual"].tolist() == [True]
    assert by_patient["B"]["faster_than_usual"].tolist() == [True, True]

    fast = opioids.fast_tapers(tiny)
    assert fast.threshold == opioids.RAPID
    assert (fast.intervals, fast.flagged_intervals, fast.flagged_patients,
            fast.baseline_users) == (6, 1, 1, 3)
    assert (fast.rapid_patients, fast.faster_than_usual_patients) == (1, 3)
    row = fast.flagged.iloc[0]
    assert (row.patient_id, row.mme_before, row.mme_after, row.baseline_mme) == \
        ("A", 100, 70, 100)
    assert (str(row.from_date), str(row.to_date)) == ("2029-01-01", "2029-01-15")
    assert row.pace == pytest.approx(0.15)

    slower = opioids.fast_tapers(tiny, threshold=opioids.TaperThreshold(5, "week"))
    assert sorted(slower.flagged["patient_id"]) == ["A", "B", "E"]
    assert opioids.fast_tapers(tiny, Filters(sites=("Boulder",))).flagged_intervals == 0
    # exactly at the threshold counts (SPEC §3: boundaries are inclusive)
    assert opioids.fast_tapers(tiny, threshold=opioids.TaperThreshold(15)).flagged_intervals == 1
    assert opioids.fast_tapers(tiny, threshold=opioids.TaperThreshold(15.5)).flagged_intervals == 0
    # the same threshold per month: 10%/month flags what is faster than the usual pace
    monthly = opioids.fast_tapers(tiny, threshold=opioids.FASTER_THAN_USUAL)
    assert monthly.flagged_intervals == 5 and monthly.flagged_patients == 3   # A 2, B 2, E 1
    with pytest.raises(ValueError):
        opioids.TaperThreshold(0)
    with pytest.raises(ValueError):
        opioids.TaperThreshold(10, "fortnight")
    with pytest.raises(TypeError):
        opioids.fast_tapers(tiny, threshold=0.1)


def _taper_clinic(tmp_path, drops):
    """One baseline user per (patient, mme_after, days): baseline 100 MME/day
    recorded the day before the first infusion, the next record ``days``
    after the baseline record."""
    rows = []
    for patient, after, days in drops:
        start = dt.date(2029, 1, 1)
        rows += [(patient, start.isoformat(), "intake", "Migraine", "Denver", "", "8", "",
                  "100", "", "", ""),
                 (patient, (start + dt.timedelta(1)).isoformat(), "infusion", "", "Denver",
                  "IV", "8", "", "", "", "", ""),
                 (patient, (start + dt.timedelta(days)).isoformat(), "follow_up", "", "Denver",
                  "", "", "", str(after), "", "", "")]
    path = write_csv(tmp_path / "tapers.csv", rows, TINY_COLUMNS[:3] + TINY_COLUMNS[4:13])
    db_path = tmp_path / "tapers.duckdb"
    con = db.connect(db_path)
    result = ingest_file(con, path, ingest_date=TINY_INGEST_DATE)
    con.close()
    assert result.status == "ingested" and result.rows_quarantined == 0, result
    return store.Snapshot(db_path)


def test_taper_boundaries_by_hand(tmp_path):
    """SPEC §3 edges, worked out by hand (baseline 100 MME/day):
      week     100 -> 90 in 7 days   10%/week exactly: rapid (inclusive)
      month    100 -> 90 in 30 days  10%/30 days exactly: faster than usual, not rapid
      slow     100 -> 91 in 30 days  9%/30 days: neither
      stop     100 -> 0 in 70 days   100%/10 weeks = 10%/week: a stop is rapid too
      up       100 -> 120 in 7 days  an increase: neither
    """
    snap = _taper_clinic(tmp_path, [("week", 90, 7), ("month", 90, 30), ("slow", 91, 30),
                                    ("stop", 0, 70), ("up", 120, 7)])
    got = opioids.taper_intervals(snap).set_index("patient_id")
    assert got["rapid"].to_dict() == {"month": False, "slow": False, "stop": True,
                                      "up": False, "week": True}
    assert got["faster_than_usual"].to_dict() == {"month": True, "slow": False, "stop": True,
                                                  "up": False, "week": True}
    assert got.loc["month", "pace_per_30_days"] == pytest.approx(0.10)
    # thresholds set either way: 2.5%/week is 10.7%/30 days
    per_month = opioids.fast_tapers(snap, threshold=opioids.TaperThreshold(9, "month"))
    assert sorted(per_month.flagged["patient_id"]) == ["month", "slow", "stop", "week"]
    per_week = opioids.fast_tapers(snap, threshold=opioids.TaperThreshold(2.1, "week"))
    assert sorted(per_week.flagged["patient_id"]) == ["month", "slow", "stop", "week"]
    assert opioids.fast_tapers(snap).rapid_patients == 2
    assert opioids.fast_tapers(snap).faster_than_usual_patients == 3


# --------------------------------------------------------------------------
# dose over time


def test_week_since_index():
    assert [opioids.week_since_index(d) for d in (-5, 0, 1, 7, 8, 14, 15, 90)] == \
        [0, 0, 1, 1, 2, 2, 3, 13]


def test_mme_by_week_by_hand(tiny):
    weekly = opioids.mme_by_week(tiny, min_patients=1).set_index("week")
    # week 0: the baselines 100, 100, 60
    assert weekly.loc[0, "patients"] == 3 and weekly.loc[0, "median_mme"] == 100
    # A's Jan 15 record is day 13 -> week 2; Feb 12 day 41 -> week 6; Feb 2 (B) day 27 -> week 4
    assert weekly.loc[2, "median_mme"] == 70 and weekly.loc[6, "median_mme"] == 60
    assert weekly.loc[4, "median_mme"] == 90
    # week 13 (day 90): A 60, B 40, E 0
    assert weekly.loc[13, "patients"] == 3
    assert (weekly.loc[13, "median_mme"], weekly.loc[13, "q1_mme"], weekly.loc[13, "q3_mme"]) \
        == (40, 20, 50)
    assert weekly.loc[13, "median_percent_of_baseline"] == pytest.approx(40)
    # weeks with fewer than min_patients are left out
    assert opioids.mme_by_week(tiny, min_patients=3)["week"].tolist() == [0, 13]
    assert opioids.mme_by_week(tiny, Filters(sites=("Nowhere",))).empty


def test_monthly_use_by_hand(tiny):
    monthly = opioids.monthly_use(tiny).set_index("month")
    months = [dt.date(2029, m, 1) for m in (1, 2, 4, 5)]
    assert list(monthly.index) == months
    counts = monthly[["patients_recorded", "on_opioids", "at_least_50", "at_least_90"]]
    assert counts.loc[months[0]].tolist() == [3, 2, 2, 1]   # A 70 (last of Jan), B 100, C 0
    assert counts.loc[months[1]].tolist() == [4, 3, 3, 1]   # A 60, B 90, C 0, E 60
    assert counts.loc[months[2]].tolist() == [3, 3, 1, 0]   # A 60, B 40, D 10
    assert counts.loc[months[3]].tolist() == [1, 0, 0, 0]   # E 0; F (untreated) never counted
    assert monthly.loc[months[1], "share_on_opioids"] == pytest.approx(0.75)
    denver = opioids.monthly_use(tiny, Filters(sites=("Denver",))).set_index("month")
    assert denver.loc[months[0], "patients_recorded"] == 2


def test_benzodiazepine_by_month_by_hand(tiny):
    benzo = opioids.benzodiazepine_by_month(tiny).set_index("month")
    jan, feb, apr, may = (dt.date(2029, m, 1) for m in (1, 2, 4, 5))
    columns = ["visits_recorded", "visits_on_benzodiazepine", "opioid_users_recorded",
               "opioid_users_on_benzodiazepine"]
    assert benzo.loc[jan, columns].tolist() == [4, 2, 2, 1]   # users A (yes), B (no)
    assert benzo.loc[feb, columns].tolist() == [3, 1, 3, 1]   # users A, B, E (yes)
    assert benzo.loc[apr, columns].tolist() == [1, 0, 1, 0]   # B and D have no benzo record
    assert benzo.loc[may, columns].tolist() == [1, 1, 0, 0]   # E is off opioids
    assert benzo.loc[jan, "share_visits"] == pytest.approx(0.5)
    assert pd.isna(benzo.loc[may, "share_opioid_users"])


# --------------------------------------------------------------------------
# outcomes at a timepoint


def test_mme_changes_and_summary_by_hand(tiny):
    # Cutoff May 4.  3-month windows (days 60-120) close: A (index Jan 2) May 2,
    # due; B (Jan 6) May 6 and E (Feb 3) Jun 3, not yet due: their early
    # follow-ups (B -60%, E stopped) are provisional and never counted (SPEC §3).
    changes = opioids.mme_changes(tiny, "3m").set_index("patient_id")
    assert changes["percent_change"].to_dict() == pytest.approx({"A": -40})

    summary = opioids.opioid_summary(tiny, "3m", "itt")
    assert (summary.treated, summary.baseline_known, summary.baseline_users) == (5, 4, 3)
    assert (summary.baseline_at_least_50, summary.baseline_at_least_90) == (3, 2)
    assert summary.median_baseline_mme == 100
    assert (summary.stopped.responders, summary.stopped.n) == (0, 1)    # A: 100 -> 60
    assert (summary.halved.responders, summary.halved.n) == (0, 1)
    assert summary.with_follow_up == 1 and summary.median_percent_change == -40
    # 4 weeks (window closed for all three; days 14-42): A Feb 12 60 (-40%; Jan 15 is
    # day 13, outside), B Feb 2 90 (-10%), E none.
    four = opioids.opioid_summary(tiny, "4w", "itt")
    assert (four.halved.responders, four.halved.n) == (0, 3)
    assert opioids.mme_changes(tiny, "4w").set_index("patient_id")["percent_change"].to_dict() \
        == pytest.approx({"A": -40, "B": -10})
    # 6 months: nobody's window has closed and nobody has the follow-up yet
    later = opioids.opioid_summary(tiny, "6m", "itt")
    assert later.stopped.n == 0 and later.stopped.rate is None
    boulder = opioids.opioid_summary(tiny, "3m", "completers", Filters(sites=("Boulder",)))
    assert (boulder.baseline_users, boulder.halved.responders, boulder.halved.n) == (1, 0, 0)
    with pytest.raises(ValueError):
        opioids.opioid_summary(tiny, "5y")


# --------------------------------------------------------------------------
# the demo clinic: independent computations


FILTER_CASES = [Filters(), Filters(sites=("Denver", "Boulder")),
                Filters(conditions=("Migraine", "Neuropathy"), index_from=dt.date(2025, 1, 1))]


@pytest.mark.parametrize("filters", FILTER_CASES)
@pytest.mark.parametrize("timepoint,population", [("3m", "itt"), ("6m", "completers")])
def test_opioid_rates_match_the_outcome_grid(demo_snapshot, filters, timepoint, population):
    summary = opioids.opioid_summary(demo_snapshot, timepoint, population, filters, "wilson")
    for definition, rate in (("mme_stop", summary.stopped), ("mme50", summary.halved)):
        overall = outcomes.responder_rates(demo_snapshot, timepoint, definition, population,
                                           filters).overall
        assert (rate.responders, rate.n) == (overall.responders, overall.n)
        assert rate.ci_low == pytest.approx(overall.ci_low, nan_ok=True) if overall.n else True


def _demo_frames(snap):
    visits = snap.query("SELECT * FROM stg_visits")
    patients = snap.query("SELECT * FROM patients")
    baselines = snap.query("SELECT * FROM baselines")
    return visits, patients, baselines


def _in_view(patients: pd.DataFrame, filters: Filters) -> set:
    keep = patients[patients.treated]
    if filters.sites:
        keep = keep[keep.site.isin(filters.sites)]
    if filters.conditions:
        keep = keep[keep.condition.isin(filters.conditions)]
    if filters.index_from:
        keep = keep[pd.to_datetime(keep.index_date).dt.date >= filters.index_from]
    return set(keep.patient_id)


@pytest.mark.parametrize("filters", FILTER_CASES)
def test_monthly_use_matches_pandas(demo_snapshot, filters):
    visits, patients, _ = _demo_frames(demo_snapshot)
    mine = visits[visits.patient_id.isin(_in_view(patients, filters))
                  & visits.opioid_mme_per_day.notna()].copy()
    mine["month"] = pd.to_datetime(mine.visit_date).dt.to_period("M").dt.start_time.dt.date
    last = (mine.sort_values(["visit_date", "same_day_order", "source_line"])
            .groupby(["patient_id", "month"]).opioid_mme_per_day.last().reset_index())
    expected = last.groupby("month").opioid_mme_per_day.agg(
        patients_recorded="size", on_opioids=lambda s: int((s > 0).sum()),
        at_least_50=lambda s: int((s >= 50).sum()), at_least_90=lambda s: int((s >= 90).sum()))
    got = opioids.monthly_use(demo_snapshot, filters).set_index("month")
    pd.testing.assert_frame_equal(
        got[["patients_recorded", "on_opioids", "at_least_50", "at_least_90"]],
        expected.astype(int), check_names=False, check_index_type=False)


@pytest.mark.parametrize("filters", FILTER_CASES[:2])
def test_taper_intervals_match_pandas(demo_snapshot, filters):
    visits, patients, baselines = _demo_frames(demo_snapshot)
    users = baselines[baselines.baseline_mme > 0].set_index("patient_id")
    keep = _in_view(patients, filters) & set(users.index)
    records = visits[visits.patient_id.isin(keep) & visits.opioid_mme_per_day.notna()]
    records = (records.sort_values(["patient_id", "visit_date", "same_day_order", "source_line"])
               .groupby(["patient_id", "visit_date"]).opioid_mme_per_day.last().reset_index())
    records = records[records.visit_date >= records.patient_id.map(users.baseline_mme_date)]
    expected = []
    for patient, part in records.groupby("patient_id"):
        rows = list(part.itertuples())
        base = users.loc[patient, "baseline_mme"]
        for before, after in zip(rows, rows[1:]):
            weeks = (after.visit_date - before.visit_date).days / 7
            expected.append((patient, (before.opioid_mme_per_day - after.opioid_mme_per_day)
                             / base / weeks))
    got = opioids.taper_intervals(demo_snapshot, filters)
    assert len(got) == len(expected) > 0
    assert list(got.patient_id) == [p for p, _ in expected]
    assert got.pace.tolist() == pytest.approx([pace for _, pace in expected])
    flagged = opioids.fast_tapers(demo_snapshot, filters)
    assert flagged.flagged_intervals == sum(pace >= 0.10 - 1e-9 for _, pace in expected)
    rapid = {p for p, pace in expected if pace >= 0.10 - 1e-9}
    usual = {p for p, pace in expected if pace * 30 / 7 >= 0.10 - 1e-9}
    assert (flagged.rapid_patients, flagged.faster_than_usual_patients) == (len(rapid),
                                                                           len(usual))
    assert len(usual) > len(rapid) > 0


def test_mme_by_week_matches_pandas(demo_snapshot):
    records = opioids.mme_records(demo_snapshot)
    after = records[records.days_since_index > 0].copy()
    after["week"] = (after.days_since_index + 6) // 7
    last = after.sort_values("record_date").groupby(["patient_id", "week"]).mme.last()
    baseline = records.drop_duplicates("patient_id").set_index("patient_id").baseline_mme
    weekly = opioids.mme_by_week(demo_snapshot).set_index("week")
    assert weekly.loc[0, "median_mme"] == pytest.approx(baseline.median())
    assert weekly.loc[0, "patients"] == len(baseline)
    per_week = last.groupby(level="week")
    for week, row in weekly.drop(index=0).iterrows():
        assert row.patients == per_week.size()[week] >= charts.MIN_PER_POINT
        assert row.median_mme == pytest.approx(per_week.median()[week])
    assert all(n < charts.MIN_PER_POINT for w, n in per_week.size().items()
               if w not in weekly.index)
