"""Number formatting for people, and spreadsheet-formula neutralising
(analysis.core.formatting)."""

import pandas as pd
import pytest

from analysis.core import formatting


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x","y")', "@SUM(1)", "+1", "-2", "\tx", "\rx"])
def test_formulas_become_text(text):
    assert formatting.neutralise_formula(text) == "'" + text
    frame = formatting.safe_for_spreadsheet(pd.DataFrame({text: [text, "plain", 3]}))
    assert frame.columns[0] == "'" + text
    assert list(frame.iloc[:, 0]) == ["'" + text, "plain", 3]


def test_formatting_for_people():
    assert formatting.rate_with_ci(0.6403, 0.6012, 0.6789) == "64% (95% CI 60–68%)"
    assert formatting.rate_with_ci(0.002, 0.0005, 0.0081) == "0.2% (95% CI 0.1–0.8%)"
    assert formatting.rate_with_ci(None, None, None) == "–"
    assert formatting.percent(float("nan")) == "–"
    assert formatting.count(12345) == "12,345"
    assert formatting.signed(-2.04, unit="points") == "−2.0 points"
    assert formatting.signed(0.0) == "±0.0"
    assert formatting.p_value(0.0004) == "<0.001" and formatting.p_value(0.0312) == "0.031"


@pytest.mark.parametrize("value, text", [(0, "0%"), (0.6403, "64%"), (0.002, "0.2%"),
                                         (0.0024, "0.2%"), (0.0004, "0.04%"), (0.00001, "<0.01%"),
                                         (0.0049, "0.5%"), (0.005, "0.5%"), (1, "100%"),
                                         (None, "–")])
def test_a_rate_above_zero_never_reads_zero_percent(value, text):
    from analysis.core.formatting import percent
    assert percent(value) == text


def test_a_grid_cell_and_a_sentence_agree_on_a_small_rate():
    # 4-week dose halving on the demo: the claim grid said "0%" where the
    # sentence said "0.2% (95% CI …)"; both now read the rate the same way.
    from analysis.core.formatting import percent, rate_with_ci
    from analysis.core.stats import proportion
    p = proportion(1, 500)
    sentence = rate_with_ci(p.rate, p.ci_low, p.ci_high)
    assert sentence.startswith(percent(p.rate) + " ") and percent(p.rate) == "0.2%"
    assert sentence == f"0.2% (95% CI {100 * p.ci_low:.1f}–{100 * p.ci_high:.1f}%)"
