"""Tests of the export contract (SPEC §2) through ``analysis.ingest.pipeline``.

Every test writes tiny exports into ``tmp_path``, ingests them into a real
DuckDB file on disk and checks exact counts and stored values.  Every ingest
goes through ``run`` / ``run_many``, which also check the invariant
``rows_read = rows_accepted + rows_quarantined + duplicates_collapsed`` and
that the ``ingest_log`` row agrees with the returned result.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analysis.storage import db, reference
from analysis.ingest.pipeline import ingest_file, ingest_files
from analysis.ingest.ingest_log import FileResult
from analysis.storage.reference import fold

INGEST_DATE = dt.date(2024, 6, 1)
TABLES = ("ingest_log", "visits", "medications", "quarantine", "value_issues")
SESSION_HEADER = "patient_id,visit_date,visit_type"


# --------------------------------------------------------------------------
# helpers


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "outcomes.duckdb"


@pytest.fixture
def con(db_path):
    connection = db.connect(db_path)
    yield connection
    try:
        connection.close()
    except duckdb.Error:
        pass


def write(tmp_path: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def csv_lines(*lines: str, newline: str = "\n") -> str:
    return newline.join(lines) + newline


def check_invariant(result: FileResult) -> None:
    assert result.rows_read == (result.rows_accepted + result.rows_quarantined
                                + result.duplicates_collapsed), result


def run(con, path, *, ingest_date=INGEST_DATE, **kwargs) -> FileResult:
    """Ingest one file, check the invariant and the log row."""
    result = ingest_file(con, path, ingest_date=ingest_date, **kwargs)
    check_invariant(result)
    if result.status == "ingested":
        logged = con.execute("""
            SELECT rows_read, rows_accepted, rows_quarantined, duplicates_collapsed,
                   values_nulled, rows_replaced
            FROM ingest_log WHERE status = 'ingested' ORDER BY ingest_id DESC LIMIT 1
        """).fetchone()
        assert logged == (result.rows_read, result.rows_accepted, result.rows_quarantined,
                          result.duplicates_collapsed, result.values_nulled,
                          result.rows_replaced)
        # The tables agree with the counts.
        ingest_id = con.execute("SELECT max(ingest_id) FROM ingest_log").fetchone()[0]
        table = "visits" if result.export_kind == "sessions" else "medications"
        assert scalar(con, f"SELECT count(*) FROM {table} WHERE ingest_id = ?",
                      [ingest_id]) == result.rows_accepted
        assert scalar(con, "SELECT count(*) FROM quarantine WHERE ingest_id = ?",
                      [ingest_id]) == result.rows_quarantined
        assert scalar(con, "SELECT count(*) FROM value_issues WHERE ingest_id = ?",
                      [ingest_id]) == result.values_nulled
    else:
        assert result.rows_read == 0
    return result


def scalar(con, sql, params=None):
    return con.execute(sql, params or []).fetchone()[0]


def rows(con, sql, params=None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def dump(con) -> dict[str, list[tuple]]:
    return {t: sorted(rows(con, f"SELECT * FROM {t}"), key=repr) for t in TABLES}


def visit(con, natural_key: str) -> dict:
    cursor = con.execute("SELECT * FROM visits WHERE natural_key = ?", [natural_key])
    names = [d[0] for d in cursor.description]
    found = cursor.fetchall()
    assert len(found) == 1, (natural_key, found)
    return dict(zip(names, found[0]))


def quarantine(con) -> list[tuple]:
    """(line, reason, raw_row as dict or None) in line order."""
    return [(line, reason, None if raw is None else json.loads(raw))
            for line, reason, raw in rows(con, "SELECT line, reason, raw_row FROM quarantine "
                                               "ORDER BY ingest_id, line")]


def issues(con) -> list[tuple]:
    return rows(con, "SELECT file_name, line, column_name, raw_value, reason FROM value_issues "
                     "ORDER BY ingest_id, line, column_name")


# --------------------------------------------------------------------------
# column names: folding, aliases, unknown columns


def test_fold_rules():
    assert fold("Pain Score (0-10)") == "pain_score"
    assert fold("PHQ-9") == "phq_9"
    assert fold("  Visit -- Type  ") == "visit_type"
    assert fold("Follow-up") == "follow_up"
    assert fold("__SpO2 (min) %__") == "spo2"
    assert fold("Check In") == "check_in"
    assert fold(None) == ""
    assert reference.canonical_column(fold("PHQ-9")) == "phq9"
    assert reference.canonical_column(fold("Session Type")) == "visit_type"


def test_ehr_aliases_with_us_dates(tmp_path, con):
    path = write(tmp_path, "ehr.csv", csv_lines(
        "Patient,DOS,Session Type,Encounter ID,Dx,Clinic,Attending Provider,"
        "Route of Administration,"
        "Ketamine Dose (mg),Weight,Pain Score (0-10),Pain After,Daily MME,Benzo,PHQ-9,PCL-5,"
        "PGI-C,AE,Max SBP,Min SpO2,Notes",
        "A-1,01/15/2024,Consult,E1,Fibromyalgia,Denver, C-7 ,,,81.5,7,,30,no,14,40,,,,,first visit",
        "A-1,1/22/2024,Induction,E2,,Denver,C-7,IV,40.5,81.5,6.5,3,30,no,,,,Nausea,142,94,",
        "A-1,03/01/2024,Check-in,E3,,Boulder,,,,,4,,15,yes,9,22,6,none,,,",
    ))
    result = run(con, path)
    assert (result.status, result.export_kind, result.date_format) == (
        "ingested", "sessions", "MM/DD/YYYY")
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined,
            result.duplicates_collapsed, result.values_nulled) == (3, 3, 0, 0, 0)
    assert result.unknown_columns == ["Notes"]
    assert result.dropped_identifying_columns == []
    columns = [c for c in reference.CANONICAL_COLUMNS]
    got = rows(con, f"SELECT {', '.join(columns)}, source_line FROM visits ORDER BY visit_date")
    assert got == [
        ("A-1", dt.date(2024, 1, 15), "intake", "E1", "Fibromyalgia", "Denver", "C-7", None,
         None, 81.5, 7.0, None, 30.0, False, 14, 40, None, None, None, None, 2),
        ("A-1", dt.date(2024, 1, 22), "infusion", "E2", None, "Denver", "C-7", "IV", 40.5,
         81.5, 6.5, 3.0, 30.0, False, None, None, None, "nausea", 142.0, 94.0, 3),
        ("A-1", dt.date(2024, 3, 1), "follow_up", "E3", None, "Boulder", None, None, None,
         None, 4.0, None, 15.0, True, 9, 22, 6, None, None, None, 4),
    ]
    assert scalar(con, "SELECT natural_key FROM visits WHERE visit_id = 'E2'") == "id:E2"
    # "Notes" is reported, never stored.
    assert scalar(con, "SELECT count(*) FROM visits WHERE site = 'first visit'") == 0
    assert rows(con, "SELECT unknown_columns FROM ingest_log") == [(["Notes"],)]


def test_iso_dates_and_natural_key_without_visit_id(tmp_path, con):
    path = write(tmp_path, "iso.csv", csv_lines(
        "patient_id,visit_date,visit_type,pain_score",
        "P1,2024-01-05,infusion,5",
        "P1,2024-1-6,infusion,4",
    ))
    result = run(con, path)
    assert result.date_format == "YYYY-MM-DD"
    assert (result.rows_read, result.rows_accepted) == (2, 2)
    assert rows(con, "SELECT natural_key, visit_date, pain_score FROM visits ORDER BY 1") == [
        ("pt:P1|2024-01-05|infusion", dt.date(2024, 1, 5), 5.0),
        ("pt:P1|2024-01-06|infusion", dt.date(2024, 1, 6), 4.0),
    ]


def test_visit_type_aliases(tmp_path, con):
    raw_types = ["Consult", "consultation", "Induction", "Maintenance", "Check-in", "CHECK IN",
                 "Follow-up", "follow up", "followup", "Intake", "INFUSION", "Booster",
                 "follow_up"]
    lines = [SESSION_HEADER] + [f"P{i},2024-02-01,{t}" for i, t in enumerate(raw_types)]
    result = run(con, write(tmp_path, "types.csv", csv_lines(*lines)))
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (13, 13, 0)
    got = dict(rows(con, "SELECT patient_id, visit_type FROM visits"))
    assert [got[f"P{i}"] for i in range(len(raw_types))] == [
        "intake", "intake", "infusion", "booster", "follow_up", "follow_up",
        "follow_up", "follow_up", "follow_up", "intake", "infusion", "booster", "follow_up"]


def test_boolean_folding(tmp_path, con):
    values = ["yes", "no", "true", "false", "1", "0", "y", "n", "Yes", "TRUE", " N ", "", "maybe"]
    lines = ["patient_id,visit_date,visit_type,benzodiazepine"] + [
        f"P{i},2024-02-01,infusion,{v}" for i, v in enumerate(values)]
    result = run(con, write(tmp_path, "benzo.csv", csv_lines(*lines)))
    assert (result.rows_read, result.rows_accepted, result.values_nulled) == (13, 13, 1)
    got = dict(rows(con, "SELECT patient_id, benzodiazepine FROM visits"))
    assert [got[f"P{i}"] for i in range(len(values))] == [
        True, False, True, False, True, False, True, False, True, True, False, None, None]
    assert issues(con) == [("benzo.csv", 14, "benzodiazepine", "maybe", "not yes/no")]


def test_route_folding(tmp_path, con):
    values = ["IV", "Intravenous", "im", "Intramuscular", "Intranasal", "nasal", "IN", "PO",
              "Oral", "SL", "sublingual", "rectal"]
    lines = ["patient_id,visit_date,visit_type,route"] + [
        f"P{i},2024-02-01,infusion,{v}" for i, v in enumerate(values)]
    result = run(con, write(tmp_path, "route.csv", csv_lines(*lines)))
    assert (result.rows_accepted, result.values_nulled) == (12, 1)
    got = dict(rows(con, "SELECT patient_id, route FROM visits"))
    assert [got[f"P{i}"] for i in range(len(values))] == [
        "IV", "IV", "IM", "IM", "intranasal", "intranasal", "intranasal", "oral", "oral",
        "sublingual", "sublingual", None]
    [(file_name, line, column, raw, reason)] = issues(con)
    assert (file_name, line, column, raw) == ("route.csv", 13, "route", "rectal")
    assert reason.startswith("unknown route")


def test_user_alias_file_adds_a_mapping(tmp_path, db_path):
    export = write(tmp_path, "de.csv", csv_lines(
        "Patient,DOS,Session Type,Douleur (NRS),Standort",
        "P1,2024-02-01,infusion,6,Zug",
    ))
    # Without the alias file the two columns are unknown.
    con = db.connect(tmp_path / "plain.duckdb")
    plain = run(con, export)
    assert plain.unknown_columns == ["Douleur (NRS)", "Standort"]
    assert rows(con, "SELECT pain_score, site FROM visits") == [(None, None)]
    con.close()

    aliases = write(tmp_path, "my_aliases.csv", "column,alias\npain_score,Douleur\nsite,STANDORT\n")
    con = db.connect(db_path)
    result = run(con, export, alias_file=str(aliases))
    assert result.unknown_columns == []
    assert rows(con, "SELECT patient_id, pain_score, site FROM visits") == [("P1", 6.0, "Zug")]
    con.close()


def test_user_alias_file_edited_between_ingests(tmp_path, con):
    aliases = write(tmp_path, "aliases.csv", "column,alias\nsite,Standort\n")
    first = write(tmp_path, "a.csv", "Patient,DOS,Type,Standort,Douleur\nP1,2024-02-01,intake,Zug,5\n")
    assert run(con, first, alias_file=str(aliases)).unknown_columns == ["Douleur"]
    aliases.write_text("column,alias\nsite,Standort\npain_score,Douleur\n")
    second = write(tmp_path, "b.csv", "Patient,DOS,Type,Standort,Douleur\nP2,2024-02-01,intake,Zug,6\n")
    assert run(con, second, alias_file=str(aliases)).unknown_columns == []
    assert rows(con, "SELECT patient_id, site, pain_score FROM visits ORDER BY 1") == [
        ("P1", "Zug", None), ("P2", "Zug", 6.0)]


def test_user_column_map_from_the_mapping_form(tmp_path, con):
    export = write(tmp_path, "odd.csv", csv_lines(
        "Who,When,What,Hurt",
        "P1,2024-02-01,infusion,6",
    ))
    refused = run(con, export)
    assert refused.status == "refused"
    result = run(con, export, column_map={"Who": "patient_id", "When": "visit_date",
                                          "What": "visit_type", "Hurt": "pain_score"})
    assert result.status == "ingested"
    assert rows(con, "SELECT patient_id, visit_date, pain_score FROM visits") == [
        ("P1", dt.date(2024, 2, 1), 6.0)]


# --------------------------------------------------------------------------
# file formats


def test_semicolon_utf8_bom_crlf(tmp_path, con):
    content = "\ufeff" + csv_lines(
        "Patient;Visit Date;Visit Type;Site;Pain",
        "P1;2024-03-01;infusion;Zürich;4",
        "P2;2024-03-02;Follow-up;Genève;2.5",
        newline="\r\n")
    path = write(tmp_path, "semi.csv", content)
    result = run(con, path)
    assert (result.status, result.rows_read, result.rows_accepted, result.unknown_columns) == (
        "ingested", 2, 2, [])
    assert rows(con, "SELECT patient_id, visit_type, site, pain_score, source_line "
                     "FROM visits ORDER BY 1") == [
        ("P1", "infusion", "Zürich", 4.0, 2), ("P2", "follow_up", "Genève", 2.5, 3)]


def test_tab_delimited(tmp_path, con):
    path = write(tmp_path, "tab.tsv", csv_lines(
        "patient_id\tvisit_date\tvisit_type\tsite\tpain_score",
        "P1\t2024-03-01\tinfusion\tSanta Fe, NM\t4",
        "P2\t2024-03-02\tintake\tTaos\t11",
    ))
    result = run(con, path)
    assert (result.rows_read, result.rows_accepted, result.values_nulled) == (2, 2, 1)
    assert rows(con, "SELECT patient_id, site, pain_score FROM visits ORDER BY 1") == [
        ("P1", "Santa Fe, NM", 4.0), ("P2", "Taos", None)]
    assert issues(con) == [("tab.tsv", 3, "pain_score", "11",
                            "out of range (must be between 0 and 10)")]


def test_latin1_export(tmp_path, con):
    path = write(tmp_path, "latin1.csv", csv_lines(
        "patient_id,visit_date,visit_type,site,adverse_event",
        "P1,2024-03-01,infusion,Zürich,Übelkeit",
        "P2,2024-03-02,intake,Genève,",
    ), encoding="latin-1")
    assert "Zürich".encode("latin-1") in path.read_bytes()
    result = run(con, path)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (2, 2, 0)
    assert rows(con, "SELECT patient_id, site, adverse_event FROM visits ORDER BY 1") == [
        ("P1", "Zürich", "übelkeit"), ("P2", "Genève", None)]


def test_latin1_character_only_far_into_the_file(tmp_path, con):
    # The only non-ASCII byte comes after DuckDB's sniffing sample.
    lines = ["patient_id,visit_date,visit_type,site"]
    lines += [f"P{i},2024-03-01,infusion,Bern" for i in range(25_000)]
    lines += ["PZ,2024-03-01,infusion,Zürich"]
    result = run(con, write(tmp_path, "late.csv", csv_lines(*lines), encoding="latin-1"))
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (
        25_001, 25_001, 0)
    assert rows(con, "SELECT site, source_line FROM visits WHERE patient_id = 'PZ'") == [
        ("Zürich", 25_002)]


def test_xlsx_export(tmp_path, con):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Patient", "Date of Service", "Visit Type", "Pain Score (0-10)", "PHQ-9",
                  "Ketamine (mg)", "Daily MME", "Benzo", "Name"])
    sheet.append(["P1", dt.datetime(2024, 3, 1), "Infusion", 6.5, 12, 35, 0, "no",
                  "Zebediah Quux"])
    sheet.append(["P1", dt.date(2024, 3, 8), "Booster", 4, 11.0, 35.5, None, True, None])
    sheet.append(["P2", "03/09/2024", "Intake", 11, "abc", None, 20, "yes", None])
    path = tmp_path / "sessions.xlsx"
    book.save(path)
    result = run(con, path)
    assert (result.status, result.rows_read, result.rows_accepted, result.rows_quarantined) == (
        "ingested", 3, 2, 1)
    assert result.dropped_identifying_columns == ["Name"]
    assert result.unknown_columns == ["Ketamine (mg)"]  # "ketamine" is no alias
    assert rows(con, "SELECT patient_id, visit_date, visit_type, pain_score, phq9, "
                     "opioid_mme_per_day, benzodiazepine, source_line FROM visits "
                     "ORDER BY visit_date") == [
        ("P1", dt.date(2024, 3, 1), "infusion", 6.5, 12, 0.0, False, 2),
        ("P1", dt.date(2024, 3, 8), "booster", 4.0, 11, None, True, 3),
    ]
    # One file, one date format: the text date in an ISO sheet is quarantined.
    [(line, reason, raw)] = quarantine(con)
    assert line == 4 and "is not a date" in reason
    assert raw["Date of Service"] == "03/09/2024"


def test_parquet_export_with_date_and_numeric_columns(tmp_path, con):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    table = pa.table({
        "Patient": pa.array(["P1", "P1", "P2"]),
        "Visit Date": pa.array([dt.date(2024, 3, 1), dt.date(2024, 3, 8), dt.date(2024, 3, 9)],
                               pa.date32()),
        "Visit Type": pa.array(["infusion", "Maintenance", "consult"]),
        "Pain": pa.array([6.5, None, 11.0], pa.float64()),
        "PHQ9": pa.array([12, 27, 28], pa.int64()),
        "Benzo": pa.array([True, False, None]),
        "Email": pa.array(["zq@example.org", None, None]),
    })
    path = tmp_path / "sessions.parquet"
    pq.write_table(table, path)
    result = run(con, path)
    assert (result.status, result.rows_read, result.rows_accepted, result.values_nulled) == (
        "ingested", 3, 3, 2)
    assert result.dropped_identifying_columns == ["Email"]
    assert rows(con, "SELECT patient_id, visit_date, visit_type, pain_score, phq9, "
                     "benzodiazepine FROM visits ORDER BY visit_date") == [
        ("P1", dt.date(2024, 3, 1), "infusion", 6.5, 12, True),
        ("P1", dt.date(2024, 3, 8), "booster", None, 27, False),
        ("P2", dt.date(2024, 3, 9), "intake", None, None, None),
    ]
    assert [i[1:4] for i in issues(con)] == [(4, "pain_score", "11.0"), (4, "phq9", "28")]


def test_parquet_timestamp_dates(tmp_path, con):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    table = pa.table({
        "patient_id": ["P1", "P2"],
        "visit_date": pa.array([dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 2, 14, 30)],
                               pa.timestamp("us")),
        "visit_type": ["infusion", "intake"],
    })
    path = tmp_path / "ts.parquet"
    pq.write_table(table, path)
    result = run(con, path)
    assert (result.rows_accepted, result.rows_quarantined) == (2, 0)
    assert rows(con, "SELECT visit_date FROM visits ORDER BY 1") == [
        (dt.date(2024, 3, 1),), (dt.date(2024, 3, 2),)]


# --------------------------------------------------------------------------
# conditions


@pytest.mark.parametrize("raw, expected", [
    ("Migraine", "Migraine"),
    ("chronic migraine", "Migraine"),
    ("FIBRO", "Fibromyalgia"),
    ("CRPS type 1", "Other"),
    ("G43.A0", "Cyclic vomiting"),
    ("g43a0", "Cyclic vomiting"),
    ("G43.909", "Migraine"),
    ("G43909", "Migraine"),
    ("m797", "Fibromyalgia"),
    ("M79.7", "Fibromyalgia"),
    ("M79.2", "Neuropathy"),
    ("E11.42", "Neuropathy"),
    ("R11.15", "Cyclic vomiting"),
    ("K86.1", "Chronic pancreatitis"),
    ("Z99.9", "Other"),
    ("", None),
])
def test_map_condition(raw, expected):
    assert reference.map_condition(raw) == expected


def test_condition_mapping_stored_with_raw_label(tmp_path, con):
    labels = ["Fibromyalgia", "fibro", "Chronic Migraine", "G43.A0", "G43.909", "m797",
              "CRPS type 1", "  lupus  ", "SLE", "k31.84", ""]
    lines = ["patient_id,visit_date,visit_type,diagnosis"] + [
        f"P{i},2024-02-01,intake,{label}" for i, label in enumerate(labels)]
    result = run(con, write(tmp_path, "dx.csv", csv_lines(*lines)))
    assert (result.rows_accepted, result.values_nulled) == (11, 0)
    got = {p: (c, r) for p, c, r in rows(con, "SELECT patient_id, condition, condition_raw "
                                              "FROM visits")}
    assert [got[f"P{i}"] for i in range(len(labels))] == [
        ("Fibromyalgia", "Fibromyalgia"), ("Fibromyalgia", "fibro"),
        ("Migraine", "Chronic Migraine"), ("Cyclic vomiting", "G43.A0"),
        ("Migraine", "G43.909"), ("Fibromyalgia", "m797"), ("Other", "CRPS type 1"),
        ("Lupus", "lupus"), ("Lupus", "SLE"), ("Gastroparesis", "k31.84"), (None, None)]


# --------------------------------------------------------------------------
# identifying columns

IDENTIFYING_HEADERS = ["Name", "First Name", "DOB", "SSN", "Address", "Phone", "Email", "Zip"]
IDENTIFYING_VALUES = ["Zebediah Quux", "Zebediah", "1931-02-29", "123-45-6789",
                      "77 Quuxberry Lane", "555-867-5309", "zq@example.org", "87501"]


def _database_bytes(db_path: Path) -> bytes:
    data = db_path.read_bytes()
    wal = Path(str(db_path) + ".wal")
    if wal.exists():
        data += wal.read_bytes()
    return data


def test_identifying_columns_dropped_reported_and_never_stored(tmp_path, db_path):
    header = "patient_id,visit_date,visit_type,site,pain_score," + ",".join(IDENTIFYING_HEADERS)
    pii = ",".join(IDENTIFYING_VALUES)
    path = write(tmp_path, "pii.csv", csv_lines(
        header,
        f"P1,2024-02-01,infusion,Quuxville Clinic,5,{pii}",            # accepted
        f"P1,2024-02-02,infusion,Quuxville Clinic,12,{pii}",           # value issue
        f",2024-02-03,infusion,Quuxville Clinic,5,{pii}",              # quarantined
        f"P2,2024-02-04,phone call,Quuxville Clinic,5,{pii}",          # quarantined
        f"P3,2024-02-04,infusion,Quuxville Clinic,5,{pii},extra",      # malformed
    ))
    con = db.connect(db_path)
    result = run(con, path)
    assert result.dropped_identifying_columns == IDENTIFYING_HEADERS
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined,
            result.values_nulled) == (5, 2, 3, 1)
    assert rows(con, "SELECT dropped_identifying_columns FROM ingest_log") == [
        (IDENTIFYING_HEADERS,)]
    for _, _, raw in quarantine(con):
        assert raw is None or set(raw) == {"patient_id", "visit_date", "visit_type", "site",
                                           "pain_score"}
    stored = con.execute("SELECT * FROM visits").fetchall()
    stored += con.execute("SELECT * FROM quarantine").fetchall()
    stored += con.execute("SELECT * FROM value_issues").fetchall()
    stored += con.execute("SELECT * FROM ingest_log").fetchall()
    text = repr(stored)
    assert "Quuxville Clinic" in text
    for value in IDENTIFYING_VALUES:
        assert value not in text

    # Bytes on disk: the WAL before a checkpoint, the file after one.
    data = _database_bytes(db_path)
    assert b"Quuxville Clinic" in data       # the check can see stored text
    for value in IDENTIFYING_VALUES:
        assert value.encode() not in data, value
    con.execute("CHECKPOINT")
    con.close()
    data = _database_bytes(db_path)
    assert b"Quuxville Clinic" in data
    for value in IDENTIFYING_VALUES:
        assert value.encode() not in data, value


def test_identifying_column_names_matched_after_folding(tmp_path, con):
    path = write(tmp_path, "pii2.csv", csv_lines(
        "Patient,Date,Type,Patient Name,Date of Birth,E-Mail,Mobile,Home Address,Zip Code,"
        "Emergency Contact Phone",
        "P1,2024-02-01,infusion,Zebediah Quux,02/29/1931,zq@example.org,555,x,87501,555",
    ))
    result = run(con, path)
    assert result.rows_accepted == 1
    assert result.dropped_identifying_columns == [
        "Patient Name", "Date of Birth", "E-Mail", "Mobile", "Home Address", "Zip Code",
        "Emergency Contact Phone"]
    assert result.unknown_columns == []


# --------------------------------------------------------------------------
# row-level problems: quarantine


def test_row_level_problems_are_quarantined_with_reason_and_raw_row(tmp_path, con):
    path = write(tmp_path, "rows.csv", csv_lines(
        "Patient,DOS,Session Type,Pain",
        "P1,01/15/2024,infusion,5",
        ",01/16/2024,infusion,5",
        "P2,02/30/2024,infusion,4",
        "P3,06/02/2024,infusion,3",
        "P4,01/17/2024,phone call,2",
        "P5,,infusion,2",
        "P6,01/18/2024,,2",
        "P7,06/01/2024,booster,1",
    ))
    result = run(con, path)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined,
            result.duplicates_collapsed) == (8, 2, 6, 0)
    assert rows(con, "SELECT patient_id, visit_date FROM visits ORDER BY 1") == [
        ("P1", dt.date(2024, 1, 15)), ("P7", dt.date(2024, 6, 1))]
    raw = lambda p, d, t, s: {"Patient": p, "DOS": d, "Session Type": t, "Pain": s}
    assert quarantine(con) == [
        (3, "missing patient_id", raw(None, "01/16/2024", "infusion", "5")),
        (4, "visit_date is not a date in this file's format (MM/DD/YYYY)",
         raw("P2", "02/30/2024", "infusion", "4")),
        (5, "visit_date is after the ingest date", raw("P3", "06/02/2024", "infusion", "3")),
        (6, "unknown visit_type (expected one of intake, infusion, booster, follow_up)", raw("P4", "01/17/2024", "phone call", "2")),
        (7, "missing visit_date", raw("P5", None, "infusion", "2")),
        (8, "missing visit_type", raw("P6", "01/18/2024", None, "2")),
    ]
    assert rows(con, "SELECT DISTINCT file_name FROM quarantine") == [("rows.csv",)]


def test_several_row_problems_give_one_quarantine_row(tmp_path, con):
    path = write(tmp_path, "multi.csv", csv_lines(SESSION_HEADER, ",2024-13-01,teleport"))
    result = run(con, path)
    assert (result.rows_read, result.rows_quarantined) == (1, 1)
    [(line, reason, _)] = quarantine(con)
    assert line == 2
    assert reason.split("; ") == [
        "missing patient_id",
        "visit_date is not a date in this file's format (YYYY-MM-DD)",
        "unknown visit_type (expected one of intake, infusion, booster, follow_up)"]


# --------------------------------------------------------------------------
# value-level problems: null the value, keep the row, log it


def test_value_problems_null_the_value_and_are_logged(tmp_path, con):
    path = write(tmp_path, "values.csv", csv_lines(
        "patient_id,visit_date,visit_type,pain_score,phq9,weight_kg,spo2_min,"
        "opioid_mme_per_day,pcl5,pgic,ketamine_mg,sbp_max,pain_post",
        "P1,2024-02-01,infusion,11,abc,10,101,-5,81,0,-1,300,-0.5",
        "P2,2024-02-01,infusion,n/a,12.5,80,98,30,40,4,35,140,2",
        "P3,2024-02-01,infusion,nan,inf,-inf,NaN,Infinity,,,,,",
        "P4,2024-02-01,infusion,10,27,400,50,0,80,7,0,260,0",
        "P5,2024-02-01,infusion,0,0,20,100,1e3,0,1,1.5e2,60,10",
    ))
    result = run(con, path)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined,
            result.values_nulled) == (5, 5, 0, 17)
    cols = "pain_score, phq9, weight_kg, spo2_min, opioid_mme_per_day, pcl5, pgic, " \
           "ketamine_mg, sbp_max, pain_post"
    assert rows(con, f"SELECT patient_id, {cols} FROM visits ORDER BY 1") == [
        ("P1", None, None, None, None, None, None, None, None, None, None),
        ("P2", None, None, 80.0, 98.0, 30.0, 40, 4, 35.0, 140.0, 2.0),
        ("P3", None, None, None, None, None, None, None, None, None, None),
        ("P4", 10.0, 27, 400.0, 50.0, 0.0, 80, 7, 0.0, 260.0, 0.0),
        ("P5", 0.0, 0, 20.0, 100.0, 1000.0, 0, 1, 150.0, 60.0, 10.0),
    ]
    nan = "not a number"
    assert issues(con) == [
        ("values.csv", 2, "ketamine_mg", "-1", "out of range (must be at least 0)"),
        ("values.csv", 2, "opioid_mme_per_day", "-5", "out of range (must be at least 0)"),
        ("values.csv", 2, "pain_post", "-0.5", "out of range (must be between 0 and 10)"),
        ("values.csv", 2, "pain_score", "11", "out of range (must be between 0 and 10)"),
        ("values.csv", 2, "pcl5", "81", "out of range (must be between 0 and 80)"),
        ("values.csv", 2, "pgic", "0", "out of range (must be between 1 and 7)"),
        ("values.csv", 2, "phq9", "abc", nan),
        ("values.csv", 2, "sbp_max", "300", "out of range (must be between 60 and 260)"),
        ("values.csv", 2, "spo2_min", "101", "out of range (must be between 50 and 100)"),
        ("values.csv", 2, "weight_kg", "10", "out of range (must be between 20 and 400)"),
        ("values.csv", 3, "pain_score", "n/a", nan),
        ("values.csv", 3, "phq9", "12.5", "not a whole number"),
        ("values.csv", 4, "opioid_mme_per_day", "Infinity", nan),
        ("values.csv", 4, "pain_score", "nan", nan),
        ("values.csv", 4, "phq9", "inf", nan),
        ("values.csv", 4, "spo2_min", "NaN", nan),
        ("values.csv", 4, "weight_kg", "-inf", nan),
    ]


# --------------------------------------------------------------------------
# duplicates


def test_exact_duplicates_collapsed_and_counted(tmp_path, con):
    path = write(tmp_path, "dups.csv", csv_lines(
        "patient_id,visit_date,visit_type,pain_score",
        "P1,2024-02-01,infusion,5",
        "P1,2024-02-01,infusion,5",
        "P2,2024-02-01,infusion,4",
        "P1,2024-02-01,infusion,5",
        ",2024-02-01,infusion,4",
        ",2024-02-01,infusion,4",
    ))
    result = run(con, path)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined,
            result.duplicates_collapsed) == (6, 2, 1, 3)
    assert rows(con, "SELECT patient_id, pain_score, source_line FROM visits ORDER BY 1") == [
        ("P1", 5.0, 2), ("P2", 4.0, 4)]
    assert [(line, reason) for line, reason, _ in quarantine(con)] == [
        (6, "missing patient_id")]


def test_rows_with_the_same_stored_values_are_duplicates_not_conflicts(tmp_path, con):
    """Two rows are the same visit when the values stored from them are the
    same: "5" and "5.0" are one pain score, "Follow-up" and "follow_up" one
    visit type, and a column that is never read (unknown, or identifying)
    cannot make them differ.  A value that fails its check still counts by
    its raw text, so "abc" and "xyz" conflict."""
    path = write(tmp_path, "same.csv", csv_lines(
        "visit_id,patient_id,visit_date,visit_type,pain_score,notes,phone",
        "V1,P1,2024-02-01,follow_up,5,first call,555-0100",
        "V1,P1,2024-02-01,Follow-up,5.0,second call,555-0199",
        "V2,P2,2024-02-01,infusion,abc,,",
        "V2,P2,2024-02-01,infusion,xyz,,",
        "V3,P3,2024-02-01,infusion,abc,,",
        "V3,P3,2024-02-01,infusion,abc,,",
    ))
    result = run(con, path)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined,
            result.duplicates_collapsed) == (6, 2, 2, 2)
    assert rows(con, "SELECT visit_id, visit_type, pain_score, source_line FROM visits "
                     "ORDER BY 1") == [("V1", "follow_up", 5.0, 2), ("V3", "infusion", None, 6)]
    assert [(line, reason) for line, reason, _ in quarantine(con)] == [
        (4, "conflicting rows share the natural key visit_id"),
        (5, "conflicting rows share the natural key visit_id")]


def test_conflicting_rows_with_the_same_visit_id_all_quarantined(tmp_path, con):
    path = write(tmp_path, "conflict_id.csv", csv_lines(
        "visit_id,patient_id,visit_date,visit_type,pain_score",
        "V1,P1,2024-02-01,infusion,5",
        "V2,P1,2024-02-02,infusion,4",
        "V1,P1,2024-02-01,infusion,6",
        "V1,P1,2024-02-01,infusion,5",
        "V1,P1,2024-02-03,booster,5",
    ))
    result = run(con, path)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined,
            result.duplicates_collapsed) == (5, 1, 3, 1)
    assert rows(con, "SELECT visit_id, pain_score FROM visits") == [("V2", 4.0)]
    raw = lambda d, t, p: {"visit_id": "V1", "patient_id": "P1", "visit_date": d,
                           "visit_type": t, "pain_score": p}
    assert quarantine(con) == [
        (2, "conflicting rows share the natural key visit_id", raw("2024-02-01", "infusion", "5")),
        (4, "conflicting rows share the natural key visit_id", raw("2024-02-01", "infusion", "6")),
        (6, "conflicting rows share the natural key visit_id", raw("2024-02-03", "booster", "5")),
    ]


def test_conflicting_rows_with_the_same_patient_date_type_all_quarantined(tmp_path, con):
    path = write(tmp_path, "conflict_pt.csv", csv_lines(
        "patient_id,visit_date,visit_type,pain_score",
        "P1,2024-02-01,infusion,5",
        "P1,2024-02-01,Induction,6",
        "P1,2024-02-01,booster,6",
        "P2,2024-02-01,infusion,6",
    ))
    result = run(con, path)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined,
            result.duplicates_collapsed) == (4, 2, 2, 0)
    assert rows(con, "SELECT patient_id, visit_type FROM visits ORDER BY 1") == [
        ("P1", "booster"), ("P2", "infusion")]
    assert [(line, reason) for line, reason, _ in quarantine(con)] == [
        (2, "conflicting rows share the natural key patient_id, visit_date, visit_type"),
        (3, "conflicting rows share the natural key patient_id, visit_date, visit_type"),
    ]


# --------------------------------------------------------------------------
# refused files


def _refusal_logged(con, name: str) -> str:
    [(status, message, read)] = rows(
        con, "SELECT status, message, rows_read FROM ingest_log WHERE file_name = ?", [name])
    assert status == "refused" and read == 0
    return message


def test_empty_file_refused(tmp_path, con):
    result = run(con, write(tmp_path, "empty.csv", b""))
    assert result.status == "refused"
    assert result.error == "empty.csv: the file is empty (no header row, no data)"
    assert _refusal_logged(con, "empty.csv") == result.error
    assert scalar(con, "SELECT count(*) FROM visits") == 0


@pytest.mark.parametrize("newline", ["\n", "\r\n", ""])
def test_header_only_file_ingested_with_no_rows(tmp_path, con, newline):
    path = write(tmp_path, "header.csv", "patient_id,visit_date,visit_type,pain_score" + newline)
    result = run(con, path)
    assert (result.status, result.export_kind, result.rows_read, result.rows_accepted) == (
        "ingested", "sessions", 0, 0)
    assert scalar(con, "SELECT count(*) FROM visits") == 0


def test_binary_file_refused_naming_the_file(tmp_path, con):
    noise = bytes((i * 7919 + 13) % 256 for i in range(4096))
    for name in ("noise.csv", "noise.bin"):
        result = run(con, write(tmp_path, name, noise))
        assert result.status == "refused"
        assert result.error == f"{name}: not a CSV, XLSX or Parquet export (binary content)"
    # A broken workbook or Parquet file is refused too, naming the file.
    for name in ("broken.xlsx", "broken.parquet"):
        result = run(con, write(tmp_path, name, noise))
        assert result.status == "refused"
        assert result.error.startswith(f"{name}: could not be read")
    assert scalar(con, "SELECT count(*) FROM ingest_log WHERE status = 'refused'") == 4


def test_missing_required_column_refused_listing_columns(tmp_path, con):
    path = write(tmp_path, "nodate.csv", csv_lines(
        "Patient,Session Type,Pain,SSN", "P1,infusion,5,123-45-6789"))
    result = run(con, path)
    assert result.status == "refused"
    assert result.error == (
        "nodate.csv: missing required column(s) visit_date. "
        "The file has: Patient, Session Type, Pain, SSN; "
        "recognised: Patient -> patient_id, Session Type -> visit_type, Pain -> pain_score; "
        "dropped as identifying: SSN")
    assert _refusal_logged(con, "nodate.csv") == result.error
    assert scalar(con, "SELECT count(*) FROM visits") == 0


def test_no_such_file_refused(tmp_path, con):
    result = run(con, tmp_path / "nowhere.csv")
    assert (result.status, result.error) == ("refused", "nowhere.csv: no such file")


# --------------------------------------------------------------------------
# ingesting again


def test_same_file_twice_is_unchanged(tmp_path, con):
    path = write(tmp_path, "s.csv", csv_lines(
        "patient_id,visit_date,visit_type,pain_score",
        "P1,2024-02-01,infusion,5", "P1,2024-02-01,infusion,5", ",2024-02-01,infusion,5",
        "P2,2024-02-01,infusion,50"))
    first = run(con, path)
    assert (first.status, first.rows_accepted, first.rows_quarantined,
            first.duplicates_collapsed, first.values_nulled) == ("ingested", 2, 1, 1, 1)
    before = dump(con)
    second = run(con, path)
    assert (second.status, second.rows_read, second.rows_accepted) == ("unchanged", 0, 0)
    assert dump(con) == before
    # A copy under another name is the same export.
    copy = write(tmp_path, "copy.csv", path.read_bytes())
    assert run(con, copy).status == "unchanged"
    assert dump(con) == before


def test_cumulative_export_replaces_earlier_rows(tmp_path, con):
    partial = write(tmp_path, "jan.csv", csv_lines(
        "visit_id,patient_id,visit_date,visit_type,pain_score",
        "V1,P1,2024-01-05,intake,8",
        "V2,P1,2024-01-12,infusion,7",
    ))
    cumulative = write(tmp_path, "feb.csv", csv_lines(
        "visit_id,patient_id,visit_date,visit_type,pain_score",
        "V1,P1,2024-01-05,intake,8",
        "V2,P1,2024-01-12,infusion,6",
        "V3,P1,2024-02-02,booster,4",
    ))
    assert run(con, partial).rows_accepted == 2
    result = run(con, cumulative)
    assert (result.rows_read, result.rows_accepted, result.rows_replaced) == (3, 3, 2)
    assert rows(con, "SELECT visit_id, pain_score, ingest_id FROM visits ORDER BY 1") == [
        ("V1", 8.0, 2), ("V2", 6.0, 2), ("V3", 4.0, 2)]
    # The same again without visit ids: keyed by patient, date and type.
    no_ids = write(tmp_path, "noid.csv", csv_lines(
        SESSION_HEADER + ",pain_score", "Q1,2024-01-05,intake,8", "Q1,2024-01-12,infusion,7"))
    no_ids_later = write(tmp_path, "noid2.csv", csv_lines(
        SESSION_HEADER + ",pain_score", "Q1,2024-01-05,Consult,3", "Q1,2024-01-12,infusion,7",
        "Q1,2024-01-19,infusion,2"))
    run(con, no_ids)
    result = run(con, no_ids_later)
    assert (result.rows_accepted, result.rows_replaced) == (3, 2)
    assert rows(con, "SELECT visit_date, pain_score FROM visits WHERE patient_id = 'Q1' "
                     "ORDER BY 1") == [(dt.date(2024, 1, 5), 3.0), (dt.date(2024, 1, 12), 7.0),
                                       (dt.date(2024, 1, 19), 2.0)]
    assert scalar(con, "SELECT count(*) FROM visits") == 6


def test_ingest_files_reports_each_file(tmp_path, con):
    good = write(tmp_path, "good.csv", csv_lines(SESSION_HEADER, "P1,2024-02-01,infusion"))
    bad = write(tmp_path, "bad.csv", b"")
    seen = []
    summary = ingest_files(con, [good, bad, good], ingest_date=INGEST_DATE,
                                  progress=lambda i, n, name: seen.append((i, n, name)))
    for f in summary.files:
        check_invariant(f)
    assert [f.status for f in summary.files] == ["ingested", "refused", "unchanged"]
    assert seen == [(1, 3, "good.csv"), (2, 3, "bad.csv"), (3, 3, "good.csv")]
    assert not summary.ok
    totals = summary.to_dict()
    assert (totals["rows_read"], totals["rows_accepted"]) == (1, 1)


# --------------------------------------------------------------------------
# one file, one transaction


@pytest.mark.parametrize("step", ["stage", "checked", "delete"])
def test_failure_mid_ingest_leaves_database_as_before(tmp_path, con, step):
    first = write(tmp_path, "first.csv", csv_lines(
        "visit_id,patient_id,visit_date,visit_type,pain_score",
        "V1,P1,2024-01-05,intake,8", "V2,P1,2024-01-12,infusion,11"))
    run(con, first)
    before = dump(con)
    second = write(tmp_path, "second.csv", csv_lines(
        "visit_id,patient_id,visit_date,visit_type,pain_score",
        "V1,P1,2024-01-05,intake,3", "V2,P1,2024-01-12,infusion,12", ",2024-01-13,infusion,2",
        "V4,P1,2024-01-14,infusion,2", "V4,P1,2024-01-14,infusion,2"))
    with pytest.raises(RuntimeError, match="injected failure"):
        ingest_file(con, second, ingest_date=INGEST_DATE, _fail_after=step)
    assert dump(con) == before
    result = run(con, second)
    assert (result.status, result.rows_accepted, result.rows_quarantined,
            result.duplicates_collapsed, result.rows_replaced) == ("ingested", 3, 1, 1, 2)
    assert rows(con, "SELECT visit_id, pain_score FROM visits ORDER BY 1") == [
        ("V1", 3.0), ("V2", None), ("V4", 2.0)]


@pytest.mark.parametrize("step", ["stage", "checked"])
def test_failure_mid_medication_ingest_leaves_database_as_before(tmp_path, con, step):
    meds = write(tmp_path, "meds.csv", csv_lines(
        "patient_id,date,drug,dose,unit,doses_per_day", "P1,2024-01-05,oxycodone,10,mg,2"))
    before = dump(con)
    with pytest.raises(RuntimeError, match="injected failure"):
        ingest_file(con, meds, ingest_date=INGEST_DATE, _fail_after=step)
    assert dump(con) == before
    assert run(con, meds).rows_accepted == 1


# --------------------------------------------------------------------------
# line numbers


def test_line_numbers_after_a_malformed_line(tmp_path, con):
    path = write(tmp_path, "lines.csv", csv_lines(
        "patient_id,visit_date,visit_type,pain_score,phq9",
        "P1,2024-02-01,infusion,5,10",
        "P2,2024-02-01,infusion,5,10,oops,Zebediah Quux",
        "P3,2024-02-01,infusion,12,10",
        ",2024-02-01,infusion,5,10",
        "P4,2024-02-01,infusion,5,abc",
    ))
    result = run(con, path)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined,
            result.values_nulled, result.unknown_columns) == (5, 3, 2, 2, [])
    [(line, reason, raw), missing] = quarantine(con)
    assert line == 3 and raw is None
    assert reason.startswith("malformed line")
    assert "Zebediah" not in reason
    assert missing[:2] == (5, "missing patient_id")
    assert [i[1:4] for i in issues(con)] == [(4, "pain_score", "12"), (6, "phq9", "abc")]
    assert rows(con, "SELECT patient_id, source_line FROM visits ORDER BY 1") == [
        ("P1", 2), ("P3", 4), ("P4", 6)]


def test_line_numbers_with_too_few_fields_blank_lines_and_quoted_newlines(tmp_path, con):
    path = write(tmp_path, "lines2.csv", csv_lines(
        "patient_id,visit_date,visit_type,adverse_event,pain_score",
        "P1,2024-02-01,infusion,\"nausea,",       # a quoted field spanning two lines
        "then vomiting\",5",
        "",
        "P2,2024-02-01,infusion,,11",             # line 5
        "P3,2024-02-01,infusion",                 # line 6: too few fields
        "P4,2024-02-01,infusion,,abc",            # line 7
        "",
    ))
    result = run(con, path)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (4, 3, 1)
    assert rows(con, "SELECT patient_id, adverse_event, source_line FROM visits ORDER BY 1") == [
        ("P1", "nausea,\nthen vomiting", 2), ("P2", None, 5), ("P4", None, 7)]
    [(line, reason, raw)] = quarantine(con)
    assert (line, raw) == (6, None) and reason.startswith("malformed line")
    assert [i[1:4] for i in issues(con)] == [(5, "pain_score", "11"), (7, "pain_score", "abc")]


def test_raw_rows_and_lines_of_late_quarantines_after_skipped_lines(tmp_path, con):
    """Rows found bad only once the whole file is read (conflicts, a date in
    the file's minority format) still get their raw values and true line,
    after a malformed line, a blank line and a quoted line break."""
    path = write(tmp_path, "late.csv", csv_lines(
        "Patient,DOS,Type,AE,Pain",
        "P1,01/05/2024,infusion,\"dizzy,",           # 2-3: quoted line break
        "very\",5",
        "P9,01/05/2024,infusion,,5,extra",          # 4: malformed
        "",                                         # 5: blank
        "P2,01/06/2024,infusion,,5",                # 6: conflicts with line 7
        "P2,01/06/2024,infusion,,6",                # 7
        "P3,2024-01-07,infusion,,abc",              # 8: ISO date in a US file
        "P4,01/08/2024,infusion,,12",               # 9: value issue
    ))
    result = run(con, path)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined,
            result.values_nulled) == (6, 2, 4, 1)
    assert result.date_format == "MM/DD/YYYY"
    raw = lambda p, d, a, s: {"Patient": p, "DOS": d, "Type": "infusion", "AE": a,
                              "Pain": s}
    conflict = "conflicting rows share the natural key patient_id, visit_date, visit_type"
    got = quarantine(con)
    assert got[0][0] == 4 and got[0][1].startswith("malformed line") and got[0][2] is None
    assert got[1:] == [
        (6, conflict, raw("P2", "01/06/2024", None, "5")),
        (7, conflict, raw("P2", "01/06/2024", None, "6")),
        (8, "visit_date is not a date in this file's format (MM/DD/YYYY)",
         raw("P3", "2024-01-07", None, "abc")),
    ]
    assert rows(con, "SELECT patient_id, adverse_event, source_line FROM visits ORDER BY 1") == [
        ("P1", "dizzy,\nvery", 2), ("P4", None, 9)]
    assert issues(con) == [("late.csv", 9, "pain_score", "12",
                            "out of range (must be between 0 and 10)")]


def test_line_numbers_with_crlf_and_many_rows(tmp_path, con):
    lines = ["patient_id,visit_date,visit_type,pain_score"]
    lines += [f"P{i},2024-02-01,infusion,{i % 12}" for i in range(3000)]
    lines[1500] += ",extra"                      # P1499, physical line 1501
    result = run(con, write(tmp_path, "big.csv", csv_lines(*lines, newline="\r\n")))
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (3000, 2999, 1)
    assert quarantine(con)[0][:2] == (
        1501, "malformed line: too many columns (Expected Number of Columns: 4 Found: 5)")
    # pain 11 for every i with i % 12 == 11: the line is i + 2
    got = rows(con, "SELECT line, raw_value FROM value_issues ORDER BY line")
    assert got == [(i + 2, "11") for i in range(3000) if i % 12 == 11 and i != 1499]
    assert scalar(con, "SELECT count(*) FROM visits "
                       "WHERE source_line <> CAST(substr(patient_id, 2) AS INT) + 2") == 0


# --------------------------------------------------------------------------
# medication export

MED_HEADER = "patient_id,date,drug,dose,unit,doses_per_day"


def _medication_export(tmp_path) -> Path:
    return write(tmp_path, "meds.csv", csv_lines(
        MED_HEADER,
        "P1,2024-03-01,Percocet 5/325 mg,,mg,4",       # oxycodone 5 mg x4 x1.5 = 30
        "P1,2024-03-01,Dilaudid,2,mg,3",               # hydromorphone 2 x3 x5 = 30
        "P1,2024-03-01,fentanyl patch,25,mcg/hr,1",    # 25 x2.4 = 60, no per-day multiplier
        "P1,2024-03-01,Xanax,0.5,mg,2",                # benzodiazepine
        "P2,2024-03-01,none,,,",                       # neither: MME 0
        "P3,2024-03-01,oxycodone,10,mg,2",             # 30 ...
        "P3,2024-03-01,buprenorphine,8,mg,1",          # ... but no factor: MME unknown
        "P4,2024-03-01,MS Contin,15,mg,2",             # morphine 30, session says 45
        "P4,2024-03-01,clonazepam,1,mg,1",
        "P5,2024-03-01,tramadol,50,mg,4",              # 40, no visit that day
        ",2024-03-01,oxycodone,5,mg,1",                # quarantined
        "P6,2024-03-01,Oxycodone,abc,mg,0",            # dose and per-day problems
    ))


def test_medication_export_mme(tmp_path, con):
    result = run(con, _medication_export(tmp_path))
    assert (result.status, result.export_kind) == ("ingested", "medications")
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined,
            result.duplicates_collapsed, result.values_nulled) == (12, 11, 1, 0, 3)
    got = rows(con, "SELECT patient_id, drug_raw, drug, drug_class, dose, doses_per_day, mme, "
                    "source_line FROM medications ORDER BY source_line")
    assert got == [
        ("P1", "Percocet 5/325 mg", "oxycodone", "opioid", 5.0, 4.0, 30.0, 2),
        ("P1", "Dilaudid", "hydromorphone", "opioid", 2.0, 3.0, 30.0, 3),
        ("P1", "fentanyl patch", "fentanyl transdermal", "opioid", 25.0, 1.0,
         pytest.approx(60.0), 4),
        ("P1", "Xanax", "alprazolam", "benzodiazepine", 0.5, 2.0, None, 5),
        ("P2", "none", None, "none", None, None, None, 6),
        ("P3", "oxycodone", "oxycodone", "opioid", 10.0, 2.0, 30.0, 7),
        ("P3", "buprenorphine", None, "unknown", 8.0, 1.0, None, 8),
        ("P4", "MS Contin", "morphine", "opioid", 15.0, 2.0, 30.0, 9),
        ("P4", "clonazepam", "clonazepam", "benzodiazepine", 1.0, 1.0, None, 10),
        ("P5", "tramadol", "tramadol", "opioid", 50.0, 4.0, 40.0, 11),
        ("P6", "Oxycodone", "oxycodone", "opioid", None, None, None, 13),
    ]
    assert issues(con) == [
        ("meds.csv", 8, "drug", "buprenorphine",
         "not a known opioid or benzodiazepine: no MME factor, MME for this date unknown"),
        ("meds.csv", 13, "dose", "abc", "not a non-negative number"),
        ("meds.csv", 13, "doses_per_day", "0", "not a positive number"),
    ]
    assert quarantine(con) == [(12, "missing patient_id", {
        "patient_id": None, "date": "2024-03-01", "drug": "oxycodone", "dose": "5",
        "unit": "mg", "doses_per_day": "1"})]


def test_dose_units_are_converted_row_by_row_and_never_guessed(tmp_path, con):
    """A dose counts in its drug's reference unit (mg; mcg/hr for the patch):
    mcg and g are converted, a tablet or patch count takes the label's
    strength, and a unit that cannot be converted for the drug leaves that
    date's MME unknown.  Plain "fentanyl" is the patch on the row whose unit
    is mcg/hr only, not on every row of the file that names it."""
    path = write(tmp_path, "units.csv", csv_lines(
        "patient_id,date,drug,dose,unit,doses_per_day",
        "U1,2024-03-01,fentanyl,200,mcg,4",          # 2: buccal/injection: no 2022 factor
        "U2,2024-03-01,fentanyl,25,mcg/hr,",         # 3: the patch
        "U3,2024-03-01,hydromorphone,500,mcg,4",     # 4: 0.5 mg x 4 x 5
        "U4,2024-03-01,morphine,0.03,g,2",           # 5: 30 mg x 2 x 1
        "U5,2024-03-01,Percocet 5/325,1,tablet,4",   # 6: 1 tablet = 5 mg, x 4 x 1.5
        "U6,2024-03-01,Duragesic 25 mcg/hr,1,patch,",  # 7: 25 mcg/hr x 2.4
        "U7,2024-03-01,morphine,10,mcg/hr,2",        # 8: a rate for a tablet: unknown
        "U8,2024-03-01,morphine,5,mL,3",             # 9: no strength per mL: unknown
        "U9,2024-03-01,oxycodone,5000,µg,2",    # 10: micro sign: 5 mg x 2 x 1.5
        "U10,2024-03-01,fentanyl patch,0.025,mg,",   # 11: a patch in mg: unknown
    ))
    result = run(con, path)
    assert result.status == "ingested"
    mme = dict(rows(con, "SELECT patient_id, mme FROM medications"))
    assert mme == {"U1": None, "U2": pytest.approx(60.0), "U3": pytest.approx(10.0),
                   "U4": pytest.approx(60.0), "U5": pytest.approx(30.0),
                   "U6": pytest.approx(60.0), "U7": None, "U8": None,
                   "U9": pytest.approx(15.0), "U10": None}
    drugs = dict(rows(con, "SELECT patient_id, coalesce(drug, drug_class) FROM medications"))
    assert drugs["U1"] == "unknown" and drugs["U2"] == "fentanyl transdermal"
    unconvertible = [(line, column) for _, line, column, _, reason in issues(con)
                     if "cannot be converted" in reason]
    assert unconvertible == [(8, "unit"), (9, "unit"), (11, "unit")]
    # An unknown MME is never 0 downstream: the date's MME is unknown.
    unknown_days = scalar(con, """
        SELECT count(*) FROM medications
        WHERE drug_class = 'unknown' OR (drug_class = 'opioid' AND mme IS NULL)""")
    assert unknown_days == 4


def test_dose_unit_rule_by_hand():
    """reference.dose_sql, evaluated by DuckDB on hand-worked cases."""
    cases = [  # value, unit, drug unit, strength, strength unit -> dose
        (10, "mg", "mg", None, None, 10.0), (10, None, "mg", None, None, 10.0),
        (0.5, "g", "mg", None, None, 500.0), (250, "ug", "mg", None, None, 0.25),
        (2, "tab", "mg", 7.5, "mg", 15.0), (2, "tab", "mg", None, None, None),
        (4, "ml", "mg", 1.0, "mg/ml", 4.0), (4, "ml", "mg", 5.0, "mg", None),
        (12, "mcg/h", "mcg/hr", None, None, 12.0), (1, "{patch}", "mcg/hr", 50.0, "mcg/hr", 50.0),
        (25, "mg", "mcg/hr", None, None, None), (3, "drops", "mg", None, None, None),
    ]
    con = duckdb.connect()
    for value, unit, drug_unit, strength, strength_unit, expected in cases:
        sql = reference.dose_sql("$v", reference.unit_fold_sql("$u"), "$du", "$s", "$su")
        got = con.execute(f"SELECT {sql}", {"v": value, "u": unit, "du": drug_unit,
                                            "s": strength, "su": strength_unit}).fetchone()[0]
        assert got == (pytest.approx(expected) if expected is not None else None), \
            (value, unit, drug_unit)
    assert reference.fold_unit(" µg / HR ") == "ug/hr"
    assert reference.fold_unit("") is None


def test_drug_matching_and_strength_from_the_label():
    patch = reference.match_drug("Fentanyl 50", "mcg/hr")
    assert patch.generic == "fentanyl transdermal" and patch.factor == 2.4
    assert reference.match_drug("fentanyl", "mcg") is None
    assert reference.match_drug("Percocet 5/325 mg").generic == "oxycodone"
    assert reference.match_drug("Norco 10/325").factor == 1.0
    assert reference.match_drug("Tylenol #3").generic == "codeine"
    assert reference.match_drug("vitamin D") is None
    assert reference.dose_from_text("Percocet 5/325 mg") == 5.0
    assert reference.dose_from_text("Percocet 7.5/325") == 7.5
    assert reference.dose_from_text("Norco 10 / 325") == 10.0
    assert reference.dose_from_text("Tylenol with codeine 300/30") == 30.0
    assert reference.dose_from_text("Tylenol #3") is None     # not 3 mg
    assert reference.dose_from_text("Duragesic 25 mcg/hr") == 25.0
    assert reference.dose_from_text("none") is None


def test_medication_reconciliation_replaces_the_same_patient_and_date(tmp_path, con):
    first = write(tmp_path, "m1.csv", csv_lines(
        MED_HEADER, "P1,2024-03-01,oxycodone,10,mg,2", "P1,2024-03-01,Xanax,1,mg,1",
        "P1,2024-02-01,oxycodone,10,mg,3"))
    later = write(tmp_path, "m2.csv", csv_lines(
        MED_HEADER, "P1,2024-03-01,oxycodone,5,mg,2"))
    run(con, first)
    result = run(con, later)
    assert (result.rows_accepted, result.rows_replaced) == (1, 2)
    assert rows(con, "SELECT record_date, drug, mme FROM medications ORDER BY 1") == [
        (dt.date(2024, 2, 1), "oxycodone", 45.0), (dt.date(2024, 3, 1), "oxycodone", 15.0)]


def test_medications_fill_visits_without_overriding_the_session_export(tmp_path, db_path):
    from analysis.storage import store
    sessions = write(tmp_path, "sessions.csv", csv_lines(
        "patient_id,visit_date,visit_type,opioid_mme_per_day,benzodiazepine",
        "P1,2024-03-01,infusion,,",
        "P2,2024-03-01,infusion,,",
        "P3,2024-03-01,infusion,,",
        "P4,2024-03-01,infusion,45,no",
        "P5,2024-03-02,infusion,,",
        "P7,2024-03-01,infusion,,",
    ))
    con = db.connect(db_path)
    run(con, sessions)
    run(con, _medication_export(tmp_path))
    con.close()
    snap = store.Snapshot(db_path)
    try:
        got = snap.query("SELECT patient_id, opioid_mme_per_day, benzodiazepine FROM stg_visits "
                         "ORDER BY patient_id")
    finally:
        snap.close()
    records = [(r.patient_id,
                None if pd.isna(r.opioid_mme_per_day) else r.opioid_mme_per_day,
                None if pd.isna(r.benzodiazepine) else bool(r.benzodiazepine))
               for r in got.itertuples()]
    assert records == [
        ("P1", pytest.approx(120.0), True),   # 30 + 30 + 60, Xanax
        ("P2", 0.0, False),                   # "none"
        ("P3", None, False),                  # buprenorphine: unknown, never 0
        ("P4", 45.0, False),                  # the session export wins
        ("P5", None, None),                   # no reconciliation that day
        ("P7", None, None),
    ]
