"""analysis.core.definitions (the Python side's one owner of SPEC §3's timepoints,
definitions, populations and thresholds) agrees with the SQL reference
models the queries read (sql/models/reference/), so neither can drift; and
the population rule, written once in the populations model, is SPEC §3's."""

from __future__ import annotations

import duckdb
import pytest

from analysis.core import definitions
from analysis.storage import model_chain


def reference(name: str) -> list[dict]:
    model = model_chain.models()[name]
    assert model.layer == "reference" and not model.depends_on
    relation = duckdb.connect().sql(model.sql)
    return [dict(zip(relation.columns, row)) for row in relation.fetchall()]


def test_timepoints_and_their_windows_match_the_reference_model():
    rows = sorted(reference("timepoints"), key=lambda r: r["sort_order"])
    assert [(r["timepoint"], r["label"], r["target_day"], r["window_start"], r["window_end"])
            for r in rows] == [(t.key, t.label, t.target_day, t.window_start, t.window_end)
                               for t in definitions.TIMEPOINT_WINDOWS]
    assert definitions.TIMEPOINTS == ("4w", "3m", "6m", "12m")


def test_responder_definitions_match_the_reference_model():
    rows = sorted(reference("definitions"), key=lambda r: r["sort_order"])
    assert [(r["definition"], r["label"], r["needs_pain"], r["needs_mme"]) for r in rows] == [
        (d.key, d.description, d.needs_pain, d.needs_mme)
        for d in definitions.RESPONDER_DEFINITIONS]
    assert definitions.PAIN_DEFINITIONS == ("pain30", "pain50", "pain2pt")
    assert definitions.OPIOID_DEFINITIONS == ("mme50", "mme_stop", "claim")


def test_thresholds_match_the_reference_model():
    (row,) = reference("thresholds")
    assert row == pytest.approx(definitions.THRESHOLDS, abs=0)
    assert set(row) == set(definitions.THRESHOLDS)


def test_the_populations_are_the_population_models_flags():
    rows = reference("populations")
    assert {definitions.POPULATION_COLUMNS[p] for p in definitions.POPULATIONS} <= set(rows[0])
    assert len(rows) == 16    # every combination of the four facts, once
    for r in rows:
        due = r["eligible"] and r["window_closed"]
        # SPEC §3: ITT = eligible and due; completers = due with the
        # follow-up (a subset of ITT); a responder is due, complete and meets
        # the definition; an early result is provisional, never in a population.
        assert r["due"] == due
        assert r["in_itt"] == due
        assert r["in_completers"] == (due and r["complete"])
        assert r["responder"] == (due and r["complete"] and r["met"])
        assert r["missing_follow_up"] == (due and not r["complete"])
        assert r["not_yet_due"] == (r["eligible"] and not r["window_closed"])
        assert r["provisional"] == (r["eligible"] and not r["window_closed"] and r["complete"])
        assert r["provisional_responder"] == (r["provisional"] and r["met"])
        assert not (r["provisional"] and (r["in_itt"] or r["in_completers"] or r["responder"]))


def test_a_changed_reference_would_be_seen(monkeypatch):
    """The check can fail: a window moved by a day in the module is caught."""
    moved = (definitions.Timepoint("4w", "4 weeks", 28, 14, 43), *definitions.TIMEPOINT_WINDOWS[1:])
    monkeypatch.setattr(definitions, "TIMEPOINT_WINDOWS", moved)
    with pytest.raises(AssertionError):
        test_timepoints_and_their_windows_match_the_reference_model()


def test_unknown_settings_are_named():
    with pytest.raises(ValueError, match="unknown timepoint '5m'; one of 4w, 3m, 6m, 12m"):
        definitions.check_setting(timepoint="5m")
    definitions.check_setting("3m", "claim", "completers", "exact")
