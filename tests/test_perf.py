"""Issue 20 (performance) without timing: what a command imports, that the
claim's binomial bounds equal scipy.stats', that saved models are read
instead of rebuilt (and never for another data version), that an
incremental model update equals a full rebuild, and that the dashboard's
warm-up fills the page cache.  Timings live in ``bench/bench_perf.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats as scipy_stats

from analysis.core import stats
from tests.helpers.fresh_process import run_json

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------
# lazy imports

#: What a one-off command that draws nothing must not import: pandas (~0.5 s),
#: numpy and scipy (~0.35 s for scipy.special, ~0.4 s more for scipy.stats;
#: its statistics are analysis.core.binomial's), the drawing and spreadsheet
#: libraries.
HEAVY = ("pandas", "numpy", "scipy", "plotly", "matplotlib", "openpyxl", "streamlit")


def _modules_after(argv: list[str], db_path: Path, prelude: str = "") -> tuple[dict, set[str]]:
    """Run the CLI in a fresh process; its JSON output and every module it imported."""
    code = (
        "import contextlib, io, json, sys\n"
        f"{prelude}\n"
        "from analysis import cli\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    code = cli.main({argv!r} + ['--db', {str(db_path)!r}])\n"
        "print(json.dumps({'code': code, 'out': json.loads(out.getvalue()),\n"
        "                  'modules': sorted(sys.modules)}))\n")
    result = run_json(code, cwd=ROOT)
    assert result["code"] == 0
    return result["out"], set(result["modules"])


def _heavy(modules: set[str]) -> list[str]:
    """The HEAVY packages imported (any of their modules)."""
    return sorted({heavy for m in modules for heavy in HEAVY
                   if m == heavy or m.startswith(heavy + ".")})


def test_claim_json_imports_no_pandas_no_scipy_no_drawing(demo_db):
    out, modules = _modules_after(["claim", "--json"], demo_db)
    assert len(out["sensitivity"]) == 48
    assert _heavy(modules) == []


def test_responders_json_imports_no_pandas_no_scipy_no_drawing(demo_db):
    out, modules = _modules_after(["responders", "--json", "--ci", "exact"], demo_db)
    assert out["by_condition"] and out["overall"]["n"] > 0
    assert _heavy(modules) == []


def test_the_module_check_can_fail(demo_db):
    """The same check sees scipy.stats once something uses it (here the
    median change's Wilcoxon test, through the module imported on first use)."""
    _, modules = _modules_after(["claim", "--json"], demo_db, prelude=(
        "from analysis.core import stats; stats.median_change([1.0, -2.0, 3.0, -4.5, 5.0])"))
    assert "scipy.stats" in modules
    _, modules = _modules_after(["claim", "--json"], demo_db, prelude="import pandas")
    assert "pandas" in _heavy(modules)


def test_claim_and_responders_read_the_file_in_place_and_let_go(tmp_path, demo_db, capsys,
                                                                monkeypatch):
    """With the models the ingest saved, ``claim`` and ``responders`` read the
    file where it is (no Snapshot: nothing copied, no model built), change
    nothing in it, give a snapshot's numbers, and let the file go."""
    import shutil

    import duckdb

    from analysis.metrics import outcomes
    from analysis.storage import store
    from tests.helpers.cli import run_json

    clinic = tmp_path / "clinic.duckdb"
    shutil.copyfile(demo_db, clinic)
    snap = store.Snapshot(clinic)
    expected = json.loads(json.dumps(outcomes.claim_check(snap).to_dict(), default=str))
    rates = json.loads(json.dumps(outcomes.responder_rates(snap).to_dict(), default=str))
    snap.close()
    before = clinic.read_bytes()

    def no_snapshot(*args, **kwargs):
        raise AssertionError("a snapshot was taken")

    monkeypatch.setattr(store.Snapshot, "__init__", no_snapshot)
    assert run_json(capsys, "claim", "--db", clinic) == expected
    assert run_json(capsys, "responders", "--db", clinic) == rates
    assert clinic.read_bytes() == before
    writer = duckdb.connect(str(clinic))    # let go: this process may write it now
    writer.close()


@pytest.mark.parametrize("target", [0.7, 0.5, 0.3, 0.95, 0.05])
def test_claim_test_equals_scipy_binomtest(target):
    """p-value and one-sided exact bounds (analysis.core.binomial) equal
    scipy.stats.binomtest's (within 1e-12) over small and large n."""
    cases = [(k, n) for n in range(1, 41) for k in range(n + 1)]
    cases += [(k, n) for n in (97, 500, 2_000, 20_000)
              for k in sorted({0, 1, 2, n // 3, n // 2, (7 * n) // 10, n - 2, n - 1, n})]
    worst = 0.0
    for k, n in cases:
        ours = stats.claim_test(k, n, target)
        greater = scipy_stats.binomtest(k, n, target, alternative="greater")
        less = scipy_stats.binomtest(k, n, target, alternative="less")
        low = greater.proportion_ci(confidence_level=0.95, method="exact").low
        high = less.proportion_ci(confidence_level=0.95, method="exact").high
        worst = max(worst, abs(ours.p_value - greater.pvalue), abs(ours.lower_bound - low),
                    abs(ours.upper_bound - high))
        expected = ("supported" if low > target else "contradicted" if high < target
                    else "inconclusive")
        assert ours.verdict == expected, (k, n, target)
    assert worst < 1e-12, worst
