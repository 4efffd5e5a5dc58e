"""The external outputs (issue 14): the quarterly report for outsiders, the
claim check and the substantiation memo, attacked the way a marketing user
would attack them.

Each attack reads only what the output shows (the tables as published, the
memo's text) and does the arithmetic an outsider can do: a total minus its
shown parts, ITT n minus completers n, a rate times its n, one filter state
minus another.  None may give a count from 1 to 10.  Free text (adverse-event
text, raw condition labels) must not reach any external output: HTML, every
XLSX sheet, the PDF's text, the memo, and the two pages under AppTest as
marketing.
"""

from __future__ import annotations

import csv
import io
import random
import re
from pathlib import Path

import pandas as pd
import pytest

from analysis.claims import claim, wording
from analysis.reports import memo
from analysis.reports.quarterly.build import build_report, default_quarter
from analysis.reports.quarterly.render.html import render_html
from analysis.reports.quarterly.render.pdf import render_pdf
from analysis.reports.quarterly.render.xlsx import _SHEET_NAMES, render_xlsx
from analysis.reports.quarterly.report import QuarterlyReport
from analysis.reports.quarterly.tables import ALL_SITES, ANY_EVENT
from analysis.storage import store
from analysis.core.audience import SMALL_CELL, SUPPRESSED, Audience
from analysis.core.filters import Filters
from analysis.core.definitions import DEFINITIONS, TIMEPOINTS
from tests.helpers.builders import Program, ingested_snapshot, program_snapshot

NAME, PHONE = "John Smith", "555-123-4567"
FREE_TEXT_EVENT = f"called {NAME} {PHONE}"
FREE_TEXT_CONDITION = f"Migraine per {NAME}"
SMALL_SITES = {"Pueblo": 3, "Aspen": 4}


def small(value) -> bool:
    return value is not None and 0 < value < SMALL_CELL


def shown(value) -> bool:
    return value is not None and not (isinstance(value, float) and value != value) \
        and value != SUPPRESSED


# --------------------------------------------------------------------------
# a demo clinic with two small sites and free text


@pytest.fixture(scope="module")
def small_sites_snapshot(demo_exports, tmp_path_factory):
    """The demo clinic plus a 3-patient site (Pueblo) and a 4-patient site
    (Aspen) whose patients start in the report quarter, one adverse event
    written as free text with a name and a phone number, and one condition
    label naming a person."""
    sessions = pd.read_csv(demo_exports.sessions, dtype=str, keep_default_na=False)
    treated = sessions[sessions.visit_type.isin(["infusion", "booster"])]
    first = treated.groupby("patient_id").visit_date.min()
    starters = sorted(first[(first >= "2026-07-01") & (first <= "2026-09-30")].index)
    assert len(starters) >= sum(SMALL_SITES.values())
    rows = []
    chosen = iter(starters)
    for site, size in SMALL_SITES.items():
        for i in range(size):
            source = next(chosen)
            copy = sessions[sessions.patient_id == source].copy()
            copy["patient_id"] = f"X{site[:2].upper()}{i}"
            copy["visit_id"] = [f"X{site[:2].upper()}{i}-{v}" for v in copy["visit_id"]]
            copy["site"] = site
            rows.append(copy)
    extra = pd.concat(rows, ignore_index=True)
    infusion = extra.index[(extra.visit_type == "infusion") & (extra.visit_date >= "2026-07-01")][0]
    extra.loc[infusion, "adverse_event"] = FREE_TEXT_EVENT
    extra.loc[extra.patient_id == extra.patient_id.iloc[0], "condition"] = FREE_TEXT_CONDITION
    folder = tmp_path_factory.mktemp("small_sites")
    path = folder / "extra_sessions.csv"
    extra.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
    return ingested_snapshot(folder / "clinic.duckdb",
                             [demo_exports.sessions, demo_exports.medications, path])


@pytest.fixture(scope="module")
def small_quarter(small_sites_snapshot):
    return default_quarter(small_sites_snapshot)


# --------------------------------------------------------------------------
# the attacker: arithmetic on what the quarterly report shows


def _value(frame: pd.DataFrame, column: str, **where):
    rows = frame
    for key, value in where.items():
        rows = rows[rows[key] == value]
    if rows.empty:
        return None
    value = rows.iloc[0][column]
    return value if shown(value) else None


