"""Benchmark of issue 20: the product and its peer side by side, in one run.

    python bench/bench_perf.py [--visits 1000000] [--rebuild-visits 1000000,10000000]
                               [--repeat 3] [--steps ingest,claim,rebuild,page]

Every measurement is its own child process, so each reports its own peak
memory (``ru_maxrss`` from ``os.wait4``); product and peer alternate within
each repeat (the machine is shared: interleaving spreads the noise over
both), and the summary gives medians, ratios and peak memory.

ingest   the session export of ``--visits`` rows (clean demo data):
         ``ingest_file`` into a fresh file, whole process, vs a bare DuckDB
         ``CREATE TABLE t AS SELECT * FROM read_csv(...)`` of the same file
         (a whole process too).  The child also times the steps inside
         (import, schema, prepare, scan, checks and writes, commit) and
         both report their CPU seconds (steadier than wall time on a
         shared machine).
claim    ``python -m analysis claim --json`` whole process vs
         ``bench/pandas_claim.py`` (plain pandas, same 48 cells, whole
         process) on a database of both exports; the n and responders of every
         cell are compared.
rebuild  at each of ``--rebuild-visits``: a database of 99% of the visits (the
         earliest) and every medication, its models saved; then, per repeat,
         on a fresh copy: the 1% ingest (the latest visits), the saved
         models' update and a fresh process's snapshot ready to query, each
         its own process (time, CPU, peak memory) -- the product: update +
         snapshot -- vs the peer, the same snapshot rebuilding every model
         from scratch (``OUTCOMES_SAVED_MODELS=off``); and the ingest command
         as a clinic runs it (load, then the update) vs the load alone.
page     at ``--visits``: a dashboard (AppTest) shows the default page, a 1%
         ingest lands, the dashboard builds the new snapshot in the background
         as it does for a visitor (and warms every page's default view before
         serving it, ``ui/warm.py``), then a new visitor opens each page (every
         clinical page, and marketing's Claim check): the time from the
         ingest's end to the new snapshot being served, and each page's first
         view.  The peer is the same with the warm-up off
         (``OUTCOMES_WARM_PAGES=off``).

Exports are cached under ``--out``; databases are rebuilt on every run (the
code under test writes them), except rebuild's 99% base, cached in ``--out``/work
while the code that writes it and the exports are unchanged (each repeat
copies it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
PY = sys.executable


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


LAST_CPU = [0.0]   # CPU seconds (user + system) of the last child run


def run(args: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """A child process: wall seconds, peak RSS (bytes), stdout.  Fails loudly."""
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=err,
                                env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        LAST_CPU[0] = usage.ru_utime + usage.ru_stime
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0,):
        sys.exit(f"failed (exit {code}): {' '.join(args)}\n{stdout[-2000:]}\n{stderr[-3000:]}")
    return seconds, usage.ru_maxrss * 1024, stdout


def child(*args: str) -> list[str]:
    return [PY, str(Path(__file__).resolve()), "--child", *args]


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def fresh(path: Path) -> Path:
    for candidate in (path, Path(str(path) + ".wal")):
        candidate.unlink(missing_ok=True)
    return path


def copy_db(source: Path, target: Path) -> Path:
    fresh(target)
    shutil.copyfile(source, target)
    if Path(str(source) + ".wal").exists():
        shutil.copyfile(str(source) + ".wal", str(target) + ".wal")
    return target


class Table:
    """Rows of (step, product, peer) medians, printed at the end."""

    def __init__(self):
        self.rows: list[tuple] = []

    def add(self, step, product_name, product_s, product_rss, peer_name, peer_s, peer_rss,
            note=""):
        self.rows.append((step, product_name, product_s, product_rss, peer_name, peer_s,
                          peer_rss, note))
        self.print_row(self.rows[-1])

    @staticmethod
    def print_row(row):
        step, pn, ps, pr, qn, qs, qr, note = row
        med_p, med_q = statistics.median(ps), statistics.median(qs)
        print(f"  {step}\n"
              f"    product {pn}: median {med_p:.2f} s of {', '.join(f'{s:.2f}' for s in ps)}"
              f"; peak {mib(max(pr))}\n"
              f"    peer    {qn}: median {med_q:.2f} s of {', '.join(f'{s:.2f}' for s in qs)}"
              f"; peak {mib(max(qr))}\n"
              f"    ratio product/peer {med_p / med_q:.2f}x (peer/product {med_q / med_p:.1f}x)"
              + (f"\n    {note}" if note else ""), flush=True)


# --------------------------------------------------------------------------
# data


def exports(out: Path, visits: int) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(BENCH))
    from bench_ingest import demo_export
    sessions = demo_export(out, visits)
    return sessions, sessions.with_name("medications.csv")


def split_sessions(sessions: Path, folder: Path) -> tuple[Path, Path]:
    """99% of the visit rows (the earliest) and the latest 1%, as two exports.
    Written by a child process: a parent grown by the split would count in
    every later child's peak memory (``ru_maxrss`` includes the memory the
    child had before its exec, a copy of the parent's)."""
    base, increment = folder / "sessions_99.csv", folder / "sessions_1.csv"
    if base.exists() and increment.exists() and base.stat().st_mtime > sessions.stat().st_mtime:
        return base, increment
    run(child("split", str(sessions), str(base), str(increment)))
    return base, increment


