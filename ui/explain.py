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


def not_drawn(points: list[str], counted: str = "patients") -> None:
    """Say which points a chart leaves out for having too few patients,
    instead of drawing them (a point from two patients jumps 0% → 100%)."""
    from analysis.outcomes import MIN_PATIENTS_PER_POINT
    if points:
        st.caption(f"Not drawn, from fewer than {MIN_PATIENTS_PER_POINT} {counted}: "
                   + "; ".join(points) + ".")


def too_few_to_draw(what: str, counted: str = "patients") -> None:
    """Instead of an empty chart: what is missing, and why."""
    from analysis.outcomes import MIN_PATIENTS_PER_POINT
    st.info(f"{what}: no point has {MIN_PATIENTS_PER_POINT} or more {counted} with these "
            "filters, so there is nothing reliable to draw. Widen the filters in the sidebar.",
            icon=":material/filter_alt_off:")


def ranges(numbers) -> str:
    """[1, 2, 3, 7, 9, 10] -> "1–3, 7, 9–10"."""
    numbers = sorted(int(n) for n in numbers)
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)
