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
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import duckdb
import pandas as pd

from analysis import reference
from analysis.reference import fold

# Value rules of SPEC §2: column -> (lowest, highest, whole numbers only).
NUMERIC_RULES: dict[str, tuple[float | None, float | None, bool]] = {
    "ketamine_mg": (0, None, False),
    "weight_kg": (20, 400, False),
    "pain_score": (0, 10, False),
    "pain_post": (0, 10, False),
    "opioid_mme_per_day": (0, None, False),
    "phq9": (0, 27, True),
    "pcl5": (0, 80, True),
    "pgic": (1, 7, True),
    "sbp_max": (60, 260, False),
    "spo2_min": (50, 100, False),
}
ROUTE_ALIASES = {
    **reference.ROUTES, "intravenous": "IV", "intramuscular": "IM",
    "in": "intranasal", "nasal": "intranasal", "po": "oral", "sl": "sublingual",
}
NO_ADVERSE_EVENT = ("none", "no", "n_a", "na", "nil", "0", "false")
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
PARQUET_SUFFIXES = {".parquet", ".pq"}

_IDENTIFYING_WORDS = re.compile(r"(^|_)(name|dob|ssn|email|e_mail|phone|address|birth|zip)(_|$)")


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
    unknown_columns: list[str] = field(default_factory=list)
    date_format: str | None = None


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
        summary["unknown_columns"] = sorted({c for f in self.files for c in f.unknown_columns})
        summary["files"] = [
            {"path": f.path, "status": f.status, "error": f.error,
             **{k: v for k, v in asdict(f).items() if k not in ("path", "status", "error")}}
            for f in self.files
        ]
        return summary


@dataclass(frozen=True)
class ColumnPlan:
    """How a file's headers map to canonical columns."""
    export_kind: str
    mapping: dict[str, str]          # raw header -> canonical column
    dropped_identifying: list[str]   # raw headers never read
    unknown: list[str]               # raw headers reported, not used
    all_columns: list[str]           # every raw header, in file order


# --------------------------------------------------------------------------
# public API


def ingest_files(con: duckdb.DuckDBPyConnection, paths: Iterable[str | os.PathLike], *,
                 ingest_date: dt.date | None = None,
                 column_map: Mapping[str, str] | None = None,
                 alias_file: str | None = None,
                 display_names: Mapping[str, str] | None = None,
                 progress: Callable[[int, int, str], None] | None = None) -> IngestSummary:
    """Ingest several exports, each in its own transaction."""
    paths = [Path(p) for p in paths]
    results = []
    for number, path in enumerate(paths, start=1):
        if progress:
            progress(number, len(paths), path.name)
        name = (display_names or {}).get(str(path), path.name)
        results.append(ingest_file(con, path, ingest_date=ingest_date, column_map=column_map,
                                   alias_file=alias_file, display_name=name))
    return IngestSummary(results)


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
    try:
        if not path.is_file():
            raise IngestRefused(f"{name}: no such file")
        digest = _sha256(path)
        already = con.execute(
            "SELECT count(*) FROM ingest_log WHERE sha256 = ? AND status = 'ingested'",
            [digest]).fetchone()[0]
        if already:
            result.status = "unchanged"
            return result
        if path.stat().st_size == 0:
            raise IngestRefused(f"{name}: the file is empty (no header row, no data)")
        headers, reader_sql = _open_export(con, path, name)
        plan = plan_columns(headers, name, column_map=column_map, alias_file=alias_file)
        result.export_kind = plan.export_kind
        result.dropped_identifying_columns = plan.dropped_identifying
        result.unknown_columns = plan.unknown
        con.execute("BEGIN TRANSACTION")
        try:
            ingest_id = _next_ingest_id(con)
            _stage(con, plan, reader_sql)
            if _fail_after == "stage":
                raise RuntimeError("injected failure after staging")
            if plan.export_kind == "sessions":
                _load_sessions(con, plan, result, ingest_id, name, ingest_date, _fail_after)
            else:
                _load_medications(con, plan, result, ingest_id, name, ingest_date, _fail_after)
            _log(con, ingest_id, name, digest, "ingested", result)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        result.status = "ingested"
        return result
    except IngestRefused as refusal:
        result.error = str(refusal)
    except duckdb.Error as error:
        result.error = f"{name}: could not be read as an export ({_first_line(error)})"
    finally:
        _drop_temp(con)
    _log_refusal(con, name, result)
    return result


