"""Data grids whose every column is on screen at 1280 px (issue 19).

Streamlit's grid (``st.dataframe``) draws on a canvas: a column that does not
fit is cut at the grid's right edge (the reader must find the horizontal
scroll), and a header wider than its column is cut short.  At 1280 px, with
the sidebar open, the page's main column is 820 px wide; a grid's columns
are given widths that add up to at most :data:`FITS_PX` (room for a classic
vertical scrollbar), headers short enough for their width (the long name in
the column's help, shown on hover), and text that may run long wraps: rows
grow to the lines the longest cell needs (Streamlit wraps a cell's text only
in rows taller than 4rem).  ``tests/test_grids_browser.py`` measures it in
Chromium.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import streamlit as st

#: The main column's width at a 1280 px window with the sidebar open.
MAIN_PX_AT_1280 = 820
#: What a grid's columns may take: the main column less a classic vertical
#: scrollbar (15 px on Windows) and the grid's borders.
FITS_PX = 800
#: The grid's cell padding (8 px each side) and its 14 px Source Sans: a mean
#: advance per character a little above the widest text measured in Chromium
#: (digits and lower case, 6.0 - 6.5 px), so an estimate errs towards wrapping.
PADDING_PX = 16
CHAR_PX = 6.6
LINE_PX = 21
ROW_PX = 35          # Streamlit's one-line row
WRAP_MIN_PX = 65     # rows from this height wrap their text
MAX_LINES = 6


@dataclass(frozen=True)
class Column:
    """One column of a grid: ``width`` in px, a short ``label`` (the
    frame's name when None), the long name or explanation in ``help``;
    ``wrap``: its text may run over several lines."""
    width: int
    label: str | None = None
    help: str | None = None
    wrap: bool = False
    kind: str = "text"   # text | count (text of a number, right-aligned) | number | checkbox | date

    def config(self, name: str):
        label = self.label or name
        if self.kind == "number":
            return st.column_config.NumberColumn(label, width=self.width, help=self.help)
        if self.kind == "date":
            return st.column_config.DateColumn(label, width=self.width, help=self.help,
                                               format="YYYY-MM-DD")
        if self.kind == "checkbox":
            return st.column_config.CheckboxColumn(label, width=self.width, help=self.help)
        return st.column_config.TextColumn(label, width=self.width, help=self.help,
                                           alignment="right" if self.kind == "count" else None)


def lines(value, width: int) -> int:
    """The lines ``value`` takes in a column ``width`` px wide (words kept
    whole, as the grid wraps)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 1
    per_line = max(1, int((width - PADDING_PX) / CHAR_PX))
    used, count = 0, 1
    for word in str(value).split():
        size = len(word)
        if used and used + 1 + size > per_line:
            count += 1
            used = 0
        used = size if not used else used + 1 + size
        count += (size - 1) // per_line if size > per_line else 0
    return count


def row_height(frame: pd.DataFrame, columns: dict[str, Column]) -> int | None:
    """The row height the wrapping columns' longest text needs (None: one
    line is enough)."""
    needed = max((lines(value, spec.width) for name, spec in columns.items()
                  if spec.wrap and name in frame for value in frame[name]), default=1)
    if needed <= 1:
        return None
    return max(WRAP_MIN_PX, 6 + LINE_PX * min(needed, MAX_LINES))


def table(frame: pd.DataFrame, columns: dict[str, Column], *, height: int | str = "auto",
          key: str | None = None) -> None:
    """``frame`` in a grid showing ``columns`` (in that order; the frame's
    other columns stay in it, for a download, but are not drawn)."""
    st.dataframe(frame, hide_index=True, width="stretch", height=height, key=key,
                 column_order=[name for name in columns if name in frame],
                 column_config={name: spec.config(name) for name, spec in columns.items()
                                if name in frame},
                 row_height=row_height(frame, columns))

