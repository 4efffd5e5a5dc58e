"""A session export with no row to quarantine, collapse or log, loaded in one
pass: the file is read straight into ``visits`` (issue 20: the ingest near
DuckDB's bare load), with no staging table in between.

The pass takes a row only when it has nothing to report: a patient, a known
visit type, a date in the file's format on or before the ingest date, and
every value valid or blank.  The first row that is not so stops it (DuckDB's
``error()``), the transaction is rolled back and the file goes through the
careful path (:mod:`analysis.ingest.staging` and
:mod:`analysis.ingest.sessions`), which quarantines, collapses and logs;
so does a file whose rows share a natural key (a duplicate or a conflict),
one with a malformed line, or one whose records are not one line each (the
careful path finds their physical lines).  Both paths write the same rows:
for a file without problems the careful path accepts every row, in file
order, with the same typed values (both read them through
:func:`analysis.ingest.staging.session_select`).

The file's date format is the one most of its dates have (SPEC §2): here all
of them.  The pass tries ISO first; a file whose dates are US (``MM/DD/YYYY``)
stops it at its first row, and the pass starts again in that format.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

from analysis.storage import reference
from analysis.ingest.columns import NUMERIC_RULES
from analysis.ingest.ingest_log import FileResult, checkpoint, sql_literal
from analysis.ingest.staging import csv_rejects, natural_key_sql, session_select

OTHER_FORMAT = "clean pass: a date in the other format"
NEEDS_CHECKS = "clean pass: a row needs the careful path"
FORMAT_LABELS = {"iso": "YYYY-MM-DD", "us": "MM/DD/YYYY"}


#: A clean file up to this size is held in memory until its commit; a larger
#: one is written to the database file as it is read (DuckDB's optimistic
#: writes), so that memory stays bounded.  Held in memory, the rows took
#: about 3.3 times the file's size (2.8 GB for an 851 MB file of 9.9M rows).
IN_MEMORY_BYTES = 128 * 1024 * 1024


class NotClean(Exception):
    """The file needs the careful path; ``other_format``: its first rows
    have their dates in the other format (try the pass in that one)."""

    def __init__(self, other_format: bool = False):
        super().__init__("the file needs the careful path")
        self.other_format = other_format


def load(con, result: FileResult, ingest_id: int, raw_rows: str, reader_sql: str,
         physical_lines: int | None, ingest_date: dt.date, date_format: str,
         fail_after: str | None) -> None:
    """Insert every row of a clean file into ``visits``, or raise
    :class:`NotClean` (the caller rolls the transaction back).  Raises
    ``duckdb.Error`` when the read itself fails: the careful path reports it."""
    other = "us" if date_format == "iso" else "iso"
    cutoff = f"DATE '{ingest_date.isoformat()}'"
    had_visits = con.execute("SELECT EXISTS (SELECT 1 FROM visits)").fetchall()[0][0]
    # A row is clean when it has every identity part, its date is in this
    # format only and not after the ingest date, and every checked value is
    # valid or blank.
    clean = (f"patient__value IS NOT NULL AND visit_type__value IS NOT NULL "
             f"AND visit_date__{date_format} IS NOT NULL AND visit_date__{other} IS NULL "
             f"AND visit_date__{date_format} <= {cutoff} AND NOT may_have_issue")
    checked = [*NUMERIC_RULES, "route", "benzodiazepine"]
    values = ", ".join(f"{c}__value AS {c}" for c in checked)
    try:
        accepted = con.execute(f"""
            INSERT INTO visits BY NAME
            SELECT {natural_key_sql(f'visit_date__{date_format}')} AS natural_key,
                   patient__value AS patient_id, visit_date__{date_format} AS visit_date,
                   visit_type__value AS visit_type, visit_id__value AS visit_id,
                   condition__value AS condition_raw,
                   site__value AS site,
                   provider__value AS provider, {values}, adverse_event__value AS adverse_event,
                   $ingest_id AS ingest_id
            FROM ({session_select(raw_rows, ingest_date, with_raw=False)})
            WHERE CASE WHEN {clean} THEN true
                       WHEN visit_date__{date_format} IS NULL AND visit_date__{other} IS NOT NULL
                         THEN error('{OTHER_FORMAT}')
                       ELSE error('{NEEDS_CHECKS}') END
        """, {"ingest_id": ingest_id}).fetchall()[0][0]
    except Exception as error:  # noqa: BLE001 - duckdb raises its own kinds
        if OTHER_FORMAT in str(error):
            raise NotClean(other_format=True) from None
        if NEEDS_CHECKS in str(error):
            raise NotClean() from None
        raise
    if not accepted:
        raise NotClean()   # (an empty file: the careful path reports it as it always did)
    if "read_csv" in reader_sql:
        # One physical line per record and no malformed line: the row read
        # k-th is on line k + 1.  Otherwise the careful path numbers them.
        if csv_rejects(con) or physical_lines != 1 + accepted:
            raise NotClean()
    # Rows sharing a natural key are duplicates or conflicts (SPEC §2).
    shared = con.execute("""
        SELECT count(*) FROM (SELECT hash(natural_key) AS key_hash FROM visits
                              WHERE ingest_id = $ingest_id
                              GROUP BY key_hash HAVING count(*) > 1)""",
                         {"ingest_id": ingest_id}).fetchall()[0][0]
    if shared:
        raise NotClean()
    # Line numbers: the rows went in in the file's order (DuckDB keeps it
    # through the parallel read and insert), so the k-th row read has the
    # k-th row id of this ingest and is on line k + 1.  (Numbering them in
    # the read, row_number() OVER (), made the whole pass run on one thread:
    # 3.4 s instead of 3.0 at 1M rows on an idle 2-core machine.)
    low, high = con.execute("SELECT min(rowid), max(rowid) FROM visits WHERE ingest_id = $i",
                            {"i": ingest_id}).fetchall()[0]
    if high - low + 1 != accepted:
        raise NotClean()
    # The same UPDATE gives each row the condition of its label
    # (reference.map_condition, asked once per distinct label).  Held in
    # memory until the commit (write_settings), the rows cost nothing to
    # update; a CASE over the labels in the INSERT cost more.
    labels = [row[0] for row in con.execute(
        "SELECT DISTINCT condition_raw FROM visits WHERE ingest_id = $i "
        "AND condition_raw IS NOT NULL", {"i": ingest_id}).fetchall()]
    con.execute("""UPDATE visits SET source_line = rowid - $low + 2,
                          condition = map_extract_value(map($raw::VARCHAR[], $mapped::VARCHAR[]),
                                                        condition_raw)
                   WHERE ingest_id = $i""",
                {"low": low, "i": ingest_id, "raw": labels,
                 "mapped": [reference.map_condition(label) for label in labels]})
    checkpoint("stage", fail_after)
    checkpoint("checked", fail_after)
    result.date_format = FORMAT_LABELS[date_format]
    result.rows_read = result.rows_accepted = accepted
    # A later export replaces earlier rows with the same natural key.
    if had_visits:
        result.rows_replaced = con.execute("""
            DELETE FROM visits
            WHERE ingest_id <> $ingest_id
              AND natural_key IN (SELECT natural_key FROM visits WHERE ingest_id = $ingest_id)
        """, {"ingest_id": ingest_id}).fetchall()[0][0]
    checkpoint("delete", fail_after)


@contextmanager
def write_settings(con, file_bytes: int):
    """How DuckDB writes the pass's rows (issue 20), restored after it.

    - Its commit checkpoints (``checkpoint_threshold`` of one byte): the
      rows are written once, compressed, into the database file, instead of
      first to the write-ahead log (185 MB at 1M rows) and again when the
      connection closes.
    - A file up to :data:`IN_MEMORY_BYTES` is held in memory until then
      (``enable_optimistic_write`` off).  The line numbers are set by an
      UPDATE after the rows are in; on rows DuckDB had already written to
      the file, that UPDATE made the commit log them all again (148 MB of
      log at 1M rows).

    At 1M rows on the 2-core machine the ingest went from 1.68 to 1.20-1.29
    times the bare ``read_csv`` load (``bench/bench_perf.py --steps
    ingest``); its peak memory from 378 to 384-422 MiB.
    """
    saved = dict(con.execute(
        "SELECT name, value FROM duckdb_settings() "
        "WHERE name IN ('enable_optimistic_write', 'checkpoint_threshold')").fetchall())
    con.execute("SET checkpoint_threshold = '1B'")
    if file_bytes <= IN_MEMORY_BYTES:
        con.execute("SET enable_optimistic_write = false")
    try:
        yield
    finally:
        con.execute(f"SET checkpoint_threshold = {sql_literal(saved['checkpoint_threshold'])}")
        con.execute(f"SET enable_optimistic_write = {saved['enable_optimistic_write']}")
