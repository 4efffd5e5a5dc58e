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

import codecs
import csv
import datetime as dt
import hashlib
import os
import re
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import duckdb
import pandas as pd

from analysis.access import keys
from analysis.ingest import limits
from analysis.storage import reference
from analysis.storage.reference import fold

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
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


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


@dataclass(frozen=True)
class ColumnPlan:
    """How a file's headers map to canonical columns."""
    export_kind: str
    mapping: dict[str, str]          # raw header -> canonical column
    dropped_identifying: list[str]   # raw headers never read
    unknown: list[str]               # raw headers reported, not used
    all_columns: list[str]           # every raw header, in file order
    pseudonymised: list[str] = field(default_factory=list)  # identifying patient key, as pseudonyms


# --------------------------------------------------------------------------
# public API


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
    from analysis.ingest import fhir, fhir_files
    exports = fhir_files.group_exports([Path(p) for p in paths])
    results = []
    for number, export in enumerate(exports, start=1):
        names = [(display_names or {}).get(str(p), p.name) for p in export]
        if progress:
            progress(number, len(exports), names[0] if len(names) == 1 else f"{len(names)} FHIR files")
        if fhir_files.is_fhir_path(export[0]):   # a FHIR export: one transaction for all its files
            results.append(fhir.ingest_export(con, export, name=names[0] if len(names) == 1 else None,
                                              ingest_date=ingest_date, codes_file=codes_file))
        else:
            results.append(ingest_file(con, export[0], ingest_date=ingest_date,
                                       column_map=column_map, alias_file=alias_file,
                                       display_name=names[0]))
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
    digest = None
    try:
        if not path.is_file():
            raise IngestRefused(f"{name}: no such file")
        limits.check_bytes(name, "the file", path.stat().st_size, limits.MAX_DATA_BYTES)
        digest, is_utf8, physical_lines = _fingerprint(path)
        already = con.execute(
            "SELECT count(*) FROM ingest_log WHERE sha256 = ? AND status = 'ingested'",
            [digest]).fetchall()[0][0]
        if already:
            result.status = "unchanged"
            return result
        if path.stat().st_size == 0:
            raise IngestRefused(f"{name}: the file is empty (no header row, no data)")
        headers, reader_sql = _open_export(con, path, name, is_utf8, physical_lines)
        plan = plan_columns(headers, name, column_map=column_map, alias_file=alias_file)
        result.export_kind = plan.export_kind
        result.dropped_identifying_columns = plan.dropped_identifying
        result.pseudonymised_columns = plan.pseudonymised
        result.unknown_columns = plan.unknown
        if plan.pseudonymised:
            _register_pseudonym_function(con)
        con.execute("BEGIN TRANSACTION")
        try:
            ingest_id = _next_ingest_id(con)
            raw_rows = _stage(con, plan, reader_sql, path, is_utf8, physical_lines, ingest_date)
            _step("stage", _fail_after)
            if plan.export_kind == "sessions":
                _load_sessions(con, plan, result, ingest_id, name, ingest_date, _fail_after,
                               raw_rows)
            elif plan.export_kind == "measurements":
                from analysis.ingest import long_format
                long_format.load(con, plan, result, ingest_id, name, ingest_date, _fail_after,
                                 alias_file)
            else:
                _load_medications(con, plan, result, ingest_id, name, ingest_date, _fail_after)
            _log(con, ingest_id, name, digest, "ingested", result)
            _step("logged", _fail_after)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        result.status = "ingested"
        return result
    except (IngestRefused, limits.LimitExceeded) as refusal:
        result.error = str(refusal)
    except duckdb.Error as error:
        result.error = f"{name}: could not be read as an export ({_reason(error)})"
    finally:
        _drop_temp(con)
    _log_refusal(con, name, digest, result)
    return result


def _step(name: str, fail_after: str | None) -> None:
    """A named point inside the ingest transaction, for the crash tests: a
    test makes the ingest fail there (``_fail_after``) or, with
    ``OUTCOMES_TEST_PAUSE_AT=<name>``, pause there so another process can
    SIGKILL it mid-transaction."""
    if fail_after == name:
        raise RuntimeError(f"injected failure after {name}")
    if os.environ.get("OUTCOMES_TEST_PAUSE_AT") == name:
        print(f"paused at {name}", file=sys.stderr, flush=True)
        time.sleep(120)


