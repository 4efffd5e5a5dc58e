"""The medical director's one-page summary of a quarter (issue 19).

Plain results for someone who reads them in two minutes: how many patients
were treated, the headline outcomes with their denominators and intervals,
what changed since the quarter before, safety, and the follow-up backlog.
Every number is the quarterly report's (:func:`analysis.reports.quarterly.build.build_report`,
the same tables, definitions and periods) or the patient-outcome model's;
nothing is computed twice.  A change from last quarter is called a change
only when chance is an unlikely explanation (Fisher's exact test, two-sided,
p < 0.05); the test's name stays out of the sentence.

Shown on the dashboard (``pages/summary.py``) and written as one A4 page of
PDF or a self-contained HTML page (``python -m analysis summary``).
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path

import scipy.stats

from analysis.core import formatting, palette, synthetic_mark, words
from analysis.reports.quarterly.build import SAFETY_VITALS, build_report
from analysis.reports.quarterly.report import NoDataError, QuarterlyReport, SOFTWARE_VERSION
from analysis.reports.quarterly.tables import ALL_SITES, ANY_EVENT
from analysis.metrics import worklist
from analysis.core.audience import Audience
from analysis.core.filters import Filters
from analysis.storage.store import Snapshot
from analysis.core import audience
from analysis.core import definitions

FORMATS = ("html", "pdf")
MIME_TYPES = {"html": "text/html", "pdf": "application/pdf"}
#: The outcomes the page leads with: (timepoint, definition, what it says).
HEADLINES = (
    ("3m", "pain30", "Meaningful pain relief (30% less pain or more) at 3 months"),
    ("3m", "pain50", "Substantial pain relief (50% less pain or more) at 3 months"),
    ("12m", "pain30", "Meaningful pain relief at 12 months"),
    ("3m", "mme50", "Opioid dose cut by half or more at 3 months"),
    ("3m", "mme_stop", "Off opioids at 3 months"),
)
DENOMINATORS = {
    "pain30": "patients", "pain50": "patients",
    "mme50": "patients on opioids at the start", "mme_stop": "patients on opioids at the start",
}
SAFETY_ROWS = (
    (ANY_EVENT, "Sessions with an adverse event", "treatment sessions"),
    (SAFETY_VITALS["sbp_180"], "Sessions with systolic blood pressure of 180 or more",
     "sessions that recorded blood pressure"),
    (SAFETY_VITALS["spo2_below_90"], "Sessions with oxygen saturation below 90%",
     "sessions that recorded oxygen saturation"),
)
BACKLOG_TIMEPOINTS = worklist.TIMEPOINTS


@dataclass(frozen=True)
class Change:
    """This quarter's k/n against last quarter's, read in words."""
    k: int
    n: int
    prev_k: int | None
    prev_n: int | None

    @property
    def p_value(self) -> float | None:
        """Two-sided Fisher's exact test of the two proportions."""
        if not self.n or not self.prev_n:
            return None
        table = [[self.k, self.n - self.k], [self.prev_k, self.prev_n - self.prev_k]]
        return float(scipy.stats.fisher_exact(table).pvalue)

    @property
    def difference(self) -> float | None:
        if not self.n or not self.prev_n:
            return None
        return self.k / self.n - self.prev_k / self.prev_n

    def words(self, per_100: bool = False) -> str:
        """"clearly higher", "clearly lower", "no clear change" or why there is
        no comparison."""
        if not self.n:
            return "none this quarter"
        if not self.prev_n:
            return "nothing to compare with"
        if min(self.n, self.prev_n) < audience.SMALL_CELL:
            return "too few to tell"
        size = self.size_text(per_100)
        if self.clear:
            return f"clearly {'higher' if self.difference > 0 else 'lower'} ({size})"
        return f"no clear change ({size}, could be chance)"

    @property
    def clear(self) -> bool:
        """Both quarters have 11 or more and chance would rarely give the change."""
        return (bool(self.n) and bool(self.prev_n)
                and min(self.n, self.prev_n) >= audience.SMALL_CELL
                and words.chance_words(self.p_value, True).startswith("clearly"))

    def size_text(self, per_100: bool = False) -> str:
        """"−10 points" (percentage points) or "+1.5 per 100"."""
        if self.difference is None:
            return "–"
        if per_100:
            return f"{formatting.signed(100 * self.difference, 1)} per 100"
        return formatting.signed(round(100 * self.difference), 0, "points")

    def short_words(self) -> str:
        """The table's cell: "−10 points, could be chance"."""
        words_ = self.words()
        if not words_.startswith(("clearly", "no clear")):
            return words_
        if self.clear:
            return f"{self.size_text()}, clearly {'higher' if self.difference > 0 else 'lower'}"
        return f"{self.size_text()}, could be chance"


