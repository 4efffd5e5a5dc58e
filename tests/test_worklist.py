"""The follow-up worklist (issue 18) against an independent pandas reading of
a hand-made export: patients before, inside, at the edges of and after each
window, with and without follow-ups, and patients who stopped in induction."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys

import openpyxl
import pandas as pd
import pytest

from analysis.metrics import worklist
from analysis.core.audience import Audience
from analysis.core.filters import Filters
from tests.helpers.apptest import ROOT
from tests.helpers.builders import ingested_snapshot

CUTOFF = dt.date(2026, 6, 30)
WINDOWS = {"3m": (60, 120), "6m": (150, 210), "12m": (300, 430)}
SITES = ("North", "South")
INDUCTION_DAYS, INDUCTION_MIN = 42, 4


def _day(d: dt.date) -> str:
    return d.isoformat()


def hand_made_rows() -> list[dict]:
    """One patient per (timepoint, where the cutoff falls, follow-up kind)."""
    rows: list[dict] = []
    number = 0

    def patient(index: dt.date, follow_ups: list[tuple[int, dict]], site: str,
                baseline_pain: float | None = 7, infusions: int = 5, gap: int = 3) -> str:
        nonlocal number
        number += 1
        pid = f"W{number:04d}"
        rows.append({"patient_id": pid, "visit_date": _day(index - dt.timedelta(days=7)),
                     "visit_type": "intake", "site": site, "condition": "Migraine",
                     "pain_score": baseline_pain})
        for k in range(infusions):
            rows.append({"patient_id": pid, "visit_date": _day(index + dt.timedelta(days=k * gap)),
                         "visit_type": "infusion", "site": site, "pain_post": 3})
        for day, values in follow_ups:
            rows.append({"patient_id": pid, "visit_date": _day(index + dt.timedelta(days=day)),
                         "visit_type": "follow_up", "site": site, **values})
        return pid

    for tp, (start, end) in WINDOWS.items():
        target = {"3m": 90, "6m": 180, "12m": 365}[tp]
        # where the cutoff falls, as days since the index date
        for offset in (start - 1, start, start + 1, target, end - 1, end, end + 1, end + 40):
            kinds = {
                "none": [],
                "inside": [(target, {"pain_score": 4})],
                "first day": [(start, {"pain_score": 4})],
                "last day": [(end, {"pain_score": 4})],
                "day before": [(start - 1, {"pain_score": 4})],
                "day after": [(end + 1, {"pain_score": 4})],
                "pgic only": [(target, {"pgic": 2})],
                "pain_post only": [(target, {"pain_post": 2})],
            }
            for kind, visits in kinds.items():
                kept = [(d, v) for d, v in visits if d <= offset]   # nothing after the cutoff
                site = SITES[number % 2]
                patient(CUTOFF - dt.timedelta(days=offset), kept, site,
                        baseline_pain=None if kind == "pgic only" and offset % 2 else 7)
    # stopped in induction (or not): infusions, days since the last one, a visit after it
    for infusions in (1, 2, 3, 4):
        for since in (13, 14, 30):
            for later_visit in (False, True):
                index = CUTOFF - dt.timedelta(days=since + 3 * (infusions - 1))
                follow = [(3 * (infusions - 1) + 5, {"pgic": 4})] if later_visit else []
                follow = [(d, v) for d, v in follow if index + dt.timedelta(days=d) <= CUTOFF]
                patient(index, follow, SITES[number % 2], infusions=infusions)
    # three infusions in the first six weeks and a fourth on day 50: not completed
    patient(CUTOFF - dt.timedelta(days=80), [], "North", infusions=4, gap=50 // 3 + 1)
    # an untreated patient (intake only) and the visit that fixes the cutoff
    rows.append({"patient_id": "U0001", "visit_date": _day(CUTOFF - dt.timedelta(days=200)),
                 "visit_type": "intake", "site": "North", "pain_score": 6})
    rows.append({"patient_id": "Z9999", "visit_date": _day(CUTOFF), "visit_type": "intake",
                 "site": "South", "pain_score": 5})
    return rows


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    frame = pd.DataFrame(hand_made_rows(), columns=[
        "patient_id", "visit_date", "visit_type", "condition", "site", "pain_score",
        "pain_post", "pgic"])
    path = tmp_path_factory.mktemp("worklist") / "sessions.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def snap(export, tmp_path_factory):
    snap = ingested_snapshot(tmp_path_factory.mktemp("worklist_db") / "clinic.duckdb", [export])
    assert snap.scalar("SELECT count(*) FROM quarantine") == 0
    return snap


def pandas_reading(path, sites: tuple[str, ...] = ()) -> dict[str, set]:
    """The worklist's patients read from the export with pandas alone."""
    visits = pd.read_csv(path, parse_dates=["visit_date"])
    visits["day"] = visits["visit_date"].dt.date
    cutoff = visits["day"].max()
    sessions = visits[visits["visit_type"].isin(["infusion", "booster"])]
    index = sessions.groupby("patient_id")["day"].min()
    site = visits.dropna(subset=["site"]).sort_values("day").groupby("patient_id")["site"].first()
    last_visit = visits.groupby("patient_id")["day"].max()
    out: dict[str, set] = {tp: set() for tp in WINDOWS}
    out["missed"], out["missed_itt"], out["stopped"] = set(), set(), set()
    for pid, first in index.items():
        if sites and site[pid] not in sites:
            continue
        own = visits[visits["patient_id"] == pid]
        base = own[(own["day"] >= first - dt.timedelta(days=30)) & (own["day"] <= first)
                   & own["pain_score"].notna()].sort_values("day")
        baseline = base["pain_score"].iloc[-1] if len(base) else None
        for tp, (start, end) in WINDOWS.items():
            first_day, last_day = first + dt.timedelta(days=start), first + dt.timedelta(days=end)
            scored = own[(own["day"] >= first_day) & (own["day"] <= last_day)
                         & (own["day"] != first) & own["pain_score"].notna()]
            if len(scored):
                continue
            if last_day <= cutoff:
                out["missed"].add((pid, tp))
                if baseline is not None and baseline > 0:
                    out["missed_itt"].add((pid, tp))
            elif first_day <= cutoff:
                out[tp].add((pid, (last_day - cutoff).days, last_day, last_visit[pid]))
        mine = sessions[sessions["patient_id"] == pid]
        induction = mine[mine["day"] <= first + dt.timedelta(days=INDUCTION_DAYS)]["day"].nunique()
        if (induction < INDUCTION_MIN and last_visit[pid] == mine["day"].max()
                and (cutoff - last_visit[pid]).days >= worklist.STOPPED_AFTER_DAYS):
            out["stopped"].add((pid, induction, (cutoff - last_visit[pid]).days))
    return out


