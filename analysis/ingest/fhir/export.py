"""Ingesting one FHIR export (a folder, a zip, or NDJSON/Bundle files given
together) in one transaction: all of it lands or none of it, and the
one-line summary of what it gave.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb

from analysis.ingest.fhir import codes as fhir_codes
from analysis.ingest.fhir import files as fhir_files
from analysis.ingest.fhir.files import ExportRefused
from analysis.ingest.ingest_log import (FileResult, already_ingested, count_rows, sql_literal,
    log_refusal, one_ingest, checkpoint)
from analysis.ingest.limits import LimitExceeded
from analysis.ingest.fhir.load import drop_fhir_temp_tables, write_export_rows
from analysis.ingest.fhir.mapping import (map_conditions, mark_duplicates, map_encounters, map_items,
    map_medications, map_patients)
from analysis.ingest.fhir.resources import USED_TYPES
from analysis.ingest.fhir.staging import stage_resources
from analysis.ingest.fhir.version import check_version
from analysis.ingest.fhir.visits import build_visits


def ingest_export(con: duckdb.DuckDBPyConnection, paths: list[Path], *,
                  name: str | None = None, ingest_date: dt.date | None = None,
                  codes_file: str | None = None,
                  _fail_after: str | None = None) -> FileResult:
    """Ingest one FHIR export (folders, zips, NDJSON or Bundle files).

    Never raises for a bad export: it is refused instead, with a one-line
    message naming the file (and line) but never a value from it.
    """
    paths = [Path(p) for p in paths]
    name = name or (paths[0].name if len(paths) == 1 else f"{len(paths)} FHIR files")
    ingest_date = ingest_date or dt.date.today()
    result = FileResult(path=str(paths[0]) if len(paths) == 1 else name, status="refused",
                        export_kind="fhir")
    export = digest = None
    try:
        codes = fhir_codes.load(codes_file)
        export = fhir_files.collect(paths, name)
        digest = export.digest
        if already_ingested(con, digest):
            result.status = "unchanged"
            return result
        stage_resources(con, export)
        check_version(con, export)
        with one_ingest(con, name, digest, result, _fail_after,
                        message=summary_message) as ingest_id:
            _map(con, codes, result, ingest_id, ingest_date, _fail_after)
        return result
    except (ExportRefused, LimitExceeded, fhir_codes.CodesFileError) as refusal:
        result.error = str(refusal)
    except duckdb.Error as error:
        result.error = _read_error(error, export)
    finally:
        if export is not None:
            export.close()
        drop_fhir_temp_tables(con)
    log_refusal(con, name, digest, result)
    return result


def _read_error(error: duckdb.Error, export) -> str:
    """A DuckDB reading error as one line naming the file and line, never a
    value (DuckDB quotes the offending text)."""
    text = str(error)
    found = re.search(r"\bline (\d+)", text)
    source = next((f for f in (export.files if export else []) if str(f.path) in text), None)
    where = source.name if source else (export.name if export else "the export")
    line = int(found.group(1)) if found else None
    if line is not None and source is not None and source.lines:
        line = min(line, source.lines)   # DuckDB counts one past a last line without a newline
    if "Malformed JSON" in text or "unexpected" in text.lower():
        what = "not valid JSON (a truncated or broken line)"
    else:
        what = "could not be read as FHIR JSON"
    return (f"{where}{f' line {line}' if line else ''}: {what}; "
            "nothing from this export was stored")


# --------------------------------------------------------------------------
# mapping


def _map(con, codes: fhir_codes.Codes, result: FileResult, ingest_id: int,
         ingest_date: dt.date, fail_after: str | None) -> None:
    params = {"ingest_date": ingest_date}
    con.execute("""CREATE OR REPLACE TEMP TABLE fx_out
                   (src VARCHAR, line BIGINT, rtype VARCHAR, rid VARCHAR, outcome VARCHAR, reason VARCHAR)""")
    mark_duplicates(con)
    live = "(SELECT * FROM fx_raw WHERE NOT drop_me)" if count_rows(con, "fx_drop") else "fx_raw"
    if live != "fx_raw":
        con.execute("ALTER TABLE fx_raw ADD COLUMN drop_me BOOLEAN DEFAULT false")
        con.execute("""UPDATE fx_raw SET drop_me = true FROM fx_drop d
                       WHERE fx_raw.src = d.src AND fx_raw.line = d.line""")
    con.execute(f"""INSERT INTO fx_out
                    SELECT src, line, NULL, NULL, 'quarantined', 'not a FHIR resource (no resourceType)'
                    FROM {live} WHERE rtype IS NULL""")
    con.execute(f"""INSERT INTO fx_out
                    SELECT src, line, rtype, rid, 'skipped', rtype || ' not used here'
                    FROM {live} WHERE rtype IS NOT NULL AND rtype NOT IN
                         ({', '.join(sql_literal(t) for t in USED_TYPES)})""")
    map_patients(con, live)
    checkpoint("stage", fail_after)
    map_encounters(con, codes, live, params)
    map_items(con, codes, live, params)
    map_conditions(con, live, params)
    map_medications(con, codes, live, params)
    build_visits(con)
    checkpoint("checked", fail_after)
    write_export_rows(con, result, ingest_id, params, fail_after)


def summary_message(result: FileResult) -> str:
    """One line for the ingest log: what was made and what was skipped."""
    details = result.details or {}
    skipped = details.get("skipped") or {}
    text = (f"{details.get('visits', 0)} visits, {details.get('medication_rows', 0)} medication rows; "
            f"{details.get('resources_skipped', 0)} resources skipped")
    if skipped:
        text += " (" + "; ".join(f"{reason}: {n}" for reason, n in list(skipped.items())[:8])
        text += "; ..." if len(skipped) > 8 else ""
        text += ")"
    return text
