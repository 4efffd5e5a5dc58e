"""One Plotly theme for every chart, readable on a laptop screen."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import plotly.io as pio
# Streamlit makes its own template Plotly's default when this module is first
# imported (lazily, at the first st.plotly_chart); import it first, so the
# clinic default set below is the one that stays.
import streamlit.elements.plotly_chart  # noqa: F401

from analysis.core.formatting import missing
# The colours every output shares (the report's and the memo's too); pages use
# them as theme.PRIMARY, theme.VERDICT_COLOURS, ...
from analysis.core.palette import ACCENT, BAD, COLORWAY, GOOD, NEUTRAL, PRIMARY, VERDICT_COLOURS
from ui import safe

BAND = "rgba(31, 95, 139, 0.18)"   # PRIMARY, see-through: an interval around a line

_CLINIC = go.layout.Template(
    layout=dict(
        font=dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13, color="#222"),
        colorway=COLORWAY,
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin=dict(l=60, r=30, t=50, b=50),
        xaxis=dict(gridcolor="#e5e8ec", zerolinecolor="#c9ced6", linecolor="#c9ced6"),
        yaxis=dict(gridcolor="#e5e8ec", zerolinecolor="#c9ced6", linecolor="#c9ced6"),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        hoverlabel=dict(font_size=12),
    )
)
# Merged once and made the default, so every figure starts with it.  Naming
# a template on each figure ("plotly_white+clinic") had Plotly merge and
# validate both again: ~0.1 s per chart, most of a warm page run.
pio.templates["clinic"] = pio.templates.merge_templates("plotly_white", _CLINIC)
pio.templates.default = "clinic"


def styled(fig: go.Figure, title: str | None = None, height: int = 420) -> go.Figure:
    """Size and title a figure (it already carries the clinic template, the
    default since this module was imported), and make every string in it
    text, never markup (:func:`ui.safe.plain_figure`): every chart passes
    here before it is drawn."""
    fig.update_layout(height=height)
    if title:
        # Title on top, the horizontal legend under it: room for both.
        fig.update_layout(title=dict(text=title, x=0, xanchor="left", y=0.98, yanchor="top"),
                          margin=dict(t=95))
    return safe.plain_figure(fig)


_LINE_LABEL = {  # annotation_position -> where the label sits on the line
    "top": dict(xanchor="center", yanchor="bottom"),
    "top right": dict(xanchor="right", yanchor="bottom"),
    "top left": dict(xanchor="left", yanchor="bottom"),
    "bottom left": dict(xanchor="left", yanchor="top"),
    "bottom right": dict(xanchor="right", yanchor="top"),
}


def reference_line(fig: go.Figure, *, x: float | None = None, y: float | None = None,
                   color: str = NEUTRAL, dash: str = "dot", width: float = 1.5,
                   text: str | None = None, position: str = "top") -> go.Figure:
    """A vertical (``x``) or horizontal (``y``) line across the plot, with an
    optional label: what ``add_vline``/``add_hline`` draw, at a fraction of
    their cost (they walk every subplot to place the line, ~25 ms each)."""
    if (x is None) == (y is None):
        raise ValueError("give x for a vertical line or y for a horizontal one")
    line = dict(color=color, dash=dash, width=width)
    if x is not None:
        fig.add_shape(type="line", xref="x", yref="y domain", x0=x, x1=x, y0=0, y1=1,
                      line=line)
    else:
        fig.add_shape(type="line", xref="x domain", yref="y", x0=0, x1=1, y0=y, y1=y,
                      line=line)
    if text:
        anchor = _LINE_LABEL[position]
        if x is not None:
            # An annotation on a log axis is placed by the log of its value (a
            # shape by the value itself): the label of a line at 1 stood at 10.
            log = fig.layout.xaxis.type == "log"
            where = dict(x=math.log10(x) if log else x, xref="x",
                         y=1 if position.startswith("top") else 0, yref="y domain")
        else:
            where = dict(x=1 if position.endswith("right") else 0, xref="x domain", y=y,
                         yref="y")
        fig.add_annotation(text=text, showarrow=False, font=dict(color=color), **where, **anchor)
    return fig


def band(x, low, high, name: str, color: str = BAND) -> go.Scatter:
    """A shaded band between ``low`` and ``high`` that stops where either is
    missing: each stretch without gaps is one closed shape (``fill="toself"``;
    Plotly's ``tonexty`` bridges a gap with a stray diagonal fill)."""
    xs, ys = [], []
    stretch: list[tuple] = []
    for point in [*zip(x, low, high), (None, None, None)]:
        if point[0] is not None and not missing(point[1]) and not missing(point[2]):
            stretch.append(point)
            continue
        if stretch:
            if xs:
                xs.append(None)
                ys.append(None)
            xs += [p[0] for p in stretch] + [p[0] for p in reversed(stretch)]
            ys += [p[2] for p in stretch] + [p[1] for p in reversed(stretch)]
            stretch = []
    return go.Scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor=color,
                      line=dict(width=0), hoverinfo="skip", name=name)


