"""Ingest of session and medication exports into DuckDB (SPEC §2).

One file is one transaction: all of it lands, or none of it.  Every row read
ends up accepted, quarantined (with its reason) or collapsed as an exact
duplicate, so ``rows_read = rows_accepted + rows_quarantined +
duplicates_collapsed`` always.  Columns that identify a person are never
selected out of the file, so their values never reach the database, the
quarantine or the logs.

The heavy lifting is SQL run inside DuckDB (the file is read by DuckDB's own
CSV/Parquet readers); Python only decides the column mapping and maps the
few distinct condition and drug labels.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Callable, Iterable, Mapping

import duckdb

from analysis.ingest import limits
from analysis.ingest.columns import plan_columns
from analysis.ingest.ingest_log import (FileResult, IngestRefused, IngestSummary, drop_temp_tables,
    already_ingested, file_fingerprint, log_refusal, one_ingest, refusal_reason,
    register_pseudonym_function, checkpoint)
from analysis.ingest.medications import load_medications
from analysis.ingest.readers import open_export
from analysis.ingest.sessions import load_sessions
from analysis.ingest.staging import raw_rows_sql, stage
from analysis.ingest import clean_sessions
from analysis.storage import saved_models

log = logging.getLogger(__name__)


def ingest_files(con: duckdb.DuckDBPyConnection, paths: Iterable[str | os.PathLike], *,
                 ingest_date: dt.date | None = None,
                 column_map: Mapping[str, str] | None = None,
                 alias_file: str | None = None,
                 display_names: Mapping[str, str] | None = None,
                 progress: Callable[[int, int, str], None] | None = None,
                 codes_file: str | None = None) -> IngestSummary:
    """Ingest several exports, each in its own transaction.  FHIR files
    (NDJSON, Bundles) given together are one export; a folder or zip of them
    is one export (``codes_file``: the clinic's own FHIR code mappings)."""
    from analysis.ingest.fhir import files as fhir_files
    exports = fhir_files.group_exports([Path(p) for p in paths])
    results = []
    for number, export in enumerate(exports, start=1):
        names = [(display_names or {}).get(str(p), p.name) for p in export]
        if progress:
            progress(number, len(exports), names[0] if len(names) == 1 else f"{len(names)} FHIR files")
        if fhir_files.is_fhir_path(export[0]):   # a FHIR export: one transaction for all its files
            from analysis.ingest.fhir.export import ingest_export  # (pandas: FHIR only)
            results.append(ingest_export(con, export, name=names[0] if len(names) == 1 else None,
                                              ingest_date=ingest_date, codes_file=codes_file))
        else:
            results.append(ingest_file(con, export[0], ingest_date=ingest_date,
                                       column_map=column_map, alias_file=alias_file,
                                       display_name=names[0]))
    refresh_saved_models(con)
    return IngestSummary(results)


def refresh_saved_models(con: duckdb.DuckDBPyConnection,
                         _fail_after: str | None = None) -> str | None:
    """Bring the models saved in the file up to its data
    (:mod:`analysis.storage.saved_models`), in a transaction of their own
    after the ingests committed: the one place every ingest path (the
    command line, the Data page, FHIR imports, the demo build) ends.
    Nothing to do when they are current.  Saving that fails leaves the data
    as ingested and the saved models unusable (readers build their own)."""
    if not saved_models.enabled():
        return None
    try:
        kind = saved_models.refresh(
            con, before_commit=lambda: checkpoint("models saved", _fail_after))
    except duckdb.Error as error:
        log.warning("saving the models failed (readers build their own): %s",
                    refusal_reason(error))
        return None
    return kind


def ingest_file(con: duckdb.DuckDBPyConnection, path: str | os.PathLike, *,
                ingest_date: dt.date | None = None,
                column_map: Mapping[str, str] | None = None,
                alias_file: str | None = None,
                display_name: str | None = None,
                _fail_after: str | None = None) -> FileResult:
    """Ingest one export.  Never raises for a bad file: it is refused instead.

    ``column_map`` maps raw headers to canonical columns the user chose (the
    dashboard's mapping form).  ``_fail_after`` names a step after which a
    test makes the ingest fail, to prove the transaction rolls back.
    """
    path = Path(path)
    name = display_name or path.name
    ingest_date = ingest_date or dt.date.today()
    result = FileResult(path=str(path), status="refused")
    digest = None
    try:
        if not path.is_file():
            raise IngestRefused(f"{name}: no such file")
        limits.check_bytes(name, "the file", path.stat().st_size, limits.MAX_DATA_BYTES)
        digest, is_utf8, physical_lines = file_fingerprint(path)
        if already_ingested(con, digest):
            result.status = "unchanged"
            return result
        if path.stat().st_size == 0:
            raise IngestRefused(f"{name}: the file is empty (no header row, no data)")
        headers, reader_sql = open_export(con, path, name, is_utf8, physical_lines)
        plan = plan_columns(headers, name, column_map=column_map, alias_file=alias_file)
        result.export_kind = plan.export_kind
        result.dropped_identifying_columns = plan.dropped_identifying
        result.pseudonymised_columns = plan.pseudonymised
        result.unknown_columns = plan.unknown
        if plan.pseudonymised:
            register_pseudonym_function(con)
        if plan.export_kind == "sessions" and _load_clean(
                con, plan, reader_sql, physical_lines, name, digest, result, ingest_date,
                _fail_after, path.stat().st_size):
            return result
        with one_ingest(con, name, digest, result, _fail_after) as ingest_id:
            raw_rows = stage(con, plan, reader_sql, path, is_utf8, physical_lines, ingest_date)
            checkpoint("stage", _fail_after)
            if plan.export_kind == "sessions":
                load_sessions(con, plan, result, ingest_id, name, ingest_date, _fail_after,
                              raw_rows)
            elif plan.export_kind == "measurements":
                from analysis.ingest import long_format
                long_format.load(con, plan, result, ingest_id, name, ingest_date, _fail_after,
                                 alias_file)
            else:
                load_medications(con, plan, result, ingest_id, name, ingest_date, _fail_after)
        return result
    except (IngestRefused, limits.LimitExceeded) as refusal:
        result.error = str(refusal)
    except duckdb.Error as error:
        result.error = f"{name}: could not be read as an export ({refusal_reason(error)})"
    finally:
        drop_temp_tables(con)
    log_refusal(con, name, digest, result)
    return result


def _load_clean(con, plan, reader_sql: str, physical_lines: int | None, name: str,
                digest: str, result: FileResult, ingest_date: dt.date,
                fail_after: str | None, file_bytes: int) -> bool:
    """A session export with nothing to report, in one pass
    (:mod:`analysis.ingest.clean_sessions`): True when it is ingested; False
    when it needs the careful path (its attempt rolled back, ``result`` as
    it was)."""
    raw_rows = raw_rows_sql(con, plan, reader_sql)
    for date_format in ("iso", "us"):
        try:
            with clean_sessions.write_settings(con, file_bytes), \
                    one_ingest(con, name, digest, result, fail_after) as ingest_id:
                clean_sessions.load(con, result, ingest_id, raw_rows, reader_sql,
                                    physical_lines, ingest_date, date_format, fail_after)
            return True
        except (clean_sessions.NotClean, duckdb.Error) as not_clean:
            for count in ("rows_read", "rows_accepted", "rows_replaced"):
                setattr(result, count, 0)
            result.date_format = None
            if not getattr(not_clean, "other_format", False):
                return False
    return False