def plan_columns(headers: list[str], file_name: str, *,
                 column_map: Mapping[str, str] | None = None,
                 alias_file: str | None = None) -> ColumnPlan:
    """Map raw headers to canonical columns; refuse a file lacking a required one."""
    folded = {h: fold(h) for h in headers}
    is_medication = any(
        reference.MEDICATION_ALIASES.get(f, f) == "drug" for f in folded.values()
    ) and not any(reference.canonical_column(f, alias_file) == "visit_type"
                  for f in folded.values())
    mapping: dict[str, str] = {}
    dropped: list[str] = []
    unknown: list[str] = []
    chosen = {raw: fold(target) for raw, target in (column_map or {}).items() if target}
    for header in headers:
        f = folded[header]
        if header in chosen:
            canonical = chosen[header]
        elif is_medication:
            canonical = _medication_column(f, alias_file)
        else:
            canonical = reference.canonical_column(f, alias_file)
        if f in reference.IDENTIFYING_COLUMNS or (
                canonical is None and _IDENTIFYING_WORDS.search(f)):
            dropped.append(header)
        elif canonical is None or canonical in mapping.values():
            unknown.append(header)
        else:
            mapping[header] = canonical
    kind = "medications" if is_medication else "sessions"
    required = ("patient_id", "date", "drug") if is_medication else reference.REQUIRED_COLUMNS
    missing = [c for c in required if c not in mapping.values()]
    if missing:
        raise IngestRefused(
            f"{file_name}: missing required column(s) {', '.join(missing)}. "
            f"The file has: {', '.join(headers) or '(no columns)'}"
            + (f"; recognised: {', '.join(f'{r} -> {c}' for r, c in mapping.items())}"
               if mapping else "")
            + (f"; dropped as identifying: {', '.join(dropped)}" if dropped else ""))
    return ColumnPlan(kind, mapping, dropped, unknown, list(headers))


def _medication_column(folded: str, alias_file: str | None) -> str | None:
    """Medication exports share the patient and date aliases of session exports."""
    canonical = reference.MEDICATION_ALIASES.get(folded, folded)
    if canonical in reference.MEDICATION_COLUMNS:
        return canonical
    session_column = reference.canonical_column(folded, alias_file)
    return {"patient_id": "patient_id", "visit_date": "date"}.get(session_column or "")


def read_headers(con: duckdb.DuckDBPyConnection, path: str | os.PathLike) -> list[str]:
    """The raw headers of an export (for the dashboard's mapping form)."""
    path = Path(path)
    try:
        headers, _ = _open_export(con, path, path.name)
    finally:
        _drop_temp(con)
    return headers


# --------------------------------------------------------------------------
# reading the file


def _open_export(con, path: Path, name: str) -> tuple[list[str], str]:
    """Return the raw headers and a SQL relation that reads the file as text."""
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        frame = _read_excel(path, name)
        con.register("excel_import", frame)
        return list(frame.columns), "excel_import"
    if suffix in PARQUET_SUFFIXES:
        relation = f"read_parquet({_literal(str(path))})"
        return _described_headers(con, relation), relation
    if not _looks_like_text(path):
        raise IngestRefused(f"{name}: not a CSV, XLSX or Parquet export (binary content)")
    errors = []
    for encoding in ("utf-8", "latin-1"):
        relation = (f"read_csv({_literal(str(path))}, all_varchar = true, header = true, "
                    f"encoding = '{encoding}', ignore_errors = true, store_rejects = true, "
                    "null_padding = true, auto_detect = true)")
        try:
            return _described_headers(con, relation), relation
        except duckdb.Error as error:
            errors.append(_first_line(error))
    raise IngestRefused(f"{name}: could not be read as CSV ({errors[-1]})")


