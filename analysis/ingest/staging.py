"""Staging an export: the rows read as raw text under their canonical names,
with their line numbers in the file and a hash of each row, rejected lines
kept with their reason; and the small SQL builders (folding, categories,
dates, checked numbers) every loader shares.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Mapping

import duckdb

from analysis.storage import reference
from analysis.ingest.columns import ColumnPlan, MEASUREMENT_COLUMNS, NUMERIC_RULES, ROUTE_ALIASES
from analysis.ingest.ingest_log import PSEUDONYM_FUNCTION, sql_ident, sql_literal


def stage(con, plan: ColumnPlan, reader_sql: str, path: Path | None = None,
           is_utf8: bool = True, physical_lines: int | None = None,
           ingest_date: dt.date | None = None) -> str:
    """Read the file once into ``staged_raw`` and define the view ``staged``
    (every row read, with its ``ordinal`` and its ``line``; the header is
    line 1).  Returns the SQL that reads the raw text of the recognised
    columns again, row by row, for the rare rows that need it later.

    Medication exports are staged as raw text.  Session exports are staged
    as typed values (see ``session_select``), with the raw text kept only
    for rows that have a problem, so that no later step parses text again.
    """
    raw_rows = raw_rows_sql(con, plan, reader_sql)
    if plan.export_kind == "sessions":
        staged_select = session_select(raw_rows, ingest_date or dt.date.today())
    else:
        staged_select = raw_rows
    # No window function here: the scan stays parallel, and DuckDB keeps the
    # file's order, so a row's ordinal comes from its rowid.
    con.execute(f"CREATE OR REPLACE TEMP TABLE staged_raw AS {staged_select}")
    low, high, count = con.execute(
        "SELECT min(rowid), max(rowid), count(*) FROM staged_raw").fetchall()[0]
    if count and high - low + 1 != count:  # not contiguous: number the rows explicitly
        con.execute("""CREATE OR REPLACE TEMP TABLE staged_numbered AS
                       SELECT row_number() OVER (ORDER BY rowid) AS ordinal, * FROM staged_raw""")
        ordinals = "SELECT * FROM staged_numbered"
    else:
        ordinals = f"SELECT rowid - {low or 0} + 1 AS ordinal, * FROM staged_raw"
    con.execute(f"CREATE OR REPLACE TEMP VIEW staged AS "
                f"SELECT ordinal + 1 AS line, * FROM ({ordinals})")
    con.execute("CREATE OR REPLACE TEMP TABLE staged_rejects (line BIGINT, reason VARCHAR)")
    if "read_csv" in reader_sql:
        _assign_lines(con, csv_rejects(con), path, is_utf8, physical_lines, ordinals, count)
    return f"SELECT row_number() OVER () AS ordinal, * FROM ({raw_rows})"


def raw_rows_sql(con, plan: ColumnPlan, reader_sql: str) -> str:
    """The SQL of the rows read: ``row_hash`` (of every column) and the raw
    text of each canonical column of the export's kind (NULL when absent)."""
    all_columns = ", ".join(sql_ident(h) for h in plan.all_columns)
    wanted = {"sessions": reference.CANONICAL_COLUMNS, "medications": reference.MEDICATION_COLUMNS,
              "measurements": MEASUREMENT_COLUMNS}[plan.export_kind]
    by_canonical = {c: raw for raw, c in plan.mapping.items()}
    # A typed date or timestamp column (Parquet) is staged as its date.
    typed = {} if "read_csv" in reader_sql else dict(
        row[:2] for row in con.execute(f"DESCRIBE SELECT * FROM {reader_sql}").fetchall())

    def text(canonical: str) -> str:
        column = sql_ident(by_canonical[canonical])
        if canonical in ("visit_date", "date") and str(
                typed.get(by_canonical[canonical], "")).startswith(("TIMESTAMP", "DATE")):
            return f"CAST(CAST({column} AS DATE) AS VARCHAR)"
        if by_canonical[canonical] in plan.pseudonymised:
            # An identifying key (MRN, name) becomes its pseudonym as it is
            # read: the raw value never reaches a table, not even a staging one.
            return f"{PSEUDONYM_FUNCTION}(CAST({column} AS VARCHAR))"
        return f"CAST({column} AS VARCHAR)"

    selected = ", ".join(
        f"{text(c)} AS {c}" if c in by_canonical else f"CAST(NULL AS VARCHAR) AS {c}"
        for c in wanted)
    # The hash covers every column (identifying ones too) so that "exact
    # duplicate" means the whole row; only the hash leaves this SELECT.
    return f"SELECT hash({all_columns}) AS row_hash, {selected} FROM {reader_sql}"