# Candidate places for a point's name, tried in turn (px from the point):
# above, below, further above, further below, right, left.
_LABEL_SPOTS = ((0, 14), (0, -14), (0, 30), (0, -30), (1, 0), (-1, 0), (0, 46), (0, -46))


def point_labels(fig: go.Figure, xs, ys, texts, *, x_range: tuple[float, float],
                 y_range: tuple[float, float], plot_px: tuple[int, int] = (700, 360),
                 font_size: int = 12) -> go.Figure:
    """Each point's name on a pale box near it, where it overlaps no other
    name nor point: two sites of like volume and rate wrote "Boulder" behind
    "Colorado Springs".  Places are chosen for the plot's smallest size
    (``plot_px``: the plotting area at a 1280 px window), so a wider chart
    only spreads them further apart."""
    width, height = plot_px
    (x0, x1), (y0, y1) = x_range, y_range
    points = [((x - x0) / ((x1 - x0) or 1) * width, (y - y0) / ((y1 - y0) or 1) * height)
              for x, y in zip(xs, ys)]
    taken: list[tuple[float, float, float, float]] = [  # boxes: left, bottom, right, top
        (px - 7, py - 7, px + 7, py + 7) for px, py in points]

    def free(box) -> bool:
        return all(box[2] <= o[0] or box[0] >= o[2] or box[3] <= o[1] or box[1] >= o[3]
                   for o in taken)

    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    for i in order:
        (px, py), text = points[i], str(texts[i])
        w, h = 0.62 * font_size * len(text) + 8, font_size + 6
        chosen = None
        for side, lift in _LABEL_SPOTS:
            dx = side * (w / 2 + 10)
            cx, cy = px + dx, py + lift
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            # a name may reach into the chart's side margins, not beyond
            if box[0] >= -50 and box[2] <= width + 25 and free(box):
                chosen = (dx, lift, box)
                break
        if chosen is None:   # nowhere free: above, as before
            chosen = (0, 14, (px - w / 2, py + 14 - h / 2, px + w / 2, py + 14 + h / 2))
        dx, lift, box = chosen
        taken.append(box)
        fig.add_annotation(x=xs[i], y=ys[i], text=text, showarrow=False, xshift=dx,
                           yshift=lift, bgcolor="rgba(255,255,255,0.85)",
                           font=dict(size=font_size, color="#333"))
    return fig


# --------------------------------------------------------------------------
# page style: text wraps instead of being cut

#: Streamlit cuts a metric's label, value and delta with an ellipsis when the
#: column is narrow ("Opioid dose halved (…", "−3.0 poi…" at 1280 px): they
#: wrap instead, and a long value shrinks a little before it wraps.  Widget
#: labels wrap too.  Drawn once per run by dashboard.py (one chokepoint for
#: every page).
PAGE_CSS = """
<style>
[data-testid="stMetric"] .stMarkdownEllipsis,
[data-testid="stMetric"] .stMarkdownEllipsis p {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
}
[data-testid="stMetricValue"] { font-size: clamp(1.55rem, 2.3vw, 2.25rem); line-height: 1.2; }
[data-testid="stMetric"] div:has(> [data-testid="stMetricDelta"]) { flex-wrap: wrap; row-gap: .2rem; }
[data-testid="stMetricDeltaDescription"] { white-space: normal !important; }
[data-testid="stWidgetLabel"] .stMarkdownEllipsis,
[data-testid="stWidgetLabel"] .stMarkdownEllipsis p {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
}
</style>
"""


def page_style() -> None:
    import streamlit as st
    st.html(PAGE_CSS)


#: A grid's own "Download as CSV" (its toolbar) writes the rows as they are:
#: no audit row on a clinic's data, no synthetic mark on the demo's (issue 19).
#: The pages' own download buttons do both, so they are the way out.  (What a
#: screen shows can still be copied: this closes the unrecorded export, it is
#: not a barrier to a reader who sees the data.)
NO_GRID_DOWNLOAD_CSS = """
<style>
[data-testid="stElementToolbarButton"]:has(button[aria-label="Download as CSV"]) {
  display: none !important;
}
</style>
"""


def no_grid_downloads() -> None:
    """Hide the grids' own CSV download (dashboard.py, on every page)."""
    import streamlit as st
    st.html(NO_GRID_DOWNLOAD_CSS)
