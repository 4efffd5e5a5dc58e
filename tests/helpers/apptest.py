"""The real app under Streamlit's AppTest: ``dashboard.py`` signed in as a
role and switched to a page, or one page script on its own with a context
of the test's making; and readers of what a page drew.

AppTest runs ``dashboard.py`` on a session's first run only; after that it
reruns the page script alone, so what ``dashboard.py`` draws (the sidebar,
the status line) is tested in Chromium (``tests/helpers/browser.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analysis.core.filters import Filters

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARD = str(ROOT / "dashboard.py")


def signed_in(app, role: str = "clinical", user: str | None = None):
    """Start an AppTest session as a signed-in user of ``role``."""
    import datetime as dt
    from ui.auth import SESSION_KEY, Session
    app.session_state[SESSION_KEY] = Session(user or f"test-{role}", role,
                                             dt.datetime.now(), "password")
    return app


def run_page(page: str, query: dict | None = None, timeout: float = 120,
             role: str = "clinical"):
    """Run the real app (dashboard.py) on one page, signed in as ``role``,
    with URL query parameters."""
    from streamlit.testing.v1 import AppTest
    app = signed_in(AppTest.from_file(DASHBOARD, default_timeout=timeout), role)
    for key, value in (query or {}).items():
        app.query_params[key] = value
    app.run()
    if page != "pages/overview.py":
        app.switch_page(page)
        app.run()
    return app


def assert_no_errors(app) -> None:
    assert not app.exception, [e.message for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def page_alone(page: str | Path, db_path: Path, filters=None, role: str = "clinical", *,
               snapshot=None, query: dict | None = None, timeout: float = 60, check: bool = True,
               **settings):
    """Run one page script on its own, with a page context of the test's
    making in the session (as ``dashboard.py`` keeps it): the role, the
    filters (none by default) and outcome settings (``timepoint=...``) on
    the clinic database ``db_path``; with ``check``, no exception or error."""
    from streamlit.testing.v1 import AppTest

    from analysis.sources import DataSource
    from analysis.storage import store
    from ui.page_context import CONTEXT_KEY, PageContext
    app = AppTest.from_file(str(ROOT / page), default_timeout=timeout)
    app.session_state[CONTEXT_KEY] = PageContext(
        DataSource(Path(db_path), is_demo=False),
        snapshot if snapshot is not None else store.snapshot(db_path),
        filters if filters is not None else Filters(), role=role, **settings)
    for key, value in (query or {}).items():
        app.query_params[key] = value
    app.run()
    if check:
        assert_no_errors(app)
    return app


# Non-default filters used by every page's second AppTest.
NON_DEFAULT_QUERY = {"site": ["Denver", "Boulder"], "tp": "6m", "def": "pain50", "pop": "completers"}


@dataclass(frozen=True)
class Setting:
    """A page's address query and the context it must give the page."""
    query: dict | None
    filters: Filters
    timepoint: str
    definition: str
    population: str
    ci: str = "wilson"


#: Every page's test runs it at the default settings and at non-default ones.
SETTINGS = {
    "default": Setting(None, Filters(), "3m", "pain30", "itt"),
    "non-default": Setting(NON_DEFAULT_QUERY, Filters(sites=tuple(NON_DEFAULT_QUERY["site"])),
                           NON_DEFAULT_QUERY["tp"], NON_DEFAULT_QUERY["def"],
                           NON_DEFAULT_QUERY["pop"]),
}


def context_of(app):
    """The page context the last run left in the session."""
    from ui.page_context import CONTEXT_KEY
    return app.session_state[CONTEXT_KEY]


def open_page(page: str, setting: Setting, role: str = "clinical",
              checked: tuple[str, ...] = ("filters", "timepoint", "definition", "population")):
    """The real app on ``page`` at ``setting``'s address: no exception or
    error, and the page's context holds the setting's ``checked`` values."""
    from ui.page_context import CONTEXT_KEY
    app = run_page(page, setting.query, role=role)
    assert_no_errors(app)
    ctx = app.session_state[CONTEXT_KEY]
    assert tuple(getattr(ctx, name) for name in checked) == \
        tuple(getattr(setting, name) for name in checked)
    return app


def empty_query(snap) -> dict:
    """Shared filters (site × condition × route) matching no treated patient."""
    import itertools

    import pytest

    from analysis.metrics import outcomes
    options = outcomes.filter_options(snap)
    seen = set(map(tuple, snap.query(
        "SELECT DISTINCT site, condition, route FROM patients WHERE treated").itertuples(
            index=False)))
    for combo in itertools.product(options.sites, options.conditions, options.routes):
        if combo not in seen:
            return {"site": [combo[0]], "condition": [combo[1]], "route": [combo[2]]}
    pytest.skip("every site × condition × route has patients")


# --------------------------------------------------------------------------
# reading what an AppTest page drew


def frame_with(app, column: str):
    """The first dataframe (or static table) on the page that has ``column``."""
    return next(d.value for d in [*app.dataframe, *app.table] if column in d.value.columns)


def caption_text(app) -> str:
    return "\n".join(c.value for c in app.caption)


def markdown_text(app) -> str:
    return "\n".join(m.value for m in app.markdown)


def metric_values(app) -> dict:
    return {m.label: m.value for m in app.metric}


def plotly_figures(app) -> list:
    """Every Plotly chart on the page, as a Figure."""
    import plotly.io as pio
    return [pio.from_json(chart.proto.spec) for chart in app.get("plotly_chart")]


def trace_values(data) -> list:
    """A trace's x, y or customdata as a plain list (None for a missing
    point); Plotly ships numeric arrays as base64 ({"dtype", "bdata"})."""
    import base64

    import numpy as np
    if data is None:
        return []
    if isinstance(data, dict) and "bdata" in data:
        values = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
        if "shape" in data:
            values = values.reshape([int(n) for n in str(data["shape"]).split(",")])
        data = values.tolist()
    return [list(v) if isinstance(v, (list, tuple)) else None if v is None or v != v else v
            for v in data]


def chart_traces(app) -> dict:
    """Title -> {trace name -> (x, y)} of every Plotly chart on the page."""
    charts = {}
    for fig in plotly_figures(app):
        charts[fig.layout.title.text] = {
            t.name: (None if t.x is None else trace_values(t.x),
                     None if t.y is None else trace_values(t.y))
            for t in fig.data}
    return charts