def plan_columns(headers: list[str], file_name: str, *,
                 column_map: Mapping[str, str] | None = None,
                 alias_file: str | None = None) -> ColumnPlan:
    """Map raw headers to canonical columns; refuse a file lacking a required one.

    Every header is checked for identifying words whatever it maps to (a
    bundled alias, the user's alias file or the mapping form).  An
    identifying column is dropped, except that when the file's only patient
    key is identifying (an MRN, a name) that column stays the key and its
    values are replaced by their keyed pseudonym (SPEC §2); a record number
    is preferred over a name.
    """
    from analysis.ingest import long_format
    folded = {h: fold(h) for h in headers}
    is_medication = any(
        reference.MEDICATION_ALIASES.get(f, f) == "drug" for f in folded.values()
    ) and not any(reference.canonical_column(f, alias_file) == "visit_type"
                  for f in folded.values())
    is_measurements = not is_medication and long_format.is_long_format(folded.values())
    mapping: dict[str, str] = {}
    dropped: list[str] = []
    unknown: list[str] = []
    identifying_keys: list[str] = []
    chosen = {raw: fold(target) for raw, target in (column_map or {}).items() if target}
    for header in headers:
        f = folded[header]
        if header in chosen:
            canonical = chosen[header]
        elif is_medication:
            canonical = _medication_column(f, alias_file)
        elif is_measurements:
            canonical = long_format.column(f, alias_file)
        else:
            canonical = reference.canonical_column(f, alias_file)
        if reference.is_identifying(header):
            (identifying_keys if canonical == "patient_id" else dropped).append(header)
        elif canonical is None or canonical in mapping.values():
            unknown.append(header)
        else:
            mapping[header] = canonical
    pseudonymised: list[str] = []
    if identifying_keys:
        if "patient_id" in mapping.values():
            dropped += identifying_keys
        else:
            key = sorted(identifying_keys, key=lambda h: not reference.is_record_number(h))[0]
            mapping[key] = "patient_id"
            pseudonymised.append(key)
            dropped += [h for h in identifying_keys if h != key]
        dropped.sort(key=headers.index)
        mapping = {h: mapping[h] for h in headers if h in mapping}
    kind = "medications" if is_medication else "measurements" if is_measurements else "sessions"
    required = {"medications": ("patient_id", "date", "drug"), "measurements": long_format.REQUIRED,
                "sessions": reference.REQUIRED_COLUMNS}[kind]
    missing = [c for c in required if c not in mapping.values()]
    if missing and looks_like_data(headers):
        # A headerless export: its "headers" are the first row's values
        # (a name, a birth date, a phone number), never repeated anywhere.
        raise IngestRefused(
            f"{file_name}: the first line looks like data, not column names; the export "
            f"needs a header row naming its columns ({', '.join(required)}, ...)")
    if missing:
        raise IngestRefused(
            f"{file_name}: missing required column(s) {', '.join(missing)}. "
            f"The file has: {', '.join(headers) or '(no columns)'}"
            + (f"; recognised: {', '.join(f'{r} -> {c}' for r, c in mapping.items())}"
               if mapping else "")
            + (f"; dropped as identifying: {', '.join(dropped)}" if dropped else ""))
    return ColumnPlan(kind, mapping, dropped, unknown, list(headers), pseudonymised)


_DATA_LIKE = (
    re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T].*)?"),   # a date or time stamp
    re.compile(r"[-+]?\d+([.,]\d+)?"),                         # a number
    re.compile(r"\+?[\d\s().-]{7,}"),                            # a phone number
    re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+"),                     # an e-mail address
)


def looks_like_data(headers: list[str]) -> bool:
    """Does a file's first line hold values (a date, a number, a phone
    number, an e-mail address) rather than column names?"""
    return any(pattern.fullmatch(str(h).strip()) for h in headers for pattern in _DATA_LIKE)


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


