"""Grids that fit the page at 1280 px (issue 19): ui.grid's estimates, and
the widths the Data and Worklist pages give their grids (tests/
test_grids_browser.py measures the drawn result in Chromium)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.helpers.apptest import assert_no_errors, run_page
from ui import grid
from ui.grid import Column


def test_lines_wrap_whole_words():
    assert grid.lines("not a number", 200) == 1
    per_line = int((100 - grid.PADDING_PX) / grid.CHAR_PX)          # 12 characters
    assert grid.lines("x" * per_line, 100) == 1
    assert grid.lines("x" * per_line + " y", 100) == 2
    assert grid.lines("abc " * 9, 100) == 3                          # three words a line
    assert grid.lines(None, 100) == 1


def test_rows_grow_only_when_a_wrapping_cell_needs_it():
    frame = pd.DataFrame({"why": ["not a number", "out of range (must be between 0 and 10)"],
                          "file": ["a very long file name that would wrap.csv"] * 2})
    assert grid.row_height(frame, {"why": Column(400, wrap=True), "file": Column(90)}) is None
    tall = grid.row_height(frame, {"why": Column(120, wrap=True)})
    assert tall >= grid.WRAP_MIN_PX   # Streamlit wraps only in rows of 4rem and more
    assert tall == 6 + grid.LINE_PX * grid.lines(frame["why"][1], 120)


@pytest.mark.parametrize("page", ["pages/data.py", "pages/worklist.py"])
def test_page_grids_are_given_widths_that_fit(app_db, page):
    app = run_page(page)
    assert_no_errors(app)
    checked = 0
    for element in app.dataframe:
        config = json.loads(element.proto.columns or "{}")
        shown = list(element.proto.column_order)
        if not shown:      # a grid Streamlit sizes itself (Freshness, Completeness)
            continue
        widths = [config[name]["width"] for name in shown]
        assert all(isinstance(w, int) for w in widths), shown
        assert sum(widths) <= grid.FITS_PX, (shown, sum(widths))
        checked += 1   # (each header's fit is measured in Chromium: test_grids_browser)
    assert checked >= (5 if page == "pages/data.py" else 3)