def _described_headers(con, relation: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


def _read_excel(path: Path, name: str) -> pd.DataFrame:
    try:
        frame = pd.read_excel(path, sheet_name=0, dtype=object, engine="openpyxl")
    except Exception as error:  # openpyxl raises many kinds for a broken file
        raise IngestRefused(f"{name}: could not be read as XLSX ({error})") from None

    def as_text(value):
        if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
            return None
        if isinstance(value, (dt.datetime, pd.Timestamp)):
            return value.strftime("%Y-%m-%d")
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    frame.columns = [str(c) for c in frame.columns]
    return frame.apply(lambda column: column.map(as_text)).astype(object)


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    return controls <= len(head) // 100


# --------------------------------------------------------------------------
# staging: raw text, canonical names, line numbers, row hash


def _stage(con, plan: ColumnPlan, reader_sql: str) -> None:
    all_columns = ", ".join(_ident(h) for h in plan.all_columns)
    wanted = (reference.CANONICAL_COLUMNS if plan.export_kind == "sessions"
              else reference.MEDICATION_COLUMNS)
    by_canonical = {c: raw for raw, c in plan.mapping.items()}
    selected = ", ".join(
        f"CAST({_ident(by_canonical[c])} AS VARCHAR) AS {c}" if c in by_canonical
        else f"CAST(NULL AS VARCHAR) AS {c}"
        for c in wanted)
    # The hash covers every column (identifying ones too) so that "exact
    # duplicate" means the whole row; only the hash leaves this SELECT.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE staged AS
        SELECT row_number() OVER () AS read_order,
               hash({all_columns}) AS row_hash, {selected}
        FROM (SELECT {all_columns} FROM {reader_sql})
    """)
    rejects = _csv_rejects(con) if "read_csv" in reader_sql else []
    _assign_lines(con, rejects)
    for line, message in rejects:
        con.execute("INSERT INTO staged_rejects VALUES (?, ?)", [line, message])


def _csv_rejects(con) -> list[tuple[int, str]]:
    try:
        rows = con.execute(
            "SELECT line, error_type, error_message FROM reject_errors ORDER BY line").fetchall()
    except duckdb.Error:
        return []
    seen: dict[int, str] = {}
    for line, error_type, message in rows:
        seen.setdefault(int(line), f"malformed line: {error_type.lower()} ({message})")
    return sorted(seen.items())


def _assign_lines(con, rejects: list[tuple[int, str]]) -> None:
    """Line numbers: the header is line 1; rows rejected by the CSV reader
    keep their own line, and the accepted rows fill the others in order."""
    con.execute("CREATE OR REPLACE TEMP TABLE staged_rejects (line BIGINT, reason VARCHAR)")
    if not rejects:
        con.execute("ALTER TABLE staged ADD COLUMN line BIGINT")
        con.execute("UPDATE staged SET line = read_order + 1")
        return
    total = con.execute("SELECT count(*) FROM staged").fetchone()[0]
    reject_lines = {line for line, _ in rejects}
    lines, candidate = [], 2
    while len(lines) < total:
        if candidate not in reject_lines:
            lines.append(candidate)
        candidate += 1
    con.register("line_numbers", pd.DataFrame({"read_order": range(1, total + 1), "line": lines}))
    con.execute("""CREATE OR REPLACE TEMP TABLE staged AS
                   SELECT s.*, l.line FROM staged s JOIN line_numbers l USING (read_order)""")
    con.unregister("line_numbers")


def _detect_date_format(con, column: str) -> str:
    iso, us = con.execute(f"""
        SELECT count(*) FILTER (WHERE regexp_full_match(trim({column}), '\\d{{4}}-\\d{{1,2}}-\\d{{1,2}}')),
               count(*) FILTER (WHERE regexp_full_match(trim({column}), '\\d{{1,2}}/\\d{{1,2}}/\\d{{4}}'))
        FROM staged""").fetchone()
    return "us" if us > iso else "iso"


def _fold_sql(expr: str) -> str:
    return (f"trim(regexp_replace(regexp_replace(lower(trim({expr})), '\\([^)]*\\)', ' ', 'g'), "
            f"'[^a-z0-9]+', '_', 'g'), '_')")


def _date_sql(expr: str, date_format: str) -> str:
    pattern = "%m/%d/%Y" if date_format == "us" else "%Y-%m-%d"
    return f"CAST(try_strptime(trim({expr}), '{pattern}') AS DATE)"


def _number_sql(column: str) -> str:
    """The parsed value of a numeric column, NULL when not a valid value."""
    low, high, whole = NUMERIC_RULES[column]
    value = f"TRY_CAST(trim({column}) AS DOUBLE)"
    checks = [f"isfinite({value})"]
    if low is not None:
        checks.append(f"{value} >= {low}")
    if high is not None:
        checks.append(f"{value} <= {high}")
    if whole:
        checks.append(f"{value} = floor({value})")
    cast = "INTEGER" if whole else "DOUBLE"
    return f"CASE WHEN {' AND '.join(checks)} THEN CAST({value} AS {cast}) END"


def _number_issue_sql(column: str) -> str:
    low, high, whole = NUMERIC_RULES[column]
    value = f"TRY_CAST(trim({column}) AS DOUBLE)"
    rng = (f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}")
    return f"""CASE WHEN {value} IS NULL OR NOT isfinite({value}) THEN 'not a number'
                    WHEN {value} < {low if low is not None else '-1e308'}
                      OR {value} > {high if high is not None else '1e308'}
                      THEN 'out of range (must be {rng})'
                    {"WHEN " + value + " <> floor(" + value + ") THEN 'not a whole number'" if whole else ""}
               END"""


# --------------------------------------------------------------------------
# sessions


def _load_sessions(con, plan, result: FileResult, ingest_id: int, name: str,
                   ingest_date: dt.date, fail_after: str | None) -> None:
    date_format = _detect_date_format(con, "visit_date")
    result.date_format = "MM/DD/YYYY" if date_format == "us" else "YYYY-MM-DD"
    _register_condition_map(con)
    fold_type = _fold_sql("visit_type")
    type_cases = " ".join(f"WHEN '{alias}' THEN '{target}'"
                          for alias, target in reference.VISIT_TYPE_ALIASES.items())
    type_cases += " " + " ".join(f"WHEN '{t}' THEN '{t}'" for t in reference.VISIT_TYPES)
    route_cases = " ".join(f"WHEN '{alias}' THEN '{target}'" for alias, target in ROUTE_ALIASES.items())
    numbers = ",\n".join(f"{_number_sql(c)} AS {c}__value" for c in NUMERIC_RULES)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE checked AS
        WITH copies AS (
            SELECT *, row_number() OVER (PARTITION BY row_hash ORDER BY line) AS copy_number
            FROM staged
        ),
        typed AS (
            SELECT *,
                   nullif(trim(patient_id), '') AS patient__value,
                   {_date_sql('visit_date', date_format)} AS visit_date__value,
                   CASE {fold_type} {type_cases} END AS visit_type__value,
                   nullif(trim(visit_id), '') AS visit_id__value,
                   {numbers},
                   CASE {_fold_sql('route')} {route_cases} END AS route__value,
                   CASE WHEN {_fold_sql('benzodiazepine')} IN ('yes', 'true', '1', 'y') THEN true
                        WHEN {_fold_sql('benzodiazepine')} IN ('no', 'false', '0', 'n') THEN false
                   END AS benzodiazepine__value
            FROM copies
        ),
        row_checks AS (
            SELECT *,
                   nullif(concat_ws('; ',
                       CASE WHEN patient__value IS NULL THEN 'missing patient_id' END,
                       CASE WHEN nullif(trim(visit_date), '') IS NULL THEN 'missing visit_date'
                            WHEN visit_date__value IS NULL
                              THEN 'visit_date ' || to_json(visit_date) || ' is not a date in this file''s format ({result.date_format})'
                            WHEN visit_date__value > $ingest_date
                              THEN 'visit_date ' || visit_date__value || ' is after the ingest date'
                       END,
                       CASE WHEN nullif(trim(visit_type), '') IS NULL THEN 'missing visit_type'
                            WHEN visit_type__value IS NULL
                              THEN 'unknown visit_type ' || to_json(visit_type)
                       END), '') AS row_problem,
                   CASE WHEN visit_id__value IS NOT NULL THEN 'id:' || visit_id__value
                        ELSE 'pt:' || patient__value || '|' || visit_date__value || '|' || visit_type__value
                   END AS natural_key
            FROM typed
            WHERE copy_number = 1
        )
        SELECT *,
               CASE WHEN row_problem IS NOT NULL THEN row_problem
                    WHEN count(*) FILTER (WHERE row_problem IS NULL)
                         OVER (PARTITION BY natural_key) > 1
                      THEN 'conflicting rows share the natural key '
                           || CASE WHEN visit_id__value IS NOT NULL THEN 'visit_id ' || visit_id__value
                                   ELSE 'patient_id, visit_date, visit_type' END
               END AS quarantine_reason
        FROM row_checks
    """, {"ingest_date": ingest_date})
    if fail_after == "checked":
        raise RuntimeError("injected failure after checking")

    result.rows_read = _count(con, "staged") + _count(con, "staged_rejects")
    result.duplicates_collapsed = _count(con, "staged") - _count(con, "checked")
    _quarantine(con, ingest_id, name, plan)
    result.rows_quarantined = _count(con, "checked", "quarantine_reason IS NOT NULL") \
        + _count(con, "staged_rejects")

    result.rows_replaced = con.execute("""
        SELECT count(*) FROM visits
        WHERE natural_key IN (SELECT natural_key FROM checked WHERE quarantine_reason IS NULL)
    """).fetchone()[0]
    con.execute("""DELETE FROM visits WHERE natural_key IN
                   (SELECT natural_key FROM checked WHERE quarantine_reason IS NULL)""")
    if fail_after == "delete":
        raise RuntimeError("injected failure after replacing rows")
    typed_values = ", ".join(f"c.{col}__value AS {col}"
                             for col in (*NUMERIC_RULES, "benzodiazepine"))
    con.execute(f"""
        INSERT INTO visits BY NAME
        SELECT c.natural_key, c.patient__value AS patient_id, c.visit_date__value AS visit_date,
               c.visit_type__value AS visit_type, c.visit_id__value AS visit_id,
               cm.condition, nullif(trim(c.condition), '') AS condition_raw,
               nullif(trim(c.site), '') AS site, c.route__value AS route,
               {typed_values},
               CASE WHEN {_fold_sql('c.adverse_event')} IN {NO_ADVERSE_EVENT} THEN NULL
                    ELSE nullif(lower(trim(c.adverse_event)), '') END AS adverse_event,
               $ingest_id AS ingest_id, c.line AS source_line
        FROM checked c
        LEFT JOIN condition_map cm ON cm.raw = nullif(trim(c.condition), '')
        WHERE c.quarantine_reason IS NULL
    """, {"ingest_id": ingest_id})
    result.rows_accepted = _count(con, "checked", "quarantine_reason IS NULL")

    issues = [(c, _number_issue_sql(c)) for c in NUMERIC_RULES]
    issues.append(("route", f"'unknown route (expected one of {', '.join(reference.ROUTES.values())})'"))
    issues.append(("benzodiazepine", "'not yes/no'"))
    selects = " UNION ALL ".join(
        f"""SELECT line, '{column}' AS column_name, {column} AS raw_value, {reason} AS reason
            FROM checked
            WHERE quarantine_reason IS NULL AND nullif(trim({column}), '') IS NOT NULL
              AND {column}__value IS NULL"""
        for column, reason in issues)
    con.execute(f"""INSERT INTO value_issues
                    SELECT $ingest_id, $file_name, line, column_name, raw_value, reason
                    FROM ({selects}) ORDER BY line, column_name""",
                {"ingest_id": ingest_id, "file_name": name})
    result.values_nulled = con.execute(
        "SELECT count(*) FROM value_issues WHERE ingest_id = ?", [ingest_id]).fetchone()[0]