def session_select(raw_rows: str, ingest_date: dt.date, with_raw: bool = True) -> str:
    """One row per session row read: its hash and typed values, the date
    parsed both ways (the file's format is decided once all is read; a
    failed parse is costly, so each format is tried only on text that has
    its separator, without which it cannot match), and
    ``raw``, a JSON object of the raw text, for rows with a visible problem.
    Without ``with_raw`` (the one pass of a clean file) ``may_have_issue``
    instead: a checked value is not valid and its text not NULL (a text of
    blanks counts: the careful path tells it from a bad value)."""
    types = {**{t: t for t in reference.VISIT_TYPES}, **reference.VISIT_TYPE_ALIASES}
    type_sql = category_sql("visit_type", {k: sql_literal(v) for k, v in types.items()})
    route_sql = category_sql("route", {k: sql_literal(v) for k, v in ROUTE_ALIASES.items()})
    benzo_sql = category_sql("benzodiazepine", {k: "true" if v else "false"
                                                 for k, v in reference.BOOLEAN_VALUES.items()})
    # (TRY_CAST itself ignores surrounding blanks.)
    parsed = ", ".join(f"TRY_CAST({c} AS DOUBLE) AS {c}__number" for c in NUMERIC_RULES)
    numbers = ", ".join(f"{_checked_number_sql(c)} AS {c}__value" for c in NUMERIC_RULES)
    checked_columns = [*NUMERIC_RULES, "route", "benzodiazepine"]
    # A value that failed its check and is not blank.  Most rows have none:
    # the cheap test (a text without a value) picks the few that may, and
    # only those are trimmed.
    may_have_issue = " OR ".join(f"({c}__value IS NULL AND {c} IS NOT NULL)"
                                 for c in checked_columns)
    any_issue = " OR ".join(f"({c}__value IS NULL AND nullif(trim({c}), '') IS NOT NULL)"
                            for c in checked_columns)
    no_event = ", ".join(sql_literal(v) for v in reference.NO_ADVERSE_EVENT)
    raw_json = "json_object(" + ", ".join(
        f"'{c}', {c}" for c in reference.CANONICAL_COLUMNS) + ")"
    raw_sql = f"""CASE WHEN patient__value IS NULL OR visit_type__value IS NULL
                      OR coalesce(visit_date__iso, visit_date__us) IS NULL
                      OR coalesce(visit_date__iso, visit_date__us) > DATE '{ingest_date.isoformat()}'
                    THEN {raw_json}
                    WHEN NOT ({may_have_issue}) THEN NULL
                    WHEN {any_issue} THEN {raw_json} END AS raw"""
    return f"""
        SELECT row_hash, patient__value, visit_id__value, visit_type__value,
               visit_date__iso, visit_date__us,
               {text_value_sql('condition')} AS condition__value,
               {text_value_sql('site')} AS site__value,
               {text_value_sql('provider')} AS provider__value,
               route__value, benzodiazepine__value,
               CASE WHEN nullif(trim(adverse_event), '') IS NULL THEN NULL
                    WHEN lower(trim(adverse_event)) IN ({no_event}) THEN NULL
                    WHEN {fold_sql('adverse_event')} IN ({no_event}) THEN NULL
                    ELSE lower(trim(adverse_event)) END AS adverse_event__value,
               {', '.join(f'{c}__value' for c in NUMERIC_RULES)},
               {raw_sql if with_raw else f"({may_have_issue}) AS may_have_issue"}
        FROM (
            SELECT *, {numbers}
            FROM (
                SELECT *,
                       {text_value_sql('patient_id')} AS patient__value,
                       {text_value_sql('visit_id')} AS visit_id__value,
                       {type_sql} AS visit_type__value,
                       CASE WHEN contains(visit_date, '-')
                            THEN {date_sql('visit_date', 'iso')} END AS visit_date__iso,
                       CASE WHEN contains(visit_date, '/')
                            THEN {date_sql('visit_date', 'us')} END AS visit_date__us,
                       {route_sql} AS route__value,
                       {benzo_sql} AS benzodiazepine__value,
                       {parsed}
                FROM ({raw_rows})))"""


def csv_rejects(con) -> list[tuple[int, str]]:
    try:
        rows = con.execute(
            "SELECT line, error_type, error_message FROM reject_errors ORDER BY line").fetchall()
    except duckdb.Error:
        return []
    seen: dict[int, str] = {}
    for line, error_type, message in rows:
        seen.setdefault(int(line), f"malformed line: {error_type.lower()} ({message})")
    return sorted(seen.items())