def _derived_count(rate, n, scale: float = 1.0):
    """The count a shown rate of a shown n gives away (rate x n, rounded)."""
    if rate is None or n is None or not shown(rate) or not shown(n):
        return None
    return round(float(rate) * int(n) / scale)


#: The rates that are a count over its n (not the p-chart's limits or centre).
COUNT_RATES = ("rate", "prev_rate", "yoy_rate", "per_100")


def report_leaks(rep: QuarterlyReport) -> list[str]:
    """Every count from 1 to 10 an outsider can read or work out from the
    report's published tables."""
    leaks = []

    def check(what: str, value) -> None:
        if value is not None and small(int(value)):
            leaks.append(f"{what} = {value}")

    for spec, frame in rep.tables():
        for column in spec.columns:
            if column.kind in ("n", "count") and column.name in frame:
                for i, v in enumerate(frame[column.name]):
                    if shown(v):
                        check(f"{spec.key}[{i}].{column.name}", v)
            if column.name in COUNT_RATES and column.n and column.name in frame:
                scale = 100.0 if column.kind == "per100" else 1.0
                for i, (rate, n) in enumerate(zip(frame[column.name], frame[column.n])):
                    k = _derived_count(rate, n, scale)
                    if k is not None:
                        check(f"{spec.key}[{i}] {column.name} x {column.n}", k)
                        check(f"{spec.key}[{i}] {column.n} - {column.name} x {column.n}",
                              int(n) - k)
    activity = rep.activity.set_index("site")
    for column in ("new_patients", "patients_treated", "infusions", "boosters"):
        total = activity.loc[ALL_SITES, column]
        parts = [v for site, v in activity[column].items() if site != ALL_SITES]
        if shown(total):
            check(f"activity {column}: total - shown sites",
                  int(total) - sum(int(v) for v in parts if shown(v)))
    for site, row in activity.iterrows():
        if shown(row.patients_treated) and shown(row.new_patients):
            check(f"activity {site}: treated - new", int(row.patients_treated) - int(row.new_patients))
    total = activity.loc[ALL_SITES]
    new = total.new_patients if shown(total.new_patients) else None
    for name in ("cohort", "due"):
        frame = getattr(rep, name)
        for tp in TIMEPOINTS:
            at = {d: frame[(frame.timepoint == tp) & (frame.definition == d)].iloc[0]
                  for d in DEFINITIONS}
            for d, row in at.items():
                if name == "cohort" and new is not None and shown(row.n) and shown(row.pending):
                    check(f"cohort {tp} {d}: new patients - n - not yet due",
                          int(new) - int(row.n) - int(row.pending))
            for a, b in (("pain30", "claim"), ("mme50", "claim"), ("pain50", "claim"),
                         ("pain2pt", "claim"), ("mme_stop", "claim")):
                if shown(at[a].n) and shown(at[b].n):
                    check(f"{name} {tp}: n {a} - n {b}", int(at[a].n) - int(at[b].n))
            for a, b in (("pain30", "pain50"), ("mme50", "mme_stop"), ("pain30", "claim"),
                         ("mme50", "claim")):
                ka = _derived_count(at[a].rate, at[a].n)
                kb = _derived_count(at[b].rate, at[b].n)
                if ka is not None and kb is not None:
                    check(f"{name} {tp}: responders {a} - {b}", ka - kb)
        for tp_a, tp_b in zip(TIMEPOINTS, TIMEPOINTS[1:]):
            for d in DEFINITIONS:
                na = _value(frame, "n", timepoint=tp_a, definition=d)
                nb = _value(frame, "n", timepoint=tp_b, definition=d)
                if name == "cohort" and na is not None and nb is not None:
                    check(f"cohort n {tp_a} - {tp_b} {d}", int(na) - int(nb))
    opioids = rep.opioids.set_index("measure")
    baseline_known = opioids.iloc[0]["n"]
    if new is not None and shown(baseline_known):
        check("new patients - baseline opioid use known", int(new) - int(baseline_known))
    users = opioids.iloc[0]["count"]
    for tp in TIMEPOINTS:
        n = _value(rep.cohort, "n", timepoint=tp, definition="mme50")
        pending = _value(rep.cohort, "pending", timepoint=tp, definition="mme50")
        if shown(users) and n is not None and pending is not None:
            check(f"baseline users - cohort mme50 {tp}", int(users) - int(n) - int(pending))
    k50 = _derived_count(opioids.iloc[3]["rate"], opioids.iloc[3]["n"])
    k90 = _derived_count(opioids.iloc[4]["rate"], opioids.iloc[4]["n"])
    if k50 is not None and k90 is not None:
        check("visits at >=50 - at >=90 MME", k50 - k90)
    safety = rep.safety
    any_event = safety[safety.event == ANY_EVENT].iloc[0]
    sessions = int(total.infusions) + int(total.boosters) \
        if shown(total.infusions) and shown(total.boosters) else None
    if sessions is not None and shown(any_event.n):
        check("sessions (activity) - sessions (safety)", sessions - int(any_event.n))
    return leaks


