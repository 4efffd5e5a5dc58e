"""``python -m analysis responders`` and ``claim``: JSON shape, readable
tables, filters and exit codes (0 ok, 1 failed with a message, 2 usage)."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import scipy.stats

from analysis.core import definitions
from tests.helpers.builders import (INJECTION, build_db, claim_program, clock, day, filter_rows,
                                    treated, visit)
from tests.helpers.cli import run, run_json

GROUP_KEYS = {"condition", "n", "responders", "rate", "ci_low", "ci_high", "too_few"}
OVERALL_KEYS = {"n", "responders", "rate", "ci_low", "ci_high"}


pytestmark = pytest.mark.usefixtures("fresh_snapshots")


@pytest.fixture
def clinic(tmp_path):
    """Migraine: 2 responders of 3 due (one without follow-up); Lupus: one
    patient not yet due (n = 0); a restless-leg patient (Other); an untreated
    patient.  Cutoff = day 150."""
    rows = [
        *treated("m1", condition="migraine", mme=60), visit("m1", 90, "follow_up", pain=2, mme=20),
        *treated("m2", condition="G43.909", mme=60), visit("m2", 95, "follow_up", pain=4, mme=60),
        *treated("m3", condition="Migraine"),
        *treated("o1", condition="restless leg", mme=0), visit("o1", 90, "follow_up", pain=8),
        *treated("l1", condition="lupus", index=100),
        visit("u1", 10, "intake", pain=8, condition="migraine"),
        clock("m3", 150),
    ]
    return build_db(tmp_path, rows)


def test_responders_json_shape_and_values(capsys, clinic):
    d = run_json(capsys, "responders", "--db", clinic)
    assert {"timepoint", "definition", "population", "cutoff", "overall", "by_condition",
            "excluded"} <= set(d)
    assert (d["timepoint"], d["definition"], d["population"]) == ("3m", "pain30", "itt")
    assert d["cutoff"] == day(150).isoformat()
    assert set(d["overall"]) == OVERALL_KEYS
    assert (d["overall"]["n"], d["overall"]["responders"]) == (4, 2)
    assert d["overall"]["rate"] == 0.5
    assert 0 < d["overall"]["ci_low"] < 0.5 < d["overall"]["ci_high"] < 1
    by = {g["condition"]: g for g in d["by_condition"]}
    assert all(set(g) == GROUP_KEYS for g in d["by_condition"])
    assert set(by) == {"Migraine", "Other", "Lupus"}        # canonical names + Other
    assert (by["Migraine"]["n"], by["Migraine"]["responders"]) == (3, 2)
    assert by["Migraine"]["too_few"] is True
    assert (by["Other"]["n"], by["Other"]["responders"]) == (1, 0)
    assert by["Lupus"] == {"condition": "Lupus", "n": 0, "responders": 0, "rate": None,
                           "ci_low": None, "ci_high": None, "too_few": True}
    excluded = d["excluded"]
    assert {"not_yet_due", "no_baseline"} <= set(excluded)
    assert excluded["not_yet_due"] == 1
    assert excluded["no_baseline"] == 0
    assert excluded["untreated"] == 1
    assert excluded["missing_follow_up_counted_as_non_responder"] == 1


def test_responders_json_options(capsys, clinic):
    d = run_json(capsys, "responders", "--db", clinic, "--definition", "mme50",
                 "--population", "completers", "--ci", "exact")
    assert (d["definition"], d["population"]) == ("mme50", "completers")
    assert (d["overall"]["n"], d["overall"]["responders"]) == (2, 1)   # m1, m2
    assert d["excluded"]["no_baseline"] == 1                            # o1: 0 MME
    assert d["excluded"]["missing_follow_up"] == 1                      # m3
    d = run_json(capsys, "responders", "--db", clinic, "--timepoint", "12m")
    assert d["overall"] == {"n": 0, "responders": 0, "rate": None, "ci_low": None,
                            "ci_high": None}
    assert d["excluded"]["not_yet_due"] == 5


def test_responders_json_null_rates_when_database_is_empty(capsys, tmp_path):
    from analysis.storage import db
    path = tmp_path / "empty.duckdb"
    db.connect(path).close()
    d = run_json(capsys, "responders", "--db", path)
    assert d["cutoff"] is None
    assert d["overall"] == {"n": 0, "responders": 0, "rate": None, "ci_low": None, "ci_high": None}
    assert d["by_condition"] == []
    d = run_json(capsys, "claim", "--db", path)
    assert d["verdict"] == "no data" and d["rate"] is None and d["p_value"] is None
    assert len(d["sensitivity"]) == 48


def test_responders_readable_table(capsys, clinic):
    code, out, err = run(capsys, "responders", "--db", clinic)
    assert code == 0 and err == ""
    assert "pain30 at 3m, itt" in out and day(150).isoformat() in out
    lines = out.splitlines()
    migraine = next(line for line in lines if line.startswith("Migraine"))
    assert migraine.split()[:4] == ["Migraine", "3", "2", "67%"]
    assert "too few to report" in migraine
    overall = next(line for line in lines if line.startswith("All conditions"))
    assert overall.split()[2:5] == ["4", "2", "50%"]
    lupus = next(line for line in lines if line.startswith("Lupus"))
    assert lupus.split()[:4] == ["Lupus", "0", "0", "–"]
    assert "not yet due 1" in out
    assert "{" not in out


def test_responders_filters(capsys, tmp_path):
    path = build_db(tmp_path, filter_rows())
    assert run_json(capsys, "responders", "--db", path)["overall"]["n"] == 5
    d = run_json(capsys, "responders", "--db", path, "--site", INJECTION)
    assert (d["overall"]["n"], d["overall"]["responders"]) == (1, 0)
    assert [g["condition"] for g in d["by_condition"]] == ["Lupus"]
    d = run_json(capsys, "responders", "--db", path, "--site", "none' OR '1'='1")
    assert d["overall"]["n"] == 0
    d = run_json(capsys, "responders", "--db", path, "--site", "North", "--site", "South")
    assert (d["overall"]["n"], d["overall"]["responders"]) == (4, 3)
    d = run_json(capsys, "responders", "--db", path, "--condition", "Migraine", "--route", "IV")
    assert (d["overall"]["n"], d["overall"]["responders"]) == (1, 1)
    d = run_json(capsys, "responders", "--db", path, "--from-quarter", "2028Q2",
                 "--to-quarter", "2028Q3")
    assert (d["overall"]["n"], d["overall"]["responders"]) == (2, 2)


CLAIM_KEYS = {"verdict", "n", "responders", "rate", "p_value", "lower_bound", "upper_bound",
              "target", "sensitivity"}
CELL_KEYS = {"timepoint", "definition", "population", "n", "responders", "rate", "verdict",
             "lower_bound", "upper_bound"}


@pytest.mark.parametrize("patients, responding, verdict", [
    (150, 0.90, "supported"), (150, 0.40, "contradicted"), (8, 0.75, "inconclusive")])
def test_claim_json(capsys, tmp_path, patients, responding, verdict):
    path = build_db(tmp_path, claim_program(patients, responding))
    d = run_json(capsys, "claim", "--db", path)
    assert CLAIM_KEYS <= set(d)
    k = round(patients * responding)
    assert (d["verdict"], d["n"], d["responders"], d["target"]) == (verdict, patients, k, 0.7)
    assert d["rate"] == pytest.approx(k / patients)
    assert 0 <= d["lower_bound"] <= d["rate"] <= d["upper_bound"] <= 1
    assert 0 <= d["p_value"] <= 1
    assert len(d["sensitivity"]) == 48
    assert all(CELL_KEYS <= set(c) for c in d["sensitivity"])
    assert {(c["timepoint"], c["definition"], c["population"]) for c in d["sensitivity"]} == \
        set(itertools.product(definitions.TIMEPOINTS, definitions.DEFINITIONS, definitions.POPULATIONS))
    for c in d["sensitivity"]:
        assert (c["rate"] is None) == (c["n"] == 0)
        assert (c["verdict"] == "no data") == (c["n"] == 0)
        # the defensible figure of every reading: the one-sided 95% exact lower bound
        if c["n"]:
            low = scipy.stats.binomtest(c["responders"], c["n"], alternative="greater") \
                .proportion_ci(0.95, method="exact").low
            assert c["lower_bound"] == pytest.approx(low, abs=1e-12)
        else:
            assert c["lower_bound"] is None
    chosen = next(c for c in d["sensitivity"]
                  if (c["timepoint"], c["definition"], c["population"]) == ("3m", "claim", "itt"))
    assert (chosen["n"], chosen["responders"], chosen["verdict"]) == (patients, k, verdict)


def test_claim_options_and_table(capsys, tmp_path):
    path = build_db(tmp_path, claim_program(150, 0.40))
    d = run_json(capsys, "claim", "--db", path, "--target", "0.3", "--definition", "pain30")
    assert (d["definition"], d["target"], d["verdict"]) == ("pain30", 0.3, "supported")
    code, out, err = run(capsys, "claim", "--db", path)
    assert code == 0 and err == ""
    assert "verdict: contradicted" in out and "(60/150)" in out and "70%" in out
    sensitivity = out.split("verdict):")[1].strip().splitlines()
    assert len(sensitivity) == 48
    assert any(line.split()[:3] == ["3m", "claim", "itt"] and line.endswith("contradicted")
               for line in sensitivity)
    assert "{" not in out


@pytest.mark.parametrize("argv", [
    ["responders", "--timepoint", "2y"],
    ["claim", "--timepoint", "5w"],
    ["responders", "--definition", "pain40"],
    ["claim", "--population", "everyone"],
    ["responders", "--ci", "bayes"],
    ["claim", "--target", "70"],
    ["claim", "--target", "abc"],
    ["responders", "--from-quarter", "2028Q5"],
])
def test_usage_errors_exit_2(capsys, clinic, argv):
    code, out, err = run(capsys, *argv, "--db", clinic)
    assert code == 2
    assert err.startswith("error:") and "Traceback" not in err
    assert out == ""


@pytest.mark.parametrize("command", ["responders", "claim"])
def test_missing_database_exits_1_with_a_message(capsys, tmp_path, command):
    missing = tmp_path / "nowhere" / "outcomes.duckdb"
    for extra in ([], ["--json"]):
        code, out, err = run(capsys, command, "--db", missing, *extra)
        assert code == 1
        assert out == ""
        assert "no database" in err and str(missing) in err
        assert "Traceback" not in err
    assert not missing.exists() and not missing.parent.exists()


def test_database_from_environment(capsys, clinic, monkeypatch):
    monkeypatch.setenv("OUTCOMES_DB", str(clinic))
    code, out, _ = run(capsys, "responders", "--json")
    assert code == 0 and json.loads(out)["overall"]["n"] == 4


def test_not_a_database_exits_1(capsys, tmp_path):
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_text("not a database\n")
    code, out, err = run(capsys, "responders", "--db", bogus)
    assert code == 1 and out == "" and err.startswith("error:") and "Traceback" not in err


def test_json_is_strict(capsys, clinic):
    """Every float is finite: NaN would make the output invalid JSON."""
    for command in ("responders", "claim"):
        for timepoint in definitions.TIMEPOINTS:
            code, out, _ = run(capsys, command, "--db", clinic, "--timepoint", timepoint, "--json")
            assert code == 0
            json.loads(out, parse_constant=lambda c: pytest.fail(f"{command}: {c} in JSON"))

            def floats(v):
                if isinstance(v, dict):
                    for x in v.values():
                        yield from floats(x)
                elif isinstance(v, list):
                    for x in v:
                        yield from floats(x)
                elif isinstance(v, float):
                    yield v
            assert all(math.isfinite(x) for x in floats(json.loads(out)))
