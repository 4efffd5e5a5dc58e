"""Every file made from the demo clinic says it is synthetic, on every page
and sheet (issue 19): the quarterly report (HTML, XLSX, PDF, both
audiences), the claim memo (HTML, PDF) and the director's one-page summary,
made the way a user makes them (the command line on ``--db
data/demo.duckdb``-like files).  A clinic's files carry no such mark, and a
copy of the demo file keeps it."""

from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pytest

from analysis import cli
from analysis.storage import db, store
from analysis.core import synthetic_mark
from analysis.sources import ensure_demo_db
from tests.helpers.documents import html_body_text, pdf_pages, single_spaced, xlsx_sheets

QUARTER = "2025Q4"
MARK = synthetic_mark.TEXT


pytestmark = pytest.mark.usefixtures("fresh_snapshots")


@pytest.fixture(scope="module")
def demo_file(demo_exports, tmp_path_factory) -> Path:
    """The demo clinic's database as the dashboard builds it (marked)."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    return ensure_demo_db(path, [demo_exports.sessions, demo_exports.medications])


def _outputs(db_path: Path, out: Path, capsys) -> list[Path]:
    """Every document the command line makes: the report for both
    audiences, the memo and the one-page summary."""
    for audience in ("clinical", "external"):
        assert cli.main(["report", "--quarter", QUARTER, "--db", str(db_path), "--audience",
                         audience, "--out", str(out)]) == 0
    assert cli.main(["memo", "--db", str(db_path), "--out", str(out)]) == 0
    assert cli.main(["summary", "--db", str(db_path), "--out", str(out)]) == 0
    capsys.readouterr()
    files = sorted(out.iterdir())
    assert {f.suffix for f in files} == {".html", ".xlsx", ".pdf"}
    assert len(files) == 2 * 3 + 2 + 2   # report x2 audiences x3 formats, memo x2, summary x2
    return files


def test_every_page_and_sheet_made_from_the_demo_says_synthetic(demo_file, tmp_path, capsys):
    assert store.Snapshot(demo_file).synthetic
    files = _outputs(demo_file, tmp_path / "out", capsys)
    pages = sheets = 0
    for path in files:
        if path.suffix == ".pdf":
            texts = pdf_pages(path)
            assert texts, path.name
            for number, text in enumerate(texts, start=1):
                assert MARK in text, f"{path.name} page {number}"
            pages += len(texts)
        elif path.suffix == ".xlsx":
            for name, text in xlsx_sheets(path).items():
                assert MARK in text, f"{path.name} sheet {name}"
                sheets += 1
        else:
            text = html_body_text(path)
            assert text.lstrip().startswith(MARK), path.name   # first thing on the page
            # and in the margin of every printed page
            assert "@top-center" in path.read_text(encoding="utf-8"), path.name
    assert pages >= 6 and sheets == 2 * 8   # the reports run to several pages; 8 sheets each


def test_the_summary_pdf_is_one_page(demo_file, tmp_path, capsys):
    assert cli.main(["summary", "--db", str(demo_file), "--out", str(tmp_path),
                     "--format", "pdf"]) == 0
    capsys.readouterr()
    (pdf,) = tmp_path.glob("*.pdf")
    assert len(pdf_pages(pdf)) == 1


def test_the_xlsx_mark_is_a_visible_cell_above_each_table(demo_file, tmp_path, capsys):
    files = _outputs(demo_file, tmp_path / "out", capsys)
    for path in (f for f in files if f.suffix == ".xlsx"):
        for sheet in openpyxl.load_workbook(path).worksheets:
            rows = [r for r in sheet.iter_rows(max_row=3) if any(c.value == MARK for c in r)]
            assert rows, f"{path.name} {sheet.title}: the mark is not in the first rows"
            cell = next(c for c in rows[0] if c.value == MARK)
            assert cell.font.b and cell.font.color.rgb.endswith(synthetic_mark.COLOUR[1:].upper())


def test_a_copy_of_the_demo_file_keeps_its_mark(demo_file, tmp_path, capsys):
    copy = tmp_path / "renamed.duckdb"
    shutil.copyfile(demo_file, copy)
    assert not db.is_demo_database(copy)
    snap = store.Snapshot(copy)
    try:
        assert snap.synthetic
    finally:
        snap.close()
    assert cli.main(["memo", "--db", str(copy), "--out", str(tmp_path / "m"),
                     "--format", "pdf"]) == 0
    capsys.readouterr()
    (pdf,) = (tmp_path / "m").glob("*.pdf")
    assert all(MARK in page for page in pdf_pages(pdf))


def test_a_clinics_files_carry_no_mark(demo_db, tmp_path, capsys):
    """The same kind of data, ingested as a clinic's: nothing says synthetic
    (the mark is the data's, not every output's)."""
    assert not store.Snapshot(demo_db).synthetic
    for path in _outputs(demo_db, tmp_path / "out", capsys):
        if path.suffix == ".pdf":
            assert not any("ynthetic" in page for page in pdf_pages(path)), path.name
        elif path.suffix == ".xlsx":
            assert not any("ynthetic" in t for t in xlsx_sheets(path).values()), path.name
        else:
            assert "ynthetic" not in path.read_text(encoding="utf-8"), path.name


# --------------------------------------------------------------------------
# the tables a page hands out (Worklist, Data, Audit log): the same mark


def csv_says_synthetic(data: bytes) -> bool:
    """The mark is the CSV's first line, one cell (A1 in a spreadsheet)."""
    import csv
    import io
    first = next(csv.reader(io.StringIO(data.decode("utf-8"))))
    return first == [MARK]