# --------------------------------------------------------------------------
# 1. differencing across filters


def test_external_report_for_boulder_and_boulder_with_a_small_site_are_one_report(
        small_sites_snapshot, small_quarter):
    """Issue 14: for Boulder, then Boulder + a 3-patient site, the external
    report differed by one patient's outcome.  External builders ignore
    filters: every filter state gives the whole program."""
    boulder = build_report(small_sites_snapshot, small_quarter, Audience.EXTERNAL,
                                  Filters(sites=("Boulder",)))
    both = build_report(small_sites_snapshot, small_quarter, Audience.EXTERNAL,
                               Filters(sites=("Boulder", "Pueblo")))
    whole = build_report(small_sites_snapshot, small_quarter, Audience.EXTERNAL)
    for a, b, c in zip(boulder.tables(), both.tables(), whole.tables()):
        pd.testing.assert_frame_equal(a[1], b[1])
        pd.testing.assert_frame_equal(a[1], c[1])
    assert boulder.highlights() == both.highlights()
    assert "Pueblo" in set(boulder.activity.site)      # the fixed breakdown by site


def test_internal_report_still_follows_the_filters(small_sites_snapshot, small_quarter):
    boulder = build_report(small_sites_snapshot, small_quarter, Audience.CLINICAL,
                                  Filters(sites=("Boulder",)))
    assert set(boulder.activity.site) == {"Boulder", ALL_SITES}


# --------------------------------------------------------------------------
# 2. sums of hidden cells, numerators, linked tables


def test_external_report_with_two_small_sites_gives_no_count_away(small_sites_snapshot,
                                                                  small_quarter):
    """Pueblo (3) and Aspen (4) new patients: the old rule hid both and no
    complement (two hidden cells), so the total minus the shown sites was 7."""
    rep = build_report(small_sites_snapshot, small_quarter, Audience.EXTERNAL)
    activity = rep.activity.set_index("site")
    assert not shown(activity.loc["Pueblo", "new_patients"])
    assert not shown(activity.loc["Aspen", "new_patients"])
    assert report_leaks(rep) == []


@pytest.mark.parametrize("back", [0, 1, 2, 4, 6])
def test_external_report_on_the_demo_gives_no_count_away(demo_snapshot, back):
    """Numerators under 11 inside larger groups (responders, safety events,
    patients off opioids), rates of them, and the links between tables."""
    from analysis.core.filters import previous_quarter
    quarter = previous_quarter(default_quarter(demo_snapshot), back)
    rep = build_report(demo_snapshot, quarter, Audience.EXTERNAL)
    assert report_leaks(rep) == []


def test_external_report_keeps_what_is_safe(demo_snapshot):
    """Suppression hides what it must, not everything: the program's totals
    and most large rates stay."""
    rep = build_report(demo_snapshot, default_quarter(demo_snapshot),
                              Audience.EXTERNAL)
    total = rep.activity.set_index("site").loc[ALL_SITES]
    assert all(shown(total[c]) for c in ("new_patients", "patients_treated"))
    assert sum(shown(v) for v in rep.due["rate"]) >= 6


def test_clinical_report_is_unsuppressed_with_its_too_few_flags(demo_snapshot):
    rep = build_report(demo_snapshot, default_quarter(demo_snapshot),
                              Audience.CLINICAL)
    assert any(small(v) for v in rep.safety["events"])          # shown as they are
    assert list(rep.due["too_few"]) == [n < SMALL_CELL for n in rep.due["n"]]


# --------------------------------------------------------------------------
# 3. the claim check and the memo


