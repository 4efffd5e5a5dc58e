"""Dose and course (issue 18): response by induction infusions completed and
by ketamine dose per kg, against an independent pandas reading."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.metrics import treatment_course as tc
from analysis.core.audience import Audience
from analysis.ingest.demo.generate import generate_demo
from analysis.core.filters import Filters
from tests.helpers.builders import ingested_snapshot


def test_bands():
    assert tc.dose_band(0.49) == "under 0.5 mg/kg"
    assert tc.dose_band(0.5) == "0.5 to under 0.75 mg/kg"
    assert tc.dose_band(0.999) == "0.75 to under 1 mg/kg"
    assert tc.dose_band(1.0) == "1 mg/kg or more"
    assert tc.dose_band(None) == tc.dose_band(float("nan")) == tc.UNKNOWN_DOSE
    assert [tc.infusion_group(n) for n in (1, 2, 5, 6, 9)] == [
        "1 infusion", "2 infusions", "5 infusions", "6 or more", "6 or more"]


def test_dose_uses_the_sessions_weight_else_the_last_one_before(tmp_path):
    rows = [
        ("A", "2026-01-01", "intake", None, 80),
        ("A", "2026-01-02", "infusion", 40, None),     # 40 / 80 (intake's weight)
        ("A", "2026-01-05", "infusion", 60, 100),      # 60 / 100
        ("A", "2026-03-01", "infusion", 500, 50),      # day 58: after induction, not counted
        ("B", "2026-01-02", "infusion", 70, None),     # no weight before: not counted
        ("B", "2026-01-04", "infusion", 70, 70),       # 1.0
        ("Z", "2026-06-30", "intake", None, None),
    ]
    path = tmp_path / "doses.csv"
    pd.DataFrame(rows, columns=["patient_id", "visit_date", "visit_type", "ketamine_mg",
                                "weight_kg"]).to_csv(path, index=False)
    from analysis.core import definitions
    from analysis.storage.queries import run_query
    frame = run_query(ingested_snapshot(tmp_path / "d.duckdb", [path]), "course_patients",
                      Filters(), {
        "timepoint": "3m", "definition": "pain30", "induction_days": definitions.INDUCTION_DAYS,
        "induction_min": definitions.INDUCTION_MIN_INFUSIONS}).set_index("patient_id")
    assert frame.loc["A", "mg_per_kg"] == pytest.approx((0.5 + 0.6) / 2)
    assert frame.loc["B", "mg_per_kg"] == pytest.approx(1.0)
    assert dict(frame["induction_infusions"]) == {"A": 2, "B": 2}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    files = generate_demo(tmp_path_factory.mktemp("course"), patients=600, seed=9, messy=False)
    return files.sessions, ingested_snapshot(
        tmp_path_factory.mktemp("course_db") / "clinic.duckdb", [files.sessions, files.medications])


@pytest.mark.parametrize("population", ["itt", "completers"])
def test_rates_equal_an_independent_reading(clean, population):
    sessions, snap = clean
    v = pd.read_csv(sessions, parse_dates=["visit_date"])
    treat = v[v.visit_type.isin(["infusion", "booster"])]
    index = treat.groupby("patient_id").visit_date.min()
    treat = treat.join(index.rename("index"), on="patient_id")
    induction = treat[treat.visit_date <= treat["index"] + pd.Timedelta(days=42)]
    count = induction.groupby("patient_id").visit_date.nunique()
    dosed = induction.dropna(subset=["ketamine_mg", "weight_kg"])      # demo: weight on the visit
    weighed = v.dropna(subset=["weight_kg"]).sort_values("visit_date")
    per_kg = {}
    for pid, rows in induction.dropna(subset=["ketamine_mg"]).groupby("patient_id"):
        mine = weighed[weighed.patient_id == pid]
        values = []
        for r in rows.itertuples():
            before = mine[mine.visit_date <= r.visit_date]
            if len(before):
                values.append(r.ketamine_mg / before.weight_kg.iloc[-1]
                              if before.visit_date.iloc[-1] < r.visit_date
                              else r.ketamine_mg / before[before.visit_date == r.visit_date]
                              .weight_kg.max())
        if values:
            per_kg[pid] = np.mean(values)
    assert len(dosed) > 0
    outcome = snap.query("SELECT patient_id, eligible, due, complete, responder "
                         "FROM patient_outcomes WHERE timepoint = '3m' AND definition = 'pain30'")
    chosen = outcome[outcome.eligible & outcome.due]
    if population == "completers":
        chosen = chosen[chosen.complete]
    chosen = chosen.assign(
        infusions=chosen.patient_id.map(count).map(tc.infusion_group),
        dose=chosen.patient_id.map(per_kg).map(tc.dose_band))
    result = tc.course(snap, "3m", "pain30", population)
    for table, column in ((result.by_infusions, "infusions"), (result.by_dose, "dose")):
        expected = chosen.groupby(column).responder.agg(["size", "sum"])
        got = table.set_index("group")
        for group, row in expected.iterrows():
            assert (got.loc[group, "n"], got.loc[group, "responders"]) == (row["size"], row["sum"])
        assert got["n"].sum() == len(chosen)
    # the caveat's direction: fewer infusions, worse results
    rates = result.by_infusions.set_index("group").rate
    assert rates["1 infusion"] < rates["6 or more"]


def test_external_audience_refused(clean):
    with pytest.raises(PermissionError):
        tc.course(clean[1], audience=Audience.EXTERNAL)