def child_split(sessions: str, base: str, increment: str) -> None:
    import duckdb
    con = duckdb.connect()
    con.execute(f"""CREATE TABLE s AS SELECT *, row_number() OVER (ORDER BY visit_date, patient_id)
                    AS bench_rank FROM read_csv('{sessions}', all_varchar = true)""")
    total = con.execute("SELECT count(*) FROM s").fetchone()[0]
    cut = int(total * 0.99)
    for path, where in ((base, f"bench_rank <= {cut}"), (increment, f"bench_rank > {cut}")):
        con.execute(f"COPY (SELECT * EXCLUDE (bench_rank) FROM s WHERE {where} "
                    f"ORDER BY bench_rank) TO '{path}' (HEADER)")
    con.close()


def ingest_cli(db_path: Path, *files: Path, env: dict | None = None) -> tuple[float, int, str]:
    return run([PY, "-m", "analysis", "ingest", *map(str, files), "--db", str(db_path)], env=env)


# --------------------------------------------------------------------------
# children (each measured in its own process)


def _cpu_seconds() -> float:
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_bare(csv: str, db_path: str) -> None:
    import duckdb
    started = time.perf_counter()
    con = duckdb.connect(str(fresh(Path(db_path))))
    con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [csv])
    con.close()
    print(json.dumps({"load": time.perf_counter() - started, "cpu": _cpu_seconds()}))


def child_ingest(csv: str, db_path: str) -> None:
    """One ingest in this fresh process, with its split: importing the
    engine, opening the file (schema), reading the export's fingerprint and
    header (prepare), the load, and the log, commit and close (commit).  A
    clean export is loaded in one pass straight into ``visits`` (the read
    and the checks after it: scan); one that needs the careful path is
    staged (scan) and then checked and written (checks)."""
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    from analysis.storage import db
    from analysis.ingest import pipeline
    imported = time.perf_counter()
    marks: dict[str, float] = {}

    def timed(name, function):
        def run_timed(*args, **kwargs):
            marks[name + " start"] = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                marks[name + " end"] = time.perf_counter()
        return run_timed

    pipeline.stage = timed("scan", pipeline.stage)
    pipeline.clean_sessions.load = timed("scan", pipeline.clean_sessions.load)
    for name in ("load_sessions", "load_medications"):
        setattr(pipeline, name, timed("checks", getattr(pipeline, name)))
    with db.writer(fresh(Path(db_path))) as con:
        opened = time.perf_counter()
        result = pipeline.ingest_file(con, csv)
    done = time.perf_counter()
    assert result.status == "ingested", result.error
    print(json.dumps({"import": imported - started, "schema": opened - imported,
                      "prepare": marks["scan start"] - opened,
                      "scan": marks["scan end"] - marks["scan start"],
                      "checks": marks.get("checks end", 0) - marks.get("checks start", 0),
                      "commit": done - marks.get("checks end", marks["scan end"]),
                      "ingest": done - imported, "cpu": _cpu_seconds(),
                      "rows": result.rows_read}))


def child_snapshot(db_path: str) -> None:
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    from analysis.storage import store
    imported = time.perf_counter()
    snap = store.Snapshot(db_path)
    snap.scalar("SELECT count(*) FROM patient_outcomes WHERE responder")
    ready = time.perf_counter()
    built = [k for k in snap.build_timings if k.startswith("model ")]
    print(json.dumps({"import": imported - started, "ready": ready - imported,
                      "models_built": len(built),
                      "steps": {k: round(v, 3) for k, v in snap.build_timings.items()}}))