def _register_condition_map(con) -> None:
    raw_values = [r[0] for r in con.execute(
        "SELECT DISTINCT nullif(trim(condition), '') FROM staged WHERE nullif(trim(condition), '') IS NOT NULL"
    ).fetchall()]
    frame = pd.DataFrame({"raw": raw_values,
                          "condition": [reference.map_condition(v) for v in raw_values]},
                         dtype=object)
    con.register("condition_map_frame", frame)
    con.execute("CREATE OR REPLACE TEMP TABLE condition_map (raw VARCHAR, condition VARCHAR)")
    con.execute("INSERT INTO condition_map SELECT * FROM condition_map_frame")
    con.unregister("condition_map_frame")


def _quarantine(con, ingest_id: int, name: str, plan: ColumnPlan) -> None:
    """Quarantined rows keep the raw values of their recognised columns only
    (never identifying or unknown columns, which could identify a person)."""
    pairs = ", ".join(f"{_literal(raw)}, {canonical}" for raw, canonical in plan.mapping.items())
    con.execute(f"""
        INSERT INTO quarantine
        SELECT $ingest_id, $file_name, line, CAST(json_object({pairs}) AS VARCHAR), quarantine_reason
        FROM checked WHERE quarantine_reason IS NOT NULL
        UNION ALL
        SELECT $ingest_id, $file_name, line, NULL, reason FROM staged_rejects
        ORDER BY 3
    """, {"ingest_id": ingest_id, "file_name": name})


