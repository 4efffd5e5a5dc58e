"""What keeps the ingest of a CSV export near DuckDB's bare load (issue 20):
a fresh process that ingests a session export and a medication export loads
no data-frame or statistics library (pandas alone took 0.4 s to import, as
long as the whole load of 200,000 visits), and the command line's ingest does
not either."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers.fresh_process import run_json

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "numpy", "pyarrow", "scipy", "plotly", "matplotlib", "openpyxl")

SESSIONS = """patient_id,visit_date,visit_type,condition,route,pain_score,phq9,benzodiazepine
P1,2024-01-05,intake,G43.909,,8,12,no
P1,2024-01-12,infusion,,IV,11,abc,maybe
P1,2024-01-12,infusion,,IV,11,abc,maybe
,2024-01-13,infusion,,IV,5,,
"""
MEDICATIONS = """patient_id,date,drug,dose,unit,doses_per_day
P1,2024-01-05,Percocet 5/325 mg,,tablet,3
P1,2024-01-12,mystery pill,10,mg,1
"""


def _environment(tmp_path: Path) -> dict:
    return {**os.environ, "OUTCOMES_SECRETS_DIR": str(tmp_path / "secrets"),
            "PYTHONPATH": str(ROOT)}


def test_ingesting_csv_exports_imports_no_data_frame_library(tmp_path):
    (tmp_path / "sessions.csv").write_text(SESSIONS)
    (tmp_path / "medications.csv").write_text(MEDICATIONS)
    script = f"""
import json, sys
from analysis.storage import db
from analysis.ingest.pipeline import ingest_file
with db.writer({str(tmp_path / 'x.duckdb')!r}) as con:
    results = [ingest_file(con, {str(tmp_path)!r} + '/' + name)
               for name in ('sessions.csv', 'medications.csv')]
print(json.dumps({{"status": [r.status for r in results],
                  "loaded": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
    report = run_json(script, cwd=tmp_path, env=_environment(tmp_path), timeout=120)
    assert report["status"] == ["ingested", "ingested"]
    assert report["loaded"] == []


def test_the_command_line_ingest_imports_no_data_frame_library(tmp_path):
    (tmp_path / "sessions.csv").write_text(SESSIONS)
    script = f"""
import json, sys
from analysis.cli import main
code = main(['ingest', 'sessions.csv', '--db', 'x.duckdb', '--json'])
print(json.dumps({{"code": code,
                  "loaded": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
    # (the models saved after an ingest are another step, measured on their own)
    environment = {**_environment(tmp_path), "OUTCOMES_SAVED_MODELS": "off"}
    report = run_json(script, cwd=tmp_path, env=environment, timeout=120)
    assert report == {"code": 0, "loaded": []}
