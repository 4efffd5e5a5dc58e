"""The Claim check page under AppTest: the verdict, rate and sentences it
shows are the engine's (and the CLI's), and no group under 11 patients shows
anywhere on it."""

from __future__ import annotations

import json
import re

import pytest

from analysis import cli
from analysis.claims import claim, wording
from analysis.core import audience
from analysis.storage import store
from analysis.core.audience import SMALL_CELL, SUPPRESSED, Audience
from analysis.core.filters import Filters
from tests.helpers.apptest import NON_DEFAULT_QUERY, assert_no_errors, frame_with, run_page
from tests.helpers.builders import Program, build_program
from tests.helpers.documents import assert_no_small_cells_in_table, counts_in_text
from ui import theme

PAGE = "pages/claim_check.py"
_LABEL = re.compile(r'font-weight: 700;">([^<]+)</div>')


def cli_claim(db_path, capsys, *args) -> dict:
    capsys.readouterr()
    assert cli.main(["claim", "--db", str(db_path), "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def shown_verdict(app) -> str:
    labels = [m.group(1) for el in app.markdown if (m := _LABEL.search(el.value))]
    assert len(labels) == 1, labels
    return labels[0]


def metric(app, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def bullet_items(app) -> list[str]:
    items = []
    for el in app.markdown:
        items += [line[2:] for line in el.value.splitlines() if line.startswith("- ")]
    return items


def banner_colour(app) -> str:
    colours = [m.group(1) for el in app.markdown
               if (m := re.search(r"border-left: 8px solid ([^;]+);", el.value))]
    assert len(colours) == 1, colours
    return colours[0]


def numbered_items(app) -> list[str]:
    items = []
    for el in app.markdown:
        items += [re.sub(r"^\d+\. ", "", line) for line in el.value.splitlines()
                  if re.match(r"^\d+\. At least", line)]
    return items


def assert_matches_report(app, report: claim.ClaimReport) -> None:
    assert shown_verdict(app) == wording.VERDICT_LABELS[report.verdict]
    assert banner_colour(app) == theme.VERDICT_COLOURS[report.verdict]
    assert metric(app, "At least (defensible)") == \
        report.at_least_text().removeprefix("at least ")
    # "What you can say" leads with the strongest wording, highest L first
    assert numbered_items(app) == [s.defensible for s in report.defensible]
    assert any(report.verdict_text in el.value for el in app.markdown)
    assert metric(app, "Responder rate") == report.rate_only_text()
    assert metric(app, "Patients counted (n)") == report.n_text()
    # the statistics, one click away ("How this is computed")
    statistics = dict(frame_with(app, "Statistic").values.tolist())
    assert statistics["95% CI (Wilson, two-sided)"] == report.ci_text()
    assert statistics["One-sided 95% exact bounds"] == report.bounds_text()
    assert statistics["p-value (one-sided)"] == report.p_text()
    assert f"**In words:** {report.headline.text}" in [el.value for el in app.markdown]
    # "What you can say": every sentence the engine writes, and no other
    written = [s.text for s in report.statements
               if s.kind in ("supported", "not supported", "too few", "no data")]
    assert sorted(bullet_items(app)) == sorted(written)
    gaps = {s.text for s in report.statements if s.kind == "completers only"}
    assert gaps <= {w.value for w in app.warning}


def assert_no_small_cells_on_page(app) -> None:
    for frame in (df.value for df in app.dataframe):
        rows = frame.astype(str).values.tolist()
        assert_no_small_cells_in_table(list(frame.columns), rows)
    texts = [el.value for group in (app.markdown, app.caption, app.warning, app.info)
             for el in group]
    for text in texts:
        assert all(n >= SMALL_CELL for n in counts_in_text(text)), text
    n = metric(app, "Patients counted (n)")
    assert n in ("0", audience.SUPPRESSED) or int(n.replace(",", "")) >= SMALL_CELL
    charts = app.get("plotly_chart")
    assert charts, "the sensitivity grid is drawn"
    spec = json.loads(charts[0].proto.spec)
    heatmaps = [t for t in spec["data"] if t["type"] == "heatmap"]
    assert len(heatmaps) == 2
    for trace in heatmaps:
        for text_row, custom_row in zip(trace["text"], trace["customdata"]):
            for text, custom in zip(text_row, custom_row):
                patients = custom[1]
                # the cell's rate over its defensible figure, as markup Plotly
                # draws (it was escaped and shown as "<br><sub>" text)
                assert "&lt;" not in text
                # "too few to tell" on two lines, to fit its cell at 1280 px
                too_few = text.replace("<br>", " ") == wording.TOO_FEW
                if patients != "0" and not too_few:
                    assert re.fullmatch(r"[^<]+<br><sub>≥[^<]+</sub>", text), text
                if patients == audience.SUPPRESSED:   # a withheld n: the reading is too few
                    assert too_few and custom[2] == wording.TOO_FEW
                else:
                    assert int(patients.replace(",", "")) in (0,) or \
                        int(patients.replace(",", "")) >= SMALL_CELL


def test_demo_page_matches_the_engine_and_the_cli(app_db, capsys):
    """The clinical team sees every count (internal audience, issue 14): the
    page is the engine's and the CLI's, small groups flagged."""
    app = run_page(PAGE)
    assert_no_errors(app)
    snap = store.snapshot(app_db)
    report = claim.claim_report(snap, audience=Audience.CLINICAL)
    assert_matches_report(app, report)
    assert shown_verdict(app) == wording.VERDICT_LABELS[cli_claim(app_db, capsys)["verdict"]]
    conditions = frame_with(app, "Against 70%")
    assert list(conditions.columns) == ["Condition", "Patients", "Rate (95% CI)", "Against 70%",
                                        "Small group"]
    assert conditions["Patients"].tolist() == report.by_condition["patients"].tolist()
    assert SUPPRESSED not in conditions["Patients"].tolist()
    assert [b.label for b in app.get("download_button")] == ["Memo (HTML)", "Memo (PDF)"]


def test_demo_page_for_marketing_is_the_external_report(app_db, capsys):
    app = run_page(PAGE, role="marketing")
    assert_no_errors(app)
    report = claim.claim_report(store.snapshot(app_db), audience=Audience.EXTERNAL)
    assert_matches_report(app, report)
    assert_no_small_cells_on_page(app)
    # the breakdown tables show the withheld groups as such
    conditions = frame_with(app, "Against 70%")
    assert list(conditions.columns) == ["Condition", "Patients", "Rate (95% CI)", "Against 70%"]
    assert conditions["Patients"].tolist() == report.by_condition["patients"].tolist()


def test_marketing_view_with_sidebar_filters_and_other_readings(app_db, capsys):
    """Issue 14: for marketing the sidebar's filters do not apply (the whole
    program, so two filter states cannot be differenced); changing the page's
    own reading changes the reading exactly as the external report's."""
    app = run_page(PAGE, NON_DEFAULT_QUERY, role="marketing")
    assert_no_errors(app)
    sites = ("Denver", "Boulder")
    snap = store.snapshot(app_db)
    report = claim.claim_report(snap, filters=Filters(sites=tuple(sorted(sites))))
    assert report.filters == Filters()
    expected = cli_claim(app_db, capsys)
    assert report.test.n == expected["n"]
    assert_matches_report(app, report)
    assert_no_small_cells_on_page(app)

    app.selectbox(key="claim_timepoint").set_value("6m")
    app.selectbox(key="claim_definition").set_value("pain2pt")
    app.radio(key="claim_population").set_value("completers")
    app.toggle(key="claim_completers").set_value(True)
    app.number_input(key="claim_target").set_value(60.0)
    app.run()
    assert_no_errors(app)
    report = claim.claim_report(snap, 0.6, "6m", "pain2pt", "completers",
                                Filters(sites=tuple(sorted(sites))), include_completers=True)
    expected = cli_claim(app_db, capsys, "--timepoint", "6m", "--definition", "pain2pt",
                         "--population", "completers", "--target", "0.6")
    assert report.verdict in (expected["verdict"], wording.TOO_FEW)
    assert_matches_report(app, report)
    assert any("optimistic (completers only)" in w.value for w in app.warning)
    assert_no_small_cells_on_page(app)


@pytest.fixture
def program_app(tmp_path, monkeypatch):
    def build(spec: Program):
        path = build_program(tmp_path / "program", spec)
        monkeypatch.setenv("OUTCOMES_DB", str(path))
        return path
    return build


def test_page_says_when_completers_pass_but_itt_does_not(program_app, capsys):
    # 12 non-responders: with 10, "90 of 100" would give them away (issue 14)
    path = program_app(Program(responders=90, non_responders=12, missing=50))
    app = run_page(PAGE, role="marketing")
    assert_no_errors(app)
    assert shown_verdict(app) == "Contradicted"
    assert cli_claim(path, capsys)["verdict"] == "contradicted"
    report = claim.claim_report(store.snapshot(path))
    assert_matches_report(app, report)
    gap = next(s.text for s in report.statements
               if s.kind == "completers only" and (s.timepoint, s.definition) == ("3m", "claim"))
    assert gap.startswith("Completers-only passes but ITT does not: at three months")
    assert "counting the 50 who had no follow-up as not improved" in gap
    # under the verdict, and again under "What you can say"
    assert [w.value for w in app.warning].count(gap) == 2
    assert_no_small_cells_on_page(app)


def test_page_on_a_supported_program_and_its_target(program_app, capsys):
    path = program_app(Program(responders=135, non_responders=15))
    app = run_page(PAGE)
    assert_no_errors(app)
    report = claim.claim_report(store.snapshot(path), audience=Audience.CLINICAL)
    assert shown_verdict(app) == "Supported" == wording.VERDICT_LABELS[
        cli_claim(path, capsys)["verdict"]]
    assert_matches_report(app, report)
    assert report.headline.text in bullet_items(app)

    app.number_input(key="claim_target").set_value(95.0)
    app.run()
    assert shown_verdict(app) == "Contradicted" == wording.VERDICT_LABELS[
        cli_claim(path, capsys, "--target", "0.95")["verdict"]]
    assert_matches_report(app, claim.claim_report(store.snapshot(path), 0.95,
                                                  audience=Audience.CLINICAL))


def test_page_on_8_patients_is_too_few_to_tell_and_shows_no_count(program_app, capsys):
    path = program_app(Program(responders=6, non_responders=2))
    app = run_page(PAGE, role="marketing")
    assert_no_errors(app)
    # SPEC §4: for the external audience 1-10 patients is "too few to tell";
    # the command line (clinic staff) keeps the test's own verdict.
    assert shown_verdict(app) == "Too few to tell"
    assert cli_claim(path, capsys)["verdict"] == "inconclusive"
    assert metric(app, "Responder rate") == wording.TOO_FEW
    assert metric(app, "Patients counted (n)") == SUPPRESSED
    assert_matches_report(app, claim.claim_report(store.snapshot(path)))
    assert_no_small_cells_on_page(app)


def test_page_on_10_non_responders_shows_no_red_banner(program_app):
    """0 of 10 (Boulder + Gastroparesis in the review): the test alone says
    contradicted, the text says the rate cannot be stated: the banner says
    too few to tell, in grey, never a red Contradicted."""
    program_app(Program(responders=0, non_responders=10))
    app = run_page(PAGE, role="marketing")
    assert_no_errors(app)
    assert shown_verdict(app) == "Too few to tell"
    assert banner_colour(app) == theme.NEUTRAL != theme.BAD
    banner = next(el.value for el in app.markdown if "border-left: 8px solid" in el.value)
    assert "Contradicted" not in banner and "cannot be stated" in banner
    assert metric(app, "At least (defensible)") == "–"
