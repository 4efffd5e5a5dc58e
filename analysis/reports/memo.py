"""The claim substantiation memo as a self-contained HTML page and as a PDF.

Both render a :class:`analysis.claims.substantiation.Memo`, whose content is already fit for
people outside the clinical team (small cells suppressed, no patient ids):
this module only lays it out.  The HTML has inline CSS and no external
resource; the PDF is drawn with fpdf2 in DejaVu Sans (bundled with
matplotlib) so that "≥", "–" and "“”" print as they are.
"""

from __future__ import annotations

import datetime as dt
import html

from analysis.core import synthetic_mark
from analysis.core.audience import Audience
from analysis.claims.substantiation import Memo, MemoTable
from analysis.claims.wording import VERDICT_LABELS
from analysis.core.palette import PDF_FONT, VERDICT_COLOURS, VERDICT_FILLS, add_pdf_font

STRONGEST_TITLE = "The strongest statements the data support"
STRONGEST_NOTE = ("Highest defensible figure first: each “at least” is the one-sided 95% exact "
                  "lower bound of the rate, rounded down (ITT).")


FORMATS = ("html", "pdf")
MIME_TYPES = {"html": "text/html", "pdf": "application/pdf"}


def build_memo(snap, report, generated: dt.datetime | None = None) -> Memo:
    """The memo of one claim check (:func:`analysis.claims.claim.claim_report`):
    the page's download and ``python -m analysis memo`` alike.  The memo is
    for outsiders whoever asks for it: a report built for an internal reader
    is rebuilt for the external audience (the whole program, protected)."""
    from analysis.claims import claim, substantiation
    from analysis.storage.fingerprint import data_fingerprint
    if not report.external:
        r = report.reading
        report = claim.claim_report(snap, r.target, r.timepoint, r.definition, r.population,
                                    include_completers=any(s.population == "completers"
                                                           for s in report.statements),
                                    audience=Audience.EXTERNAL)
    return substantiation.memo_data(report, data_fingerprint(snap), generated or dt.datetime.now())


def file_stem(report) -> str:
    """``claim-memo-<data cutoff>``: the file name without its extension."""
    return f"claim-memo-{report.cutoff.isoformat() if report.cutoff else 'no-data'}"


def render(memo: Memo, fmt: str) -> bytes:
    if fmt == "html":
        return memo_html(memo).encode("utf-8")
    if fmt == "pdf":
        return memo_pdf(memo)
    raise ValueError(f"unknown memo format {fmt!r}; one of {', '.join(FORMATS)}")


# --------------------------------------------------------------------------
# HTML

