"""The SQL of analysis/sql passes sqlfluff (DuckDB dialect, .sqlfluff), run
with the suite so that CI enforces it; the configuration is seen to catch
what it promises to (SQL DuckDB's grammar does not parse, an ambiguous
ORDER BY, an unused CTE, a long line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlfluff

ROOT = Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / ".sqlfluff")


def test_the_sql_passes_the_lint():
    result = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "analysis/sql", "--processes", "1",
         "--disable-progress-bar", "--nocolor"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_the_lint_reads_the_templates_and_parameters():
    sql = ("WITH p AS (SELECT * FROM patients AS p WHERE p.treated AND {{ patient_filter }}),\n\n"
           "f AS ({{ include safety_infusions }})\n\n"
           "SELECT p.patient_id FROM p JOIN f USING (patient_id)\n"
           "WHERE p.index_date BETWEEN $start AND $end AND p.site = $site\n")
    assert sqlfluff.lint(sql, config_path=CONFIG) == []


@pytest.mark.parametrize("sql, rule", [
    ("SELECT patient_id FROM patients WHERE index_date = = 3\n", "PRS"),
    ("SELECT patient_id, site FROM patients ORDER BY site DESC, patient_id\n", "AM03"),
    ("WITH unused AS (SELECT 1 AS x)\nSELECT patient_id FROM patients\n", "ST03"),
    ("SELECT patient_id FROM patients WHERE site IN ('" + "a" * 100 + "')\n", "LT05"),
    ("select patient_id FROM patients\n", "CP01"),
])
def test_the_lint_catches(sql, rule):
    codes = {v["code"] for v in sqlfluff.lint(sql, config_path=CONFIG)}
    assert rule in codes, codes
