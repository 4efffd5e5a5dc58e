"""The quarter picker of the pages that report one quarter (Quarterly
report, Program summary): the quarters with visits, newest first, the latest
quarter that had ended by the data cutoff chosen first."""

from __future__ import annotations

import streamlit as st

from analysis.reports.quarterly.build import default_quarter, quarters_with_data


def pick(ctx, container, key: str) -> str:
    """Draw the picker in ``container``; stops the page when there is no visit."""
    quarters = ctx.call(quarters_with_data)
    if not quarters:
        st.info("No visits yet: ingest a session export on the Data page first.",
                icon=":material/upload_file:")
        st.stop()
    newest_first = list(reversed(quarters))
    default = ctx.call(default_quarter)
    return container.selectbox(
        "Quarter", newest_first,
        index=newest_first.index(default) if default in newest_first else 0, key=key,
        help="Quarters with at least one visit; the default is the latest quarter that had "
             "ended by the data cutoff.")