def child_page(db_path: str, increment: str) -> None:
    """Default page, 1% ingest, background rebuild as the dashboard does it
    (built, then warmed unless OUTCOMES_WARM_PAGES=off), then the first view
    of every page after the new data, each by a new visitor (dashboard.py
    and the page, as a browser's first request runs them)."""
    import logging
    sys.path.insert(0, str(ROOT))
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    os.environ["OUTCOMES_DB"] = db_path
    from streamlit.testing.v1 import AppTest

    from analysis.storage import db, store
    from analysis.ingest.pipeline import ingest_file
    from tests.helpers.apptest import signed_in
    from ui.pages import pages_for

    # A Streamlit server looks for installed components once, when it starts;
    # AppTest does it for every new AppTest (about 0.4 s of CPU here, reading
    # the metadata of every installed package), which is no part of a
    # visitor's view: every visitor here shares the first one's, as a
    # server's sessions do.
    components = []

    def visit(page: str | None = None, role: str = "clinical") -> float:
        app = signed_in(AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=600), role)
        if components:
            app._bidi_component_manager = components[0]
        if page:
            app.switch_page(page)
        started = time.perf_counter()
        app.run()
        assert not app.exception, app.exception[0].message
        seconds = time.perf_counter() - started
        if not components and app._bidi_component_manager is not None:
            components.append(app._bidi_component_manager)
        return seconds

    before_first = visit()
    old = store.snapshot(db_path).version
    with db.writer(db_path) as con:
        result = ingest_file(con, increment)
    assert result.status == "ingested", result.error
    ingested = time.perf_counter()
    # What a visitor's run does on new data: serve the old snapshot, build the
    # new one in the background (and, where the product does it, warm it).
    store.snapshot(db_path, warm=True, background=True)
    while True:
        snap = store.snapshot(db_path, warm=True, background=True)
        if snap.version != old and not store.building(db_path):
            break
        time.sleep(0.02)
    served = time.perf_counter()
    views = {"clinical " + spec.title: visit(spec.path) for spec in pages_for("clinical")}
    views["marketing " + pages_for("marketing")[0].title] = visit(None, "marketing")
    again = visit()
    print(json.dumps({"default_page_first_run": before_first, "snapshot_served": served - ingested,
                      "repeat_view": again, "views": views}))


# --------------------------------------------------------------------------
# steps


def step_ingest(args, table: Table) -> None:
    sessions, _ = exports(args.out, args.visits)
    print(f"\n[ingest] {sessions} ({sessions.stat().st_size / 1e6:.0f} MB), load {load()}",
          flush=True)
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    ours, bare, inside, bare_inside = [], [], [], []
    for run_number in range(args.repeat):
        # (measured: each child's own peak memory, not this process's)
        seconds, rss, _, out = measured(child("bare", str(sessions), str(work / "bare.duckdb")),
                                        work)
        bare.append((seconds, rss))
        bare_inside.append(last_json(out))
        seconds, rss, _, out = measured(
            child("ingest", str(sessions), str(work / "ingest.duckdb")), work)
        ours.append((seconds, rss))
        inside.append(last_json(out))
        print(f"  run {run_number + 1}: bare {bare[-1][0]:.2f} s (CPU {bare_inside[-1]['cpu']:.2f} s)"
              f", ingest {seconds:.2f} s "
              f"({json.dumps({k: round(v, 2) for k, v in inside[-1].items()})}), load {load()}",
              flush=True)
    median = lambda key: statistics.median(r[key] for r in inside)  # noqa: E731
    bare_cpu = statistics.median(r["cpu"] for r in bare_inside)
    table.add(f"ingest {inside[-1]['rows']:,} session rows (whole process)",
              "ingest_file, fresh process", [s for s, _ in ours], [r for _, r in ours],
              "duckdb read_csv into a table", [s for s, _ in bare], [r for _, r in bare],
              note=f"inside the ingest process: import {median('import'):.2f} s, schema "
                   f"{median('schema'):.2f} s, prepare {median('prepare'):.2f} s, scan "
                   f"{median('scan'):.2f} s, checks and writes {median('checks'):.2f} s, commit "
                   f"{median('commit'):.2f} s; CPU seconds {median('cpu'):.2f} vs bare "
                   f"{bare_cpu:.2f} ({median('cpu') / bare_cpu:.2f}x)")
    for name in ("bare.duckdb", "ingest.duckdb"):
        fresh(work / name)


