"""One audience policy behind the internal pages (issue 14).

Every builder behind Overview, Conditions, Pain over time, Patient flow,
Depression & PTSD, Durability and Opioid tapering takes the reader's
:class:`Audience` and returns results already made safe for it:

* the external audience never gets them (marketing cannot open these pages,
  and a builder asked anyway refuses: an attack through a stale link or a
  new caller fails closed);
* an analyst gets the aggregates unsuppressed, groups under 11 flagged "too
  few to report", and no patient id;
* the clinical team gets everything, patient ids included;
* every chart point from fewer than 11 patients is already left out, and
  the builder names what it left out (checked against the unthinned
  counts, computed independently).
"""

from __future__ import annotations

import math

import pytest

from analysis.core import definitions
from analysis.metrics import (conditions, durability, mood, opioids, outcomes, pain, patient_flow,
                              program_overview)
from analysis.core.audience import SMALL_CELL, SUPPRESSED, Audience
from analysis.core.filters import Filters
from tests.helpers.apptest import caption_text, frame_with, page_alone

NARROW = Filters(sites=("Boulder",))   # the demo's small site: groups under 11

INTERNAL_BUILDERS = {
    "overview": lambda s, a: program_overview.overview(s, audience=a),
    "pain weeks": lambda s, a: pain.pain_week_chart(s, audience=a),
    "acute relief": lambda s, a: pain.acute_chart(s, audience=a),
    "waterfall": lambda s, a: pain.pain_waterfall(s, audience=a),
    "patient flow": lambda s, a: patient_flow.patient_flow(s, audience=a),
    "mood rates": lambda s, a: mood.mood_rates(s, audience=a),
    "mood chart": lambda s, a: mood.mood_chart(s, audience=a),
    "pain and mood": lambda s, a: mood.pain_mood_table(s, audience=a),
    "durability": lambda s, a: durability.durability(s, audience=a),
    "opioid summary": lambda s, a: opioids.opioid_summary(s, audience=a),
    "dose by week": lambda s, a: opioids.mme_week_chart(s, audience=a),
    "opioids by month": lambda s, a: opioids.monthly_chart(s, audience=a),
    "benzodiazepines": lambda s, a: opioids.benzodiazepine_chart(s, audience=a),
    "dose changes": lambda s, a: opioids.mme_changes(s, audience=a),
    "fast tapers": lambda s, a: opioids.fast_tapers(s, audience=a),
}


@pytest.mark.parametrize("name", list(INTERNAL_BUILDERS),
                         ids=lambda k: k.replace(" ", "-"))
def test_internal_builders_refuse_the_external_audience(demo_snapshot, name):
    build = INTERNAL_BUILDERS[name]
    with pytest.raises(PermissionError, match="external"):
        build(demo_snapshot, Audience.EXTERNAL)
    for reader in (Audience.CLINICAL, Audience.ANALYST):
        build(demo_snapshot, reader)   # internal readers get it


def test_analyst_sees_conditions_unsuppressed_and_flagged(demo_snapshot):
    clinical = conditions.condition_summary(demo_snapshot, "3m", filters=NARROW)
    analyst = conditions.condition_summary(demo_snapshot, "3m", filters=NARROW,
                                        audience=Audience.ANALYST)
    external = conditions.condition_summary(demo_snapshot, "3m", filters=NARROW,
                                         audience=Audience.EXTERNAL)
    table = analyst.table
    assert list(table["n"]) == list(clinical.table["n"])            # nothing hidden
    assert not table["suppressed"].any()
    few = table["n"] < SMALL_CELL
    assert few.any() and (~few).any(), "the narrow view needs both kinds of group"
    assert list(table["note"]) == [SUPPRESSED if f else "" for f in few]
    assert list(table["drawn"]) == list(~few)                        # no point from < 11
    assert "Not drawn, from fewer than 11 patients" in analyst.not_drawn
    for name in table.loc[few, "condition"]:
        assert name in analyst.not_drawn
    # the external table withholds every count 1-10 instead
    shown = external.table["n"].dropna()
    assert not ((shown >= 1) & (shown < SMALL_CELL)).any()


def test_analyst_overview_flags_a_rate_from_too_few(demo_snapshot):
    view = program_overview.overview(demo_snapshot, NARROW, audience=Audience.ANALYST)
    for measure in view.measures:
        if measure.kind == "count":
            assert SUPPRESSED not in measure.detail_text
            continue
        if measure.value is not None:
            assert (SUPPRESSED in measure.detail_text) == (measure.n < SMALL_CELL)
        for which, part in (("quarter", measure.quarter), ("previous", measure.previous)):
            if part.value is not None:
                assert (SUPPRESSED in measure.quarter_text(which)) == (part.n < SMALL_CELL)
    assert any(SUPPRESSED in m.quarter_text("quarter") for m in view.measures
               if m.kind != "count" and m.quarter.value is not None), \
        "the narrow view should have a quarter from too few"