def engine_reading(result: worklist.Worklist) -> dict[str, set]:
    out: dict[str, set] = {}
    for tp in WINDOWS:
        out[tp] = {(r.patient_id, r.days_left, r.window_end_date, r.last_visit_date)
                   for r in result.due(tp).itertuples()}
    out["missed"] = {(r.patient_id, r.timepoint) for r in result.missed.itertuples()}
    out["missed_itt"] = {(r.patient_id, r.timepoint) for r in result.missed.itertuples()
                         if r.counted_as_non_responder}
    out["stopped"] = {(r.patient_id, r.induction_infusions, r.days_since_last_visit)
                      for r in result.stopped_in_induction.itertuples()}
    return out


def test_worklist_equals_an_independent_pandas_reading(snap, export):
    result = worklist.worklist(snap)
    expected = pandas_reading(export)
    assert result.cutoff == CUTOFF
    got = engine_reading(result)
    for name in expected:
        assert got[name] == expected[name], name
    # the hand-made export covers every case: open and missed windows at
    # each timepoint, edges included, and both kinds of stop
    for tp, (start, end) in WINDOWS.items():
        days_left = {row[1] for row in expected[tp]}
        assert {1, end - start} <= days_left, tp    # the window's last and first day
        assert any(t == tp for _, t in expected["missed"])
    assert {n for _, n, _ in expected["stopped"]} == {1, 2, 3}
    assert expected["missed"] - expected["missed_itt"]       # no baseline: not counted in ITT


