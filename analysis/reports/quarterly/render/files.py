"""The report as files: its formats, their MIME types and file names, and
writing one report in each format asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from analysis.reports.quarterly.render.html import render_html, write_html
from analysis.reports.quarterly.render.pdf import render_pdf, write_pdf
from analysis.reports.quarterly.render.xlsx import render_xlsx, write_xlsx

if TYPE_CHECKING:   # annotations only
    from analysis.reports.quarterly.report import QuarterlyReport

FORMATS = ("html", "xlsx", "pdf")

WRITERS = {"html": write_html, "xlsx": write_xlsx, "pdf": write_pdf}
RENDERERS = {"html": lambda r: render_html(r).encode("utf-8"), "xlsx": render_xlsx,
             "pdf": render_pdf}
MIME_TYPES = {"html": "text/html", "xlsx": "application/vnd.openxmlformats-officedocument."
              "spreadsheetml.sheet", "pdf": "application/pdf"}


def file_name(report: QuarterlyReport, fmt: str) -> str:
    return f"quarterly_report_{report.quarter}_{report.audience.value}.{fmt}"


def write(report: QuarterlyReport, out_dir: str | Path, formats=FORMATS) -> list[Path]:
    """Write the report in each format into ``out_dir``; the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [WRITERS[fmt](report, out / file_name(report, fmt)) for fmt in formats]