def test_patient_ids_for_the_clinical_team_only(demo_snapshot):
    clinical = pain.pain_waterfall(demo_snapshot)
    analyst = pain.pain_waterfall(demo_snapshot, audience=Audience.ANALYST)
    assert clinical.ids_shown and clinical.bars["patient_id"].notna().all()
    assert not analyst.ids_shown and analyst.bars["patient_id"].isna().all()
    assert len(analyst.bars) == len(clinical.bars)          # the same bars, without ids
    tapers = opioids.fast_tapers(demo_snapshot)
    counted = opioids.fast_tapers(demo_snapshot, audience=Audience.ANALYST)
    assert tapers.flagged is not None and counted.flagged is None
    assert (counted.flagged_patients, counted.flagged_intervals) == \
        (tapers.flagged_patients, tapers.flagged_intervals)


def test_pain_week_chart_leaves_out_exactly_the_weeks_from_too_few(demo_snapshot):
    every = pain.pain_by_week(demo_snapshot, NARROW, min_patients=1)   # unthinned
    chart = pain.pain_week_chart(demo_snapshot, NARROW, Audience.ANALYST)
    drawn = chart.points.dropna(subset=["patients"])
    assert (drawn["patients"] >= SMALL_CELL).all()
    expected = set(every.loc[every["patients"] >= SMALL_CELL, "week"])
    assert set(drawn["week"].astype(int)) == expected
    if len(expected) < pain.LAST_WEEK + 1:
        assert chart.not_drawn.startswith("Not drawn, from fewer than 11 patients")


def test_mood_chart_leaves_out_points_from_too_few(demo_snapshot):
    grid = mood.mood_grid(demo_snapshot, NARROW)
    chart = mood.mood_chart(demo_snapshot, "itt", NARROW, audience=Audience.ANALYST)
    overall = grid[(grid.group == "All") & (grid.population == "itt")]
    for r in chart.points.itertuples():
        n = overall[(overall.measure == r.measure) & (overall.timepoint == r.timepoint)]["n"]
        n = int(n.iloc[0]) if len(n) else 0
        assert r.drawn == (n >= SMALL_CELL)
        assert (r.rate is None or (isinstance(r.rate, float) and math.isnan(r.rate))) \
            == (not r.drawn)
        named = f"{mood.MEASURE_SHORT[r.measure]} at {definitions.TIMEPOINT_LABELS[r.timepoint]}"
        assert (named in chart.not_drawn) == (0 < n < SMALL_CELL)


def test_monthly_opioid_and_benzodiazepine_charts_leave_out_thin_months(demo_snapshot):
    monthly = opioids.monthly_use(demo_snapshot, NARROW)
    chart = opioids.monthly_chart(demo_snapshot, NARROW, Audience.ANALYST)
    enough = monthly["patients_recorded"] >= SMALL_CELL
    if enough.any():
        assert [v is not None for v in chart.points["share_on_opioids"]] == enough.tolist()
    else:
        assert not chart.drawn and "nothing reliable to draw" in chart.nothing
    benzo = opioids.benzodiazepine_by_month(demo_snapshot, NARROW)
    result = opioids.benzodiazepine_chart(demo_snapshot, NARROW, Audience.ANALYST)
    assert result.visits_recorded == int(benzo["visits_recorded"].sum())
    if result.drawn:
        visits_ok = benzo["visits_recorded"] >= SMALL_CELL
        users_ok = benzo["opioid_users_recorded"] >= SMALL_CELL
        assert [v is not None for v in result.months["share_visits"]] == visits_ok.tolist()
        assert [v is not None for v in result.months["share_opioid_users"]] == \
            users_ok.tolist()


def test_analyst_conditions_page_shows_small_groups_flagged(demo_db, demo_snapshot):
    """The page draws what the builder gives: an analyst reads a small
    group's n (not "too few to report" in its place) with the flag beside."""
    app = page_alone("pages/conditions.py", demo_db, NARROW, role="analyst")
    summary = conditions.condition_summary(demo_snapshot, "3m", filters=NARROW,
                                        audience=Audience.ANALYST)
    plain = frame_with(app, "Responder rate (95% CI)")
    small = summary.table[summary.table["n"] < SMALL_CELL]
    assert len(small)
    for r in small.itertuples():
        row = plain[plain["Condition"] == r.condition].iloc[0]
        assert row["Note"] == SUPPRESSED
        assert f"of {r.n}" in row["Responder rate (95% CI)"] or r.n == 0
    assert "Not drawn, from fewer than 11 patients" in caption_text(app)


def test_marketing_context_has_no_filter_and_the_external_audience(demo_db):
    """The one place the audience comes from: the role, through
    analysis.core.audience.for_role; marketing's context is the whole program."""
    from ui import pages
    assert pages.controls_for(pages.PAGES[0], Audience.EXTERNAL) == frozenset()
    for spec in pages.PAGES:
        assert pages.controls_for(spec, Audience.ANALYST) == spec.controls
    from analysis.storage import store
    text = outcomes.in_view_text(store.snapshot(demo_db), NARROW, Audience.EXTERNAL)
    assert "whole program" in text and not any(ch.isdigit() for ch in text.replace("11", ""))
    assert "treated patients" in outcomes.in_view_text(store.snapshot(demo_db), NARROW,
                                                       Audience.ANALYST)