def _open_export(con, path: Path, name: str, is_utf8: bool | None = None,
                 physical_lines: int | None = None) -> tuple[list[str], str]:
    """Return the raw headers and a SQL relation that reads the file as text.

    The limits of :mod:`analysis.ingest.limits` are checked first, on what can be
    known without parsing (a zip's declared sizes, a Parquet footer, the
    header line and line count of a CSV).
    """
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        frame = _read_excel(path, name)
        con.register("excel_import", frame)
        return list(frame.columns), "excel_import"
    if suffix in PARQUET_SUFFIXES:
        _check_parquet(path, name)
        relation = f"read_parquet({_literal(str(path))})"
        return _described_headers(con, relation), relation
    if not _looks_like_text(path):
        raise IngestRefused(f"{name}: not a CSV, XLSX or Parquet export (binary content)")
    # DuckDB would not fail on a Latin-1 byte: it would reject the line, so
    # the encoding is decided from the bytes (UTF-8 when they are valid UTF-8).
    if is_utf8 is None or physical_lines is None:
        _, is_utf8, physical_lines = _fingerprint(path)
    _check_text(path, name, physical_lines)
    encoding = "utf-8" if is_utf8 else "latin-1"
    # No null_padding: a line with too many or too few fields is rejected by
    # the reader (and quarantined as malformed) instead of widening the file.
    relation = (f"read_csv({_literal(str(path))}, all_varchar = true, header = true, "
                f"encoding = '{encoding}', ignore_errors = true, store_rejects = true, "
                "null_padding = false, auto_detect = true)")
    try:
        return _described_headers(con, relation), relation
    except duckdb.Error as error:
        raise IngestRefused(f"{name}: could not be read as CSV ({_reason(error)})") from None


def _described_headers(con, relation: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


def _check_text(path: Path, name: str, physical_lines: int) -> None:
    """A CSV's header line, columns and cells, from its first line and its
    line count, before DuckDB's reader (whose sniffer would take minutes and
    gigabytes over 100,000 columns) sees it."""
    with open(path, "rb") as handle:
        head = handle.read(limits.MAX_LINE_BYTES + 1)
    ends = [i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0]
    if not ends and len(head) > limits.MAX_LINE_BYTES:
        raise limits.LimitExceeded(
            f"{name}: its first line (the header row) is longer than the limit of "
            f"{limits.size_text(limits.MAX_LINE_BYTES)}; nothing stored from it")
    header = head[:min(ends)] if ends else head
    unquoted = re.sub(rb'"[^"]*"', b"", header)  # a delimiter inside quotes splits nothing
    columns = max(unquoted.count(d) for d in (b",", b";", b"\t", b"|")) + 1
    limits.check_count(name, "columns", columns, limits.MAX_COLUMNS)
    limits.check_count(name, "cells", columns * max(physical_lines - 1, 0), limits.MAX_CELLS)


def _check_parquet(path: Path, name: str) -> None:
    """Columns, cells and uncompressed size from the Parquet footer alone."""
    import pyarrow.parquet as pq
    try:
        meta = pq.ParquetFile(path).metadata
    except Exception as error:  # noqa: BLE001 - pyarrow raises several kinds
        raise IngestRefused(f"{name}: could not be read as Parquet ({_reason(error)})") from None
    limits.check_count(name, "columns", meta.num_columns, limits.MAX_COLUMNS)
    limits.check_count(name, "cells", meta.num_rows * meta.num_columns, limits.MAX_CELLS)
    limits.check_bytes(name, "its data uncompressed",
                       sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)),
                       limits.MAX_DATA_BYTES)