def children_cpu() -> float:
    """CPU seconds (user + system) of every child this process has waited for."""
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(argv: list[str], work: Path) -> tuple[float, int, float, str]:
    """One whole process: wall seconds, its own peak RSS, CPU seconds, stdout.

    A child's ``ru_maxrss`` (what :func:`run` reports) keeps the high-water
    mark of the process it was forked from, this one, which holds the
    exports it generated (580 MiB at 1M visits): so GNU time runs the
    command and reports the command's own peak and CPU.  Without
    ``/usr/bin/time``, :func:`run`'s figures (the peak may be this process's)."""
    before = children_cpu()
    if not Path("/usr/bin/time").exists():
        seconds, rss, out = run(argv)
        return seconds, rss, children_cpu() - before, out
    report = work / "time.txt"
    seconds, _, out = run(["/usr/bin/time", "-f", "%M %U %S", "-o", str(report), *argv])
    kib, user, system = report.read_text().split()[-3:]
    return seconds, int(kib) * 1024, float(user) + float(system), out


def step_claim(args, table: Table) -> None:
    sessions, medications = exports(args.out, args.visits)
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    db_path = fresh(work / "claim.duckdb")
    print(f"\n[claim] ingesting both exports into {db_path}, load {load()}", flush=True)
    ingest_cli(db_path, sessions, medications)
    ours, peer = [], []      # (wall s, peak RSS, CPU s) of each whole process
    for run_number in range(args.repeat):
        *result, out_ours = measured([PY, "-m", "analysis", "claim", "--json", "--db",
                                      str(db_path)], work)
        ours.append(tuple(result))
        *result, out_peer = measured([PY, str(BENCH / "pandas_claim.py"), "--db", str(db_path)],
                                     work)
        peer.append(tuple(result))
        print(f"  run {run_number + 1}: claim --json {ours[-1][0]:.2f} s (CPU {ours[-1][2]:.2f} s),"
              f" pandas {peer[-1][0]:.2f} s (CPU {peer[-1][2]:.2f} s), load {load()}", flush=True)
    key = lambda c: (c["timepoint"], c["definition"], c["population"])  # noqa: E731
    a = {key(c): (c["n"], c["responders"]) for c in json.loads(out_ours)["sensitivity"]}
    b = {key(c): (c["n"], c["responders"]) for c in json.loads(out_peer)["sensitivity"]}
    same = "the same n and responders in all %d cells" % len(a) if a == b and len(a) == 48 \
        else f"DIFFERENT cells: {sorted(k for k in a if a[k] != b.get(k))[:5]}"
    cpu_ours = statistics.median(c for *_, c in ours)
    cpu_peer = statistics.median(c for *_, c in peer)
    table.add(f"claim --json, 48-cell grid (whole process), {args.visits:,} visits",
              "python -m analysis claim --json",
              [s for s, *_ in ours], [r for _, r, _ in ours], "plain pandas (bench/pandas_claim.py)",
              [s for s, *_ in peer], [r for _, r, _ in peer],
              note=f"{same}; CPU seconds median {cpu_ours:.2f} vs {cpu_peer:.2f} "
                   f"(peer/product {cpu_peer / cpu_ours:.1f}x)")
    fresh(db_path)


def child_models(db_path: str) -> None:
    """The models' update after an ingest, as ``ingest_files`` ends it."""
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    from analysis.storage import db, saved_models
    from analysis.ingest.pipeline import refresh_saved_models
    imported = time.perf_counter()
    with db.writer(db_path) as con:
        kind = refresh_saved_models(con)
    done = time.perf_counter()
    print(json.dumps({"import": imported - started, "update": done - imported, "kind": kind,
                      "steps": {k: round(v, 3) for k, v in saved_models.last_timings.items()}}))