def claim_leaks(rep: claim.ClaimReport) -> list[str]:
    """Counts from 1 to 10 an outsider reads or works out from the claim
    check: the sensitivity grid, the breakdowns, the flow."""
    leaks = []

    def check(what, value):
        if value is not None and small(int(value)):
            leaks.append(f"{what} = {value}")

    grid = {(r.timepoint, r.definition, r.population): r for r in rep.sensitivity.itertuples()}

    def n_of(key):
        r = grid[key]
        return None if pd.isna(r.n) or r.too_few else int(r.n)

    def k_of(key):
        r = grid[key]
        n = n_of(key)
        if n is None or r.rate is None or pd.isna(r.rate):
            return None
        return round(float(r.rate) * n)

    for key in grid:
        n, k = n_of(key), k_of(key)
        check(f"n {key}", n)
        if k is not None:
            check(f"responders {key}", k)
            check(f"non-responders {key}", n - k)
    for tp in TIMEPOINTS:
        for d in DEFINITIONS:
            itt, comp = n_of((tp, d, "itt")), n_of((tp, d, "completers"))
            if itt is not None and comp is not None:
                check(f"ITT - completers {tp} {d}", itt - comp)
        for pop in ("itt", "completers"):
            for a in ("pain30", "mme50"):
                na, nb = n_of((tp, a, pop)), n_of((tp, "claim", pop))
                if na is not None and nb is not None:
                    check(f"n {a} - n claim {tp} {pop}", na - nb)
            for a, b in (("pain30", "pain50"), ("mme50", "mme_stop"), ("pain30", "claim"),
                         ("mme50", "claim")):
                ka, kb = k_of((tp, a, pop)), k_of((tp, b, pop))
                if ka is not None and kb is not None:
                    check(f"responders {a} - {b} {tp} {pop}", ka - kb)
    for tp_a, tp_b in zip(TIMEPOINTS, TIMEPOINTS[1:]):
        for d in DEFINITIONS:
            for pop in ("itt", "completers"):
                na, nb = n_of((tp_a, d, pop)), n_of((tp_b, d, pop))
                if na is not None and nb is not None:
                    check(f"n {tp_a} - {tp_b} {d} {pop}", na - nb)
    for frame in (rep.by_condition, rep.by_site):
        parts = frame[~frame.is_total]
        total = frame[frame.is_total].iloc[0]
        for r in frame.itertuples():
            if shown(r.n):
                check(f"group {r.group}", r.n)
                k = _derived_count(r.rate, r.n)
                if k is not None:
                    check(f"group {r.group} responders", k)
                    check(f"group {r.group} non-responders", int(r.n) - k)
        if shown(total.n):
            check("total - shown groups",
                  int(total.n) - sum(int(v) for v in parts.n if shown(v)))
    flow = rep.flow.set_index("key")
    if shown(flow.loc["treated", "patients"]):
        rest = flow[(flow.level == 1)]
        check("treated - shown steps", int(flow.loc["treated", "patients"])
              - sum(int(v) for v in rest.patients if shown(v)))
    return leaks


def memo_text(rep: claim.ClaimReport, snap) -> str:
    content = memo.build_memo(snap, rep)
    return memo.memo_html(content)


_OF_N = re.compile(r"(\d[\d,]*)% \(95% CI [^)]*\) of (\d[\d,]*)|(\d+)% of (\d[\d,]*)")


def test_itt_minus_completers_is_not_in_the_grid_or_the_memo(tmp_path):
    """59 ITT, 50 completers: 9 patients without a follow-up (issue 14)."""
    snap = program_snapshot(tmp_path, Program(responders=40, non_responders=10, missing=9))
    rep = claim.claim_report(snap, audience=Audience.EXTERNAL)
    assert claim_leaks(rep) == []
    text = memo_text(rep, snap)
    numbers = [int(n.replace(",", "")) for n in re.findall(r" of (\d[\d,]*) \(", text)]
    assert not (59 in numbers and 50 in numbers)
    assert small_numbers(re.sub(r"<[^>]+>", " ", text)) == []


def test_mme50_n_minus_claim_n_is_not_shown(tmp_path):
    """Opioid users without a baseline pain score: mme50 n - claim n = 9."""
    snap = program_snapshot(tmp_path, Program(responders=40, non_responders=10,
                                              no_baseline_pain=9))
    rep = claim.claim_report(snap, audience=Audience.EXTERNAL)
    assert claim_leaks(rep) == []


