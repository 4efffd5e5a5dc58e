"""Upload limits (analysis.ingest.limits) and the attacks they stop: an XLSX zip
bomb, a CSV of 100,000 columns, oversized Parquet; refusal messages that
never echo a row's values."""

from __future__ import annotations

import gzip
import io

import pytest

from analysis.ingest import limits


def test_limit_messages_are_one_line_naming_the_file_and_the_limit():
    limits.check_bytes("a.xlsx", "its content once unzipped", limits.MAX_UNZIPPED_BYTES,
                       limits.MAX_UNZIPPED_BYTES)  # at the limit: allowed
    with pytest.raises(limits.LimitExceeded) as refused:
        limits.check_bytes("a.xlsx", "its content once unzipped", 600 * limits.MB,
                           limits.MAX_UNZIPPED_BYTES)
    assert str(refused.value) == ("a.xlsx: its content once unzipped is 600 MB, over the limit "
                                  "of 128 MB; nothing stored from it")
    limits.check_count("b.csv", "columns", limits.MAX_COLUMNS, limits.MAX_COLUMNS)
    with pytest.raises(limits.LimitExceeded) as refused:
        limits.check_count("b.csv", "columns", 100_000, limits.MAX_COLUMNS)
    assert str(refused.value) == "b.csv: more than 1,000 columns (the limit); nothing stored from it"
    assert "\n" not in str(refused.value)


def test_bounded_reader_stops_while_streaming():
    bomb = gzip.compress(b"x" * (8 * limits.MB))
    reader = limits.BoundedReader(gzip.GzipFile(fileobj=io.BytesIO(bomb)), limits.MB, "c.ndjson.gz")
    with pytest.raises(limits.LimitExceeded, match="c.ndjson.gz: its content is over the limit of 1 MB"):
        while reader.read(64 * 1024):
            pass
    assert reader.bytes_read <= limits.MB + 64 * 1024   # stopped at the limit, not at the end
    small = limits.BoundedReader(io.BytesIO(b"abc"), 3, "d.csv")
    assert small.read() == b"abc"


# --------------------------------------------------------------------------
# the attacks, each run as the real ingest in a child process that reports
# its own time and peak memory (VmHWM), so a runaway read is measured and
# bounded (killed after a minute) instead of swamping the test run.

import json
import subprocess
import sys
import zipfile

from tests.helpers.apptest import ROOT

_CHILD = """
import json, sys, time
from analysis.storage import db
from analysis.ingest.pipeline import ingest_file
con = db.connect(sys.argv[2])
start = time.monotonic()
result = ingest_file(con, sys.argv[1])
seconds = time.monotonic() - start
status = open('/proc/self/status').read()
peak_mb = int(status.split('VmHWM:')[1].split()[0]) / 1024
logged = con.execute("SELECT message FROM ingest_log ORDER BY ingest_id DESC LIMIT 1").fetchone()
print(json.dumps({"status": result.status, "error": result.error, "seconds": seconds,
                  "peak_mb": peak_mb, "logged": logged[0] if logged else None}))
"""


