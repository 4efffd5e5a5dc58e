"""Benchmark: our import of a FHIR R4 Bulk Data export against DuckDB's bare
``read_json`` of the same files.

    python bench/bench_fhir.py [--observations 1000000] [--repeat 3] [--out bench/out]

Writes the demo clinic as a FHIR export (``demo --format fhir``, with its
noise) holding at least ``--observations`` Observation resources (cached in
``--out`` between runs), then, ``--repeat`` times, alternating:

  (a) bare read: a fresh DuckDB file, for every NDJSON file of the export
      ``CREATE TABLE t AS SELECT * FROM read_json(path, sample_size = -1)``
      (DuckDB detects the schema from every line and reads every field), close;
  (b) our import: a fresh DuckDB file, ``analysis.storage.db.connect`` (schema),
      ``analysis.ingest.pipeline.ingest_files`` on the export's folder (checks,
      mapping, visits, medication rows, quarantine, log: one transaction),
      close.

Prints resources/s of each run, the medians and the ratio import/bare
(target <= 3x), by wall time and by CPU time (the CPU ratio is the steadier
one on a busy machine).  The machine's load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb

from analysis.storage import db
from analysis.ingest.pipeline import ingest_files
from analysis.ingest.ingest_log import FileResult

OBSERVATIONS_PER_PATIENT_GUESS = 60.0


def demo_export(out: Path, observations: int) -> Path:
    """A FHIR demo export with at least ``observations`` Observations (cached)."""
    from analysis.ingest.demo.generate import generate_demo
    out.mkdir(parents=True, exist_ok=True)
    calibration = out / "fhir_calibration" / "observations_per_patient.txt"
    if not calibration.exists():
        sample = generate_demo(out / "fhir_calibration", patients=1000, seed=1, format="fhir")
        calibration.write_text(str(sample.resources["Observation"] / sample.patients))
    per_patient = float(calibration.read_text()) or OBSERVATIONS_PER_PATIENT_GUESS
    patients = max(1, int(observations / per_patient * 1.05) + 1)
    target = out / f"fhir_demo_{patients}p_seed1"
    marker = target / "resources.txt"
    if marker.exists():
        print(f"using cached export {target}")
        return target
    print(f"generating a FHIR demo export of {patients:,} patients (>= {observations:,} "
          "Observations) ...", flush=True)
    started = time.perf_counter()
    files = generate_demo(target, patients=patients, seed=1, format="fhir")
    marker.write_text(repr(files.resources))
    print(f"  {files.resources} in {time.perf_counter() - started:.1f} s")
    return target


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare(files: list[Path], folder: Path) -> tuple[float, float]:
    path = folder / "bare.duckdb"
    start_wall, start_cpu = time.perf_counter(), cpu()
    con = duckdb.connect(str(path))
    for number, f in enumerate(files):
        # sample_size=-1: the schema from every line (the default sample misses
        # fields that appear late, and the read fails)
        con.execute(f"CREATE TABLE t{number} AS SELECT * FROM read_json('{f}', sample_size = -1)")
    con.close()
    elapsed = time.perf_counter() - start_wall, cpu() - start_cpu
    for p in folder.glob("bare.duckdb*"):
        p.unlink()
    return elapsed


def ours(export: Path, folder: Path) -> tuple[float, float, FileResult]:
    path = folder / "ours.duckdb"
    start_wall, start_cpu = time.perf_counter(), cpu()
    con = db.connect(path)
    summary = ingest_files(con, [export])
    con.close()
    elapsed = time.perf_counter() - start_wall, cpu() - start_cpu
    for p in folder.glob("ours.duckdb*"):
        p.unlink()
    result = summary.files[0]
    if result.status != "ingested":
        raise SystemExit(f"import failed: {result.error}")
    return (*elapsed, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args()
    os.environ.setdefault("OUTCOMES_SECRETS_DIR", tempfile.mkdtemp(prefix="bench-keys-"))

    export = demo_export(Path(args.out), args.observations)
    files = sorted(export.glob("*.ndjson"))
    size = sum(f.stat().st_size for f in files)
    work = Path(tempfile.mkdtemp(prefix="bench-fhir-"))
    bare_runs, our_runs = [], []
    resources = 0
    try:
        for run in range(1, args.repeat + 1):
            b = bare(files, work)
            o_wall, o_cpu, result = ours(export, work)
            resources = result.rows_read
            bare_runs.append(b)
            our_runs.append((o_wall, o_cpu))
            print(f"run {run}: bare read_json {b[0]:6.2f} s wall {b[1]:6.2f} s cpu | "
                  f"our import {o_wall:6.2f} s wall {o_cpu:6.2f} s cpu | "
                  f"{resources / o_wall:,.0f} resources/s | load {os.getloadavg()[0]:.2f}",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = lambda runs, i: statistics.median(r[i] for r in runs)  # noqa: E731
    print(f"\nexport: {export} ({len(files)} NDJSON files, {size / 2**20:,.0f} MB, "
          f"{resources:,} resources; {result.details['visits']:,} visits, "
          f"{result.details['medication_rows']:,} medication rows)")
    print(f"medians over {args.repeat} runs: bare read_json {med(bare_runs, 0):.2f} s "
          f"({resources / med(bare_runs, 0):,.0f} resources/s), our import "
          f"{med(our_runs, 0):.2f} s ({resources / med(our_runs, 0):,.0f} resources/s)")
    print(f"ratio import/bare: {med(our_runs, 0) / med(bare_runs, 0):.2f}x wall, "
          f"{med(our_runs, 1) / med(bare_runs, 1):.2f}x cpu (target <= 3x); "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
