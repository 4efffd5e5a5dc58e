"""Identifying patient keys (SPEC §2, issue 14).

An identifying column is never a patient key: where the only key an export
has is a medical record number or a name (a bundled alias, a user's alias
file or the Data page's mapping form would make it one), each value is
replaced at ingest by its keyed pseudonym (``analysis.access.keys.pseudonym``) and
the raw value is written nowhere.  These tests read the bytes of the
database, its WAL and the audit file, and the command's own output.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analysis import cli
from analysis.access import audit, keys
from analysis.storage import db, reference
from analysis.ingest.pipeline import ingest_file

INGEST_DATE = dt.date(2024, 6, 1)
MRNS = ["MRN-77123401", "MRN-77123402", "MRN-77123403"]
NAMES = ["Zebediah Quux", "Philippa Wrenfold", "Ottoline Brackwater"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def file_bytes(*paths: Path) -> bytes:
    """A database file and its WAL (before a checkpoint the rows are there)."""
    data = b""
    for path in paths:
        for candidate in (Path(path), Path(str(path) + ".wal")):
            if candidate.exists():
                data += candidate.read_bytes()
    return data


def assert_nowhere(data: bytes | str, values: list[str]) -> None:
    text = data if isinstance(data, str) else None
    for value in values:
        for form in {value, value.lower(), value.upper()}:
            if text is not None:
                assert form not in text, form
            else:
                assert form.encode() not in data, form
                assert form.encode("utf-16-le") not in data, form


def mrn_export(tmp_path: Path) -> Path:
    """Keyed by MRN, with the patient's name in "Patient (Full Name)": accepted
    rows, a duplicate, a value issue, quarantined rows, a malformed line."""
    lines = ["MRN,Patient (Full Name),Date of Service,Visit Type,Site,Pain,Condition"]
    for mrn, name in zip(MRNS, NAMES):
        lines += [f"{mrn},{name},2024-01-05,intake,Quuxville Clinic,8,migraine",
                  f"{mrn},{name},2024-01-08,infusion,Quuxville Clinic,7,",
                  f"{mrn},{name},2024-04-08,follow_up,Quuxville Clinic,4,"]
    lines += [f"{MRNS[0]},{NAMES[0]},2024-01-08,infusion,Quuxville Clinic,7,",       # duplicate
              f"{MRNS[1]},{NAMES[1]},2024-02-08,booster,Quuxville Clinic,12,",       # value issue
              f"{MRNS[2]},{NAMES[2]},2024-13-45,booster,Quuxville Clinic,5,",        # bad date
              f"{MRNS[2]},{NAMES[2]},2024-02-09,phone call,Quuxville Clinic,5,",     # bad type
              f"{MRNS[0]},{NAMES[0]},2024-02-10,booster,Quuxville Clinic,5,,extra",  # malformed
              f" {MRNS[0].lower()} ,{NAMES[0]},2024-02-11,booster,Quuxville Clinic,5,"]
    return write(tmp_path, "mrn_export.csv", "\n".join(lines) + "\n")


def test_identifying_header_check_reads_every_word():
    for header in ("MRN", "Patient (Full Name)", "pt_name", "Medical Record Number", "Chart #",
                   "Patient ID (MRN)", "E-Mail", "Name", "DOB"):
        assert reference.is_identifying(header), header
    for header in ("patient_id", "Patient", "Drug Name", "medication_name", "Site Name",
                   "Pain Score (0-10)", "record_id", "Date of Service", "adverse_event"):
        assert not reference.is_identifying(header), header
    assert reference.is_record_number("MRN") and not reference.is_record_number("pt_name")


def test_mrn_keyed_export_with_a_name_column_is_stored_under_pseudonyms(tmp_path):
    db_path = tmp_path / "clinic.duckdb"
    con = db.connect(db_path)
    result = ingest_file(con, mrn_export(tmp_path), ingest_date=INGEST_DATE)
    assert result.status == "ingested", result.error
    assert result.pseudonymised_columns == ["MRN"]
    assert result.dropped_identifying_columns == ["Patient (Full Name)"]
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined,
            result.duplicates_collapsed, result.values_nulled) == (15, 11, 3, 1, 1)

    stored = {r[0] for r in con.execute("SELECT DISTINCT patient_id FROM visits").fetchall()}
    assert stored == {keys.pseudonym(m) for m in MRNS}
    # " mrn-77123401 " is the same patient as "MRN-77123401"
    assert con.execute("SELECT count(*) FROM visits WHERE patient_id = ?",
                       [keys.pseudonym(MRNS[0])]).fetchone()[0] == 4
    # Quarantined rows keep their recognised columns, the key as its pseudonym.
    raw_rows = [json.loads(r[0]) for r in con.execute(
        "SELECT raw_row FROM quarantine WHERE raw_row IS NOT NULL").fetchall()]
    assert len(raw_rows) == 2 and all(r["MRN"] == keys.pseudonym(MRNS[2]) for r in raw_rows)
    assert con.execute("SELECT pseudonymised_columns FROM ingest_log").fetchall() == [(["MRN"],)]

    everything = repr([con.execute(f"SELECT * FROM {t}").fetchall()
                       for t in ("visits", "quarantine", "value_issues", "ingest_log")])
    assert "Quuxville Clinic" in everything      # the check can see stored text
    assert_nowhere(everything, MRNS + NAMES)
    data = file_bytes(db_path)
    assert b"Quuxville Clinic" in data
    assert_nowhere(data, MRNS + NAMES)
    con.execute("CHECKPOINT")
    con.close()
    data = file_bytes(db_path)
    assert b"Quuxville Clinic" in data
    assert_nowhere(data, MRNS + NAMES)


def test_command_line_ingest_writes_no_mrn_or_name_in_database_audit_or_messages(
        tmp_path, capsys):
    db_path = tmp_path / "clinic.duckdb"
    export = mrn_export(tmp_path)
    code = cli.main(["ingest", str(export), "--db", str(db_path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["pseudonymised_columns"] == ["MRN"]
    code = cli.main(["ingest", str(export), "--db", str(db_path)])   # unchanged, text output
    out2, err2 = capsys.readouterr()
    assert code == 0
    audit.flush()
    assert_nowhere(out + err + out2 + err2, MRNS + NAMES)
    data = file_bytes(db_path, audit.audit_path(db_path))
    assert audit.audit_path(db_path).exists()
    assert b"Quuxville Clinic" in data
    assert_nowhere(data, MRNS + NAMES)


def test_a_refused_mrn_file_names_columns_never_values(tmp_path, capsys):
    db_path = tmp_path / "clinic.duckdb"
    export = write(tmp_path, "no_type.csv", f"MRN,Patient Name,Date\n{MRNS[0]},{NAMES[0]},2024-01-05\n")
    code = cli.main(["ingest", str(export), "--db", str(db_path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "visit_type" in out + err and "MRN" in out + err
    audit.flush()
    assert_nowhere(out + err, MRNS + NAMES)
    assert_nowhere(file_bytes(db_path, audit.audit_path(db_path)), MRNS + NAMES)


def test_a_user_alias_mapping_a_name_column_to_patient_id_stores_pseudonyms(tmp_path):
    aliases = write(tmp_path, "aliases.csv", "column,alias\npatient_id,pt_name\n")
    export = write(tmp_path, "names.csv", "pt_name,visit_date,visit_type,pain_score\n" + "".join(
        f"{name},2024-01-0{i + 5},infusion,6\n" for i, name in enumerate(NAMES)))
    db_path = tmp_path / "clinic.duckdb"
    con = db.connect(db_path)
    result = ingest_file(con, export, ingest_date=INGEST_DATE, alias_file=str(aliases))
    assert result.status == "ingested", result.error
    assert result.pseudonymised_columns == ["pt_name"]
    assert sorted(r[0] for r in con.execute("SELECT patient_id FROM visits").fetchall()) == \
        sorted(keys.pseudonym(n) for n in NAMES)
    con.close()
    assert_nowhere(file_bytes(db_path), NAMES)


def test_the_mapping_form_choosing_a_name_column_as_patient_id_stores_pseudonyms(tmp_path):
    from analysis.ingest import data_quality
    export = write(tmp_path, "odd.csv", "Full Name,When,What\n" + "".join(
        f"{name},2024-01-05,infusion\n" for name in NAMES))
    from tests.helpers.builders import write_grant
    db_path = tmp_path / "clinic.duckdb"
    summary = data_quality.ingest_uploads(
        [export], write_grant(db_path), ingest_date=INGEST_DATE,
        column_map=data_quality.column_map_from_choices(
            {"patient_id": "Full Name", "visit_date": "When", "visit_type": "What"}))
    assert summary.ok, summary.to_dict()
    assert summary.files[0].pseudonymised_columns == ["Full Name"]
    con = duckdb.connect(str(db_path), read_only=True)
    assert sorted(r[0] for r in con.execute("SELECT patient_id FROM visits").fetchall()) == \
        sorted(keys.pseudonym(n) for n in NAMES)
    con.close()
    assert_nowhere(file_bytes(db_path), NAMES)


def test_an_identifying_column_aliased_to_another_column_is_dropped(tmp_path):
    aliases = write(tmp_path, "aliases.csv", "column,alias\nsite,home_phone\ncondition,Patient Name\n")
    export = write(tmp_path, "x.csv", "patient_id,visit_date,visit_type,Home Phone,Patient Name\n"
                                      "P1,2024-01-05,infusion,555-867-5309,Zebediah Quux\n")
    db_path = tmp_path / "clinic.duckdb"
    con = db.connect(db_path)
    result = ingest_file(con, export, ingest_date=INGEST_DATE, alias_file=str(aliases))
    assert result.dropped_identifying_columns == ["Home Phone", "Patient Name"]
    assert result.pseudonymised_columns == []
    assert con.execute("SELECT patient_id, site, condition FROM visits").fetchall() == [
        ("P1", None, None)]
    con.close()
    assert_nowhere(file_bytes(db_path), ["555-867-5309", "Zebediah Quux"])


def test_a_pseudonymous_patient_id_is_kept_and_an_mrn_beside_it_dropped(tmp_path):
    export = write(tmp_path, "x.csv", "MRN,patient_id,visit_date,visit_type\n"
                                      f"{MRNS[0]},P1,2024-01-05,infusion\n")
    con = db.connect(tmp_path / "clinic.duckdb")
    result = ingest_file(con, export, ingest_date=INGEST_DATE)
    assert result.dropped_identifying_columns == ["MRN"] and result.pseudonymised_columns == []
    assert con.execute("SELECT patient_id FROM visits").fetchall() == [("P1",)]


def test_the_same_mrn_gives_the_same_pseudonym_so_a_cumulative_export_replaces_rows(tmp_path):
    db_path = tmp_path / "clinic.duckdb"
    con = db.connect(db_path)
    first = write(tmp_path, "jan.csv", "MRN,visit_date,visit_type,pain_score\n"
                                       f"{MRNS[0]},2024-01-05,intake,8\n")
    second = write(tmp_path, "feb.csv", "Medical Record Number,visit_date,visit_type,pain_score\n"
                                        f"{MRNS[0].lower()},2024-01-05,intake,7\n"
                                        f"{MRNS[0]},2024-02-05,infusion,6\n")
    assert ingest_file(con, first, ingest_date=INGEST_DATE).rows_accepted == 1
    keys.forget()   # a later run reads the key from its file again
    result = ingest_file(con, second, ingest_date=INGEST_DATE)
    assert (result.rows_accepted, result.rows_replaced) == (2, 1)
    assert con.execute("SELECT patient_id, visit_date, pain_score FROM visits ORDER BY 2"
                       ).fetchall() == [(keys.pseudonym(MRNS[0]), dt.date(2024, 1, 5), 7.0),
                                        (keys.pseudonym(MRNS[0]), dt.date(2024, 2, 5), 6.0)]


def test_a_medication_export_keyed_by_mrn_meets_the_same_patients(tmp_path):
    db_path = tmp_path / "clinic.duckdb"
    con = db.connect(db_path)
    sessions = write(tmp_path, "s.csv", "MRN,visit_date,visit_type\n"
                                        f"{MRNS[0]},2024-01-05,infusion\n")
    meds = write(tmp_path, "m.csv", "MRN,date,drug,dose,unit,doses_per_day\n"
                                    f"{MRNS[0]},2024-01-05,oxycodone,10,mg,2\n")
    assert ingest_file(con, sessions, ingest_date=INGEST_DATE).status == "ingested"
    result = ingest_file(con, meds, ingest_date=INGEST_DATE)
    assert result.export_kind == "medications" and result.pseudonymised_columns == ["MRN"]
    assert con.execute("SELECT patient_id FROM medications").fetchall() == [
        (keys.pseudonym(MRNS[0]),)]
    con.close()
    assert_nowhere(file_bytes(db_path), MRNS)


@pytest.mark.parametrize("suffix", ["xlsx", "parquet"])
def test_xlsx_and_parquet_exports_keyed_by_mrn(tmp_path, suffix):
    frame = pd.DataFrame({"MRN": MRNS, "Patient Name": NAMES,
                          "visit_date": ["2024-01-05"] * 3, "visit_type": ["infusion"] * 3})
    path = tmp_path / f"export.{suffix}"
    if suffix == "xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    db_path = tmp_path / "clinic.duckdb"
    con = db.connect(db_path)
    result = ingest_file(con, path, ingest_date=INGEST_DATE)
    assert result.status == "ingested", result.error
    assert sorted(r[0] for r in con.execute("SELECT patient_id FROM visits").fetchall()) == \
        sorted(keys.pseudonym(m) for m in MRNS)
    con.close()
    assert_nowhere(file_bytes(db_path), MRNS + NAMES)


# --------------------------------------------------------------------------
# Must show (issue 14): both exports, every place a byte could land.

ALIAS_NAMES = ["Zebediah Quux", "Philippa Wrenfold", "Ottoline Brackwater"]


def alias_export(tmp_path: Path) -> tuple[Path, Path]:
    """A user's alias file mapping the name column ``pt_name`` to patient_id,
    and an export keyed by it (a value issue and a quarantined row too)."""
    aliases = write(tmp_path, "aliases.csv", "column,alias\npatient_id,pt_name\n")
    rows = "".join(f"{name},2024-01-0{i + 5},infusion,Quuxville Clinic,6\n"
                   for i, name in enumerate(ALIAS_NAMES))
    rows += f"{ALIAS_NAMES[0]},2024-02-05,booster,Quuxville Clinic,15\n"      # value issue
    rows += f"{ALIAS_NAMES[1]},2024-02-06,phone call,Quuxville Clinic,5\n"    # quarantined
    export = write(tmp_path, "names.csv", "pt_name,visit_date,visit_type,site,pain_score\n" + rows)
    return aliases, export


def stored_text(db_path: Path) -> str:
    """Every value of every table of a database, as text (a compressed
    column could hide a value from a byte search; a query cannot)."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                             "WHERE table_type = 'BASE TABLE'").fetchall()
        assert tables
        return repr({f"{s}.{t}": con.execute(f'SELECT * FROM "{s}"."{t}"').fetchall()
                     for s, t in tables})
    finally:
        con.close()


