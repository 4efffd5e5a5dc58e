"""The project's own documents stay true: every link in README and docs/
resolves inside the repository, and every number of docs/outcome-definitions.md
is the number the code uses (tried at its edge on real data where it is a
rule about patients, compared with the code's constant where it is a
setting), so the page cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from analysis.core import audience, definitions
from analysis.claims import wording
from analysis.metrics import opioids
from analysis.reports.quarterly.tables import CONFIDENCE, MME_THRESHOLDS, PCHART_SIGMA
from analysis.storage import store
from tests.helpers.builders import build_db, clock, outcome, treated, visit

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS_PAGE = ROOT / "docs" / "outcome-definitions.md"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


# --------------------------------------------------------------------------
# links


def _links(document: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", document.read_text(encoding="utf-8"), flags=re.S)
    return _LINK.findall(text)


def test_the_documents_have_links_to_check():
    assert DEFINITIONS_PAGE in DOCUMENTS
    assert any("docs/outcome-definitions.md" in link for link in _links(ROOT / "README.md"))


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_link_resolves_inside_the_repository(document):
    for link in _links(document):
        if link.startswith("#"):
            continue
        assert not re.match(r"^[a-z][a-z0-9+.-]*:", link), \
            f"{document.name}: {link} leaves the repository"
        target = (document.parent / unquote(link.split("#")[0])).resolve()
        assert target.is_relative_to(ROOT), f"{document.name}: {link} points outside the repository"
        assert target.exists(), f"{document.name}: {link} does not exist"


# --------------------------------------------------------------------------
# the page's numbers


def _table(heading_cells: tuple[str, ...]) -> list[list[str]]:
    """The rows of the page's table whose header starts with ``heading_cells``."""
    lines = DEFINITIONS_PAGE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if tuple(cells[:len(heading_cells)]) == heading_cells:
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"no table headed {heading_cells} in {DEFINITIONS_PAGE.name}")


def _glance() -> dict[str, str]:
    return {rule: value for rule, value, *_ in _table(("Rule", "Value"))}


def _number(text: str, pattern: str) -> float:
    match = re.fullmatch(pattern, text)
    assert match, f"{text!r} does not read as {pattern}"
    return float(match.group(1))


def _timepoint_rows() -> list[tuple[str, str, int, int, int]]:
    rows = []
    for label, code, target, window in _table(("Timepoint", "Code", "Target day")):
        start, end = re.fullmatch(r"(\d+)–(\d+)", window).groups()
        rows.append((label, code.strip("`"), int(target), int(start), int(end)))
    return rows


def test_the_timepoints_are_the_models_timepoints(tmp_path):
    snap = store.Snapshot(tmp_path / "empty.duckdb")
    try:
        model = snap.query("SELECT label, timepoint, target_day, window_start, window_end "
                           "FROM timepoints ORDER BY sort_order")
    finally:
        snap.close()
    assert _timepoint_rows() == [tuple(r) for r in model.itertuples(index=False)]
    assert [(r[0], r[1]) for r in _timepoint_rows()] == [
        (definitions.TIMEPOINT_LABELS[t], t) for t in definitions.TIMEPOINTS]


def test_the_responder_table_names_every_definition():
    assert [r[0].strip("`") for r in _table(("Code", "The patient is a responder when"))] \
        == list(definitions.DEFINITIONS)


# Each rule of the glance table, read from the page, is tried at its edge
# (a patient exactly at it and one just past it) in one export.
CUTOFF_DAY = 1000


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    glance = _glance()
    pain_days = int(_number(glance["Pain baseline look-back"], r"(\d+) days"))
    mme_days = int(_number(glance["Opioid baseline look-back"], r"(\d+) days"))
    rows = [
        visit("pain_in", -pain_days, "intake", pain=8, condition="migraine"),
        visit("pain_in", 0, "infusion"),
        visit("pain_out", -pain_days - 1, "intake", pain=8, condition="migraine"),
        visit("pain_out", 0, "infusion"),
        visit("mme_in", -mme_days, "intake", mme=60, condition="migraine"),
        visit("mme_in", 0, "infusion"),
        visit("mme_out", -mme_days - 1, "intake", mme=60, condition="migraine"),
        visit("mme_out", 0, "infusion"),
    ]
    for _, code, _, start, end in _timepoint_rows():
        for name, day in (("start", start), ("end", end), ("before", start - 1),
                          ("after", end + 1)):
            rows += [*treated(f"{code}_{name}"), visit(f"{code}_{name}", day, "follow_up", pain=5)]
    pain_bars = {"pain30": _number(glance["Meaningful pain relief (`pain30`)"], r"(\d+)%") / 100,
                 "pain50": _number(glance["Substantial pain relief (`pain50`)"], r"(\d+)%") / 100}
    for code, share in pain_bars.items():   # from 10: exactly at the bar, and 0.1 short of it
        rows += [*treated(f"{code}_at", pain=10), visit(f"{code}_at", 90, "follow_up",
                                                        pain=round(10 * (1 - share), 6))]
        rows += [*treated(f"{code}_short", pain=10), visit(f"{code}_short", 90, "follow_up",
                                                           pain=round(10 * (1 - share) + 0.1, 6))]
    points = _number(glance["Pain down in points (`pain2pt`)"], r"(\d+) points")
    rows += [*treated("pain2pt_at", pain=7), visit("pain2pt_at", 90, "follow_up", pain=7 - points),
             *treated("pain2pt_short", pain=7),
             visit("pain2pt_short", 90, "follow_up", pain=7 - points + 0.1)]
    cut = _number(glance["Opioid dose cut (`mme50`)"], r"(\d+)%") / 100
    rows += [*treated("mme50_at", mme=60), visit("mme50_at", 90, "follow_up", mme=60 * (1 - cut)),
             *treated("mme50_short", mme=60),
             visit("mme50_short", 90, "follow_up", mme=60 * (1 - cut) + 1)]
    off = _number(glance["Off opioids (`mme_stop`)"], r"(\d+) MME/day")
    rows += [*treated("mme_stop_at", mme=60), visit("mme_stop_at", 90, "follow_up", mme=off),
             *treated("mme_stop_short", mme=60),
             visit("mme_stop_short", 90, "follow_up", mme=off + 1)]
    rows.append(clock("pain_in", CUTOFF_DAY))
    snap = store.Snapshot(build_db(tmp_path_factory.mktemp("docs_edges"), rows))
    yield snap
    snap.close()


