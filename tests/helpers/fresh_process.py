"""Python code run in a fresh interpreter (what a command or a cron call
imports and does, unaffected by the test process's own imports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_json(code: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> dict:
    """Run ``code`` with this interpreter; it must succeed and print a JSON
    object on its last line, which is returned."""
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
