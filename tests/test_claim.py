"""The claim check (issue 5): verdicts on generated programs, the wording,
small-cell suppression, the data fingerprint and the substantiation memo.

Generated programs are built as CSV exports here and go through the real
ingest, so every number is known in advance; the demo clinic is only used
for properties that must hold whatever its numbers are.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import scipy.stats

from analysis.claims import claim, substantiation, wording
from analysis.core import audience, definitions, palette, stats
from analysis.storage import store
from analysis.reports import memo
from analysis.metrics import outcomes
from analysis.storage.fingerprint import data_fingerprint
from analysis.core.formatting import month_year, rate_with_ci
from analysis.metrics.outcomes import SensitivityCell
from analysis.core.audience import SMALL_CELL
from tests.helpers.builders import (Program, ingest_into, period_of, program_rows,
                                    program_snapshot, write_program_csv)
from tests.helpers.documents import assert_memo_html_safe, counts_in_text


# --------------------------------------------------------------------------
# the expected rate as the memo writes it


def wilson(k: int, n: int) -> str:
    p = stats.proportion(k, n)
    return rate_with_ci(p.rate, p.ci_low, p.ci_high)


# --------------------------------------------------------------------------
# verdicts on generated programs


def test_program_with_90_percent_responders_is_supported(tmp_path):
    spec = Program(responders=135, non_responders=15)
    snap = program_snapshot(tmp_path, spec)
    report = claim.claim_report(snap)
    assert report.verdict == "supported"
    assert (report.test.n, report.test.responders) == (150, 135)
    assert report.test.lower_bound > 0.70
    assert report.rate_text() == wilson(135, 150)
    first, last = period_of(spec)
    assert report.headline.kind == "supported"
    assert report.headline.text == (
        f"Of the 150 patients treated between {month_year(first)} and {month_year(last)} who "
        f"were taking opioids when treatment began and reached three months, {wilson(135, 150)} "
        f"reported at least 30% less pain and cut their daily opioid dose by at least half.")
    assert report.verdict_text.startswith("The data support “over 70% of patients taking opioids")
    supported = [s for s in report.statements if s.kind == "supported"]
    assert report.headline in supported
    assert all(s.population == "itt" for s in supported)


def test_program_with_40_percent_responders_is_contradicted(tmp_path):
    snap = program_snapshot(tmp_path, Program(responders=60, non_responders=90))
    report = claim.claim_report(snap)
    assert report.verdict == "contradicted"
    assert report.test.upper_bound < 0.70
    assert report.headline.kind == "not supported"
    assert report.headline.text.startswith(
        "“Over 70% of patients taking opioids report at least 30% less pain and cut their daily "
        "opioid dose by at least half at three months” is not supported (the rate is clearly "
        "below 70%).")
    assert f"{wilson(60, 150)} reported at least 30% less pain and cut" in report.headline.text


def test_program_with_8_patients_is_too_few_to_tell_and_shows_no_rate(tmp_path):
    snap = program_snapshot(tmp_path, Program(responders=6, non_responders=2))
    report = claim.claim_report(snap)
    # SPEC §4: for the external audience 1-10 patients is "too few to tell",
    # never a verdict (the engine's test alone says inconclusive).
    assert report.verdict == wording.TOO_FEW and report.test.verdict == "inconclusive"
    assert report.test.n == 8
    assert report.at_least_text() == "–" and report.headline.defensible is None
    assert report.too_few
    assert report.rate_text() == wording.TOO_FEW and report.rate_only_text() == wording.TOO_FEW
    # a withheld n reads "too few to report" (issue 14: "fewer than 11" would tell a
    # small count from a complement)
    assert report.n_text() == audience.SUPPRESSED
    assert report.bounds_text() == "–" and report.p_text() == "–"
    assert report.headline.kind == "too few"
    assert "8" not in report.headline.text and "75%" not in report.verdict_text
    cell = report.sensitivity.query("timepoint == '3m' and definition == 'claim' "
                                    "and population == 'itt'").iloc[0]
    assert cell.rate_text == wording.TOO_FEW and pd.isna(cell.n)
    assert cell.verdict == wording.TOO_FEW and pd.isna(cell.lower_bound)
    # and nothing in the memo gives the 8 away
    html_text = memo.memo_html(substantiation.memo_data(report, data_fingerprint(snap)))
    assert_memo_html_safe(html_text)
    assert " 8 patients" not in html_text


def test_too_few_patients_never_show_a_verdict_colour(tmp_path):
    """0 of 10: the exact test alone would say contradicted (upper bound
    1 - 0.05^(1/10) = 25.9% < 70%), but the text says the rate cannot be
    stated, so no red banner may stand beside it: too few to tell, grey."""
    snap = program_snapshot(tmp_path, Program(responders=0, non_responders=10))
    report = claim.claim_report(snap)
    assert report.test.verdict == "contradicted" and report.test.n == 10
    assert report.test.upper_bound == pytest.approx(1 - 0.05 ** (1 / 10))
    assert report.verdict == wording.TOO_FEW
    assert "cannot be stated" in report.verdict_text
    data = substantiation.memo_data(report, data_fingerprint(snap))
    assert data.verdict == wording.TOO_FEW
    assert memo.VERDICT_COLOURS[data.verdict] == memo.VERDICT_COLOURS["no data"]
    html_text = memo.memo_html(data)
    banner = html_text[html_text.index('<div class="verdict"'):]
    banner = banner[:banner.index("</div>")]
    assert "Contradicted" not in banner and memo.VERDICT_COLOURS["contradicted"] not in banner
    grid = substantiation.sensitivity_table(report.sensitivity)
    row = grid.rows[list(definitions.DEFINITIONS).index("claim")]
    column = grid.columns.index("3 months, ITT")
    assert row[column] == wording.TOO_FEW and grid.verdicts[
        list(definitions.DEFINITIONS).index("claim")][column] is None
    assert not any(s.verdict == "contradicted" for s in report.statements if s.n < SMALL_CELL)


@pytest.mark.parametrize("lower, text", [(0.6299, "62%"), (0.62, "62%"), (0.0999999, "9%"),
                                         (0.0047, "0.4%"), (0.00047, "0.04%"), (0.0, None),
                                         (None, None), (0.000004, None)])
def test_at_least_rounds_the_lower_bound_down(lower, text):
    assert wording.at_least_text(lower) == text


def test_defensible_figure_for_every_reading(tmp_path):
    """L is the one-sided 95% exact lower bound (statsmodels' Clopper-Pearson
    at alpha = 0.10, two-sided, gives the same end), and "What you can say"
    leads with the readings of highest L."""
    from statsmodels.stats.proportion import proportion_confint
    spec = Program(responders=60, non_responders=40, missing=20)
    snap = program_snapshot(tmp_path, spec)
    report = claim.claim_report(snap)
    check = outcomes.claim_check(snap)
    first, last = period_of(spec)
    by_key = {(s.timepoint, s.definition, s.population): s for s in report.statements}
    checked = 0
    for cell in check.sensitivity:
        if cell.n == 0:
            assert cell.lower_bound is None
            continue
        expected = proportion_confint(cell.responders, cell.n, alpha=0.10, method="beta")[0]
        assert cell.lower_bound == pytest.approx(expected, abs=1e-12)
        statement = by_key.get((cell.timepoint, cell.definition, cell.population))
        if statement is None or cell.n < SMALL_CELL:
            continue
        assert statement.lower_bound == cell.lower_bound
        if cell.responders == 0:                 # L = 0: nothing above 0 can be said
            assert cell.lower_bound == 0 and statement.defensible is None
            continue
        floor = int(100 * cell.lower_bound)
        assert statement.defensible.startswith(f"At least {floor}% of the {cell.n} patients")
        checked += 1
    assert checked == 5      # 3 months, ITT: pain30, pain50, pain2pt, mme50, claim
    # 3 months, claim, ITT: 60 of 120.
    chosen = by_key[("3m", "claim", "itt")]
    lower = scipy.stats.binomtest(60, 120, alternative="greater").proportion_ci(0.95).low
    assert chosen.defensible == (
        f"At least {int(100 * lower)}% of the 120 patients {wording.period_text(first, last)} who "
        "were taking opioids when treatment began and reached three months reported at least "
        "30% less pain and cut their daily opioid dose by at least half (one-sided 95% lower "
        "bound; observed 50%).")
    strongest = report.defensible
    assert [s.lower_bound for s in strongest] == sorted((s.lower_bound for s in strongest),
                                                        reverse=True)
    assert all(s.population == "itt" for s in strongest)
    assert strongest[0].lower_bound == max(c.lower_bound for c in check.sensitivity
                                           if c.population == "itt" and c.n >= SMALL_CELL)
    data = substantiation.memo_data(report, data_fingerprint(snap))
    assert data.defensible == [s.defensible for s in strongest]
    assert report.at_least_text() == f"at least {int(100 * lower)}%"


def test_completers_pass_but_itt_does_not(tmp_path):
    # 12 non-responders (issue 14: with 10, "90 of 100" gives the 10 away and is withheld)
    spec = Program(responders=90, non_responders=12, missing=50)
    snap = program_snapshot(tmp_path, spec)
    itt = claim.claim_report(snap)
    completers = claim.claim_report(snap, population="completers", include_completers=True)
    assert (itt.test.n, itt.test.responders, itt.verdict) == (152, 90, "contradicted")
    assert (completers.test.n, completers.verdict) == (102, "supported")
    assert itt.excluded["missing_follow_up_counted_as_non_responder"] == 50

    gaps = [s for s in itt.statements if s.kind == "completers only"]
    chosen = [g for g in gaps if (g.timepoint, g.definition) == ("3m", "claim")]
    assert len(chosen) == 1
    first, last = period_of(spec)
    assert chosen[0].text == (
        f"Completers-only passes but ITT does not: at three months, {wilson(90, 102)} of the 102 "
        f"patients who were taking opioids when treatment began and had a three-month follow-up "
        f"reported at least 30% less pain and cut their daily opioid dose by at least half, but "
        f"of all 152 patients treated between {month_year(first)} and {month_year(last)} who "
        f"were taking opioids when treatment began and reached three months, counting the 50 "
        f"who had no follow-up as not improved, {wilson(90, 152)} did. “Over 70% of patients "
        f"taking opioids report at least 30% less pain and cut their daily opioid dose by at "
        f"least half at three months” is not supported.")
    # ITT sentences only by default; completers ones only with their caveat
    assert all(s.population == "itt" for s in itt.statements)
    caveated = [s for s in completers.statements
                if s.population == "completers" and s.kind == "supported"]
    assert caveated and all("Caveat: completers only" in s.text for s in caveated)
    assert "counting them as not improved (ITT), the rate is " + wilson(90, 152) \
        in completers.headline.text
    assert "the 50 patients who reached three months without a follow-up" \
        in completers.headline.text


def test_who_is_counted_and_why(tmp_path):
    spec = Program(responders=40, non_responders=20, missing=15, not_on_opioids=30,
                   no_baseline_pain=12, not_yet_due=14)
    snap = program_snapshot(tmp_path, spec)
    report = claim.claim_report(snap)
    flow = report.flow.set_index("key")["patients"].to_dict()
    assert flow == {"treated": 131, "no_baseline_pain": 12, "not_on_opioids_at_baseline": 30,
                    "not_yet_due": 14, "counted": 75, "with_follow_up": 60,
                    "without_follow_up": 15}
    assert report.treated == 131 and report.test.n == 75
    assert report.flow_text == (
        "Of the 131 treated patients, 75 are counted in the rate and 56 are left out: no pain "
        "score at the start of treatment: 12; not taking opioids at the start of treatment: 30; "
        "not yet due (the three-month window had not closed by the data cutoff): 14. Patients "
        "counted who had no three-month follow-up count as not improved (ITT): 15.")
    # pain-only readings count the patients off opioids and not the ones without pain
    pain = claim.claim_report(snap, definition="pain30")
    assert pain.test.n == 75 + 30


def test_small_groups_are_suppressed_with_their_complement(tmp_path):
    spec = Program(responders=100, non_responders=20, small_condition=5)
    snap = program_snapshot(tmp_path, spec)
    report = claim.claim_report(snap)
    by_condition = report.by_condition.set_index("group")
    assert by_condition.loc["Lupus", "suppressed"]
    # the only other condition would give Lupus away from the total: hidden too
    assert by_condition.loc["Migraine", "suppressed"]
    assert not by_condition.loc["All conditions", "suppressed"]
    assert by_condition.loc["All conditions", "patients"] == "120"
    for frame in (report.by_condition, report.by_site):
        shown = frame[~frame.suppressed]
        assert (shown.n >= SMALL_CELL).all()
        withheld = frame[frame.suppressed]
        assert withheld[["rate", "ci_low", "ci_high"]].isna().all().all()
        assert (withheld.rate_text == audience.SUPPRESSED).all()
        # a withheld group's n may stay when it gives nothing away (issue 14)
        assert all(p == audience.SUPPRESSED or int(p) >= SMALL_CELL for p in withheld.patients)


def test_report_agrees_with_the_engine(demo_snapshot):
    for reading in [wording.LITERAL_READING, wording.Reading("6m", "pain30", "completers", 0.6)]:
        report = claim.claim_report(demo_snapshot, reading.target, *reading.key)
        check = outcomes.claim_check(demo_snapshot, reading.target, *reading.key)
        assert report.test == check.test
        assert report.excluded == check.excluded
        grid = report.sensitivity.set_index(["timepoint", "definition", "population"])
        for cell in check.sensitivity:
            row = grid.loc[(cell.timepoint, cell.definition, cell.population)]
            # issue 14: a reading whose n or responders are withheld is too few to tell
            if row.too_few:
                assert row.verdict == wording.TOO_FEW and row.rate_text == wording.TOO_FEW
                assert pd.isna(row.n) or row.n >= SMALL_CELL
            else:
                assert row.verdict == cell.verdict
                assert (row.n, row.rate) == (cell.n, cell.rate)


def test_demo_report_shows_no_group_under_11(demo_snapshot):
    report = claim.claim_report(demo_snapshot, population="completers", include_completers=True)
    for frame in (report.by_condition, report.by_site):
        # (completers-only readings are not broken down for outsiders: all withheld)
        assert all(n >= SMALL_CELL for n in frame[~frame.suppressed].n)
    assert all(v == 0 or v >= SMALL_CELL for v in report.flow[~report.flow.suppressed].patients)
    shown = report.sensitivity[report.sensitivity.n.notna() & (report.sensitivity.n > 0)]
    assert shown.n.min() >= SMALL_CELL
    for s in report.statements:
        assert all(n >= SMALL_CELL for n in counts_in_text(s.text)), s.text
    for text in (report.verdict_text, report.flow_text, report.headline.text):
        assert all(n >= SMALL_CELL for n in counts_in_text(text)), text


def test_empty_database_gives_no_data(tmp_path):
    path = ingest_into(tmp_path / "empty.duckdb",
                       [write_program_csv(tmp_path / "sessions.csv", program_rows(Program(0))[0])])
    report = claim.claim_report(store.Snapshot(path))
    assert report.verdict == "no data"
    assert report.rate_text() == "–" and report.n_text() == "0"
    assert report.headline.kind == "no data"
    assert_memo_html_safe(memo.memo_html(substantiation.memo_data(report, "0" * 64)))


# --------------------------------------------------------------------------
# wording (pure functions)


def _cell(definition="pain30", population="itt", n=412, responders=264, verdict="supported",
          timepoint="3m") -> SensitivityCell:
    return SensitivityCell(timepoint, definition, population, stats.ClaimTest(
        verdict, n, responders, responders / n if n else None, None, None, None, 0.70))


def test_sentence_of_the_brief():
    text = wording.statement(_cell(), 0.5, dt.date(2025, 1, 20), dt.date(2026, 6, 3)).text
    assert text == ("Of the 412 patients treated between January 2025 and June 2026 who "
                    f"reached three months, {wilson(264, 412)} reported at least 30% less pain.")


@pytest.mark.parametrize("definition, phrase", [
    ("pain30", "who reached three months, {rate} reported at least 30% less pain."),
    ("pain50", "who reached three months, {rate} reported at least 50% less pain."),
    ("pain2pt", "who reached three months, {rate} reported pain at least 2 points lower on a "
                "0–10 scale."),
    ("mme50", "who were taking opioids when treatment began and reached three months, {rate} "
              "cut their daily opioid dose by at least half."),
    ("mme_stop", "who were taking opioids when treatment began and reached three months, "
                 "{rate} stopped opioids."),
    ("claim", "who were taking opioids when treatment began and reached three months, {rate} "
              "reported at least 30% less pain and cut their daily opioid dose by at least half."),
])
def test_phrase_per_definition(definition, phrase):
    text = wording.statement(_cell(definition), 0.5, dt.date(2025, 3, 1), dt.date(2025, 3, 30)).text
    assert text == ("Of the 412 patients treated in March 2025 "
                    + phrase.format(rate=wilson(264, 412)))


def test_unsupported_wording_says_what_the_data_show():
    text = wording.statement(_cell("mme50", verdict="contradicted"), 0.7,
                           dt.date(2025, 1, 1), dt.date(2025, 6, 1)).text
    assert text.startswith("“Over 70% of patients taking opioids cut their daily opioid dose by "
                           "at least half by three months” is not supported (the rate is "
                           "clearly below 70%). Of the 412 patients")
    inconclusive = wording.statement(_cell("pain30", n=40, responders=30, verdict="inconclusive"),
                                   0.7, dt.date(2025, 1, 1), dt.date(2025, 6, 1)).text
    assert "(too few patients to show that the rate is above 70%)" in inconclusive
    assert wilson(30, 40) in inconclusive


def test_small_and_empty_readings_give_no_numbers():
    few = wording.statement(_cell(n=9, responders=9), 0.7)
    assert few.kind == "too few" and "9" not in few.text
    none = wording.statement(_cell(n=0, responders=0, verdict="no data"), 0.7)
    assert none.kind == "no data"
    assert wording.completers_gap(_cell(n=40, responders=20, verdict="contradicted"),
                                _cell(population="completers", n=10, responders=10), 0.7) is None


def test_completers_caveat_hides_a_small_number_left_out():
    itt = _cell(n=420, responders=264, verdict="contradicted")
    completers = _cell(population="completers", n=412, responders=264)
    text = wording.statement(completers, 0.5, itt_cell=itt).text
    assert "it leaves out fewer than 11 patients who reached three months" in text


def test_target_and_period_words():
    assert wording.target_text(0.7) == "70%" and wording.target_text(0.725) == "72.5%"
    assert wording.period_text(dt.date(2025, 1, 2), dt.date(2026, 6, 30)) == \
        "treated between January 2025 and June 2026"
    assert wording.period_text(dt.date(2025, 3, 2), dt.date(2025, 3, 30)) == "treated in March 2025"
    assert wording.claim_wording("claim", "12m", 0.8) == (
        "over 80% of patients taking opioids report at least 30% less pain and cut their daily "
        "opioid dose by at least half at twelve months")


# --------------------------------------------------------------------------
# data fingerprint


def test_fingerprint_ignores_ingest_order_and_sees_changes(tmp_path):
    rows, _ = program_rows(Program(responders=20, non_responders=5))
    half = len(rows) // 2
    a = write_program_csv(tmp_path / "a.csv", rows[:half])
    b = write_program_csv(tmp_path / "b.csv", rows[half:])
    whole = write_program_csv(tmp_path / "whole.csv", rows)
    one = store.Snapshot(ingest_into(tmp_path / "one.duckdb", [a, b]))
    two = store.Snapshot(ingest_into(tmp_path / "two.duckdb", [b, a]))
    three = store.Snapshot(ingest_into(tmp_path / "three.duckdb", [whole]))
    fingerprint = data_fingerprint(one)
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint)
    assert fingerprint == data_fingerprint(two) == data_fingerprint(three)
    assert fingerprint == data_fingerprint(one)  # stable
    rows[3] = {**rows[3], "pain_score": 6}
    changed = write_program_csv(tmp_path / "changed.csv", rows)
    four = store.Snapshot(ingest_into(tmp_path / "four.duckdb", [changed]))
    assert data_fingerprint(four) != fingerprint


# --------------------------------------------------------------------------
# the memo


@pytest.fixture(scope="module")
def demo_memo(demo_snapshot):
    report = claim.claim_report(demo_snapshot, include_completers=True)
    data = substantiation.memo_data(report, data_fingerprint(demo_snapshot),
                           dt.datetime(2026, 10, 1, 9, 30))
    return report, data


def test_memo_html_is_self_contained_and_complete(demo_memo, demo_snapshot):
    report, data = demo_memo
    html_text = memo.memo_html(data)
    parsed = assert_memo_html_safe(html_text)
    # self-contained: no external resource of any kind
    for tag, attrs in parsed.tags:
        assert tag not in ("script", "link", "img", "iframe"), tag
        assert not any(k in ("src", "href") for k in attrs), (tag, attrs)
    assert "url(" not in html_text and "http" not in html_text
    text = " ".join(" ".join(parsed.text).split())
    for needle in ("Over 70% of patients have meaningful relief", report.verdict_text,
                   wording.VERDICT_LABELS[report.verdict], report.test_text,
                   data_fingerprint(demo_snapshot), "1 October 2026, 09:30",
                   "Data cutoff", report.reading.describe(), report.flow_text):
        assert " ".join(needle.split()) in text, needle
    titles = [t[0][0] for t in parsed.tables]
    assert titles[:3] == ["Claim as published", "Who", "Definition"]
    grid = parsed.tables[2]
    assert len(grid) == 1 + len(definitions.DEFINITIONS)
    assert sum(wording.OPTIMISTIC in h for h in grid[0]) == len(definitions.TIMEPOINTS)
    conditions = parsed.tables[3]
    assert conditions[-1][0] == "All conditions"
    assert any(row[1] == audience.SUPPRESSED for row in conditions[1:]), \
        "the demo has small conditions: they must show as suppressed"


def _pdftoppm() -> str:
    path = shutil.which("pdftoppm")
    if not path:
        pytest.skip("poppler-utils is not installed")
    return path


def test_memo_pdf_renders(demo_memo, tmp_path):
    _, data = demo_memo
    pdf = memo.memo_pdf(data)
    assert pdf.startswith(b"%PDF")
    path = tmp_path / "memo.pdf"
    path.write_bytes(pdf)
    subprocess.run([_pdftoppm(), "-png", "-r", "50", str(path), str(tmp_path / "page")],
                   check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages
    from PIL import Image
    import numpy as np
    pixels = np.asarray(Image.open(pages[0]).convert("L"))
    assert (pixels < 200).mean() > 0.01, "the first page is blank"
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                              capture_output=True, text=True).stdout
        assert wording.VERDICT_LABELS[data.verdict] in text
        assert "≥30% less pain" in text  # DejaVu: no character lost
        assert data.fingerprint in text.replace("\n", "")
        assert "GEN0" not in text


def test_memo_pdf_without_dejavu_falls_back_to_a_core_font(demo_memo, monkeypatch):
    _, data = demo_memo
    monkeypatch.setattr(palette, "font_dir", lambda: None)   # the one font lookup (add_pdf_font)
    assert memo.memo_pdf(data).startswith(b"%PDF")


def test_memo_html_opens_in_headless_chromium(demo_memo, tmp_path):
    """The memo as a browser shows it (screenshot kept beside the test's files)."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    _, data = demo_memo
    page_file = tmp_path / "memo.html"
    page_file.write_text(memo.memo_html(data), encoding="utf-8")
    shot = tmp_path / "memo.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            assert page.title() == data.title
            assert page.locator("table").count() == len(data.tables) + 1
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert requests == [page_file.as_uri()]   # nothing fetched besides the file itself
    from PIL import Image
    import numpy as np
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape[0] > 900 and (pixels < 200).mean() > 0.01
