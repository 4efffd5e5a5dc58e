"""The report's charts: matplotlib (the HTML as inline SVG, the PDF as PNG)
and Plotly (the Quarterly report page), in the shared palette.
"""

from __future__ import annotations

import io
import re

import pandas as pd

from analysis.core import formatting, words
from analysis.core.palette import ACCENT, BAD, GOOD, NEUTRAL, PRIMARY
from analysis.reports.quarterly.report import QuarterlyReport, pchart_points
from analysis.reports.quarterly.tables import ALL_SITES, SUPPRESSED_TEXT, withheld_or_missing

SERIES = {"new_patients": ("New patients", PRIMARY), "infusions": ("Infusion visits", ACCENT),
          "boosters": ("Boosters", GOOD)}


def chart_titles(report: QuarterlyReport) -> dict[str, str]:
    return {
        "activity": f"Activity by site, {report.quarter}",
        "pchart": "Responders (≥30% less pain at 3 months, ITT) by cohort quarter",
        "safety": f"Adverse events {words.PER_100_SESSIONS}, {report.quarter}",
    }


def _site_rows(report: QuarterlyReport) -> pd.DataFrame:
    return report.activity[report.activity["site"] != ALL_SITES]


def _event_rows(report: QuarterlyReport) -> pd.DataFrame:
    frame = report.safety
    return frame[frame["per_100"].map(lambda v: not withheld_or_missing(v))]


