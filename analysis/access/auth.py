"""Users, roles and sign-in checks (no Streamlit here).

Users live in a TOML file outside the repository (``OUTCOMES_USERS``, else
``~/.config/ketamine-outcomes/users.toml``) with bcrypt password hashes::

    [users.drlee]
    role = "clinical"
    password_hash = "$2b$12$..."

    [oidc_roles]            # optional: roles for Streamlit's OIDC sign-in
    "lee@clinic.example" = "clinical"

Create entries with ``python -m analysis users add NAME --role ROLE``.
Five failed sign-ins within 15 minutes lock a user out for 15 minutes.  The
failure count and the password check are one step per account (a lock in
this process and one across processes), so parallel attempts never check
more than five passwords.  A name that is not a user's (often a password
typed into the wrong box) is logged as "unknown user" with a short keyed
hash to correlate attempts, never as typed.

:func:`may_write` is the one rule for "may this session write?": every
path that writes a clinic's data (saving an upload, ingesting it) needs the
:class:`WriteGrant` it returns.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import hashlib
import os
import re
import threading
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import bcrypt

from analysis.access import audit, keys
from analysis.storage import db

ROLES = ("clinical", "analyst", "marketing")
#: Roles that may load exports into the clinic's database (once signed in).
WRITER_ROLES = ("clinical", "analyst")
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
SESSION_TIMEOUT = dt.timedelta(minutes=30)
UNKNOWN_USER = "unknown user"  # what the audit log says for a name that is no user's
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str


@dataclass(frozen=True)
class UserDirectory:
    users: dict[str, User]
    oidc_roles: dict[str, str]


@dataclass(frozen=True)
class SignIn:
    ok: bool
    user: str | None
    role: str | None
    message: str
    locked: bool = False


class WriteRefused(PermissionError):
    """This session may not write; the message says why, for the user."""


@dataclass(frozen=True)
class WriteGrant:
    """What :func:`may_write` hands a session that may write: the one
    database it may write to, and who writes (for the audit log)."""
    db_path: Path
    user: str
    role: str


def may_write(source, user: str | None, role: str | None, signed_in: bool) -> WriteGrant:
    """May this session write, and where?  Only a user signed in to the
    clinic's data (password or OIDC, not the demo's "view as") with a role
    in :data:`WRITER_ROLES`, and only into the database they are looking at;
    the demo clinic is never written.  ``source`` is the session's
    :class:`analysis.sources.DataSource`.  Raises :class:`WriteRefused`."""
    if source.is_demo or db.is_demo_database(source.path):
        raise WriteRefused("The demo clinic is read-only: exports are loaded into the clinic's "
                           "own database, by a clinical or analyst user signed in to it (or "
                           "with `.venv/bin/python -m analysis ingest`).")
    if not signed_in or not user:
        raise WriteRefused("Sign in to load exports.")
    if role not in WRITER_ROLES:
        raise WriteRefused("Loading exports is for the clinical team and analysts.")
    return WriteGrant(Path(source.path), user, role)


def users_path() -> Path:
    env = os.environ.get("OUTCOMES_USERS")
    return Path(env) if env else Path.home() / ".config" / "ketamine-outcomes" / "users.toml"


def load_users(path: str | os.PathLike | None = None) -> UserDirectory:
    path = Path(path) if path else users_path()
    if not path.exists():
        return UserDirectory({}, {})
    with open(path, "rb") as handle:
        data = tomllib.load(handle)
    users = {}
    for name, entry in (data.get("users") or {}).items():
        role = entry.get("role")
        if role not in ROLES or not entry.get("password_hash"):
            continue  # an entry without a valid role or hash cannot sign in
        users[name] = User(name, role, entry["password_hash"])
    oidc = {email.lower(): role for email, role in (data.get("oidc_roles") or {}).items()
            if role in ROLES}
    return UserDirectory(users, oidc)


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise ValueError("a password needs at least 10 characters")
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def check_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
    except ValueError:
        return False


def add_user(path: str | os.PathLike, name: str, role: str, password: str) -> None:
    """Add or replace a user in the TOML file (other entries are kept)."""
    if not _NAME.match(name):
        raise ValueError("user names may use letters, digits and . _ @ - (at most 64)")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    path = Path(path)
    directory = load_users(path) if path.exists() else UserDirectory({}, {})
    users = dict(directory.users)
    users[name] = User(name, role, hash_password(password))
    lines = []
    for user in users.values():
        lines += [f'[users."{user.name}"]', f'role = "{user.role}"',
                  f'password_hash = "{user.password_hash}"', ""]
    if directory.oidc_roles:
        lines.append("[oidc_roles]")
        lines += [f'"{email}" = "{role}"' for email, role in directory.oidc_roles.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)


def name_key(name: str) -> str:
    """A short keyed hash of a name that is no user's: the same typed name
    gives the same key (attempts can be correlated and locked out), and
    without the clinic's audit key nobody can tell what was typed."""
    return keys.mac(audit.KEY, b"sign-in name\0" + name.encode("utf-8"))[:12]


