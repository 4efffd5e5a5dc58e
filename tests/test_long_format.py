"""Long-format measurement exports (patient_id, date, measure, value [, time,
unit]) merged into visits by patient and date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from analysis.storage import db
from analysis.ingest.pipeline import ingest_file, ingest_files
from analysis.access import keys

INGEST_DATE = dt.date(2024, 12, 31)
SESSIONS = ("patient_id,visit_date,visit_type,pain_score\n"
            "P1,2024-01-02,intake,8\n"
            "P1,2024-01-05,infusion,7\n"
            "P1,2024-02-05,follow_up,\n"
            "P1,2024-02-05,booster,6\n")


@pytest.fixture
def con(tmp_path):
    connection = db.connect(tmp_path / "outcomes.duckdb")
    yield connection
    connection.close()


def run(con, tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    summary = ingest_files(con, [path], ingest_date=INGEST_DATE)
    (result,) = summary.files
    if result.status == "ingested":
        assert result.rows_read == (result.rows_accepted + result.rows_quarantined
                                    + result.duplicates_collapsed)
    return result


def visits(con, columns):
    return con.execute(f"SELECT visit_date, visit_type, {columns} FROM visits "
                       "ORDER BY visit_date, visit_type, patient_id").fetchall()


def d(text):
    return dt.date.fromisoformat(text)


def test_measures_by_column_alias_or_loinc_merge_into_the_days_visit(con, tmp_path):
    run(con, tmp_path, "sessions.csv", SESSIONS)
    result = run(con, tmp_path, "measures.csv",
                 "Patient ID,Date,Measure,Value,Time,Unit\n"
                 "P1,2024-01-02,PHQ-9,14,09:00,\n"
                 "P1,2024-01-02,101698-9,40,09:05,{score}\n"
                 "P1,2024-02-05,pain_post,2,15:00,\n"
                 "P1,2024-02-05,PGIC,2,10:00,\n"
                 "P1,2024-02-05,8480-6,150,14:00,mm[Hg]\n"
                 "P1,2024-02-05,8480-6,162,14:30,mm[Hg]\n")
    assert result.status == "ingested" and result.export_kind == "measurements"
    assert result.details == {"visits_updated": 2, "visits_added": 0}
    assert visits(con, "phq9, pcl5, pgic, pain_post, sbp_max") == [
        (d("2024-01-02"), "intake", 14, 40, None, None, None),
        (d("2024-01-05"), "infusion", None, None, None, None, None),
        # a same-day session gets the values first, pain after the infusion only there
        (d("2024-02-05"), "booster", None, None, 2, 2.0, 162.0),
        (d("2024-02-05"), "follow_up", None, None, None, None, None)]


def test_a_day_without_a_visit_gets_one_typed_like_a_fhir_day(con, tmp_path):
    run(con, tmp_path, "sessions.csv", SESSIONS)
    run(con, tmp_path, "measures.csv",
        "patient_id,date,measure,value\n"
        "P1,2024-03-01,phq9,9\n"              # a check-in from home: a follow-up
        "P1,2024-03-10,ketamine_mg,50\n"      # ketamine 34 days after the last session
        "P1,2024-03-12,ketamine_mg,50\n"
        "P2,2024-03-12,ketamine_mg,40\n")     # a new patient's first session
    assert visits(con, "patient_id, ketamine_mg, phq9")[-4:] == [
        (d("2024-03-01"), "follow_up", "P1", None, 9),
        (d("2024-03-10"), "booster", "P1", 50.0, None),
        (d("2024-03-12"), "infusion", "P1", 50.0, None),
        (d("2024-03-12"), "infusion", "P2", 40.0, None)]


def test_row_and_value_problems_duplicates_and_conflicts(con, tmp_path):
    run(con, tmp_path, "sessions.csv", SESSIONS)
    result = run(con, tmp_path, "measures.csv",
                 "patient_id,date,measure,value,time\n"
                 ",2024-01-02,phq9,3,\n"
                 "P1,2025-06-01,phq9,3,\n"
                 "P1,2024-01-02,shoe size,44,\n"
                 "P1,2024-01-02,pain,12,\n"
                 "P1,2024-01-05,phq9,5,10:00\n"
                 "P1,2024-01-05,phq9,5,10:00\n"
                 "P1,2024-01-05,pcl5,30,10:00\n"
                 "P1,2024-01-05,pcl5,31,10:00\n")
    assert (result.rows_read, result.rows_quarantined, result.duplicates_collapsed,
            result.values_nulled) == (8, 5, 1, 1)
    reasons = [r[0] for r in con.execute("SELECT reason FROM quarantine ORDER BY line").fetchall()]
    assert reasons == ["missing patient_id", "date 2025-06-01 is after the ingest date",
                       'unknown measure "shoe size"',
                       "conflicting rows share patient, date, time and measure",
                       "conflicting rows share patient, date, time and measure"]
    assert con.execute("SELECT line, column_name, raw_value, reason FROM value_issues").fetchall() == [
        (5, "pain_score", "12", "out of range (must be between 0 and 10)")]
    assert visits(con, "pain_score, phq9, pcl5")[:2] == [
        (d("2024-01-02"), "intake", 8.0, None, None), (d("2024-01-05"), "infusion", 7.0, 5, None)]


def test_an_mrn_key_is_pseudonymised(con, tmp_path):
    run(con, tmp_path, "measures.csv", "MRN,date,measure,value\n00123,2024-01-02,phq9,9\n")
    assert visits(con, "patient_id") == [(d("2024-01-02"), "follow_up", keys.pseudonym("00123"))]
    assert b"00123" not in (tmp_path / "outcomes.duckdb").read_bytes()


def test_one_transaction(con, tmp_path):
    run(con, tmp_path, "sessions.csv", SESSIONS)
    path = tmp_path / "m.csv"
    path.write_text("patient_id,date,measure,value\nP1,2024-01-02,phq9,9\nP1,2024-04-02,phq9,9\n")
    before = con.execute("SELECT count(*), count(phq9) FROM visits").fetchall()
    with pytest.raises(RuntimeError):
        ingest_file(con, path, ingest_date=INGEST_DATE, _fail_after="visits")
    assert con.execute("SELECT count(*), count(phq9) FROM visits").fetchall() == before