def test_one_responder_of_122_is_not_a_rate(tmp_path):
    snap = program_snapshot(tmp_path, Program(responders=1, non_responders=121))
    rep = claim.claim_report(snap, audience=Audience.EXTERNAL)
    assert claim_leaks(rep) == []
    assert rep.rate_text() in (SUPPRESSED, wording.TOO_FEW) and rep.verdict == wording.TOO_FEW
    assert "1%" not in memo_text(rep, snap)


def test_the_claim_check_for_insiders_shows_counts_with_their_flag(tmp_path):
    snap = program_snapshot(tmp_path, Program(responders=8))
    rep = claim.claim_report(snap, audience=Audience.CLINICAL)
    assert rep.test.n == 8 and rep.too_few
    assert rep.n_text() == "8"
    assert rep.verdict in ("supported", "inconclusive", "contradicted")


def test_external_claim_check_ignores_filters(demo_snapshot):
    whole = claim.claim_report(demo_snapshot, audience=Audience.EXTERNAL)
    narrowed = claim.claim_report(demo_snapshot, filters=Filters(sites=("Boulder",)),
                                  audience=Audience.EXTERNAL)
    pd.testing.assert_frame_equal(whole.sensitivity, narrowed.sensitivity)
    pd.testing.assert_frame_equal(whole.by_site, narrowed.by_site)
    assert whole.flow_text == narrowed.flow_text


def test_external_claim_check_on_the_demo_gives_no_count_away(demo_snapshot):
    for timepoint, definition, population in [("3m", "claim", "itt"), ("6m", "pain30", "itt"),
                                              ("3m", "mme50", "completers")]:
        rep = claim.claim_report(demo_snapshot, 0.7, timepoint, definition, population,
                                 audience=Audience.EXTERNAL)
        assert claim_leaks(rep) == [], (timepoint, definition, population)


@pytest.fixture(scope="module")
def bundled_demo_snapshot(tmp_path_factory):
    """The demo clinic the dashboard opens (data/demo/*.csv, 2,000 patients)."""
    from analysis import sources
    path = sources.ensure_demo_db(tmp_path_factory.mktemp("bundled_demo") / "demo.duckdb")
    snap = store.Snapshot(path)
    yield snap
    snap.close()


def test_the_claim_as_published_keeps_its_answer_for_marketing(bundled_demo_snapshot):
    """Suppression withholds what could give a patient away, not the answer:
    on the bundled demo the literal claim at 3 months (802 patients, 33
    responders) read "too few to tell" for marketing while the CLI said
    "contradicted", because its n was taken as the complement of mme50's n
    (916 - 907 = 9 with one baseline) and of small breakdown cells.  The
    claim's own whole-program n and responders are now complemented last; the
    breakdowns and the other definitions give way first, and nothing leaks."""
    checked = 0
    for timepoint in ("3m", "6m", "12m"):
        insider = claim.claim_report(bundled_demo_snapshot, 0.7, timepoint, "claim", "itt",
                                     audience=Audience.CLINICAL)
        test = insider.test
        if min(test.n, test.responders, test.n - test.responders) < SMALL_CELL:
            continue
        outsider = claim.claim_report(bundled_demo_snapshot, 0.7, timepoint, "claim", "itt",
                                      audience=Audience.EXTERNAL)
        assert (outsider.verdict, outsider.test.n) == (insider.verdict, test.n), timepoint
        assert claim_leaks(outsider) == [], timepoint
        checked += 1
    assert checked >= 1


# --------------------------------------------------------------------------
# 4. free text never leaves


def _pdf_text(data: bytes) -> str:
    import subprocess
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True,
                          check=True).stdout.decode("utf-8")


def _xlsx_text(data: bytes) -> str:
    from openpyxl import load_workbook
    book = load_workbook(io.BytesIO(data), read_only=True)
    return "\n".join(str(v) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                     for v in row if v is not None)


def _assert_no_free_text(text: str, where: str) -> None:
    for needle in (NAME, PHONE, "called John", FREE_TEXT_CONDITION):
        assert needle not in text, f"{needle!r} in the {where}"


def test_free_text_reaches_no_external_report_file(small_sites_snapshot, small_quarter):
    rep = build_report(small_sites_snapshot, small_quarter, Audience.EXTERNAL)
    _assert_no_free_text(render_html(rep), "HTML")
    _assert_no_free_text(_xlsx_text(render_xlsx(rep)), "XLSX")
    _assert_no_free_text(_pdf_text(render_pdf(rep)), "PDF")
    analyst = build_report(small_sites_snapshot, small_quarter, Audience.ANALYST)
    _assert_no_free_text(render_html(analyst), "analyst's HTML")


