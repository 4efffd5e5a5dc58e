"""Benchmark: our ingest of a session export against DuckDB's bare CSV load.

    python bench/bench_ingest.py [--rows 1000000] [--repeat 3] [--out bench/out]

Writes a clean demo export of about ``--rows`` visit rows (cached in
``--out`` between runs), then, ``--repeat`` times:

  (a) bare load: a fresh DuckDB file, ``CREATE TABLE t AS SELECT * FROM
      read_csv(path)``, close;
  (b) our ingest: a fresh DuckDB file, ``analysis.storage.db.connect`` (schema),
      ``analysis.ingest.pipeline.ingest_file``, close.

Prints rows/s of each run, the medians and the ratio ingest/bare (target
<= 2x), by wall time and by CPU time (the CPU ratio is the steadier one on
a busy machine).  ``--profile`` also prints the time of every SQL statement of one
more ingest, longest first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb

from analysis.storage import db
from analysis.ingest.pipeline import ingest_file
from analysis.ingest.ingest_log import FileResult

VISITS_PER_PATIENT_GUESS = 10.5


def demo_export(out: Path, rows: int) -> Path:
    """A clean demo session export of about ``rows`` rows (cached)."""
    from analysis.ingest.demo.generate import generate_demo
    out.mkdir(parents=True, exist_ok=True)
    # Calibrate visits per patient on a small clinic (once), then scale.
    calibration = out / "calibration" / "visits_per_patient.txt"
    if not calibration.exists():
        sample = generate_demo(out / "calibration", patients=2000, seed=1, messy=False)
        calibration.write_text(str(sample.visit_rows / sample.patients))
    per_patient = float(calibration.read_text()) or VISITS_PER_PATIENT_GUESS
    patients = max(1, round(rows / per_patient))
    target = out / f"demo_{patients}p_seed1"
    marker = target / "visit_rows.txt"
    if marker.exists() and (target / "sessions.csv").exists():
        print(f"using cached export {target / 'sessions.csv'}")
        return target / "sessions.csv"
    print(f"generating a demo export of {patients:,} patients (~{rows:,} visits) ...", flush=True)
    started = time.perf_counter()
    files = generate_demo(target, patients=patients, seed=1, messy=False)
    marker.write_text(str(files.visit_rows))
    print(f"  {files.visit_rows:,} visit rows in {time.perf_counter() - started:.1f} s")
    return Path(files.sessions)


def fresh(path: Path) -> Path:
    for candidate in (path, Path(str(path) + ".wal")):
        candidate.unlink(missing_ok=True)
    return path


def bare_load(csv_path: Path, db_path: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds (CPU: all threads of this process) and rows."""
    started, cpu = time.perf_counter(), time.process_time()
    con = duckdb.connect(str(fresh(db_path)))
    con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [str(csv_path)])
    rows = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
    con.close()
    return time.perf_counter() - started, time.process_time() - cpu, rows


def our_ingest(csv_path: Path, db_path: Path) -> tuple[float, float, FileResult]:
    started, cpu = time.perf_counter(), time.process_time()
    con = db.connect(fresh(db_path))
    result = ingest_file(con, csv_path, ingest_date=dt.date(2100, 1, 1))
    con.close()
    elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    if result.status != "ingested":
        raise SystemExit(f"ingest failed: {result.error}")
    return elapsed, used, result


class _TimedConnection:
    """Wraps a connection, timing every execute (for --profile)."""

    def __init__(self, con):
        self._con, self.timings = con, []

    def execute(self, sql, *args, **kwargs):
        started, cpu = time.perf_counter(), time.process_time()
        out = self._con.execute(sql, *args, **kwargs)
        self.timings.append((time.perf_counter() - started, time.process_time() - cpu,
                             " ".join(str(sql).split())[:100]))
        return out

    def __getattr__(self, name):
        return getattr(self._con, name)


def profile(csv_path: Path, db_path: Path) -> None:
    con = db.connect(fresh(db_path))
    timed = _TimedConnection(con)
    started = time.perf_counter()
    ingest_file(timed, csv_path, ingest_date=dt.date(2100, 1, 1))
    total = time.perf_counter() - started
    con.close()
    print(f"\nprofile of one ingest ({total:.2f} s, {len(timed.timings)} statements), "
          "wall and CPU seconds:")
    for seconds, cpu, sql in sorted(timed.timings, reverse=True)[:15]:
        print(f"  {seconds:7.3f} {cpu:7.3f}  {sql}")
    print(f"  {total - sum(s for s, _, _ in timed.timings):7.3f}          (outside SQL)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    parser.add_argument("--profile", action="store_true", help="time each SQL step of one ingest")
    args = parser.parse_args(argv)
    out = Path(args.out)
    csv_path = demo_export(out, args.rows)
    size = csv_path.stat().st_size
    print(f"export: {csv_path} ({size / 1e6:.0f} MB)")
    print(f"duckdb {duckdb.__version__}, python {sys.version.split()[0]}")

    bare_times, ingest_times, bare_cpu, ingest_cpu = [], [], [], []
    for run in range(1, args.repeat + 1):
        seconds, cpu, rows = bare_load(csv_path, out / "bare.duckdb")
        bare_times.append(seconds)
        bare_cpu.append(cpu)
        print(f"run {run}: bare load {rows:>9,} rows in {seconds:6.2f} s = "
              f"{rows / seconds:>10,.0f} rows/s   (CPU {cpu:5.2f} s)", flush=True)
        seconds, cpu, result = our_ingest(csv_path, out / "ingest.duckdb")
        ingest_times.append(seconds)
        ingest_cpu.append(cpu)
        print(f"run {run}: ingest    {result.rows_read:>9,} rows in {seconds:6.2f} s = "
              f"{result.rows_read / seconds:>10,.0f} rows/s   (CPU {cpu:5.2f} s; "
              f"{result.rows_accepted:,} accepted, {result.rows_quarantined:,} quarantined, "
              f"{result.duplicates_collapsed:,} collapsed, {result.values_nulled:,} values nulled)",
              flush=True)
    bare, ours = statistics.median(bare_times), statistics.median(ingest_times)
    print(f"median: bare {rows / bare:,.0f} rows/s ({bare:.2f} s), "
          f"ingest {result.rows_read / ours:,.0f} rows/s ({ours:.2f} s)")
    print(f"ratio ingest/bare: {ours / bare:.2f}x wall (target <= 2x), "
          f"{statistics.median(ingest_cpu) / statistics.median(bare_cpu):.2f}x CPU")
    if args.profile:
        profile(csv_path, out / "ingest.duckdb")
    for name in ("bare.duckdb", "ingest.duckdb"):
        fresh(out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