def step_rebuild(args, table: Table, visits: int) -> None:
    """Per repeat, on fresh copies of the 99% base (models saved by its
    ingest): the 1% ingest alone (saving off), then the models' update
    (its own process), then a fresh process's snapshot ready to query; the
    peer is that snapshot rebuilding every model (saving off).  Also the
    1% ingest command as a clinic runs it (load, then the update) against
    the same command with saving off."""
    sessions, medications = exports(args.out, visits)
    base_csv, increment = split_sessions(sessions, sessions.parent)
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    off = {"OUTCOMES_SAVED_MODELS": "off"}
    print(f"\n[rebuild {visits:,}] base database: 99% of visits + medications, load {load()}",
          flush=True)
    base = rebuild_base(work, visits, base_csv, medications)
    target = work / f"rebuild_{visits}.duckdb"
    parts: dict[str, list[tuple[float, int, float]]] = {
        "ingest": [], "update": [], "snapshot": [], "peer": [], "command": []}
    inner: list[dict] = []

    def measure(name, seconds, rss):
        parts[name].append((seconds, rss, LAST_CPU[0]))

    for run_number in range(args.repeat):
        copy_db(base, target)
        measure("ingest", *ingest_cli(target, increment, env=off)[:2])
        seconds, rss, out = run(child("models", str(target)))
        measure("update", seconds, rss)
        inner.append(last_json(out))
        assert inner[-1]["kind"] == "incremental", inner[-1]
        seconds, rss, out = run(child("snapshot", str(target)))
        measure("snapshot", seconds, rss)
        built = last_json(out)["models_built"]
        seconds, rss, out = run(child("snapshot", str(target)), env=off)
        measure("peer", seconds, rss)
        copy_db(base, target)
        measure("command", *ingest_cli(target, increment)[:2])
        print(f"  run {run_number + 1}: 1% ingest {parts['ingest'][-1][0]:.2f} s, model update "
              f"{parts['update'][-1][0]:.2f} s ({inner[-1]['steps'].get('changed patients', 0):.0f}"
              f" patients), snapshot {parts['snapshot'][-1][0]:.2f} s ({built} models built); "
              f"full-rebuild snapshot {parts['peer'][-1][0]:.2f} s; the ingest command with "
              f"the update {parts['command'][-1][0]:.2f} s; load {load()}", flush=True)

    def summary(name):
        runs = parts[name]
        return (f"{name} median {statistics.median(r[0] for r in runs):.2f} s "
                f"(CPU {statistics.median(r[2] for r in runs):.2f} s, "
                f"peak {mib(max(r[1] for r in runs))})")

    ours = [u[0] + s[0] for u, s in zip(parts["update"], parts["snapshot"])]
    table.add(f"rebuild after a 1% ingest at {visits:,} visits: model update + fresh "
              "process's snapshot ready", "saved models updated, then copied", ours,
              [max(u[1], s[1]) for u, s in zip(parts["update"], parts["snapshot"])],
              "snapshot rebuilding every model", [p[0] for p in parts["peer"]],
              [p[1] for p in parts["peer"]],
              note="; ".join(summary(n) for n in ("ingest", "update", "snapshot", "peer"))
                   + f"; inside the update (last run): {json.dumps(inner[-1]['steps'])}")
    table.add(f"the 1% ingest command at {visits:,} visits", "load + model update",
              [c[0] for c in parts["command"]], [c[1] for c in parts["command"]],
              "load only (OUTCOMES_SAVED_MODELS=off)", [i[0] for i in parts["ingest"]],
              [i[1] for i in parts["ingest"]])
    fresh(target)


def rebuild_base(work: Path, visits: int, base_csv: Path, medications: Path) -> Path:
    """The 99% base database with its models saved, cached in ``work`` (its
    ingest and full model build take minutes at ten million visits): reused
    while the code that writes it (``analysis/storage`` but its readers,
    ``analysis/ingest``, the models' SQL) and the exports are the same; every
    repeat works on a copy of it."""
    digest = hashlib.sha256()
    readers = {"store.py", "scratch.py", "queries.py"}
    for path in sorted([*(p for p in (ROOT / "analysis" / "storage").glob("*.py")
                          if p.name not in readers),
                        *(ROOT / "analysis" / "ingest").rglob("*.py"),
                        *(ROOT / "analysis" / "sql").rglob("*.sql"),
                        *(ROOT / "analysis" / "sql").rglob("*.toml")]):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    for export in (base_csv, medications):
        stat = export.stat()
        digest.update(f"{export.name} {stat.st_size} {stat.st_mtime_ns}".encode())
    base = work / f"base_{visits}_{digest.hexdigest()[:16]}.duckdb"
    if base.exists() and not Path(str(base) + ".building").exists():
        print(f"  reusing the cached base {base.name} (same code and exports)", flush=True)
        return base
    for stale in work.glob(f"base_{visits}_*.duckdb*"):
        stale.unlink()
    marker = Path(str(base) + ".building")
    marker.touch()
    seconds, rss, _ = ingest_cli(fresh(base), base_csv, medications)
    marker.unlink()
    print(f"  base ingested (models saved) in {seconds:.1f} s (peak {mib(rss)}), cached as "
          f"{base.name}", flush=True)
    return base


