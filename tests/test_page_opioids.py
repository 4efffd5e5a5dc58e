"""The Opioid tapering page (pages/opioids.py) in the real app (AppTest): no
exception or error, and every number shown equals what ``analysis`` returns
for the same filters and outcome settings."""

from __future__ import annotations

import pytest

from analysis.metrics import opioids
from analysis.core.formatting import count, number, percent
from analysis.metrics.charts import MIN_PER_POINT
from analysis.core.definitions import TIMEPOINT_LABELS
from tests.helpers.apptest import (SETTINGS, assert_no_errors, caption_text, chart_traces,
                                   frame_with, metric_values, open_page)


# --------------------------------------------------------------------------
# opioid tapering


@pytest.mark.parametrize("setting", SETTINGS)
def test_opioids_page(app_db, demo_snapshot, setting):
    chosen = SETTINGS[setting]
    filters, timepoint, population = chosen.filters, chosen.timepoint, chosen.population
    app = open_page("pages/opioids.py", SETTINGS[setting])
    summary = opioids.opioid_summary(demo_snapshot, timepoint, population, filters)
    assert summary.baseline_users > 0
    metrics, captions = metric_values(app), caption_text(app)
    label = TIMEPOINT_LABELS[timepoint]
    assert metrics["Baseline opioid users"] == count(summary.baseline_users)
    assert f"of {count(summary.baseline_known)} treated patients" in captions
    assert metrics["Median baseline dose"] == f"{number(summary.median_baseline_mme)} MME/day"
    for title, rate in ((f"Off opioids at {label}", summary.stopped),
                        (f"Dose cut by ≥50% at {label}", summary.halved)):
        assert metrics[title] == percent(rate.rate)
        assert (f"95% CI {percent(rate.ci_low)}–{percent(rate.ci_high)} · "
                f"{count(rate.responders)} of {count(rate.n)} baseline opioid users") in captions

    charts = chart_traces(app)
    weekly = opioids.mme_by_week(demo_snapshot, filters)
    week_x, week_y = charts["Median daily opioid dose of baseline users"]["median"]
    # weeks from fewer than 11 patients are gaps in the line, not points
    assert (weekly["patients"] >= MIN_PER_POINT).all()
    drawn = {x: y for x, y in zip(week_x, week_y) if y is not None}
    assert list(drawn) == weekly["week"].tolist()
    assert list(drawn.values()) == pytest.approx(weekly["median_mme"].tolist())
    monthly = opioids.monthly_use(demo_snapshot, filters)
    enough = monthly["patients_recorded"] >= MIN_PER_POINT
    use = charts["Patients on opioids, and at the CDC 2022 risk thresholds"]
    for name, column in (("≥ 90 MME/day", "share_at_least_90"),
                         ("on opioids (> 0 MME/day)", "share_on_opioids")):
        shown = use[name][1]
        assert [v is not None for v in shown] == enough.tolist()
        assert [v for v in shown if v is not None] == pytest.approx(
            monthly.loc[enough, column].tolist())
    assert ("Not drawn, from fewer than 11 patients with a dose recorded that month"
            in caption_text(app)) == (not enough.all())
    changes = opioids.mme_changes(demo_snapshot, timepoint, filters)
    histogram = charts[f"Dose change at {label}, baseline opioid users with a follow-up dose"]
    assert sorted(histogram[None][0]) == pytest.approx(sorted(changes["percent_change"]))
    benzo = opioids.benzodiazepine_by_month(demo_snapshot, filters)
    benzo_chart = charts["Benzodiazepines alongside opioids (CDC 2022: avoid when possible)"]
    enough = benzo["visits_recorded"] >= MIN_PER_POINT
    shown = benzo_chart["visits with a benzodiazepine"][1]
    assert [v is not None for v in shown] == enough.tolist()
    assert [v for v in shown if v is not None] == pytest.approx(
        benzo.loc[enough, "share_visits"].tolist())

    tapers = opioids.fast_tapers(demo_snapshot, filters)
    assert metrics["Patients with a rapid taper"] == count(tapers.rapid_patients)
    assert metrics["Faster than the usual starting pace"] == count(
        tapers.faster_than_usual_patients)
    assert metrics["Patients flagged at your threshold"] == count(tapers.flagged_patients)
    assert metrics["Intervals flagged"] == count(tapers.flagged_intervals)
    if tapers.flagged_intervals:
        table = frame_with(app, "Per week")
        assert list(table["Patient"]) == list(tapers.flagged["patient_id"])
        assert list(table["Per week"]) == [percent(p, 1) for p in tapers.flagged["pace"]]
        assert list(table["Per 30 days"]) == [percent(p, 1)
                                              for p in tapers.flagged["pace_per_30_days"]]
        assert list(table["After"]) == [number(v) for v in tapers.flagged["mme_after"]]

    if setting == "default":  # the threshold is the user's, in % per week or per month
        app.number_input(key="opioids_fast_taper_threshold").set_value(5.0).run()
        assert_no_errors(app)
        slower = opioids.fast_tapers(demo_snapshot, filters, opioids.TaperThreshold(5, "week"))
        assert slower.flagged_intervals > tapers.flagged_intervals
        assert metric_values(app)["Intervals flagged"] == count(slower.flagged_intervals)
        assert len(frame_with(app, "Patient")) == slower.flagged_intervals
        app.number_input(key="opioids_fast_taper_threshold").set_value(10.0).run()
        app.radio(key="opioids_fast_taper_unit").set_value("month").run()
        assert_no_errors(app)
        monthly = opioids.fast_tapers(demo_snapshot, filters, opioids.FASTER_THAN_USUAL)
        assert monthly.flagged_patients == monthly.faster_than_usual_patients
        assert metric_values(app)["Patients flagged at your threshold"] == count(
            monthly.flagged_patients)


def test_opioids_page_hides_patient_ids_outside_the_clinical_team(app_db, demo_snapshot):
    app = open_page("pages/opioids.py", SETTINGS["default"], role="analyst")
    tapers = opioids.fast_tapers(demo_snapshot)
    assert tapers.flagged_intervals > 0
    assert metric_values(app)["Patients with a rapid taper"] == count(tapers.rapid_patients)
    assert not any("Patient" in d.value.columns for d in app.dataframe)
    assert any("clinical team only" in i.value for i in app.info)
