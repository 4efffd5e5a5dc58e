"""Loading a session export's staged rows into ``visits``: exact duplicates
collapsed, conflicting rows and rows with a problem quarantined with their
reason, values out of range nulled and logged, conditions mapped.
"""

from __future__ import annotations

import datetime as dt

from analysis.storage import reference
from analysis.ingest.columns import ColumnPlan, NUMERIC_RULES
from analysis.ingest.ingest_log import FileResult, count_rows, sql_literal, checkpoint
from analysis.ingest.staging import natural_key_sql, number_issue_sql

# The typed values a session row stores: two rows with equal ones are
# duplicates, and two rows sharing a natural key with different ones conflict.
_STORED_VALUES = ("patient__value", "visit_id__value", "visit_type__value", "visit_date__value",
                  "condition__value", "site__value", "provider__value", "route__value",
                  "benzodiazepine__value", "adverse_event__value",
                  *(f"{c}__value" for c in NUMERIC_RULES))


def load_sessions(con, plan, result: FileResult, ingest_id: int, name: str,
                   ingest_date: dt.date, fail_after: str | None, raw_rows: str) -> None:
    """Sessions: ``staged`` already holds typed values, so each step is a
    cheap scan of it; only small tables (exact duplicates, conflicting keys,
    rows with a problem) are materialised before the one INSERT into
    ``visits``."""
    iso, us = con.execute(
        "SELECT count(visit_date__iso), count(visit_date__us) FROM staged_raw").fetchall()[0]
    date_format = "us" if us > iso else "iso"   # one format per file: the one most dates have
    result.date_format = "MM/DD/YYYY" if date_format == "us" else "YYYY-MM-DD"
    _register_condition_map(con, "condition__value")
    cutoff = f"DATE '{ingest_date.isoformat()}'"
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW typed AS
        SELECT *,
               patient__value IS NOT NULL AND visit_type__value IS NOT NULL
                 AND coalesce(visit_date__value <= {cutoff}, false) AS row_ok,
               {natural_key_sql()} AS natural_key,
               CASE WHEN visit_id__value IS NOT NULL THEN hash('id', visit_id__value)
                    ELSE hash('pt', patient__value, visit_date__value, visit_type__value)
               END AS key_hash,
               -- Rows are the same, or conflict, by the values stored from
               -- them ("5" and "5.0" are one pain score; an unknown or
               -- identifying column is never read, so it cannot make two
               -- rows differ), plus the raw text of a value that failed its
               -- check.  A row with an identity problem keeps its whole-row hash.
               CASE WHEN patient__value IS NOT NULL AND visit_type__value IS NOT NULL
                         AND visit_date__value IS NOT NULL
                    THEN hash({', '.join(_STORED_VALUES)}, raw)
                    ELSE row_hash END AS value_hash
        FROM (SELECT *, visit_date__{date_format} AS visit_date__value FROM staged)""")

    # Exact duplicates and conflicting rows both share a key hash (equal rows
    # have equal typed values), so one pass finds the few shared key hashes
    # and the two checks below only look at those rows.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE shared_keys AS
        SELECT key_hash FROM typed GROUP BY key_hash HAVING count(*) > 1""")
    shared = ("(SELECT * FROM typed WHERE key_hash IN (SELECT key_hash FROM shared_keys))"
              if count_rows(con, "shared_keys") else "(SELECT * FROM typed WHERE false)")
    # Exact duplicates: one row per repeated row hash, keeping its first line.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE dup_rows AS
        SELECT value_hash, min(line) AS first_line, count(*) AS copies
        FROM {shared} GROUP BY value_hash HAVING count(*) > 1""")
    # Natural keys shared by rows (without row problems) that differ.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE clash_keys AS
        SELECT key_hash FROM {shared} WHERE row_ok
        GROUP BY key_hash HAVING min(value_hash) <> max(value_hash)""")
    # ``kept``: one row per distinct row.  Plain joins to the two small tables
    # (a correlated EXISTS would make DuckDB materialise every row); both
    # have unique keys, and are left out when empty (the usual case).
    dup_count = count_rows(con, "dup_rows")
    clash_count = count_rows(con, "clash_keys")
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW kept AS
        SELECT t.*, {'c.key_hash IS NOT NULL' if clash_count else 'false'} AS clashes
        FROM typed t
        {'LEFT JOIN clash_keys c ON c.key_hash = t.key_hash' if clash_count else ''}
        {'LEFT JOIN dup_rows d ON d.value_hash = t.value_hash' if dup_count else ''}
        {'WHERE d.value_hash IS NULL OR d.first_line = t.line' if dup_count else ''}""")
    con.execute("CREATE OR REPLACE TEMP VIEW accepted AS SELECT * FROM kept WHERE row_ok AND NOT clashes")
    checkpoint("checked", fail_after)

    result.rows_read = count_rows(con, "staged") + count_rows(con, "staged_rejects")
    result.duplicates_collapsed = int(con.execute(
        "SELECT coalesce(sum(copies - 1), 0) FROM dup_rows").fetchall()[0][0])

    # The few rows with a problem (row or value).  Rows whose raw text was not
    # kept while staging (conflicts, a date only valid in the other format)
    # get it from a second read of the file, for those rows only.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE problem_rows AS
        SELECT ordinal, line, raw, row_ok, clashes, patient__value, visit_id__value,
               visit_type__value, visit_date__value,
               route__value, benzodiazepine__value, """
                + ", ".join(f"{c}__value" for c in NUMERIC_RULES) + """
        FROM kept WHERE NOT row_ok OR clashes OR raw IS NOT NULL""")
    missing = count_rows(con, "problem_rows", "raw IS NULL")
    if missing:
        raw_json = "json_object(" + ", ".join(
            f"'{c}', {c}" for c in reference.CANONICAL_COLUMNS) + ")"
        con.execute(f"""
            UPDATE problem_rows p SET raw = r.raw
            FROM (SELECT ordinal, {raw_json} AS raw FROM ({raw_rows})
                  WHERE ordinal IN (SELECT ordinal FROM problem_rows WHERE raw IS NULL)) r
            WHERE p.ordinal = r.ordinal""")
    raw_columns = ", ".join(f"raw->>'{c}' AS {c}" for c in reference.CANONICAL_COLUMNS)
    problems = f"(SELECT *, {raw_columns} FROM problem_rows)"

    # Quarantine: raw values of the recognised columns only (never
    # identifying or unknown columns, which could identify a person).
    # (each of these statements is planned in tens of milliseconds, whatever
    # the rows: one without rows to write is left out, as for a clean export)
    pairs = ", ".join(f"{sql_literal(raw)}, {canonical}" for raw, canonical in plan.mapping.items())
    if count_rows(con, "problem_rows", "NOT row_ok OR clashes") or count_rows(con, "staged_rejects"):
        result.rows_quarantined = con.execute(f"""
        INSERT INTO quarantine
        SELECT $ingest_id, $file_name, line, raw_row, reason FROM (
            SELECT line, CAST(json_object({pairs}) AS VARCHAR) AS raw_row,
                   CASE WHEN row_ok THEN 'conflicting rows share the natural key '
                       || CASE WHEN visit_id__value IS NOT NULL THEN 'visit_id'
                               ELSE 'patient_id, visit_date, visit_type' END
                        ELSE {_row_problem_sql(result.date_format, cutoff)} END AS reason
            FROM {problems} WHERE NOT row_ok OR clashes
            UNION ALL
            SELECT line, NULL, reason FROM staged_rejects)
        ORDER BY line
    """, {"ingest_id": ingest_id, "file_name": name}).fetchall()[0][0]

    # A later export replaces earlier rows with the same natural key.
    if con.execute("SELECT EXISTS (SELECT 1 FROM visits)").fetchall()[0][0]:
        result.rows_replaced = con.execute("""
            DELETE FROM visits WHERE natural_key IN (SELECT natural_key FROM accepted)
        """).fetchall()[0][0]
    checkpoint("delete", fail_after)
    checked_columns = [*NUMERIC_RULES, "route", "benzodiazepine"]
    typed_values = ", ".join(f"a.{col}__value AS {col}" for col in checked_columns)
    result.rows_accepted = con.execute(f"""
        INSERT INTO visits BY NAME
        SELECT a.natural_key, a.patient__value AS patient_id, a.visit_date__value AS visit_date,
               a.visit_type__value AS visit_type, a.visit_id__value AS visit_id,
               cm.condition, a.condition__value AS condition_raw, a.site__value AS site,
               a.provider__value AS provider, {typed_values}, a.adverse_event__value AS adverse_event,
               $ingest_id AS ingest_id, a.line AS source_line
        FROM accepted a
        LEFT JOIN condition_map cm ON cm.raw = a.condition__value
    """, {"ingest_id": ingest_id}).fetchall()[0][0]

    # Value problems of accepted rows: that value is NULL, the raw one logged.
    issues = [(c, number_issue_sql(c)) for c in NUMERIC_RULES]
    issues.append(("route", f"'unknown route (expected one of {', '.join(reference.ROUTES.values())})'"))
    issues.append(("benzodiazepine", "'not yes/no'"))
    selects = " UNION ALL ".join(
        f"""SELECT line, '{column}' AS column_name, {column} AS raw_value, {reason} AS reason
            FROM {problems}
            WHERE row_ok AND NOT clashes
              AND nullif(trim({column}), '') IS NOT NULL AND {column}__value IS NULL"""
        for column, reason in issues)
    # (a value problem is seen in the raw text, kept only for rows with a problem)
    if count_rows(con, "problem_rows", "row_ok AND NOT clashes AND raw IS NOT NULL"):
        result.values_nulled = con.execute(f"""INSERT INTO value_issues
                        SELECT $ingest_id, $file_name, line, column_name, raw_value, reason
                        FROM ({selects}) ORDER BY line, column_name""",
                    {"ingest_id": ingest_id, "file_name": name}).fetchall()[0][0]