def test_edges_of_a_window(snap):
    """At the cutoff = index + window end the window is over (SPEC §3: due);
    a day earlier it is open with 1 day left; a follow-up on the window's
    first or last day counts, one a day outside does not."""
    result = worklist.worklist(snap)
    rows = pd.DataFrame(hand_made_rows())
    index = (rows[rows.visit_type == "infusion"].groupby("patient_id")["visit_date"].min()
             .map(dt.date.fromisoformat))
    since = {pid: (CUTOFF - day).days for pid, day in index.items()}
    open_3m = {r.patient_id: r.days_left for r in result.due("3m").itertuples()}
    missed_3m = {r.patient_id for r in result.missed.itertuples() if r.timepoint == "3m"}
    at_end = [p for p, d in since.items() if d == 120]
    day_before_end = [p for p, d in since.items() if d == 119]
    assert at_end and day_before_end
    assert not set(at_end) & set(open_3m)
    assert all(open_3m.get(p) in (None, 1) for p in day_before_end)
    assert {p for p in day_before_end if p in open_3m} and {p for p in at_end if p in missed_3m}
    before_start = [p for p, d in since.items() if d == 59]
    assert not set(before_start) & (set(open_3m) | missed_3m)


def test_site_filter(snap, export):
    result = worklist.worklist(snap, Filters(sites=("North",)))
    expected = pandas_reading(export, sites=("North",))
    got = engine_reading(result)
    for name in expected:
        assert got[name] == expected[name], name
    assert set(result.open_windows.site) | set(result.missed.site) == {"North"}


def test_only_the_clinical_team_gets_the_worklist(snap):
    for audience in (Audience.ANALYST, Audience.EXTERNAL):
        with pytest.raises(worklist.NotForAudience, match="clinical team only"):
            worklist.worklist(snap, audience=audience)


def test_json_shape(snap):
    data = worklist.worklist(snap).to_dict()
    assert list(data) == ["3m", "6m", "12m", "missed", "stopped_in_induction"]
    for tp in ("3m", "6m", "12m"):
        assert data[tp] and all(set(r) == {"patient_id", "window_end", "days_left", "last_visit"}
                                for r in data[tp])
        assert all(r["days_left"] >= 1 for r in data[tp])
        dt.date.fromisoformat(data[tp][0]["window_end"])
    assert all({"patient_id", "timepoint", "window_end", "last_visit"} <= set(r)
               for r in data["missed"])
    assert all({"patient_id", "last_visit", "days_since_last_visit"} <= set(r)
               for r in data["stopped_in_induction"])


def test_cli_prints_the_same(snap, export):
    command = [sys.executable, "-m", "analysis", "worklist", "--db", str(snap.db_path)]
    done = subprocess.run([*command, "--json"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == worklist.worklist(snap).to_dict()
    text = subprocess.run(command + ["--site", "South"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    south = worklist.worklist(snap, Filters(sites=("South",)))
    assert f"3 months: {len(south.due('3m'))} patients" in text.stdout
    assert f"Stopped during induction: {len(south.stopped_in_induction)}" in text.stdout
    for pid in south.stopped_in_induction.patient_id:
        assert pid in text.stdout
    missing = subprocess.run(command[:-1] + [str(export.parent / "none.duckdb")], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr


def test_exports_are_formula_safe(tmp_path):
    """A patient id or site that a spreadsheet would run stays text."""
    hostile = pd.DataFrame([
        {"patient_id": "=HYPERLINK(\"http://x\",\"a\")", "visit_date": "2026-01-05",
         "visit_type": "infusion", "site": "+cmd|' /C calc'!A0", "pain_score": 7},
        {"patient_id": "Z1", "visit_date": "2026-06-30", "visit_type": "intake",
         "site": "North"},
    ])
    export = tmp_path / "hostile.csv"
    hostile.to_csv(export, index=False)
    result = worklist.worklist(ingested_snapshot(tmp_path / "h.duckdb", [export]))
    assert len(result.stopped_in_induction) == 1
    text = result.csv_bytes("Stopped in induction").decode()
    assert "'=HYPERLINK" in text and "'+cmd" in text
    book = openpyxl.load_workbook(io.BytesIO(result.xlsx_bytes()))
    assert book.sheetnames == ["Follow-up due", "Missed follow-up", "Stopped in induction"]
    sheet = book["Stopped in induction"]
    values = [c.value for c in sheet[2]]
    assert values[0] == "'=HYPERLINK(\"http://x\",\"a\")" and values[1] == "'+cmd|' /C calc'!A0"
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