def wal(path: Path) -> Path:
    return Path(str(path) + ".wal")


KILLED_INGEST = """
import datetime as dt, os, sys
from analysis.storage import db
from analysis.ingest.pipeline import ingest_file
con = db.connect(sys.argv[1])
for path, aliases in ((sys.argv[2], None), (sys.argv[3], sys.argv[4])):
    result = ingest_file(con, path, ingest_date=dt.date(2024, 6, 1), alias_file=aliases)
    assert result.status == "ingested", result.error
os._exit(0)     # killed: no close, no checkpoint; the rows are in the WAL only
"""


def test_an_ingest_killed_before_its_checkpoint_leaves_no_mrn_or_name_in_the_wal(tmp_path):
    """Both exports of the Must-show, ingested by a process that dies before
    DuckDB checkpoints: the WAL on disk holds the rows (the check can see
    them), never an MRN or a name; a later open replays it, still none."""
    import subprocess
    import sys

    from tests.helpers.apptest import ROOT
    db_path = tmp_path / "clinic.duckdb"
    aliases, names = alias_export(tmp_path)
    mrns = mrn_export(tmp_path)
    done = subprocess.run([sys.executable, "-c", KILLED_INGEST, str(db_path), str(mrns),
                           str(names), str(aliases)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert_nowhere(done.stdout + done.stderr, MRNS + NAMES)
    log = wal(db_path).read_bytes()
    assert b"Quuxville Clinic" in log                 # the rows are in the WAL
    assert_nowhere(log, MRNS + NAMES + ALIAS_NAMES)
    assert_nowhere(file_bytes(db_path), MRNS + NAMES + ALIAS_NAMES)
    text = stored_text(db_path)                       # replays the WAL
    assert "Quuxville Clinic" in text and keys.pseudonym(ALIAS_NAMES[0]) in text
    assert keys.pseudonym(MRNS[0]) in text
    assert_nowhere(text, MRNS + NAMES + ALIAS_NAMES)


def test_both_exports_through_the_command_line_leave_no_mrn_or_name_anywhere(
        tmp_path, capsys, caplog):
    """An MRN-keyed export with a name column, and a name column made the
    key by the user's ``--aliases``: accepted under pseudonyms; no MRN or
    name in the database (every table: visits, quarantine, value issues,
    ingest log), its WAL, the audit file and its WAL, or anything printed or
    logged."""
    import logging
    caplog.set_level(logging.DEBUG)
    db_path = tmp_path / "clinic.duckdb"
    aliases, names = alias_export(tmp_path)
    outputs = []
    for argv in (["ingest", str(mrn_export(tmp_path)), "--db", str(db_path), "--json"],
                 ["ingest", str(names), "--aliases", str(aliases), "--db", str(db_path),
                  "--json"],
                 ["ingest", str(names), "--aliases", str(aliases), "--db", str(db_path)]):
        code = cli.main(argv)
        out, err = capsys.readouterr()
        assert code == 0, err
        outputs.append(out + err)
    first, second = json.loads(outputs[0]), json.loads(outputs[1])
    assert first["pseudonymised_columns"] == ["MRN"]
    assert first["dropped_identifying_columns"] == ["Patient (Full Name)"]
    assert second["pseudonymised_columns"] == ["pt_name"]
    assert (second["rows_accepted"], second["rows_quarantined"], second["values_nulled"]) == \
        (4, 1, 1)
    audit.flush()
    assert_nowhere("\n".join(outputs) + caplog.text, MRNS + NAMES + ALIAS_NAMES)

    text = stored_text(db_path)
    for table in ("main.visits", "main.quarantine", "main.value_issues", "main.ingest_log"):
        assert f"'{table}'" in text
    assert keys.pseudonym(ALIAS_NAMES[1]) in text      # the quarantined row, pseudonymised
    assert "Quuxville Clinic" in text
    assert_nowhere(text, MRNS + NAMES + ALIAS_NAMES)
    audit_file = audit.audit_path(db_path)
    assert audit_file.exists() and "ingest" in stored_text(audit_file)
    assert_nowhere(stored_text(audit_file), MRNS + NAMES + ALIAS_NAMES)
    data = file_bytes(db_path, audit_file)
    assert b"Quuxville Clinic" in data
    assert_nowhere(data, MRNS + NAMES + ALIAS_NAMES)


def test_both_exports_through_the_data_page_leave_no_mrn_or_name(tmp_path):
    """The Data page's path (saved upload, ingest, the load's table shown):
    the upload is deleted once read, and neither the summary shown nor the
    database holds an MRN or a name, while the connection is open (WAL) or
    after."""
    from analysis.ingest import data_quality
    from tests.helpers.builders import write_grant
    db_path = tmp_path / "clinic.duckdb"
    uploads = tmp_path / "uploads"
    grant = write_grant(db_path)
    aliases, names = alias_export(tmp_path)
    saved = [data_quality.save_upload(grant, "mrn.csv", mrn_export(tmp_path).read_bytes(),
                                      uploads),
             data_quality.save_upload(grant, "names.csv", names.read_bytes(), uploads)]
    summary = data_quality.ingest_uploads(
        saved[:1], grant, ingest_date=INGEST_DATE, display_names={str(saved[0]): "mrn.csv"})
    mapped = data_quality.ingest_uploads(
        saved[1:], grant, ingest_date=INGEST_DATE,
        column_map=data_quality.column_map_from_choices(
            {"patient_id": "pt_name", "visit_date": "visit_date", "visit_type": "visit_type"}))
    assert summary.ok and mapped.ok, (summary.to_dict(), mapped.to_dict())
    assert mapped.files[0].pseudonymised_columns == ["pt_name"]
    assert not list(uploads.iterdir())                 # the uploads are gone
    shown = (data_quality.summary_table(summary).to_csv()
             + data_quality.summary_table(mapped).to_csv()
             + json.dumps([summary.to_dict(), mapped.to_dict()], default=str))
    assert "MRN" in shown and "pt_name" in shown       # columns are named
    assert_nowhere(shown, MRNS + NAMES + ALIAS_NAMES)
    text = stored_text(db_path)
    assert "Quuxville Clinic" in text
    assert_nowhere(text, MRNS + NAMES + ALIAS_NAMES)
    assert_nowhere(file_bytes(db_path), MRNS + NAMES + ALIAS_NAMES)
