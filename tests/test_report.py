"""The quarterly report (issue 6): its numbers against the engine and against
independent pandas counts, quarter edges, small cells, provenance and the
fingerprint, the three exports and the CLI.

The demo clinic may change: no test here knows its numbers.  Hand-made
exports (dates written out) pin down the edges.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from analysis import cli
from analysis.metrics import adverse_events, outcomes, safety
from analysis.storage import db, store
from analysis.ingest.pipeline import ingest_file
from analysis.reports.quarterly.build import build_report, default_quarter, quarters_with_data
from analysis.reports.quarterly.render.files import write
from analysis.reports.quarterly.render.html import render_html, write_html
from analysis.reports.quarterly.render.pdf import write_pdf
from analysis.reports.quarterly.render.xlsx import write_xlsx
from analysis.reports.quarterly.report import (AUDIENCES, SOFTWARE_VERSION, NoDataError,
                                               QuarterlyReport)
from analysis.reports.quarterly.tables import ALL_SITES, ANY_EVENT, display_frame
from analysis.core import definitions, stats
from analysis.storage.fingerprint import data_fingerprint
from analysis.core.filters import Filters, previous_quarter, quarter_bounds, quarter_of
from analysis.storage.reference import fold
from analysis.core.audience import SMALL_CELL, SUPPRESSED
from tests.helpers.apptest import ROOT

TARGET_DAYS = {"4w": 28, "3m": 90, "6m": 180, "12m": 365}   # SPEC §3
INGEST_DATE = dt.date(2035, 1, 1)
COLUMNS = ("visit_id", "patient_id", "visit_date", "visit_type", "condition", "site", "route",
           "pain_score", "opioid_mme_per_day", "benzodiazepine", "adverse_event", "sbp_max",
           "spo2_min")


# --------------------------------------------------------------------------
# hand-made exports


def visit(patient: str, on: dt.date, visit_type: str, **values) -> dict:
    return {"patient_id": patient, "visit_date": on.isoformat(), "visit_type": visit_type,
            **values}


def treated(patient: str, index: dt.date, *, site="North", pain=8, mme=None, follow_up=None,
            follow_up_pain=None, condition="Migraine", **index_values) -> list[dict]:
    """Intake the day before the index (baselines), the first infusion on
    ``index`` and, optionally, a follow-up ``follow_up`` days later."""
    rows = [visit(patient, index - dt.timedelta(days=1), "intake", pain_score=pain,
                  opioid_mme_per_day=mme, condition=condition, site=site),
            visit(patient, index, "infusion", site=site, route="IV", **index_values)]
    if follow_up is not None:
        rows.append(visit(patient, index + dt.timedelta(days=follow_up), "follow_up", site=site,
                          pain_score=follow_up_pain))
    return rows


def write_export(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for i, row in enumerate(rows):
            full = {"visit_id": f"V{i:05d}", **row}
            writer.writerow({k: "" if full.get(k) is None else full[k] for k in COLUMNS})
    return path


def ingest_rows(db_path: Path, rows: list[dict], name: str = "sessions.csv") -> str:
    export = write_export(db_path.parent / name, rows)
    con = db.connect(db_path)
    try:
        result = ingest_file(con, export, ingest_date=INGEST_DATE)
    finally:
        con.close()
    assert result.status in ("ingested", "unchanged"), result.error
    if result.status == "ingested":
        assert result.rows_accepted == len(rows), result
    return result.status


def build(tmp_path: Path, rows: list[dict]) -> store.Snapshot:
    path = tmp_path / "clinic.duckdb"
    ingest_rows(path, rows)
    return store.Snapshot(path)


def value(x):
    """A cell's value, None where there is none or it is withheld."""
    return None if x is None or x == SUPPRESSED or (not isinstance(x, str) and pd.isna(x)) else x


# --------------------------------------------------------------------------
# the demo clinic


@pytest.fixture(scope="module")
def quarter(demo_snapshot) -> str:
    return default_quarter(demo_snapshot)


@pytest.fixture(scope="module")
def clinical(demo_snapshot, quarter) -> QuarterlyReport:
    return build_report(demo_snapshot, quarter)


@pytest.fixture(scope="module")
def external(demo_snapshot, quarter) -> QuarterlyReport:
    return build_report(demo_snapshot, quarter, "external")


@pytest.fixture(scope="module")
def visits(demo_snapshot) -> pd.DataFrame:
    frame = demo_snapshot.query("SELECT * FROM stg_visits")
    frame["visit_date"] = pd.to_datetime(frame["visit_date"]).dt.date
    return frame