def _read_excel(path: Path, name: str) -> pd.DataFrame:
    """The first sheet as text, read as a stream: refused on the zip's
    declared sizes before any XML is parsed, then while reading as soon as
    it passes the column or cell limit.  (A member larger than declared is
    cut at its declared size by ``zipfile`` and fails its CRC check.)"""
    import openpyxl
    try:
        with zipfile.ZipFile(path) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as error:
        raise IngestRefused(f"{name}: could not be read as XLSX ({_reason(error)})") from None
    limits.check_bytes(name, "its content once unzipped", unzipped, limits.MAX_UNZIPPED_BYTES)

    def as_text(value):
        if value is None or (isinstance(value, float) and value != value):
            return None
        if isinstance(value, dt.datetime):
            return value.strftime("%Y-%m-%d")
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    rows: list[list] = []
    width = cells = 0
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
        try:
            sheet = book.worksheets[0]
            sheet.reset_dimensions()  # the sheet's declared size is neither trusted nor padded to
            for row in sheet.iter_rows(values_only=True):
                cells += len(row)
                if len(row) > width:
                    width = len(row)
                    limits.check_count(name, "columns", width, limits.MAX_COLUMNS)
                limits.check_count(name, "cells", cells, limits.MAX_SPREADSHEET_CELLS)
                values = [as_text(v) for v in row]
                if any(v is not None for v in values):  # blank rows are skipped
                    rows.append(values)
        finally:
            book.close()
    except limits.LimitExceeded:
        raise
    except Exception as error:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
        raise IngestRefused(f"{name}: could not be read as XLSX ({_reason(error)})") from None
    if not rows:
        return pd.DataFrame()
    header = rows[0] + [None] * (width - len(rows[0]))
    names: list[str] = []
    for number, value in enumerate(header):
        base = value if value is not None else f"Unnamed: {number}"
        label, copy = base, 0
        while label in names:  # repeated headers: a, a.1, a.2 (as pandas names them)
            copy += 1
            label = f"{base}.{copy}"
        names.append(label)
    body = [r + [None] * (width - len(r)) for r in rows[1:]]
    return pd.DataFrame(body, columns=names, dtype=object)


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    return controls <= len(head) // 100


# --------------------------------------------------------------------------
# staging: raw text, canonical names, line numbers, row hash


def _stage(con, plan: ColumnPlan, reader_sql: str, path: Path | None = None,
           is_utf8: bool = True, physical_lines: int | None = None,
           ingest_date: dt.date | None = None) -> str:
    """Read the file once into ``staged_raw`` and define the view ``staged``
    (every row read, with its ``ordinal`` and its ``line``; the header is
    line 1).  Returns the SQL that reads the raw text of the recognised
    columns again, row by row, for the rare rows that need it later.

    Medication exports are staged as raw text.  Session exports are staged
    as typed values (see ``_session_select``), with the raw text kept only
    for rows that have a problem, so that no later step parses text again.
    """
    all_columns = ", ".join(_ident(h) for h in plan.all_columns)
    from analysis.ingest import long_format
    wanted = {"sessions": reference.CANONICAL_COLUMNS, "medications": reference.MEDICATION_COLUMNS,
              "measurements": long_format.COLUMNS}[plan.export_kind]
    by_canonical = {c: raw for raw, c in plan.mapping.items()}
    # A typed date or timestamp column (Parquet) is staged as its date.
    typed = {} if "read_csv" in reader_sql else dict(
        row[:2] for row in con.execute(f"DESCRIBE SELECT * FROM {reader_sql}").fetchall())

    def text(canonical: str) -> str:
        column = _ident(by_canonical[canonical])
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
    raw_rows = f"SELECT hash({all_columns}) AS row_hash, {selected} FROM {reader_sql}"
    if plan.export_kind == "sessions":
        staged_select = _session_select(raw_rows, ingest_date or dt.date.today())
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
        _assign_lines(con, _csv_rejects(con), path, is_utf8, physical_lines, ordinals, count)
    return f"SELECT row_number() OVER () AS ordinal, * FROM ({raw_rows})"


