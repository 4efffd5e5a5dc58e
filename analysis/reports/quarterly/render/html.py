"""The report as one self-contained HTML page (charts as inline SVG)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis.core import formatting, synthetic_mark
from analysis.reports.quarterly.charts import figure_svg, matplotlib_charts
from analysis.reports.quarterly.tables import (SUPPRESSED_TEXT, TableSpec, NUMERIC_KINDS,
    display_frame)

if TYPE_CHECKING:   # annotations only
    from analysis.reports.quarterly.report import QuarterlyReport

_CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#222;margin:2rem auto;
max-width:1240px;padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:2px solid #1f5f8b;padding-bottom:.2rem}
.sub{color:#555;margin-top:0}.note{color:#555;font-size:.85rem;max-width:900px}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.6rem;font-size:.8rem;
background:#e8f0f6;color:#1f5f8b;margin-left:.4rem;vertical-align:middle}
.badge.external{background:#fbeee2;color:#a04000}
table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0 1rem}
th,td{border-bottom:1px solid #dde1e6;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f3f5f8;font-weight:600}td.num,th.num{text-align:right}td.num{white-space:nowrap}
td.sup{color:#a04000;font-style:italic;white-space:normal}
.scroll{overflow-x:auto}td.wide{min-width:11rem}
ul.highlights{background:#f7f9fb;border-left:4px solid #1f5f8b;padding:.6rem 1rem .6rem 2rem}
figure{margin:.5rem 0 1rem}table.prov td:first-child{font-weight:600;width:28%}
td.mono{font-family:"DejaVu Sans Mono",monospace;font-size:.75rem;word-break:break-all}
@media print{body{margin:0}h2{break-after:avoid}table{break-inside:auto}}
"""


def render_html(report: QuarterlyReport) -> str:
    """The report as one self-contained HTML page (no scripts, no network)."""
    e = html.escape
    charts = {k: figure_svg(fig) for k, fig in matplotlib_charts(report).items()}
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(report.title)}</title><style>{_CSS}"
        f"{synthetic_mark.HTML_STYLE if report.synthetic else ''}</style></head><body>",
        synthetic_mark.html_banner() if report.synthetic else "",
        f"<h1>{e(report.title)}<span class=\"badge{' external' if report.external else ''}\">"
        f"{e(report.audience.value)}</span></h1>",
        f"<p class=\"sub\">{e(report.period_text)} · data cutoff "
        f"{e(formatting.long_date(report.cutoff))} · {e(report.filters.describe())} · "
        f"fingerprint {e(report.fingerprint[:12])}</p>",
        "<ul class=\"highlights\">" + "".join(f"<li>{e(h)}</li>" for h in report.highlights())
        + "</ul>",
    ]
    after = {"activity": "activity", "pchart": "pchart", "safety": "safety"}
    for spec, frame in report.tables():
        parts.append(f"<section id=\"{spec.key}\"><h2>{e(spec.title)}</h2>")
        parts.append(f"<p class=\"note\">{e(spec.note)}</p>")
        if spec.key in after:
            parts.append(f"<figure>{charts[after[spec.key]]}</figure>")
        parts.append(_html_table(spec, frame))
        parts.append("</section>")
    parts.append("<section id=\"provenance\"><h2>Provenance</h2><table class=\"prov\">")
    for item, value in report.provenance():
        cls = " class=\"mono\"" if item.startswith("Data fingerprint") else ""
        parts.append(f"<tr><td>{e(item)}</td><td{cls}>{e(value)}</td></tr>")
    parts.append("</table></section></body></html>")
    return "\n".join(parts)


def _html_table(spec: TableSpec, frame: pd.DataFrame) -> str:
    e = html.escape
    shown = display_frame(spec, frame)
    kinds = [c.kind for c in spec.columns if c.kind not in ("ci", "ci100")]
    head = "".join(("<th class=\"num\">" if kind in NUMERIC_KINDS else "<th>")
                   + f"{e(label)}</th>" for kind, label in zip(kinds, shown.columns))
    rows = []
    for values in shown.itertuples(index=False):
        cells = []
        for kind, value in zip(kinds, values):
            classes = []
            if kind in NUMERIC_KINDS:
                classes.append("num")
            elif kind in ("definition", "text") and len(str(value)) > 24:
                classes.append("wide")
            if value == SUPPRESSED_TEXT:
                classes.append("sup")
            cls = f" class=\"{' '.join(classes)}\"" if classes else ""
            cells.append(f"<td{cls}>{e(str(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        rows.append(f"<tr><td colspan=\"{len(kinds)}\">No rows.</td></tr>")
    return (f"<div class=\"scroll\"><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def write_html(report: QuarterlyReport, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_html(report), encoding="utf-8")
    return path
