"""One house style (analysis.core.palette) and one test for a missing value
(analysis.core.formatting.missing): the dashboard's theme, the quarterly report,
the claim memo and its summary use them instead of their own copies."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.claims import wording
from analysis.core import formatting, palette
from analysis.reports import memo, summary
from analysis.reports.quarterly import charts as report_charts, tables as report_tables
from analysis.reports.quarterly.render import pdf as report_pdf
from analysis.reports.quarterly.tables import SUPPRESSED_TEXT, withheld_or_missing
from ui import theme

ROOT = Path(__file__).resolve().parent.parent


def test_every_output_takes_its_colours_from_the_palette():
    for name in ("PRIMARY", "ACCENT", "GOOD", "BAD", "NEUTRAL", "COLORWAY", "VERDICT_COLOURS"):
        assert getattr(theme, name) is getattr(palette, name), name
    for name in ("PRIMARY", "ACCENT", "GOOD", "BAD", "NEUTRAL"):
        assert getattr(report_charts, name) is getattr(palette, name), name
    assert memo.VERDICT_COLOURS is palette.VERDICT_COLOURS
    assert memo.VERDICT_FILLS is palette.VERDICT_FILLS


def test_every_verdict_has_a_colour_and_too_few_is_never_a_verdict_colour():
    verdicts = [*wording.VERDICTS, "no data", wording.TOO_FEW]
    assert set(palette.VERDICT_COLOURS) == set(verdicts)
    assert palette.VERDICT_COLOURS[wording.TOO_FEW] == palette.VERDICT_COLOURS["no data"]
    assert palette.VERDICT_COLOURS[wording.TOO_FEW] not in {
        palette.VERDICT_COLOURS[v] for v in wording.VERDICTS}
    assert set(palette.VERDICT_FILLS) == {*wording.VERDICTS, "no data"}


def test_the_pdf_font_is_found():
    fonts = palette.font_dir()
    assert fonts is not None
    for face in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf"):
        assert (fonts / face).exists(), face


@pytest.mark.parametrize("value, expected", [
    (None, True), (float("nan"), True), (np.float32("nan"), True), (np.nan, True),
    (pd.NA, True), (pd.NaT, True),
    (0, False), (0.0, False), (np.int64(3), False), ("", False), ("nan", False),
    (math.inf, False), (pd.Timestamp("2024-01-01"), False), ([None], False),
])
def test_missing_is_none_nan_nat_or_na_and_never_text(value, expected):
    assert formatting.missing(value) is expected


def test_report_memo_summary_and_theme_share_one_missing_and_one_font_folder():
    # the report's own test is "withheld or missing" (the suppressed text, or
    # formatting.missing), a different question from formatting.missing
    assert not hasattr(report_tables, "_missing") and theme.missing is formatting.missing
    assert withheld_or_missing(SUPPRESSED_TEXT)
    assert withheld_or_missing(None) and withheld_or_missing(float("nan"))
    assert not withheld_or_missing(0) and not withheld_or_missing("0")
    # one PDF font setup: only the palette names the font files
    for module in (report_pdf, memo, summary):
        text = Path(module.__file__).read_text(encoding="utf-8")
        assert "add_pdf_font(" in text and "DejaVuSans" not in text and "font_dir" not in text
    assert [p.name for p in sorted((ROOT / "analysis").rglob("*.py"))
            if "DejaVuSans.ttf" in p.read_text(encoding="utf-8")] == ["palette.py"]


@pytest.mark.parametrize("name", ["_missing", "missing", "_font_dir", "font_dir"])
def test_each_shared_helper_is_defined_once(name):
    """No module of analysis/ or ui/ defines its own copy again (a module-level
    function; a method such as ClaimReport.missing(timepoint, definition)
    asks another question)."""
    owners = []
    for path in sorted([*(ROOT / "analysis").rglob("*.py"), *(ROOT / "ui").glob("*.py")]):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name.lstrip("_") == name.lstrip("_"):
                owners.append(path.name)
    assert len(owners) == 1, owners


@pytest.mark.parametrize("name", ["PRIMARY", "VERDICT_COLOURS", "VERDICT_FILLS", "COLORWAY"])
def test_each_colour_is_defined_once(name):
    owners = []
    for path in sorted([*(ROOT / "analysis").rglob("*.py"), *(ROOT / "ui").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = (node.targets if isinstance(node, ast.Assign) else [])
            names = [t.id for target in targets
                     for t in (target.elts if isinstance(target, ast.Tuple) else [target])
                     if isinstance(t, ast.Name)]
            if name in names:
                owners.append(path.name)
    assert owners == ["palette.py"], owners
