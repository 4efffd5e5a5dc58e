"""Small-cell suppression: the one place that decides what may leave the clinic.

SPEC §4: groups with n < 11 are "too few to report" and suppressed in every
view and export meant for people outside the clinical team.  Suppression is
complementary: when exactly one cell of a set is hidden, the next smallest
is hidden too, so the hidden one cannot be recovered from the total.
"""

from __future__ import annotations

import pandas as pd

MIN_CELL = 11
SUPPRESSED = "too few to report"
AUDIENCES = ("clinical", "external")


def suppress(frame: pd.DataFrame, n_column: str = "n", value_columns: list[str] | None = None,
             group_columns: list[str] | None = None, total_label: str | None = None,
             label_column: str | None = None, min_n: int = MIN_CELL) -> pd.DataFrame:
    """Blank the values of small cells (and their complements) for outsiders.

    ``value_columns`` are blanked (set to None) where suppressed; ``n_column``
    itself is blanked too.  ``group_columns`` defines the sets within which
    complementary suppression applies (e.g. one timepoint × definition).  A
    row whose ``label_column`` equals ``total_label`` is a total: it is never
    used as a complement but counts as the one that would reveal a lone
    hidden cell.  Adds a boolean ``suppressed`` column.
    """
    out = frame.copy()
    if out.empty:
        out["suppressed"] = pd.Series(dtype=bool)
        return out
    value_columns = [c for c in (value_columns or []) if c in out.columns]
    out["suppressed"] = out[n_column].fillna(0).astype(int) < min_n
    sets = out.groupby(group_columns, dropna=False, sort=False).groups.values() \
        if group_columns else [out.index]
    for index in sets:
        part = out.loc[index]
        members = part if not (total_label and label_column) else \
            part[part[label_column] != total_label]
        has_total = bool(total_label and label_column and (part[label_column] == total_label).any())
        hidden = members[members["suppressed"]]
        visible = members[~members["suppressed"]]
        # One hidden cell beside a total (or beside all the others) can be
        # worked out by subtraction: hide the smallest visible one as well.
        if len(hidden) == 1 and len(visible) >= 1 and (has_total or len(members) > 1):
            if hidden[n_column].fillna(0).sum() > 0 or has_total:
                smallest = visible[n_column].astype(float).idxmin()
                out.loc[smallest, "suppressed"] = True
    for column in value_columns + [n_column]:
        out[column] = out[column].astype(object).where(~out["suppressed"], None)
    return out


def is_external(audience: str) -> bool:
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {', '.join(AUDIENCES)}")
    return audience == "external"


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