def test_free_text_reaches_no_memo(small_sites_snapshot):
    rep = claim.claim_report(small_sites_snapshot, audience=Audience.EXTERNAL)
    content = memo.build_memo(small_sites_snapshot, rep)
    _assert_no_free_text(memo.memo_html(content), "memo HTML")
    _assert_no_free_text(_pdf_text(memo.memo_pdf(content)), "memo PDF")


def _page_text(app) -> str:
    parts = []
    for kind in ("markdown", "caption", "title", "subheader", "info", "warning", "metric",
                 "text", "dataframe", "table"):
        for el in getattr(app, kind, []):
            value = getattr(el, "value", None)
            if isinstance(value, pd.DataFrame):
                parts.append(value.to_csv())
            elif value is not None:
                parts.append(str(value))
            for attr in ("label", "body"):
                if isinstance(getattr(el, attr, None), str):
                    parts.append(getattr(el, attr))
    for chart in app.get("plotly_chart"):
        parts.append(chart.proto.spec if hasattr(chart.proto, "spec") else str(chart.proto))
    return "\n".join(parts)


@pytest.mark.parametrize("page", ["pages/claim_check.py", "pages/quarterly_report.py"])
def test_marketing_pages_show_no_free_text_and_ignore_filters(small_sites_snapshot, page):
    from streamlit.testing.v1 import AppTest

    from analysis.sources import DataSource
    from tests.helpers.apptest import ROOT
    from ui import page_context

    texts = []
    for filters in (Filters(), Filters(sites=("Boulder", "Pueblo"))):
        app = AppTest.from_file(str(ROOT / page), default_timeout=120)
        app.session_state[page_context.CONTEXT_KEY] = page_context.PageContext(
            DataSource(Path(small_sites_snapshot.db_path), is_demo=False),
            store.snapshot(small_sites_snapshot.db_path), filters, role="marketing")
        app.run()
        assert not app.exception, [e.message for e in app.exception]
        text = _page_text(app)
        _assert_no_free_text(text, page)
        texts.append(re.sub(r"\d{4}-\d\d-\d\dT[\d:]+Z", "", text))
    assert texts[0] == texts[1]


# --------------------------------------------------------------------------
# 5. a generator: many filter states, one external result, no small count


_LABELS = [
    r"\d{4}-\d{2}-\d{2}(?:T[\d:]+Z)?", r"\d{4}Q[1-4]", r"\b\d{1,2} [A-Z][a-z]+ \d{4}\b",
    r"\b[A-Z][a-z]+ \d{4}\b", r"\d{1,2}:\d{2}", r"\d+(?:\.\d+)?\s*[–-]\s*\d+(?:\.\d+)?\s*%", r"[\d.,]+\s*%",
    r"\d+\.\d+", r"(?:fewer than|n\s*<|n<|under|below|least|≥|>=|<|>|±|§|SHA-)\s*\d+",
    r"\b\d+\s*(?:months?|weeks?|points?|days?|sigma|σ|MME|mmHg|mg|standard errors|pp)\b",
    r"\b(?:day|page|PHQ-?|PCL-?|version|analysis|sigma|NRS|ICD-)\s*\d+", r"\b0\s*[–-]\s*10\b",
    r"\d+\s*/\s*\d+", r"\[[^\]]*\]", r"\b\d+-(?:month|week|sided|point)\b", r"\b(?:one|two)-sided\b",
    r"\bpain\d+\w*\b|\bmme\d+\w*\b|\b\d+[mw]\b", r"#[0-9a-fA-F]{3,6}\b", r"\b[0-9a-f]{12,}\b",
    r"\b1e-\d+\b", r"SpO₂|SpO2", r"\b1 to 10\b",
]
_NUMBER = re.compile(r"(?<![\w.])(\d[\d,]*)(?![\w.])")


def small_numbers(text: str) -> list[str]:
    """Whole numbers from 1 to 10 in a text once labels, dates, percentages,
    thresholds and units are taken out: what would be a count."""
    for pattern in _LABELS:
        text = re.sub(pattern, " ", text)
    return [n for n in _NUMBER.findall(text) if small(int(n.replace(",", "")))]