def matplotlib_charts(report: QuarterlyReport) -> dict[str, object]:
    """Static charts (matplotlib ``Figure`` objects, no pyplot state)."""
    from matplotlib.figure import Figure

    titles = chart_titles(report)
    charts = {}

    sites = _site_rows(report)
    fig = Figure(figsize=(8, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    width = 0.26
    positions = list(range(len(sites)))
    for i, (column, (label, colour)) in enumerate(SERIES.items()):
        values = [0 if withheld_or_missing(v) else int(v) for v in sites[column]]
        bars = ax.bar([p + (i - 1) * width for p in positions], values, width, label=label,
                      color=colour)
        for bar, raw in zip(bars, sites[column]):
            ax.annotate("n<11" if withheld_or_missing(raw) else formatting.count(raw),
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7, color="#333")
    ax.set_xticks(positions, list(sites["site"]))
    ax.set_ylabel("Count")
    ax.set_title(titles["activity"], loc="left", fontsize=11)
    ax.legend(frameon=False, fontsize=8, ncols=3, loc="upper center",
              bbox_to_anchor=(0.5, -0.14))
    ax.margins(y=0.15)
    _tidy(ax)
    charts["activity"] = fig

    points = pchart_points(report)
    fig = Figure(figsize=(8, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if len(points):
        x = list(range(len(points)))
        rates = [100 * float(v) for v in points["rate"]]
        ax.step(x, [100 * float(v) for v in points["upper"]], where="mid", color=NEUTRAL,
                linewidth=1, linestyle="--", label="3-sigma limits")
        ax.step(x, [100 * float(v) for v in points["lower"]], where="mid", color=NEUTRAL,
                linewidth=1, linestyle="--")
        if report.pchart_centre is not None:
            ax.axhline(100 * report.pchart_centre, color=PRIMARY, linewidth=1,
                       label=f"centre {formatting.percent(report.pchart_centre)}")
        ax.plot(x, rates, color=PRIMARY, linewidth=1, alpha=0.5)
        colours = [BAD if o else PRIMARY for o in points["outside"]]
        ax.scatter(x, rates, c=colours, zorder=3, s=28, label="cohort quarter")
        ax.set_xticks(x, list(points["cohort_quarter"]), fontsize=8)
        ax.set_ylim(0, 100)
        ax.legend(frameon=False, fontsize=8, ncols=3, loc="upper center",
                  bbox_to_anchor=(0.5, -0.14))
    else:
        ax.text(0.5, 0.5, "No cohort has results due at 3 months", ha="center",
                transform=ax.transAxes)
    ax.set_ylabel("Responders (%)")
    ax.set_title(titles["pchart"], loc="left", fontsize=11)
    _tidy(ax)
    charts["pchart"] = fig

    events = _event_rows(report)
    events = events[events["category"] == "Adverse events"].iloc[::-1]
    fig = Figure(figsize=(8, 0.9 + 0.32 * max(len(events), 1)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if len(events):
        values = [float(v) for v in events["per_100"]]
        errors = [[v - float(lo) for v, lo in zip(values, events["ci_low"])],
                  [float(hi) - v for v, hi in zip(values, events["ci_high"])]]
        ax.barh(list(events["event"]), values, xerr=errors, color=ACCENT, capsize=3,
                error_kw={"linewidth": 0.8})
        ax.set_xlabel(f"{words.PER_100_SESSIONS} (95% CI)")
    else:
        ax.text(0.5, 0.5, SUPPRESSED_TEXT if report.external else "No treatment sessions",
                ha="center", transform=ax.transAxes)
    ax.set_title(titles["safety"], loc="left", fontsize=11)
    _tidy(ax)
    charts["safety"] = fig
    return charts


def _tidy(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#e5e8ec", linewidth=0.6)
    ax.set_axisbelow(True)


def figure_svg(fig) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "quarterly-report", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    # scale to the page: drop the fixed size, keep the viewBox
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
                  r'<svg\1 style="width:100%;height:auto;max-width:900px"', text, count=1)


def figure_png(fig, dpi: int = 150) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def plotly_charts(report: QuarterlyReport) -> dict[str, object]:
    """The same charts as Plotly figures (the page styles them with ui.theme)."""
    import plotly.graph_objects as go

    titles = chart_titles(report)
    charts = {}
    sites = _site_rows(report)
    fig = go.Figure()
    for column, (label, colour) in SERIES.items():
        fig.add_bar(x=list(sites["site"]), y=[None if withheld_or_missing(v) else int(v) for v in sites[column]],
                    name=label, marker_color=colour,
                    text=[("n<11" if withheld_or_missing(v) else formatting.count(v)) for v in sites[column]],
                    textposition="outside")
    fig.update_layout(barmode="group", yaxis_title="Count", title=titles["activity"],
                      margin=dict(t=90))
    charts["activity"] = fig

    points = pchart_points(report)
    fig = go.Figure()
    quarters = list(points["cohort_quarter"])
    pct = lambda s: [None if withheld_or_missing(v) else 100 * float(v) for v in s]
    fig.add_scatter(x=quarters, y=pct(points["upper"]), mode="lines", name="upper limit (3σ)",
                    line=dict(color=NEUTRAL, dash="dash", shape="hvh"))
    fig.add_scatter(x=quarters, y=pct(points["lower"]), mode="lines", name="lower limit (3σ)",
                    line=dict(color=NEUTRAL, dash="dot", shape="hvh"))
    if report.pchart_centre is not None:
        fig.add_scatter(x=quarters, y=[100 * report.pchart_centre] * len(quarters),
                        mode="lines", name=f"centre {formatting.percent(report.pchart_centre)}",
                        line=dict(color=PRIMARY))
    fig.add_scatter(x=quarters, y=pct(points["rate"]), mode="lines+markers", name="responders",
                    line=dict(color=PRIMARY, width=1),
                    marker=dict(size=9, color=[BAD if o else PRIMARY for o in points["outside"]]),
                    customdata=[[formatting.count(n), s or "within limits"]
                                for n, s in zip(points["n"], points["signal"])],
                    hovertemplate="%{x}: %{y:.0f}% of %{customdata[0]}<br>%{customdata[1]}"
                                  "<extra></extra>")
    fig.update_layout(yaxis=dict(title="Responders (%)", range=[0, 100]),
                      xaxis=dict(type="category", title="Cohort quarter (first infusion)"),
                      title=titles["pchart"], margin=dict(t=90))
    charts["pchart"] = fig

    events = _event_rows(report)
    events = events[events["category"] == "Adverse events"].iloc[::-1]
    fig = go.Figure()
    values = [float(v) for v in events["per_100"]]
    fig.add_bar(y=list(events["event"]), x=values, orientation="h", marker_color=ACCENT,
                error_x=dict(type="data", symmetric=False,
                             array=[float(h) - v for v, h in zip(values, events["ci_high"])],
                             arrayminus=[v - float(lo) for v, lo in zip(values, events["ci_low"])]),
                hovertemplate=f"%{{y}}: %{{x:.1f}} {words.PER_100_SESSIONS}<extra></extra>")
    fig.update_layout(xaxis_title=f"{words.PER_100_SESSIONS} (95% CI)", title=titles["safety"],
                      showlegend=False)
    charts["safety"] = fig
    return charts