def in_quarter(dates, quarter: str):
    start, end = quarter_bounds(quarter)
    return np.array([start <= d <= end for d in dates], dtype=bool)


def test_quarters_and_default(demo_snapshot, visits, quarter):
    expected = sorted({quarter_of(d) for d in visits["visit_date"]})
    assert quarters_with_data(demo_snapshot) == expected
    cutoff = max(visits["visit_date"])
    complete = [q for q in expected if quarter_bounds(q)[1] <= cutoff]
    assert quarter == (complete or expected)[-1]


def test_activity_equals_a_pandas_count_from_visits(demo_snapshot, visits, clinical, quarter):
    ketamine = visits[visits["visit_type"].isin(["infusion", "booster"])]
    index = ketamine.groupby("patient_id")["visit_date"].min()
    site = demo_snapshot.query("SELECT patient_id, site FROM patients").set_index(
        "patient_id")["site"]
    new = index[in_quarter(index, quarter)]
    in_q = ketamine[in_quarter(ketamine["visit_date"], quarter)]
    table = clinical.activity.set_index("site")
    for name in table.index.drop(ALL_SITES):
        assert table.loc[name, "new_patients"] == int((site[new.index] == name).sum())
        of_site = in_q[in_q["patient_id"].map(site) == name]
        assert table.loc[name, "infusions"] == int((of_site["visit_type"] == "infusion").sum())
        assert table.loc[name, "boosters"] == int((of_site["visit_type"] == "booster").sum())
        assert table.loc[name, "patients_treated"] == of_site["patient_id"].nunique()
    total = table.loc[ALL_SITES]
    assert total["new_patients"] == len(new)
    assert total["infusions"] == int((in_q["visit_type"] == "infusion").sum())
    assert total["boosters"] == int((in_q["visit_type"] == "booster").sum())
    assert total["patients_treated"] == in_q["patient_id"].nunique()
    assert len(new) > 0 and total["infusions"] > 0


def test_cohort_counts_equal_the_engine(demo_snapshot, clinical, quarter):
    counts = outcomes.counts_by_condition(demo_snapshot, group_by="cohort_quarter")
    itt = counts[counts["population"] == "itt"].set_index(["timepoint", "definition", "group"])

    def engine(q, timepoint, definition):
        key = (timepoint, definition, q)
        return (int(itt.loc[key, "n"]), int(itt.loc[key, "responders"])) if key in itt.index \
            else (0, 0)

    for r in clinical.cohort.itertuples():
        assert (r.n, r.responders) == engine(quarter, r.timepoint, r.definition)
        assert r.prev_n == engine(clinical.previous_quarter, r.timepoint, r.definition)[0]
        assert r.yoy_n == engine(clinical.year_earlier, r.timepoint, r.definition)[0]
    assert len(clinical.cohort) == len(definitions.TIMEPOINTS) * len(definitions.DEFINITIONS)


def test_results_due_equal_patient_outcomes_counted_in_pandas(demo_snapshot, clinical, quarter):
    frame = demo_snapshot.query(
        "SELECT patient_id, timepoint, definition, index_date, eligible, due, responder "
        "FROM patient_outcomes")
    frame["index_date"] = pd.to_datetime(frame["index_date"]).dt.date
    frame["target"] = [i + dt.timedelta(days=TARGET_DAYS[t])
                       for i, t in zip(frame["index_date"], frame["timepoint"])]
    frame = frame[in_quarter(frame["target"], quarter)]
    checked = 0
    for r in clinical.due.itertuples():
        cell = frame[(frame["timepoint"] == r.timepoint) & (frame["definition"] == r.definition)]
        itt = cell[cell["eligible"] & cell["due"]]
        assert r.n == len(itt)
        assert r.responders == int(itt["responder"].sum())
        assert r.pending == int((cell["eligible"] & ~cell["due"]).sum())
        checked += r.n
    assert checked > 0


def test_rates_carry_wilson_intervals(clinical):
    for frame in (clinical.due, clinical.cohort, clinical.opioids, clinical.benzodiazepines):
        k_col = "responders" if "responders" in frame else "count"
        for _, r in frame.iterrows():
            if r["n"] == 0:
                assert value(r["rate"]) is None
                continue
            low, high = proportion_confint(r[k_col], r["n"], alpha=0.05, method="wilson")
            assert r["rate"] == pytest.approx(r[k_col] / r["n"])
            assert r["ci_low"] == pytest.approx(low, abs=1e-9)
            assert r["ci_high"] == pytest.approx(high, abs=1e-9)


