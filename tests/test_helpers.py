"""The test suite's own shape (tests/helpers/): shared builders and drivers
live in the helpers package and fixtures in conftest, so no test module
imports another and a test file can be read, moved or deleted on its own;
the one export writer refuses a row that does not fit its export."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers.builders import write_csv

TESTS = Path(__file__).resolve().parent


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names)
    return modules


@pytest.mark.parametrize("path", sorted([*TESTS.glob("*.py"), *TESTS.glob("helpers/*.py")]),
                         ids=lambda p: p.relative_to(TESTS).as_posix())
def test_no_test_module_or_helper_imports_a_test_module_or_conftest(path):
    imported = {m for m in _imported_modules(path)
                if m.startswith("tests.test_") or m == "tests.conftest"
                or m.startswith("tests.conftest.")}
    assert not imported, f"{path.name} imports {sorted(imported)}: move it to tests/helpers/"


def test_the_check_sees_an_import_of_another_test_file(tmp_path):
    planted = tmp_path / "test_planted.py"
    planted.write_text("from tests.test_outcomes import build_db\n"
                       "def f():\n    from tests.conftest import ROOT\n", encoding="utf-8")
    assert {"tests.test_outcomes", "tests.conftest"} <= _imported_modules(planted)


def test_the_export_writer_refuses_a_column_the_export_does_not_have(tmp_path):
    columns = ("patient_id", "visit_date")
    path = write_csv(tmp_path / "ok.csv", [{"patient_id": "A", "visit_date": None}], columns)
    assert path.read_text(encoding="utf-8").splitlines() == ["patient_id,visit_date", "A,"]
    with pytest.raises(AssertionError, match="not a column of this export"):
        write_csv(tmp_path / "typo.csv", [{"patient_id": "A", "visit_dat": "2025-01-01"}],
                  columns)
    with pytest.raises(AssertionError):
        write_csv(tmp_path / "short.csv", [("A",)], columns)