def _session_select(raw_rows: str, ingest_date: dt.date) -> str:
    """One row per session row read: its hash and typed values, the date
    parsed both ways (the file's format is decided once all is read; a
    failed parse is costly, so each format is tried only on text that has
    its separator, without which it cannot match), and
    ``raw``, a JSON object of the raw text, for rows with a visible problem."""
    types = {**{t: t for t in reference.VISIT_TYPES}, **reference.VISIT_TYPE_ALIASES}
    type_sql = _category_sql("visit_type", {k: _literal(v) for k, v in types.items()})
    route_sql = _category_sql("route", {k: _literal(v) for k, v in ROUTE_ALIASES.items()})
    benzo_sql = _category_sql("benzodiazepine", {k: "true" if v else "false"
                                                 for k, v in reference.BOOLEAN_VALUES.items()})
    # (TRY_CAST itself ignores surrounding blanks.)
    parsed = ", ".join(f"TRY_CAST({c} AS DOUBLE) AS {c}__number" for c in NUMERIC_RULES)
    numbers = ", ".join(f"{_checked_number_sql(c)} AS {c}__value" for c in NUMERIC_RULES)
    checked_columns = [*NUMERIC_RULES, "route", "benzodiazepine"]
    any_issue = " OR ".join(f"({c}__value IS NULL AND nullif(trim({c}), '') IS NOT NULL)"
                            for c in checked_columns)
    no_event = ", ".join(_literal(v) for v in reference.NO_ADVERSE_EVENT)
    raw_json = "json_object(" + ", ".join(
        f"'{c}', {c}" for c in reference.CANONICAL_COLUMNS) + ")"
    return f"""
        SELECT row_hash, patient__value, visit_id__value, visit_type__value,
               visit_date__iso, visit_date__us,
               nullif(trim(condition), '') AS condition__value,
               nullif(trim(site), '') AS site__value,
               nullif(trim(provider), '') AS provider__value,
               route__value, benzodiazepine__value,
               CASE WHEN nullif(trim(adverse_event), '') IS NULL THEN NULL
                    WHEN lower(trim(adverse_event)) IN ({no_event}) THEN NULL
                    WHEN {_fold_sql('adverse_event')} IN ({no_event}) THEN NULL
                    ELSE lower(trim(adverse_event)) END AS adverse_event__value,
               {', '.join(f'{c}__value' for c in NUMERIC_RULES)},
               CASE WHEN patient__value IS NULL OR visit_type__value IS NULL
                      OR coalesce(visit_date__iso, visit_date__us) IS NULL
                      OR coalesce(visit_date__iso, visit_date__us) > DATE '{ingest_date.isoformat()}'
                      OR {any_issue}
                    THEN {raw_json} END AS raw
        FROM (
            SELECT *, {numbers}
            FROM (
                SELECT *,
                       nullif(trim(patient_id), '') AS patient__value,
                       nullif(trim(visit_id), '') AS visit_id__value,
                       {type_sql} AS visit_type__value,
                       CASE WHEN contains(visit_date, '-')
                            THEN {_date_sql('visit_date', 'iso')} END AS visit_date__iso,
                       CASE WHEN contains(visit_date, '/')
                            THEN {_date_sql('visit_date', 'us')} END AS visit_date__us,
                       {route_sql} AS route__value,
                       {benzo_sql} AS benzodiazepine__value,
                       {parsed}
                FROM ({raw_rows})))"""


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
            con.register("line_map", pd.DataFrame({
                "ordinal": range(1, staged_rows + 1), "physical_line": accepted}))
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE staged_lines AS
                SELECT m.physical_line AS line, s.*
                FROM ({ordinals}) s JOIN line_map m USING (ordinal)""")
            con.unregister("line_map")
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
            f"SELECT Delimiter, Quote, Escape FROM sniff_csv({_literal(str(path))}, "
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


def _detect_date_format(con, column: str) -> str:
    """ISO or US: whichever shape most of the file's dates have."""
    iso, us = con.execute(f"""
        SELECT count(*) FILTER (WHERE trim({column}) LIKE '____-%-%'),
               count(*) FILTER (WHERE trim({column}) LIKE '%/%/____')
        FROM staged""").fetchall()[0]
    return "us" if us > iso else "iso"


def _fold_sql(expr: str) -> str:
    return (f"trim(regexp_replace(regexp_replace(lower(trim({expr})), '\\([^)]*\\)', ' ', 'g'), "
            f"'[^a-z0-9]+', '_', 'g'), '_')")


