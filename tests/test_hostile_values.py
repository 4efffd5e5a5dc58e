"""Everything from the data reaches the screen as text, never markup (issue
13).  A clinic whose export carries hostile site, condition, route, visit
type, adverse event and patient id values (markdown images and links, HTML
anchors) is shown on every page, for every role: no markdown element holds
them unescaped and no chart holds them as Plotly markup."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from analysis.ingest import data_quality
from tests.helpers.apptest import assert_no_errors, plotly_figures, run_page
from tests.helpers.builders import (HOSTILE, HOSTILE_ADVERSE, HOSTILE_FILE_NAME, HOSTILE_PATIENT,
                                    HOSTILE_SITE_HTML, HOSTILE_SITE_MD, build_hostile_db)
from ui import pages

UNESCAPED_TAG = re.compile(r"(?<!\\)<(a|img|b)[\s>]", re.IGNORECASE)


@pytest.fixture(scope="module")
def hostile_db(demo_exports, tmp_path_factory):
    return build_hostile_db(demo_exports, tmp_path_factory.mktemp("hostile"))


def markdown_bodies(app) -> list[str]:
    """The source of every element Streamlit renders as markdown."""
    bodies = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title",
                 "header", "subheader", "exception", "toast"):
        bodies += [str(e.value) for e in app.get(kind)]
    bodies += [m.label for m in app.metric]
    bodies += [e.label for e in app.get("expander")]
    bodies += [t.label for t in app.get("tab")]
    for radio in app.radio:
        bodies += [str(o) for o in radio.options]
    return bodies


def figure_strings(fig) -> list[str]:
    """Every string a chart renders (its hover and text templates excepted)."""
    found = []

    def walk(node, key=""):
        if isinstance(node, dict):
            for k, v in node.items():
                if k != "template" and not k.endswith("template"):
                    walk(v, k)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v, key)
        elif isinstance(node, str):
            found.append(node)

    walk(fig.to_plotly_json())
    return found


def assert_shown_as_text(app, where: str) -> None:
    for body in markdown_bodies(app):
        for value in HOSTILE:
            assert value not in body, f"{where}: unescaped {value!r} in markdown {body[:300]!r}"
        assert "](http://attacker" not in body and not UNESCAPED_TAG.search(body), (where, body)
    for fig in plotly_figures(app):
        for text in figure_strings(fig):
            if "attacker" in text:
                assert "<" not in text, f"{where}: Plotly markup from the data: {text[:300]!r}"
    # st.table draws every cell as markdown (a grid, st.dataframe, does not)
    for table in app.table:
        for cell in table.value.astype(str).to_numpy().ravel():
            for value in HOSTILE:
                assert value not in cell, f"{where}: unescaped {value!r} in a static table"


def _pages(role):
    return [spec.path for spec in pages.pages_for(role)]


@pytest.mark.parametrize("page", _pages("clinical"))
def test_every_page_shows_hostile_values_as_text(hostile_db, monkeypatch, page):
    monkeypatch.setenv("OUTCOMES_DB", str(hostile_db))
    query = {"site": [HOSTILE_SITE_MD, HOSTILE_SITE_HTML, "Denver"]}
    if page == "pages/patient_timeline.py":
        query = {"patient": HOSTILE_PATIENT}
    app = run_page(page, query=query)
    assert_no_errors(app)
    assert_shown_as_text(app, page)
    if page == "pages/overview.py":   # the status line names the filtered sites
        assert any("attacker" in c.value for c in app.caption)
    if page == "pages/patient_timeline.py":
        assert any("attacker" in t.value for t in [*app.title, *app.markdown, *app.caption]) or \
            any("attacker" in s for f in plotly_figures(app) for s in figure_strings(f))


@pytest.mark.parametrize("page", _pages("marketing"))
def test_marketing_pages_show_hostile_values_as_text(hostile_db, monkeypatch, page):
    monkeypatch.setenv("OUTCOMES_DB", str(hostile_db))
    app = run_page(page, query={"site": [HOSTILE_SITE_MD, HOSTILE_SITE_HTML, "Denver"]}, role="marketing")
    assert_no_errors(app)
    assert_shown_as_text(app, page)


def test_data_page_shows_a_hostile_file_name_and_reason_as_text(hostile_db, tmp_path,
                                                                monkeypatch):
    import shutil

    from streamlit.testing.v1 import AppTest
    from tests.helpers.apptest import DASHBOARD, signed_in
    from tests.helpers.builders import write_grant
    clinic = tmp_path / "clinic.duckdb"
    shutil.copy(hostile_db, clinic)
    monkeypatch.setenv("OUTCOMES_DB", str(clinic))
    export = data_quality.save_upload(write_grant(clinic), "odd.csv",
                                      b"Patient,Seen On,Kind\nZ1,2026-01-05,intake\n", tmp_path)
    names = {str(export): HOSTILE_FILE_NAME}
    refused = data_quality.ingest_uploads([export], write_grant(clinic), display_names=names)
    app = signed_in(AppTest.from_file(DASHBOARD, default_timeout=120))
    app.session_state["data_last_ingest"] = {
        "table": data_quality.summary_table(refused, names), "pending": names,
        "refused_uploads": [f"{HOSTILE_FILE_NAME}: the file is empty"], "at": dt.datetime.now()}
    app.run()
    app.switch_page("pages/data.py").run()
    assert_no_errors(app)
    assert_shown_as_text(app, "data page")
    assert any("attacker" in w.value for w in app.warning)       # the refusal names the file
    assert any("attacker" in m.value for m in app.markdown)      # the mapping form names it


def test_one_helper_for_markdown_and_one_chokepoint_for_plotly():
    import plotly.graph_objects as go

    from ui import safe, theme
    assert safe.text(HOSTILE_SITE_MD) == \
        r"\!\[t\]\(http\:" + safe.WORD_JOINER + r"//attacker\.example/site\.png\)"
    assert safe.text("www.x.org a@b.org") == \
        f"www{safe.WORD_JOINER}\\.x\\.org a\\@{safe.WORD_JOINER}b\\.org"   # no autolinks
    assert safe.text("Denver\n# Heading") == r"Denver \# Heading"   # no new line, no heading
    assert safe.text("St. Mary's") == r"St\. Mary\'s"
    fig = go.Figure(go.Bar(x=[HOSTILE_SITE_HTML, "A&B"], y=[1, 2], name=HOSTILE_SITE_HTML,
                           text=[safe.Markup("all<br>(3)"), "&lt;b&gt;"],
                           hovertemplate="%{x}<br>%{y}<extra></extra>"))
    fig.add_annotation(text=HOSTILE_ADVERSE)
    theme.styled(fig, f"Pain at {HOSTILE_SITE_HTML}")
    trace = fig.data[0]
    assert list(trace.x) == [HOSTILE_SITE_HTML.replace("<", "&lt;"), "A&amp;B"]
    assert trace.name == HOSTILE_SITE_HTML.replace("<", "&lt;")
    assert list(trace.text) == ["all<br>(3)", "&amp;lt;b&amp;gt;"]   # code markup kept
    assert trace.hovertemplate == "%{x}<br>%{y}<extra></extra>"      # templates are code
    assert fig.layout.annotations[0].text == HOSTILE_ADVERSE.replace("<", "&lt;")
    assert fig.layout.title.text == f"Pain at {HOSTILE_SITE_HTML}".replace("<", "&lt;")
