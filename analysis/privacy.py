"""What may leave the clinic: small-cell suppression of one table, and
spreadsheet-safe exports.

The small-cell rule is SPEC §4's, with one threshold
(:data:`analysis.audience.SMALL_CELL`) and one algorithm
(:class:`analysis.disclosure.Tables`): every count from 1 to 10 is withheld,
and further cells until every hidden cell and every sum of hidden cells in
a set is 0 or at least 11 (the old rule added a complement only when
exactly one cell was hidden, so two hidden cells of 3 and 4 were the total
minus the shown ones: 7).  :func:`suppress` applies it to one table's sets
of rows; an external publication of several linked tables (the quarterly
report, the claim check and memo) registers all its counts in one
:class:`~analysis.disclosure.Tables` instead.
"""

from __future__ import annotations

import pandas as pd

from analysis import disclosure
from analysis.audience import SMALL_CELL, SUPPRESSED  # noqa: F401 - SUPPRESSED: pages' text


def suppress(frame: pd.DataFrame, n_column: str = "n", value_columns: list[str] | None = None,
             group_columns: list[str] | None = None, total_label: str | None = None,
             label_column: str | None = None) -> pd.DataFrame:
    """Blank the values of small cells (and their complements) for outsiders.

    ``value_columns`` are blanked (set to None) where suppressed; ``n_column``
    itself is blanked too.  ``group_columns`` defines the sets within which
    complementary suppression applies (e.g. one timepoint × definition); each
    set adds up to its total: the row whose ``label_column`` equals
    ``total_label``, else a total the reader is assumed to know.  Groups of 0
    (no rate) are marked suppressed too.  Adds a boolean ``suppressed`` column.
    """
    out = frame.copy()
    if out.empty:
        out["suppressed"] = pd.Series(dtype=bool)
        return out
    value_columns = [c for c in (value_columns or []) if c in out.columns]
    counts = out[n_column].fillna(0).astype(int)
    hidden = counts < SMALL_CELL
    sets = out.groupby(group_columns, dropna=False, sort=False).groups.values() \
        if group_columns else [out.index]
    for index in sets:
        tables = disclosure.Tables()
        totals = [i for i in index if total_label and label_column
                  and out.at[i, label_column] == total_label]
        members = [i for i in index if i not in totals]
        for i in index:
            tables.cell(i, counts[i])
        for total in totals:
            if counts[total] == sum(counts[m] for m in members):
                tables.add_sum(total, members)
        if not totals and len(members) > 1:
            tables.cell("total", sum(counts[m] for m in members))
            tables.add_sum("total", members)
        for i in index:
            hidden[i] = bool(hidden[i]) or tables.hidden(i)
    out["suppressed"] = hidden
    for column in value_columns + [n_column]:
        out[column] = out[column].astype(object).where(~out["suppressed"], None)
    return out


SPREADSHEET_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value):
    """A cell that a spreadsheet would run as a formula is written as text."""
    if isinstance(value, str) and value.startswith(SPREADSHEET_TRIGGERS):
        return "'" + value
    return value


def safe_for_spreadsheet(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells (and headers) cannot run as formulas."""
    out = frame.copy()
    out.columns = [neutralise_formula(str(c)) for c in out.columns]
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(neutralise_formula)
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """Every CSV the product hands out: UTF-8, formulas neutralised."""
    return safe_for_spreadsheet(frame).to_csv(index=False).encode("utf-8")


def xlsx_bytes(sheets: dict[str, pd.DataFrame]) -> bytes:
    """A workbook of plain tables (one sheet per frame, named by its key),
    formulas neutralised and every string written as text."""
    import io

    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False})
    header = book.add_format({"bold": True})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    for name, frame in sheets.items():
        sheet = book.add_worksheet(str(neutralise_formula(name))[:31])
        safe = safe_for_spreadsheet(frame)
        for column, title in enumerate(safe.columns):
            sheet.write_string(0, column, str(title), header)
            sheet.set_column(column, column, max(12, len(str(title)) + 2))
        for row, values in enumerate(safe.itertuples(index=False), start=1):
            for column, value in enumerate(values):
                if value is None or (isinstance(value, float) and value != value):
                    continue
                if isinstance(value, str):
                    sheet.write_string(row, column, value)
                elif hasattr(value, "isoformat") and hasattr(value, "year"):
                    sheet.write_datetime(row, column, pd.Timestamp(value).to_pydatetime(), day)
                elif isinstance(value, bool):
                    sheet.write_boolean(row, column, value)
                else:
                    sheet.write_number(row, column, float(value))
    book.close()
    return buffer.getvalue()
