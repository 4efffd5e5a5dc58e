"""The report as a PDF (fpdf2, DejaVu Sans from the shared font setup,
matplotlib charts as PNG).
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis.core import formatting, synthetic_mark
from analysis.core.palette import add_pdf_font
from analysis.reports.quarterly.charts import figure_png, matplotlib_charts
from analysis.reports.quarterly.tables import NUMERIC_KINDS, iso_date, display_frame

if TYPE_CHECKING:   # annotations only
    from analysis.reports.quarterly.report import QuarterlyReport


def render_pdf(report: QuarterlyReport) -> bytes:
    """A landscape A4 PDF: highlights, tables, charts (PNG) and provenance."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    charts = {k: figure_png(fig) for k, fig in matplotlib_charts(report).items()}
    generated = dt.datetime.strptime(report.generated_at, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=dt.UTC)
    footer_text = (f"{report.title} · {report.audience.value} · data cutoff {iso_date(report.cutoff)} · "
                   f"fingerprint {report.fingerprint[:12]}")

    class _PDF(FPDF):
        def header(self):
            if report.synthetic:
                synthetic_mark.pdf_header(self, "DejaVu")

        def footer(self):
            self.set_y(-12)
            self.set_font("DejaVu", size=7)
            self.set_text_color(120)
            self.cell(0, 6, footer_text, align="L")
            self.cell(0, 6, f"page {self.page_no()}/{{nb}}", align="R")
            self.set_text_color(0)

    pdf = _PDF(orientation="landscape", format="A4")
    pdf.set_creation_date(generated)
    pdf.set_title(report.title)
    pdf.set_creator(f"analysis {report.software_version}")
    add_pdf_font(pdf)
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_margins(12, 12, 12)
    pdf.add_page()

    pdf.set_font("DejaVu", "B", 18)
    pdf.cell(0, 10, report.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=10)
    pdf.set_text_color(80)
    pdf.multi_cell(0, 5, f"{report.period_text} · audience: {report.audience.value} · data cutoff "
                         f"{formatting.long_date(report.cutoff)} · {report.filters.describe()}",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0)
    pdf.ln(3)
    pdf.set_font("DejaVu", size=10)
    for line in report.highlights():
        pdf.multi_cell(0, 5.5, f"•  {line}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    heading = FontFace(emphasis="BOLD", color=255, fill_color=(31, 95, 139))
    width = pdf.epw
    for spec, frame in report.tables():
        shown = display_frame(spec, frame)
        needed = 22 + 5 * min(len(shown) + 1, 6)
        if pdf.will_page_break(needed):
            pdf.add_page()
        pdf.set_font("DejaVu", "B", 13)
        pdf.cell(0, 8, spec.title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "I", 8)
        pdf.set_text_color(80)
        pdf.multi_cell(0, 4, spec.note, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0)
        pdf.ln(1)
        if spec.key in charts:
            image_height = 62 if spec.key != "safety" else min(62, 20 + 5 * len(frame))
            if pdf.will_page_break(image_height + 4):
                pdf.add_page()
            pdf.image(io.BytesIO(charts[spec.key]), h=image_height, keep_aspect_ratio=True)
            pdf.ln(2)
        pdf.set_font("DejaVu", size=7.5 if len(shown.columns) > 8 else 8.5)
        widths = _pdf_widths(pdf, shown, width - 0.5)
        kinds = [c.kind for c in spec.columns if c.kind not in ("ci", "ci100")]
        align = ["RIGHT" if k in NUMERIC_KINDS else "LEFT" for k in kinds]
        with pdf.table(col_widths=widths, width=sum(widths), align="LEFT",
                       text_align=tuple(align),
                       headings_style=heading, line_height=4.6, padding=1,
                       cell_fill_color=(246, 248, 250), cell_fill_mode="ROWS",
                       borders_layout="HORIZONTAL_LINES") as table:
            table.row(list(shown.columns))
            for values in shown.itertuples(index=False):
                table.row([str(v) for v in values])
        pdf.ln(4)

    pdf.add_page()
    pdf.set_font("DejaVu", "B", 13)
    pdf.cell(0, 8, "Provenance", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=8)
    with pdf.table(col_widths=(30, 70), width=width, text_align=("LEFT", "LEFT"),
                   headings_style=heading, line_height=4.4, padding=1,
                   borders_layout="HORIZONTAL_LINES") as table:
        table.row(["Item", "Value"])
        for item, value in report.provenance():
            table.row([item, value])
    return bytes(pdf.output())


def _pdf_widths(pdf, shown: pd.DataFrame, available: float, padding: float = 2.5
                ) -> tuple[float, ...]:
    """Column widths (mm) in the current font: each column at least as wide as
    its longest word (header included), then as wide as its longest cell as
    far as the page allows; the widest columns wrap."""
    family, size = pdf.font_family, pdf.font_size_pt
    pdf.set_font(family, "B", size)   # headers are bold
    heads = [max(pdf.get_string_width(w) for w in str(label).split()) for label in shown.columns]
    pdf.set_font(family, "", size)
    least, wanted = [], []
    for label, head in zip(shown.columns, heads):
        cells = [str(v) for v in shown[label]]
        words = [w for text in cells for w in text.split()] or [" "]
        least.append(max([head] + [pdf.get_string_width(w) for w in words]) + padding)
        wanted.append(max([head] + [pdf.get_string_width(c) for c in cells]) + padding)
    if sum(wanted) <= available:
        return tuple(wanted)
    if sum(least) >= available:
        return tuple(w * available / sum(least) for w in least)
    spare = available - sum(least)
    extra = [w - m for w, m in zip(wanted, least)]
    return tuple(m + spare * e / sum(extra) for m, e in zip(least, extra))


def write_pdf(report: QuarterlyReport, path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(render_pdf(report))
    return path