def _assign_lines(con, rejects: list[tuple[int, str]], path: Path | None, is_utf8: bool,
                  physical_lines: int | None, ordinals: str, staged_rows: int) -> None:
    """Line numbers are physical lines; the header is line 1.

    When the file has exactly one physical line per record (no blank lines,
    no quoted line breaks) the reader's line numbers are physical ones: the
    rows it rejected keep theirs and the accepted rows fill the others in
    order (row k is on line k + 1 unless rejected lines come before it).
    Otherwise the records' first lines are found by reading the file with
    Python's csv module in the dialect DuckDB detected.
    """
    if physical_lines != 1 + staged_rows + len(rejects) and path is not None:
        exact = _record_lines(con, path, is_utf8, [line for line, _ in rejects], staged_rows)
        if exact is not None:
            accepted, by_reader_line = exact
            rejects = sorted((by_reader_line.get(line, line), reason) for line, reason in rejects)
            # (the k-th accepted record is on line accepted[k - 1])
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE staged_lines AS
                SELECT m.physical_line AS line, s.*
                FROM ({ordinals}) s JOIN (
                    SELECT unnest(range(1, $n + 1)) AS ordinal,
                           unnest($lines::BIGINT[]) AS physical_line) m USING (ordinal)""",
                        {"n": staged_rows, "lines": accepted})
            con.execute("CREATE OR REPLACE TEMP VIEW staged AS SELECT * FROM staged_lines")
            _insert_rejects(con, rejects)
            return
    if rejects:
        # Row k moves down past every rejected line r_i (i = 1, 2, ...) with
        # r_i - i <= k.
        thresholds: dict[int, int] = {}
        for i, (line, _) in enumerate(rejects, start=1):
            thresholds[line - i] = i
        values = ", ".join(f"({t}, {n})" for t, n in thresholds.items())
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE staged_lines AS
            SELECT s.ordinal + 1 + coalesce(x.shift, 0) AS line, s.*
            FROM ({ordinals}) s ASOF LEFT JOIN (VALUES {values}) x(threshold, shift)
              ON s.ordinal >= x.threshold""")
        con.execute("CREATE OR REPLACE TEMP VIEW staged AS SELECT * FROM staged_lines")
    _insert_rejects(con, rejects)


def _insert_rejects(con, rejects: list[tuple[int, str]]) -> None:
    if rejects:
        con.executemany("INSERT INTO staged_rejects VALUES (?, ?)", rejects)


def _record_lines(con, path: Path, is_utf8: bool, reject_lines: list[int],
                  staged_rows: int) -> tuple[list[int], dict[int, int]] | None:
    """The first physical line of every accepted record, in order, and the
    physical line of each reader line number; None when unsure."""
    encoding = "utf-8" if is_utf8 else "latin-1"
    try:
        delimiter, quote, escape = con.execute(
            f"SELECT Delimiter, Quote, Escape FROM sniff_csv({sql_literal(str(path))}, "
            f"encoding = '{encoding}', ignore_errors = true, null_padding = false)").fetchall()[0]
    except (duckdb.Error, IndexError):
        return None
    quote = None if quote in ("", "(empty)") else quote
    escape = None if escape in ("", "(empty)") or escape == quote else escape
    if delimiter in ("", "(empty)") or len(delimiter) != 1:
        return None
    records: list[tuple[int, int]] = []  # (reader line, first physical line)
    try:
        with open(path, newline="", encoding="utf-8-sig" if is_utf8 else "latin-1") as handle:
            reader = csv.reader(handle, delimiter=delimiter, quotechar=quote or '"',
                                quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE,
                                escapechar=escape, doublequote=True, strict=False)
            reader_line = 0
            while True:
                before = reader.line_num
                try:
                    row = next(reader)
                except StopIteration:
                    break
                reader_line += 1   # DuckDB counts a blank line as a line, not as a record
                if row:
                    records.append((reader_line, before + 1))
    except (csv.Error, OSError, UnicodeDecodeError):
        return None
    by_reader_line = dict(records[1:])
    rejected = set(reject_lines)
    accepted = [physical for reader_line, physical in records[1:]
                if reader_line not in rejected]
    if len(accepted) != staged_rows or not rejected <= by_reader_line.keys():
        return None
    return accepted, by_reader_line


def detect_date_format(con, column: str) -> str:
    """ISO or US: whichever shape most of the file's dates have."""
    iso, us = con.execute(f"""
        SELECT count(*) FILTER (WHERE trim({column}) LIKE '____-%-%'),
               count(*) FILTER (WHERE trim({column}) LIKE '%/%/____')
        FROM staged""").fetchall()[0]
    return "us" if us > iso else "iso"


