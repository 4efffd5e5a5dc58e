"""The helpers behind the plain words and the charts' missing points (issue
19), each against a hand-worked case."""

from __future__ import annotations

import datetime as dt

import pytest

from analysis.core import audience, formatting, survival, words
from analysis.metrics import charts, durability
from ui import explain


@pytest.mark.parametrize("p, higher, expected", [
    (0.049, True, "clearly higher"),
    (0.049, False, "clearly lower"),
    (0.05, True, "could be chance"),     # the boundary is not clear
    (0.8, False, "could be chance"),
    (None, True, ""),
    (float("nan"), True, ""),
])
def test_chance_words(p, higher, expected):
    assert words.chance_words(p, higher) == expected


def test_the_point_threshold_is_the_small_cell_rule():
    assert charts.MIN_PER_POINT == audience.SMALL_CELL == 11


def test_a_survival_curve_is_drawn_while_11_patients_are_followed():
    # 15 patients: one event a day on days 1..15, nobody censored.  Before
    # day t, 16 - t are at risk: 11 at day 5, 10 at day 6.
    km = survival.kaplan_meier(list(range(1, 16)), [True] * 15)
    at_risk = dict(zip(km.time, km.at_risk))
    assert at_risk[5] == 11 and at_risk[6] == 10
    assert durability.drawn_until(km) == 5
    assert durability.drawn_until(km, least=16) is None   # never 16 followed


def test_durability_in_words():
    km = survival.kaplan_meier([10, 20, 30, 40], [True, True, False, False])
    curve = durability.Curve("All", km, {}, too_few=True)
    booster = durability.Durability("booster", "x", None, curve, [], {})
    text = durability.plain_text(booster, curve)
    assert text.startswith(f"Half of the 4 patients had their first booster by day "
                           f"{int(round(km.median))}")
    assert text.endswith("2 have had one, 2 had not by their last visit.")
    never = survival.kaplan_meier([10, 20, 30], [True, False, False])
    curve = durability.Curve("All", never, {}, too_few=True)
    response = durability.Durability("response", "x", None, curve, [], {})
    assert durability.plain_text(response, curve).startswith(
        "Fewer than half of the 3 patients who responded lost the response")


def test_short_dates():
    assert formatting.short_date(dt.date(2024, 11, 27)) == "27 Nov 2024"
    assert formatting.short_period(dt.date(2024, 4, 25), dt.date(2024, 5, 23)) == \
        "25 Apr – 23 May 2024"
    assert formatting.short_period(dt.date(2024, 12, 1), dt.date(2025, 1, 9)) == \
        "1 Dec 2024 – 9 Jan 2025"
    assert formatting.short_date(None) == "–"


def test_ranges_of_missing_points():
    assert explain.ranges([1, 2, 3, 7, 9, 10]) == "1–3, 7, 9–10"
    assert explain.ranges([52]) == "52"
    assert explain.ranges([]) == ""
