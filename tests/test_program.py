"""The medical director's program view: analysis.metrics.program_overview
(quarter deltas), conditions, pain (pain over time) and patient_flow.

The hand-worked tests write a tiny session export, ingest it into a DuckDB
file and read it through an ``analysis.storage.store.Snapshot``; every expected number
is worked out by hand in the comments.  The demo-clinic tests check the same
functions against an independent pandas computation and against
``analysis.metrics.outcomes`` (the one source of the program's rates).
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.core.audience import Audience
from analysis.core import audience, stats
from analysis.metrics import charts, conditions, outcomes, pain, patient_flow, program_overview
from analysis.storage import db, store
from analysis.ingest.pipeline import ingest_file
from analysis.core.filters import Filters
from analysis.core.filters import quarter_bounds

COLUMNS = ("patient_id", "visit_date", "visit_type", "condition", "site", "route",
           "pain_score", "pain_post", "opioid_mme_per_day")


def row(patient: str, on: dt.date | str, visit_type: str, *, pain=None, post=None, mme=None,
        condition="Migraine", site="North", route="IV") -> dict:
    on = dt.date.fromisoformat(on) if isinstance(on, str) else on
    return {"patient_id": patient, "visit_date": on.isoformat(), "visit_type": visit_type,
            "condition": condition, "site": site, "route": route, "pain_score": pain,
            "pain_post": post, "opioid_mme_per_day": mme}


def snapshot_of(tmp_path: Path, rows: list[dict]) -> store.Snapshot:
    path = tmp_path / "sessions.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    db_path = tmp_path / "clinic.duckdb"
    con = db.connect(db_path)
    result = ingest_file(con, path, ingest_date=dt.date(2030, 1, 1))
    con.close()
    assert result.status == "ingested", result
    assert result.rows_quarantined == 0, result
    return store.Snapshot(db_path)


def plus(start: str, days: int) -> dt.date:
    return dt.date.fromisoformat(start) + dt.timedelta(days=days)


# --------------------------------------------------------------------------
# reporting quarters


@pytest.mark.parametrize("cutoff,current,previous", [
    ("2026-03-31", "2026Q1", "2025Q4"),   # last day of a quarter: that quarter is complete
    ("2026-04-01", "2026Q1", "2025Q4"),   # first day of the next: still Q1
    ("2026-03-30", "2025Q4", "2025Q3"),   # one day short: Q1 is not complete
    ("2026-12-31", "2026Q4", "2026Q3"),
    ("2027-01-01", "2026Q4", "2026Q3"),
    ("2026-01-01", "2025Q4", "2025Q3"),
])
def test_reporting_quarters(cutoff, current, previous):
    quarter, before = program_overview.reporting_quarters(dt.date.fromisoformat(cutoff))
    assert (quarter.name, before.name) == (current, previous)
    assert quarter.start == quarter_bounds(current)[0]
    assert quarter.end == quarter_bounds(current)[1]


def test_reporting_quarters_without_data():
    assert program_overview.reporting_quarters(None) is None


# --------------------------------------------------------------------------
# overview: quarter edges 31 March / 1 April


QUARTER_ROWS = [
    row("A", "2026-03-31", "infusion", pain=7),
    row("A", "2026-04-01", "booster"),
    row("B", "2025-12-31", "infusion", pain=8, mme=60),
    row("B", "2026-01-01", "infusion"),
    row("B", "2026-01-28", "follow_up", pain=4, mme=20),
    row("C", "2025-10-01", "infusion", pain=6, mme=30),
    row("C", "2025-10-03", "infusion"),
    row("C", "2025-10-29", "follow_up", pain=5, mme=0),
    row("C", "2026-03-31", "booster"),
    row("D", "2026-01-15", "intake", pain=5),
    row("E", "2025-09-30", "infusion", pain=10, mme=0),
    row("F", "2026-03-03", "infusion", pain=5),
    row("F", "2026-03-20", "follow_up", pain=2),
    row("G", "2026-03-04", "infusion", pain=4),
    row("G", "2026-03-25", "follow_up", pain=4),
]


@pytest.fixture(scope="module")
def quarter_snap(tmp_path_factory):
    """Cutoff 15 April 2026 (D's second intake): quarter 2026Q1 vs 2025Q4.
    The 4-week window (days 14–42) of F closes on 14 April and G's on 15
    April (the cutoff itself: due), so both are due (SPEC §3); A's is open.

    At 4 weeks (target day 28, window 14–42):
      B  index 2025-12-31 (Q4 start); infusion 2026-01-01 (Q1); target 2026-01-28 (Q1);
         pain 8 -> 4 (responder, change -4); MME 60 -> 20 (mme50, not stopped)
      C  index 2025-10-01 (Q4 start); infusion 10-03 (Q4); booster 2026-03-31 (Q1);
         target 2025-10-29 (Q4); pain 6 -> 5 (not, -1); MME 30 -> 0 (mme50 and stopped)
      E  index 2025-09-30 (Q3 start); target 2025-10-28 (Q4); pain 10, no follow-up,
         window closed: ITT non-responder; MME 0 (not an opioid user)
      F  index 2026-03-03 (Q1); target 2026-03-31 (Q1, last day); pain 5 -> 2 (responder, -3)
      G  index 2026-03-04 (Q1); target 2026-04-01 (Q2: neither quarter); pain 4 -> 4 (0)
      A  index 2026-03-31 (Q1 start, last day); booster 2026-04-01 (Q2); pain 7, not due
      D  intakes 2026-01-15 and 2026-04-15 only: never treated
    """
    rows = [*QUARTER_ROWS, row("D", "2026-04-15", "intake")]
    return snapshot_of(tmp_path_factory.mktemp("quarters"), rows)


def test_overview_arrow_leaves_provisional_results_out(tmp_path):
    """The same clinic with the cutoff on 1 April: F's and G's 4-week windows
    are still open, so their early follow-ups (F a responder) are provisional
    and stay out of the rate and its quarter-on-quarter arrow (SPEC §3); the
    old rule counted them and made 2026Q1 look better (2 of 3 -> 1 of 1)."""
    snap = snapshot_of(tmp_path, QUARTER_ROWS)
    view = program_overview.overview(snap, Filters(), "4w", "pain30", "itt", "wilson")
    assert view.cutoff == dt.date(2026, 4, 1)
    rate = view.measure("responder_rate")
    assert (rate.responders, rate.n) == (1, 3)                   # B of B C E
    assert rate.quarter == program_overview.QuarterValue(1.0, 1, 1)       # B only (F is provisional)
    assert rate.previous == program_overview.QuarterValue(0.0, 2, 0)      # C, E
    median = view.measure("median_pain_change")
    assert (median.value, median.n) == (-2.5, 2)                 # B -4, C -1
    assert median.quarter == program_overview.QuarterValue(-4.0, 1)
    waterfall = pain.pain_waterfall(snap, "4w", "pain30")
    assert list(waterfall.bars["patient_id"]) == ["C", "B"]
    flow = patient_flow.patient_flow(snap, "4w", "pain30")
    assert flow.reconciles


def test_overview_quarter_edges(quarter_snap):
    view = program_overview.overview(quarter_snap, Filters(), "4w", "pain30", "itt", "wilson")
    assert view.cutoff == dt.date(2026, 4, 15) and view.target_day == 28
    assert (view.quarter.name, view.previous.name) == ("2026Q1", "2025Q4")

    treated = view.measure("patients_treated")
    assert treated.value == 6                       # A B C E F G
    assert treated.quarter.value == 3               # A (31 Mar), F, G
    assert treated.previous.value == 2              # B (31 Dec), C (1 Oct)
    assert treated.delta == 1 and treated.delta_text == "+1"

    infusions = view.measure("infusions")
    assert infusions.value == 8                     # A1 B2 C2 E1 F1 G1
    assert infusions.quarter.value == 4             # A 31 Mar, B 1 Jan, F, G
    assert infusions.previous.value == 3            # B 31 Dec, C 1 and 3 Oct
    boosters = view.measure("boosters")
    assert boosters.value == 2
    assert boosters.quarter.value == 1              # C 31 Mar; A's 1 Apr is Q2
    assert boosters.previous.value == 0
    assert boosters.delta_text == "+1" and boosters.delta_direction == "up"

    rate = view.measure("responder_rate")
    # ITT, all in view: B C E F G are due (A is not); B and F respond.
    assert (rate.responders, rate.n) == (2, 5)
    assert rate.quarter == program_overview.QuarterValue(1.0, 2, 2)      # B, F
    assert rate.previous == program_overview.QuarterValue(0.0, 2, 0)     # C, E
    assert rate.delta == pytest.approx(1.0)
    assert rate.delta_text == "+100 pts" and rate.delta_good is True
    expected = outcomes.responder_rates(quarter_snap, "4w", "pain30", "itt", Filters(), "wilson")
    assert (rate.value, rate.ci_low, rate.ci_high) == pytest.approx(
        (expected.overall.rate, expected.overall.ci_low, expected.overall.ci_high))

    median = view.measure("median_pain_change")
    assert median.value == pytest.approx(-2.0)      # B -4, C -1, F -3, G 0
    assert median.n == 4
    assert median.quarter == program_overview.QuarterValue(-3.5, 2)      # B, F
    assert median.previous == program_overview.QuarterValue(-1.0, 1)     # C
    assert median.delta_text == "−2.5 points"
    assert median.delta_direction == "down" and median.delta_good is True  # less pain is better
    overall = outcomes.median_pain_change(quarter_snap, "4w", Filters())
    assert (median.value, median.ci_low, median.ci_high) == (
        overall.median, overall.ci_low, overall.ci_high)

    halved, stopped = view.measure("mme50"), view.measure("mme_stop")
    assert (halved.responders, halved.n) == (2, 2)             # B, C (E is not a user)
    assert halved.quarter == program_overview.QuarterValue(1.0, 1, 1)    # B
    assert halved.previous == program_overview.QuarterValue(1.0, 1, 1)   # C
    assert halved.delta_text == "±0 pts" and halved.delta_direction == "off"
    assert (stopped.responders, stopped.n) == (1, 2)
    assert stopped.quarter == program_overview.QuarterValue(0.0, 1, 0)
    assert stopped.previous == program_overview.QuarterValue(1.0, 1, 1)
    assert stopped.delta_text == "−100 pts" and stopped.delta_good is False


def test_overview_completers_and_exact_ci(quarter_snap):
    view = program_overview.overview(quarter_snap, Filters(), "4w", "pain30", "completers", "exact")
    rate = view.measure("responder_rate")
    assert (rate.responders, rate.n) == (2, 4)      # B C F G have a follow-up
    assert rate.previous == program_overview.QuarterValue(0.0, 1, 0)   # C only: E has no follow-up
    exact = stats.proportion(2, 4, method="exact")
    assert (rate.ci_low, rate.ci_high) == pytest.approx((exact.ci_low, exact.ci_high))


def test_overview_honours_filters(quarter_snap):
    # Cohort from 1 January 2026: A, F, G only.
    view = program_overview.overview(quarter_snap, Filters(index_from=dt.date(2026, 1, 1)), "4w")
    assert view.measure("patients_treated").value == 3
    assert view.measure("patients_treated").previous.value == 0
    assert view.measure("infusions").value == 3
    rate = view.measure("responder_rate")
    assert (rate.responders, rate.n) == (1, 2)      # F responds, G does not; A not due
    assert rate.quarter.n == 1                      # F (G's target day is 1 April)


def test_activity_by_quarter(quarter_snap):
    activity = program_overview.activity_by_quarter(quarter_snap)
    assert list(activity["quarter"]) == ["2025Q3", "2025Q4", "2026Q1", "2026Q2"]
    assert list(activity["patients_starting"]) == [1, 2, 3, 0]
    assert list(activity["patients_treated"]) == [1, 2, 5, 1]  # Q1: A B C F G; Q2: A
    assert list(activity["infusions"]) == [1, 3, 4, 0]
    assert list(activity["boosters"]) == [0, 0, 1, 1]
    assert list(activity["complete"]) == [True, True, True, False]


def test_overview_without_patients(quarter_snap):
    view = program_overview.overview(quarter_snap, Filters(sites=("Nowhere",)), "4w")
    assert view.patients == 0
    assert view.activity.empty
    for measure in view.measures:
        assert measure.value in (0, None)
        assert measure.delta_text in (None, "±0")


def test_overview_empty_database(tmp_path):
    snap = store.Snapshot(tmp_path / "missing.duckdb")
    view = program_overview.overview(snap)
    assert view.cutoff is None and view.quarter is None and view.patients == 0
    assert all(m.delta is None for m in view.measures)
    flow = patient_flow.patient_flow(snap)
    assert flow.reconciles and flow.stages[0].patients == 0


# --------------------------------------------------------------------------
# waterfall (same export)


def test_waterfall(quarter_snap):
    waterfall = pain.pain_waterfall(quarter_snap, "4w", "pain30")
    bars = waterfall.bars
    # Largest increase first: G 0%, C -16.7%, B -50%, F -60%.
    assert list(bars["patient_id"]) == ["G", "C", "B", "F"]
    assert list(bars["percent_change"]) == pytest.approx([0, -100 / 6, -50, -60])
    assert list(bars["responder"]) == [False, False, True, True]
    assert waterfall.responders == 2
    assert waterfall.due_without_follow_up == 1     # E
    # pain50: B (-50%) and F respond; an opioid definition falls back to pain30.
    assert list(pain.pain_waterfall(quarter_snap, "4w", "pain50").bars["responder"]) == \
        [False, False, True, True]
    fallback = pain.pain_waterfall(quarter_snap, "4w", "mme50")
    assert fallback.definition == "pain30" and fallback.requested_definition == "mme50"
    # The same patients as outcomes.pain_changes.
    assert sorted(bars["patient_id"]) == sorted(
        outcomes.pain_changes(quarter_snap, "4w")["patient_id"])


# --------------------------------------------------------------------------
# patient flow


START = "2026-01-05"


def flow_rows() -> list[dict]:
    """Nine patients, cutoff day 200 (P8's visit).  Days from each index date.

    P1  intake only                                       -> not treated
    P2  infusions days 0, 3; pain 7 -> 3 at day 28         -> stopped early (due, responder)
    P3  infusions 0, 3, 7, 42 (day 42 counts); pain 8 -> 6  -> with follow-up, non-responder
        MME 40 -> 10 (mme50 responder)
    P4  infusions 0, 2, 4, 6; pain 6 -> 2                  -> responder; MME 0 (not a user)
    P5  infusions 0-3, no pain at all; MME 20, none later   -> no baseline pain; mme50: lost
    P6  infusions 0-3, pain 0                               -> baseline pain 0; MME unknown
    P7  infusions 0-3, pain 5, no follow-up                 -> lost to follow-up; MME unknown
    P8  index day 190, infusions 190-193, pain 5; MME 30    -> not yet due
    P9  infusions 0, 3, 7 (+ booster day 7), 43 (too late) -> stopped early, no pain
    """
    d = lambda n: plus(START, n)  # noqa: E731
    rows = [row("P1", d(0), "intake", pain=6)]
    rows += [row("P2", d(-2), "intake", pain=7), row("P2", d(0), "infusion"),
             row("P2", d(3), "infusion"), row("P2", d(28), "follow_up", pain=3)]
    rows += [row("P3", d(-5), "intake", pain=8, mme=40)]
    rows += [row("P3", d(n), "infusion") for n in (0, 3, 7, 42)]
    rows += [row("P3", d(28), "follow_up", pain=6, mme=10)]
    rows += [row("P4", d(-1), "intake", pain=6, mme=0)]
    rows += [row("P4", d(n), "infusion") for n in (0, 2, 4, 6)]
    rows += [row("P4", d(30), "follow_up", pain=2)]
    rows += [row("P5", d(-1), "intake", mme=20)]
    rows += [row("P5", d(n), "infusion") for n in (0, 1, 2, 3)]
    rows += [row("P6", d(-1), "intake", pain=0)]
    rows += [row("P6", d(n), "infusion") for n in (0, 1, 2, 3)]
    rows += [row("P7", d(-1), "intake", pain=5)]
    rows += [row("P7", d(n), "infusion") for n in (0, 1, 2, 3)]
    rows += [row("P8", d(189), "intake", pain=5, mme=30)]
    rows += [row("P8", d(n), "infusion") for n in (190, 191, 192, 193)]
    rows += [row("P8", d(200), "follow_up")]
    rows += [row("P9", d(n), "infusion") for n in (0, 3, 7, 43)]
    rows += [row("P9", d(7), "booster")]
    return rows


@pytest.fixture(scope="module")
def flow_snap(tmp_path_factory):
    return snapshot_of(tmp_path_factory.mktemp("flow"), flow_rows())


def stage_counts(flow: patient_flow.PatientFlow) -> dict[str, int]:
    return {s.key: s.patients for s in flow.stages}


def exit_counts(flow: patient_flow.PatientFlow) -> dict[str, int]:
    return {e.reason: e.patients for s in flow.stages for e in s.exits}


def test_flow_pain30(flow_snap):
    flow = patient_flow.patient_flow(flow_snap, "4w", "pain30")
    assert stage_counts(flow) == {"seen": 9, "treated": 8, "induction": 6, "due": 3,
                                  "follow_up": 2, "responder": 1}
    assert exit_counts(flow) == {
        "not treated": 1, "stopped before completing induction": 2,
        "no baseline pain": 1, "baseline pain 0": 1, "not yet due": 1,
        "lost to follow-up": 1, "non-responder": 1}
    assert flow.reconciles
    assert (flow.stopped_early_due, flow.stopped_early_responders) == (1, 1)   # P2
    people = patient_flow.flow_patients(flow_snap, "4w", "pain30").set_index("patient_id")
    assert people.loc["P3", "induction_infusions"] == 4      # day 42 counts
    assert people.loc["P9", "induction_infusions"] == 3      # day 43 does not; day 7 once
    assert pd.isna(people.loc["P4", "exit_reason"])          # the responder
    # The program's ITT denominator = due after induction + early stoppers who were due.
    rates = outcomes.responder_rates(flow_snap, "4w", "pain30", "itt")
    assert rates.overall.n == flow.stage("due").patients + flow.stopped_early_due
    assert rates.overall.responders == flow.stage("responder").patients \
        + flow.stopped_early_responders


def test_flow_mme50(flow_snap):
    flow = patient_flow.patient_flow(flow_snap, "4w", "mme50")
    assert stage_counts(flow) == {"seen": 9, "treated": 8, "induction": 6, "due": 2,
                                  "follow_up": 1, "responder": 1}
    assert exit_counts(flow) == {
        "not treated": 1, "stopped before completing induction": 2,
        "opioid use at baseline unknown": 2, "not on opioids at baseline": 1,
        "not yet due": 1, "lost to follow-up": 1, "non-responder": 0}
    assert flow.reconciles


def test_flow_claim_lists_every_baseline_reason(flow_snap):
    flow = patient_flow.patient_flow(flow_snap, "4w", "claim")
    reasons = [e.reason for e in flow.stage("induction").exits]
    assert reasons == ["no baseline pain", "baseline pain 0", "opioid use at baseline unknown",
                       "not on opioids at baseline", "not yet due"]
    assert flow.reconciles


def test_flow_table_matches_stages(flow_snap):
    flow = patient_flow.patient_flow(flow_snap, "4w", "pain30")
    table = flow.table()
    stages = table[table["stage"] != ""]
    assert list(stages["patients"]) == [s.patients for s in flow.stages]
    exits = table[table["stage"] == ""]
    assert list(exits["left"]) == [e.patients for s in flow.stages for e in s.exits]
    # each stage = next stage + the exits between them, read off the table
    for step in range(1, len(flow.stages)):
        here = table[table["step"] == step]
        following = table[(table["step"] == step + 1) & (table["stage"] != "")]
        assert here["patients"].sum() == following["patients"].sum() + here["left"].sum()


def test_flow_filters(flow_snap):
    # Untreated patients: the cohort filter applies to their first visit,
    # a route filter leaves them out.
    later = patient_flow.patient_flow(flow_snap, "4w", "pain30",
                                 Filters(index_from=plus(START, 100)))
    assert stage_counts(later)["seen"] == 1 and stage_counts(later)["treated"] == 1   # P8
    early = patient_flow.patient_flow(flow_snap, "4w", "pain30", Filters(index_to=plus(START, 10)))
    assert stage_counts(early)["seen"] == 8 and exit_counts(early)["not treated"] == 1
    iv = patient_flow.patient_flow(flow_snap, "4w", "pain30", Filters(routes=("IV",)))
    assert stage_counts(iv)["seen"] == 8 and exit_counts(iv)["not treated"] == 0
    nowhere = patient_flow.patient_flow(flow_snap, "4w", "pain30", Filters(sites=("Nowhere",)))
    assert all(s.patients == 0 for s in nowhere.stages) and nowhere.reconciles


# --------------------------------------------------------------------------
# pain by week and acute effect


@pytest.fixture(scope="module")
def week_snap(tmp_path_factory):
    """Four patients.  Days from each index date (Q1, Q2 on 5 Jan; Q3, Q4 on 10 Jan).

    Q1  intake day -7 pain 9 (before index: not drawn); infusion 0: 8 (post 5);
        infusion 3: 6 (post 5); follow-up 7: 5; follow-up 14: 4
    Q2  infusion 0: 6 (post 2); infusion 6: 4 (post 4); follow-up 8: 3
    Q3  infusion 0: 7 (post 6); follow-up 10: 5; follow-up 364: 2 (week 52);
        follow-up 371: 1 (week 53, not drawn)
    Q4  infusion 0: 10, no post score
    """
    a, b = "2026-01-05", "2026-01-10"
    rows = [
        row("Q1", plus(a, -7), "intake", pain=9),
        row("Q1", plus(a, 0), "infusion", pain=8, post=5),
        row("Q1", plus(a, 3), "infusion", pain=6, post=5),
        row("Q1", plus(a, 7), "follow_up", pain=5),
        row("Q1", plus(a, 14), "follow_up", pain=4),
        row("Q2", plus(a, 0), "infusion", pain=6, post=2),
        row("Q2", plus(a, 6), "infusion", pain=4, post=4),
        row("Q2", plus(a, 8), "follow_up", pain=3),
        row("Q3", plus(b, 0), "infusion", pain=7, post=6, condition="Lupus"),
        row("Q3", plus(b, 10), "follow_up", pain=5, condition="Lupus"),
        row("Q3", plus(b, 364), "follow_up", pain=2, condition="Lupus"),
        row("Q3", plus(b, 371), "follow_up", pain=1, condition="Lupus"),
        row("Q4", plus(b, 0), "infusion", pain=10, condition="Lupus"),
    ]
    return snapshot_of(tmp_path_factory.mktemp("weeks"), rows)


def test_pain_by_week(week_snap):
    weeks = pain.pain_by_week(week_snap, min_patients=1)
    assert list(weeks["week"]) == [0, 1, 2, 52]
    assert list(weeks["patients"]) == [4, 3, 1, 1]
    # week 0, one value per patient: Q1 mean(8, 6) = 7, Q2 mean(6, 4) = 5, Q3 7, Q4 10
    # -> 5, 7, 7, 10: median 7, quartiles (linear) 6.5 and 7.75
    week0 = weeks.iloc[0]
    assert (week0["q1"], week0["median"], week0["q3"]) == pytest.approx((6.5, 7, 7.75))
    # week 1: Q1 5 (day 7), Q2 3 (day 8), Q3 5 (day 10) -> median 5, quartiles 4 and 5
    week1 = weeks.iloc[1]
    assert (week1["q1"], week1["median"], week1["q3"]) == pytest.approx((4, 5, 5))
    assert weeks.iloc[3]["median"] == 2
    # at least 3 patients: weeks 0 and 1; the default (5) leaves nothing
    assert list(pain.pain_by_week(week_snap, min_patients=3)["week"]) == [0, 1]
    assert pain.pain_by_week(week_snap).empty
    # one condition: Lupus = Q3, Q4
    lupus = pain.pain_by_week(week_snap, conditions.for_condition(Filters(), "Lupus"), 1)
    assert list(lupus["week"]) == [0, 1, 52]
    assert lupus.iloc[0]["median"] == pytest.approx(8.5)


def test_acute_by_infusion(week_snap):
    acute = pain.acute_by_infusion(week_snap, min_patients=1)
    # infusion 1: Q1 8-5 = 3, Q2 6-2 = 4, Q3 7-6 = 1 (Q4 has no post score)
    # infusion 2: Q1 6-5 = 1, Q2 4-4 = 0
    assert list(acute["infusion_number"]) == [1, 2]
    assert list(acute["patients"]) == [3, 2]
    assert list(acute["median"]) == pytest.approx([3, 0.5])
    assert list(acute["q1"]) == pytest.approx([2, 0.25])
    assert list(acute["q3"]) == pytest.approx([3.5, 0.75])
    assert list(pain.acute_by_infusion(week_snap, min_patients=3)["infusion_number"]) == [1]


def test_conditions_in_view(week_snap):
    assert conditions.conditions_in_view(week_snap) == ["Migraine", "Lupus"]
    assert conditions.conditions_in_view(week_snap, Filters(sites=("Nowhere",))) == []


# --------------------------------------------------------------------------
# the demo clinic: independent pandas computations


@pytest.fixture(scope="module")
def demo_frames(demo_snapshot):
    visits = demo_snapshot.query("SELECT * FROM stg_visits")
    patients = demo_snapshot.query("SELECT * FROM patients")
    for frame, columns in ((visits, ["visit_date"]), (patients, ["index_date"])):
        for column in columns:
            frame[column] = pd.to_datetime(frame[column])
    return visits, patients


DEMO_FILTERS = [Filters(), Filters(sites=("Denver", "Boulder")),
                Filters(conditions=("Migraine", "Neuropathy"), routes=("IV",))]


@pytest.mark.parametrize("filters", DEMO_FILTERS)
def test_demo_pain_by_week_matches_pandas(demo_snapshot, demo_frames, filters):
    visits, patients = demo_frames
    chosen = _select(patients, filters)
    merged = visits.merge(chosen[["patient_id", "index_date"]], on="patient_id")
    merged = merged[merged["pain_score"].notna()]
    days = (merged["visit_date"] - merged["index_date"]).dt.days
    merged = merged.assign(week=days // 7)[(days >= 0) & (days // 7 <= 52)]
    per_patient = merged.groupby(["patient_id", "week"])["pain_score"].mean().reset_index()
    grouped = per_patient.groupby("week")["pain_score"]
    expected = pd.DataFrame({"patients": grouped.size(), "q1": grouped.quantile(0.25),
                             "median": grouped.median(), "q3": grouped.quantile(0.75)})
    expected = expected[expected["patients"] >= charts.MIN_PER_POINT]
    got = pain.pain_by_week(demo_snapshot, filters).set_index("week")
    assert list(got.index) == list(expected.index)
    assert list(got["patients"]) == list(expected["patients"])
    for column in ("q1", "median", "q3"):
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-9)


@pytest.mark.parametrize("filters", DEMO_FILTERS)
def test_demo_activity_matches_pandas(demo_snapshot, demo_frames, filters):
    visits, patients = demo_frames
    chosen = _select(patients, filters)
    ketamine = visits[visits["visit_type"].isin(["infusion", "booster"])
                      & visits["patient_id"].isin(chosen["patient_id"])]
    quarter = ketamine["visit_date"].dt.to_period("Q").astype(str)
    activity = program_overview.activity_by_quarter(demo_snapshot, filters).set_index("quarter")
    infusions = ketamine[ketamine["visit_type"] == "infusion"].groupby(quarter).size()
    boosters = ketamine[ketamine["visit_type"] == "booster"].groupby(quarter).size()
    starts = chosen.groupby(chosen["index_date"].dt.to_period("Q").astype(str)).size()
    for name, got in activity.iterrows():
        assert got["infusions"] == infusions.get(name, 0)
        assert got["boosters"] == boosters.get(name, 0)
        assert got["patients_starting"] == starts.get(name, 0)
    assert activity["patients_starting"].sum() == len(chosen)


@pytest.mark.parametrize("filters", DEMO_FILTERS)
@pytest.mark.parametrize("setting", [("3m", "pain30", "itt", "wilson"),
                                     ("6m", "pain50", "completers", "exact"),
                                     ("12m", "claim", "itt", "wilson")])
def test_demo_overview_agrees_with_outcomes(demo_snapshot, filters, setting):
    timepoint, definition, population, ci = setting
    view = program_overview.overview(demo_snapshot, filters, timepoint, definition, population, ci)
    for key, chosen in (("responder_rate", definition), ("mme50", "mme50"),
                        ("mme_stop", "mme_stop")):
        expected = outcomes.responder_rates(demo_snapshot, timepoint, chosen, population,
                                            filters, ci).overall
        got = view.measure(key)
        assert (got.n, got.responders) == (expected.n, expected.responders)
        assert (got.ci_low, got.ci_high) == pytest.approx((expected.ci_low, expected.ci_high))
    median = outcomes.median_pain_change(demo_snapshot, timepoint, filters)
    assert view.measure("median_pain_change").value == median.median
    assert view.measure("patients_treated").value == outcomes.scope(demo_snapshot,
                                                                     filters).patients
    # The quarter's results: patients whose target day falls in it, by pandas.
    rows = program_overview.outcomes_due(demo_snapshot, timepoint, (definition,), filters)
    inside = rows[[view.quarter.start <= d <= view.quarter.end for d in rows["target_date"]]]
    chosen = inside[inside["eligible"] & inside["due"]
                    & (True if population == "itt" else inside["complete"])]
    rate = view.measure("responder_rate")
    assert rate.quarter.n == len(chosen)
    assert rate.quarter.responders == int(chosen["responder"].sum())


@pytest.mark.parametrize("filters", DEMO_FILTERS)
def test_demo_flow_reconciles(demo_snapshot, filters):
    for definition in ("pain30", "mme50", "claim"):
        flow = patient_flow.patient_flow(demo_snapshot, "3m", definition, filters)
        assert flow.reconciles
        rates = outcomes.responder_rates(demo_snapshot, "3m", definition, "itt", filters)
        assert rates.overall.n == flow.stage("due").patients + flow.stopped_early_due
        assert (rates.overall.n, rates.overall.responders) == (flow.itt_n, flow.itt_responders)
        assert flow.stage("treated").patients == outcomes.scope(demo_snapshot, filters).patients


def test_demo_condition_summary(demo_snapshot):
    summary = conditions.condition_summary(demo_snapshot, "3m", "pain30", "itt", Filters(), "wilson")
    rows = outcomes.condition_table(demo_snapshot, "3m", "pain30", "itt", Filters(), "wilson")
    assert list(summary.table["condition"]) == [r.condition for r in rows]
    assert list(summary.table["n"]) == [r.n for r in rows]
    assert list(summary.table["too_few"]) == [r.n < audience.SMALL_CELL for r in rows]
    assert not summary.table["suppressed"].any()
    # Ranked by the lower end of the 95% CI, highest first, with the
    # conditions of fewer than 11 patients last whatever their rate (an n = 1
    # group at 100% never leads).
    small = list(summary.table["n"] < audience.SMALL_CELL)
    assert small == sorted(small) and any(small)
    for part in (summary.table[summary.table["n"] >= audience.SMALL_CELL],
                 summary.table[summary.table["n"] < audience.SMALL_CELL]):
        lows = list(part["ci_low"].fillna(-1))
        assert lows == sorted(lows, reverse=True)
    external = conditions.condition_summary(demo_snapshot, "3m", "pain30", "itt", Filters(),
                                         "wilson", audience=Audience.EXTERNAL)
    small = external.table[[r.n < audience.SMALL_CELL for r in rows]]
    assert small["suppressed"].all() and small["n"].isna().all() and small["rate"].isna().all()
    assert external.overall == summary.overall


def test_a_tiny_group_never_leads_the_ranking():
    """Hand-made: n = 1 at 100% goes last; n = 11 at 55% (Wilson 28–79%)
    ranks below n = 199 at 48% (41–55%) by the lower end of its interval."""
    rows = [("Unspecified", 1, 1.0), ("Small", 11, 6 / 11), ("Neuropathy", 199, 95 / 199),
            ("Lupus", 53, 9 / 53)]
    keyed = []
    for name, n, rate in rows:
        p = stats.proportion(round(rate * n), n)
        keyed.append((outcomes.ranking_key(n, p.rate, p.ci_low, name), name))
    assert [name for _, name in sorted(keyed)] == ["Neuropathy", "Small", "Lupus", "Unspecified"]


@pytest.mark.parametrize("filters", DEMO_FILTERS)
def test_demo_acute_matches_pandas(demo_snapshot, demo_frames, filters):
    visits, patients = demo_frames
    chosen = _select(patients, filters)
    ketamine = visits[visits["visit_type"].isin(["infusion", "booster"])
                      & visits["patient_id"].isin(chosen["patient_id"])]
    ketamine = ketamine.sort_values(["patient_id", "visit_date", "same_day_order", "source_line"])
    ketamine = ketamine.assign(number=ketamine.groupby("patient_id").cumcount() + 1,
                               relief=ketamine["pain_score"] - ketamine["pain_post"])
    grouped = ketamine.dropna(subset=["relief"]).groupby("number")["relief"]
    expected = pd.DataFrame({"patients": grouped.size(), "median": grouped.median()})
    expected = expected[expected["patients"] >= charts.MIN_PER_POINT]
    got = pain.acute_by_infusion(demo_snapshot, filters).set_index("infusion_number")
    assert list(got.index) == list(expected.index)
    np.testing.assert_allclose(got["median"], expected["median"], rtol=1e-9)


def _select(patients: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """Treated patients matching the filters, in pandas."""
    chosen = patients[patients["treated"]]
    if filters.sites:
        chosen = chosen[chosen["site"].isin(filters.sites)]
    if filters.conditions:
        chosen = chosen[chosen["condition"].isin(filters.conditions)]
    if filters.routes:
        chosen = chosen[chosen["route"].isin(filters.routes)]
    return chosen