# --------------------------------------------------------------------------
# medications


def _load_medications(con, plan, result: FileResult, ingest_id: int, name: str,
                      ingest_date: dt.date, fail_after: str | None) -> None:
    date_format = _detect_date_format(con, "date")
    result.date_format = "MM/DD/YYYY" if date_format == "us" else "YYYY-MM-DD"
    _register_drug_map(con)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE checked AS
        WITH copies AS (
            SELECT *, row_number() OVER (PARTITION BY row_hash ORDER BY line) AS copy_number
            FROM staged
        ),
        typed AS (
            SELECT *,
                   nullif(trim(patient_id), '') AS patient__value,
                   {_date_sql('date', date_format)} AS date__value,
                   nullif(trim(drug), '') AS drug__value,
                   TRY_CAST(trim(dose) AS DOUBLE) AS dose__parsed,
                   TRY_CAST(trim(doses_per_day) AS DOUBLE) AS doses_per_day__parsed
            FROM copies WHERE copy_number = 1
        )
        SELECT t.*, dm.drug AS generic, coalesce(dm.drug_class, 'unknown') AS drug_class,
               dm.factor, dm.text_dose,
               CASE WHEN isfinite(dose__parsed) AND dose__parsed >= 0 THEN dose__parsed END AS dose__value,
               CASE WHEN isfinite(doses_per_day__parsed) AND doses_per_day__parsed > 0
                    THEN doses_per_day__parsed END AS doses_per_day__value,
               nullif(concat_ws('; ',
                   CASE WHEN patient__value IS NULL THEN 'missing patient_id' END,
                   CASE WHEN nullif(trim(date), '') IS NULL THEN 'missing date'
                        WHEN date__value IS NULL
                          THEN 'date ' || to_json(date) || ' is not a date in this file''s format ({result.date_format})'
                        WHEN date__value > $ingest_date THEN 'date ' || date__value || ' is after the ingest date'
                   END,
                   CASE WHEN drug__value IS NULL THEN 'missing drug' END), '') AS quarantine_reason
        FROM typed t LEFT JOIN drug_map dm ON dm.raw = t.drug__value
    """, {"ingest_date": ingest_date})
    result.rows_read = _count(con, "staged") + _count(con, "staged_rejects")
    result.duplicates_collapsed = _count(con, "staged") - _count(con, "checked")
    _quarantine(con, ingest_id, name, plan)
    result.rows_quarantined = _count(con, "checked", "quarantine_reason IS NOT NULL") \
        + _count(con, "staged_rejects")
    if fail_after == "checked":
        raise RuntimeError("injected failure after checking")
    # A later reconciliation of the same patient and date replaces the earlier one.
    result.rows_replaced = con.execute("""
        SELECT count(*) FROM medications m WHERE EXISTS (
            SELECT 1 FROM checked c WHERE c.quarantine_reason IS NULL
              AND c.patient__value = m.patient_id AND c.date__value = m.record_date)
    """).fetchone()[0]
    con.execute("""
        DELETE FROM medications m WHERE EXISTS (
            SELECT 1 FROM checked c WHERE c.quarantine_reason IS NULL
              AND c.patient__value = m.patient_id AND c.date__value = m.record_date)
    """)
    con.execute("""
        INSERT INTO medications BY NAME
        SELECT patient__value AS patient_id, date__value AS record_date, drug__value AS drug_raw,
               generic AS drug, drug_class,
               coalesce(dose__value, CASE WHEN drug_class = 'opioid' THEN text_dose END) AS dose,
               nullif(trim(unit), '') AS unit, doses_per_day__value AS doses_per_day,
               CASE WHEN drug_class <> 'opioid' THEN NULL
                    WHEN generic = 'fentanyl transdermal'
                      THEN coalesce(dose__value, text_dose) * factor
                    ELSE coalesce(dose__value, text_dose) * doses_per_day__value * factor
               END AS mme,
               $ingest_id AS ingest_id, line AS source_line
        FROM checked WHERE quarantine_reason IS NULL
    """, {"ingest_id": ingest_id})
    result.rows_accepted = _count(con, "checked", "quarantine_reason IS NULL")
    con.execute("""
        INSERT INTO value_issues
        SELECT $ingest_id, $file_name, line, column_name, raw_value, reason FROM (
            SELECT line, 'drug' AS column_name, drug AS raw_value,
                   'not a known opioid or benzodiazepine: no MME factor, MME for this date unknown' AS reason
            FROM checked WHERE quarantine_reason IS NULL AND drug_class = 'unknown'
            UNION ALL
            SELECT line, 'dose', dose, 'not a non-negative number'
            FROM checked WHERE quarantine_reason IS NULL
              AND nullif(trim(dose), '') IS NOT NULL AND dose__value IS NULL
            UNION ALL
            SELECT line, 'doses_per_day', doses_per_day, 'not a positive number'
            FROM checked WHERE quarantine_reason IS NULL
              AND nullif(trim(doses_per_day), '') IS NOT NULL AND doses_per_day__value IS NULL
        ) ORDER BY line, column_name
    """, {"ingest_id": ingest_id, "file_name": name})
    result.values_nulled = con.execute(
        "SELECT count(*) FROM value_issues WHERE ingest_id = ?", [ingest_id]).fetchone()[0]


def _register_drug_map(con) -> None:
    raw_values = [r[0] for r in con.execute(
        "SELECT DISTINCT nullif(trim(drug), '') FROM staged WHERE nullif(trim(drug), '') IS NOT NULL"
    ).fetchall()]
    units = dict(con.execute(
        "SELECT nullif(trim(drug), ''), any_value(unit) FROM staged GROUP BY 1").fetchall())
    rows = []
    for raw in raw_values:
        if fold(raw) in ("none", "no_medications", "no_opioids_or_benzodiazepines", "nil"):
            rows.append((raw, None, "none", None, None))
            continue
        drug = reference.match_drug(raw, units.get(raw))
        if drug is None:
            rows.append((raw, None, "unknown", None, None))
        else:
            rows.append((raw, drug.generic, drug.drug_class, drug.factor,
                         reference.dose_from_text(raw)))
    frame = pd.DataFrame(rows, columns=["raw", "drug", "drug_class", "factor", "text_dose"])
    frame = frame.astype({"raw": object, "drug": object, "drug_class": object,
                          "factor": float, "text_dose": float})
    con.register("drug_map_frame", frame)
    con.execute("CREATE OR REPLACE TEMP TABLE drug_map AS SELECT * FROM drug_map_frame")
    con.unregister("drug_map_frame")


# --------------------------------------------------------------------------
# bookkeeping


def _next_ingest_id(con) -> int:
    return con.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM ingest_log").fetchone()[0]


def _log(con, ingest_id: int, name: str, digest: str | None, status: str, r: FileResult) -> None:
    con.execute("""
        INSERT INTO ingest_log VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    """, [ingest_id, name, r.export_kind, digest, status, r.rows_read, r.rows_accepted,
          r.rows_quarantined, r.duplicates_collapsed, r.values_nulled, r.rows_replaced,
          r.dropped_identifying_columns, r.unknown_columns, r.error])


def _log_refusal(con, name: str, result: FileResult) -> None:
    try:
        con.execute("BEGIN TRANSACTION")
        _log(con, _next_ingest_id(con), name, None, "refused", result)
        con.execute("COMMIT")
    except duckdb.Error:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass


def _drop_temp(con) -> None:
    for table in ("staged", "staged_rejects", "checked", "condition_map", "drug_map"):
        con.execute(f"DROP TABLE IF EXISTS temp.{table}")
    try:
        con.unregister("excel_import")
    except Exception:
        pass
    for table in ("reject_errors", "reject_scans"):
        try:
            con.execute(f"DROP TABLE IF EXISTS temp.{table}")
        except duckdb.Error:
            pass


def _count(con, table: str, where: str = "true") -> int:
    return con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def summary_json(summary: IngestSummary) -> str:
    return json.dumps(summary.to_dict(), indent=2, default=str)
