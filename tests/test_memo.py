"""``python -m analysis memo`` (analysis/reports/memo.py, the claim's
substantiation memo): what it writes, its options and exit codes, and the demo
database on the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from analysis.access import audit
from analysis.claims import claim, wording
from analysis.storage import db, store
from analysis.reports import memo
from tests.helpers.apptest import ROOT
from tests.helpers.cli import run
from tests.helpers.documents import html_body_text, pdf_pages


pytestmark = pytest.mark.usefixtures("fresh_snapshots")


# --------------------------------------------------------------------------
# memo


def test_memo_writes_the_pages_memo(demo_db, tmp_path, capsys):
    code, out, err = run(capsys, "memo", "--db", demo_db, "--out", tmp_path / "m")
    assert code == 0, err
    html_path, pdf_path = (tmp_path / "m" / p.split("/")[-1] for p in out.split())
    assert html_path.suffix == ".html" and pdf_path.suffix == ".pdf"
    snap = store.snapshot(demo_db)
    expected = memo.build_memo(snap, claim.claim_report(snap))
    assert html_path.name == f"{memo.file_stem(claim.claim_report(snap))}.html"
    text = html_body_text(html_path)
    for piece in (expected.reading, wording.VERDICT_LABELS[expected.verdict], expected.fingerprint,
                  *expected.defensible):
        assert piece in text
    pdf_text = " ".join(pdf_pages(pdf_path))
    assert expected.reading in pdf_text and wording.VERDICT_LABELS[expected.verdict] in pdf_text
    logged = audit.read(demo_db, actions=("report",))
    assert "claim memo" in logged.iloc[0]["detail"] and pdf_path.name in logged.iloc[0]["detail"]


def test_memo_options_choose_the_reading(demo_db, tmp_path, capsys):
    code, out, err = run(capsys, "memo", "--db", demo_db, "--out", tmp_path, "--format", "html",
                         "--definition", "pain30", "--timepoint", "6m", "--population",
                         "completers", "--target", "0.5")
    assert code == 0, err
    (written,) = out.split()
    snap = store.snapshot(demo_db)
    reading = claim.claim_report(snap, 0.5, "6m", "pain30", "completers").reading.describe()
    assert reading in html_body_text(tmp_path / written.split("/")[-1])
    assert "against 50%" in reading


@pytest.mark.parametrize("argv", [
    ["--format", "docx"], ["--target", "70"], ["--timepoint", "5w"], ["--definition", "pain40"],
    ["--population", "everyone"],
])
def test_memo_usage_errors_exit_2(demo_db, tmp_path, capsys, argv):
    code, out, err = run(capsys, "memo", "--db", demo_db, "--out", tmp_path / "m", *argv)
    assert code == 2 and err.startswith("error:") and out == ""
    assert not (tmp_path / "m").exists()


def test_memo_and_summary_without_a_database_exit_1(tmp_path, capsys):
    for command in ("memo", "summary"):
        code, out, err = run(capsys, command, "--db", tmp_path / "none.duckdb",
                             "--out", tmp_path / "m")
        assert code == 1 and "no database" in err and out == ""


def test_python_m_analysis_memo(demo_db, tmp_path):
    done = subprocess.run([sys.executable, "-m", "analysis", "memo", "--db", str(demo_db),
                           "--out", str(tmp_path), "--format", "pdf"],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(".pdf")


def test_the_demo_database_on_the_command_line(demo_exports, tmp_path, monkeypatch, capsys):
    """``--db data/demo.duckdb`` works before the dashboard ever ran (the
    demo is built from the bundled exports), writes no audit row (the demo
    writes none) and cannot be loaded into."""
    demo_path = tmp_path / "data" / "demo.duckdb"
    monkeypatch.setattr(db, "DEMO_DB", demo_path)
    monkeypatch.setattr("analysis.sources.demo_exports",
                        lambda: [demo_exports.sessions, demo_exports.medications])
    code, out, err = run(capsys, "claim", "--db", demo_path, "--json")
    assert code == 0, err
    assert demo_path.exists()
    code, out, err = run(capsys, "memo", "--db", demo_path, "--out", tmp_path / "m")
    assert code == 0, err
    assert not audit.audit_path(demo_path).exists()
    code, out, err = run(capsys, "ingest", demo_exports.sessions, "--db", demo_path)
    assert code == 2 and "read-only" in err
