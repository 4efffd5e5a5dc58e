"""The house style every output shares: the dashboard's theme (ui.theme),
the quarterly report's and the claim memo's charts, HTML and PDF (report,
memo, summary) take their colours and the PDF font from here."""

from __future__ import annotations

from pathlib import Path

PRIMARY = "#1f5f8b"
ACCENT = "#e07a1f"
GOOD = "#2e8b57"
BAD = "#c0392b"
NEUTRAL = "#8a8f98"
WARNING = "#d4ac0d"
# A series per colour, in this order, on every chart.
COLORWAY = [PRIMARY, ACCENT, GOOD, "#8e44ad", BAD, "#16a085",
            WARNING, "#5d6d7e", "#a04000", "#1abc9c", "#7d3c98", "#2874a6", "#b03a2e"]
# The claim check's verdicts (analysis.claims.wording.VERDICTS, "no data"
# and TOO_FEW).  "Too few to tell" (1-10 patients, SPEC §4) is grey like
# "no data": never a verdict colour.
VERDICT_COLOURS = {"supported": GOOD, "contradicted": BAD, "inconclusive": WARNING,
                   "no data": NEUTRAL, "too few to tell": NEUTRAL}
# Light cell backgrounds for tables (dark text stays readable on them).
VERDICT_FILLS = {"supported": "#cdebd9", "contradicted": "#f5cdc8",
                 "inconclusive": "#f7eab0", "no data": "#e3e5e8"}


def font_dir() -> Path | None:
    """The folder of the DejaVu fonts (matplotlib's own copy) that PDFs
    embed so that '≥', '–' and '·' print; None when it is missing."""
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - matplotlib is a requirement
        return None
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return folder if (folder / "DejaVuSans.ttf").exists() else None


PDF_FONT = "DejaVu"
_PDF_FACES = (("", "DejaVuSans.ttf"), ("B", "DejaVuSans-Bold.ttf"), ("I", "DejaVuSans-Oblique.ttf"))


def add_pdf_font(pdf) -> bool:
    """Register DejaVu Sans (regular, bold, italic) as :data:`PDF_FONT` with an
    fpdf2 document; False when the font is missing (the caller then falls back
    to a core font, or fails)."""
    fonts = font_dir()
    if fonts is None:
        return False
    for style, face in _PDF_FACES:
        pdf.add_font(PDF_FONT, style, str(fonts / face))
    return True
