#!/usr/bin/env bash
# Install, then open the dashboard (on the bundled demo clinic unless a clinic
# database exists at data/outcomes.duckdb or OUTCOMES_DB points at one).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m streamlit run dashboard.py "$@"
