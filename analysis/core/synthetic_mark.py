"""The mark every output made from invented data carries (issue 19).

A report, memo, summary or table download (CSV, XLSX) made from the demo clinic (or from any database
marked synthetic, :attr:`analysis.storage.store.Snapshot.synthetic`) says so on every
page and sheet, so that a document about invented patients cannot pass for a
clinic's results once it leaves the dashboard.  The writers ask this module
how to draw the mark in their format; the text is written once, here.
"""

from __future__ import annotations

import csv
import html
import io

#: The words of the mark.
TEXT = "Synthetic demo data: invented patients, not a clinic's results. Do not quote."
#: Red on pale yellow: seen at a glance, readable when printed in grey.
COLOUR = "#a61b12"
FILL = "#fff3c4"

#: HTML: a banner at the top of the document, and (printing) the same words in
#: the top margin of every printed page (CSS page margin boxes).
HTML_STYLE = (
    f".synthetic-mark{{background:{FILL};border:2px solid {COLOUR};color:{COLOUR};"
    "font-weight:700;padding:.45rem .8rem;margin:0 0 1rem;border-radius:4px}"
    f"@page{{@top-center{{content:\"{TEXT}\";color:{COLOUR};font-weight:700;"
    "font-size:9pt}}"
)


def html_banner() -> str:
    return f'<p class="synthetic-mark" role="note">{html.escape(TEXT)}</p>'


def rgb(colour: str = COLOUR) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def pdf_header(pdf, family: str, top: float = 4.0) -> None:
    """Draw the mark across the top margin of the current fpdf2 page (call it
    from ``FPDF.header``: every page gets it; fpdf2 restores the font and
    colours after the header).  The cursor is restored."""
    x, y = pdf.get_x(), pdf.get_y()
    pdf.set_xy(pdf.l_margin, top)
    pdf.set_font(family, "B", 8.5)
    pdf.set_text_color(*rgb())
    pdf.set_fill_color(*rgb(FILL))
    pdf.set_draw_color(*rgb())
    pdf.cell(pdf.w - pdf.l_margin - pdf.r_margin, 5.5, TEXT, border=1, fill=True, align="C")
    pdf.set_xy(x, y)


def xlsx_format(book):
    """The cell format of the mark in an XLSX workbook."""
    return book.add_format({"bold": True, "font_color": COLOUR, "bg_color": FILL,
                            "border": 1, "border_color": COLOUR})


def xlsx_mark(sheet, row: int, fmt, last_column: int = 6) -> None:
    """Write the mark across ``row`` of a worksheet, and into its printed
    header, so that it is on the sheet on screen and on paper."""
    sheet.merge_range(row, 0, row, max(last_column, 1), TEXT, fmt)
    sheet.set_header(f"&C&\"Bold\"&KA61B12{TEXT}")


def csv_mark(data: bytes) -> bytes:
    """A CSV made from invented data: the mark is its first line, a row of
    one cell (A1 when a spreadsheet opens it), above the header."""
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow([TEXT])
    return line.getvalue().encode("utf-8") + data
