"""Access control: sign-in, lockout, roles, what each role reaches, the audit trail."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from analysis.access import audit, auth
from tests.helpers.apptest import DASHBOARD, assert_no_errors, run_page
from ui import pages

PASSWORD = "correct horse battery"


@pytest.fixture
def clinic(demo_db, tmp_path, monkeypatch):
    """A clinic database (a copy of the demo) with three users, one per role."""
    db_path = tmp_path / "clinic.duckdb"
    shutil.copy(demo_db, db_path)
    users = tmp_path / "users.toml"
    for name, role in (("drlee", "clinical"), ("ana", "analyst"), ("mark", "marketing")):
        auth.add_user(users, name, role, PASSWORD)
    monkeypatch.setenv("OUTCOMES_DB", str(db_path))
    monkeypatch.setenv("OUTCOMES_USERS", str(users))
    return db_path


def test_password_hashes_are_salted_bcrypt(tmp_path):
    users = tmp_path / "users.toml"
    auth.add_user(users, "a", "clinical", PASSWORD)
    auth.add_user(users, "b", "clinical", PASSWORD)
    directory = auth.load_users(users)
    first, second = directory.users["a"].password_hash, directory.users["b"].password_hash
    assert first.startswith("$2b$") and first != second  # same password, different salt
    assert PASSWORD not in users.read_text()
    assert auth.check_password(PASSWORD, first) and not auth.check_password("wrong", first)
    with pytest.raises(ValueError):
        auth.add_user(users, "c", "clinical", "short")
    with pytest.raises(ValueError):
        auth.add_user(users, "d", "superuser", PASSWORD)


def test_clinic_data_needs_sign_in_and_no_page_is_reachable_before(clinic):
    app = AppTest.from_file(DASHBOARD, default_timeout=120).run()
    assert_no_errors(app)
    assert [t.value for t in app.title] == ["Sign in"]
    # No page but the sign-in form exists, so a direct URL gets nothing else.
    for spec in pages.PAGES:
        with pytest.raises(Exception):
            app.switch_page(spec.path).run()


def test_wrong_password_then_lockout_and_audit_rows(clinic):
    app = AppTest.from_file(DASHBOARD, default_timeout=120).run()
    for attempt in range(auth.MAX_FAILURES):
        app.text_input(key="sign_in_user").input("drlee")
        app.text_input(key="sign_in_password").input("not the password")
        app.button[-1].click().run()
        assert app.error, "a wrong password must say so"
        assert "Wrong user name or password" in app.error[0].value
    # Locked now: even the right password is refused.
    app.text_input(key="sign_in_user").input("drlee")
    app.text_input(key="sign_in_password").input(PASSWORD)
    app.button[-1].click().run()
    assert "locked" in app.error[0].value
    rows = audit.read(clinic)
    assert list(rows["action"][:2]) == ["locked_out", "sign_in_failed"]
    assert (rows["action"] == "sign_in_failed").sum() == auth.MAX_FAILURES
    assert audit.verify(clinic).intact
    # After the lockout window the right password works and is audited.
    later = dt.datetime.now() + auth.LOCKOUT + dt.timedelta(minutes=1)
    result = auth.sign_in(clinic, auth.load_users(), "drlee", PASSWORD, now=later)
    assert result.ok and result.role == "clinical"
    assert audit.read(clinic)["action"].iloc[0] == "sign_in"


def test_sign_in_success_shows_role_pages_and_logs_page_view(clinic):
    app = AppTest.from_file(DASHBOARD, default_timeout=120).run()
    app.text_input(key="sign_in_user").input("ana")
    app.text_input(key="sign_in_password").input(PASSWORD)
    app.button[-1].click().run()
    assert_no_errors(app)
    assert "Sign in" not in [t.value for t in app.title]
    rows = audit.read(clinic)
    assert {"sign_in", "page_view"} <= set(rows["action"])
    view = rows[rows.action == "page_view"].iloc[0]
    assert view.user_name == "ana" and view.role == "analyst"
    assert '"page": "Overview"' in view.detail and "filters" in view.detail


@pytest.mark.parametrize("role", auth.ROLES)
def test_each_role_reaches_only_its_pages(clinic, role):
    allowed = {p.path for p in pages.pages_for(role)}
    app = run_page(pages.pages_for(role)[0].path, role=role)
    assert_no_errors(app)
    for spec in pages.PAGES:
        if spec.path in allowed:
            app.switch_page(spec.path).run()
            assert_no_errors(app)
        else:
            # Not in the role's navigation (a browser gets "page not found");
            # run anyway, the page itself refuses and shows nothing else.
            app.switch_page(spec.path).run()
            assert_no_errors(app)
            assert any("not available to the" in w.value for w in app.warning)
            assert not app.dataframe and not app.table and not app.metric and not app.get("plotly_chart")


def test_role_matrix():
    # marketing's sites table is the fixed, suppressed external one (issue 18)
    assert {p.title for p in pages.pages_for("marketing")} == {"Claim check", "Quarterly report",
                                                               "Sites & providers"}
    assert "Patient timeline" not in {p.title for p in pages.pages_for("analyst")}
    assert "Follow-up worklist" not in {p.title for p in pages.pages_for("analyst")}
    assert "Follow-up worklist" in {p.title for p in pages.pages_for("clinical")}
    assert "Data" in {p.title for p in pages.pages_for("analyst")}
    assert "Audit log" in {p.title for p in pages.pages_for("clinical")}
    assert "Audit log" not in {p.title for p in pages.pages_for("analyst")}


def test_session_expires(clinic):
    from ui.auth import SESSION_KEY, Session
    app = AppTest.from_file(DASHBOARD, default_timeout=120)
    app.session_state[SESSION_KEY] = Session(
        "drlee", "clinical", dt.datetime.now() - auth.SESSION_TIMEOUT - dt.timedelta(minutes=1),
        "password")
    app.run()
    assert [t.value for t in app.title] == ["Sign in"]
    assert any("expired" in i.value for i in app.info)
    assert audit.read(clinic)["action"].iloc[0] == "sign_out"


def test_audit_chain_detects_tampering(tmp_path):
    path = tmp_path / "a.duckdb"
    for n in range(3):
        audit.record(path, "page_view", user="u", role="clinical", page=f"p{n}")
    assert audit.verify(path).intact
    import duckdb
    con = duckdb.connect(str(audit.audit_path(path)))
    con.execute("UPDATE audit_log SET user_name = 'someone else' WHERE seq = 2")
    con.close()
    check = audit.verify(path)
    assert not check.intact and check.first_broken_seq == 2


def test_queued_page_views_are_written_in_order_and_chained(tmp_path, monkeypatch):
    import threading
    path = tmp_path / "q.duckdb"
    # Twenty "sessions" queue views at once, with a sign-in written directly
    # in the middle: every row lands once, in order, in an intact chain.
    threads = [threading.Thread(target=lambda n=n: [
        audit.record_soon(path, "page_view", user=f"user{n}", role="clinical", page=f"p{k}")
        for k in range(5)]) for n in range(20)]
    for thread in threads:
        thread.start()
    audit.record(path, "sign_in", user="late", role="clinical")
    for thread in threads:
        thread.join()
    rows = audit.read(path).sort_values("seq")     # read() writes the queue first
    assert len(rows) == 101 and list(rows["seq"]) == list(range(1, 102))
    views = rows[rows.action == "page_view"]
    assert sorted(zip(views.user_name, views.detail.str.extract(r'"page": "(p\d)"')[0])) == \
        sorted((f"user{n}", f"p{k}") for n in range(20) for k in range(5))
    for user, mine in views.groupby("user_name"):   # each session's views in its order
        assert list(mine.sort_values("seq")["detail"].str.extract(r'"(p\d)"')[0]) == \
            [f"p{k}" for k in range(5)]
    assert audit.verify(path).intact

    # A write that fails keeps the rows queued; the next write takes them.
    real_append = audit._append
    monkeypatch.setattr(audit, "_append", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    audit._wake.clear()
    with audit._queue_lock:
        audit._queue.append((path, audit._row("page_view", "u", "clinical",
                                              dt.datetime.now(), {"page": "kept"})))
    with pytest.raises(OSError):
        audit.flush()
    assert len(audit._queue) == 1
    monkeypatch.setattr(audit, "_append", real_append)
    assert audit.read(path)["detail"].iloc[0] == '{"page": "kept"}'
    assert audit.verify(path).intact


def test_an_unwritable_queued_row_does_not_stop_other_audit_writes(tmp_path):
    broken = tmp_path / "broken.duckdb"
    audit.audit_path(broken).mkdir()      # the audit "file" is a folder: cannot be written
    healthy = tmp_path / "healthy.duckdb"
    try:
        audit.record_soon(broken, "page_view", user="u", role="clinical", page="lost?")
        # Sign-ins (a direct write and the lockout read) still work elsewhere.
        audit.record(healthy, "sign_in", user="v", role="clinical")
        assert list(audit.read(healthy)["action"]) == ["sign_in"]
        assert audit.queued() == 1            # kept, not dropped
        with pytest.raises(Exception):
            audit.flush()
    finally:
        with audit._queue_lock:
            audit._queue[:] = [(p, r) for p, r in audit._queue if p != broken]


def test_demo_needs_no_sign_in_and_says_it_is_synthetic(monkeypatch, tmp_path):
    monkeypatch.delenv("OUTCOMES_DB", raising=False)
    from analysis.storage import db
    monkeypatch.setattr(db, "DEFAULT_DB", tmp_path / "none.duckdb")
    app = AppTest.from_file(DASHBOARD, default_timeout=180).run()
    assert_no_errors(app)
    assert any("synthetic" in i.value for i in app.info)
    assert app.selectbox(key="demo_role").value == "clinical"


def test_ingest_and_report_from_the_command_line_are_audited(tmp_path, demo_exports):
    from analysis import cli
    db_path = tmp_path / "cli.duckdb"
    assert cli.main(["ingest", str(demo_exports.sessions), "--db", str(db_path)]) == 0
    assert cli.main(["report", "--quarter", "2026Q2", "--db", str(db_path), "--out",
                     str(tmp_path / "out"), "--format", "html"]) == 0
    rows = audit.read(db_path)
    assert list(rows["action"]) == ["report", "ingest"]  # newest first
    assert '"quarter": "2026Q2"' in rows["detail"].iloc[0]
    assert '"status": "ingested"' in rows["detail"].iloc[1]
    assert audit.verify(db_path).intact


# --------------------------------------------------------------------------
# who may write (issue 13): one rule, asked by every writing path


def test_may_write_only_signed_in_clinical_or_analyst_on_clinic_data(tmp_path):
    from analysis.storage import db
    from analysis.sources import DataSource
    clinic = DataSource(tmp_path / "clinic.duckdb", is_demo=False)
    for role in auth.WRITER_ROLES:
        grant = auth.may_write(clinic, "drlee", role, signed_in=True)
        assert (grant.db_path, grant.user, grant.role) == (clinic.path, "drlee", role)
    refusals = [
        (clinic, "mark", "marketing", True, "clinical team and analysts"),
        (clinic, "demo", "clinical", False, "Sign in"),         # the demo's "view as"
        (clinic, None, "clinical", True, "Sign in"),
        (DataSource(clinic.path, is_demo=True), "drlee", "clinical", True, "read-only"),
        (DataSource(db.DEMO_DB, is_demo=False), "drlee", "clinical", True, "read-only"),
    ]
    for source, user, role, signed_in, why in refusals:
        with pytest.raises(auth.WriteRefused, match=why):
            auth.may_write(source, user, role, signed_in)


def test_every_writing_path_needs_a_grant(tmp_path, demo_exports):
    from analysis.ingest import data_quality
    from analysis.storage import db
    export = tmp_path / "sessions.csv"
    shutil.copy(demo_exports.sessions, export)
    clinic = tmp_path / "clinic.duckdb"
    for not_a_grant in (None, clinic, str(clinic), "drlee",
                        auth.WriteGrant(db.DEMO_DB, "drlee", "clinical")):
        with pytest.raises(auth.WriteRefused):
            data_quality.save_upload(not_a_grant, "x.csv", b"a,b\n1,2\n", tmp_path)
        with pytest.raises(auth.WriteRefused):
            data_quality.ingest_uploads([export], not_a_grant)
    assert not clinic.exists() and export.exists()


def _upload_controls(app) -> list:
    return [*app.get("file_uploader"), *[b for b in app.button if b.key == "data_load"]]


def test_anonymous_session_cannot_flip_to_the_demo_and_upload(clinic):
    """The attack: with clinic data loaded, flip "Show the demo clinic
    instead" before signing in, view as clinical, open the Data page and
    load an export (it went into the clinic's database)."""
    app = AppTest.from_file(DASHBOARD, default_timeout=120)
    app.session_state["show_demo"] = True
    app.session_state["demo_role"] = "clinical"
    app.run()
    assert_no_errors(app)
    assert [t.value for t in app.title] == ["Sign in"]
    assert not [t for t in app.toggle if t.key == "show_demo"]
    assert not _upload_controls(app)
    with pytest.raises(Exception):
        app.switch_page("pages/data.py").run()


def test_signed_in_marketing_cannot_upload_through_the_demo(clinic):
    from tests.helpers.apptest import signed_in
    app = signed_in(AppTest.from_file(DASHBOARD, default_timeout=120), "marketing", "mark")
    app.session_state["show_demo"] = True
    app.session_state["demo_role"] = "clinical"
    app.run()
    assert_no_errors(app)
    assert not [s for s in app.selectbox if s.key == "demo_role"]  # no "view as" once signed in
    assert [t.value for t in app.title] == ["Claim check"]  # marketing's pages, its own role
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app.switch_page("pages/data.py")                    # not in marketing's navigation
    assert not _upload_controls(app)


def test_signed_in_clinician_on_the_demo_cannot_upload(clinic):
    from tests.helpers.apptest import signed_in
    app = signed_in(AppTest.from_file(DASHBOARD, default_timeout=120), "clinical", "drlee")
    app.session_state["show_demo"] = True
    app.run()
    assert_no_errors(app)
    assert any("synthetic" in i.value for i in app.info)     # it is the demo
    app.switch_page("pages/data.py").run()
    assert_no_errors(app)
    assert not _upload_controls(app)
    assert any("demo clinic is read-only" in i.value for i in app.info)
    # On the clinic's data the same user may load exports.
    app = run_page("pages/data.py", role="clinical")
    assert _upload_controls(app)


# --------------------------------------------------------------------------
# files holding health data or secrets are their owner's only (mode 600)


def _mode(path) -> int:
    import os
    import stat
    return stat.S_IMODE(os.stat(path).st_mode)


def test_database_audit_and_key_files_are_created_mode_600(tmp_path, demo_exports):
    import os
    import subprocess
    import sys

    from analysis.storage import db
    from analysis.access import keys
    from tests.helpers.apptest import ROOT
    # In this process (the dashboard's and the tests' way in) ...
    con = db.connect(tmp_path / "inproc.duckdb")
    con.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert _mode(tmp_path / "inproc.duckdb") == 0o600
    con.close()
    audit.record(tmp_path / "inproc.duckdb", "sign_in", user="drlee", role="clinical")
    assert _mode(audit.audit_path(tmp_path / "inproc.duckdb")) == 0o600
    # ... and from the command line, with the default umask of a shell.
    clinic = tmp_path / "cli" / "clinic.duckdb"
    done = subprocess.run([sys.executable, "-c", "import os, sys; os.umask(0o022); "
                           "from analysis.cli import main; sys.exit(main(sys.argv[1:]))",
                           "ingest", str(demo_exports.sessions), "--db", str(clinic)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = [p for p in clinic.parent.iterdir()]
    assert clinic in written and audit.audit_path(clinic) in written
    assert {p.name: _mode(p) for p in written} == {p.name: 0o600 for p in written}
    secrets = [p for p in keys.secrets_dir().iterdir() if p.is_file()]
    assert keys.key_path("audit") in secrets and audit.head_path(clinic) in secrets
    assert {p.name: _mode(p) for p in secrets} == {p.name: 0o600 for p in secrets}
    # A database left world-readable by an older version is tightened on opening.
    os.chmod(clinic, 0o644)
    db.connect(clinic).close()
    assert _mode(clinic) == 0o600
