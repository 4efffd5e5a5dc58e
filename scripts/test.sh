#!/usr/bin/env bash
# Install everything (Python packages, Debian's chromium and poppler) and run
# the whole test suite: unit, engine, AppTest pages and headless-browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --system
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