def _category_sql(expr: str, cases: Mapping[str, str]) -> str:
    """Fold a category value and map it (``cases``: folded value -> SQL
    value); NULL when unknown.  A value already written in its folded form
    (the usual case) skips the regular expressions."""
    when = " ".join(f"WHEN {_literal(folded)} THEN {value}" for folded, value in cases.items())
    return f"CASE lower(trim({expr})) {when} ELSE (CASE {_fold_sql(expr)} {when} END) END"


def _date_sql(expr: str, date_format: str) -> str:
    pattern = "%m/%d/%Y" if date_format == "us" else "%Y-%m-%d"
    return f"CAST(try_strptime(trim({expr}), '{pattern}') AS DATE)"


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


# The typed values a session row stores: two rows with equal ones are
# duplicates, and two rows sharing a natural key with different ones conflict.
_STORED_VALUES = ("patient__value", "visit_id__value", "visit_type__value", "visit_date__value",
                  "condition__value", "site__value", "provider__value", "route__value",
                  "benzodiazepine__value", "adverse_event__value",
                  *(f"{c}__value" for c in NUMERIC_RULES))


def _load_sessions(con, plan, result: FileResult, ingest_id: int, name: str,
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
               CASE WHEN visit_id__value IS NOT NULL THEN 'id:' || visit_id__value
                    ELSE 'pt:' || patient__value || '|' || visit_date__value || '|' || visit_type__value
               END AS natural_key,
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
              if _count(con, "shared_keys") else "(SELECT * FROM typed WHERE false)")
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
    dup_count = _count(con, "dup_rows")
    clash_count = _count(con, "clash_keys")
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW kept AS
        SELECT t.*, {'c.key_hash IS NOT NULL' if clash_count else 'false'} AS clashes
        FROM typed t
        {'LEFT JOIN clash_keys c ON c.key_hash = t.key_hash' if clash_count else ''}
        {'LEFT JOIN dup_rows d ON d.value_hash = t.value_hash' if dup_count else ''}
        {'WHERE d.value_hash IS NULL OR d.first_line = t.line' if dup_count else ''}""")
    con.execute("CREATE OR REPLACE TEMP VIEW accepted AS SELECT * FROM kept WHERE row_ok AND NOT clashes")
    _step("checked", fail_after)

    result.rows_read = _count(con, "staged") + _count(con, "staged_rejects")
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
    missing = _count(con, "problem_rows", "raw IS NULL")
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
    pairs = ", ".join(f"{_literal(raw)}, {canonical}" for raw, canonical in plan.mapping.items())
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
    _step("delete", fail_after)
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
    issues = [(c, _number_issue_sql(c)) for c in NUMERIC_RULES]
    issues.append(("route", f"'unknown route (expected one of {', '.join(reference.ROUTES.values())})'"))
    issues.append(("benzodiazepine", "'not yes/no'"))
    selects = " UNION ALL ".join(
        f"""SELECT line, '{column}' AS column_name, {column} AS raw_value, {reason} AS reason
            FROM {problems}
            WHERE row_ok AND NOT clashes
              AND nullif(trim({column}), '') IS NOT NULL AND {column}__value IS NULL"""
        for column, reason in issues)
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
        CREATE OR REPLACE TEMP TABLE checked_rows AS
        WITH copies AS (
            SELECT *, row_number() OVER (PARTITION BY row_hash ORDER BY line) AS copy_number
            FROM staged
        ),
        typed AS (
            SELECT *,
                   nullif(trim(patient_id), '') AS patient__value,
                   {_date_sql('date', date_format)} AS date__value,
                   nullif(trim(drug), '') AS drug__value,
                   {reference.unit_fold_sql('unit')} AS unit__folded,
                   TRY_CAST(trim(dose) AS DOUBLE) AS dose__parsed,
                   TRY_CAST(trim(doses_per_day) AS DOUBLE) AS doses_per_day__parsed
            FROM copies WHERE copy_number = 1
        )
        SELECT t.*, dm.drug AS generic, coalesce(dm.drug_class, 'unknown') AS drug_class,
               dm.factor, dm.text_dose, dm.drug_unit,
               CASE WHEN isfinite(dose__parsed) AND dose__parsed >= 0 THEN dose__parsed END AS dose__value,
               CASE WHEN isfinite(doses_per_day__parsed) AND doses_per_day__parsed > 0
                    THEN doses_per_day__parsed END AS doses_per_day__value,
               nullif(concat_ws('; ',
                   CASE WHEN patient__value IS NULL THEN 'missing patient_id' END,
                   CASE WHEN nullif(trim(date), '') IS NULL THEN 'missing date'
                        WHEN date__value IS NULL
                          THEN 'date is not a date in this file''s format ({result.date_format})'
                        WHEN date__value > $ingest_date THEN 'date is after the ingest date'
                   END,
                   CASE WHEN drug__value IS NULL THEN 'missing drug' END), '') AS quarantine_reason
        FROM typed t LEFT JOIN drug_map dm
          ON dm.raw = t.drug__value AND dm.unit IS NOT DISTINCT FROM t.unit__folded
    """, {"ingest_date": ingest_date})
    # The dose in the drug's reference unit (mg; mcg/hr for a patch), NULL
    # when the row's unit cannot be converted for it; without a dose, the
    # strength its label names ("Percocet 5/325 mg": 5 mg).
    dose = reference.dose_sql("dose__value", "unit__folded", "drug_unit", "text_dose", "drug_unit")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE checked AS
        SELECT *, CASE WHEN drug_class <> 'opioid' THEN NULL
                       WHEN dose__value IS NULL THEN text_dose
                       ELSE {dose} END AS reference_dose
        FROM checked_rows""")
    result.rows_read = _count(con, "staged") + _count(con, "staged_rejects")
    result.duplicates_collapsed = _count(con, "staged") - _count(con, "checked")
    _quarantine(con, ingest_id, name, plan)
    result.rows_quarantined = _count(con, "checked", "quarantine_reason IS NOT NULL") \
        + _count(con, "staged_rejects")
    _step("checked", fail_after)
    # A later reconciliation of the same patient and date replaces the earlier one.
    result.rows_replaced = con.execute("""
        SELECT count(*) FROM medications m WHERE EXISTS (
            SELECT 1 FROM checked c WHERE c.quarantine_reason IS NULL
              AND c.patient__value = m.patient_id AND c.date__value = m.record_date)
    """).fetchall()[0][0]
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
                    WHEN drug_unit = 'mcg/hr' THEN reference_dose * factor
                    ELSE reference_dose * doses_per_day__value * factor
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
            SELECT line, 'unit', unit,
                   'a dose unit that cannot be converted to ' || drug_unit
                   || ' for this drug: MME for this date unknown'
            FROM checked WHERE quarantine_reason IS NULL AND drug_class = 'opioid'
              AND dose__value IS NOT NULL AND reference_dose IS NULL
            UNION ALL
            SELECT line, 'doses_per_day', doses_per_day, 'not a positive number'
            FROM checked WHERE quarantine_reason IS NULL
              AND nullif(trim(doses_per_day), '') IS NOT NULL AND doses_per_day__value IS NULL
        ) ORDER BY line, column_name
    """, {"ingest_id": ingest_id, "file_name": name})
    result.values_nulled = con.execute(
        "SELECT count(*) FROM value_issues WHERE ingest_id = ?", [ingest_id]).fetchall()[0][0]