@dataclass(frozen=True)
class Headline:
    label: str
    timepoint: str
    definition: str
    n: int
    responders: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    prev_rate: float | None
    change: Change

    @property
    def denominator(self) -> str:
        return DENOMINATORS[self.definition]

    def result_text(self) -> str:
        """"52% of 140 patients (95% CI 44–60%)"."""
        if not self.n:
            return f"no {self.denominator} came due"
        rate = formatting.rate_with_ci(self.rate, self.ci_low, self.ci_high)
        share, _, interval = rate.partition(" (")
        return (f"{share} of {formatting.count(self.n)} {self.denominator}"
                + (f" ({interval}" if interval else ""))

    def previous_text(self) -> str:
        if not self.change.prev_n:
            return "–"
        return (f"{formatting.percent(self.prev_rate)} of "
                f"{formatting.count(self.change.prev_n)}")


@dataclass(frozen=True)
class SafetyLine:
    label: str
    denominator: str
    events: int
    n: int
    per_100: float | None
    ci_low: float | None
    ci_high: float | None
    prev_per_100: float | None
    change: Change

    def result_text(self) -> str:
        if not self.n:
            return f"no {self.denominator}"
        return (f"{formatting.number(self.per_100)} per 100 {self.denominator} "
                f"(95% CI {formatting.number(self.ci_low)}–{formatting.number(self.ci_high)}; "
                f"{formatting.count(self.events)} of {formatting.count(self.n)})")


@dataclass(frozen=True)
class Backlog:
    """Follow-up windows (3, 6, 12 months) without a pain score, at the data
    cutoff: still open (a call can still catch them), and closed (missed;
    ITT counts an eligible patient as a non-responder)."""
    open_by_timepoint: dict[str, int]
    missed_in_quarter: int
    missed_total: int
    stopped_in_induction: int = 0

    @property
    def open_total(self) -> int:
        return sum(self.open_by_timepoint.values())


