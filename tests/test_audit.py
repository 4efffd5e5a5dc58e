"""The audit log cannot be quietly rewritten (issue 13): each row carries a
keyed MAC (HMAC-SHA-256, key outside the database and the repository) and a
sequence number, and the chain head (last sequence and MAC) is kept outside
the audit database, so truncation, deletion of the file and a recomputed
chain are all caught by ``python -m analysis audit verify``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat

import duckdb
import pytest

from analysis import cli
from analysis.access import audit, keys


def _log(tmp_path, rows: int = 3):
    path = tmp_path / "clinic.duckdb"
    for n in range(rows):
        audit.record(path, "page_view", user="drlee", role="clinical", page=f"p{n}")
    return path


def _edit(path, sql: str, *params) -> None:
    con = duckdb.connect(str(audit.audit_path(path)))
    try:
        con.execute(sql, list(params))
    finally:
        con.close()


def _verify_cli(path, capsys) -> tuple[int, str]:
    code = cli.main(["audit", "verify", "--db", str(path)])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_rows_carry_keyed_macs_and_the_head_is_kept_outside(tmp_path, capsys):
    path = _log(tmp_path)
    rows = audit.read(path).sort_values("seq")
    assert list(rows["seq"]) == [1, 2, 3]
    first = rows.iloc[0]
    payload = json.dumps([None, 1, first.logged_at.isoformat(), "drlee", "clinical",
                          "page_view", first.detail]).encode()
    assert first.row_hash == keys.mac("audit", payload)               # keyed
    assert first.row_hash != hashlib.sha256(payload).hexdigest()      # not a bare hash
    head = audit.head_path(path)
    assert head.parent == keys.secrets_dir() and head.exists()
    assert stat.S_IMODE(os.stat(head).st_mode) == 0o600
    assert json.loads(head.read_text())["seq"] == 3
    assert json.loads(head.read_text())["mac"] == rows.iloc[-1].row_hash
    check = audit.verify(path)
    assert check.intact and check.rows == 3 and check.head_seq == 3
    code, said = _verify_cli(path, capsys)
    assert code == 0, said
    assert "3 rows (seq 1–3)" in said and said.strip().endswith("verdict: intact")


def test_truncated_log_is_caught_and_stays_caught(tmp_path, capsys):
    path = _log(tmp_path, rows=5)
    _edit(path, "DELETE FROM audit_log WHERE seq > 3")
    check = audit.verify(path)
    assert not check.intact and "rows 4–5 are missing" in check.problem
    code, said = _verify_cli(path, capsys)
    assert code == 1 and "NOT intact" in said and "rows 4–5 are missing" in said
    # The next row written does not paper over the gap: it is recorded.
    audit.record(path, "sign_in", user="drlee", role="clinical")
    check = audit.verify(path)
    assert not check.intact and "rows 4–5 were removed" in check.problem
    assert cli.main(["audit", "verify", "--db", str(path)]) == 1


def test_deleted_audit_file_is_caught(tmp_path, capsys):
    path = _log(tmp_path)
    audit.audit_path(path).unlink()
    check = audit.verify(path)
    assert not check.intact and "missing" in check.problem
    code, said = _verify_cli(path, capsys)
    assert code == 1 and "NOT intact" in said
    audit.record(path, "sign_in", user="drlee", role="clinical")   # a new file starts
    check = audit.verify(path)
    assert not check.intact and "rows 1–3 were removed" in check.problem


def test_edited_row_with_recomputed_chain_is_caught(tmp_path, capsys):
    path = _log(tmp_path, rows=4)
    rows = audit.read(path).sort_values("seq")
    # Edit row 2 and recompute every later link, as the old unkeyed chain
    # allowed (SHA-256), and again with a made-up key.
    for recompute in (lambda p: hashlib.sha256(p).hexdigest(),
                      lambda p: __import__("hmac").new(b"guess", p, "sha256").hexdigest()):
        prev = rows.iloc[0].row_hash
        for row in rows.iloc[1:].itertuples():
            user = "someone else" if row.seq == 2 else row.user_name
            payload = json.dumps([prev, row.seq, row.logged_at.isoformat(), user, row.role,
                                  row.action, row.detail]).encode()
            mac = recompute(payload)
            _edit(path, "UPDATE audit_log SET user_name = ?, prev_hash = ?, row_hash = ? "
                        "WHERE seq = ?", user, prev, mac, row.seq)
            prev = mac
        check = audit.verify(path)
        assert not check.intact and check.first_broken_seq == 2, check
        code, said = _verify_cli(path, capsys)
        assert code == 1 and "row 2" in said


def test_missing_head_or_key_is_caught(tmp_path, capsys):
    path = _log(tmp_path)
    head = audit.head_path(path)
    kept = head.read_bytes()
    head.unlink()
    check = audit.verify(path)
    assert not check.intact and "head" in check.problem
    head.write_bytes(kept)
    assert audit.verify(path).intact
    key = keys.key_path("audit")
    shutil.move(key, tmp_path / "audit.key.bak")
    keys.forget()
    try:
        check = audit.verify(path)
        assert not check.intact and "audit key" in check.problem
        assert not key.exists()          # verifying never makes a new key
    finally:
        shutil.move(tmp_path / "audit.key.bak", key)
        keys.forget()
    assert audit.verify(path).intact


def test_verify_command_on_a_database_without_an_audit_log(tmp_path, capsys):
    code, said = _verify_cli(tmp_path / "nothing.duckdb", capsys)
    assert code == 1 and "no audit log" in said


def test_audit_page_shows_the_verdict_of_audit_verify(demo_db, tmp_path, monkeypatch):
    from tests.helpers.apptest import assert_no_errors, run_page
    clinic = tmp_path / "clinic.duckdb"
    shutil.copy(demo_db, clinic)
    monkeypatch.setenv("OUTCOMES_DB", str(clinic))
    for n in range(4):
        audit.record(clinic, "sign_in", user="drlee", role="clinical")
    app = run_page("pages/audit.py")
    assert_no_errors(app)
    assert any(s.value.startswith("Audit log intact") for s in app.success)
    _edit(clinic, "DELETE FROM audit_log WHERE seq > 2")
    app = run_page("pages/audit.py")
    check = audit.verify(clinic)
    assert not check.intact
    assert [e.value for e in app.error] == [f"Audit log {check.verdict}"]
    assert not app.success


def test_demo_audit_page_says_the_demo_writes_no_audit_rows(monkeypatch, tmp_path):
    from analysis.storage import db
    from tests.helpers.apptest import assert_no_errors, run_page
    monkeypatch.delenv("OUTCOMES_DB", raising=False)
    monkeypatch.setattr(db, "DEFAULT_DB", tmp_path / "none.duckdb")
    app = run_page("pages/audit.py", timeout=180)
    assert_no_errors(app)
    assert any("writes no audit rows, by design" in i.value for i in app.info)
    assert not app.success and not app.dataframe