def test_changes_compare_with_the_reports_of_earlier_quarters(demo_snapshot, clinical):
    previous = build_report(demo_snapshot, clinical.previous_quarter)
    year = build_report(demo_snapshot, clinical.year_earlier)
    for name in ("due", "cohort"):
        now, before, earlier = (getattr(r, name) for r in (clinical, previous, year))
        assert list(now["prev_n"]) == list(before["n"])
        assert list(now["yoy_n"]) == list(earlier["n"])
        for r, p, y in zip(now.itertuples(), before.itertuples(), earlier.itertuples()):
            assert value(r.prev_rate) == pytest.approx(value(p.rate))
            assert value(r.yoy_rate) == pytest.approx(value(y.rate))
            if r.n and p.n:
                assert r.change_prev == pytest.approx(r.rate - p.rate)
            else:
                assert value(r.change_prev) is None
            if r.n and y.n:
                assert r.change_yoy == pytest.approx(r.rate - y.rate)


def test_pchart_limits_and_signals(demo_snapshot, clinical, quarter):
    chart = clinical.pchart
    counts = outcomes.counts_by_condition(demo_snapshot, group_by="cohort_quarter")
    cell = counts[(counts.timepoint == "3m") & (counts.definition == "pain30")
                  & (counts.population == "itt") & (counts.group != "All") & (counts.n > 0)
                  & (counts.group <= quarter)].sort_values("group")
    assert list(chart["cohort_quarter"]) == list(cell["group"])
    assert list(chart["n"]) == list(cell["n"])
    limits = stats.p_chart(list(cell["responders"]), list(cell["n"]))
    assert clinical.pchart_centre == pytest.approx(cell["responders"].sum() / cell["n"].sum())
    assert list(chart["lower"]) == pytest.approx(limits.lower)
    assert list(chart["upper"]) == pytest.approx(limits.upper)
    for r in chart.itertuples():
        p = r.responders / r.n
        half = 3 * np.sqrt(r.centre * (1 - r.centre) / r.n)
        assert r.upper == pytest.approx(min(1, r.centre + half))
        assert r.outside == (p > r.upper or p < r.lower)


def test_pchart_flags_a_quarter_outside_its_limits(tmp_path):
    """Four cohorts of 20; in the third every patient responds."""
    rows, starts = [], [dt.date(2028, 1, 10), dt.date(2028, 4, 10), dt.date(2028, 7, 10),
                        dt.date(2028, 10, 10)]
    for q, start in enumerate(starts):
        for i in range(20):
            responder = q == 2 or i < 6
            rows += treated(f"q{q}p{i}", start + dt.timedelta(days=i), follow_up=90,
                            follow_up_pain=4 if responder else 8)
    rows.append(visit("q0p0", dt.date(2029, 12, 31), "follow_up"))
    snap = build(tmp_path, rows)
    chart = build_report(snap, "2028Q4").pchart.set_index("cohort_quarter")
    assert list(chart.index) == ["2028Q1", "2028Q2", "2028Q3", "2028Q4"]
    assert list(chart["n"]) == [20] * 4
    assert chart.loc["2028Q3", "outside"] and chart.loc["2028Q3", "signal"] == \
        "above the upper limit"
    assert not chart.drop("2028Q3")["outside"].any()
    assert chart["centre"].iloc[0] == pytest.approx((6 * 3 + 20) / 80)