@dataclass(frozen=True)
class DirectorSummary:
    quarter: str
    previous_quarter: str
    start: dt.date
    end: dt.date
    cutoff: dt.date | None
    complete: bool
    filters: Filters
    fingerprint: str
    activity: dict[str, int]
    previous_activity: dict[str, int] | None
    headlines: list[Headline]
    safety: list[SafetyLine]
    backlog: Backlog
    generated_at: str
    synthetic: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"Program summary {self.quarter}"

    @property
    def period_text(self) -> str:
        return f"{formatting.long_date(self.start)} – {formatting.long_date(self.end)}"

    def subtitle(self) -> str:
        status = "" if self.complete else " (quarter not over: data so far)"
        return (f"{self.period_text}{status} · data cutoff {formatting.long_date(self.cutoff)} · "
                f"{self.filters.describe()}")

    # -- the sentences -----------------------------------------------------

    def treated_text(self) -> str:
        a = self.activity
        text = (f"{formatting.count(a['patients_treated'])} patients had "
                f"{words.sessions_text(a['infusions'], a['boosters'])}; "
                f"{formatting.count(a['new_patients'])} of them started treatment this quarter.")
        return text

    def treated_change_text(self) -> str:
        before = self.previous_activity
        if before is None:
            return f"No visits in {self.previous_quarter} to compare with."
        a = self.activity

        def diff(key: str) -> str:
            return formatting.signed(a[key] - before[key], 0)
        return (f"{self.previous_quarter}: {formatting.count(before['patients_treated'])} patients "
                f"treated ({diff('patients_treated')}), "
                f"{formatting.count(before['infusions'] + before['boosters'])} "
                f"{words.TREATMENT_SESSIONS} "
                f"({formatting.signed(a['infusions'] + a['boosters'] - before['infusions'] - before['boosters'], 0)}), "
                f"{formatting.count(before['new_patients'])} new patients ({diff('new_patients')}).")

    def changes(self) -> list[str]:
        """What changed since last quarter: the clear changes, then the
        largest move that could be chance (or that nothing moved)."""
        clear, unclear = [], []
        for item, per_100 in [*((h, False) for h in self.headlines),
                              *((s, True) for s in self.safety)]:
            if item.change.clear:
                clear.append(f"{item.label}: {item.change.words(per_100=per_100)}.")
            elif item.change.words().startswith("no clear"):
                unclear.append((abs(item.change.difference), item, per_100))
        lines = clear or [f"No result changed by more than chance since "
                          f"{self.previous_quarter}."]
        if unclear:
            _, item, per_100 = max(unclear, key=lambda u: u[0])
            size = item.change.size_text(per_100)
            lines.append(f"{'Every other' if clear else 'Every'} move could be chance; the "
                         f"largest: {item.label[0].lower()}{item.label[1:]}, {size}.")
        return lines

    def backlog_text(self) -> list[str]:
        b = self.backlog
        by = ", ".join(f"{definitions.TIMEPOINT_LABELS[tp]}: {formatting.count(n)}"
                       for tp, n in b.open_by_timepoint.items())
        return [
            f"{formatting.count(b.open_total)} follow-ups are due now: the patient's window is "
            f"open and no pain score is recorded yet ({by}).",
            f"{formatting.count(b.missed_in_quarter)} follow-up windows closed in {self.quarter} "
            f"without a pain score ({formatting.count(b.missed_total)} since the program "
            "began); the rates count each of those patients who had a baseline as not improved.",
            f"{formatting.count(b.stopped_in_induction)} patients stopped during induction: no "
            f"visit in the {worklist.STOPPED_AFTER_DAYS} days or more since their last infusion.",
        ]


# --------------------------------------------------------------------------
# building


def build_summary(snap: Snapshot, quarter: str, filters: Filters = Filters()) -> DirectorSummary:
    """The one-page summary of ``quarter`` for the patients in view (sites,
    conditions, routes; the quarter sets the period, as in the quarterly
    report).  Raises :class:`analysis.reports.quarterly.report.NoDataError` when the quarter
    has no visits."""
    now = build_report(snap, quarter, "clinical", filters)
    try:
        before = build_report(snap, now.previous_quarter, "clinical", filters)
    except NoDataError:
        before = None
    filters = now.filters
    return DirectorSummary(
        quarter=now.quarter, previous_quarter=now.previous_quarter, start=now.start,
        end=now.end, cutoff=now.cutoff, complete=now.complete, filters=filters,
        fingerprint=now.fingerprint, activity=_activity(now),
        previous_activity=_activity(before) if before else None,
        headlines=_headlines(now), safety=_safety(now, before),
        backlog=_backlog(snap, filters, now.start, now.end),
        generated_at=now.generated_at, synthetic=now.synthetic,
        notes=[
            "Results are those that came due in the quarter (3 or 12 months after the first "
            "infusion): every patient whose window closed counts, and one without a follow-up "
            "counts as not improved (ITT). 95% intervals: Wilson.",
            "“Clearly higher/lower”: a change that chance alone would rarely give (p < 0.05); "
            "below 11 patients on either side it is too few to tell.",
            "Definitions: docs/outcome-definitions.md.",
        ])


def _activity(quarterly: QuarterlyReport) -> dict[str, int]:
    total = quarterly.activity[quarterly.activity["site"] == ALL_SITES].iloc[0]
    return {key: int(total[key]) for key in
            ("new_patients", "patients_treated", "infusions", "boosters")}


