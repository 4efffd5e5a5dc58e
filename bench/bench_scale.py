"""Benchmark at scale: ingest, snapshot build and responder grid at ~10M visits.

    python bench/bench_scale.py [--visits 10000000] [--out bench/out/scale] [--repeat 3]
                                [--reuse-db] [--profile-ingest] [--profile-snapshot]

1. Writes a clean demo export of about ``--visits`` visit rows
   (``analysis.ingest.demo.generate.generate_demo(out, patients, seed=1, messy=False)``; the
   patient count is calibrated on a small sample), reused when present.
2. Ingest, in its own process: ``python -m analysis ingest sessions.csv
   medications.csv --db FILE`` into a fresh DuckDB file; wall time, rows/s.
3. Engine, in its own process: ``store.Snapshot(FILE)`` (copy the tables,
   build the SQL models), ``outcomes.responder_grid(snap)`` cold, then warm
   ``--repeat`` times (median).

``--repeat`` also repeats each phase (a fresh database for every ingest, a
fresh process for every snapshot), and the summary reports medians.  Peak
memory is the peak resident set size of each phase's process, from
``os.wait4`` (``ru_maxrss``: the process and anything it waited for).  Load
average is printed with the figures: this machine may be shared.

``--reuse-db`` skips the ingest when the database is already there;
``--profile-ingest`` times every SQL statement of one more ingest;
``--profile-snapshot`` prints the time of every step of the snapshot build.

Targets (issue "scale"): 10M visits ingested in < 60 s; grid < 5 s; peak
memory < 4 GiB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SEED = 1
INGEST_TARGET_S = 60.0
GRID_TARGET_S = 5.0
MEMORY_TARGET = 4 * 1024**3


# --------------------------------------------------------------------------
# helpers


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_phase(args: list[str], label: str) -> tuple[float, int, str]:
    """Run a child process; its wall time, peak RSS in bytes and stdout."""
    print(f"[{label}] load {load()}: {' '.join(args)}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as out:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.PIPE, text=True)
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        stdout = out.read()
    if proc.returncode != 0:
        sys.exit(f"[{label}] failed (exit {proc.returncode}):\n{stdout}\n{err}")
    return seconds, usage.ru_maxrss * 1024, stdout


def gib(n: float) -> str:
    return f"{n / 1024**3:.2f} GiB"


def median(values):
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------
# the export


def export(out: Path, visits: int) -> dict:
    folder = out / "export"
    marker = folder / "done.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info["requested_visits"] == visits:
            print(f"reusing export {folder} ({info['visit_rows']:,} visit rows, "
                  f"{info['patients']:,} patients)")
            return info
    from analysis.ingest.demo.generate import generate_demo
    with tempfile.TemporaryDirectory() as tmp:
        sample = generate_demo(tmp, patients=20_000, seed=SEED, messy=False)
    per_patient = sample.visit_rows / sample.patients
    patients = max(1, round(visits / per_patient))
    print(f"calibration: {per_patient:.2f} visits per patient -> {patients:,} patients",
          flush=True)
    marker.unlink(missing_ok=True)
    code = ("import json, sys; from analysis.ingest.demo.generate import generate_demo; "
            f"f = generate_demo({str(folder)!r}, patients={patients}, seed={SEED}, messy=False); "
            "print(json.dumps({'visit_rows': f.visit_rows, 'medication_rows': f.medication_rows}))")
    seconds, rss, stdout = run_phase([sys.executable, "-c", code], "demo")
    info = json.loads(stdout.strip().splitlines()[-1])
    info.update(requested_visits=visits, patients=patients, seconds=round(seconds, 1),
                peak_rss=rss)
    print(f"demo: {info['visit_rows']:,} visit rows, {info['medication_rows']:,} medication "
          f"rows in {seconds:.1f} s (peak RSS {gib(rss)})")
    marker.write_text(json.dumps(info))
    return info


def fresh(db_path: Path) -> Path:
    for candidate in (db_path, Path(str(db_path) + ".wal")):
        candidate.unlink(missing_ok=True)
    return db_path


# --------------------------------------------------------------------------
# phases run in child processes


def child_engine(db_path: str, repeat: int, profile: bool) -> None:
    """Snapshot build + grid cold + grid warm x repeat; one JSON line."""
    import resource

    from analysis.metrics import outcomes
    from analysis.storage import store

    def rss() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    started = time.perf_counter()
    snap = store.Snapshot(db_path)
    build = time.perf_counter() - started
    rss_build = rss()
    started = time.perf_counter()
    grid = outcomes.responder_grid(snap)
    cold = time.perf_counter() - started
    warm = []
    for _ in range(repeat):
        started = time.perf_counter()
        outcomes.responder_grid(snap)
        warm.append(time.perf_counter() - started)
    counts = snap.query("""SELECT (SELECT count(*) FROM visits) AS visits,
                                  (SELECT count(*) FROM patients) AS patients,
                                  (SELECT count(*) FROM patient_timepoints) AS patient_timepoints""")
    result = {
        "build": build, "cold": cold, "warm": warm, "rss_build": rss_build, "rss_end": rss(),
        "cells": len(grid), "counts": {k: int(v) for k, v in counts.iloc[0].items()},
        "steps": getattr(snap, "build_timings", None) if profile else None,
    }
    snap.close()
    print(json.dumps(result))


from bench_ingest import _TimedConnection  # noqa: E402  (one timing wrapper for both)


def child_profile_ingest(db_path: str, files: list[str]) -> None:
    from analysis.storage import db
    from analysis.ingest.pipeline import ingest_file
    con = db.connect(fresh(Path(db_path)))
    for path in files:
        timed = _TimedConnection(con)
        started = time.perf_counter()
        result = ingest_file(timed, path, ingest_date=dt.date.today())
        total = time.perf_counter() - started
        print(f"\n{Path(path).name}: {result.status}, {result.rows_read:,} rows read, "
              f"{total:.2f} s, {len(timed.timings)} statements (wall s, CPU s, SQL):")
        for seconds, cpu, sql in sorted(timed.timings, key=lambda t: -t[0])[:15]:
            print(f"  {seconds:7.2f} {cpu:7.2f}  {sql[:150]}")
        print(f"  {total - sum(s for s, _, _ in timed.timings):7.2f}           (outside SQL)")
    con.close()


# --------------------------------------------------------------------------
# main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=10_000_000)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "scale"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reuse-db", action="store_true",
                        help="skip the ingest when the database exists")
    parser.add_argument("--profile-ingest", action="store_true")
    parser.add_argument("--profile-snapshot", action="store_true")
    parser.add_argument("--child", choices=("engine", "profile-ingest"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "engine":
        child_engine(args.db, args.repeat, args.profile_snapshot)
        return 0
    if args.child == "profile-ingest":
        child_profile_ingest(args.db, args.files)
        return 0

    import duckdb
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"duckdb {duckdb.__version__}, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load {load()}")
    info = export(out, args.visits)
    folder = out / "export"
    files = [str(folder / "sessions.csv"), str(folder / "medications.csv")]
    csv_mb = sum(Path(f).stat().st_size for f in files) / 1e6
    rows = info["visit_rows"] + info["medication_rows"]
    db_path = out / "scale.duckdb"

    # (a) ingest
    ingests = []
    if not (args.reuse_db and db_path.exists()):
        for run in range(1, args.repeat + 1):
            seconds, rss, stdout = run_phase(
                [sys.executable, "-m", "analysis", "ingest", *files, "--db", str(fresh(db_path))],
                f"ingest {run}")
            ingests.append((seconds, rss))
            print(f"ingest {run}: {seconds:.1f} s, {rows / seconds:,.0f} rows/s "
                  f"({info['visit_rows'] / seconds:,.0f} visit rows/s), peak RSS {gib(rss)}, "
                  f"load {load()}\n  " + stdout.strip().replace("\n", "\n  "), flush=True)
    db_size = db_path.stat().st_size

    # (b) snapshot build + grid
    engines = []
    for run in range(1, args.repeat + 1):
        seconds, rss, stdout = run_phase(
            [sys.executable, str(Path(__file__).resolve()), "--child", "engine", "--db",
             str(db_path), "--repeat", str(args.repeat)]
            + (["--profile-snapshot"] if args.profile_snapshot else []), f"engine {run}")
        result = json.loads(stdout.strip().splitlines()[-1])
        result["rss"] = rss
        engines.append(result)
        print(f"engine {run}: snapshot {result['build']:.1f} s (RSS {gib(result['rss_build'])}), "
              f"grid cold {result['cold']:.2f} s, warm "
              + ", ".join(f"{w:.2f}" for w in result["warm"])
              + f" s; peak RSS {gib(rss)}; load {load()}; {result['counts']}", flush=True)
        if result["steps"]:
            for step, secs in sorted(result["steps"].items(), key=lambda kv: -kv[1]):
                print(f"    {secs:7.2f} s  {step}")

    if args.profile_ingest:
        seconds, rss, stdout = run_phase(
            [sys.executable, str(Path(__file__).resolve()), "--child", "profile-ingest",
             "--db", str(out / "profile.duckdb"), *files], "profile ingest")
        print(f"profiled ingest: {seconds:.1f} s, peak RSS {gib(rss)}, load {load()}{stdout}")
        fresh(out / "profile.duckdb")

    # summary
    print("\n" + "=" * 78)
    print(f"scale benchmark: {info['visit_rows']:,} visit rows + {info['medication_rows']:,} "
          f"medication rows ({info['patients']:,} patients), CSV {csv_mb:,.0f} MB")
    print(f"DuckDB file: {db_size / 1e6:,.0f} MB ({db_path})")
    print(f"machine: {os.cpu_count()} CPUs, load average now {load()}")
    print(f"{'phase':<34}{'median':>12}{'runs':>22}{'peak RSS':>12}")

    def line(name, values, rss_values, unit="s"):
        runs = ", ".join(f"{v:.2f}" for v in values)
        peak = gib(max(rss_values)) if rss_values else ""
        print(f"{name:<34}{median(values):>11.2f}{unit}{runs:>22}{peak:>12}")

    if ingests:
        line("ingest (2 files, CLI)", [s for s, _ in ingests], [r for _, r in ingests])
        print(f"{'  = visit rows/s':<34}{info['visit_rows'] / median([s for s, _ in ingests]):>12,.0f}")
    line("snapshot build (cold)", [e["build"] for e in engines], [e["rss_build"] for e in engines])
    line("grid, cold", [e["cold"] for e in engines], [])
    warm = [median(e["warm"]) for e in engines]
    line("grid, warm (median of repeats)", warm, [e["rss"] for e in engines])
    line("snapshot + grid cold", [e["build"] + e["cold"] for e in engines], [])

    print("\ntargets:")
    checks = []
    if ingests:
        checks.append((f"ingest < {INGEST_TARGET_S:.0f} s", median([s for s, _ in ingests]),
                       INGEST_TARGET_S, "s"))
    checks.append((f"grid < {GRID_TARGET_S:.0f} s (warm)", median(warm), GRID_TARGET_S, "s"))
    checks.append((f"grid < {GRID_TARGET_S:.0f} s (cold, after the build)",
                   median([e["cold"] for e in engines]), GRID_TARGET_S, "s"))
    peak = max([r for _, r in ingests] + [e["rss"] for e in engines])
    checks.append(("peak memory < 4 GiB (any phase)", peak, MEMORY_TARGET, "b"))
    failed = 0
    for name, value, limit, unit in checks:
        ok = value < limit
        failed += not ok
        shown = gib(value) if unit == "b" else f"{value:.2f} s"
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {shown}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
