"""The director's one-page summary (analysis/reports/summary.py, issue 19) and
``python -m analysis summary``: that it is the page's content, the backlog
and "what changed" against hand-worked cases, the PDF and the command line."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from analysis.access import audit
from analysis.storage import store
from analysis.reports import summary
from analysis.reports.quarterly.build import build_report, default_quarter
from analysis.reports.quarterly.tables import ALL_SITES
from analysis.metrics import outcomes, safety
from analysis.core.filters import quarter_bounds, quarter_of
from tests.helpers.builders import BASE, build_db, clock, day, treated, visit
from tests.helpers.cli import run
from tests.helpers.documents import html_body_text, pdf_pages


pytestmark = pytest.mark.usefixtures("fresh_snapshots")


# --------------------------------------------------------------------------
# the summary


@pytest.fixture(scope="module")
def demo_summary(demo_snapshot):
    return summary.build_summary(demo_snapshot, default_quarter(demo_snapshot))


def test_the_summary_is_the_reports_numbers(demo_snapshot, demo_summary):
    s = demo_summary
    now = build_report(demo_snapshot, s.quarter)
    before = build_report(demo_snapshot, s.previous_quarter)
    total = now.activity[now.activity["site"] == ALL_SITES].iloc[0]
    assert s.activity == {k: int(total[k]) for k in s.activity}
    due = now.due.set_index(["timepoint", "definition"])
    for h in s.headlines:
        row = due.loc[(h.timepoint, h.definition)]
        assert (h.n, h.responders) == (row["n"], row["responders"])
        assert h.rate == pytest.approx(row["rate"]) and h.ci_low == pytest.approx(row["ci_low"])
        assert (h.change.prev_n, h.change.prev_k) == (
            row["prev_n"], round(row["prev_rate"] * row["prev_n"]))
        assert h.result_text().startswith(f"{round(100 * h.rate)}% of {h.n:,} ")
    start, end = quarter_bounds(s.quarter)
    quarter_safety = safety.safety_summary(demo_snapshot, visits_from=start, visits_to=end)
    any_event = quarter_safety.rate("any_adverse_event")
    assert (s.safety[0].events, s.safety[0].n) == (any_event.events, any_event.n)
    assert s.safety[0].n == s.activity["infusions"] + s.activity["boosters"]
    prev_total = before.activity[before.activity["site"] == ALL_SITES].iloc[0]
    assert s.previous_activity["patients_treated"] == prev_total["patients_treated"]


def _fisher_two_sided(a: int, b: int, c: int, d: int) -> float:
    """By hand: the hypergeometric probabilities of every table with the same
    margins that are no more likely than the one seen."""
    row1, col1, total = a + b, a + c, a + b + c + d

    def prob(x):
        return math.comb(col1, x) * math.comb(total - col1, row1 - x) / math.comb(total, row1)
    seen = prob(a)
    low, high = max(0, row1 - (total - col1)), min(row1, col1)
    return sum(p for p in (prob(x) for x in range(low, high + 1)) if p <= seen * (1 + 1e-7))


@pytest.mark.parametrize("k, n, prev_k, prev_n, reading", [
    (52, 161, 87, 204, "no clear change (−10 points, could be chance)"),   # p = 0.051
    (50, 161, 90, 204, "clearly lower (−13 points)"),
    (69, 1562, 41, 1426, "clearly higher (+1.5 per 100)"),
    (5, 10, 2, 10, "too few to tell"),
    (0, 0, 5, 20, "none this quarter"),
    (5, 20, None, 0, "nothing to compare with"),
])
def test_change_words(k, n, prev_k, prev_n, reading):
    change = summary.Change(k, n, prev_k, prev_n)
    assert change.words(per_100="per 100" in reading) == reading
    if n and prev_n:
        assert change.p_value == pytest.approx(_fisher_two_sided(k, n - k, prev_k,
                                                                 prev_n - prev_k))
        assert change.clear == (min(n, prev_n) >= 11 and change.p_value < 0.05)


def test_the_backlog_by_hand(tmp_path):
    """Cutoff day 100.  2028Q2 runs from day 89 to day 178."""
    rows = [
        *treated("open3"),                                   # 3m window [60, 120]: open
        *treated("done3"), visit("done3", 90, "follow_up", pain=3),   # has its score
        *treated("old", index=-200),   # 3m [-140, -80] and 6m [-50, 10] missed; 12m [100, 230] open
        *treated("late", index=-25),   # 3m [35, 95]: missed, closed on day 95 (in 2028Q2)
        *treated("new", index=50),     # 3m [110, 170]: not begun
        clock("open3", 100),
    ]
    snap = store.Snapshot(build_db(tmp_path, rows))
    try:
        assert outcomes.cutoff(snap) == day(100) and quarter_of(day(95)) == "2028Q2"
        s = summary.build_summary(snap, "2028Q2")
    finally:
        snap.close()
    assert s.backlog.open_by_timepoint == {"3m": 1, "6m": 0, "12m": 1}
    assert (s.backlog.missed_total, s.backlog.missed_in_quarter) == (3, 1)
    # one infusion and no visit since, 14 days or more before the cutoff: old,
    # late and new stopped during induction (open3 and done3 came back)
    assert s.backlog.stopped_in_induction == 3
    assert s.backlog_text()[0].startswith("2 follow-ups are due now")
    assert BASE < day(95)


def test_the_summary_pdf_is_one_page_with_every_section(demo_summary, tmp_path):
    (pdf,) = summary.write(demo_summary, tmp_path, ["pdf"])
    (page,) = pdf_pages(pdf)
    for text in ("Patients treated", "Results that came due this quarter",
                 f"What changed since {demo_summary.previous_quarter}", "Safety",
                 "Follow-up backlog", demo_summary.headlines[0].result_text(),
                 demo_summary.treated_text()):
        assert " ".join(text.split()) in page, text


def test_summary_cli(demo_db, tmp_path, capsys):
    code, out, err = run(capsys, "summary", "--db", demo_db, "--out", tmp_path,
                         "--quarter", "2026q2", "--site", "Denver")
    assert code == 0, err
    assert sorted(p.split("/")[-1] for p in out.split()) == [
        "program_summary_2026Q2.html", "program_summary_2026Q2.pdf"]
    text = html_body_text(tmp_path / "program_summary_2026Q2.html")
    assert "sites: Denver" in text
    code, _, err = run(capsys, "summary", "--db", demo_db, "--out", tmp_path,
                       "--quarter", "1999Q1")
    assert code == 1 and "no visits in 1999Q1" in err
    code, _, err = run(capsys, "summary", "--db", demo_db, "--out", tmp_path,
                       "--quarter", "2026Q5")
    assert code == 2 and "2026Q5" in err
    assert "program summary" in audit.read(demo_db, actions=("report",)).iloc[0]["detail"]
    assert dt.date(2026, 4, 1) == quarter_bounds("2026Q2")[0]
