"""Depression and PTSD outcomes (analysis/metrics/mood.py, issue 7): a hand-worked
export, each number worked out on paper, and the demo clinic's counts against a
pandas count of the patient rows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from analysis.metrics import mood
from analysis.core import stats
from analysis.core.filters import Filters
from tests.helpers.builders import iso_date, measures_clinic


# --------------------------------------------------------------------------
# mood
#
# Index (first infusion) 2025-01-05 for everyone but G; 3 months = iso_date 90
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
    # H: two PHQ-9 follow-ups equally far from iso_date 90 (iso_date 85: 15, iso_date 95: 8):
    # the later one counts -> response; PCL-5 33 -> 23 at iso_date 95: improvement.
    # Pain 8 -> 7 at iso_date 95: not a pain responder.
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
    assert rows.loc["H", "follow_up_date"].date() == iso_date("2025-04-10")
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
