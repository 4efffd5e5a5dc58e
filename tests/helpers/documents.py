"""Readers of the documents the product writes (HTML, PDF, XLSX) and the
privacy checks run on them: every table's cells, the visible text, the
patient counts written in prose."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import openpyxl

from analysis.core import audience
from analysis.core.audience import SMALL_CELL


# --------------------------------------------------------------------------
# HTML tables and the small-cell check (SPEC §4)


class _Tables(HTMLParser):
    """Every <table> of an HTML document as rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.text: list[str] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse_html(text: str) -> _Tables:
    parser = _Tables()
    parser.feed(text)
    return parser


COUNT_COLUMNS = ("Patients",)
_SHOWN_COUNT = re.compile(r"\b(\d[\d,]*) (?:treated )?patients\b|\bof (?:all )?(\d[\d,]*)\b")


def counts_in_text(text: str) -> list[int]:
    """Patient counts written in prose or cells: "412 patients", "45% of 444"."""
    return [int((a or b).replace(",", "")) for a, b in _SHOWN_COUNT.findall(text)]


def assert_no_small_cells_in_table(header: list[str], rows: list[list[str]]) -> None:
    for row in rows:
        for name, value in zip(header, row):
            if name in COUNT_COLUMNS and value not in (audience.SUPPRESSED, "–"):
                # SPEC §4: no count from 1 to 10 (a 0 hides nobody)
                assert int(value.replace(",", "")) in (0,) \
                    or int(value.replace(",", "")) >= SMALL_CELL, (header, row)
        for value in row:
            for number in counts_in_text(value):
                assert number == 0 or number >= SMALL_CELL, (header, row)


def assert_memo_html_safe(html_text: str) -> _Tables:
    parsed = parse_html(html_text)
    assert parsed.tables, "the memo has tables"
    for table in parsed.tables:
        header, *rows = table
        assert_no_small_cells_in_table(header, rows)
    for number in counts_in_text(" ".join(parsed.text)):
        assert number == 0 or number >= SMALL_CELL
    assert "GEN0" not in html_text and "ANCHOR" not in html_text  # no patient ids
    return parsed


# --------------------------------------------------------------------------
# the visible text of each page, sheet and document


def single_spaced(text: str) -> str:
    """The text with every run of white space one space."""
    return re.sub(r"\s+", " ", text)


def pdf_pages(path: Path) -> list[str]:
    """The text of each page (poppler's pdftotext; pages end with a form feed)."""
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout
    pages = text.split("\f")
    if pages and not pages[-1].strip():
        pages = pages[:-1]
    return [single_spaced(p) for p in pages]


def xlsx_sheets(path: Path) -> dict[str, str]:
    book = openpyxl.load_workbook(path)
    return {sheet.title: single_spaced(" ".join(str(c.value) for row in sheet.iter_rows()
                                                for c in row if c.value is not None)
                                       + " " + (sheet.oddHeader.center.text or ""))
            for sheet in book.worksheets}


class _VisibleText(HTMLParser):
    """The text a browser draws: not the head, styles or scripts."""

    def __init__(self):
        super().__init__()
        self.skip = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("head", "style", "script", "title"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("head", "style", "script", "title"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_body_text(path: Path) -> str:
    parser = _VisibleText()
    parser.feed(path.read_text(encoding="utf-8"))
    return single_spaced(" ".join(parser.parts))
