"""Users, roles and sign-in checks (no Streamlit here).

Users live in a TOML file outside the repository (``OUTCOMES_USERS``, else
``~/.config/ketamine-outcomes/users.toml``) with bcrypt password hashes::

    [users.drlee]
    role = "clinical"
    password_hash = "$2b$12$..."

    [oidc_roles]            # optional: roles for Streamlit's OIDC sign-in
    "lee@clinic.example" = "clinical"

Create entries with ``python -m analysis users add NAME --role ROLE``.
Five failed sign-ins within 15 minutes lock a user out for 15 minutes.

:func:`may_write` is the one rule for "may this session write?": every
path that writes a clinic's data (saving an upload, ingesting it) needs the
:class:`WriteGrant` it returns.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from analysis import audit, db

ROLES = ("clinical", "analyst", "marketing")
#: Roles that may load exports into the clinic's database (once signed in).
WRITER_ROLES = ("clinical", "analyst")
MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
SESSION_TIMEOUT = dt.timedelta(minutes=30)
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
                           "with `python -m analysis ingest`).")
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


def sign_in(db_path: str | os.PathLike, directory: UserDirectory, name: str, password: str,
            now: dt.datetime | None = None) -> SignIn:
    """Check a password, with lockout, and write the outcome to the audit log."""
    now = now or dt.datetime.now()
    name = (name or "").strip()
    failures = audit.failures_since_last_success(db_path, name, LOCKOUT, now) if name else 0
    if failures >= MAX_FAILURES:
        audit.record(db_path, "locked_out", user=name, at=now)
        return SignIn(False, None, None, "Too many failed sign-ins: this account is locked "
                      f"for {int(LOCKOUT.total_seconds() // 60)} minutes.", locked=True)
    user = directory.users.get(name)
    # Check a hash even for an unknown user, so timing does not reveal names.
    candidate = user.password_hash if user else "$2b$12$" + "." * 53
    if user and check_password(password or "", candidate):
        audit.record(db_path, "sign_in", user=name, role=user.role, at=now)
        return SignIn(True, name, user.role, f"Signed in as {name} ({user.role}).")
    if not user:
        check_password(password or "", candidate)
    audit.record(db_path, "sign_in_failed", user=name or None, at=now)
    left = MAX_FAILURES - failures - 1
    message = "Wrong user name or password."
    if 0 < left <= 2:
        message += f" {left} more failed attempt{'s' if left > 1 else ''} will lock the account."
    elif left <= 0:
        message += " The account is now locked for 15 minutes."
    return SignIn(False, None, None, message, locked=left <= 0)


def expired(last_seen: dt.datetime, now: dt.datetime | None = None,
            timeout: dt.timedelta = SESSION_TIMEOUT) -> bool:
    return (now or dt.datetime.now()) - last_seen > timeout
