"""Numbers formatted for people: "64% (95% CI 60–68%)", not 0.6403; and tables
written for spreadsheets (CSV, XLSX) so that no cell runs as a formula."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING

from analysis.core import synthetic_mark

if TYPE_CHECKING:
    import pandas as pd

# Plain Python values, told missing or not without pandas: a one-off command
# (``claim --json``) formats numbers and never imports pandas (~0.5 s).
_PLAIN = (str, int, bool, dt.date, dt.datetime, dt.timedelta)


def missing(value) -> bool:
    """A value that is not there: None, NaN, NaT or pandas' NA (a count
    suppressed or unknown).  Text, even empty, is there."""
    if value is None:
        return True
    if type(value) is float:
        return math.isnan(value)
    if type(value) in _PLAIN:
        return False
    import pandas as pd   # numpy and pandas values (NaT, NA, arrays) as pandas sees them
    if isinstance(value, str) or not pd.api.types.is_scalar(value):
        return False   # a list or an array is not one missing value
    return bool(pd.isna(value))


def percent(value, digits: int = 0) -> str:
    """0.6403 -> "64%"; None -> "–".  A rate above 0 never reads "0%": it
    gets the decimals it needs (0.002 -> "0.2%", 0.0004 -> "0.04%", below
    that "<0.01%"), so a grid cell and a sentence about the same rate agree."""
    if missing(value):
        return "–"
    text = f"{100 * value:.{digits}f}"
    if value != 0 and float(text) == 0:
        if digits >= 2:
            return f"<{10 ** -digits:.{digits}f}%" if value > 0 else f"{text}%"
        return percent(value, digits + 1)
    return f"{text}%"


def rate_with_ci(rate, ci_low, ci_high, digits: int = 0) -> str:
    """"64% (95% CI 60–68%)"; "–" when there is no rate."""
    if missing(rate):
        return "–"
    if not missing(ci_high) and ci_high < 0.01 and digits == 0:
        digits = 1  # "0.2% (95% CI 0.1–0.8%)", not "0% (95% CI 0–0%)"
    while rate != 0 and digits < 2 and float(f"{100 * rate:.{digits}f}") == 0:
        digits += 1  # the interval in the decimals the rate needs (see percent)
    if missing(ci_low) or missing(ci_high):
        return percent(rate, digits)
    return (f"{percent(rate, digits)} (95% CI {100 * ci_low:.{digits}f}–"
            f"{100 * ci_high:.{digits}f}%)")


def count(value) -> str:
    """12345 -> "12,345"."""
    return "–" if missing(value) else f"{int(value):,}"


def number(value, digits: int = 1) -> str:
    return "–" if missing(value) else f"{value:.{digits}f}"


def signed(value, digits: int = 1, unit: str = "") -> str:
    """A change with its sign: "+1.5", "−2.0 points"."""
    if missing(value):
        return "–"
    text = f"{abs(value):.{digits}f}"
    sign = "−" if value < 0 else ("+" if value > 0 else "±")
    return f"{sign}{text}{(' ' + unit) if unit else ''}"


def change_with_ci(value, low, high, digits: int = 1, unit: str = "points") -> str:
    """"−3.0 points (95% CI −3.0 to −2.5)"; the interval left out when there
    is none; "–" without a value."""
    if missing(value):
        return "–"
    text = signed(value, digits, unit)
    if missing(low) or missing(high):
        return text

    def end(v) -> str:   # an interval end of 0 is "0.0", not "±0.0"
        return f"{0:.{digits}f}" if round(v, digits) == 0 else signed(v, digits)
    return f"{text} (95% CI {end(low)} to {end(high)})"


def p_value(value) -> str:
    if missing(value):
        return "–"
    if value < 0.001:
        return "<0.001"
    return f"{value:.3f}"


def p_text(p: float | None) -> str:
    """"< 0.001", "= 0.042" or "–" (a p-value after its label)."""
    if p is None:
        return "–"
    text = p_value(p)
    return text.replace("<", "< ") if text.startswith("<") else f"= {text}"


def percent_range(low, high) -> str:
    """"60–68%" for a CI; "–" when either end is missing."""
    if percent(low) == "–" or percent(high) == "–":
        return "–"
    return f"{percent(low)}–{percent(high)}"


def month_year(day: dt.date | None) -> str:
    return "–" if day is None else day.strftime("%B %Y")


def long_date(day: dt.date | None) -> str:
    return "–" if day is None else f"{day.day} {day.strftime('%B %Y')}"


def short_date(day: dt.date | None) -> str:
    """"27 Nov 2024": a date that fits a table column."""
    return "–" if day is None else f"{day.day} {day.strftime('%b %Y')}"


def short_period(start: dt.date | None, end: dt.date | None) -> str:
    """"25 Apr – 23 May 2024"; the year once when both ends share it."""
    if start is None or end is None:
        return "–"
    if start.year == end.year:
        return f"{start.day} {start.strftime('%b')} – {short_date(end)}"
    return f"{short_date(start)} – {short_date(end)}"


# --------------------------------------------------------------------------
# spreadsheet-safe exports


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


def csv_bytes(frame: pd.DataFrame, synthetic: bool = False) -> bytes:
    """Every CSV the product hands out: UTF-8, formulas neutralised; made
    from invented data (the demo), its first line says so
    (:func:`analysis.core.synthetic_mark.csv_mark`)."""
    data = safe_for_spreadsheet(frame).to_csv(index=False).encode("utf-8")
    return synthetic_mark.csv_mark(data) if synthetic else data


def xlsx_bytes(sheets: dict[str, pd.DataFrame], synthetic: bool = False) -> bytes:
    """A workbook of plain tables (one sheet per frame, named by its key),
    formulas neutralised and every string written as text; made from
    invented data, each sheet's first row (and printed header) says so."""
    import io

    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False})
    header = book.add_format({"bold": True})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    mark = synthetic_mark.xlsx_format(book) if synthetic else None
    top = 1 if synthetic else 0   # the table starts below the mark
    for name, frame in sheets.items():
        sheet = book.add_worksheet(str(neutralise_formula(name))[:31])
        safe = safe_for_spreadsheet(frame)
        if mark is not None:
            synthetic_mark.xlsx_mark(sheet, 0, mark, len(safe.columns) - 1)
        for column, title in enumerate(safe.columns):
            sheet.write_string(top, column, str(title), header)
            sheet.set_column(column, column, max(12, len(str(title)) + 2))
        for row, values in enumerate(safe.itertuples(index=False), start=top + 1):
            for column, value in enumerate(values):
                if value is None or (isinstance(value, float) and value != value):
                    continue
                if isinstance(value, str):
                    sheet.write_string(row, column, value)
                elif hasattr(value, "isoformat") and hasattr(value, "year"):
                    import pandas as pd
                    sheet.write_datetime(row, column, pd.Timestamp(value).to_pydatetime(), day)
                elif isinstance(value, bool):
                    sheet.write_boolean(row, column, value)
                else:
                    sheet.write_number(row, column, float(value))
    book.close()
    return buffer.getvalue()