def _headlines(quarterly: QuarterlyReport) -> list[Headline]:
    due = quarterly.due.set_index(["timepoint", "definition"])
    rows = []
    for timepoint, definition, label in HEADLINES:
        r = due.loc[(timepoint, definition)]
        n, k = int(r["n"]), int(r["responders"])
        prev_n = int(r["prev_n"])
        prev_k = round(r["prev_rate"] * prev_n) if prev_n else None
        rows.append(Headline(label, timepoint, definition, n, k, _value(r["rate"]),
                             _value(r["ci_low"]), _value(r["ci_high"]),
                             _value(r["prev_rate"]), Change(k, n, prev_k, prev_n)))
    return rows


def _safety(now: QuarterlyReport, before: QuarterlyReport | None
            ) -> list[SafetyLine]:
    def row(quarterly, event):
        frame = quarterly.safety
        found = frame[frame["event"] == event]
        return None if found.empty else found.iloc[0]

    lines = []
    for event, label, denominator in SAFETY_ROWS:
        r = row(now, event)
        p = row(before, event) if before is not None else None
        k, n = (int(r["events"]), int(r["n"])) if r is not None else (0, 0)
        prev_k, prev_n = (int(p["events"]), int(p["n"])) if p is not None else (None, None)
        lines.append(SafetyLine(
            label, denominator, k, n,
            _value(r["per_100"]) if r is not None else None,
            _value(r["ci_low"]) if r is not None else None,
            _value(r["ci_high"]) if r is not None else None,
            _value(p["per_100"]) if p is not None else None,
            Change(k, n, prev_k, prev_n)))
    return lines


def _backlog(snap: Snapshot, filters: Filters, start: dt.date, end: dt.date) -> Backlog:
    """The follow-up worklist's counts (analysis.metrics.worklist: the same windows,
    the same rule).  Only its counts leave this function, never a patient, so
    the summary may give them to analysts too."""
    work = worklist.worklist(snap, filters, Audience.CLINICAL)
    counts = work.counts()
    closed = work.missed["window_end_date"]
    return Backlog(
        open_by_timepoint={tp: counts[tp] for tp in BACKLOG_TIMEPOINTS},
        missed_in_quarter=int(sum(1 for day in closed if day is not None and start <= day <= end)),
        missed_total=counts["missed"],
        stopped_in_induction=counts["stopped_in_induction"])


def _value(value) -> float | None:
    return None if formatting.missing(value) else float(value)