def _register_drug_map(con) -> None:
    """What each distinct (drug text, dose unit) of the file is: generic name,
    class, MME factor, the unit the factor applies to, and the strength its
    label names.  By pair, not by drug text alone: plain "fentanyl" is the
    patch only on a row whose unit is mcg/hr."""
    pairs = con.execute(f"""
        SELECT DISTINCT nullif(trim(drug), '') AS raw, {reference.unit_fold_sql('unit')} AS unit
        FROM staged WHERE nullif(trim(drug), '') IS NOT NULL""").fetchall()
    rows = []
    for raw, unit in pairs:
        if fold(raw) in ("none", "no_medications", "no_opioids_or_benzodiazepines", "nil"):
            rows.append((raw, unit, None, "none", None, None, None))
            continue
        drug = reference.match_drug(raw, unit)
        if drug is None:
            rows.append((raw, unit, None, "unknown", None, None, None))
        else:
            rows.append((raw, unit, drug.generic, drug.drug_class, drug.factor, drug.dose_unit,
                         reference.dose_from_text(raw)))
    frame = pd.DataFrame(rows, columns=["raw", "unit", "drug", "drug_class", "factor",
                                        "drug_unit", "text_dose"])
    frame = frame.astype({"raw": object, "unit": object, "drug": object, "drug_class": object,
                          "factor": float, "drug_unit": object, "text_dose": float})
    con.register("drug_map_frame", frame)
    con.execute("CREATE OR REPLACE TEMP TABLE drug_map AS SELECT * FROM drug_map_frame")
    con.unregister("drug_map_frame")


