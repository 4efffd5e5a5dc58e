"""One quantity, one number, everywhere (issue 15).

Opens every page of the real app (AppTest) and the quarterly report for the
same filters and outcome settings, reads the headline figures *as shown*
(metric values, captions, table cells, sentences), and asserts that each
quantity has the same value wherever it appears: the ITT responder rate on
Overview, Conditions, Patient flow and Claim check (and the CLI); the median
pain change on Overview, Conditions and Pain; the opioid outcomes on
Overview and Opioids; treated patients, infusion visits and boosters on
Overview, Patient flow, Depression and Safety; the reporting quarter's
results and activity on Overview and in the report; the report's safety
table and the Safety page's row for that quarter; the Data page's visits and
the status line's.  Where two numbers differ on purpose (all patients vs the
treated, ITT vs patients with a follow-up) the test reads the label that says
so.  The status line itself is drawn by dashboard.py: see
tests/test_dashboard_browser.py.
"""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from analysis import cli
from analysis.core import definitions
from analysis.reports.quarterly.build import build_report, default_quarter
from analysis.reports.quarterly.tables import ALL_SITES, ANY_EVENT
from analysis.storage import store
from analysis.core.filters import Filters
from analysis.sources import DataSource
from tests.helpers.apptest import ROOT, assert_no_errors, caption_text, frame_with, markdown_text
from ui.page_context import CONTEXT_KEY, PageContext

SETTINGS = {
    "all patients": Filters(),
    "two sites": Filters(sites=("Boulder", "Denver")),
}
TIMEPOINT, DEFINITION, POPULATION = "3m", "pain30", "itt"
LABEL = definitions.TIMEPOINT_LABELS[TIMEPOINT]


def number(text: str) -> int:
    return int(text.replace(",", ""))


def k_of_n(text: str, after: str = "") -> tuple[int, int]:
    """The first "k of n" in ``text`` (after ``after``)."""
    match = re.search(re.escape(after) + r".*?([\d,]+) of ([\d,]+)", text, re.S)
    assert match, (after, text[:400])
    return number(match.group(1)), number(match.group(2))


def page(snap, filters: Filters, path: str, **widgets) -> AppTest:
    """One page script with the shared context (as dashboard.py sets it)."""
    app = AppTest.from_file(str(ROOT / path), default_timeout=120)
    app.session_state[CONTEXT_KEY] = PageContext(
        DataSource(snap.db_path, is_demo=False),
        snap, filters, TIMEPOINT, DEFINITION, POPULATION, "wilson", role="clinical")
    app.run()
    for key, value in widgets.items():
        widget = next(w for w in (*app.selectbox, *app.radio) if w.key == key)
        widget.set_value(value)
        app.run()
    assert_no_errors(app)
    return app


