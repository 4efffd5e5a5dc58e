"""Command line: ``python -m analysis <command> ...``.

Exit codes: 0 success, 1 when a file was refused or the command could not do
its job (message on stderr), 2 on a usage error.  Never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analysis.storage import db
from analysis.core import definitions
from analysis.core.filters import quarter_bounds

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would exit with 2 itself; keep control
        raise UsageError(f"{self.prog}: {message}")


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _add_db(parser):
    parser.add_argument("--db", help="database file (default: $OUTCOMES_DB or data/outcomes.duckdb)")


def _add_filters(parser, cohort: bool = True):
    parser.add_argument("--site", action="append", default=[], help="only this site (repeatable)")
    parser.add_argument("--condition", action="append", default=[],
                        help="only this condition (repeatable)")
    parser.add_argument("--route", action="append", default=[], help="only this route (repeatable)")
    if cohort:
        parser.add_argument("--from-quarter", help="first cohort quarter, e.g. 2025Q1")
        parser.add_argument("--to-quarter", help="last cohort quarter, e.g. 2026Q2")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m analysis",
                     description="Outcomes analytics for ketamine chronic-pain programs.")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    ingest = commands.add_parser(
        "ingest", help="ingest session, medication or measurement exports, or a FHIR R4 export",
        description="Each CSV/TSV/XLSX/Parquet file is one export. FHIR R4 Bulk Data: a folder "
                    "or zip of *.ndjson files, or NDJSON/Bundle (.json) files given together, "
                    "is one export (one transaction).")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    _add_db(ingest)
    ingest.add_argument("--aliases", help="your own column aliases CSV (column,alias)")
    ingest.add_argument("--codes", help="your own FHIR code mappings CSV "
                                        "(table,system,code,maps_to; see README)")
    ingest.add_argument("--json", action="store_true", help="print one JSON object")

    demo = commands.add_parser("demo", help="write a synthetic clinic's exports")
    demo.add_argument("--out", default="demo_exports", help="folder to write (default demo_exports)")
    demo.add_argument("--patients", type=int, default=600)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--clean", action="store_true", help="no deliberately bad rows")
    demo.add_argument("--format", default="csv", choices=("csv", "fhir"),
                      help="csv: sessions.csv and medications.csv; fhir: a FHIR R4 Bulk Data "
                           "export (one NDJSON file per resource type)")

    for name, help_text in (("responders", "responder rates by condition"),
                            ("claim", "check the 70%% claim")):
        sub = commands.add_parser(name, help=help_text)
        _add_db(sub)
        sub.add_argument("--timepoint", default="3m", choices=definitions.TIMEPOINTS)
        sub.add_argument("--definition", default="pain30" if name == "responders" else "claim",
                         choices=definitions.DEFINITIONS)
        sub.add_argument("--population", default="itt", choices=definitions.POPULATIONS)
        sub.add_argument("--json", action="store_true")
        _add_filters(sub)
        if name == "responders":
            sub.add_argument("--ci", default="wilson", choices=definitions.CI_METHODS)
        else:
            sub.add_argument("--target", type=float, default=0.70)

    worklist = commands.add_parser(
        "worklist", help="who needs follow-up: open windows, missed follow-ups, stopped in "
                         "induction (patient ids: for the clinical team)")
    _add_db(worklist)
    worklist.add_argument("--json", action="store_true", help="print one JSON object")
    _add_filters(worklist)

    report = commands.add_parser("report", help="write the quarterly report (HTML, XLSX, PDF)")
    report.add_argument("--quarter", required=True, help="the quarter, e.g. 2026Q3")
    _add_db(report)
    report.add_argument("--audience", default="clinical",
                        choices=("clinical", "analyst", "external"),
                        help="external: the whole program, no count from 1 to 10 nor one "
                             "that reveals it; analyst: every count, adverse events by category")
    report.add_argument("--out", required=True, help="folder to write the files into")
    report.add_argument("--format", default="html,xlsx,pdf",
                        help="comma-separated formats among html, xlsx, pdf (default: all)")

    memo = commands.add_parser(
        "memo", help="write the claim substantiation memo (HTML, PDF)",
        description="The memo the Claim check page downloads, for the whole program: it is "
                    "meant for people outside the clinical team (small groups hidden, no "
                    "patient identifier), who see fixed tables rather than filtered views.")
    _add_db(memo)
    memo.add_argument("--target", type=float, default=0.70,
                      help="the claimed share, a proportion (default 0.70)")
    memo.add_argument("--timepoint", default="3m", choices=definitions.TIMEPOINTS)
    memo.add_argument("--definition", default="claim", choices=definitions.DEFINITIONS)
    memo.add_argument("--population", default="itt", choices=definitions.POPULATIONS)
    memo.add_argument("--out", required=True, help="folder to write the files into")
    memo.add_argument("--format", default="html,pdf",
                      help="comma-separated formats among html, pdf (default: both)")

    summary = commands.add_parser(
        "summary", help="write the director's one-page summary of a quarter (PDF, HTML)",
        description="Patients treated, the headline outcomes with their denominators and "
                    "intervals, what changed since the quarter before, safety and the "
                    "follow-up backlog, on one page.")
    _add_db(summary)
    summary.add_argument("--quarter", help="the quarter, e.g. 2026Q3 (default: the latest "
                                           "quarter that had ended by the data cutoff)")
    _add_filters(summary, cohort=False)   # the quarter sets the period
    summary.add_argument("--out", required=True, help="folder to write the files into")
    summary.add_argument("--format", default="pdf,html",
                         help="comma-separated formats among pdf, html (default: both)")

    users = commands.add_parser("users", help="manage dashboard users (file outside the repo)")
    users_commands = users.add_subparsers(dest="users_command", parser_class=_Parser)
    add = users_commands.add_parser("add", help="add a user or reset their password and role")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("clinical", "analyst", "marketing"))
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input instead of asking")
    add.add_argument("--file", help="users file (default: $OUTCOMES_USERS or "
                                    "~/.config/ketamine-outcomes/users.toml)")
    listing = users_commands.add_parser("list", help="list users and roles (never hashes)")
    listing.add_argument("--file")

    audit = commands.add_parser("audit", help="check the audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", parser_class=_Parser)
    verify = audit_commands.add_parser(
        "verify", help="check every row's keyed MAC, the chain and the head kept outside the "
                       "database; exit 0 only when the log is intact")
    _add_db(verify)
    return parser


def _filters(args):
    from analysis.core.filters import Filters
    try:
        return Filters.from_quarters(getattr(args, "from_quarter", None),
                                     getattr(args, "to_quarter", None),
                                     sites=tuple(args.site), conditions=tuple(args.condition),
                                     routes=tuple(args.route))
    except ValueError as error:
        raise UsageError(str(error)) from None


def _audit(db_path: Path, action: str, **detail) -> None:
    """Audit rows from the command line carry the operating-system user.
    The demo clinic writes none (it is read-only and holds no one's data)."""
    import getpass
    from analysis.access import audit
    if db.is_demo_database(db_path):
        return
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment
        user = None
    audit.record(db_path, action, user=user, role="command line", **detail)


def _existing_db(args) -> Path:
    path = db.resolve_db_path(args.db)
    if db.is_demo_database(path):   # --db data/demo.duckdb: built from the bundled exports
        from analysis.sources import ensure_demo_db
        return ensure_demo_db(path)
    if not path.exists():
        raise FileNotFoundError(f"no database at {path}: ingest an export first "
                                f"(python -m analysis ingest FILE --db {path})")
    return path


def cmd_ingest(args) -> int:
    from analysis.ingest.pipeline import ingest_files
    path = db.resolve_db_path(args.db)
    if db.is_demo_database(path):
        raise UsageError(f"{path} is the demo clinic's database, which is read-only: load a "
                         "clinic's exports into its own database (--db PATH or OUTCOMES_DB)")
    # (waits while another process holds the file: a command reading it in place)
    con = db.with_retry(lambda: db.connect(path))
    try:
        progress = None if args.json else (
            lambda i, n, name: print(f"[{i}/{n}] {name}", file=sys.stderr))
        summary = ingest_files(con, args.paths, alias_file=args.aliases, progress=progress,
                                      codes_file=args.codes)
    finally:
        con.close()
    _audit(path, "ingest", files=[{"file": Path(f.path).name, "status": f.status,
                                   "rows_read": f.rows_read, "rows_accepted": f.rows_accepted}
                                  for f in summary.files])
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        for f in summary.files:
            line = f"{f.status:>9}  {f.path}"
            if f.status == "ingested":
                line += (f": {f.rows_read} rows read, {f.rows_accepted} accepted, "
                         f"{f.rows_quarantined} quarantined, {f.duplicates_collapsed} duplicates "
                         f"collapsed, {f.values_nulled} values nulled")
                if f.pseudonymised_columns:
                    line += (f"; patient key {', '.join(f.pseudonymised_columns)} identifies a "
                             "person: stored as keyed pseudonyms")
                if f.dropped_identifying_columns:
                    line += f"; dropped identifying columns: {', '.join(f.dropped_identifying_columns)}"
                if f.unknown_columns:
                    line += f"; unknown columns not used: {', '.join(f.unknown_columns)}"
                if f.export_kind == "fhir":
                    from analysis.ingest.fhir.export import summary_message
                    line = (f"{f.status:>9}  {f.path}: {f.rows_read} resources read, "
                            f"{f.rows_accepted} used, {f.rows_quarantined} quarantined, "
                            f"{f.duplicates_collapsed} duplicates collapsed, {f.values_nulled} "
                            f"values nulled; {summary_message(f)}")
            print(line)
            if f.error:
                print(f"           {f.error}")
        print(f"database: {path}")
    return EXIT_OK if summary.ok else EXIT_FAILED


def cmd_demo(args) -> int:
    from analysis.ingest.demo.generate import generate_demo
    if args.patients < 1:
        raise UsageError("--patients must be at least 1")
    files = generate_demo(args.out, patients=args.patients, seed=args.seed,
                               messy=not args.clean, format=args.format)
    if args.format == "fhir":
        print(f"wrote the {files.visit_rows} visits of {files.patients} patients as a FHIR R4 "
              f"Bulk Data export to {files.sessions}: "
              + ", ".join(f"{n} {kind}" for kind, n in files.resources.items()))
        return EXIT_OK
    print(f"wrote {files.visit_rows} visits of {files.patients} patients to {files.sessions}")
    print(f"wrote {files.medication_rows} medication rows to {files.medications}")
    return EXIT_OK


def cmd_responders(args) -> int:
    from analysis.metrics import outcomes
    from analysis.storage import store
    filters = _filters(args)
    with store.in_place(_existing_db(args)) as snap:
        result = outcomes.responder_rates(snap, args.timepoint, args.definition,
                                          args.population, filters, args.ci)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return EXIT_OK
    o = result.overall
    print(f"{args.definition} at {args.timepoint}, {args.population}, {args.ci} 95% CI; "
          f"data cutoff {result.cutoff}")
    print(f"{'condition':<24}{'n':>6}{'resp':>6}{'rate':>7}   95% CI")
    for g in [*result.by_condition, o]:
        name = "All conditions" if g is o else g.group
        ci = "" if g.rate is None else f"{_percent(g.ci_low)}–{_percent(g.ci_high)}"
        flag = "  (too few to report)" if g is not o and g.too_few else ""
        print(f"{name:<24}{g.n:>6}{g.responders:>6}{_percent(g.rate):>7}   {ci}{flag}")
    print("excluded: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.excluded.items()))
    return EXIT_OK


def cmd_claim(args) -> int:
    from analysis.metrics import outcomes
    from analysis.storage import store
    if not 0 < args.target < 1:
        raise UsageError("--target must be a proportion between 0 and 1, e.g. 0.70")
    filters = _filters(args)
    with store.in_place(_existing_db(args)) as snap:
        check = outcomes.claim_check(snap, args.target, args.timepoint, args.definition,
                                     args.population, filters)
    if args.json:
        print(json.dumps(check.to_dict(), indent=2, default=str))
        return EXIT_OK
    t = check.test
    print(f"Claim: over {_percent(args.target)} respond ({args.definition}, {args.timepoint}, "
          f"{args.population}); data cutoff {check.cutoff}")
    print(f"verdict: {t.verdict}  rate {_percent(t.rate)} ({t.responders}/{t.n}), "
          f"one-sided 95% bounds {_percent(t.lower_bound)}–{_percent(t.upper_bound)}, "
          f"p = {'–' if t.p_value is None else f'{t.p_value:.3g}'}")
    print("sensitivity (rate, one-sided 95% exact lower bound, verdict):")
    for c in check.sensitivity:
        print(f"  {c.timepoint:>4} {c.definition:<9} {c.population:<11} n={c.n:<6} "
              f"{_percent(c.rate):>5}  >={_percent(c.lower_bound):>4}  {c.verdict}")
    return EXIT_OK


def cmd_worklist(args) -> int:
    from analysis.storage import store
    from analysis.metrics import worklist
    path = _existing_db(args)
    snap = store.snapshot(path)
    result = worklist.worklist(snap, _filters(args))
    # Patient ids leave the database: audited like a download from the dashboard.
    _audit(path, "download", what="follow-up worklist", file="standard output",
           filters=result.filters.describe())
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return EXIT_OK
    print(f"Follow-up worklist, data cutoff {result.cutoff} ({result.filters.describe()})")
    for timepoint in worklist.TIMEPOINTS:
        rows = result.due(timepoint)
        print(f"\n{definitions.TIMEPOINT_LABELS[timepoint]}: {len(rows)} patients with the window "
              f"open and no pain score yet")
        if len(rows):
            print(f"  {'patient':<16}{'window closes':<15}{'days left':>10}  last visit")
        for r in rows.itertuples():
            print(f"  {r.patient_id:<16}{r.window_end_date.isoformat():<15}{r.days_left:>10}  "
                  f"{r.last_visit_date}")
    print(f"\nMissed (window closed without a pain score; ITT non-responders when baseline "
          f"pain > 0): {len(result.missed)}")
    if len(result.missed):
        print(f"  {'patient':<16}{'timepoint':<11}{'window closed':<15}{'last visit':<12}"
              f"{'days since':>11}")
    for r in result.missed.itertuples():
        print(f"  {r.patient_id:<16}{r.timepoint:<11}{r.window_end_date.isoformat():<15}"
              f"{r.last_visit_date.isoformat():<12}{r.days_since_last_visit:>11}")
    print(f"\nStopped during induction: {len(result.stopped_in_induction)}")
    if len(result.stopped_in_induction):
        print(f"  {'patient':<16}{'infusions':>10}  {'last visit':<12}{'days since':>11}")
    for r in result.stopped_in_induction.itertuples():
        print(f"  {r.patient_id:<16}{r.induction_infusions:>10}  "
              f"{r.last_visit_date.isoformat():<12}{r.days_since_last_visit:>11}")
    return EXIT_OK


def cmd_report(args) -> int:
    from analysis.metrics import outcomes
    from analysis.reports.quarterly.build import build_report
    from analysis.reports.quarterly.render.files import FORMATS, WRITERS, file_name
    from analysis.storage import store
    try:
        quarter_bounds(args.quarter)
    except ValueError as error:
        raise UsageError(str(error)) from None
    formats = _formats(args.format, FORMATS)
    steps = 2 + len(formats)

    def step(number: int, text: str) -> None:
        print(f"[{number}/{steps}] {text}", file=sys.stderr, flush=True)

    path = _existing_db(args)
    step(1, f"reading {path}")
    snap = store.snapshot(path)
    step(2, f"computing the {args.quarter.strip().upper()} report ({args.audience})")
    result = build_report(snap, args.quarter, args.audience)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for number, fmt in enumerate(formats, start=3):
        target = out / file_name(result, fmt)
        step(number, f"writing {fmt.upper()} {target}")
        written.append(WRITERS[fmt](result, target))
    for target in written:
        print(target)
    _audit(path, "report", quarter=args.quarter.strip().upper(), audience=args.audience,
           files=[Path(t).name for t in written])
    return EXIT_OK


def _formats(text: str, known: tuple[str, ...]) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in known]
    if unknown or not formats:
        raise UsageError(f"--format: unknown format {', '.join(unknown) or '(none)'}; "
                         f"use a comma-separated list of {', '.join(known)}")
    return formats


def cmd_memo(args) -> int:
    from analysis.claims import claim
    from analysis.reports import memo
    from analysis.storage import store
    if not 0 < args.target < 1:
        raise UsageError("--target must be a proportion between 0 and 1, e.g. 0.70")
    formats = _formats(args.format, memo.FORMATS)
    path = _existing_db(args)
    snap = store.snapshot(path)
    report = claim.claim_report(snap, args.target, args.timepoint, args.definition,
                                args.population)
    content = memo.build_memo(snap, report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = out / f"{memo.file_stem(report)}.{fmt}"
        target.write_bytes(memo.render(content, fmt))
        written.append(target)
        print(target)
    _audit(path, "report", document="claim memo", reading=report.reading.describe(),
           files=[t.name for t in written])
    return EXIT_OK


def cmd_summary(args) -> int:
    from analysis.metrics import outcomes
    from analysis.reports import summary
    from analysis.reports.quarterly.build import default_quarter
    from analysis.reports.quarterly.report import NoDataError
    from analysis.storage import store
    formats = _formats(args.format, summary.FORMATS)
    if args.quarter:
        try:
            quarter_bounds(args.quarter)
        except ValueError as error:
            raise UsageError(str(error)) from None
    path = _existing_db(args)
    snap = store.snapshot(path)
    quarter = args.quarter or default_quarter(snap)
    if quarter is None:
        raise ValueError(f"{path} has no visits: nothing to summarise")
    try:
        result = summary.build_summary(snap, quarter, _filters(args))
    except NoDataError as error:
        raise ValueError(str(error)) from None
    written = summary.write(result, args.out, formats)
    for target in written:
        print(target)
    _audit(path, "report", document="program summary", quarter=result.quarter, files=[t.name for t in written])
    return EXIT_OK


def cmd_users(args) -> int:
    from analysis.access import auth
    path = Path(args.file) if args.file else auth.users_path()
    if args.users_command == "list":
        directory = auth.load_users(path)
        for user in directory.users.values():
            print(f"{user.name:<24} {user.role}")
        for email, role in directory.oidc_roles.items():
            print(f"{email:<24} {role} (OIDC)")
        return EXIT_OK
    if args.users_command != "add":
        raise UsageError("users: say 'add NAME --role ROLE' or 'list'")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        import getpass
        password = getpass.getpass(f"Password for {args.name}: ")
        if password != getpass.getpass("Again: "):
            print("error: the two passwords differ", file=sys.stderr)
            return EXIT_FAILED
    auth.add_user(path, args.name, args.role, password)
    print(f"{args.name} ({args.role}) saved in {path}")
    return EXIT_OK


def cmd_audit(args) -> int:
    from analysis.access import audit
    if args.audit_command != "verify":
        raise UsageError("audit: say 'verify [--db PATH]'")
    check = audit.verify(db.resolve_db_path(args.db))
    print(check.report())
    return EXIT_OK if check.intact else EXIT_FAILED


COMMANDS = {"ingest": cmd_ingest, "demo": cmd_demo, "responders": cmd_responders,
            "claim": cmd_claim, "worklist": cmd_worklist, "report": cmd_report,
            "memo": cmd_memo, "summary": cmd_summary, "users": cmd_users, "audit": cmd_audit}


def main(argv: list[str] | None = None) -> int:
    db.private_files()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    except (FileNotFoundError, PermissionError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # last resort: a message, never a traceback
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