def natural_key_sql(visit_date: str = "visit_date__value") -> str:
    """A session row's natural key (SPEC §2), from its typed values: its
    ``visit_id`` when it has one, else its patient, ``visit_date`` (the SQL
    ``visit_date``) and visit type.  A later export's row with the same key
    replaces the earlier one; two rows of one export sharing it are
    duplicates or a conflict.  Both session loaders ask this."""
    return (f"CASE WHEN visit_id__value IS NOT NULL THEN 'id:' || visit_id__value "
            f"ELSE 'pt:' || patient__value || '|' || {visit_date} || '|' || visit_type__value END")


def fold_sql(expr: str) -> str:
    return (f"trim(regexp_replace(regexp_replace(lower(trim({expr})), '\\([^)]*\\)', ' ', 'g'), "
            f"'[^a-z0-9]+', '_', 'g'), '_')")


def trimmed_sql(expr: str) -> str:
    """``trim(expr)``, run only on a text that starts or ends with a space
    (``trim`` copies the string; most cells have none)."""
    return f"CASE WHEN {expr} LIKE ' %' OR {expr} LIKE '% ' THEN trim({expr}) ELSE {expr} END"


def text_value_sql(expr: str) -> str:
    """``nullif(trim(expr), '')``, the text of a cell or NULL when blank,
    with ``trim`` (which copies the string) run only on a text that starts
    or ends with a space or is empty."""
    return (f"CASE WHEN {expr} LIKE ' %' OR {expr} LIKE '% ' OR {expr} = '' "
            f"THEN nullif(trim({expr}), '') ELSE {expr} END")


def category_sql(expr: str, cases: Mapping[str, str]) -> str:
    """Fold a category value and map it (``cases``: folded value -> SQL
    value); NULL when unknown.  A value written exactly as a folded key or
    as the text it maps to ("intake", "IV": the usual case) is matched as
    it is; one written otherwise is lower-cased and trimmed, and only
    when that does not match either, folded with regular expressions."""
    when = " ".join(f"WHEN {sql_literal(folded)} THEN {value}" for folded, value in cases.items())
    exact = {k: v for k, v in cases.items() if k.isascii() and k == k.strip(" ").lower()}
    for value in cases.values():   # "IV" -> 'IV': lower(trim("IV")) is the key "iv"
        text = value[1:-1].replace("''", "'") if value.startswith("'") else None
        if text and text.isascii() and cases.get(text.strip(" ").lower()) == value:
            exact.setdefault(text, value)
    as_written = " ".join(f"WHEN {sql_literal(raw)} THEN {value}" for raw, value in exact.items())
    # (a blank cell, the usual optional value, goes through none of it)
    return (f"CASE WHEN {expr} IS NULL THEN NULL ELSE (CASE {expr} {as_written} "
            f"ELSE (CASE lower(trim({expr})) {when} ELSE (CASE {fold_sql(expr)} {when} END) END) "
            "END) END")


def date_sql(expr: str, date_format: str) -> str:
    pattern = "%m/%d/%Y" if date_format == "us" else "%Y-%m-%d"
    return f"CAST(try_strptime({trimmed_sql(expr)}, '{pattern}') AS DATE)"


def _checked_number_sql(column: str) -> str:
    """The valid value of a numeric column from its parsed ``<column>__number``."""
    low, high, whole = NUMERIC_RULES[column]
    value = f"{column}__number"
    checks = [f"isfinite({value})"]
    if low is not None:
        checks.append(f"{value} >= {low}")
    if high is not None:
        checks.append(f"{value} <= {high}")
    if whole:
        checks.append(f"{value} = floor({value})")
    cast = "INTEGER" if whole else "DOUBLE"
    return f"CASE WHEN {' AND '.join(checks)} THEN CAST({value} AS {cast}) END"


def number_issue_sql(column: str) -> str:
    low, high, whole = NUMERIC_RULES[column]
    value = f"TRY_CAST(trim({column}) AS DOUBLE)"
    rng = (f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}")
    return f"""CASE WHEN {value} IS NULL OR NOT isfinite({value}) THEN 'not a number'
                    WHEN {value} < {low if low is not None else '-1e308'}
                      OR {value} > {high if high is not None else '1e308'}
                      THEN 'out of range (must be {rng})'
                    {"WHEN " + value + " <> floor(" + value + ") THEN 'not a whole number'" if whole else ""}
               END"""
