"""Reading an export file: CSV and text (DuckDB's own reader, the encoding and
line checks first), Excel workbooks and Parquet, and its raw headers for the
dashboard's mapping form.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from analysis.ingest import limits
from analysis.ingest.ingest_log import IngestRefused, drop_temp_tables, file_fingerprint, sql_literal, refusal_reason

if TYPE_CHECKING:
    import pandas as pd

EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


def read_headers(con: duckdb.DuckDBPyConnection, path: str | os.PathLike) -> list[str]:
    """The raw headers of an export (for the dashboard's mapping form)."""
    path = Path(path)
    try:
        headers, _ = open_export(con, path, path.name)
    finally:
        drop_temp_tables(con)
    return headers


# --------------------------------------------------------------------------
# reading the file


def open_export(con, path: Path, name: str, is_utf8: bool | None = None,
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
        relation = f"read_parquet({sql_literal(str(path))})"
        return _described_headers(con, relation), relation
    if not _looks_like_text(path):
        raise IngestRefused(f"{name}: not a CSV, XLSX or Parquet export (binary content)")
    # DuckDB would not fail on a Latin-1 byte: it would reject the line, so
    # the encoding is decided from the bytes (UTF-8 when they are valid UTF-8).
    if is_utf8 is None or physical_lines is None:
        _, is_utf8, physical_lines = file_fingerprint(path)
    _check_text(path, name, physical_lines)
    encoding = "utf-8" if is_utf8 else "latin-1"
    # No null_padding: a line with too many or too few fields is rejected by
    # the reader (and quarantined as malformed) instead of widening the file.
    options = (f"all_varchar = true, header = true, encoding = '{encoding}', "
               "ignore_errors = true, null_padding = false")
    try:
        # The dialect and columns are detected once, here (DuckDB's sniffer
        # reads a sample of the file, a tenth of a second), and the reader
        # is given them rather than detecting them again.
        headers, dialect = _sniffed_dialect(con, path, options)
        relation = (f"read_csv({sql_literal(str(path))}, {options}, store_rejects = true, "
                    f"auto_detect = false, {dialect})")
        return _described_headers(con, relation), relation
    except duckdb.Error as error:
        raise IngestRefused(f"{name}: could not be read as CSV ({refusal_reason(error)})") from None


def _sniffed_dialect(con, path: Path, options: str) -> tuple[list[str], str]:
    """The columns DuckDB's sniffer finds in a CSV, and its dialect as
    ``read_csv`` options (every text quoted here: a header is the file's)."""
    (delimiter, quote, escape, new_line, comment, skip, columns), = con.execute(
        f"SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, Columns "
        f"FROM sniff_csv({sql_literal(str(path))}, {options})").fetchall()
    text = lambda value: sql_literal("" if value == "(empty)" else value)  # noqa: E731
    names = [column["name"] for column in columns]
    dialect = (f"delim = {text(delimiter)}, quote = {text(quote)}, escape = {text(escape)}, "
               f"new_line = {text(new_line)}, comment = {text(comment)}, skip = {int(skip)}, "
               "columns = {"
               + ", ".join(f"{sql_literal(n)}: 'VARCHAR'" for n in names) + "}")
    return names, dialect


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
        raise IngestRefused(f"{name}: could not be read as Parquet ({refusal_reason(error)})") from None
    limits.check_count(name, "columns", meta.num_columns, limits.MAX_COLUMNS)
    limits.check_count(name, "cells", meta.num_rows * meta.num_columns, limits.MAX_CELLS)
    limits.check_bytes(name, "its data uncompressed",
                       sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)),
                       limits.MAX_DATA_BYTES)


def _read_excel(path: Path, name: str) -> pd.DataFrame:
    """The first sheet as text, read as a stream: refused on the zip's
    declared sizes before any XML is parsed, then while reading as soon as
    it passes the column or cell limit.  (A member larger than declared is
    cut at its declared size by ``zipfile`` and fails its CRC check.)
    openpyxl and pandas are imported here: a CSV ingest needs neither."""
    import openpyxl
    import pandas as pd
    try:
        with zipfile.ZipFile(path) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as error:
        raise IngestRefused(f"{name}: could not be read as XLSX ({refusal_reason(error)})") from None
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
        raise IngestRefused(f"{name}: could not be read as XLSX ({refusal_reason(error)})") from None
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
