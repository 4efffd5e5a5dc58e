"""PGIC as an outcome (issue 18): the share much or very much improved, in
either orientation, checked against an independent pandas reading of a
clean demo export (the window rule of SPEC §3 written again from scratch)."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from analysis.metrics import conditions, pgic, program_overview
from analysis.storage import reference
from analysis.core.audience import Audience
from analysis.ingest.demo.clinic import PGIC_BEST
from analysis.ingest.demo.generate import generate_demo
from analysis.core.filters import Filters
from analysis.sources import DataSource
from tests.helpers.builders import ingested_snapshot

WINDOWS = {"4w": (28, 14, 42), "3m": (90, 60, 120), "6m": (180, 150, 210),
           "12m": (365, 300, 430)}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    files = generate_demo(tmp_path_factory.mktemp("pgic"), patients=700, seed=5, messy=False)
    return files.sessions, ingested_snapshot(tmp_path_factory.mktemp("pgic_db") / "clinic.duckdb",
                                             [files.sessions, files.medications])


def pandas_pgic(sessions_path, best: int, flip: bool = False) -> pd.DataFrame:
    """n and improved per timepoint x population x condition ('All' too),
    from the export alone.  ``flip`` reads the scale reversed (8 - answer)."""
    v = pd.read_csv(sessions_path, dtype={"pgic": "Int64"}, keep_default_na=True)
    v["day"] = pd.to_datetime(v["visit_date"])
    if flip:
        v["pgic"] = 8 - v["pgic"]
    cutoff = v["day"].max()
    order = {"intake": 1, "follow_up": 2, "infusion": 3, "booster": 4}
    v["same_day"] = v["visit_type"].map(order)
    v["line"] = np.arange(len(v)) + 2
    index = v[v.visit_type.isin(["infusion", "booster"])].groupby("patient_id")["day"].min()
    labelled = v.dropna(subset=["condition"]).sort_values(["day", "same_day", "line"])
    condition = labelled.groupby("patient_id")["condition"].first().map(reference.map_condition)
    improved = {1: (1, 2), 7: (6, 7)}[best]
    rows = []
    answered = v.dropna(subset=["pgic"])
    for pid, first in index.items():
        mine = answered[(answered.patient_id == pid) & (answered.day != first)]
        cond = condition.get(pid, reference.UNSPECIFIED)
        for tp, (target, start, end) in WINDOWS.items():
            if first + pd.Timedelta(days=end) > cutoff:
                continue                      # not due: window not over
            inside = mine[(mine.day >= first + pd.Timedelta(days=start))
                          & (mine.day <= first + pd.Timedelta(days=end))].copy()
            answer = None
            if len(inside):
                inside["distance"] = ((inside.day - first).dt.days - target).abs()
                inside = inside.sort_values(["distance", "day", "same_day", "line"],
                                            ascending=[True, False, False, False])
                answer = int(inside.iloc[0]["pgic"])
            for population in ("itt", "completers"):
                if population == "completers" and answer is None:
                    continue
                for group in ("All", cond):
                    rows.append((tp, population, group, answer in improved))
    frame = pd.DataFrame(rows, columns=["timepoint", "population", "group", "improved"])
    return frame.groupby(["timepoint", "population", "group"]).agg(
        n=("improved", "size"), responders=("improved", "sum")).reset_index()


@pytest.mark.parametrize("best", [1, 7])
def test_grid_equals_an_independent_reading(clean, best):
    sessions, snap = clean
    # best = 7 reads the same answers reversed: the demo's 1 ("very much
    # improved") becomes 7, so the counts must not change
    expected = pandas_pgic(sessions, best, flip=best == 7).set_index(
        ["timepoint", "population", "group"])
    if best == 7:
        reversed_path = sessions.parent / "sessions_reversed.csv"
        frame = pd.read_csv(sessions, dtype=str, keep_default_na=False)
        frame["pgic"] = [str(8 - int(x)) if x else "" for x in frame["pgic"]]
        frame.to_csv(reversed_path, index=False)
        snap = ingested_snapshot(sessions.parent / "reversed.duckdb", [reversed_path])
    grid = pgic.pgic_grid(snap, best=best).set_index(["timepoint", "population", "group"])
    grid = grid[grid["n"] > 0]
    assert sorted(grid.index) == sorted(expected.index)
    for key, row in expected.iterrows():
        assert (grid.loc[key, "n"], grid.loc[key, "responders"]) == (row.n, row.responders), key
    assert expected["responders"].sum() > 100


def test_rates_carry_wilson_intervals(clean):
    from analysis.core import stats
    _, snap = clean
    rates = pgic.pgic_rates(snap, "3m", "itt")
    for g in [rates.overall, *rates.by_condition]:
        reference_ci = stats.proportion(g.responders, g.n)
        assert (g.rate, g.ci_low, g.ci_high) == pytest.approx(
            (reference_ci.rate, reference_ci.ci_low, reference_ci.ci_high))
        assert g.too_few == (g.n < 11)
    completers = pgic.pgic_rates(snap, "3m", "completers")
    assert completers.overall.n < rates.overall.n
    assert completers.overall.responders == rates.overall.responders  # ITT adds non-responders


def test_a_wrong_orientation_reads_the_other_end(clean):
    """Read the demo (1 = best) as if 7 were best: the 'improved' become the worse."""
    _, snap = clean
    right = pgic.pgic_rates(snap, "3m", "completers", best=PGIC_BEST).overall
    wrong = pgic.pgic_rates(snap, "3m", "completers", best=7).overall
    assert right.rate > 0.4 and wrong.rate < 0.1


def test_orientation_setting(monkeypatch, tmp_path):
    monkeypatch.delenv(pgic.SETTING, raising=False)
    assert pgic.configured_best() == pgic.DEFAULT_BEST == 1
    monkeypatch.setenv(pgic.SETTING, "7")
    assert pgic.configured_best() == 7
    assert pgic.improved_answers(7) == (6, 7) and pgic.improved_answers(1) == (1, 2)
    clinic = DataSource(tmp_path / "clinic.duckdb", is_demo=False)
    assert clinic.pgic_best == 7
    # the demo states its own orientation, whatever the clinic's setting
    assert DataSource(tmp_path / "demo.duckdb", is_demo=True).pgic_best == PGIC_BEST == 1
    monkeypatch.setenv(pgic.SETTING, "best")
    with pytest.raises(ValueError, match="OUTCOMES_PGIC_BEST must be 1 .* or 7"):
        pgic.configured_best()
    with pytest.raises(ValueError):
        pgic.improved_answers(5)


def test_overview_and_conditions_show_it(clean):
    _, snap = clean
    rates = pgic.pgic_rates(snap, "6m", "itt", Filters(sites=("Denver",)))
    view = program_overview.overview(snap, Filters(sites=("Denver",)), "6m")
    tile = view.measure("pgic_improved")
    assert (tile.n, tile.responders, tile.value) == (rates.overall.n, rates.overall.responders,
                                                     pytest.approx(rates.overall.rate))
    summary = conditions.condition_summary(snap, "6m", filters=Filters(sites=("Denver",)))
    by_condition = {g.group: g for g in rates.by_condition}
    for row in summary.table.itertuples():
        g = by_condition[row.condition]
        assert (row.pgic_n, row.pgic_responders) == (g.n, g.responders)
    assert summary.pgic == rates.overall
    external = conditions.condition_summary(snap, "6m", audience=Audience.EXTERNAL)
    assert external.pgic is None and external.table["pgic_n"].isna().all()
    with pytest.raises(PermissionError):
        pgic.pgic_rates(snap, audience=Audience.EXTERNAL)