def metric(app, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def ci_captions(app) -> list[str]:
    """The captions that carry a 95% CI, in the order drawn."""
    return [c.value for c in app.caption if c.value.startswith("95% CI")]


def after_label(p_cell: str) -> str:
    """A table's p-value cell ("<0.001", "0.042") as written after a label."""
    return f"< {p_cell[1:]}" if p_cell.startswith("<") else f"= {p_cell}"


@pytest.fixture(scope="module", params=list(SETTINGS))
def shown(request, demo_db):
    """Every page's headline figures, as drawn, for one setting."""
    filters = SETTINGS[request.param]
    snap = store.Snapshot(demo_db)
    apps = {name: page(snap, filters, f"pages/{name}.py") for name in
            ("overview", "conditions", "pain", "patient_flow", "opioids", "mood", "safety",
             "data", "quarterly_report")}
    apps["claim_check"] = page(snap, filters, "pages/claim_check.py",
                               claim_definition=DEFINITION)
    yield filters, snap, apps
    snap.close()


def test_the_itt_responder_rate_is_one_number(shown, demo_db, capsys):
    filters, snap, apps = shown
    overview = apps["overview"]
    label = f"Responders ({DEFINITION})"
    rate = metric(overview, label)
    k, n = k_of_n(caption_text(overview), "95% CI")
    conditions = frame_with(apps["conditions"], "Patients (n)").set_index("Condition")
    total = conditions.loc["All conditions in view"]
    assert (number(total["Responders"]), number(total["Patients (n)"])) == (k, n)
    assert total["Rate"] == rate
    flow = apps["patient_flow"]
    assert metric(flow, "Responders, ITT (the program's rate, as on Overview)") == rate
    assert k_of_n(caption_text(flow), "") == (k, n)
    claim_page = apps["claim_check"]
    assert metric(claim_page, "Responder rate") == rate
    assert number(metric(claim_page, "Patients counted (n)")) == n
    # the command line, for the same patients
    capsys.readouterr()
    argv = ["responders", "--db", str(demo_db), "--json", "--timepoint", TIMEPOINT]
    for site in filters.sites:
        argv += ["--site", site]
    assert cli.main(argv) == 0
    overall = json.loads(capsys.readouterr().out)["overall"]
    assert (overall["responders"], overall["n"]) == (k, n)


def test_the_median_pain_change_is_one_number(shown):
    _, _, apps = shown
    overview = apps["overview"]
    value = metric(overview, "Median pain change")                  # "−3.0 points"
    ci = re.search(r"95% CI (\S+) to (\S+) · ([\d,]+) patients · ", caption_text(overview))
    assert ci, caption_text(overview)
    low, high, n = ci.groups()
    tested = re.search(r"Median pain change: Wilcoxon signed-rank p (.+?) against no change",
                       markdown_text(overview))
    assert tested, markdown_text(overview)
    p = tested.group(1)
    plain = frame_with(apps["conditions"], "Median pain change (95% CI)").set_index("Condition")
    assert plain.loc["All conditions in view", "Median pain change (95% CI)"] == \
        f"{value} (95% CI {low} to {high})"
    conditions = frame_with(apps["conditions"], "Wilcoxon p").set_index("Condition")
    total = conditions.loc["All conditions in view"]
    assert number(total["With a pain follow-up (n)"]) == number(n)
    assert after_label(total["Wilcoxon p"]) == p
    pain = markdown_text(apps["pain"])
    assert f"**Median change in pain: {value} (95% CI {low} to {high})**" in pain
    assert f"Wilcoxon signed-rank p {p} (against no change), {n} patients." in pain


def test_the_opioid_outcomes_are_one_number(shown):
    _, _, apps = shown
    overview, opioids = apps["overview"], apps["opioids"]
    # Overview's outcome tiles: responders, PGIC, median, mme50, mme_stop;
    # the Opioids page's: off opioids, then dose cut.
    _, _, _, halved_tile, stopped_tile = ci_captions(overview)[:5]
    stopped_page, halved_page = ci_captions(opioids)[:2]
    for tile, title, overview_caption, page_caption in (
            ("Opioid dose halved (mme50)", f"Dose cut by ≥50% at {LABEL}", halved_tile,
             halved_page),
            ("Off opioids (mme_stop)", f"Off opioids at {LABEL}", stopped_tile, stopped_page)):
        assert metric(overview, tile) == metric(opioids, title)
        assert k_of_n(overview_caption) == k_of_n(page_caption)
        # the page says which baseline opioid users it counts
        assert page_caption.endswith(f"baseline opioid users due at {LABEL} (ITT)")
    # the other counts of baseline opioid users on the page say what they are
    captions = caption_text(opioids)
    assert "all cohorts in view: of" in captions
    assert "baseline opioid users with two or more dose records" in captions


def test_what_patients_say_is_one_number(shown):
    """PGIC much or very much improved: the Overview tile and the Conditions
    table's all-conditions row (issue 18)."""
    _, _, apps = shown
    from analysis.metrics import pgic
    overview, conditions = apps["overview"], apps["conditions"]
    tile = metric(overview, pgic.LABEL)
    k, n = k_of_n(ci_captions(overview)[1])
    total = frame_with(conditions, "PGIC much improved").set_index("Condition").loc[
        "All conditions in view", "PGIC much improved"]
    assert total.startswith(f"{tile} (95% CI ")
    assert 0 < k < n and tile == f"{round(100 * k / n)}%"


def test_treated_patients_and_sessions_are_one_number(shown):
    _, snap, apps = shown
    overview = apps["overview"]
    treated = number(metric(overview, "Patients treated"))
    flow = frame_with(apps["patient_flow"], "Stage")
    stage = flow[flow["Stage"] == "Received a first infusion"].iloc[0]
    assert number(stage["Patients"]) == treated
    who = next(d.value for d in apps["mood"].dataframe if "Counted" in d.value.index)
    assert set(who.loc["Treated patients in view"]) == {treated}
    infusion_visits = number(metric(overview, "Infusion visits"))
    boosters = number(metric(overview, "Boosters"))
    safety = apps["safety"]
    assert number(metric(safety, "Treatment sessions in view")) == infusion_visits + boosters
    assert (f"{infusion_visits:,} infusion visits and {boosters:,} boosters"
            in caption_text(safety))
    # The Data page counts every patient's visits; it says how they make up
    # the status line's treated patients' visits.
    data = caption_text(apps["data"])
    match = re.search(r"([\d,]+) visits of all ([\d,]+) patients in view: the ([\d,]+) visits "
                      r"of the ([\d,]+) treated patients \(the status line's count\) and "
                      r"([\d,]+) visits of ([\d,]+) patients never treated", data)
    assert match, data
    all_visits, all_patients, visits, patients, other_visits, others = map(number, match.groups())
    assert patients == treated
    assert (all_visits, all_patients) == (visits + other_visits, patients + others)


def test_the_reporting_quarter_is_one_number_on_overview_and_in_the_report(shown):
    filters, snap, apps = shown
    overview = apps["overview"]
    side = next(d.value for d in overview.dataframe if "measure" in d.value.columns)
    quarter = [c for c in side.columns if re.fullmatch(r"\d{4}Q\d", c)][0]
    side = side.set_index("measure")
    built = build_report(snap, quarter, filters=filters)
    assert built.quarter == default_quarter(snap)
    due = built.due.set_index(["timepoint", "definition"])
    for measure, definition in ((f"Responders ({DEFINITION})", DEFINITION),
                                ("Opioid dose halved (mme50)", "mme50"),
                                ("Off opioids (mme_stop)", "mme_stop")):
        k, n = k_of_n(side.loc[measure, quarter])
        row = due.loc[(TIMEPOINT, definition)]
        assert (int(row["responders"]), int(row["n"])) == (k, n), measure
    activity = built.activity.set_index("site").loc[ALL_SITES]
    assert number(side.loc["Infusion visits", quarter]) == activity["infusions"]
    assert number(side.loc["Boosters", quarter]) == activity["boosters"]
    assert number(side.loc["Patients treated", quarter]) == activity["new_patients"]
    # and the Quarterly report page shows the report's own numbers
    tables = [d.value for d in apps["quarterly_report"].table]   # static tables: they wrap
    shown_activity = next(t for t in tables if "Site" in t.columns).set_index("Site")
    assert shown_activity.loc[ALL_SITES, "Infusion visits"] == f"{activity['infusions']:,}"
    assert shown_activity.loc[ALL_SITES, "Boosters"] == f"{activity['boosters']:,}"


def test_the_reports_safety_table_is_the_safety_pages_row_for_the_quarter(shown):
    filters, snap, apps = shown
    quarter = default_quarter(snap)
    built = build_report(snap, quarter, filters=filters).safety.set_index("event")
    by_quarter = frame_with(apps["safety"], "Quarter").set_index("Quarter").loc[quarter]
    for column, event in (("Any adverse event", ANY_EVENT),
                          ("Systolic BP ≥ 180", "Systolic BP ≥ 180 mmHg"),
                          ("SpO2 below 90%", "SpO₂ < 90%")):
        row = built.loc[event]
        assert k_of_n(by_quarter[column]) == (int(row["events"]), int(row["n"])), event
        assert by_quarter[column].startswith(f"{row['per_100']:.1f} "), event
    assert by_quarter["Sessions"] == built.loc[ANY_EVENT, "n"]


def test_depression_response_is_one_number(shown):
    _, _, apps = shown
    mood = apps["mood"]
    label = "Depression response (PHQ-9 ≥50% lower)"
    k, n = k_of_n(caption_text(mood), "95% CI")
    who = next(d.value for d in mood.dataframe if "Counted" in d.value.index)
    assert who.loc["Counted", "PHQ-9 response"] == n
    # the cross-table counts fewer on purpose, and its caption says so and
    # quotes the tile's numbers
    assert f"{k:,} of {n:,} patients, which counts everyone due" in caption_text(mood)
    assert metric(mood, label)
