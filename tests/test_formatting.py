"""Small-cell suppression, spreadsheet-formula neutralising and number formatting."""

import pandas as pd
import pytest

from analysis import formatting, privacy


def _table(ns, total=True):
    rows = [{"group": f"g{i}", "n": n, "rate": 0.5} for i, n in enumerate(ns)]
    if total:
        rows.append({"group": "All", "n": sum(ns), "rate": 0.5})
    return pd.DataFrame(rows)


def test_cells_under_11_are_blanked_and_10_is_small_11_is_not():
    out = privacy.suppress(_table([10, 11, 50, 60], total=False), value_columns=["rate"])
    assert list(out["suppressed"]) == [True, True, False, False]  # 11 hidden as the complement
    assert out.loc[0, "n"] is None and out.loc[0, "rate"] is None


def test_one_hidden_cell_beside_a_total_hides_the_next_smallest():
    out = privacy.suppress(_table([4, 30, 20]), value_columns=["rate"],
                           total_label="All", label_column="group")
    hidden = set(out.loc[out.suppressed, "group"])
    assert hidden == {"g0", "g2"}  # 4 and the smallest visible (20)
    # The total stays, but no single hidden cell can be recovered from it.
    total = out.loc[out.group == "All", "n"].iloc[0]
    visible = sum(v for v in out.loc[(out.group != "All") & ~out.suppressed, "n"])
    assert total - visible == 24  # two cells share it: 4 + 20 cannot be split


def test_two_hidden_cells_adding_up_to_under_11_get_a_complement_and_sets_are_separate():
    # Issue 14: the old rule left 3 and 5 hidden beside a total of 48 and a
    # shown 40, so 48 - 40 = 8 gave their sum away; now 40 is hidden too.
    frame = pd.concat([_table([3, 5, 40]).assign(tp="3m"), _table([40, 50, 60]).assign(tp="6m")],
                      ignore_index=True)
    out = privacy.suppress(frame, value_columns=["rate"], group_columns=["tp"],
                           total_label="All", label_column="group")
    assert set(out.loc[out.suppressed & (out.tp == "3m"), "group"]) == {"g0", "g1", "g2"}
    assert not out.loc[out.tp == "6m", "suppressed"].any()


def test_hidden_cells_adding_up_to_11_or_more_need_no_complement():
    out = privacy.suppress(_table([5, 7, 40]), value_columns=["rate"],
                           total_label="All", label_column="group")
    assert set(out.loc[out.suppressed, "group"]) == {"g0", "g1"}


def test_empty_frame():
    out = privacy.suppress(pd.DataFrame(columns=["group", "n"]))
    assert out.empty and "suppressed" in out.columns


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x","y")', "@SUM(1)", "+1", "-2", "\tx", "\rx"])
def test_formulas_become_text(text):
    assert privacy.neutralise_formula(text) == "'" + text
    frame = privacy.safe_for_spreadsheet(pd.DataFrame({text: [text, "plain", 3]}))
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
    from analysis.formatting import percent
    assert percent(value) == text


def test_a_grid_cell_and_a_sentence_agree_on_a_small_rate():
    # 4-week dose halving on the demo: the claim grid said "0%" where the
    # sentence said "0.2% (95% CI …)"; both now read the rate the same way.
    from analysis.formatting import percent, rate_with_ci
    from analysis.stats import proportion
    p = proportion(1, 500)
    sentence = rate_with_ci(p.rate, p.ci_low, p.ci_high)
    assert sentence.startswith(percent(p.rate) + " ") and percent(p.rate) == "0.2%"
    assert sentence == f"0.2% (95% CI {100 * p.ci_low:.1f}–{100 * p.ci_high:.1f}%)"
