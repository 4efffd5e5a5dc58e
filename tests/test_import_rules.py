"""The import rules of .importlinter hold (lint-imports, run with the suite
so that CI enforces them): each layer imports only the layers below it
(pages, ui, cli and sources, reports, claims, metrics | ingest, access, core,
storage); analysis never imports Streamlit, ui or pages; pages never import
duckdb or analysis.storage; no import cycle between the packages of analysis
nor inside one.  Each rule is also seen to fail on a planted import."""

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
    ("analysis/core/stats.py", "import streamlit", "analysis never imports Streamlit"),
    # ui sits above analysis too: the layers break with it
    ("analysis/core/stats.py", "from ui import theme",
     ("each layer imports only", "analysis never imports Streamlit")),
    ("pages/overview.py", "import duckdb", "pages never open the database"),
    ("pages/overview.py", "from analysis.storage import store", "pages never open the database"),
    ("analysis/core/formatting.py", "from analysis.core import words", "no import cycle"),
    # upward, with no cycle: core below access; metrics and ingest independent
    ("analysis/core/words.py", "from analysis.access import keys", "each layer imports only"),
    ("analysis/metrics/charts.py", "from analysis.ingest import limits", "each layer imports only"),
])
def test_a_planted_import_breaks_its_rule(tree, module, planted, rule):
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{planted}\n", encoding="utf-8")
    result = lint(tree)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    rules = (rule,) if isinstance(rule, str) else rule
    assert len(broken) == len(rules), result.stdout
    assert all(line.startswith(name) for line, name in zip(broken, rules)), result.stdout
