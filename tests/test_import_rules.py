"""The import rules of .importlinter hold (lint-imports, run with the suite
so that CI enforces them): analysis never imports Streamlit, ui or pages;
pages never import duckdb or the storage modules; no import cycle inside
analysis.  Each rule is also seen to fail on a planted import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = [sys.executable, "-c",
        "import sys; from importlinter.cli import lint_imports_command; "
        "sys.argv[0] = 'lint-imports'; lint_imports_command()", "--no-cache"]


def lint(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, cwd=folder, capture_output=True, text=True, timeout=120)


def test_the_import_rules_hold():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture
def tree(tmp_path):
    """A copy of the code's folders (not the data) to plant imports in."""
    for folder in ("analysis", "ui", "pages"):
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.sql", "*.toml"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    return tmp_path


@pytest.mark.parametrize("module, planted, rule", [
    ("analysis/stats.py", "import streamlit", "analysis never imports Streamlit"),
    ("analysis/stats.py", "from ui import theme", "analysis never imports Streamlit"),
    ("pages/overview.py", "import duckdb", "pages never open the database"),
    ("pages/overview.py", "from analysis import store", "pages never open the database"),
    ("analysis/palette.py", "from analysis import report", "no import cycle"),
])
def test_a_planted_import_breaks_its_rule(tree, module, planted, rule):
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{planted}\n", encoding="utf-8")
    result = lint(tree)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert len(broken) == 1 and broken[0].startswith(rule), result.stdout
