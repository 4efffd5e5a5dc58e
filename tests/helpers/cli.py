"""The command line (``python -m analysis``) run in the test's process."""

from __future__ import annotations

import json

from analysis import cli


def run(capsys, *argv) -> tuple[int, str, str]:
    """Exit code, standard output and standard error of one command."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv) -> dict:
    """The ``--json`` answer of a command that succeeds."""
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    assert "NaN" not in out and "Infinity" not in out
    return json.loads(out)
