"""Benchmark: the whole responder grid on a ~1,000,000-visit demo database.

    python bench/bench_grid.py [--patients N] [--repeat 5] [--visits 1000000] [--rebuild]

Builds (or reuses, under ``bench/out/``) a clean demo clinic
(``analysis.ingest.demo.generate.generate_demo(out, patients=N, seed=1, messy=False)``),
ingests it, then times

1. the snapshot build, cold (copy the tables into memory + build the SQL models);
2. ``outcomes.responder_grid(snap)`` warm: 6 definitions x 4 timepoints x 2
   populations, overall and by condition, with Wilson intervals (median of
   ``--repeat`` runs after one warm-up run);
3. a straightforward pandas implementation of the same SPEC §3 definitions,
   computed from the raw ``visits`` and ``medications`` tables (read through
   DuckDB into pandas; the read is timed separately, the ratio uses the
   computation alone, which flatters pandas);

asserts that both give the same n and responders in every cell, prints the
medians and the speed ratio, and checks the targets (grid < 1 s warm, at
least 5x faster than pandas).  Without ``--patients`` the patient count is
calibrated on a small sample to reach ``--visits`` visit rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from analysis.storage import db, store
from analysis.ingest.pipeline import ingest_files
from analysis.metrics import outcomes  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from pandas_claim import pandas_grid, read_raw  # noqa: E402  (the peer, shared with bench_perf)

OUT = ROOT / "bench" / "out"
SEED = 1
INGEST_DATE = dt.date(2099, 12, 31)   # the demo never writes a visit after its export date
GRID_TARGET_S = 1.0
SPEEDUP_TARGET = 5.0

# --------------------------------------------------------------------------
# the data


def demo_module(wait_s: float = 600.0):
    """``analysis.ingest.demo`` is written concurrently: wait for it to appear."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            module = importlib.import_module("analysis.ingest.demo")
            if hasattr(module, "generate_demo"):
                return module
        except ImportError:
            pass
        if time.monotonic() > deadline:
            sys.exit("analysis.ingest.demo.generate.generate_demo is still missing; giving up")
        print("waiting for analysis.ingest.demo.generate.generate_demo ...", file=sys.stderr)
        time.sleep(10)
        sys.modules.pop("analysis.ingest.demo", None)


def calibrate(target_visits: int, sample: int = 3000) -> int:
    demo = demo_module()
    with tempfile.TemporaryDirectory() as tmp:
        files = demo.generate_demo(tmp, patients=sample, seed=SEED, messy=False)
    per_patient = files.visit_rows / sample
    patients = int(round(target_visits / per_patient, -3))
    print(f"calibration: {per_patient:.1f} visits per patient -> {patients} patients "
          f"for ~{target_visits:,} visits")
    return patients


def build_database(patients: int, rebuild: bool) -> Path:
    folder = OUT / f"demo-p{patients}-s{SEED}"
    db_path = folder / "bench.duckdb"
    marker = folder / "done.json"
    if db_path.exists() and marker.exists() and not rebuild:
        info = json.loads(marker.read_text())
        print(f"reusing {db_path} ({info['visits']:,} visits, {info['patients']:,} patients)")
        return db_path
    demo = demo_module()
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (db_path, Path(str(db_path) + ".wal"), marker):
        stale.unlink(missing_ok=True)
    t = time.perf_counter()
    files = demo.generate_demo(folder, patients=patients, seed=SEED, messy=False)
    print(f"demo: {files.visit_rows:,} visit rows, {files.medication_rows:,} medication rows "
          f"({time.perf_counter() - t:.1f} s)")
    t = time.perf_counter()
    con = db.connect(db_path)
    try:
        summary = ingest_files(con, [files.sessions, files.medications],
                                      ingest_date=INGEST_DATE)
        visits = con.execute("SELECT count(*) FROM visits").fetchone()[0]
    finally:
        con.close()
    for f in summary.files:
        if f.status != "ingested" or f.rows_quarantined:
            sys.exit(f"ingest of {f.path} failed: {f.status} {f.error or ''} "
                     f"({f.rows_quarantined} quarantined)")
    print(f"ingest: {visits:,} visits ({time.perf_counter() - t:.1f} s)")
    marker.write_text(json.dumps({"visits": visits, "patients": patients}))
    return db_path


# --------------------------------------------------------------------------
# timing


def timed(action, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - t)
    return times, result


def compare(engine: pd.DataFrame, reference: pd.DataFrame) -> int:
    keys = ["timepoint", "definition", "population", "group"]
    merged = engine[[*keys, "n", "responders"]].merge(
        reference, on=keys, how="outer", suffixes=("_engine", "_pandas"), indicator=True)
    # Cells the pandas side never emits (a condition with no treated patient
    # in the filters) have n = 0 in the engine; there are none without filters.
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"].head()
    bad = merged[(merged["n_engine"] != merged["n_pandas"])
                 | (merged["responders_engine"] != merged["responders_pandas"])]
    assert bad.empty, f"engine and pandas disagree in {len(bad)} cells:\n{bad.head(20)}"
    return len(merged)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, help="demo patients (default: calibrated)")
    parser.add_argument("--visits", type=int, default=1_000_000,
                        help="visit rows to aim for when --patients is not given")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true", help="regenerate the demo database")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    patients = args.patients or calibrate(args.visits)
    db_path = build_database(patients, args.rebuild)

    t = time.perf_counter()
    snap = store.Snapshot(db_path)
    cold = time.perf_counter() - t
    visits = snap.scalar("SELECT count(*) FROM visits")
    treated = snap.scalar("SELECT count(*) FROM patients WHERE treated")
    outcome_rows = snap.scalar("SELECT count(*) FROM patient_outcomes")
    print(f"\ndatabase: {visits:,} visits, {treated:,} treated patients, "
          f"{outcome_rows:,} patient_outcomes rows")
    print(f"snapshot build (cold):        {cold:8.3f} s")

    outcomes.responder_grid(snap)                                   # warm-up
    grid_times, grid = timed(lambda: outcomes.responder_grid(snap), args.repeat)
    counts_times, _ = timed(lambda: outcomes.counts_by_condition(snap), args.repeat)
    grid_s = statistics.median(grid_times)
    print(f"responder_grid (warm):        {grid_s:8.3f} s median of {args.repeat} "
          f"({len(grid)} cells; counts query alone {statistics.median(counts_times):.3f} s)")

    read_times, (raw_visits, raw_medications) = timed(lambda: read_raw(db_path), args.repeat)
    pandas_times, reference = timed(lambda: pandas_grid(raw_visits, raw_medications),
                                    args.repeat)
    read_s, pandas_s = statistics.median(read_times), statistics.median(pandas_times)
    print(f"pandas from raw visits:       {pandas_s:8.3f} s median of {args.repeat} "
          f"(+ {read_s:.3f} s to read the tables)")

    cells = compare(grid, reference)
    print(f"engine == pandas in all {cells} cells (n and responders)")
    ratio = pandas_s / grid_s
    print(f"speed ratio pandas / engine:  {ratio:8.1f}x  "
          f"(with the read: {(pandas_s + read_s) / grid_s:.1f}x)")
    ok_grid, ok_ratio = grid_s < GRID_TARGET_S, ratio >= SPEEDUP_TARGET
    print(f"targets: grid < {GRID_TARGET_S:g} s {'met' if ok_grid else 'MISSED'}; "
          f">= {SPEEDUP_TARGET:g}x faster than pandas {'met' if ok_ratio else 'MISSED'}")
    snap.close()
    return 0 if ok_grid and ok_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