def test_opioid_and_benzodiazepine_shares_equal_pandas(visits, clinical, quarter):
    # Visits of treated patients only (one with an infusion or booster):
    # untreated patients appear only in the patient flow (SPEC §3).
    treated = set(visits.loc[visits["visit_type"].isin(["infusion", "booster"]), "patient_id"])
    in_q = visits[in_quarter(visits["visit_date"], quarter) & visits["patient_id"].isin(treated)]
    assert len(in_q) < int(in_quarter(visits["visit_date"], quarter).sum())  # some were untreated
    mme = in_q["opioid_mme_per_day"].dropna()
    opioids = clinical.opioids.set_index("measure")
    assert opioids.loc["Visits at ≥90 MME/day", "n"] == len(mme)
    assert opioids.loc["Visits at ≥90 MME/day", "count"] == int((mme >= 90).sum())
    assert opioids.loc["Visits at ≥50 MME/day", "count"] == int((mme >= 50).sum())
    benzo = in_q["benzodiazepine"].dropna().astype(bool)
    rows = clinical.benzodiazepines.set_index("measure")
    assert rows.loc["Visits with a benzodiazepine", "n"] == len(benzo)
    assert rows.loc["Visits with a benzodiazepine", "count"] == int(benzo.sum())
    both = in_q.dropna(subset=["opioid_mme_per_day", "benzodiazepine"])
    assert rows.loc["Visits with a benzodiazepine and an opioid", "count"] == int(
        ((both["opioid_mme_per_day"] > 0) & both["benzodiazepine"].astype(bool)).sum())
    # mme50 / mme_stop: the 3-month rows of the table of results due
    due = clinical.due.set_index(["timepoint", "definition"])
    for measure, definition in (("Opioid dose cut by ≥50% at 3 months", "mme50"),
                                ("Off opioids at 3 months", "mme_stop")):
        assert opioids.loc[measure, "n"] == due.loc[("3m", definition), "n"]
        assert opioids.loc[measure, "count"] == due.loc[("3m", definition), "responders"]


def test_baseline_opioid_users_among_new_patients(demo_snapshot, clinical, quarter):
    frame = demo_snapshot.query("SELECT p.index_date, b.baseline_mme FROM patients p "
                                "JOIN baselines b USING (patient_id) WHERE p.treated")
    frame["index_date"] = pd.to_datetime(frame["index_date"]).dt.date
    new = frame[in_quarter(frame["index_date"], quarter)]
    row = clinical.opioids.set_index("measure").loc["On opioids at baseline"]
    assert row["n"] == new["baseline_mme"].notna().sum()
    assert row["count"] == (new["baseline_mme"] > 0).sum()


def _event_types(text) -> set[str]:
    """A session's adverse-event categories as the Safety page counts them:
    text in parentheses dropped, split on ';' and ',', each part folded,
    'none' and the like dropped, looked up in the categories table (issue
    14: unknown text is 'other')."""
    if text is None or pd.isna(text):
        return set()
    table = adverse_events.load()
    parts = {fold(part) for part in re.split(r"[;,]", re.sub(r"\([^)]*\)", " ", str(text)))}
    return {table.category(p) for p in parts - {"", "none", "no", "n_a", "na", "nil", "0", "false"}}


def test_safety_per_100_sessions_equals_pandas(visits, clinical, quarter):
    in_q = visits[in_quarter(visits["visit_date"], quarter)
                  & visits["visit_type"].isin(["infusion", "booster"])]
    n = len(in_q)
    safety = clinical.safety.set_index("event")
    types = in_q["adverse_event"].map(_event_types)
    assert safety.loc[ANY_EVENT, "events"] == int((types.map(len) > 0).sum())
    counts = pd.Series([t for ts in types for t in ts]).value_counts()
    for event, k in counts.items():
        row = safety.loc[event.capitalize()]
        assert (row["events"], row["n"]) == (k, n)
        assert row["per_100"] == pytest.approx(100 * k / n)
        low, high = proportion_confint(k, n, method="wilson")
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((100 * low, 100 * high))
    # Vital signs: denominators are the sessions that recorded that vital sign.
    sbp = safety.loc["Systolic BP ≥ 180 mmHg"]
    assert (sbp["events"], sbp["n"]) == (int((in_q["sbp_max"] >= 180).sum()),
                                         int(in_q["sbp_max"].notna().sum()))
    spo2 = safety.loc["SpO₂ < 90%"]
    assert (spo2["events"], spo2["n"]) == (int((in_q["spo2_min"] < 90).sum()),
                                           int(in_q["spo2_min"].notna().sum()))
    assert spo2["n"] < n


@pytest.mark.parametrize("filters", [Filters(), Filters(sites=("Denver",))])
def test_safety_table_is_the_safety_pages_computation(demo_snapshot, quarter, filters):
    """One computation for the page and the report: the report's rows are the
    Safety page's rates for the sessions dated in the quarter."""
    start, end = quarter_bounds(quarter)
    page = safety.safety_summary(demo_snapshot, filters, visits_from=start, visits_to=end)
    table = build_report(demo_snapshot, quarter, filters=filters).safety.set_index("event")
    expected = {ANY_EVENT: page.rate("any_adverse_event"),
                "Systolic BP ≥ 180 mmHg": page.rate("sbp_180"),
                "SpO₂ < 90%": page.rate("spo2_below_90"),
                **{t.capitalize(): page.rate(t) for t in page.adverse_event_types}}
    assert set(table.index) == set(expected)
    for event, rate in expected.items():
        row = table.loc[event]
        assert (row["events"], row["n"]) == (rate.events, rate.n)
        assert (row["per_100"], row["ci_low"], row["ci_high"]) == pytest.approx(
            (rate.per_100, rate.ci_low, rate.ci_high))


