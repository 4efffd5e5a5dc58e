"""The one pass of a clean session export (issue 20,
``analysis.ingest.clean_sessions``): a file with nothing to report is read
straight into ``visits``; a file with anything to report (a duplicate, a
conflict, a date in the other format, a value or row problem, a malformed
line, a record over several lines) is rolled back and goes through the
careful path, with the same results as before.  Every expected value here
is written by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from analysis.ingest import clean_sessions, pipeline
from analysis.ingest.pipeline import ingest_file
from analysis.storage import db

INGEST_DATE = dt.date(2024, 6, 1)
HEADER = "visit_id,patient_id,visit_date,visit_type,condition,route,pain_score,phq9,benzodiazepine"
CLEAN = [HEADER,
         "V1,P1,2024-01-05,intake,G43.909,,8,12.0,no",
         "V2,P1,2024-01-12,Follow-up,, iv , 7 ,,Yes",
         "V3,P2,2024-01-13,induction,lupus,IV,5,3,"]


@pytest.fixture
def con(tmp_path):
    connection = db.connect(tmp_path / "outcomes.duckdb")
    yield connection
    connection.close()


@pytest.fixture
def staged(monkeypatch) -> list[str]:
    """The files that went through the careful path (its staging step)."""
    calls: list[str] = []
    original = pipeline.stage

    def spy(con, plan, reader_sql, path=None, *args, **kwargs):
        calls.append(Path(path).name if path else "?")
        return original(con, plan, reader_sql, path, *args, **kwargs)

    monkeypatch.setattr(pipeline, "stage", spy)
    return calls


def write(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def counts(result) -> tuple:
    return (result.status, result.rows_read, result.rows_accepted, result.rows_quarantined,
            result.duplicates_collapsed, result.values_nulled, result.rows_replaced)


def table(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_a_clean_export_is_read_once_straight_into_visits(tmp_path, con, staged):
    result = ingest_file(con, write(tmp_path, "clean.csv", *CLEAN), ingest_date=INGEST_DATE)
    assert counts(result) == ("ingested", 3, 3, 0, 0, 0, 0)
    assert result.date_format == "YYYY-MM-DD"
    assert staged == []   # no staging table: the one pass
    assert table(con, """
        SELECT natural_key, patient_id, visit_date, visit_type, condition, condition_raw, route,
               pain_score, phq9, benzodiazepine, ingest_id, source_line
        FROM visits ORDER BY source_line""") == [
        ("id:V1", "P1", dt.date(2024, 1, 5), "intake", "Migraine", "G43.909", None, 8.0, 12,
         False, 1, 2),
        ("id:V2", "P1", dt.date(2024, 1, 12), "follow_up", None, None, "IV", 7.0, None, True,
         1, 3),
        ("id:V3", "P2", dt.date(2024, 1, 13), "infusion", "Lupus", "lupus", "IV", 5.0, 3, None,
         1, 4)]
    assert table(con, "SELECT count(*) FROM quarantine") == [(0,)]
    assert table(con, "SELECT count(*) FROM value_issues") == [(0,)]
    assert table(con, "SELECT ingest_id, rows_read, rows_accepted FROM ingest_log") == [(1, 3, 3)]


def test_a_us_dated_export_takes_the_one_pass_in_its_format(tmp_path, con, staged):
    path = write(tmp_path, "us.csv", "patient_id,visit_date,visit_type",
                 "P1,01/05/2024,intake", "P1,1/12/2024,infusion")
    result = ingest_file(con, path, ingest_date=INGEST_DATE)
    assert counts(result) == ("ingested", 2, 2, 0, 0, 0, 0)
    assert (result.date_format, staged) == ("MM/DD/YYYY", [])
    assert table(con, "SELECT natural_key, visit_date FROM visits ORDER BY 2") == [
        ("pt:P1|2024-01-05|intake", dt.date(2024, 1, 5)),
        ("pt:P1|2024-01-12|infusion", dt.date(2024, 1, 12))]
    # The first attempt (ISO) left nothing behind: one ingest, id 1.
    assert table(con, "SELECT ingest_id, status FROM ingest_log") == [(1, "ingested")]


def test_a_duplicate_a_conflict_and_a_minority_date_in_one_file(tmp_path, con, staged):
    """Only the last rows have problems: the one pass reads almost the whole
    file before it stops, and the careful path does what it always did."""
    path = write(tmp_path, "mixed.csv", *CLEAN,
                 "V1,P1,2024-01-05,intake,G43.909,,8,12.0,no",      # line 5: duplicate of line 2
                 "V3,P2,2024-01-13,induction,lupus,IV,6,3,",         # line 6: conflicts with line 4
                 "V4,P3,01/20/2024,booster,,IV,4,,")                 # line 7: US date, ISO file
    result = ingest_file(con, path, ingest_date=INGEST_DATE)
    assert counts(result) == ("ingested", 6, 2, 3, 1, 0, 0)
    assert staged == ["mixed.csv"]
    assert table(con, "SELECT line, reason FROM quarantine ORDER BY line") == [
        (4, "conflicting rows share the natural key visit_id"),
        (6, "conflicting rows share the natural key visit_id"),
        (7, "visit_date is not a date in this file's format (YYYY-MM-DD)")]
    assert table(con, "SELECT visit_id, source_line FROM visits ORDER BY 2") == [
        ("V1", 2), ("V2", 3)]
    assert table(con, "SELECT ingest_id FROM ingest_log") == [(1,)]


@pytest.mark.parametrize("last_line, expected, quarantine, issues", [
    ("V9,P9,2025-01-01,infusion,,IV,5,,",                       # after the ingest date
     (4, 3, 1, 0, 0), [(5, "visit_date is after the ingest date")], []),
    (",P9,2024-01-20,infusion,,IV,5,,",                         # no visit_id: still clean
     None, [], []),
    ("V9,,2024-01-20,infusion,,IV,5,,",                         # no patient
     (4, 3, 1, 0, 0), [(5, "missing patient_id")], []),
    ("V9,P9,2024-01-20,surgery,,IV,5,,",                        # unknown visit type
     (4, 3, 1, 0, 0),
     [(5, "unknown visit_type (expected one of intake, infusion, booster, follow_up)")], []),
    ("V9,P9,2024-01-20,infusion,,IV,11,,",                      # a value out of range
     (4, 4, 0, 0, 1), [], [(5, "pain_score", "11", "out of range (must be between 0 and 10)")]),
    ("V9,P9,2024-01-20,infusion,,IV,   ,,",                     # a cell of blanks: blank
     (4, 4, 0, 0, 0), [], []),
    ("V9,P9,2024-01-20,infusion,,IV,5,,,extra",                 # a malformed line
     (4, 3, 1, 0, 0), [(5, "malformed line")], []),
])
def test_a_row_to_report_sends_the_file_to_the_careful_path(
        tmp_path, con, staged, last_line, expected, quarantine, issues):
    result = ingest_file(con, write(tmp_path, "one.csv", *CLEAN, last_line),
                         ingest_date=INGEST_DATE)
    if expected is None:   # nothing to report: the one pass took it
        assert (counts(result), staged) == (("ingested", 4, 4, 0, 0, 0, 0), [])
        return
    assert counts(result) == ("ingested", *expected, 0)
    assert staged == ["one.csv"]
    assert [(line, reason.split(":")[0]) for line, reason in
            table(con, "SELECT line, reason FROM quarantine ORDER BY line")] == quarantine
    assert table(con, "SELECT line, column_name, raw_value, reason FROM value_issues") == issues


def test_a_record_over_two_lines_keeps_its_physical_line(tmp_path, con, staged):
    path = write(tmp_path, "multi.csv", *CLEAN, 'V9,P9,2024-01-20,infusion,"lu', 'pus",IV,5,,',
                 "V10,P9,2024-01-21,infusion,,IV,5,,")
    result = ingest_file(con, path, ingest_date=INGEST_DATE)
    assert counts(result) == ("ingested", 5, 5, 0, 0, 0, 0)
    assert staged == ["multi.csv"]
    assert table(con, "SELECT visit_id, source_line FROM visits WHERE source_line > 4 ORDER BY 2") == [
        ("V9", 5), ("V10", 7)]


def test_a_label_first_seen_after_the_first_rows_gets_its_condition(tmp_path, con, staged):
    result = ingest_file(con, write(tmp_path, "labels.csv", *CLEAN,
                                    "V4,P3,2024-01-20,infusion,K86.1,IV,5,,"),
                         ingest_date=INGEST_DATE)
    assert (counts(result), staged) == (("ingested", 4, 4, 0, 0, 0, 0), [])
    assert table(con, "SELECT visit_id, condition FROM visits ORDER BY 1") == [
        ("V1", "Migraine"), ("V2", None), ("V3", "Lupus"), ("V4", "Chronic pancreatitis")]


@pytest.mark.parametrize("step", ["stage", "checked", "delete"])
def test_a_failure_inside_the_one_pass_leaves_the_database_as_before(tmp_path, con, staged,
                                                                      step):
    first = write(tmp_path, "first.csv", *CLEAN[:3])
    assert counts(ingest_file(con, first, ingest_date=INGEST_DATE))[:3] == ("ingested", 2, 2)
    before = {t: sorted(table(con, f"SELECT * FROM {t}"), key=repr)
              for t in ("visits", "quarantine", "value_issues", "ingest_log")}
    second = write(tmp_path, "second.csv", HEADER, "V1,P1,2024-01-05,intake,G43.909,,3,12,no",
                   "V4,P3,2024-01-20,infusion,,IV,5,,")
    with pytest.raises(RuntimeError, match="injected failure"):
        ingest_file(con, second, ingest_date=INGEST_DATE, _fail_after=step)
    assert {t: sorted(table(con, f"SELECT * FROM {t}"), key=repr) for t in before} == before
    result = ingest_file(con, second, ingest_date=INGEST_DATE)
    assert counts(result) == ("ingested", 2, 2, 0, 0, 0, 1)   # V1 replaced
    assert staged == []
    assert table(con, "SELECT visit_id, pain_score, ingest_id FROM visits ORDER BY 1") == [
        ("V1", 3.0, 2), ("V2", 7.0, 1), ("V4", 5.0, 2)]


def test_the_one_pass_writes_what_the_careful_path_writes(tmp_path, monkeypatch):
    """The same clean export through both paths: every table the same."""
    path = write(tmp_path, "same.csv", *CLEAN, ",P9,2024-01-20,follow_up,fibromyalgia,oral,0,27,1")
    dumps = []
    for name, one_pass in (("one.duckdb", True), ("careful.duckdb", False)):
        if not one_pass:
            monkeypatch.setattr(pipeline, "_load_clean", lambda *args, **kwargs: False)
        with db.writer(tmp_path / name) as con:
            assert ingest_file(con, path, ingest_date=INGEST_DATE).rows_accepted == 4
            dumps.append({t: table(con, f"SELECT * {'EXCLUDE (ingested_at)' if t == 'ingest_log' else ''}"
                                        f" FROM {t} ORDER BY ALL")
                          for t in ("visits", "quarantine", "value_issues", "ingest_log")})
    assert dumps[0] == dumps[1]
    assert len(dumps[0]["visits"]) == 4


@pytest.mark.parametrize("held_in_memory", [True, False])
def test_rows_read_in_parallel_keep_their_lines(tmp_path, con, staged, monkeypatch,
                                                 held_in_memory):
    """A file large enough to be read and written in several parts: every
    row's line is its place in the file (the visit id here says it), whether
    its rows are held in memory until the commit or written as they are
    read (a file over ``IN_MEMORY_BYTES``)."""
    if not held_in_memory:
        monkeypatch.setattr(clean_sessions, "IN_MEMORY_BYTES", 0)
    rows = 250_000
    path = tmp_path / "big.csv"
    path.write_text("visit_id,patient_id,visit_date,visit_type,pain_score\n" + "".join(
        f"{line},P{line % 997},2023-{1 + line % 12:02d}-{1 + line % 28:02d},infusion,{line % 11}\n"
        for line in range(2, rows + 2)))
    result = ingest_file(con, path, ingest_date=INGEST_DATE)
    assert (counts(result), staged) == (("ingested", rows, rows, 0, 0, 0, 0), [])
    assert table(con, """SELECT count(*), count(*) FILTER (WHERE source_line = CAST(visit_id AS BIGINT)),
                                min(source_line), max(source_line) FROM visits""") == [
        (rows, rows, 2, rows + 1)]


def test_the_commit_writes_the_rows_into_the_file_and_restores_the_settings(tmp_path, con):
    """The pass's commit checkpoints: its rows are in the database file, not
    only in the write-ahead log (which was logging them a second time), and
    DuckDB's write settings are as they were, after a clean file and after
    one sent to the careful path alike."""
    con.execute("SET checkpoint_threshold = '20MB'")
    settings = "SELECT current_setting('checkpoint_threshold'), current_setting('enable_optimistic_write')"
    before = table(con, settings)
    wal = Path(str(tmp_path / "outcomes.duckdb") + ".wal")
    result = ingest_file(con, write(tmp_path, "clean.csv", *CLEAN), ingest_date=INGEST_DATE)
    assert counts(result)[:3] == ("ingested", 3, 3)
    assert not wal.exists() or wal.stat().st_size == 0
    assert table(con, settings) == before
    careful = write(tmp_path, "careful.csv", HEADER, "V7,P7,2024-01-05,intake,,,11,,")
    assert counts(ingest_file(con, careful, ingest_date=INGEST_DATE))[:4] == ("ingested", 1, 1, 0)
    assert table(con, settings) == before