def test_the_baseline_look_backs_hold_at_their_edges(edges):
    assert outcome(edges, "pain_in")["baseline_pain"] == 8
    assert outcome(edges, "pain_out")["baseline_pain"] is None
    assert outcome(edges, "mme_in", definition="mme50")["baseline_mme"] == 60
    assert outcome(edges, "mme_out", definition="mme50")["baseline_mme"] is None


def test_the_windows_hold_at_their_edges(edges):
    for _, code, *_ in _timepoint_rows():
        found = {name: outcome(edges, f"{code}_{name}", code)["follow_up_pain"]
                 for name in ("start", "end", "before", "after")}
        assert found == {"start": 5, "end": 5, "before": None, "after": None}, code


@pytest.mark.parametrize("definition", ["pain30", "pain50", "pain2pt", "mme50", "mme_stop"])
def test_the_responder_bars_hold_at_their_edges(edges, definition):
    assert outcome(edges, f"{definition}_at", "3m", definition)["responder"] is True
    assert outcome(edges, f"{definition}_short", "3m", definition)["responder"] is False


def test_the_settings_are_the_codes_settings():
    glance = _glance()
    checks = {
        "Too few to report": lambda v: _number(v, r"(\d+) patients") == audience.SMALL_CELL,
        "Claim target": lambda v: _number(v, r"(\d+)%") / 100 == wording.DEFAULT_TARGET,
        "Confidence level": lambda v: _number(v, r"(\d+)%") / 100 == CONFIDENCE,
        "Rapid taper": lambda v: (opioids.RAPID.percent, opioids.DAYS_PER_UNIT[
            opioids.RAPID.unit]) == (_number(v, r"(\d+)% per week"), 7),
        "Faster than the usual starting taper": lambda v: re.fullmatch(
            r"(\d+)% per (\d+) days", v).groups() == (
            f"{opioids.FASTER_THAN_USUAL.percent:g}",
            str(opioids.DAYS_PER_UNIT[opioids.FASTER_THAN_USUAL.unit])),
        "Risky daily opioid doses": lambda v: tuple(int(x) for x in re.fullmatch(
            r"(\d+) and (\d+) MME/day", v).groups()) == opioids.THRESHOLDS
        == MME_THRESHOLDS,
        "Induction completed": lambda v: tuple(int(x) for x in re.fullmatch(
            r"(\d+) infusions in (\d+) days", v).groups()) == (
            definitions.INDUCTION_MIN_INFUSIONS, definitions.INDUCTION_DAYS),
        "Control-chart limits": lambda v: _number(v, r"(\d+) sigma") == PCHART_SIGMA,
    }
    tried_on_data = {"Pain baseline look-back", "Opioid baseline look-back",
                     "Meaningful pain relief (`pain30`)", "Substantial pain relief (`pain50`)",
                     "Pain down in points (`pain2pt`)", "Opioid dose cut (`mme50`)",
                     "Off opioids (`mme_stop`)"}
    # Every row is checked, here or on data: a new row needs its check.
    assert set(glance) == set(checks) | tried_on_data
    for rule, check in checks.items():
        assert check(glance[rule]), f"{rule}: the page says {glance[rule]!r}"


# --------------------------------------------------------------------------
# README's command lines


def _readme_commands() -> list[str]:
    lines = []
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith(".venv/bin/python -m analysis"):
            lines.append(line.split("  #")[0].rstrip(" \\"))
    return lines


def test_readme_commands_name_real_commands():
    from analysis import cli
    commands = set(cli.COMMANDS)
    found = {line.split()[3] for line in _readme_commands()}
    assert found <= commands and {"memo", "summary", "report", "claim"} <= found
    # scripts/dashboard.sh hands its options to Streamlit, as README says
    script = (ROOT / "scripts" / "dashboard.sh").read_text()
    assert 'streamlit run dashboard.py "$@"' in script


def test_readme_demo_commands_run(demo_exports, tmp_path, monkeypatch, capsys):
    """The lines README gives for the demo database run as written (the demo
    file, and the folder they write, in a temporary place)."""
    from analysis import cli
    from analysis.storage import db
    monkeypatch.delenv("OUTCOMES_DB", raising=False)
    monkeypatch.setattr(db, "DEMO_DB", tmp_path / "demo.duckdb")
    monkeypatch.setattr("analysis.sources.demo_exports",
                        lambda: [demo_exports.sessions, demo_exports.medications])
    runnable = [line for line in _readme_commands() if "--db data/demo.duckdb" in line]
    assert len(runnable) >= 4
    for line in runnable:
        argv = (line.replace("data/demo.duckdb", str(tmp_path / "demo.duckdb"))
                .replace("reports/", str(tmp_path / "reports")).split()[3:])
        assert cli.main(argv) == 0, (line, capsys.readouterr().err)
    capsys.readouterr()
    written = {p.suffix for p in (tmp_path / "reports").iterdir()}
    assert written == {".html", ".xlsx", ".pdf"}
