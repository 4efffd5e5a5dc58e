"""The Follow-up worklist page (pages/worklist.py) in the real app (AppTest): no
exception or error, every number shown equals what ``analysis`` returns for
the same filters, and it is for the clinical team only."""

from __future__ import annotations

import pytest

from analysis.core import formatting
from analysis.metrics import worklist
from analysis.core.filters import Filters
from tests.helpers.apptest import (NON_DEFAULT_QUERY, SETTINGS, assert_no_errors, context_of,
                                   frame_with, metric_values, run_page)
from ui.page_context import CONTEXT_KEY


@pytest.mark.parametrize("query", [None, NON_DEFAULT_QUERY], ids=["default", "non-default"])
def test_worklist_page(app_db, demo_snapshot, query):
    app = run_page("pages/worklist.py", query)
    assert_no_errors(app)
    filters = context_of(app).filters
    assert filters == (SETTINGS["non-default"].filters if query else Filters())
    result = worklist.worklist(demo_snapshot, filters)
    metrics = metric_values(app)
    assert metrics["Due at 3 months"] == formatting.count(len(result.due("3m")))
    assert metrics["Missed follow-ups"] == formatting.count(len(result.missed))
    assert metrics["Stopped in induction"] == formatting.count(len(result.stopped_in_induction))
    due = frame_with(app, "Days left")
    assert list(due["Patient"]) == list(result.open_windows.patient_id)
    assert list(due["Days left"]) == list(result.open_windows.days_left)
    stopped = frame_with(app, "Infusions in induction")
    assert list(stopped["Patient"]) == list(result.stopped_in_induction.patient_id)
    missed = frame_with(app, "Non-responder under ITT")
    assert len(missed) == len(result.missed)
    if query:
        assert set(due["Site"]) <= set(NON_DEFAULT_QUERY["site"])
    assert [b.label for b in app.get("download_button")] == [
        "Download the worklist (XLSX)", "Download follow-up due (CSV)"]


@pytest.mark.parametrize("role", ["analyst", "marketing"])
def test_worklist_is_for_the_clinical_team_only(app_db, role):
    """Not in the navigation of other roles (Streamlit refuses the URL), and
    the page itself stops before listing anyone when run for them."""
    from streamlit.testing.v1 import AppTest

    from analysis.storage import store
    from analysis.sources import DataSource
    from tests.helpers.apptest import ROOT
    from ui.page_context import PageContext
    from ui.pages import pages_for
    assert "pages/worklist.py" not in {p.path for p in pages_for(role)}
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        run_page("pages/worklist.py", role=role)
    app = AppTest.from_file(str(ROOT / "pages/worklist.py"), default_timeout=60)
    app.session_state[CONTEXT_KEY] = PageContext(DataSource(app_db, is_demo=False),
                                                 store.snapshot(app_db), Filters(), role=role)
    app.run()
    assert not app.exception
    assert "not available to the" in " ".join(w.value for w in app.warning)
    assert not app.dataframe and not app.table and not app.get("download_button")