# --------------------------------------------------------------------------
# quarter edges (hand-made)


@pytest.fixture
def edges(tmp_path) -> store.Snapshot:
    """Index dates on 31 March, 1 April, 31 December and 1 January, each
    with a 4-week follow-up; the data run to 12 February 2029, when the last
    4-week window (1 January + 42 days) closes, so every 4-week result is
    due (SPEC §3)."""
    rows = []
    for patient, index, site in (("mar31", dt.date(2028, 3, 31), "North"),
                                 ("apr01", dt.date(2028, 4, 1), "North"),
                                 ("dec31", dt.date(2028, 12, 31), "South"),
                                 ("jan01", dt.date(2029, 1, 1), "South")):
        rows += treated(patient, index, site=site, follow_up=28, follow_up_pain=4)
    rows.append(visit("mar31", dt.date(2028, 4, 1), "booster", site="North"))
    rows.append(visit("jan01", dt.date(2029, 2, 12), "follow_up", site="South"))
    return build(tmp_path, rows)


def test_quarter_edges(edges):
    q1 = build_report(edges, "2028Q1")
    q2 = build_report(edges, "2028Q2")
    north1 = q1.activity.set_index("site").loc["North"]
    north2 = q2.activity.set_index("site").loc["North"]
    assert (north1["new_patients"], north1["infusions"], north1["boosters"]) == (1, 1, 0)
    assert (north2["new_patients"], north2["infusions"], north2["boosters"]) == (1, 1, 1)
    assert q2.activity.set_index("site").loc["North", "patients_treated"] == 2
    # the 4-week results: index + 28 days; 31 March + 28 = 28 April (Q2)
    due2 = q2.due.set_index(["timepoint", "definition"]).loc[("4w", "pain30")]
    assert (due2["n"], due2["responders"]) == (2, 2)


def test_q4_rolls_over_to_the_next_years_q1(edges):
    q = build_report(edges, "2029Q1")
    assert (q.previous_quarter, q.year_earlier) == ("2028Q4", "2028Q1")
    assert previous_quarter("2029Q1") == "2028Q4"
    cohort = q.cohort.set_index(["timepoint", "definition"]).loc[("4w", "pain30")]
    assert (cohort["n"], cohort["prev_n"], cohort["yoy_n"]) == (1, 1, 1)
    assert cohort["change_prev"] == 0 and cohort["change_yoy"] == 0
    assert q.activity.set_index("site").loc["South", "new_patients"] == 1
    q4 = build_report(edges, "2028Q4")
    assert (q4.previous_quarter, q4.year_earlier) == ("2028Q3", "2027Q4")
    assert q4.activity.set_index("site").loc["South", "new_patients"] == 1


def test_a_quarter_without_treatment_still_reports(tmp_path):
    rows = [visit("a", dt.date(2028, 1, 5), "intake", pain_score=7, site="North"),
            visit("b", dt.date(2028, 2, 5), "intake", pain_score=7, site="South")]
    snap = build(tmp_path, rows)
    for audience in AUDIENCES:
        rep = build_report(snap, "2028Q1", audience)
        assert rep.pchart.empty and not rep.complete
        assert any("cohorts cannot be compared" in line for line in rep.highlights())
        written = write(rep, tmp_path / audience)
        assert [p.suffix for p in written] == [".html", ".xlsx", ".pdf"]
    clinical = build_report(snap, "2028Q1")
    assert clinical.activity.set_index("site").loc[ALL_SITES].tolist() == [0, 0, 0, 0]
    assert clinical.safety["per_100"].isna().all()


def test_errors(edges):
    with pytest.raises(ValueError, match="not a quarter"):
        build_report(edges, "2028Q5")
    with pytest.raises(ValueError, match="audience"):
        build_report(edges, "2028Q1", "public")
    with pytest.raises(NoDataError, match="no visits in 2028Q3"):
        build_report(edges, "2028Q3")
    with pytest.raises(NoDataError):
        build_report(edges, "2028Q1", filters=Filters(sites=("South",)))


