"""Outcome definitions (SPEC §3) and their statistics (SPEC §4), end to end.

Every test writes a tiny, hand-made session export, ingests it with
``analysis.ingest.pipeline`` into a DuckDB file, builds an ``analysis.storage.store.Snapshot``
and checks exact values in the ``patient_outcomes`` model or in what
``analysis.metrics.outcomes`` returns.  Days are written relative to ``BASE`` (day 0)
so the windows of SPEC §3 are easy to read off.

The last part generates a random program, recomputes every cell of the grid
with an independent pure-Python reading of SPEC §3 and compares; intervals
and claim verdicts are checked against statsmodels / scipy.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from collections import Counter, defaultdict

import pandas as pd
import pytest
import scipy.stats
from statsmodels.stats.proportion import proportion_confint

from analysis.core import audience, definitions, stats
from analysis.storage import db, store
from analysis.ingest.pipeline import ingest_file
from analysis.metrics import outcomes
from analysis.core.filters import Filters
from tests.helpers.builders import (INJECTION, VISITS_INGEST_DATE, build, build_db, claim_program,
                                    clock, day, filter_rows, outcome, treated, visit)

# --------------------------------------------------------------------------
# reading results (the exports are built by tests/helpers/builders.py)


def cell(grid: pd.DataFrame, timepoint="3m", definition="pain30", population="itt",
         group="All") -> tuple[int, int]:
    row = grid[(grid.timepoint == timepoint) & (grid.definition == definition)
               & (grid.population == population) & (grid.group == group)]
    assert len(row) == 1
    return int(row.n.iloc[0]), int(row.responders.iloc[0])


def date_of(value) -> dt.date | None:
    return None if value is None else pd.Timestamp(value).date()


# --------------------------------------------------------------------------
# follow-up selection: closest to the target, ties to the later visit


def test_equidistant_follow_ups_the_later_visit_wins(tmp_path):
    rows = [
        *treated("tie", pain=8, mme=60),
        visit("tie", 80, "follow_up", pain=6, mme=40),    # 10 days before the 3m target
        visit("tie", 100, "follow_up", pain=2, mme=10),   # 10 days after it: wins
        *treated("near", pain=8, mme=60),
        visit("near", 89, "follow_up", pain=6, mme=40),   # 1 day from the target: wins
        visit("near", 92, "follow_up", pain=2, mme=10),
        clock("tie", 500),
    ]
    snap = build(tmp_path, rows)
    tie = outcome(snap, "tie")
    assert tie["follow_up_pain"] == 2 and tie["follow_up_mme"] == 10
    assert snap.scalar("SELECT follow_up_pain_date FROM follow_ups "
                       "WHERE patient_id = 'tie' AND timepoint = '3m'") == day(100)
    near = outcome(snap, "near")
    assert near["follow_up_pain"] == 6 and near["follow_up_mme"] == 40


def test_pain_and_mme_follow_ups_are_chosen_separately(tmp_path):
    rows = [
        *treated("p", pain=8, mme=60),
        visit("p", 90, "follow_up", pain=3),       # closest pain
        visit("p", 110, "follow_up", mme=0),       # the only MME in the window
        clock("p", 500),
    ]
    snap = build(tmp_path, rows)
    row = outcome(snap, "p", "3m", "claim")
    assert (row["follow_up_pain"], row["follow_up_mme"]) == (3, 0)
    assert row["responder"]


WINDOW_EDGES = [("4w", 14), ("4w", 42), ("3m", 60), ("3m", 120),
                ("6m", 150), ("6m", 210), ("12m", 300), ("12m", 430)]
JUST_OUTSIDE = [("4w", 13), ("4w", 43), ("3m", 59), ("3m", 121),
                ("6m", 149), ("6m", 211), ("12m", 299), ("12m", 431)]


def test_window_edges_are_inclusive_and_one_day_outside_is_not(tmp_path):
    rows = []
    for timepoint, on in WINDOW_EDGES + JUST_OUTSIDE:
        patient = f"{timepoint}@{on}"
        rows += [*treated(patient, pain=8), visit(patient, on, "follow_up", pain=3)]
    rows.append(clock("4w@14", 1000))
    snap = build(tmp_path, rows)
    for timepoint, on in WINDOW_EDGES:
        row = outcome(snap, f"{timepoint}@{on}", timepoint)
        assert row["follow_up_pain"] == 3, (timepoint, on)
        assert row["responder"], (timepoint, on)
    for timepoint, on in JUST_OUTSIDE:
        frame = snap.query("SELECT timepoint, follow_up_pain FROM patient_outcomes "
                           "WHERE patient_id = $p AND definition = 'pain30'",
                           {"p": f"{timepoint}@{on}"})
        # No window at all holds the visit: every timepoint lacks a follow-up.
        assert frame.follow_up_pain.isna().all(), (timepoint, on)
    grid = outcomes.responder_grid(snap)
    # 2 patients per timepoint sit on its edges (responders) and 2 just
    # outside (due non-responders); the 6 others' visits are in no window.
    for timepoint in definitions.TIMEPOINTS:
        assert cell(grid, timepoint, "pain30", "itt") == (16, 2)
        assert cell(grid, timepoint, "pain30", "completers") == (2, 2)


def test_follow_up_never_taken_from_the_index_date(tmp_path):
    rows = [
        visit("p", -1, "intake", pain=8, mme=60, condition="migraine"),
        visit("p", 0, "follow_up", pain=1, mme=0),   # same day, before the infusion
        visit("p", 0, "infusion", pain=8, post=1),
        clock("p", 500),
    ]
    snap = build(tmp_path, rows)
    assert snap.query("SELECT count(*) AS n FROM follow_ups WHERE patient_id = 'p' "
                      "AND (follow_up_pain_date = $d OR follow_up_mme_date = $d)",
                      {"d": day(0)}).n.iloc[0] == 0
    for timepoint in definitions.TIMEPOINTS:
        row = outcome(snap, "p", timepoint)
        assert row["follow_up_pain"] is None and row["responder"] == False  # noqa: E712
    # On the index date the pre-infusion score is the baseline (the last of the day).
    assert outcome(snap, "p")["baseline_pain"] == 8


def test_pain_post_is_never_a_follow_up(tmp_path):
    rows = [
        *treated("poor", pain=8),
        visit("poor", 90, "booster", pain=7, post=1),   # great acute effect, poor usual pain
        *treated("post_only", pain=8),
        visit("post_only", 90, "booster", post=0),      # only a pain_post in the window
        clock("poor", 500),
    ]
    snap = build(tmp_path, rows)
    poor = outcome(snap, "poor")
    assert poor["follow_up_pain"] == 7 and poor["responder"] == False  # noqa: E712
    post_only = outcome(snap, "post_only")
    assert post_only["follow_up_pain"] is None and post_only["due"]
    assert post_only["responder"] == False  # noqa: E712
    grid = outcomes.responder_grid(snap)
    assert cell(grid, "3m", "pain30", "itt") == (2, 0)
    assert cell(grid, "3m", "pain30", "completers") == (1, 0)


# --------------------------------------------------------------------------
# responder thresholds with the 1e-9 tolerance


PAIN_CASES = [  # baseline, follow-up, pain30, pain50, pain2pt
    (7, 4.9, True, False, True),     # (7 - 4.9) / 7 is 0.29999999999999993 in floating point
    (10, 7.0, True, False, True),    # exactly 30%
    (7, 5.0, False, False, True),    # 28.6%, but 2 points
    (8, 4, True, True, True),        # exactly 50%
    (9, 4.6, True, False, True),     # 48.9%
    (5, 3, True, False, True),       # exactly 2 points
    (5.1, 3.1, True, False, True),   # 5.1 - 3.1 is 1.9999999999999996 in floating point
    (5, 3.1, True, False, False),    # 1.9 points
    (3, 1, True, True, True),
    (2, 1.5, False, False, False),
    (6, 7, False, False, False),     # worse
]
MME_CASES = [  # baseline, follow-up, mme50, mme_stop
    (60, 30, True, False),      # exactly 50%
    (60, 31, False, False),
    (60, 0, True, True),        # stopped
    (45, 22.5, True, False),
    (60, 90, False, False),     # went up
]
CLAIM_CASES = [  # follow-up pain, follow-up MME (from 8 and 60), pain30, mme50, claim
    (3, 20, True, True, True),
    (3, 40, True, False, False),
    (7, 20, False, True, False),
    (7, 60, False, False, False),
]


@pytest.fixture(scope="module")
def thresholds(tmp_path_factory):
    """One export holding every threshold case as its own patient."""
    rows = []
    for i, (baseline, follow_up, *_) in enumerate(PAIN_CASES):
        rows += [*treated(f"pain{i}", pain=baseline), visit(f"pain{i}", 90, "follow_up", pain=follow_up)]
    for i, (baseline, follow_up, *_) in enumerate(MME_CASES):
        rows += [*treated(f"mme{i}", mme=baseline), visit(f"mme{i}", 90, "follow_up", mme=follow_up)]
    for i, (pain, mme, *_) in enumerate(CLAIM_CASES):
        rows += [*treated(f"claim{i}", pain=8, mme=60),
                 visit(f"claim{i}", 90, "follow_up", pain=pain, mme=mme)]
    rows.append(clock("pain0", 500))
    snap = store.Snapshot(build_db(tmp_path_factory.mktemp("thresholds"), rows))
    yield snap
    snap.close()


@pytest.mark.parametrize("case", range(len(PAIN_CASES)))
def test_pain_thresholds(thresholds, case):
    baseline, follow_up, pain30, pain50, pain2pt = PAIN_CASES[case]
    patient = f"pain{case}"
    assert outcome(thresholds, patient, "3m", "pain30")["responder"] == pain30
    assert outcome(thresholds, patient, "3m", "pain50")["responder"] == pain50
    assert outcome(thresholds, patient, "3m", "pain2pt")["responder"] == pain2pt
    assert outcome(thresholds, patient, "3m", "pain30")["pain_reduction"] == pytest.approx(
        (baseline - follow_up) / baseline)


def test_float_cases_need_the_tolerance():
    # The reason for the tolerance: without it these would not count.
    assert (7 - 4.9) / 7 < 0.30
    assert 5.1 - 3.1 < 2


@pytest.mark.parametrize("case", range(len(MME_CASES)))
def test_mme_thresholds(thresholds, case):
    _, _, mme50, mme_stop = MME_CASES[case]
    assert outcome(thresholds, f"mme{case}", "3m", "mme50")["responder"] == mme50
    assert outcome(thresholds, f"mme{case}", "3m", "mme_stop")["responder"] == mme_stop


def test_baseline_mme_zero_is_not_eligible_for_opioid_definitions(tmp_path):
    rows = [*treated("none", pain=8, mme=0), visit("none", 90, "follow_up", pain=3, mme=0),
            clock("none", 500)]
    snap = build(tmp_path, rows)
    for definition in ("mme50", "mme_stop", "claim"):
        row = outcome(snap, "none", "3m", definition)
        assert not row["eligible"] and not row["due"] and not row["responder"]
        assert row["itt_exclusion"] == "not on opioids at baseline"
        excluded = outcomes.exclusions(snap, "3m", definition, "itt")
        assert excluded["no_baseline"] == 1 and excluded["not_on_opioids_at_baseline"] == 1
        assert outcomes.responder_rates(snap, "3m", definition).overall.n == 0
    # ... but the patient counts for the pain definitions.
    assert outcome(snap, "none", "3m", "pain30")["responder"]
    assert outcomes.responder_rates(snap, "3m", "pain30").overall.n == 1


@pytest.mark.parametrize("case", range(len(CLAIM_CASES)))
def test_claim_needs_both(thresholds, case):
    _, _, pain30, mme50, claim = CLAIM_CASES[case]
    patient = f"claim{case}"
    assert outcome(thresholds, patient, "3m", "pain30")["responder"] == pain30
    assert outcome(thresholds, patient, "3m", "mme50")["responder"] == mme50
    assert outcome(thresholds, patient, "3m", "claim")["responder"] == claim


def test_an_early_follow_up_is_provisional_for_every_definition(tmp_path):
    # Window still open at the cutoff (day 90 < 0 + 120): nobody is due, with
    # or without the follow-ups a definition needs (SPEC §3, the due rule).
    rows = [*treated("pain_only", pain=8, mme=60), visit("pain_only", 90, "follow_up", pain=3),
            *treated("both", pain=8, mme=60), visit("both", 90, "follow_up", pain=3, mme=20)]
    snap = build(tmp_path, rows)
    assert outcomes.cutoff(snap) == day(90)
    for patient, definition, complete in (("pain_only", "claim", False),
                                          ("pain_only", "pain30", True),
                                          ("both", "claim", True), ("both", "mme50", True)):
        row = outcome(snap, patient, "3m", definition)
        assert row["eligible"] and not row["due"] and not row["in_completers"], (patient, definition)
        assert row["itt_exclusion"] == "not yet due"
        assert not row["responder"]                       # never in a rate
        assert row["provisional"] == complete             # shown on clinical pages only
        assert row["provisional_responder"] == complete   # 8 -> 3 and 60 -> 20 both met
    for definition in ("claim", "pain30"):
        for population in definitions.POPULATIONS:
            rates = outcomes.responder_rates(snap, "3m", definition, population)
            assert (rates.overall.n, rates.overall.responders) == (0, 0)
            assert rates.excluded["not_yet_due"] == 2
    assert outcomes.exclusions(snap, "3m", "claim", "itt")["provisional"] == 1
    assert outcomes.exclusions(snap, "3m", "pain30", "itt")["provisional"] == 2
    assert outcomes.claim_check(snap, timepoint="3m").test.verdict == "no data"
    assert outcomes.pain_changes(snap, "3m").empty


@pytest.mark.parametrize("cutoff_day, due", [(119, False), (120, True), (121, True)])
def test_held_out_edge_three_month_follow_up_at_day_90(tmp_path, cutoff_day, due):
    """A 3-month follow-up on day 90: not yet due while index + 120 > cutoff
    (in ITT and in completers alike), due from index + 120 = cutoff on."""
    rows = [*treated("p", pain=8, mme=60), visit("p", 90, "follow_up", pain=4, mme=0),
            clock("other", cutoff_day)]
    snap = build(tmp_path, rows)
    assert outcomes.cutoff(snap) == day(cutoff_day)
    for definition in definitions.DEFINITIONS:
        row = outcome(snap, "p", "3m", definition)
        assert row["due"] == due and row["in_completers"] == due, definition
        assert row["responder"] == due and row["provisional"] == (not due), definition
    grid = outcomes.responder_grid(snap)
    for definition in definitions.DEFINITIONS:
        for population in definitions.POPULATIONS:
            assert cell(grid, "3m", definition, population) == ((1, 1) if due else (0, 0))
    itt = outcomes.responder_rates(snap, "3m", "pain30", "itt")
    assert itt.excluded["not_yet_due"] == (0 if due else 1)
    # The 4-week window (day 42) closed long ago: due, no follow-up in it.
    assert cell(grid, "4w", "pain30", "itt") == (1, 0)
    assert cell(grid, "4w", "pain30", "completers") == (0, 0)


# --------------------------------------------------------------------------
# baselines


def test_baseline_pain_window_is_30_days(tmp_path):
    rows = [
        visit("d31", -31, "intake", pain=7, mme=60, condition="migraine"),
        visit("d31", 0, "infusion"),
        visit("d31", 90, "follow_up", pain=2),
        visit("d30", -30, "intake", pain=7, mme=60, condition="migraine"),
        visit("d30", 0, "infusion"),
        visit("d30", 90, "follow_up", pain=2),
        clock("d30", 500),
    ]
    snap = build(tmp_path, rows)
    d31 = outcome(snap, "d31")
    assert d31["baseline_pain"] is None and not d31["eligible"]
    assert d31["itt_exclusion"] == "no baseline pain"
    d30 = outcome(snap, "d30")
    assert d30["baseline_pain"] == 7 and d30["responder"]
    rates = outcomes.responder_rates(snap, "3m", "pain30")
    assert (rates.overall.n, rates.overall.responders) == (1, 1)
    assert rates.excluded["no_baseline_pain"] == 1 and rates.excluded["no_baseline"] == 1


def test_baseline_pain_is_the_last_value_before_or_on_the_index_date(tmp_path):
    rows = [
        visit("p", -20, "intake", pain=9, condition="migraine"),
        visit("p", -5, "follow_up", pain=6),
        visit("p", 0, "infusion"),                  # no score on the index date
        visit("p", 3, "infusion", pain=1),          # after the index: never a baseline
        clock("p", 500),
    ]
    snap = build(tmp_path, rows)
    assert outcome(snap, "p")["baseline_pain"] == 6


def test_baseline_pain_zero_is_excluded_as_no_baseline(tmp_path):
    rows = [*treated("zero", pain=0), visit("zero", 90, "follow_up", pain=0),
            *treated("ok", pain=6), visit("ok", 90, "follow_up", pain=6),
            clock("ok", 500)]
    snap = build(tmp_path, rows)
    zero = outcome(snap, "zero")
    assert zero["baseline_pain"] == 0 and not zero["eligible"]
    assert zero["itt_exclusion"] == "baseline pain 0"
    for definition in ("pain30", "pain50", "pain2pt", "claim"):
        excluded = outcomes.exclusions(snap, "3m", definition, "itt")
        assert excluded["no_baseline"] == 1 and excluded["baseline_pain_zero"] == 1
        # Only "ok" (pain 6, MME 60) is in the denominator, claim included.
        assert outcomes.responder_rates(snap, "3m", definition).overall.n == 1


def test_baseline_mme_window_is_90_days(tmp_path):
    rows = [
        visit("d90", -90, "intake", mme=60, condition="migraine"),
        visit("d90", -1, "follow_up", pain=8),
        visit("d90", 0, "infusion"),
        visit("d90", 90, "follow_up", pain=3, mme=20),
        visit("d91", -91, "intake", mme=60, condition="migraine"),
        visit("d91", -1, "follow_up", pain=8),
        visit("d91", 0, "infusion"),
        visit("d91", 90, "follow_up", pain=3, mme=20),
        clock("d90", 500),
    ]
    snap = build(tmp_path, rows)
    d90 = outcome(snap, "d90", "3m", "mme50")
    assert d90["baseline_mme"] == 60 and d90["eligible"] and d90["responder"]
    d91 = outcome(snap, "d91", "3m", "mme50")
    assert d91["baseline_mme"] is None and not d91["eligible"]
    assert d91["itt_exclusion"] == "opioid use at baseline unknown"
    for definition in ("mme50", "mme_stop", "claim"):
        excluded = outcomes.exclusions(snap, "3m", definition, "itt")
        assert excluded["opioid_use_unknown"] == 1 and excluded["no_baseline"] == 1
    rates = outcomes.responder_rates(snap, "3m", "claim")
    assert (rates.overall.n, rates.overall.responders) == (1, 1)
    # Pain definitions do not need the MME baseline.
    assert outcomes.responder_rates(snap, "3m", "pain30").overall.n == 2


def test_mme_from_the_medication_export(tmp_path):
    """A visit without an MME takes the medication export's MME of that date
    (oxycodone 10 mg x 3 = 45 MME); "none" is 0; an unknown drug leaves the
    date's MME unknown, never 0; the session export's own value wins."""
    rows = [*treated("oxy", mme=None), visit("oxy", 90, "follow_up", pain=3),
            *treated("mystery", mme=None), visit("mystery", 90, "follow_up", pain=3),
            *treated("session", mme=80), visit("session", 90, "follow_up", pain=3, mme=40),
            clock("oxy", 500)]
    db_path = build_db(tmp_path, rows)
    meds = tmp_path / "medications.csv"
    meds.write_text("patient_id,date,drug,dose,unit,doses_per_day\n"
                    f"oxy,{day(-1)},oxycodone,10,mg,3\n"
                    f"oxy,{day(90)},none,,,\n"
                    f"mystery,{day(-1)},unobtainium,10,mg,3\n"
                    f"mystery,{day(90)},none,,,\n"
                    f"session,{day(-1)},oxycodone,10,mg,3\n"
                    f"session,{day(90)},none,,,\n")
    con = db.connect(db_path)
    try:
        result = ingest_file(con, meds, ingest_date=VISITS_INGEST_DATE)
    finally:
        con.close()
    assert result.status == "ingested", result.error
    snap = store.Snapshot(db_path)
    oxy = outcome(snap, "oxy", "3m", "mme_stop")
    assert (oxy["baseline_mme"], oxy["follow_up_mme"], oxy["responder"]) == (45, 0, True)
    mystery = outcome(snap, "mystery", "3m", "mme_stop")
    assert mystery["baseline_mme"] is None
    assert mystery["itt_exclusion"] == "opioid use at baseline unknown"
    session = outcome(snap, "session", "3m", "mme50")
    assert (session["baseline_mme"], session["follow_up_mme"], session["responder"]) == (80, 40, True)
    assert not outcome(snap, "session", "3m", "mme_stop")["responder"]


# --------------------------------------------------------------------------
# treated, due, populations, cutoff


def test_untreated_patient_is_in_no_denominator(tmp_path):
    rows = [
        visit("intake_only", 0, "intake", pain=8, mme=60, condition="migraine", site="North"),
        visit("intake_only", 90, "follow_up", pain=2, mme=0),
        *treated("t", pain=8, mme=60), visit("t", 90, "follow_up", pain=2, mme=0),
        clock("t", 500),
    ]
    snap = build(tmp_path, rows)
    assert not snap.scalar("SELECT treated FROM patients WHERE patient_id = 'intake_only'")
    assert snap.scalar("SELECT count(*) FROM patient_outcomes WHERE patient_id = 'intake_only'") == 0
    grid = outcomes.responder_grid(snap)
    overall = grid[grid.group == "All"]
    assert set(overall[overall.population == "itt"].n) == {1}   # only "t", in every cell
    assert set(overall[overall.population == "completers"].n) <= {0, 1}
    for timepoint, definition, population in itertools.product(
            definitions.TIMEPOINTS, definitions.DEFINITIONS, definitions.POPULATIONS):
        assert outcomes.exclusions(snap, timepoint, definition, population)["untreated"] == 1
    excluded = outcomes.exclusions(snap, "3m", "pain30", "itt")
    assert excluded["treated"] == 1


def test_booster_as_first_ketamine_visit_is_the_index(tmp_path):
    rows = [
        visit("b", -10, "intake", pain=8, mme=60, condition="migraine"),
        visit("b", 0, "booster", route="IM"),
        visit("b", 5, "infusion", route="IV"),
        visit("b", 90, "follow_up", pain=2),        # 3m from the booster (85 from the infusion)
        clock("b", 500),
    ]
    snap = build(tmp_path, rows)
    patient = snap.query("SELECT * FROM patients WHERE patient_id = 'b'").iloc[0]
    assert patient.treated and date_of(patient.index_date) == day(0)
    assert patient.route == "IM"
    assert patient.cohort_quarter == "2028Q1"
    assert outcome(snap, "b")["responder"]


def test_not_yet_due_versus_due_without_follow_up(tmp_path):
    # Cutoff is day 120: index day 0 + 120 <= 120 is due, index day 1 is not.
    rows = [
        *treated("due", index=0), clock("due", 120),
        *treated("not_due", index=1),
        *treated("responder", index=0), visit("responder", 90, "follow_up", pain=2),
    ]
    snap = build(tmp_path, rows)
    assert outcomes.cutoff(snap) == day(120)
    due = outcome(snap, "due")
    assert due["eligible"] and due["due"] and not due["complete"] and not due["responder"]
    not_due = outcome(snap, "not_due")
    assert not_due["eligible"] and not not_due["due"]
    assert not_due["itt_exclusion"] == "not yet due"

    itt = outcomes.responder_rates(snap, "3m", "pain30", "itt")
    assert (itt.overall.n, itt.overall.responders) == (2, 1)    # due counts as a non-responder
    assert itt.overall.rate == 0.5
    assert itt.excluded["not_yet_due"] == 1
    assert itt.excluded["missing_follow_up_counted_as_non_responder"] == 1
    completers = outcomes.responder_rates(snap, "3m", "pain30", "completers")
    assert (completers.overall.n, completers.overall.responders) == (1, 1)
    assert completers.excluded["missing_follow_up"] == 1
    # At 4w everyone is due (window end 42 <= 120) and no one has a follow-up.
    assert outcomes.responder_rates(snap, "4w", "pain30").overall.n == 3
    assert outcomes.responder_rates(snap, "4w", "pain30", "completers").overall.n == 0


def test_open_window_with_a_follow_up_is_provisional_not_due(tmp_path):
    rows = [*treated("early", pain=8), visit("early", 90, "follow_up", pain=3),
            *treated("waiting", pain=8)]
    snap = build(tmp_path, rows)
    assert outcomes.cutoff(snap) == day(90)                    # 3m window ends day 120
    early = outcome(snap, "early")
    assert not early["due"] and early["complete"] and not early["responder"]
    assert early["provisional"] and early["provisional_responder"]
    waiting = outcome(snap, "waiting")
    assert not waiting["due"] and waiting["itt_exclusion"] == "not yet due"
    assert not waiting["provisional"]
    rates = outcomes.responder_rates(snap)
    assert (rates.overall.n, rates.overall.responders) == (0, 0)
    assert rates.excluded["not_yet_due"] == 2
    assert rates.excluded["provisional"] == 1
    assert outcomes.responder_rates(snap, "6m").overall.n == 0  # nothing due at 6m
    assert outcomes.responder_rates(snap, "6m").overall.rate is None


def test_completers_versus_itt_counts(tmp_path):
    rows = [
        *treated("r1"), visit("r1", 90, "follow_up", pain=2),
        *treated("r2"), visit("r2", 95, "follow_up", pain=4),
        *treated("nr"), visit("nr", 90, "follow_up", pain=7),
        *treated("lost1"), *treated("lost2"),
        *treated("late", index=400),
        clock("r1", 450),
    ]
    snap = build(tmp_path, rows)
    grid = outcomes.responder_grid(snap)
    assert cell(grid, "3m", "pain30", "itt") == (5, 2)
    assert cell(grid, "3m", "pain30", "completers") == (3, 2)
    assert cell(grid, "3m", "pain50", "itt") == (5, 2)
    assert cell(grid, "3m", "pain50", "completers") == (3, 2)
    itt = outcomes.responder_rates(snap)
    assert itt.overall.rate == pytest.approx(0.4)
    completers = outcomes.responder_rates(snap, population="completers")
    assert completers.overall.rate == pytest.approx(2 / 3)
    assert itt.excluded["not_yet_due"] == completers.excluded["not_yet_due"] == 1


def test_cutoff_is_the_latest_visit_of_anyone(tmp_path):
    rows = [*treated("t", index=0),
            visit("intake_only", 119, "intake", condition="lupus")]
    snap = build(tmp_path, rows)
    assert outcomes.cutoff(snap) == day(119)
    assert not outcome(snap, "t")["due"]        # 0 + 120 > 119
    assert outcome(snap, "t", "4w")["due"]      # 0 + 42 <= 119


def test_empty_database_has_no_cutoff_and_empty_cells(tmp_path):
    db_path = tmp_path / "empty.duckdb"
    db.connect(db_path).close()
    snap = store.Snapshot(db_path)
    assert outcomes.cutoff(snap) is None
    rates = outcomes.responder_rates(snap)
    assert rates.overall.n == 0 and rates.overall.rate is None and rates.by_condition == []
    check = outcomes.claim_check(snap)
    assert check.test.verdict == "no data" and len(check.sensitivity) == 48


# --------------------------------------------------------------------------
# conditions


def test_condition_only_on_a_later_row(tmp_path):
    rows = [
        visit("later", -1, "intake", pain=8),
        visit("later", 0, "infusion"),
        visit("later", 90, "follow_up", pain=2, condition="fibro"),
        visit("first_wins", -1, "intake", pain=8, condition="G43.A0"),   # cyclic vomiting
        visit("first_wins", 0, "infusion", condition="migraine"),
        visit("none", -1, "intake", pain=8),
        visit("none", 0, "infusion"),
        visit("other", -1, "intake", pain=8, condition="restless leg"),
        visit("other", 0, "infusion"),
        clock("later", 500),
    ]
    snap = build(tmp_path, rows)
    conditions = dict(snap.query("SELECT patient_id, condition FROM patients").values.tolist())
    assert conditions == {"later": "Fibromyalgia", "first_wins": "Cyclic vomiting",
                          "none": "Unspecified", "other": "Other"}
    raw = snap.scalar("SELECT condition_raw FROM patients WHERE patient_id = 'other'")
    assert raw == "restless leg"
    rates = outcomes.responder_rates(snap, "3m", "pain30")
    by = {g.group: (g.n, g.responders, g.too_few) for g in rates.by_condition}
    assert by == {"Fibromyalgia": (1, 1, True), "Cyclic vomiting": (1, 0, True),
                  "Unspecified": (1, 0, True), "Other": (1, 0, True)}
    assert (rates.overall.n, rates.overall.responders) == (4, 1)


# --------------------------------------------------------------------------
# filters


@pytest.fixture(scope="module")
def filter_snap(tmp_path_factory):
    snap = store.Snapshot(build_db(tmp_path_factory.mktemp("filters"), filter_rows()))
    yield snap
    snap.close()


@pytest.mark.parametrize("filters, expected", [
    (Filters(), (5, 3)),
    (Filters(sites=("North",)), (2, 1)),
    (Filters(sites=("North", "South")), (4, 3)),
    (Filters(sites=(INJECTION,)), (1, 0)),
    (Filters(sites=("nowhere' OR '1'='1",)), (0, 0)),
    (Filters(sites=("North') OR true --",)), (0, 0)),
    (Filters(conditions=("Migraine",)), (2, 2)),
    (Filters(conditions=("Lupus", "Fibromyalgia")), (3, 1)),
    (Filters(conditions=("Migraine' OR '1'='1",)), (0, 0)),
    (Filters(routes=("IV",)), (2, 2)),
    (Filters(routes=("IM", "intranasal")), (3, 1)),
    (Filters(index_from=day(40), index_to=day(200)), (3, 2)),
    (Filters(index_from=day(41)), (3, 2)),
    (Filters(index_to=day(39)), (1, 1)),
    (Filters(sites=("South",), routes=("IV",), conditions=("Lupus",)), (1, 1)),
    (Filters.from_quarters("2028Q2", "2028Q3"), (2, 2)),  # days 100 and 200
])
def test_filters_narrow_patients(filter_snap, filters, expected):
    snap = filter_snap
    rates = outcomes.responder_rates(snap, "3m", "pain30", filters=filters)
    assert (rates.overall.n, rates.overall.responders) == expected
    assert rates.excluded["treated"] == expected[0]
    grid = outcomes.responder_grid(snap, filters)
    assert cell(grid, "3m", "pain30", "itt") == expected
    check = outcomes.claim_check(snap, filters=filters)
    # No follow-up MME at all: every due patient is a claim non-responder.
    assert (check.test.n, check.test.responders) == (expected[0], 0)
    assert sum(g.n for g in rates.by_condition) == expected[0]


def test_injection_site_is_an_ordinary_value(filter_snap):
    snap = filter_snap
    assert INJECTION in outcomes.filter_options(snap).sites
    rates = outcomes.responder_rates(snap, filters=Filters(sites=(INJECTION,)))
    assert [g.group for g in rates.by_condition] == ["Lupus"]
    # The database is untouched by the attempt.
    assert snap.scalar("SELECT count(*) FROM patients") == 5


def test_filters_reject_bad_arguments(filter_snap):
    snap = filter_snap
    with pytest.raises(ValueError):
        outcomes.responder_rates(snap, "2y")
    with pytest.raises(ValueError):
        outcomes.responder_rates(snap, definition="pain40")
    with pytest.raises(ValueError):
        outcomes.responder_rates(snap, population="all")
    with pytest.raises(ValueError):
        outcomes.counts_by_condition(snap, group_by="patient_id; DROP TABLE visits")
    with pytest.raises(ValueError):
        Filters.from_quarters("2028Q5")


# --------------------------------------------------------------------------
# a generated program, checked against an independent reading of SPEC §3

RAW_CONDITIONS = {"migraine": "Migraine", "fibro": "Fibromyalgia", "G43.A0": "Cyclic vomiting",
                  "M54.5": "Intractable back pain", "lupus": "Lupus", "restless leg": "Other",
                  None: "Unspecified"}
WINDOWS = {"4w": (28, 14, 42), "3m": (90, 60, 120), "6m": (180, 150, 210), "12m": (365, 300, 430)}
NEEDS = {"pain30": (True, False), "pain50": (True, False), "pain2pt": (True, False),
         "mme50": (False, True), "mme_stop": (False, True), "claim": (True, True)}
TOL = 1e-9


def generate_program(seed: int, patients: int) -> list[dict]:
    """Random patients with at most one visit a day each, values at the edges
    of every rule (windows ± 1 day, baselines 30/31 and 90/91 days, pain 0,
    MME 0, missing values)."""
    rng = random.Random(seed)
    rows = []
    for i in range(patients):
        pid = f"P{i:04d}"
        condition = rng.choice(list(RAW_CONDITIONS))
        used: set[int] = set()

        def add(on, visit_type, **values):
            if on in used:
                return
            used.add(on)
            rows.append(visit(pid, on, visit_type, **values))

        index = rng.randint(0, 500)
        pain = rng.choice([None, 0, 3, 5, 5.1, 6, 7, 8, 9, 10])
        mme = rng.choice([None, 0, 0, 20, 45, 60, 90])
        add(index - rng.choice([1, 5, 29, 30, 31]), "intake", pain=pain, condition=condition,
            site=rng.choice(["North", "South"]))
        if rng.random() < 0.5:
            add(index - rng.choice([2, 60, 89, 90, 91]), "follow_up", mme=mme)
        else:
            add(index - 3, "follow_up", mme=mme)
        if rng.random() < 0.06:
            continue                                       # never treated
        add(index, rng.choice(["infusion", "infusion", "booster"]),
            pain=rng.choice([None, None, pain]), route=rng.choice(["IV", "IM", "intranasal"]))
        for k in (2, 4, 7):
            add(index + k, "infusion", post=rng.choice([None, 0, 1, 2]))
        for timepoint, (target, start, end) in WINDOWS.items():
            for _ in range(rng.choice([0, 1, 1, 2])):
                on = index + rng.choice([start - 1, start, target - 5, target, target + 5,
                                         end, end + 1, rng.randint(start, end)])
                add(on, rng.choice(["follow_up", "booster"]),
                    pain=rng.choice([None, 0, 2, 3, 3.1, 4, 4.9, 5, 5.6, 7, 8]),
                    mme=rng.choice([None, 0, 10, 22.5, 30, 31, 45, 60]),
                    post=rng.choice([None, 0]))
    return rows


def reference_counts(rows: list[dict]) -> tuple[dict, dt.date]:
    """n and responders per (timepoint, definition, population, group), SPEC §3
    read literally, in plain Python."""
    by_patient = defaultdict(list)
    for r in rows:
        by_patient[r["patient_id"]].append({**r, "date": dt.date.fromisoformat(r["visit_date"])})
    cutoff = max(r["date"] for vs in by_patient.values() for r in vs)
    counts = Counter()
    for pid, vs in by_patient.items():
        vs.sort(key=lambda r: r["date"])
        ketamine = [r["date"] for r in vs if r["visit_type"] in ("infusion", "booster")]
        if not ketamine:
            continue
        index = min(ketamine)
        condition = next((RAW_CONDITIONS[r["condition"]] for r in vs if r["condition"]),
                         "Unspecified")

        def last_in(column, days):
            values = [r[column] for r in vs
                      if r[column] is not None and index - dt.timedelta(days) <= r["date"] <= index]
            return values[-1] if values else None

        base_pain, base_mme = last_in("pain_score", 30), last_in("opioid_mme_per_day", 90)
        for timepoint, (target, start, end) in WINDOWS.items():
            def follow(column):
                found = [(abs((r["date"] - index).days - target), -(r["date"] - index).days, r[column])
                         for r in vs if r[column] is not None and r["date"] != index
                         and start <= (r["date"] - index).days <= end]
                return min(found)[2] if found else None

            fp, fm = follow("pain_score"), follow("opioid_mme_per_day")
            closed = index + dt.timedelta(end) <= cutoff
            met = {
                "pain30": fp is not None and (base_pain - fp) / base_pain >= 0.30 - TOL,
                "pain50": fp is not None and (base_pain - fp) / base_pain >= 0.50 - TOL,
                "pain2pt": fp is not None and base_pain - fp >= 2 - TOL,
            } if base_pain else {}
            if base_mme:
                met["mme50"] = fm is not None and (base_mme - fm) / base_mme >= 0.50 - TOL
                met["mme_stop"] = fm is not None and abs(fm) < TOL
            for definition, (needs_pain, needs_mme) in NEEDS.items():
                if (needs_pain and not base_pain) or (needs_mme and not base_mme):
                    continue                                # not eligible
                complete = (not needs_pain or fp is not None) and (not needs_mme or fm is not None)
                responder = complete and (
                    met["pain30"] and met["mme50"] if definition == "claim" else met[definition])
                # SPEC §3: due only when the whole window lies inside the data.
                for population, member in (("itt", closed), ("completers", closed and complete)):
                    if member:
                        for group in ("All", condition):
                            counts[timepoint, definition, population, group, "n"] += 1
                            counts[timepoint, definition, population, group, "k"] += responder
    return counts, cutoff


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("program")
    rows = generate_program(seed=11, patients=700)
    snap = store.Snapshot(build_db(tmp, rows))
    yield rows, snap
    snap.close()


def test_grid_matches_an_independent_reading_of_the_spec(program):
    rows, snap = program
    expected, cutoff = reference_counts(rows)
    assert outcomes.cutoff(snap) == cutoff
    grid = outcomes.responder_grid(snap)
    assert grid.group.nunique() == 1 + 7 and len(grid) == 4 * 6 * 2 * (1 + 7)
    mismatches = []
    for r in grid.itertuples():
        key = (r.timepoint, r.definition, r.population, r.group)
        want = (expected[(*key, "n")], expected[(*key, "k")])
        if (r.n, r.responders) != want:
            mismatches.append((key, (r.n, r.responders), want))
    assert not mismatches, mismatches[:10]
    # The program is varied enough for the check to mean something.
    assert cell(grid, "3m", "pain30", "itt")[0] > 200
    assert 0 < cell(grid, "3m", "claim", "itt")[1] < cell(grid, "3m", "claim", "itt")[0]
    assert grid.n.gt(0).sum() > 300


@pytest.mark.parametrize("group_by", ["condition", "site", "route", "cohort_quarter"])
@pytest.mark.parametrize("filters", [
    Filters(), Filters(sites=("North",)), Filters(routes=("IM", "intranasal"), conditions=("Other",)),
    Filters(index_from=day(100), index_to=day(300)), Filters(sites=(INJECTION,)),
])
def test_counts_equal_a_plain_count_of_patient_outcomes(program, group_by, filters):
    """The grid counts fact combinations and applies outcome_rules; the same
    numbers must come from counting patient_outcomes row by row."""
    _, snap = program
    where, params = filters.sql()
    plain = snap.query(f"""
        SELECT timepoint, definition, population, "group", count(*) AS n,
               count(*) FILTER (WHERE responder) AS responders
        FROM (
            SELECT *, 'itt' AS population, {group_by} AS "group" FROM patient_outcomes
            WHERE eligible AND due AND {where}
            UNION ALL
            SELECT *, 'itt', 'All' FROM patient_outcomes WHERE eligible AND due AND {where}
            UNION ALL
            SELECT *, 'completers', {group_by} FROM patient_outcomes
            WHERE eligible AND due AND complete AND {where}
            UNION ALL
            SELECT *, 'completers', 'All' FROM patient_outcomes
            WHERE eligible AND due AND complete AND {where}
        )
        GROUP BY ALL
    """, params)
    counts = outcomes.counts_by_condition(snap, filters, group_by)
    key = ["timepoint", "definition", "population", "group"]
    pd.testing.assert_frame_equal(
        counts.sort_values(key).reset_index(drop=True),
        plain.sort_values(key).reset_index(drop=True), check_dtype=False)
    assert (counts.n > 0).all()


def test_outcome_rules_cover_every_combination_once(program):
    _, snap = program
    assert snap.scalar("SELECT count(*) FROM outcome_rules") == 4096 * 6
    facts = ", ".join(outcomes.RULE_FACTS)
    assert snap.scalar(f"SELECT count(DISTINCT ({facts}, definition)) FROM outcome_rules") == 4096 * 6
    # Every patient and timepoint has exactly one row per definition.
    treated = snap.scalar("SELECT count(*) FROM patients WHERE treated")
    assert snap.scalar("SELECT count(*) FROM patient_outcomes") == treated * 4 * 6
    assert snap.scalar("SELECT count(*) FROM (SELECT DISTINCT patient_id, timepoint, definition "
                       "FROM patient_outcomes)") == treated * 4 * 6
    # The facts are never NULL (a NULL would drop the patient from the join).
    nulls = " OR ".join(f"{f} IS NULL" for f in outcomes.RULE_FACTS)
    assert snap.scalar(f"SELECT count(*) FROM patient_timepoints WHERE {nulls}") == 0


@pytest.mark.parametrize("timepoint, definition, population", [
    ("3m", "pain30", "itt"), ("4w", "pain50", "completers"), ("12m", "mme_stop", "itt"),
    ("6m", "claim", "completers"), ("3m", "pain2pt", "itt"),
])
@pytest.mark.parametrize("ci, method", [("wilson", "wilson"), ("exact", "beta")])
def test_intervals_agree_with_statsmodels(program, timepoint, definition, population, ci, method):
    _, snap = program
    rates = outcomes.responder_rates(snap, timepoint, definition, population, ci=ci)
    groups = [rates.overall, *rates.by_condition]
    assert len(groups) == 1 + 7
    for g in groups:
        if g.n == 0:
            assert g.rate is None and g.ci_low is None and g.ci_high is None
            continue
        low, high = proportion_confint(g.responders, g.n, alpha=0.05, method=method)
        assert g.rate == pytest.approx(g.responders / g.n, abs=1e-12)
        assert g.ci_low == pytest.approx(low, abs=1e-9), (g, low)
        assert g.ci_high == pytest.approx(high, abs=1e-9), (g, high)
        assert g.too_few == (g.n < 11)


@pytest.mark.parametrize("method", ["wilson", "exact"])
def test_vectorised_intervals_equal_scipys_binomtest(method):
    """stats.intervals (the one implementation, behind stats.proportion and
    every grid) gives scipy's binomtest(k, n).proportion_ci numbers."""
    pairs = [(k, n) for n in range(0, 21) for k in range(n + 1)]
    pairs += [(k, n) for n in (150, 999, 123_457) for k in (0, 1, n // 3, n // 2, n - 1, n)]
    ks, ns = zip(*pairs)
    rate, low, high = stats.intervals(ks, ns, method)
    for i, (k, n) in enumerate(pairs):
        if n == 0:
            assert math.isnan(rate[i]) and math.isnan(low[i]) and math.isnan(high[i])
            assert stats.proportion(k, n, method).rate is None
            continue
        expected = scipy.stats.binomtest(k, n).proportion_ci(method=method)
        assert rate[i] == k / n == stats.proportion(k, n, method).rate
        assert low[i] == pytest.approx(expected.low, abs=1e-11)
        assert high[i] == pytest.approx(expected.high, abs=1e-11)
        if method == "wilson":      # scipy's formula term for term, with z from
            # statistics.NormalDist (one unit in the last place from scipy's ndtri)
            assert low[i] == pytest.approx(expected.low, rel=1e-14, abs=1e-300)
            assert high[i] == pytest.approx(expected.high, rel=1e-14)
    with pytest.raises(ValueError):
        stats.intervals([1], [2], "agresti")


def test_exclusions_add_up(program):
    _, snap = program
    treated = snap.scalar("SELECT count(*) FROM patients WHERE treated")
    grid = outcomes.responder_grid(snap)
    for timepoint, definition in itertools.product(definitions.TIMEPOINTS, definitions.DEFINITIONS):
        e = outcomes.exclusions(snap, timepoint, definition, "itt")
        n_itt = cell(grid, timepoint, definition, "itt")[0]
        n_completers = cell(grid, timepoint, definition, "completers")[0]
        assert e["treated"] == treated
        assert e["no_baseline"] == (e["no_baseline_pain"] + e["baseline_pain_zero"]
                                    + e["opioid_use_unknown"] + e["not_on_opioids_at_baseline"])
        assert treated == n_itt + e["no_baseline"] + e["not_yet_due"]
        assert n_itt == n_completers + e["missing_follow_up_counted_as_non_responder"]
        assert e["untreated"] == snap.scalar("SELECT count(*) FROM patients WHERE NOT treated") > 0


def test_condition_table_and_pain_changes(program):
    _, snap = program
    table = outcomes.condition_table(snap, "3m", "pain30")
    rates = outcomes.responder_rates(snap, "3m", "pain30")
    assert {r.condition: (r.n, r.responders) for r in table} == \
        {g.group: (g.n, g.responders) for g in rates.by_condition}
    changes = outcomes.pain_changes(snap, "3m")
    assert (changes.change == changes.follow_up_pain - changes.baseline_pain).all()
    assert (changes.baseline_pain > 0).all()
    checked = 0
    for row in table:
        group = changes[changes.condition == row.condition]
        assert row.change_n == len(group)
        if len(group):
            assert row.median_change == pytest.approx(group.change.median())
            x = group.change.to_numpy(dtype=float)
            if (x != 0).any():
                assert row.wilcoxon_p == pytest.approx(scipy.stats.wilcoxon(x).pvalue)
            ci = scipy.stats.quantile_test(x, q=0, p=0.5).confidence_interval(0.95)
            if len(x) > 5:
                assert (row.median_ci_low, row.median_ci_high) == (ci.low, ci.high)
                checked += 1
            else:
                assert row.median_ci_low is None and row.median_ci_high is None
    assert checked >= 5
    # Only patients due with the follow-up: pain30's completers.
    completers = snap.scalar("SELECT count(*) FROM patient_outcomes WHERE timepoint = '3m' "
                             "AND definition = 'pain30' AND eligible AND due "
                             "AND follow_up_pain IS NOT NULL")
    assert len(changes) == completers
    # Ranked by the lower end of the interval, the conditions of fewer than
    # 11 patients last.
    keys = [(r.n < audience.SMALL_CELL, -(r.ci_low or 0)) for r in table]
    assert keys == sorted(keys)


# --------------------------------------------------------------------------
# the claim check


@pytest.mark.parametrize("patients, responding, verdict", [
    (150, 0.90, "supported"),
    (150, 0.40, "contradicted"),
    (8, 0.75, "inconclusive"),
])
def test_claim_verdicts(tmp_path, patients, responding, verdict):
    snap = build(tmp_path, claim_program(patients, responding))
    check = outcomes.claim_check(snap)
    k = round(responding * patients)
    assert (check.test.n, check.test.responders) == (patients, k)
    assert check.test.verdict == verdict
    assert check.test.p_value == pytest.approx(
        scipy.stats.binomtest(k, patients, 0.70, alternative="greater").pvalue)
    assert check.test.target == 0.70
    # The one-sided 95% exact bounds are the ends of the two-sided 90% Clopper-Pearson interval.
    low, high = proportion_confint(k, patients, alpha=0.10, method="beta")
    assert check.test.lower_bound == pytest.approx(low, abs=1e-9)
    assert check.test.upper_bound == pytest.approx(high, abs=1e-9)
    if verdict == "supported":
        assert check.test.lower_bound > 0.70
    elif verdict == "contradicted":
        assert check.test.upper_bound < 0.70
    # The 48 readings.
    cells = {(c.timepoint, c.definition, c.population) for c in check.sensitivity}
    assert cells == set(itertools.product(definitions.TIMEPOINTS, definitions.DEFINITIONS,
                                          definitions.POPULATIONS))
    assert len(check.sensitivity) == 48
    by_cell = {(c.timepoint, c.definition, c.population): c for c in check.sensitivity}
    assert by_cell["3m", "claim", "itt"].verdict == verdict
    assert by_cell["3m", "pain30", "itt"].responders == k
    assert by_cell["3m", "mme_stop", "itt"].responders == 0
    assert by_cell["4w", "claim", "itt"].n == patients                 # due, no follow-up
    assert by_cell["4w", "claim", "completers"].verdict == "no data"


def test_claim_sensitivity_cells_agree_with_claim_test(program):
    _, snap = program
    for target in (0.70, 0.3):
        check = outcomes.claim_check(snap, target=target, timepoint="6m", definition="pain30",
                                     population="completers")
        assert len(check.sensitivity) == 48
        grid = outcomes.responder_grid(snap)
        verdicts = Counter()
        for c in check.sensitivity:
            assert (c.n, c.responders) == cell(grid, c.timepoint, c.definition, c.population)
            expected = stats.claim_test(c.responders, c.n, target)
            assert c.verdict == expected.verdict
            assert c.rate == expected.rate
            assert c.lower_bound == expected.lower_bound and c.upper_bound == expected.upper_bound
            verdicts[c.verdict] += 1
        chosen = next(c for c in check.sensitivity
                      if (c.timepoint, c.definition, c.population) == ("6m", "pain30", "completers"))
        assert (check.test.n, check.test.responders, check.test.verdict) == \
            (chosen.n, chosen.responders, chosen.verdict)
        assert check.test.target == target
        if target == 0.3:      # the generated program gives every verdict at 30%
            assert set(verdicts) == {"supported", "inconclusive", "contradicted"}, verdicts


def test_claim_check_rejects_bad_target(program):
    _, snap = program
    for target in (0, 1, 70):
        with pytest.raises(ValueError):
            outcomes.claim_check(snap, target=target)


def test_to_dict_has_no_nan(tmp_path):
    # A condition whose only patient is not yet due: n = 0 -> None, never NaN.
    rows = [*treated("a", condition="migraine"), visit("a", 90, "follow_up", pain=2),
            *treated("b", condition="lupus", index=50)]
    snap = build(tmp_path, rows)
    d = outcomes.responder_rates(snap).to_dict()
    lupus = next(g for g in d["by_condition"] if g["condition"] == "Lupus")
    assert lupus == {"condition": "Lupus", "n": 0, "responders": 0, "rate": None,
                     "ci_low": None, "ci_high": None, "too_few": True}

    def floats(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from floats(v)
        elif isinstance(value, list):
            for v in value:
                yield from floats(v)
        elif isinstance(value, float):
            yield value

    for source in (d, outcomes.claim_check(snap).to_dict()):
        assert all(math.isfinite(x) for x in floats(source))