def xlsx_sheet_texts(data: bytes) -> dict[str, str]:
    import io
    path = io.BytesIO(data)
    book = openpyxl.load_workbook(path)
    return {sheet.title: single_spaced(" ".join(str(c.value) for row in sheet.iter_rows(max_row=1)
                                                for c in row if c.value is not None)
                                       + " " + (sheet.oddHeader.center.text or ""))
            for sheet in book.worksheets}


def test_the_worklist_downloads_made_from_the_demo_say_synthetic(demo_file):
    from analysis.metrics import worklist
    snap = store.Snapshot(demo_file)
    try:
        result = worklist.worklist(snap)
    finally:
        snap.close()
    assert result.synthetic
    for name in result.tables():
        data = result.csv_bytes(name)
        assert csv_says_synthetic(data), name
        # the table follows, header first, whole
        import io

        import pandas as pd
        table = pd.read_csv(io.BytesIO(data), skiprows=1)
        assert list(table.columns) == list(result.tables()[name].columns)
        assert len(table) == len(result.tables()[name])
    sheets = xlsx_sheet_texts(result.xlsx_bytes())
    assert set(sheets) == set(result.tables())
    for name, text in sheets.items():
        assert MARK in text, name
    book = openpyxl.load_workbook(__import__("io").BytesIO(result.xlsx_bytes()))
    for sheet in book.worksheets:   # the mark above the header, the table below it
        assert sheet.cell(1, 1).value == MARK and sheet.cell(1, 1).font.b
        assert sheet.cell(2, 1).value == "Patient"


def test_a_clinics_worklist_downloads_carry_no_mark(demo_db):
    from analysis.metrics import worklist
    snap = store.Snapshot(demo_db)
    try:
        result = worklist.worklist(snap)
    finally:
        snap.close()
    assert not result.synthetic
    for name in result.tables():
        assert "ynthetic" not in result.csv_bytes(name).decode("utf-8"), name
    assert not any("ynthetic" in t for t in xlsx_sheet_texts(result.xlsx_bytes()).values())


def _page_downloads(page: str, db_path: Path, monkeypatch) -> dict[str, bytes]:
    """Run ``page`` signed in as the clinical team on ``db_path`` and return
    the bytes of every download button it draws, by file name."""
    import streamlit as st

    from tests.helpers.apptest import assert_no_errors, run_page
    made: dict[str, bytes] = {}
    real = st.download_button

    def capture(label, data, file_name=None, *args, **kwargs):
        made[file_name] = data() if callable(data) else data
        return real(label, data, *args, file_name=file_name, **kwargs)

    monkeypatch.setattr(st, "download_button", capture)
    monkeypatch.setenv("OUTCOMES_DB", str(db_path))
    app = run_page(page)
    assert_no_errors(app)
    return made


@pytest.mark.parametrize("page, files", [
    ("pages/worklist.py", {"follow_up_worklist.xlsx", "follow_up_due.csv"}),
    ("pages/data.py", {"quarantine.csv", "value_issues.csv"}),
])
def test_every_download_a_page_makes_from_the_demo_says_synthetic(page, files, demo_file,
                                                                    demo_db, monkeypatch):
    made = _page_downloads(page, demo_file, monkeypatch)
    assert set(made) == files
    for name, data in made.items():
        if name.endswith(".csv"):
            assert csv_says_synthetic(data), name
        else:
            assert all(MARK in t for t in xlsx_sheet_texts(data).values()), name
    store.clear_cache()
    # the same page on a clinic's data: no mark
    for name, data in _page_downloads(page, demo_db, monkeypatch).items():
        if name.endswith(".csv"):
            assert "ynthetic" not in data.decode("utf-8"), name
        else:
            assert not any("ynthetic" in t for t in xlsx_sheet_texts(data).values()), name