_CSS = """
body { font-family: "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 2em auto;
       max-width: 68em; padding: 0 1.5em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #d5d9de; padding-bottom: 0.2em; }
.meta { color: #555; font-size: 0.9em; }
.claim { font-size: 1.15em; font-style: italic; border-left: 4px solid #1f5f8b;
         padding: 0.4em 0.9em; background: #f3f6f9; }
.verdict { border-left: 8px solid; padding: 0.6em 1em; margin: 1em 0; background: #fafafa; }
.verdict strong { font-size: 1.2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #d5d9de; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
table.facts th { width: 16em; }
td.num { text-align: right; }
.note { color: #555; font-size: 0.85em; }
.warning { border-left: 4px solid #d4ac0d; background: #fdf8e4; padding: 0.4em 0.9em; }
code { font-size: 0.85em; word-break: break-all; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _table_html(table: MemoTable) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in table.columns)
    body = []
    for i, row in enumerate(table.rows):
        cells = []
        for j, value in enumerate(row):
            verdict = table.verdicts[i][j] if table.verdicts else None
            style = f' style="background:{VERDICT_FILLS[verdict]}"' if verdict else ""
            title = f' title="{_e(VERDICT_LABELS[verdict])}"' if verdict else ""
            cls = ' class="num"' if j > 0 else ""
            text = _e(value).replace("    ", "&emsp;&emsp;")
            cells.append(f"<td{cls}{style}{title}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = f'<p class="note">{_e(table.note)}</p>' if table.note else ""
    return (f"<h2>{_e(table.title)}</h2>\n<table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>\n{note}")


def _legend_html() -> str:
    return '<p class="note">Colours: ' + " ".join(
        f'<span style="background:{VERDICT_FILLS[v]};padding:0 0.4em">'
        f"{_e(VERDICT_LABELS[v])}</span>"
        for v in VERDICT_FILLS) + "</p>"


def memo_html(memo: Memo) -> str:
    """The memo as one self-contained HTML document (inline CSS, nothing external)."""
    colour = VERDICT_COLOURS[memo.verdict]
    facts = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in memo.facts)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(memo.title)}</title>",
        f"<style>{_CSS}{synthetic_mark.HTML_STYLE if memo.synthetic else ''}</style>"
        "</head><body>",
        synthetic_mark.html_banner() if memo.synthetic else "",
        f"<h1>{_e(memo.title)}</h1>",
        f'<p class="meta">Generated {_e(memo.generated)} · data fingerprint (SHA-256) '
        f"<code>{_e(memo.fingerprint)}</code></p>",
        f'<p class="claim">“{_e(memo.claim[0].upper() + memo.claim[1:])}”</p>',
        f'<div class="verdict" style="border-color:{colour}">'
        f'<strong style="color:{colour}">{_e(VERDICT_LABELS[memo.verdict])}</strong>'
        f"<p>{_e(memo.verdict_text)}</p></div>",
        "<h2>The reading, the data and the test</h2>",
        f'<table class="facts"><tbody>{facts}</tbody></table>',
        f"<p>{_e(memo.flow_text)}</p>",
    ]
    legend_shown = False
    for table in memo.tables:
        parts.append(_table_html(table))
        if table.verdicts and not legend_shown:   # once, under the first coloured table
            parts.append(_legend_html())
            legend_shown = True
    parts.append(f"<h2>{_e(STRONGEST_TITLE)}</h2>")
    parts.append(f'<p class="note">{_e(STRONGEST_NOTE)}</p>')
    parts.append("<ol>" + "".join(f"<li>{_e(s)}</li>" for s in memo.defensible) + "</ol>"
                 if memo.defensible else "<p>No reading has enough patients to state a "
                                          "figure.</p>")
    parts.append("<h2>The claim at its target</h2>")
    if memo.supported:
        parts.append("<ul>" + "".join(f"<li>{_e(s)}</li>" for s in memo.supported) + "</ul>")
    else:
        parts.append("<p>No reading of the claim is supported by the data.</p>")
    for warning in memo.warnings:
        parts.append(f'<p class="warning">{_e(warning)}</p>')
    parts.append("<h2>Wording the data do not support</h2>")
    parts.append("<ul>" + "".join(f"<li>{_e(s)}</li>" for s in memo.not_supported) + "</ul>")
    parts.append("<h2>Notes</h2>")
    parts.append("<ul class=\"note\">" + "".join(f"<li>{_e(s)}</li>" for s in memo.footnotes)
                 + "</ul>")
    parts.append(f'<p class="meta">Data fingerprint (SHA-256 of the visit records): '
                 f"<code>{_e(memo.fingerprint)}</code></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------
# PDF

_FALLBACK = str.maketrans({"–": "-", "—": "-", "−": "-", "≥": ">=", "≤": "<=", "“": '"',
                           "”": '"', "’": "'", "‘": "'", "…": "...", "·": "-", "×": "x",
                           "→": "->", "§": "S."})


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def memo_pdf(memo: Memo) -> bytes:
    """The memo as a PDF (A4 landscape for the wide sensitivity table)."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace


    class _PDF(FPDF):
        def header(self):
            if memo.synthetic:
                synthetic_mark.pdf_header(self, family)

    pdf = _PDF(orientation="landscape", format="A4")
    pdf.set_margins(14, 12, 14)
    pdf.set_auto_page_break(True, margin=14)
    if add_pdf_font(pdf):
        family = PDF_FONT
        clean = str
    else:  # core font: replace what Latin-1 cannot encode
        family = "Helvetica"
        clean = lambda text: str(text).translate(_FALLBACK).encode(  # noqa: E731
            "latin-1", "replace").decode("latin-1")
    pdf.set_title(clean(memo.title))
    pdf.set_creator("Ketamine pain outcomes")
    pdf.add_page()
    width = pdf.epw - 0.5

    def heading(text: str, size: float = 13) -> None:
        pdf.ln(2)
        pdf.set_font(family, "B", size)
        pdf.multi_cell(width, 7, clean(text), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, "", 9.5)

    def paragraph(text: str, size: float = 9.5, style: str = "") -> None:
        pdf.set_font(family, style, size)
        pdf.multi_cell(width, 5, clean(text), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    pdf.set_font(family, "B", 17)
    pdf.cell(width, 9, clean(memo.title), new_x="LMARGIN", new_y="NEXT")
    paragraph(f"Generated {memo.generated}. Data fingerprint (SHA-256): {memo.fingerprint}",
              size=8)
    paragraph(f"“{memo.claim[0].upper()}{memo.claim[1:]}”", size=11, style="I")

    colour = _rgb(VERDICT_COLOURS[memo.verdict])
    pdf.set_fill_color(*colour)
    top = pdf.get_y()
    pdf.set_x(pdf.l_margin + 3)
    pdf.set_text_color(*colour)
    pdf.set_font(family, "B", 13)
    pdf.cell(width - 3, 7, clean(VERDICT_LABELS[memo.verdict]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(34, 34, 34)
    pdf.set_x(pdf.l_margin + 3)
    pdf.set_font(family, "", 10)
    pdf.multi_cell(width - 3, 5, clean(memo.verdict_text), new_x="LMARGIN", new_y="NEXT")
    pdf.rect(pdf.l_margin, top, 1.5, pdf.get_y() - top, style="F")
    pdf.set_fill_color(255, 255, 255)   # tables fill only the cells they style
    pdf.ln(2)

    heading("The reading, the data and the test")
    pdf.set_font(family, "", 9)
    header_style = FontFace(emphasis="BOLD", fill_color=(238, 241, 244))
    with pdf.table(col_widths=(55, width - 55), first_row_as_headings=False,
                   line_height=4.6, padding=1.2, text_align="LEFT") as table:
        for label, value in memo.facts:
            row = table.row()
            row.cell(clean(label), style=header_style)
            row.cell(clean(value))
    pdf.ln(2)
    paragraph(memo.flow_text)

    legend_shown = False
    for memo_table in memo.tables:
        _pdf_table(pdf, memo_table, family, clean, heading, paragraph)
        if memo_table.verdicts and not legend_shown:
            _pdf_legend(pdf, family, clean)
            legend_shown = True

    heading(STRONGEST_TITLE)
    paragraph(STRONGEST_NOTE, size=8)
    for number, text in enumerate(memo.defensible, start=1):
        paragraph(f"{number}. {text}")
    if not memo.defensible:
        paragraph("No reading has enough patients to state a figure.")
    heading("The claim at its target")
    if memo.supported:
        for text in memo.supported:
            paragraph(f"• {text}" if family == "DejaVu" else f"- {text}")
    else:
        paragraph("No reading of the claim is supported by the data.")
    for warning in memo.warnings:
        paragraph(warning, style="B")
    heading("Wording the data do not support")
    bullet = "•" if family == "DejaVu" else "-"
    for text in memo.not_supported:
        paragraph(f"{bullet} {text}", size=8.5)
    heading("Notes")
    for text in memo.footnotes:
        paragraph(text, size=8)
    return bytes(pdf.output())


def _pdf_legend(pdf, family: str, clean) -> None:
    pdf.set_font(family, "", 7.5)
    pdf.cell(14, 4.5, clean("Colours:"))
    for verdict in VERDICT_FILLS:
        label = VERDICT_LABELS[verdict]
        pdf.set_fill_color(*_rgb(VERDICT_FILLS[verdict]))
        pdf.cell(pdf.get_string_width(label) + 4, 4.5, clean(label), fill=True, align="C")
        pdf.cell(2, 4.5, "")
    pdf.set_fill_color(255, 255, 255)
    pdf.ln(6)


def _pdf_table(pdf, memo_table: MemoTable, family: str, clean, heading, paragraph) -> None:
    from fpdf.fonts import FontFace

    heading(memo_table.title, size=11.5)
    columns = len(memo_table.columns)
    width = pdf.epw - 0.5   # fpdf2 refuses a table a rounding error wider than the page
    if columns > 4:   # the sensitivity grid: a wide first column, the rest even
        first = 52
        widths = (first, *[(width - first) / (columns - 1)] * (columns - 1))
        size = 7.5
    else:
        first = 90
        widths = (first, *[(min(width, 220) - first) / (columns - 1)] * (columns - 1))
        size = 8.5
    pdf.set_font(family, "", size)
    with pdf.table(col_widths=widths, width=sum(widths), align="LEFT", line_height=size * 0.5,
                   padding=1.0,
                   headings_style=FontFace(emphasis="BOLD", fill_color=(238, 241, 244)),
                   text_align=("LEFT", *["RIGHT"] * (columns - 1))) as table:
        header = table.row()
        for name in memo_table.columns:
            header.cell(clean(name))
        for i, values in enumerate(memo_table.rows):
            row = table.row()
            for j, value in enumerate(values):
                verdict = memo_table.verdicts[i][j] if memo_table.verdicts else None
                style = FontFace(fill_color=_rgb(VERDICT_FILLS[verdict])) if verdict else None
                row.cell(clean(value), style=style)
    if memo_table.note:
        pdf.ln(1)
        paragraph(memo_table.note, size=7.5)