# --------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#222;margin:1.5rem auto;
max-width:820px;padding:0 1rem;line-height:1.4}
h1{font-size:1.5rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.1rem 0 .3rem;
border-bottom:2px solid #1f5f8b;padding-bottom:.15rem}
.sub,.note{color:#555;font-size:.85rem}
table{border-collapse:collapse;font-size:.88rem;width:100%}
th,td{border-bottom:1px solid #dde1e6;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f3f5f8}
@media print{body{margin:0}}
"""


def summary_html(s: DirectorSummary) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(h.label)}</td><td>{e(h.result_text())}</td><td>{e(h.previous_text())}</td>"
        f"<td>{e(h.change.short_words())}</td></tr>" for h in s.headlines)
    safety = "".join(f"<li>{e(line.label)}: {e(line.result_text())}.</li>" for line in s.safety)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(s.title)}</title><style>{_CSS}"
        f"{synthetic_mark.HTML_STYLE if s.synthetic else ''}</style></head><body>",
        synthetic_mark.html_banner() if s.synthetic else "",
        f"<h1>{e(s.title)}</h1>", f'<p class="sub">{e(s.subtitle())}</p>',
        "<h2>Patients treated</h2>", f"<p>{e(s.treated_text())} {e(s.treated_change_text())}</p>",
        "<h2>Results that came due this quarter</h2>",
        f"<table><thead><tr><th>Outcome</th><th>{e(s.quarter)}</th>"
        f"<th>{e(s.previous_quarter)}</th><th>Change</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>",
        f"<h2>What changed since {e(s.previous_quarter)}</h2>",
        "<ul>" + "".join(f"<li>{e(line)}</li>" for line in s.changes()) + "</ul>",
        "<h2>Safety</h2>", f"<ul>{safety}</ul>",
        "<h2>Follow-up backlog at the data cutoff</h2>",
        "<ul>" + "".join(f"<li>{e(line)}</li>" for line in s.backlog_text()) + "</ul>",
        '<p class="note">' + " ".join(e(n) for n in s.notes) + "</p>",
        f'<p class="note">Data fingerprint {e(s.fingerprint[:12])} · generated '
        f"{e(s.generated_at)}</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


# --------------------------------------------------------------------------
# PDF: one A4 page


def summary_pdf(s: DirectorSummary) -> bytes:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    class _PDF(FPDF):
        def header(self):
            if s.synthetic:
                synthetic_mark.pdf_header(self, "DejaVu")

    pdf = _PDF(orientation="portrait", format="A4")
    palette.add_pdf_font(pdf)
    pdf.set_title(s.title)
    pdf.set_creator(f"analysis {SOFTWARE_VERSION}")
    pdf.set_margins(15, 13, 15)
    pdf.set_auto_page_break(False)   # one page: the content is of fixed size
    pdf.add_page()
    width = pdf.epw

    def heading(text: str) -> None:
        pdf.ln(2.5)
        pdf.set_font("DejaVu", "B", 11.5)
        pdf.set_text_color(31, 95, 139)
        pdf.cell(width, 6.5, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_draw_color(31, 95, 139)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
        pdf.set_text_color(0)
        pdf.ln(1.2)

    def text(line: str, size: float = 9.5, style: str = "", bullet: bool = False) -> None:
        pdf.set_font("DejaVu", style, size)
        pdf.multi_cell(width, size * 0.5, ("•  " if bullet else "") + line, align="L",
                       new_x="LMARGIN", new_y="NEXT")
        pdf.ln(0.8)

    pdf.set_font("DejaVu", "B", 17)
    pdf.cell(width, 9, s.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(85)
    text(s.subtitle(), size=8.5)
    pdf.set_text_color(0)

    heading("Patients treated")
    text(s.treated_text(), size=10.5, style="B")
    text(s.treated_change_text())

    heading("Results that came due this quarter")
    pdf.set_font("DejaVu", "", 8.5)
    with pdf.table(col_widths=(62, 58, 26, 34), width=width, line_height=4.2, padding=1,
                   text_align=("LEFT", "LEFT", "LEFT", "LEFT"),
                   headings_style=FontFace(emphasis="BOLD", fill_color=(238, 241, 244)),
                   borders_layout="HORIZONTAL_LINES") as table:
        table.row(["Outcome", s.quarter, s.previous_quarter, "Change"])
        for h in s.headlines:
            table.row([h.label, h.result_text(), h.previous_text(), h.change.short_words()])

    heading(f"What changed since {s.previous_quarter}")
    for line in s.changes():
        text(line, bullet=True)

    heading("Safety")
    for line in s.safety:
        text(f"{line.label}: {line.result_text()}.", bullet=True)

    heading("Follow-up backlog at the data cutoff")
    for line in s.backlog_text():
        text(line, bullet=True)

    pdf.ln(2)
    pdf.set_text_color(100)
    for note in s.notes:
        text(note, size=7.5)
    text(f"Data fingerprint {s.fingerprint[:12]} · generated {s.generated_at}", size=7)
    if pdf.page > 1 or pdf.get_y() > pdf.h - 8:   # the one-page promise, checked
        raise RuntimeError("the summary does not fit on one page")
    return bytes(pdf.output())


RENDERERS = {"html": lambda s: summary_html(s).encode("utf-8"), "pdf": summary_pdf}


def file_name(s: DirectorSummary, fmt: str) -> str:
    return f"program_summary_{s.quarter}.{fmt}"


def write(s: DirectorSummary, out_dir: str | Path, formats=FORMATS) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = out / file_name(s, fmt)
        target.write_bytes(RENDERERS[fmt](s))
        written.append(target)
    return written