# --------------------------------------------------------------------------
# bookkeeping


def _next_ingest_id(con) -> int:
    return con.execute("SELECT coalesce(max(ingest_id), 0) + 1 FROM ingest_log").fetchall()[0][0]


def _log(con, ingest_id: int, name: str, digest: str | None, status: str, r: FileResult) -> None:
    con.execute("""
        INSERT INTO ingest_log (ingest_id, file_name, export_kind, sha256, ingested_at, status,
                                rows_read, rows_accepted, rows_quarantined, duplicates_collapsed,
                                values_nulled, rows_replaced, dropped_identifying_columns,
                                unknown_columns, message, pseudonymised_columns)
        VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    """, [ingest_id, name, r.export_kind, digest, status, r.rows_read, r.rows_accepted,
          r.rows_quarantined, r.duplicates_collapsed, r.values_nulled, r.rows_replaced,
          r.dropped_identifying_columns, r.unknown_columns, r.error, r.pseudonymised_columns])


def _log_refusal(con, name: str, digest: str | None, result: FileResult) -> None:
    try:
        con.execute("BEGIN TRANSACTION")
        _log(con, _next_ingest_id(con), name, digest, "refused", result)
        con.execute("COMMIT")
    except duckdb.Error:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass


PSEUDONYM_FUNCTION = "clinic_pseudonym"


def _register_pseudonym_function(con) -> None:
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

    _remove_pseudonym_function(con)
    con.create_function(PSEUDONYM_FUNCTION, pseudonymise, [sqltypes.VARCHAR], sqltypes.VARCHAR,
                        type="arrow", null_handling="special", side_effects=False)


def _remove_pseudonym_function(con) -> None:
    try:
        con.remove_function(PSEUDONYM_FUNCTION)
    except Exception:  # noqa: BLE001 - not registered on this connection
        pass


def _drop_temp(con) -> None:
    for view in ("accepted", "kept", "typed", "staged"):
        con.execute(f"DROP VIEW IF EXISTS temp.{view}")
    for table in ("lf_measures", "lf_values", "lf_new_days", "lf_new_visits", "lf_targets", "lf_agg",
                  "staged_raw", "staged_numbered", "staged_lines", "staged_rejects", "checked",
                  "dup_rows", "shared_keys", "clash_keys", "problem_rows", "condition_map", "drug_map",
                  "checked_rows"):
        con.execute(f"DROP TABLE IF EXISTS temp.{table}")
    try:
        con.unregister("excel_import")
    except Exception:
        pass
    _remove_pseudonym_function(con)
    for table in ("reject_errors", "reject_scans"):
        try:
            con.execute(f"DROP TABLE IF EXISTS temp.{table}")
        except duckdb.Error:
            pass


def _count(con, table: str, where: str = "true") -> int:
    # fetchall: a result left unfinished makes DuckDB refuse a later register()
    return con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchall()[0][0]


def _fingerprint(path: Path) -> tuple[str, bool, int]:
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


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")


def _reason(error: BaseException) -> str:
    """A reader's error for a refusal message: its first line, with anything
    quoted in it (a value, a path) left out, so no row's value is echoed."""
    text = str(error).strip().splitlines()
    first = _QUOTED.sub("…", text[0]) if text else ""
    return first.split(" Original Line")[0] or type(error).__name__