def test_the_scanner_sees_a_count_and_ignores_labels():
    assert small_numbers("Of 7 patients, 64% (95% CI 60–68%) at 3 months, 2026Q3, ≥50 MME") == ["7"]
    assert small_numbers("6% (95% CI 3–10%) of 220") == []
    assert small_numbers("12 May 2025 · fewer than 11 · n<11 · day 28 · 0–10 scale") == []


def xlsx_small_counts(data: bytes, rep: QuarterlyReport) -> list[str]:
    """Counts from 1 to 10 in the workbook's count columns (each sheet's
    header row names them), and in the counts its rates give away (rate x n)."""
    from openpyxl import load_workbook
    book = load_workbook(io.BytesIO(data), read_only=True)
    found = []
    for spec, _ in rep.tables():
        rows = list(book[_SHEET_NAMES[spec.key]].iter_rows(values_only=True))
        header = next(i for i, row in enumerate(rows) if row and row[0] == spec.columns[0].label)
        labels = list(rows[header])
        for row in rows[header + 1:]:
            cell = dict(zip(labels, row))
            for column in spec.columns:
                value = cell.get(column.label)
                if column.kind in ("n", "count") and isinstance(value, (int, float)) \
                        and small(int(value)):
                    found.append(f"{spec.key}: {column.label} = {value}")
                if column.name in COUNT_RATES and column.n and isinstance(value, (int, float)):
                    n = cell.get(next(c.label for c in spec.columns if c.name == column.n))
                    if isinstance(n, (int, float)):
                        scale = 100.0 if column.kind == "per100" else 1.0
                        k = round(float(value) * n / scale)
                        if small(k) or small(int(n) - k):
                            found.append(f"{spec.key}: {column.label} x n gives {k} of {n}")
    return found


def random_filters(rng: random.Random, options) -> Filters:
    import datetime as dt
    pick = lambda values: tuple(rng.sample(list(values), rng.randint(0, min(3, len(values)))))
    start = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 700))
    return Filters(sites=pick(options["sites"]), conditions=pick(options["conditions"]),
                   routes=pick(options["routes"]),
                   index_from=start if rng.random() < 0.5 else None,
                   index_to=start + dt.timedelta(days=rng.randint(30, 400))
                   if rng.random() < 0.5 else None)


def test_generator_external_results_never_differ_and_show_no_small_count(demo_snapshot):
    snap = demo_snapshot
    options = {c: sorted(snap.query(f"SELECT DISTINCT {c} FROM patients WHERE {c} IS NOT NULL")
                         [c]) for c in ("site", "condition", "route")}
    options = {"sites": options["site"], "conditions": options["condition"],
               "routes": options["route"]}
    rng = random.Random("issue14-generator")
    quarter = default_quarter(snap)
    base_report = build_report(snap, quarter, Audience.EXTERNAL)
    base_claim = claim.claim_report(snap, audience=Audience.EXTERNAL)
    base_html = re.sub(r"Generated at[^<]*</td><td>[^<]*", "", render_html(base_report))
    memo_html = memo.memo_html(memo.build_memo(snap, base_claim))
    assert small_numbers(re.sub(r"<[^>]+>", " ", base_html)) == []
    assert small_numbers(re.sub(r"<[^>]+>", " ", memo_html)) == []
    assert xlsx_small_counts(render_xlsx(base_report), base_report) == []
    base_tables = [frame for _, frame in base_report.tables()]
    for i in range(40):
        filters = random_filters(rng, options)
        rep = build_report(snap, quarter, Audience.EXTERNAL, filters)
        for frame, other in zip(base_tables, (f for _, f in rep.tables())):
            pd.testing.assert_frame_equal(frame, other)
        assert rep.highlights() == base_report.highlights()
        if i < 2:   # the files are drawn from the tables: two are enough to compare
            html = re.sub(r"Generated at[^<]*</td><td>[^<]*", "", render_html(rep))
            assert html == base_html, filters
        other = claim.claim_report(snap, audience=Audience.EXTERNAL, filters=filters)
        pd.testing.assert_frame_equal(other.sensitivity, base_claim.sensitivity)
        pd.testing.assert_frame_equal(other.by_condition, base_claim.by_condition)
        pd.testing.assert_frame_equal(other.by_site, base_claim.by_site)
        assert other.flow_text == base_claim.flow_text
