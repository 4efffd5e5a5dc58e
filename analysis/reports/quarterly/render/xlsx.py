"""The report as a workbook: one sheet per table and a Provenance sheet, every
text cell through :func:`analysis.core.formatting.safe_for_spreadsheet`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis.core import definitions, formatting, synthetic_mark
from analysis.reports.quarterly.tables import SUPPRESSED_TEXT, TableSpec, withheld_or_missing

if TYPE_CHECKING:   # annotations only
    from analysis.reports.quarterly.report import QuarterlyReport

_SHEET_NAMES = {"activity": "Activity by site", "due": "Results due", "cohort": "Cohort",
                "pchart": "p-chart", "opioids": "Opioids", "benzodiazepines": "Benzodiazepines",
                "safety": "Safety"}


def render_xlsx(report: QuarterlyReport) -> bytes:
    """One sheet per table and a Provenance sheet; text cannot run as a formula."""
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False, "strings_to_numbers": False})
    book.set_properties({"title": report.title, "comments": f"fingerprint {report.fingerprint}"})
    formats = {
        "title": book.add_format({"bold": True, "font_size": 14}),
        "note": book.add_format({"italic": True, "font_color": "#555555", "text_wrap": True,
                                 "valign": "top"}),
        "header": book.add_format({"bold": True, "bg_color": "#1F5F8B", "font_color": "#FFFFFF",
                                   "text_wrap": True, "valign": "top", "border": 1}),
        "text": book.add_format({"valign": "top"}),
        "n": book.add_format({"num_format": "#,##0"}),
        "count": book.add_format({"num_format": "#,##0"}),
        "rate": book.add_format({"num_format": "0.0%"}),
        "ci": book.add_format({"num_format": "0.0%"}),
        "change": book.add_format({"num_format": '+0.0" pp";-0.0" pp";0.0" pp"'}),
        "per100": book.add_format({"num_format": "0.00"}),
        "ci100": book.add_format({"num_format": "0.00"}),
        "suppressed": book.add_format({"italic": True, "font_color": "#A04000"}),
        "bold": book.add_format({"bold": True, "valign": "top"}),
        "wrap": book.add_format({"text_wrap": True, "valign": "top"}),
    }
    safe = formatting.neutralise_formula
    mark = synthetic_mark.xlsx_format(book) if report.synthetic else None
    for spec, frame in report.tables():
        sheet = book.add_worksheet(_SHEET_NAMES[spec.key])
        sheet.write_string(0, 0, safe(spec.title), formats["title"])
        sheet.merge_range(1, 0, 1, max(len(spec.columns) - 1, 1), safe(spec.note), formats["note"])
        sheet.set_row(1, 45)
        if mark:   # the empty row between the note and the table
            synthetic_mark.xlsx_mark(sheet, 2, mark, len(spec.columns) - 1)
        header_row = 3
        table = _xlsx_frame(spec, frame)
        widths = []
        for j, (column, label) in enumerate(zip(spec.columns, table.columns)):
            sheet.write_string(header_row, j, label, formats["header"])
            widths.append(min(max(len(label) * 0.9, 8), 40))
        for i, row in enumerate(table.itertuples(index=False), start=header_row + 1):
            for j, (column, value) in enumerate(zip(spec.columns, row)):
                if isinstance(value, str) and value == SUPPRESSED_TEXT:
                    sheet.write_string(i, j, SUPPRESSED_TEXT, formats["suppressed"])
                    widths[j] = max(widths[j], len(SUPPRESSED_TEXT))
                elif withheld_or_missing(value):
                    sheet.write_blank(i, j, None)
                elif isinstance(value, str):
                    sheet.write_string(i, j, value, formats["text"])
                    widths[j] = min(max(widths[j], len(value) + 1), 60)
                elif isinstance(value, (bool,)):
                    sheet.write_boolean(i, j, value)
                else:
                    fmt = formats.get(column.kind, formats["text"])
                    sheet.write_number(i, j, float(value), fmt)
                    widths[j] = max(widths[j], 9)
        for j, width in enumerate(widths):
            sheet.set_column(j, j, width)
        sheet.freeze_panes(header_row + 1, 0)
        if len(table):
            sheet.autofilter(header_row, 0, header_row + len(table), len(spec.columns) - 1)
    prov = formatting.safe_for_spreadsheet(report.provenance_frame())
    sheet = book.add_worksheet("Provenance")
    sheet.write_string(0, 0, safe(report.title), formats["title"])
    if mark:
        synthetic_mark.xlsx_mark(sheet, 1, mark, 1)
    sheet.write_string(2, 0, "Item", formats["header"])
    sheet.write_string(2, 1, "Value", formats["header"])
    for i, (item, value) in enumerate(prov.itertuples(index=False), start=3):
        sheet.write_string(i, 0, item, formats["bold"])
        sheet.write_string(i, 1, value, formats["wrap"])
    sheet.set_column(0, 0, 42)
    sheet.set_column(1, 1, 110)
    book.close()
    return buffer.getvalue()


def _xlsx_frame(spec: TableSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The raw values of a table with labelled columns, text made safe."""
    out = pd.DataFrame({c.label: frame[c.name].astype(object) if c.name in frame else None
                        for c in spec.columns})
    for c in spec.columns:
        if c.kind == "timepoint":
            out[c.label] = out[c.label].map(lambda v: definitions.TIMEPOINT_LABELS.get(v, v))
        elif c.kind == "definition":
            out[c.label] = out[c.label].map(
                lambda v: f"{definitions.DEFINITION_LABELS.get(v, v)} ({v})")
        elif c.kind == "change":
            out[c.label] = out[c.label].map(lambda v: None if withheld_or_missing(v) else 100 * float(v))
    return formatting.safe_for_spreadsheet(out)


def write_xlsx(report: QuarterlyReport, path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(render_xlsx(report))
    return path
