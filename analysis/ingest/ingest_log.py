"""The ingest's bookkeeping: what each file gave (:class:`FileResult`, the
summary of several), the ingest log row of every file ingested or refused,
the pseudonym function, the named steps the crash tests stop at, and small
SQL helpers (identifiers, literals, counts, a refusal's reason).
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from analysis.access import keys
from analysis.storage import saved_models


class IngestRefused(Exception):
    """The whole file is refused; the message says why, naming the file."""


@dataclass
class FileResult:
    path: str
    status: str                      # ingested | unchanged | refused
    error: str | None = None
    export_kind: str | None = None   # sessions | medications
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    duplicates_collapsed: int = 0
    values_nulled: int = 0
    rows_replaced: int = 0
    dropped_identifying_columns: list[str] = field(default_factory=list)
    pseudonymised_columns: list[str] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    date_format: str | None = None
    details: dict = field(default_factory=dict)   # per kind of export (FHIR: what was skipped)


@dataclass
class IngestSummary:
    files: list[FileResult]

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def ok(self) -> bool:
        return all(f.status != "refused" for f in self.files)

    def to_dict(self) -> dict:
        names = ("rows_read", "rows_accepted", "rows_quarantined",
                 "duplicates_collapsed", "values_nulled", "rows_replaced")
        summary = {name: self.total(name) for name in names}
        summary["dropped_identifying_columns"] = sorted(
            {c for f in self.files for c in f.dropped_identifying_columns})
        summary["pseudonymised_columns"] = sorted(
            {c for f in self.files for c in f.pseudonymised_columns})
        summary["unknown_columns"] = sorted({c for f in self.files for c in f.unknown_columns})
        summary["files"] = [
            {"path": f.path, "status": f.status, "error": f.error,
             **{k: v for k, v in asdict(f).items() if k not in ("path", "status", "error")}}
            for f in self.files
        ]
        return summary


def checkpoint(name: str, fail_after: str | None) -> None:
    """A named point inside the ingest transaction, for the crash tests: a
    test makes the ingest fail there (``_fail_after``) or, with
    ``OUTCOMES_TEST_PAUSE_AT=<name>``, pause there so another process can
    SIGKILL it mid-transaction."""
    if fail_after == name:
        raise RuntimeError(f"injected failure after {name}")
    if os.environ.get("OUTCOMES_TEST_PAUSE_AT") == name:
        print(f"paused at {name}", file=sys.stderr, flush=True)
        time.sleep(120)


# --------------------------------------------------------------------------
# bookkeeping


def next_ingest_id(con) -> int:
    return con.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM ingest_log").fetchall()[0][0]


def already_ingested(con, digest: str) -> bool:
    """The same bytes were ingested before (a repeated file changes nothing)."""
    return bool(con.execute(
        "SELECT count(*) FROM ingest_log WHERE sha256 = ? AND status = 'ingested'",
        [digest]).fetchall()[0][0])


@contextmanager
def one_ingest(con, name: str, digest: str | None, result: FileResult,
               fail_after: str | None, message=None):
    """One export's rows, all or nothing: yields the new ingest id; when the
    body returns, logs the file (its message ``message(result)`` if given)
    and commits, and the result reads "ingested"; anything raised rolls the
    whole file back.  Every export kind (CSV/XLSX/Parquet, FHIR) ends an
    ingest here, so the rule lives once."""
    con.execute("BEGIN TRANSACTION")
    try:
        ingest_id = next_ingest_id(con)
        # This ingest names what it changes in place for the saved models'
        # next update (analysis.storage.saved_models).
        saved_models.note_ingest(con, ingest_id)
        yield ingest_id
        log_ingest(con, ingest_id, name, digest, "ingested", result,
                   message=message(result) if message else None)
        checkpoint("logged", fail_after)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    result.status = "ingested"


def log_ingest(con, ingest_id: int, name: str, digest: str | None, status: str, r: FileResult,
               message: str | None = None) -> None:
    con.execute("""
        INSERT INTO ingest_log (ingest_id, file_name, export_kind, sha256, ingested_at, status,
                                rows_read, rows_accepted, rows_quarantined, duplicates_collapsed,
                                values_nulled, rows_replaced, dropped_identifying_columns,
                                unknown_columns, message, pseudonymised_columns)
        VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    """, [ingest_id, name, r.export_kind, digest, status, r.rows_read, r.rows_accepted,
          r.rows_quarantined, r.duplicates_collapsed, r.values_nulled, r.rows_replaced,
          r.dropped_identifying_columns, r.unknown_columns,
          r.error if message is None else message, r.pseudonymised_columns])


def log_refusal(con, name: str, digest: str | None, result: FileResult) -> None:
    try:
        con.execute("BEGIN TRANSACTION")
        log_ingest(con, next_ingest_id(con), name, digest, "refused", result)
        con.execute("COMMIT")
    except duckdb.Error:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass


PSEUDONYM_FUNCTION = "clinic_pseudonym"


def register_pseudonym_function(con) -> None:
    """``clinic_pseudonym(text)``: the keyed pseudonym of an identifying
    patient key (:func:`analysis.access.keys.pseudonym`); NULL for a blank value, so
    the row is quarantined as having no patient.  Set-wise: DuckDB hands over
    a column chunk at a time, its distinct values are pseudonymised once
    each (remembered for the rest of the file) and mapped back."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from duckdb import sqltypes

    known: dict[str, str | None] = {}

    def pseudonymise(values):
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        encoded = pc.dictionary_encode(values)
        distinct = encoded.dictionary.to_pylist()
        for value in distinct:
            if value not in known:
                known[value] = keys.pseudonym(value) if value and value.strip() else None
        mapped = pa.array([known[v] for v in distinct], type=pa.string())
        return mapped.take(encoded.indices)

    remove_pseudonym_function(con)
    con.create_function(PSEUDONYM_FUNCTION, pseudonymise, [sqltypes.VARCHAR], sqltypes.VARCHAR,
                        type="arrow", null_handling="special", side_effects=False)


