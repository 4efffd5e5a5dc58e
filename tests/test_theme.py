"""The chart theme: every figure starts with the clinic template, and
reference lines sit where Plotly's add_vline/add_hline would put them."""

import plotly.graph_objects as go
import pytest

from ui import theme


def test_new_figures_carry_the_clinic_template():
    # Streamlit's chart module (loaded at the first st.plotly_chart) makes
    # its template the default on import; ui.theme imports it first.
    import plotly.io as pio
    import streamlit.elements.plotly_chart  # noqa: F401
    assert pio.templates.default == "clinic"
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    layout = fig.to_dict()["layout"]["template"]["layout"]
    assert list(layout["colorway"]) == theme.COLORWAY
    assert layout["plot_bgcolor"] == "white"
    styled = theme.styled(fig, "Title", height=300)
    assert styled.layout.height == 300 and styled.layout.title.text == "Title"


def test_reference_lines_match_plotly_add_vline_and_add_hline():
    ours = go.Figure(go.Scatter(x=[-100, 0], y=[0, 100]))
    theme.reference_line(ours, x=-50, color=theme.GOOD, dash="dash", text="cut by 50%")
    theme.reference_line(ours, y=90, text="90 MME/day", position="top right")
    plotly = go.Figure(go.Scatter(x=[-100, 0], y=[0, 100]))
    plotly.add_vline(x=-50, line_dash="dash", line_color=theme.GOOD, line_width=1.5,
                     annotation_text="cut by 50%", annotation_position="top")
    plotly.add_hline(y=90, line_dash="dot", line_color=theme.NEUTRAL, line_width=1.5,
                     annotation_text="90 MME/day", annotation_position="top right")
    for mine, theirs in zip(ours.layout.shapes, plotly.layout.shapes):
        for key in ("type", "xref", "yref", "x0", "x1", "y0", "y1"):
            assert mine[key] == theirs[key], key
        assert (mine.line.color, mine.line.dash) == (theirs.line.color, theirs.line.dash)
    for mine, theirs in zip(ours.layout.annotations, plotly.layout.annotations):
        for key in ("text", "x", "y", "xanchor", "yanchor", "showarrow"):
            assert mine[key] == theirs[key], key
    with pytest.raises(ValueError):
        theme.reference_line(ours)


def test_a_lines_label_on_a_log_axis_stands_on_the_line():
    """Plotly places an annotation on a log axis by the log of its value and
    a shape by the value: the odds-ratio plot's "no association" label stood
    at 10 while its line was at 1."""
    fig = go.Figure(go.Scatter(x=[0.1, 10], y=["a", "b"]))
    fig.update_xaxes(type="log")
    theme.reference_line(fig, x=1.0, text="no association")
    theme.reference_line(fig, x=2.0, text="two")
    assert [s.x0 for s in fig.layout.shapes] == [1.0, 2.0]
    assert [a.x for a in fig.layout.annotations] == pytest.approx([0.0, 0.30103], abs=1e-5)


def test_band_is_one_closed_shape_per_stretch_without_gaps():
    nan = float("nan")
    trace = theme.band([0, 1, 2, 3, 4, 5], [1, 2, nan, 1, 1, 2], [3, 4, nan, 5, 6, 7], "IQR")
    assert trace.fill == "toself"
    # weeks 0-1, then 3-5: upper edge forwards, lower edge back, a gap between
    assert list(trace.x) == [0, 1, 1, 0, None, 3, 4, 5, 5, 4, 3]
    assert list(trace.y) == [3, 4, 2, 1, None, 5, 6, 7, 2, 1, 1]
    assert list(theme.band([0, 1], [nan, nan], [nan, nan], "IQR").x) == []
