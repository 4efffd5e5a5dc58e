"""Sign-in lockout under attack (issue 13): the failure count and the
password check are one step per account, so parallel attempts (threads, or
processes) never check more than MAX_FAILURES passwords; a user name that
is not a user (a password typed in the wrong box) is never stored."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from analysis.access import audit, auth
from tests.helpers.apptest import ROOT

PASSWORD = "correct horse battery"


@pytest.fixture
def clinic(tmp_path):
    users = tmp_path / "users.toml"
    auth.add_user(users, "drlee", "clinical", PASSWORD)   # bcrypt at its real cost
    return tmp_path / "clinic.duckdb", auth.load_users(users)


@pytest.fixture
def checks(monkeypatch):
    """Counts the passwords actually checked against a user's hash."""
    counted = []
    real = auth.check_password

    def counting(password, password_hash):
        counted.append(password)
        return real(password, password_hash)

    monkeypatch.setattr(auth, "check_password", counting)
    return counted


def _attempts(db_path, directory, passwords, delays=None):
    """Run one sign_in per password in its own thread, all released at once
    (each after its delay); the results in the order given."""
    results = [None] * len(passwords)
    start = threading.Barrier(len(passwords))

    def attempt(number, password):
        start.wait()
        time.sleep((delays or {}).get(number, 0))
        results[number] = auth.sign_in(db_path, directory, "drlee", password)

    threads = [threading.Thread(target=attempt, args=(n, p)) for n, p in enumerate(passwords)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _actions(db_path):
    return list(audit.read(db_path)["action"])


def test_thirty_parallel_wrong_passwords_check_only_five(clinic, checks):
    db_path, directory = clinic
    results = _attempts(db_path, directory, [f"wrong guess {n}" for n in range(30)])
    assert not any(r.ok for r in results)
    assert len(checks) == auth.MAX_FAILURES
    actions = _actions(db_path)
    assert actions.count("sign_in_failed") == auth.MAX_FAILURES
    assert actions.count("locked_out") == 30 - auth.MAX_FAILURES
    assert sum(r.locked for r in results) == 30 - auth.MAX_FAILURES + 1
    assert audit.verify(db_path).intact


def test_eleven_wrong_then_the_right_one_never_signs_in(clinic, checks):
    db_path, directory = clinic
    # The right password arrives while the wrong ones are being checked
    # (bcrypt takes a quarter of a second each): it waits its turn.
    passwords = [f"wrong guess {n}" for n in range(11)] + [PASSWORD]
    results = _attempts(db_path, directory, passwords, delays={11: 0.3})
    assert not results[11].ok and results[11].locked
    assert "sign_in" not in _actions(db_path)
    assert len(checks) == auth.MAX_FAILURES


_CHILD = """
import sys, threading
from analysis.access import auth
db_path, users = sys.argv[1], sys.argv[2]
directory = auth.load_users(users)
threads = [threading.Thread(target=auth.sign_in, args=(db_path, directory, "drlee", f"no {n}"))
           for n in range(6)]
[t.start() for t in threads]
[t.join() for t in threads]
"""


def test_parallel_processes_check_only_five_between_them(tmp_path):
    users = tmp_path / "users.toml"
    auth.add_user(users, "drlee", "clinical", PASSWORD)
    db_path = tmp_path / "clinic.duckdb"
    children = [subprocess.Popen([sys.executable, "-c", _CHILD, str(db_path), str(users)],
                                 cwd=ROOT) for _ in range(3)]
    assert all(child.wait(timeout=300) == 0 for child in children)
    actions = _actions(db_path)
    assert actions.count("sign_in_failed") == auth.MAX_FAILURES
    assert actions.count("locked_out") == 18 - auth.MAX_FAILURES
    assert audit.verify(db_path).intact


def test_a_password_typed_as_the_user_name_is_never_stored(clinic):
    db_path, directory = clinic
    for _ in range(auth.MAX_FAILURES + 1):   # unknown names lock out too (no user enumeration)
        result = auth.sign_in(db_path, directory, PASSWORD, "drlee")
    assert result.locked
    rows = audit.read(db_path)
    assert PASSWORD not in rows.to_csv()
    assert set(rows["user_name"]) == {auth.UNKNOWN_USER}
    attempts = {json.loads(d)["attempt"] for d in rows["detail"]}
    assert len(attempts) == 1 and len(attempts.pop()) == 12   # a short keyed hash, to correlate
    other = auth.sign_in(db_path, directory, "someone-else", "x")  # another name: its own count
    assert not other.locked
    assert json.loads(audit.read(db_path)["detail"].iloc[0])["attempt"] not in PASSWORD


def test_an_unknown_name_costs_a_real_password_check(clinic, monkeypatch):
    """Timing does not tell names apart: an unknown name's password is
    checked against a real bcrypt hash of the users' cost (a malformed
    hash, as before, failed at once)."""
    import bcrypt
    db_path, directory = clinic
    hashes = []
    real = auth.check_password
    monkeypatch.setattr(auth, "check_password",
                        lambda password, password_hash: hashes.append(password_hash)
                        or real(password, password_hash))
    auth.sign_in(db_path, directory, "nobody", "guess")
    [dummy] = hashes
    assert dummy[:7] == directory.users["drlee"].password_hash[:7]   # $2b$12$
    assert bcrypt.checkpw(b"guess", dummy.encode()) is False       # well-formed: no ValueError
