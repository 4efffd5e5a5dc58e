"""Benchmark: each dashboard page's script run under AppTest, cold and warm.

    python bench/bench_pages.py [--patients 2000] [--big-patients 127500] [--repeat 3] [--skip-big]

"Cold" is the first run of a page with Streamlit's caches empty, shared
sidebar and status line included (the data snapshot, built once per data
version when the server starts or after an ingest, and its background
warm-up are timed on their own lines).  A page other than the default is reached by running the default
page, clearing every cache and switching, so its cold time is its own and
not the default page's as well.  "Warm" is the median of the following runs
in the same app.  ``--profile`` lists, per page, the ``analysis`` calls that
were computed (not cached) and their times, slowest first.

Streamlit 1.67's AppTest runs ``dashboard.py`` (sign-in check, shared
sidebar, status line) only in a session's first run and the page script
alone after that, so warm times, and the cold time of every page but the
default one, leave out that shared part: the default page's cold line
includes it (about 0.1 s of its analysis at 1M visits), and
``bench/load_test.py`` times whole runs on a real server.
Measured on the demo clinic and on a ~1,000,000-visit database.
Targets: every page < 2 s on demo data; on 1M visits < 5 s cold and < 1 s warm.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis.storage import db, store
from analysis.ingest.pipeline import ingest_files  # noqa: E402
from analysis.ingest.demo.generate import generate_demo  # noqa: E402
from ui.pages import PAGES  # noqa: E402

OUT = ROOT / "bench" / "out"


def build_db(patients: int, seed: int = 1) -> Path:
    path = OUT / f"pages_{patients}.duckdb"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        files = generate_demo(folder, patients=patients, seed=seed, messy=False)
        with db.writer(path) as con:
            summary = ingest_files(con, [files.sessions, files.medications])
        assert summary.ok
        print(f"  built {path.name}: {files.visit_rows:,} visits, {files.patients:,} patients",
              flush=True)
    return path


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def time_pages(db_path: Path, repeat: int, only: list[str] | None = None,
               profile: bool = False) -> list[tuple[str, float, float]]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.helpers.apptest import signed_in
    os.environ["OUTCOMES_DB"] = str(db_path)
    store.clear_cache()
    start = time.perf_counter()
    snap = store.snapshot(db_path, warm=True)
    print(f"  snapshot build (once per data version): {time.perf_counter() - start:.2f} s",
          flush=True)
    snap.warming.join()
    print(f"  snapshot warm-up in the background (fingerprint), done after: "
          f"{time.perf_counter() - start:.2f} s", flush=True)
    collect = _Collect()
    timing_log = logging.getLogger("outcomes.timing")
    if profile:
        timing_log.setLevel(logging.DEBUG)
        timing_log.addHandler(collect)
    results = []
    for spec in PAGES:
        if only and spec.title not in only:
            continue
        st.cache_data.clear()
        app = signed_in(AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=600))
        if not spec.default:
            app.run()
            app.switch_page(spec.path)
            st.cache_data.clear()
        collect.lines.clear()
        start = time.perf_counter()
        app.run()
        cold = time.perf_counter() - start
        if app.exception:
            raise RuntimeError(f"{spec.title}: {app.exception[0].message}")
        warm_runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            app.run()
            warm_runs.append(time.perf_counter() - start)
        results.append((spec.title, cold, statistics.median(warm_runs)))
        print(f"  {spec.title:<20} cold {cold:6.2f} s   warm {statistics.median(warm_runs):6.2f} s",
              flush=True)
        if profile:
            for line in sorted(collect.lines, key=lambda l: -float(l.split()[0]))[:8]:
                print(f"      {line}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--patients", type=int, default=2000, help="demo clinic size")
    parser.add_argument("--big-patients", type=int, default=127_500,
                        help="patients for the ~1M-visit database (~7.9 visits each)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--only", action="append", metavar="TITLE",
                        help="time only this page (repeatable)")
    parser.add_argument("--profile", action="store_true",
                        help="list each page's computed analysis calls, slowest first")
    args = parser.parse_args()
    sets = [] if args.skip_demo else [("demo", args.patients, 2.0, 2.0)]
    if not args.skip_big:
        sets.append(("1M visits", args.big_patients, 5.0, 1.0))
    for label, patients, cold_target, warm_target in sets:
        print(f"{label} ({patients:,} patients)", flush=True)
        results = time_pages(build_db(patients), args.repeat, args.only, args.profile)
        worst_cold = max(r[1] for r in results)
        worst_warm = max(r[2] for r in results)
        print(f"  slowest page: cold {worst_cold:.2f} s (target < {cold_target} s), "
              f"warm {worst_warm:.2f} s (target < {warm_target} s); "
              f"median cold {statistics.median(r[1] for r in results):.2f} s, "
              f"median warm {statistics.median(r[2] for r in results):.2f} s", flush=True)


if __name__ == "__main__":
    main()
