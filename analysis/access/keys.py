"""The clinic's secret keys, kept outside the database and the repository.

One folder holds them: ``OUTCOMES_SECRETS_DIR``, else
``~/.config/ketamine-outcomes/keys`` (mode 700).  Each key is a file of 32
random bytes (hex) named after its use, created on first use with mode 600
and never rewritten:

* ``pseudonym.key`` turns an identifying patient key (an MRN, a name) into a
  stable pseudonym (:func:`pseudonym`): the same value gives the same
  pseudonym on every ingest, and without the key nobody can go back.
* ``audit.key`` signs the audit log's rows (HMAC), so a recomputed chain is
  detected.

Back the folder up with the database: without ``pseudonym.key`` a later
export keyed by MRN no longer matches the rows already stored, and without
``audit.key`` the audit log cannot be verified.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import threading
import unicodedata
from pathlib import Path

KEY_BYTES = 32
PSEUDONYM_PREFIX = "px_"
PSEUDONYM_HEX = 20  # 80 bits: no collision among any clinic's patients
_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")

_cache: dict[tuple[str, str], bytes] = {}
_lock = threading.Lock()


class KeyFileError(Exception):
    """A key file exists but cannot be used (wrong size, unreadable)."""


def secrets_dir() -> Path:
    env = os.environ.get("OUTCOMES_SECRETS_DIR")
    return Path(env) if env else Path.home() / ".config" / "ketamine-outcomes" / "keys"


def key_path(name: str) -> Path:
    if not name or not set(name) <= _NAME_OK:
        raise ValueError(f"not a key name: {name!r}")
    return secrets_dir() / f"{name}.key"


def private_file(path: Path) -> None:
    """Make an existing file readable by its owner only (mode 600)."""
    try:
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    except FileNotFoundError:
        pass


def key(name: str) -> bytes:
    """The key ``name``, created (mode 600) on first use.

    Two processes creating it at once agree: the file is created with
    O_EXCL, so one writes it and the other reads what was written.
    """
    path = key_path(name)
    cache_key = (str(path), name)
    with _lock:
        cached = _cache.get(cache_key)
        if cached is not None:
            return cached
        value = _read_or_create(path)
        _cache[cache_key] = value
        return value


def private_folder(folder: Path) -> None:
    """Create the keys folder (mode 700) if needed."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.chmod(folder, 0o700)
    except PermissionError:  # pragma: no cover - a folder owned by someone else
        pass


def _read_or_create(path: Path) -> bytes:
    folder = path.parent
    private_folder(folder)
    if not path.exists():
        fresh = secrets.token_bytes(KEY_BYTES).hex() + "\n"
        temporary = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, fresh.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)  # fails if another process made it first
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
    private_file(path)
    text = path.read_text(encoding="ascii").strip()
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"{path} is not a key file (expected {KEY_BYTES} bytes in hex)") from None
    if len(value) != KEY_BYTES:
        raise KeyFileError(f"{path} is not a key file (expected {KEY_BYTES} bytes in hex)")
    return value


def forget() -> None:
    """Drop keys read into memory (tests that point at another folder)."""
    with _lock:
        _cache.clear()


def mac(name: str, message: bytes) -> str:
    """HMAC-SHA-256 of ``message`` under the key ``name``, hex."""
    return hmac.new(key(name), message, hashlib.sha256).hexdigest()


def normalise_identifier(value: str) -> str:
    """The form of an identifying key that is pseudonymised: Unicode NFKC,
    surrounding blanks trimmed, inner runs of blanks as one space, case-blind
    (``' mrn-0012 '`` and ``'MRN-0012'`` are one patient)."""
    text = unicodedata.normalize("NFKC", str(value))
    return " ".join(text.split()).casefold()


def pseudonym(value: str) -> str:
    """A stable pseudonym for an identifying patient key (HMAC-SHA-256 under
    the clinic's ``pseudonym`` key); the raw value cannot be recovered."""
    digest = mac("pseudonym", normalise_identifier(value).encode("utf-8"))
    return PSEUDONYM_PREFIX + digest[:PSEUDONYM_HEX]

