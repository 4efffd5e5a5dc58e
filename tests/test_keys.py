"""The clinic's secret keys: created once with mode 600 outside the
repository, the same on every use, and pseudonyms that are stable but not
reversible without the key."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import subprocess
import sys
import threading

import pytest

from analysis.access import keys

ROOT = keys.Path(__file__).resolve().parent.parent


@pytest.fixture
def key_folder(tmp_path, monkeypatch):
    folder = tmp_path / "keys"
    monkeypatch.setenv("OUTCOMES_SECRETS_DIR", str(folder))
    keys.forget()
    yield folder
    keys.forget()


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_key_is_created_once_with_owner_only_modes(key_folder):
    first = keys.key("pseudonym")
    assert len(first) == keys.KEY_BYTES
    assert mode(key_folder / "pseudonym.key") == 0o600
    assert mode(key_folder) == 0o700
    keys.forget()
    assert keys.key("pseudonym") == first          # read back, not made again
    assert keys.key("audit") != first              # one key per use


def test_the_keys_live_outside_the_repository_by_default(monkeypatch):
    monkeypatch.delenv("OUTCOMES_SECRETS_DIR")
    assert ROOT not in keys.secrets_dir().resolve().parents


def test_a_loosened_key_file_is_made_private_again(key_folder):
    keys.key("audit")
    os.chmod(key_folder / "audit.key", 0o644)
    keys.forget()
    keys.key("audit")
    assert mode(key_folder / "audit.key") == 0o600


def test_threads_creating_the_key_at_once_agree(key_folder):
    seen = []

    def read():
        keys.forget()
        seen.append(keys.key("pseudonym"))

    threads = [threading.Thread(target=read) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1
    assert sorted(p.name for p in key_folder.iterdir()) == ["pseudonym.key"]


def test_processes_creating_the_key_at_once_agree(key_folder):
    code = "from analysis.access import keys; print(keys.key('pseudonym').hex())"
    env = {**os.environ, "OUTCOMES_SECRETS_DIR": str(key_folder)}
    runs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, text=True) for _ in range(6)]
    printed = {run.communicate()[0].strip() for run in runs}
    assert len(printed) == 1


def test_a_damaged_key_file_is_refused_not_replaced(key_folder):
    key_folder.mkdir(parents=True)
    (key_folder / "audit.key").write_text("not hex")
    with pytest.raises(keys.KeyFileError):
        keys.key("audit")
    assert (key_folder / "audit.key").read_text() == "not hex"


def test_pseudonym_is_hmac_sha256_of_the_normalised_value(key_folder):
    key = keys.key("pseudonym")
    expected = hmac.new(key, b"mrn-0012", hashlib.sha256).hexdigest()[:keys.PSEUDONYM_HEX]
    assert keys.pseudonym("MRN-0012") == keys.PSEUDONYM_PREFIX + expected
    assert keys.pseudonym("  mrn-0012 ") == keys.pseudonym("MRN-0012")
    assert keys.pseudonym("MRN-0013") != keys.pseudonym("MRN-0012")
    assert "0012" not in keys.pseudonym("MRN-0012")


def test_another_clinic_key_gives_other_pseudonyms(key_folder, tmp_path, monkeypatch):
    ours = keys.pseudonym("Jane Doe")
    monkeypatch.setenv("OUTCOMES_SECRETS_DIR", str(tmp_path / "other"))
    keys.forget()
    assert keys.pseudonym("Jane Doe") != ours


def test_key_names_cannot_walk_out_of_the_folder(key_folder):
    for bad in ("../x", "a/b", "", "A"):
        with pytest.raises(ValueError):
            keys.key_path(bad)