def sign_in(db_path: str | os.PathLike, directory: UserDirectory, name: str, password: str,
            now: dt.datetime | None = None) -> SignIn:
    """Check a password, with lockout, and write the outcome to the audit log.

    Counting the account's failures, checking the password and recording
    the outcome are one step per account (:func:`_one_attempt_at_a_time`):
    thirty parallel attempts check five passwords, and the others are
    refused as locked without a check.
    """
    now = now or dt.datetime.now()
    name = (name or "").strip()
    user = directory.users.get(name)
    who = name if user else UNKNOWN_USER
    detail = {} if user else {"attempt": name_key(name)}
    with _one_attempt_at_a_time(db_path, name if user else "?" + detail["attempt"]):
        failures = audit.failures_since_last_success(db_path, who, LOCKOUT, now,
                                                     attempt=detail.get("attempt"))
        if failures >= MAX_FAILURES:
            audit.record(db_path, "locked_out", user=who, at=now, **detail)
            return SignIn(False, None, None, "Too many failed sign-ins: this account is locked "
                          f"for {int(LOCKOUT.total_seconds() // 60)} minutes.", locked=True)
        # Check a hash even for an unknown user, so timing does not reveal names.
        candidate = user.password_hash if user else _no_user_hash()
        if check_password(password or "", candidate) and user:
            audit.record(db_path, "sign_in", user=name, role=user.role, at=now)
            return SignIn(True, name, user.role, f"Signed in as {name} ({user.role}).")
        audit.record(db_path, "sign_in_failed", user=who, at=now, **detail)
    left = MAX_FAILURES - failures - 1
    message = "Wrong user name or password."
    if 0 < left <= 2:
        message += f" {left} more failed attempt{'s' if left > 1 else ''} will lock the account."
    elif left <= 0:
        message += " The account is now locked for 15 minutes."
    return SignIn(False, None, None, message, locked=left <= 0)


@functools.cache
def _no_user_hash() -> str:
    """A real bcrypt hash (the default cost, as users' are) checked for a
    name that is no user's: a malformed one fails at once and would tell the
    names apart by timing.  Made on first use, not at every import."""
    return bcrypt.hashpw(b"no user has this password", bcrypt.gensalt()).decode("ascii")


# -- one attempt at a time per account ---------------------------------------

class _FifoLock:
    """A lock that lets waiters in by order of arrival: attempts on one
    account are judged in the order they came in."""

    def __init__(self):
        self._turn = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self):
        with self._turn:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._turn.wait()

    def __exit__(self, *exc):
        with self._turn:
            self._serving += 1
            self._turn.notify_all()


_BUCKETS = 1024  # accounts share a lock per bucket: bounded, whatever names are tried
_in_process: dict[tuple[str, int], _FifoLock] = {}
_lock_files: dict[str, int] = {}
_guard = threading.Lock()


@contextmanager
def _one_attempt_at_a_time(db_path: str | os.PathLike, account: str) -> Iterator[None]:
    """Hold the account's lock: first in this process (FIFO, threads), then
    across processes (an exclusive byte-range lock on the account's byte of
    a lock file beside the audit log; the operating system releases it if a
    process dies)."""
    lock_file = os.path.abspath(audit.audit_path(db_path)) + ".sign-in.lock"
    bucket = int(hashlib.sha256(account.encode("utf-8")).hexdigest()[:8], 16) % _BUCKETS
    with _guard:
        local = _in_process.setdefault((lock_file, bucket), _FifoLock())
        descriptor = _lock_files.get(lock_file)
        if descriptor is None:
            # Kept open for the life of the process: closing any descriptor
            # of the file would drop every lock this process holds on it.
            Path(lock_file).parent.mkdir(parents=True, exist_ok=True)
            descriptor = _lock_files[lock_file] = os.open(lock_file, os.O_RDWR | os.O_CREAT,
                                                          0o600)
    with local:
        fcntl.lockf(descriptor, fcntl.LOCK_EX, 1, bucket)
        try:
            yield
        finally:
            fcntl.lockf(descriptor, fcntl.LOCK_UN, 1, bucket)


def expired(last_seen: dt.datetime, now: dt.datetime | None = None,
            timeout: dt.timedelta = SESSION_TIMEOUT) -> bool:
    return (now or dt.datetime.now()) - last_seen > timeout
