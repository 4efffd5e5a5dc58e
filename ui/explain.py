"""Plain words first, the statistics one click away (issue 19).

Every chart and table leads with what it means in words a director reads
("clearly higher than the other conditions", "could be chance"), with each
figure's denominator in the sentence; the tests, intervals and their names
sit in a "How this is computed" expander beside it.
"""

from __future__ import annotations

import streamlit as st

LABEL = "How this is computed"


def how_computed(*paragraphs: str, table=None, key: str | None = None) -> None:
    """The expander under a chart or table: ``paragraphs`` (markdown the
    code writes; escape data with :func:`ui.safe.text`) and an optional
    table of the statistics."""
    with st.expander(LABEL, icon=":material/calculate:", key=key):
        st.markdown("\n\n".join(p for p in paragraphs if p))
        if table is not None:
            st.dataframe(table, hide_index=True, width="stretch", height="content")


def not_drawn(note: str) -> None:
    """The builder's sentence naming the points a chart left out for having
    too few patients ("" when none): a point from two patients jumps 0% →
    100%, so it is not drawn (analysis.metrics.charts decides)."""
    if note:
        st.caption(note)


def too_few_to_draw(note: str) -> None:
    """Instead of an empty chart: the builder's sentence saying what is
    missing, and why."""
    st.info(note, icon=":material/filter_alt_off:")


def ranges(numbers) -> str:
    """[1, 2, 3, 7, 9, 10] -> "1–3, 7, 9–10"."""
    from analysis.metrics.charts import ranges as number_ranges
    return number_ranges(numbers)