def ingest_in_child(path, tmp_path, timeout: float = 60) -> dict:
    """Ingest ``path`` into a new database in a fresh process: its result,
    the ingest's seconds and the process's peak resident memory (MB)."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(tmp_path / "child.duckdb")],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


_SHEET_HEAD = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
               b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
               b'<sheetData>')
_SHEET_TAIL = b"</sheetData></worksheet>"


def _workbook_with_sheet(path, write_sheet) -> None:
    """A real workbook (openpyxl's members) whose first sheet's XML is
    written by ``write_sheet(stream)``."""
    import openpyxl
    base = path.with_suffix(".base.xlsx")
    book = openpyxl.Workbook()
    book.active.append(["patient_id", "visit_date", "visit_type"])
    book.save(base)
    with zipfile.ZipFile(base) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED,
                                                          compresslevel=9) as out:
        for name in source.namelist():
            if name == "xl/worksheets/sheet1.xml":
                with out.open(name, "w", force_zip64=True) as stream:
                    stream.write(_SHEET_HEAD)
                    write_sheet(stream)
                    stream.write(_SHEET_TAIL)
            else:
                out.writestr(name, source.read(name))
    base.unlink()


@pytest.fixture(scope="module")
def xlsx_bomb(tmp_path_factory):
    """A 2.5 MB XLSX holding 600 MB of sheet XML (the attack in issue 13)."""
    path = tmp_path_factory.mktemp("bomb") / "visits.xlsx"
    row = b"<row>" + b'<c t="inlineStr"><is><t>xxxxxxxxxx</t></is></c>' * 10 + b"</row>"
    chunk = row * 2000

    def write(stream):
        written = 0
        while written < 600 * limits.MB:
            stream.write(chunk)
            written += len(chunk)

    _workbook_with_sheet(path, write)
    assert path.stat().st_size < 3 * limits.MB
    return path


def test_xlsx_zip_bomb_refused_in_seconds_with_little_memory(xlsx_bomb, tmp_path):
    outcome = ingest_in_child(xlsx_bomb, tmp_path)
    assert outcome["status"] == "refused"
    assert outcome["seconds"] < 5, outcome
    assert outcome["peak_mb"] < 500, outcome
    assert outcome["error"] == ("visits.xlsx: its content once unzipped is 600 MB, over the "
                                "limit of 128 MB; nothing stored from it")
    assert outcome["logged"] == outcome["error"]


def test_xlsx_bomb_lying_about_its_size_stops_at_the_declared_size(xlsx_bomb, tmp_path):
    """The zip's directory says the sheet is small; the reader stops there
    (a CRC mismatch) instead of inflating 600 MB."""
    liar = tmp_path / "liar.xlsx"
    data = bytearray(xlsx_bomb.read_bytes())
    # Declare 64 KB in the sheet's central-directory entry (what readers trust).
    import struct
    name = b"xl/worksheets/sheet1.xml"
    entry = data.index(b"PK\x01\x02")  # the first central-directory entry
    while data[entry + 46:entry + 46 + len(name)] != name:
        entry = data.index(b"PK\x01\x02", entry + 4)
    assert struct.unpack_from("<I", data, entry + 24)[0] > 600 * limits.MB
    struct.pack_into("<I", data, entry + 24, 64 * 1024)
    liar.write_bytes(bytes(data))
    outcome = ingest_in_child(liar, tmp_path)
    assert outcome["status"] == "refused" and outcome["error"].startswith("liar.xlsx: ")
    assert outcome["seconds"] < 5 and outcome["peak_mb"] < 500, outcome


def test_csv_with_100k_columns_refused_quickly(tmp_path):
    path = tmp_path / "wide.csv"
    header = ",".join(["patient_id", "visit_date", "visit_type"]
                      + [f"c{i}" for i in range(100_000)])
    path.write_text(header + "\n" + ",".join(["P1", "2025-01-06", "intake"] + ["1"] * 100_000)
                    + "\n")
    outcome = ingest_in_child(path, tmp_path)
    assert outcome["status"] == "refused"
    assert outcome["seconds"] < 5 and outcome["peak_mb"] < 500, outcome
    assert outcome["error"] == "wide.csv: more than 1,000 columns (the limit); nothing stored from it"


def test_csv_header_line_without_end_refused(tmp_path):
    path = tmp_path / "oneline.csv"
    path.write_text("patient_id,visit_date,visit_type," + "x" * (2 * limits.MB))
    outcome = ingest_in_child(path, tmp_path)
    assert outcome["status"] == "refused" and outcome["seconds"] < 5, outcome
    assert outcome["error"] == ("oneline.csv: its first line (the header row) is longer than the "
                                "limit of 1 MB; nothing stored from it")


def test_csv_cells_and_size_limits(tmp_path, monkeypatch):
    from analysis.storage import db
    from analysis.ingest.pipeline import ingest_file
    path = tmp_path / "many.csv"
    path.write_text("patient_id,visit_date,visit_type\n" + "P1,2025-01-06,intake\n" * 40)
    con = db.connect(tmp_path / "c.duckdb")
    monkeypatch.setattr(limits, "MAX_CELLS", 100)
    result = ingest_file(con, path)
    assert result.error == "many.csv: more than 100 cells (the limit); nothing stored from it"
    monkeypatch.setattr(limits, "MAX_CELLS", 10_000)
    monkeypatch.setattr(limits, "MAX_DATA_BYTES", 500)
    result = ingest_file(con, path)
    assert result.error == "many.csv: the file is 1 KB, over the limit of 1 KB; nothing stored from it"
    monkeypatch.setattr(limits, "MAX_DATA_BYTES", 10_000)
    assert ingest_file(con, path).status == "ingested"


def test_xlsx_cells_and_columns_counted_while_reading(tmp_path, monkeypatch):
    import openpyxl
    from analysis.storage import db
    from analysis.ingest.pipeline import ingest_file
    con = db.connect(tmp_path / "x.duckdb")
    book = openpyxl.Workbook()
    book.active.append(["patient_id", "visit_date", "visit_type"])
    for n in range(50):
        book.active.append([f"P{n}", "2025-01-06", "intake"])
    path = tmp_path / "fifty.xlsx"
    book.save(path)
    monkeypatch.setattr(limits, "MAX_SPREADSHEET_CELLS", 60)
    result = ingest_file(con, path)
    assert result.error == "fifty.xlsx: more than 60 cells (the limit); nothing stored from it"
    monkeypatch.setattr(limits, "MAX_SPREADSHEET_CELLS", 1_000)
    assert ingest_file(con, path).rows_accepted == 50
    wide = openpyxl.Workbook()
    wide.active.append(["patient_id", "visit_date", "visit_type"] + [f"c{i}" for i in range(1_200)])
    wide.save(tmp_path / "wide.xlsx")
    result = ingest_file(con, tmp_path / "wide.xlsx")
    assert result.error == "wide.xlsx: more than 1,000 columns (the limit); nothing stored from it"


def test_parquet_columns_and_cells_checked_on_its_footer(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from analysis.storage import db
    from analysis.ingest.pipeline import ingest_file
    con = db.connect(tmp_path / "p.duckdb")
    columns = {"patient_id": ["P1"] * 30, "visit_date": ["2025-01-06"] * 30,
               "visit_type": ["intake"] * 30}
    wide = dict(columns, **{f"c{i}": [1] * 30 for i in range(1_200)})
    pq.write_table(pa.table(wide), tmp_path / "wide.parquet")
    result = ingest_file(con, tmp_path / "wide.parquet")
    assert result.error == "wide.parquet: more than 1,000 columns (the limit); nothing stored from it"
    pq.write_table(pa.table(columns), tmp_path / "ok.parquet")
    monkeypatch.setattr(limits, "MAX_CELLS", 50)
    result = ingest_file(con, tmp_path / "ok.parquet")
    assert result.error == "ok.parquet: more than 50 cells (the limit); nothing stored from it"
    monkeypatch.setattr(limits, "MAX_CELLS", 1_000)
    assert ingest_file(con, tmp_path / "ok.parquet").status == "ingested"


# --------------------------------------------------------------------------
# refusals never echo a row's values

HEADERLESS = ("Jane Q Public,1961-04-03,303-555-0100,P001,2025-01-06,intake,Denver\n"
              "John R Doe,1958-11-12,720-555-0199,P002,2025-01-07,infusion,Denver\n")
ROW_VALUES = ("Jane", "Public", "1961-04-03", "303-555-0100", "P001", "Denver")


def test_headerless_export_first_row_not_echoed(tmp_path):
    from analysis.storage import db
    from analysis.ingest.pipeline import ingest_file
    path = tmp_path / "headerless.csv"
    path.write_text(HEADERLESS)
    con = db.connect(tmp_path / "h.duckdb")
    result = ingest_file(con, path)
    assert result.status == "refused"
    logged = con.execute("SELECT message, sha256 FROM ingest_log").fetchall()
    for text in (result.error, logged[0][0]):
        assert not any(value in text for value in ROW_VALUES), text
    assert result.error.startswith("headerless.csv: the first line looks like data")
    assert logged[0][1] is not None     # the refused file's fingerprint is kept