def test_filters_narrow_the_patients_and_ignore_the_cohort_range(demo_snapshot, clinical,
                                                                 quarter):
    site = clinical.activity["site"].iloc[0]
    narrow = build_report(demo_snapshot, quarter, filters=Filters(sites=(site,)))
    assert list(narrow.activity["site"]) == [site, ALL_SITES]
    mine = clinical.activity.set_index("site").loc[site]
    assert narrow.activity.set_index("site").loc[ALL_SITES].equals(mine.rename(
        ALL_SITES))
    ranged = build_report(demo_snapshot, quarter,
                                 filters=Filters.from_quarters("2000Q1", "2000Q1"))
    pd.testing.assert_frame_equal(ranged.due, clinical.due)


# --------------------------------------------------------------------------
# small cells and patient ids


def test_external_report_has_no_group_under_11(demo_snapshot, external):
    early = build_report(demo_snapshot, quarters_with_data(demo_snapshot)[0],
                                "external")
    suppressed = 0
    for rep in (external, early):
        for spec, frame in rep.tables():
            groups = [c for c in spec.columns if c.kind == "n"]
            for column in groups:
                for v in frame[column.name]:
                    # SPEC §4: no count from 1 to 10 (a 0 hides nobody)
                    assert value(v) in (None, 0) or v >= SMALL_CELL, (spec.key, column.name, v)
                    suppressed += value(v) is None
            # what belongs to a hidden group is hidden with it
            for column in spec.columns:
                if column.n:
                    hidden = frame[column.n].map(lambda v: value(v) is None)
                    assert frame.loc[hidden, column.name].map(lambda v: value(v) is None).all()
    assert suppressed > 0   # the early quarter has small groups


def test_external_activity_suppression_is_complementary(tmp_path):
    rows = []
    for site, count in (("North", 12), ("South", 15), ("West", 3)):
        for i in range(count):
            rows += treated(f"{site}{i}", dt.date(2028, 2, 1) + dt.timedelta(days=i), site=site)
    snap = build(tmp_path, rows)
    clinical = build_report(snap, "2028Q1").activity.set_index("site")
    external = build_report(snap, "2028Q1", "external").activity.set_index("site")
    assert list(clinical["new_patients"]) == [12, 15, 3, 30]
    shown = {site: value(v) for site, v in external["new_patients"].items()}
    assert shown["West"] is None            # 3 < 11
    assert shown["North"] is None           # complement: else West = 30 - 12 - 15
    assert shown["South"] == 15 and shown[ALL_SITES] == 30
    html = render_html(build_report(snap, "2028Q1", "external"))
    assert SUPPRESSED in html


def test_external_pchart_limits_use_only_the_quarters_shown(demo_snapshot, external):
    chart = external.pchart
    shown = chart[chart["n"].map(lambda v: value(v) is not None)]
    assert external.pchart_centre == pytest.approx(
        sum(shown["responders"]) / sum(shown["n"]))


def patient_ids(snap) -> list[str]:
    return list(snap.query("SELECT DISTINCT patient_id FROM visits")["patient_id"])