def step_page(args, table: Table) -> None:
    sessions, medications = exports(args.out, args.visits)
    base_csv, increment = split_sessions(sessions, sessions.parent)
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    base = fresh(work / "page_base.duckdb")
    print(f"\n[page] base database, load {load()}", flush=True)
    ingest_cli(base, base_csv, medications)
    target = work / "page.duckdb"
    runs = {"warm": [], "cold": []}
    for run_number in range(args.repeat):
        # The product warms every page before serving new data; the peer is the
        # same dashboard with the warm-up off (each visitor computes their page).
        for kind, env in (("warm", {}), ("cold", {"OUTCOMES_WARM_PAGES": "off"})):
            copy_db(base, target)
            cpu = os.times()
            seconds, rss, out = run(child("page", str(target), str(increment)), env=env)
            cpu_seconds = sum(os.times()[2:4]) - sum(cpu[2:4])
            result = last_json(out)
            runs[kind].append((seconds, rss, result, cpu_seconds))
            views = result["views"]
            worst = max(views, key=views.get)
            print(f"  run {run_number + 1} {kind}: snapshot served {result['snapshot_served']:.2f} s"
                  f" after the ingest; first views: default {views['clinical Overview']:.2f} s, "
                  f"slowest {worst} {views[worst]:.2f} s, all {sum(views.values()):.2f} s; "
                  f"peak {mib(rss)}, child CPU {cpu_seconds:.0f} s, load {load()}", flush=True)
    pages = list(runs["warm"][0][2]["views"])
    print("  first view of each page after new data (median s, warm-up vs none):")
    for page in pages:
        print(f"    {page:36} " + "  ".join(
            f"{statistics.median(r[2]['views'][page] for r in runs[kind]):6.2f}"
            for kind in ("warm", "cold")))
    peaks = {kind: [r[1] for r in runs[kind]] for kind in runs}
    served = [r[2]["snapshot_served"] for r in runs["warm"]]
    served_cold = [r[2]["snapshot_served"] for r in runs["cold"]]
    table.add(f"first view of the default page after new data ({args.visits:,} visits, AppTest)",
              "warm-up", [r[2]["views"]["clinical Overview"] for r in runs["warm"]], peaks["warm"],
              "no warm-up", [r[2]["views"]["clinical Overview"] for r in runs["cold"]],
              peaks["cold"])
    table.add(f"slowest first view of the {len(pages)} pages after new data",
              "warm-up", [max(r[2]["views"].values()) for r in runs["warm"]], peaks["warm"],
              "no warm-up", [max(r[2]["views"].values()) for r in runs["cold"]], peaks["cold"],
              note=f"ingest end -> new snapshot served: warm-up median "
                   f"{statistics.median(served):.2f} s of {', '.join(f'{s:.2f}' for s in served)}"
                   f"; no warm-up {statistics.median(served_cold):.2f} s")
    fresh(target)
    fresh(base)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=1_000_000)
    parser.add_argument("--rebuild-visits", default="1000000,10000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", default="ingest,claim,rebuild,page")
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        {"bare": child_bare, "ingest": child_ingest, "snapshot": child_snapshot,
         "page": child_page, "models": child_models,
         "split": child_split}[kind](*rest)
        return 0
    import duckdb
    print(f"duckdb {duckdb.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load {load()}; repeats {args.repeat}", flush=True)
    table = Table()
    steps = args.steps.split(",")
    if "ingest" in steps:
        step_ingest(args, table)
    if "claim" in steps:
        step_claim(args, table)
    if "rebuild" in steps:
        for visits in (int(v) for v in args.rebuild_visits.split(",") if v):
            step_rebuild(args, table, visits)
    if "page" in steps:
        step_page(args, table)
    print("\n" + "=" * 78 + f"\nsummary (medians of {args.repeat}; load now {load()})")
    for row in table.rows:
        Table.print_row(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