def remove_pseudonym_function(con) -> None:
    try:
        con.remove_function(PSEUDONYM_FUNCTION)
    except Exception:  # noqa: BLE001 - not registered on this connection
        pass


def drop_temp_tables(con) -> None:
    # (one call for all: each call of its own costs a round trip)
    con.execute(";\n".join(
        [f"DROP VIEW IF EXISTS temp.{view}" for view in ("accepted", "kept", "typed", "staged")]
        + [f"DROP TABLE IF EXISTS temp.{table}" for table in (
            "lf_measures", "lf_values", "lf_new_days", "lf_new_visits", "lf_targets", "lf_agg",
            "staged_raw", "staged_numbered", "staged_lines", "staged_rejects", "checked",
            "dup_rows", "shared_keys", "clash_keys", "problem_rows", "condition_map", "drug_map",
            "checked_rows")]))
    try:
        con.unregister("excel_import")
    except Exception:
        pass
    remove_pseudonym_function(con)
    for table in ("reject_errors", "reject_scans"):
        try:
            con.execute(f"DROP TABLE IF EXISTS temp.{table}")
        except duckdb.Error:
            pass


def count_rows(con, table: str, where: str = "true") -> int:
    # fetchall: a result left unfinished makes DuckDB refuse a later register()
    return con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchall()[0][0]


def file_fingerprint(path: Path) -> tuple[str, bool, int]:
    """One pass over the file: its SHA-256, whether it is valid UTF-8, and its
    number of physical lines (trailing empty lines not counted)."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    is_utf8, newlines, tail = True, 0, b""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            newlines += block.count(b"\n")
            tail = (tail + block)[-4096:] if len(block) < 4096 else block[-4096:]
            if is_utf8 and not (block.isascii() and decoder.getstate()[0] == b""):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    is_utf8 = False
    if is_utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            is_utf8 = False
    stripped = tail.rstrip(b"\r\n")
    trailing = tail[len(stripped):].count(b"\n")
    lines = newlines - trailing + 1 if stripped or newlines > trailing else 0
    return digest.hexdigest(), is_utf8, lines


def sql_ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")


def refusal_reason(error: BaseException) -> str:
    """A reader's error for a refusal message: its first line, with anything
    quoted in it (a value, a path) left out, so no row's value is echoed."""
    text = str(error).strip().splitlines()
    first = _QUOTED.sub("…", text[0]) if text else ""
    return first.split(" Original Line")[0] or type(error).__name__