def test_no_patient_id_anywhere(demo_snapshot, external, clinical, tmp_path):
    ids = patient_ids(demo_snapshot)
    assert len(ids) > 100
    pattern = re.compile("|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)))
    for rep in (external, clinical):
        for spec, frame in rep.tables():
            text = frame.to_csv(index=False) + display_frame(spec, frame).to_csv()
            assert not pattern.search(text), spec.key
        assert not pattern.search(render_html(rep))
        assert not pattern.search("\n".join(v for _, v in rep.provenance()))
    path = write_xlsx(external, tmp_path / "external.xlsx")
    with zipfile.ZipFile(path) as book:
        for name in book.namelist():
            assert not pattern.search(book.read(name).decode("utf-8", "ignore")), name
    pdf = write_pdf(external, tmp_path / "external.pdf")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Quarterly outcomes report" in text and not pattern.search(text)


# --------------------------------------------------------------------------
# provenance, reproducibility, fingerprint


def test_provenance(demo_snapshot, clinical, quarter):
    items = dict(clinical.provenance())
    assert items["Quarter"].startswith(quarter)
    assert items["Data cutoff (latest visit date)"] == \
        outcomes.cutoff(demo_snapshot).isoformat()
    assert items["Data fingerprint (SHA-256 of the visits table)"] == \
        data_fingerprint(demo_snapshot) == clinical.fingerprint
    assert re.fullmatch(r"[0-9a-f]{64}", clinical.fingerprint)
    assert "3m: day 90 [60, 120]" in items[
        "Timepoints (target day, window in days from index, inclusive)"]
    described = items["Responder definitions (r = relative reduction from baseline)"]
    assert all(d in described for d in definitions.DEFINITIONS) and "≥30%" in described
    assert "Wilson" in items["Confidence intervals"]
    assert "n < 11" in items["Small-cell rule"]
    assert items["Software version"] == f"analysis {SOFTWARE_VERSION}"
    dt.datetime.strptime(items["Generated at (UTC)"], "%Y-%m-%dT%H:%M:%SZ")


def assert_same_numbers(a: QuarterlyReport, b: QuarterlyReport) -> None:
    for (spec, frame), (_, other) in zip(a.tables(), b.tables()):
        pd.testing.assert_frame_equal(frame, other, check_exact=True, obj=spec.key)
    drop = lambda items: [(k, v) for k, v in items if k != "Generated at (UTC)"]
    assert drop(a.provenance()) == drop(b.provenance())


def test_two_runs_give_the_same_report(demo_db, clinical, quarter, tmp_path):
    again = store.Snapshot(demo_db)   # a fresh copy of the same database
    try:
        second = build_report(again, quarter)
    finally:
        again.close()
    assert second.fingerprint == clinical.fingerprint
    assert_same_numbers(second, clinical)
    strip = lambda text: text.replace(clinical.generated_at, "").replace(
        second.generated_at, "")
    assert strip(render_html(second)) == strip(render_html(clinical))


def test_fingerprint_follows_the_visits(tmp_path):
    rows = [*treated("a", dt.date(2028, 1, 10), follow_up=90, follow_up_pain=4),
            *treated("b", dt.date(2028, 2, 10), follow_up=90, follow_up_pain=7)]
    path = tmp_path / "clinic.duckdb"
    ingest_rows(path, rows)
    first = build_report(store.Snapshot(path), "2028Q1").fingerprint
    assert build_report(store.Snapshot(path), "2028Q1").fingerprint == first
    ingest_rows(path, rows, "again.csv")           # the same export again: nothing changes
    assert data_fingerprint(store.Snapshot(path)) == first
    changed = [dict(r) for r in rows]
    changed[-1]["pain_score"] = 6                 # one value of one visit
    ingest_rows(path, changed, "corrected.csv")
    second = build_report(store.Snapshot(path), "2028Q1")
    assert second.fingerprint != first
    assert dict(second.provenance())[
        "Data fingerprint (SHA-256 of the visits table)"] == second.fingerprint


# --------------------------------------------------------------------------
# exports


EXPECTED_SHEETS = ["Activity by site", "Results due", "Cohort", "p-chart", "Opioids",
                   "Benzodiazepines", "Safety", "Provenance"]


def test_xlsx_reopens_with_every_sheet(clinical, tmp_path):
    path = write_xlsx(clinical, tmp_path / "r.xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == EXPECTED_SHEETS
    due = book["Results due"]
    header = [c.value for c in due[4]]
    assert header[:5] == ["Timepoint", "Responder definition", "n (ITT)", "Responders",
                          "Rate (95% CI)"]
    rate = due.cell(row=5, column=5)
    assert isinstance(rate.value, float) and rate.number_format == "0.0%"
    assert rate.value == pytest.approx(clinical.due["rate"].iloc[0])
    assert due.cell(row=4, column=1).font.bold
    assert due.column_dimensions["B"].width > 10
    assert due.max_row == 4 + len(clinical.due)
    provenance = {r[0]: r[1] for r in book["Provenance"].iter_rows(min_row=4, values_only=True)}
    assert provenance["Data fingerprint (SHA-256 of the visits table)"] == clinical.fingerprint
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for c in row:
                assert c.data_type != "f", (sheet.title, c.coordinate, c.value)


def test_xlsx_writes_formula_like_names_as_text(tmp_path):
    evil = '=HYPERLINK("http://example.invalid","click")'
    rows = [*treated("a", dt.date(2028, 1, 10), site=evil),
            *treated("b", dt.date(2028, 1, 11), site="+North")]
    rep = build_report(build(tmp_path, rows), "2028Q1")
    book = openpyxl.load_workbook(write_xlsx(rep, tmp_path / "r.xlsx"))
    sheet = book["Activity by site"]
    sites = [sheet.cell(row=r, column=1) for r in range(5, sheet.max_row + 1)]
    values = [c.value for c in sites]
    assert "'" + evil in values and "'+North" in values
    assert all(c.data_type == "s" for c in sites)
    assert evil in render_html(rep).replace("&quot;", '"')   # escaped, shown as text
    assert "<a " not in render_html(rep)


def test_html_is_self_contained(clinical):
    page = render_html(clinical)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3
    assert "<script" not in page and "<link" not in page and "<img" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert not re.search(r"url\((?!#)", page) and "@import" not in page   # only url(#clip)
    for spec, _ in clinical.tables():
        assert f'id="{spec.key}"' in page
    assert clinical.fingerprint in page


def test_pdf_pages_are_not_blank(clinical, tmp_path):
    from PIL import Image

    path = write_pdf(clinical, tmp_path / "r.pdf")
    assert path.read_bytes().startswith(b"%PDF")
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(tmp_path / "page")],
                   check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3
    for page in pages:
        pixels = np.asarray(Image.open(page).convert("L"))
        assert (pixels < 200).mean() > 0.01, page.name
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "≥30% less pain" in text and "–" in text and "Provenance" in text
    assert clinical.fingerprint[:12] in text


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="chromium not installed")
def test_html_opens_in_chromium_without_network(clinical, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    path = write_html(clinical, tmp_path / "r.html")
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            assert page.locator("h1").inner_text().startswith(clinical.title)
            assert page.locator("figure svg").count() == 3
            assert page.locator("section#due table tbody tr").count() == len(clinical.due)
            page.screenshot(path=str(tmp_path / "r.png"), full_page=True)
            # Every column is on the page at a laptop's width, the changes from
            # the previous quarter and a year earlier included: no table hides
            # a column in a scroll box (issue 19).
            for width in (1280, 1600):
                page.set_viewport_size({"width": width, "height": 900})
                overflowing = page.evaluate(
                    "() => [...document.querySelectorAll('.scroll')]"
                    ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.parentNode.id)")
                assert overflowing == [], (width, overflowing)
            headers = page.locator("section#due th").all_inner_texts()
            assert any(h.replace("\n", " ").startswith(f"Change vs {clinical.year_earlier}")
                       for h in headers), headers
        finally:
            browser.close()
    assert [u for u in requests if not u.startswith("file:")] == []


# --------------------------------------------------------------------------
# CLI


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(["report", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_cli_writes_every_format(demo_db, quarter, tmp_path, capsys):
    code, out, err = run_cli(capsys, "--quarter", quarter.lower(), "--db", str(demo_db),
                             "--out", str(tmp_path / "out"), "--audience", "external")
    assert code == 0, err
    written = out.split()
    assert [Path(p).suffix for p in written] == [".html", ".xlsx", ".pdf"]
    assert all(Path(p).exists() and Path(p).stat().st_size > 1000 for p in written)
    assert all(f"{quarter}_external" in p for p in written)
    assert "[1/5]" in err and "[5/5] writing PDF" in err


def test_cli_exit_codes(demo_db, tmp_path, capsys):
    code, _, err = run_cli(capsys, "--quarter", "2026Q5", "--db", str(demo_db),
                           "--out", str(tmp_path))
    assert code == 2 and "not a quarter: '2026Q5'" in err
    code, _, err = run_cli(capsys, "--quarter", "1999Q1", "--db", str(demo_db),
                           "--out", str(tmp_path))
    assert code == 1 and "no visits in 1999Q1" in err
    code, _, err = run_cli(capsys, "--quarter", "2026Q1", "--db", str(tmp_path / "none.duckdb"),
                           "--out", str(tmp_path))
    assert code == 1 and "no database" in err
    code, _, err = run_cli(capsys, "--quarter", "2026Q1", "--db", str(demo_db),
                           "--out", str(tmp_path), "--format", "html,docx")
    assert code == 2 and "docx" in err
    code, _, err = run_cli(capsys, "--quarter", "2026Q1", "--db", str(demo_db),
                           "--out", str(tmp_path), "--audience", "press")
    assert code == 2 and "press" in err
    assert list(tmp_path.glob("quarterly_report_*")) == []


def test_python_m_analysis_report(demo_db, quarter, tmp_path):
    done = subprocess.run([sys.executable, "-m", "analysis", "report", "--quarter", quarter,
                           "--db", str(demo_db), "--out", str(tmp_path), "--format", "xlsx"],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / f"quarterly_report_{quarter}_clinical.xlsx")
    bad = subprocess.run([sys.executable, "-m", "analysis", "report", "--quarter", "2026Q5",
                          "--db", str(demo_db), "--out", str(tmp_path)],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "2026Q5" in bad.stderr