def _row_problem_sql(format_label: str, cutoff: str) -> str:
    """Why a row is quarantined (identity problems), NULL when none."""
    return f"""nullif(concat_ws('; ',
                   CASE WHEN patient__value IS NULL THEN 'missing patient_id' END,
                   CASE WHEN nullif(trim(visit_date), '') IS NULL THEN 'missing visit_date'
                        WHEN visit_date__value IS NULL
                          THEN 'visit_date is not a date in this file''s format ({format_label})'
                        WHEN visit_date__value > {cutoff}
                          THEN 'visit_date is after the ingest date'
                   END,
                   CASE WHEN nullif(trim(visit_type), '') IS NULL THEN 'missing visit_type'
                        WHEN visit_type__value IS NULL
                          THEN 'unknown visit_type (expected one of {", ".join(reference.VISIT_TYPES)})'
                   END), '')"""


def _register_condition_map(con, column: str = "nullif(trim(condition), '')") -> None:
    raw_values = [r[0] for r in con.execute(
        f"SELECT DISTINCT {column} FROM staged WHERE {column} IS NOT NULL").fetchall()]
    con.execute("CREATE OR REPLACE TEMP TABLE condition_map (raw VARCHAR, condition VARCHAR)")
    con.execute("INSERT INTO condition_map SELECT unnest($raw::VARCHAR[]), unnest($mapped::VARCHAR[])",
                {"raw": raw_values, "mapped": [reference.map_condition(v) for v in raw_values]})


def quarantine_problems(con, ingest_id: int, name: str, plan: ColumnPlan) -> None:
    """Quarantined rows keep the raw values of their recognised columns only
    (never identifying or unknown columns, which could identify a person)."""
    pairs = ", ".join(f"{sql_literal(raw)}, {canonical}" for raw, canonical in plan.mapping.items())
    con.execute(f"""
        INSERT INTO quarantine
        SELECT $ingest_id, $file_name, line, CAST(json_object({pairs}) AS VARCHAR), quarantine_reason
        FROM checked WHERE quarantine_reason IS NOT NULL
        UNION ALL
        SELECT $ingest_id, $file_name, line, NULL, reason FROM staged_rejects
        ORDER BY 3
    """, {"ingest_id": ingest_id, "file_name": name})
