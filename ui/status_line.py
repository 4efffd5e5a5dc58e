"""The line under every page's title: the data source, its cutoff, what is in
view and the outcome settings in force."""

from __future__ import annotations

import streamlit as st

from analysis.metrics import outcomes
from analysis.core.formatting import long_date
from ui import safe
from ui.page_context import PageContext


def draw(context: PageContext) -> None:
    """The line on every page: cutoff, what is in view, the active definition."""
    cutoff = context.call(outcomes.cutoff)
    in_view = context.call(outcomes.in_view_text, context.filters, context.audience)
    setting = context.setting_text
    st.caption(
        f"**{safe.text(context.source.label)}** · data cutoff {long_date(cutoff)} · "
        f"{safe.text(in_view)}" + (f" · {setting}" if setting else ""))
