"""A site or condition named like a spreadsheet formula leaves every CSV and
XLSX export as text, never as a formula."""

from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
import pytest

from analysis.access import audit
from analysis.ingest import data_quality
from analysis.ingest.pipeline import ingest_file
from analysis.storage import db, store
from analysis.core import formatting
from analysis.reports.quarterly.build import build_report
from analysis.reports.quarterly.render.xlsx import write_xlsx

EVIL_SITE = '=HYPERLINK("http://x","y")'
EVIL_CONDITION = "@SUM(1)"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(scope="module")
def evil_clinic(tmp_path_factory):
    """Fifteen patients at a site and with a condition named like formulas,
    plus a value issue whose raw value is a formula."""
    folder = tmp_path_factory.mktemp("evil")
    rows = ["patient_id,visit_date,visit_type,site,condition,pain_score,opioid_mme_per_day"]
    for n in range(15):
        pid = f"E{n:02d}"
        rows += [f'{pid},2025-01-02,intake,"{EVIL_SITE.replace(chr(34), chr(34) * 2)}",'
                 f"{EVIL_CONDITION},8,60",
                 f'{pid},2025-01-03,infusion,"{EVIL_SITE.replace(chr(34), chr(34) * 2)}",,8,',
                 f'{pid},2025-04-03,follow_up,"{EVIL_SITE.replace(chr(34), chr(34) * 2)}",,'
                 f"{'4' if n % 2 else '=1+1'},30"]
    rows.append(',2025-02-01,infusion,"=cmd|\' /C calc\'!A0",,5,')  # quarantined
    path = folder / "sessions.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    db_path = folder / "evil.duckdb"
    with db.writer(db_path) as con:
        result = ingest_file(con, path, ingest_date=dt.date(2026, 1, 1))
    assert result.status == "ingested" and result.values_nulled == 8  # "=1+1" for the even patients
    audit.record(db_path, "page_view", user="=evil()", role="clinical", page=EVIL_SITE)
    return db_path


def _assert_csv_safe(data: bytes) -> int:
    cells = 0
    for row in csv.reader(io.StringIO(data.decode("utf-8"))):
        for value in row:
            cells += 1
            assert not value.startswith(TRIGGERS), value
    return cells


def test_stored_names_are_kept_as_the_clinic_wrote_them(evil_clinic):
    snap = store.Snapshot(evil_clinic)
    assert snap.scalar("SELECT DISTINCT site FROM visits") == EVIL_SITE
    assert snap.scalar("SELECT DISTINCT condition_raw FROM visits WHERE condition_raw IS NOT NULL"
                       ) == EVIL_CONDITION


def test_every_csv_export_is_text(evil_clinic):
    snap = store.Snapshot(evil_clinic)
    frames = {
        "quarantine": data_quality.quarantine_rows(snap),
        "value issues": data_quality.value_issue_rows(snap),
        "audit": audit.read(evil_clinic),
        "patients": snap.query("SELECT site, condition_raw FROM patients"),
    }
    assert any(str(v).startswith("=") for v in frames["value issues"]["raw_value"])
    for name, frame in frames.items():
        assert _assert_csv_safe(formatting.csv_bytes(frame)) > 0, name


@pytest.mark.parametrize("audience", ["clinical", "external"])
def test_report_xlsx_has_no_formula_cells(evil_clinic, tmp_path, audience):
    snap = store.Snapshot(evil_clinic)
    quarterly = build_report(snap, "2025Q1", audience)
    path = tmp_path / "report.xlsx"
    write_xlsx(quarterly, path)
    workbook = openpyxl.load_workbook(path)
    seen_site = False
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(TRIGGERS), (sheet.title, cell.value)
                    seen_site |= "HYPERLINK" in cell.value
    if audience == "clinical":
        assert seen_site, "the site should appear in the clinical activity table, as text"
