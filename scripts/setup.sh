#!/usr/bin/env bash
# Installs what the project needs into .venv (and, with --system, the Debian
# packages the tests use: chromium for end-to-end tests, poppler for PDFs).
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=${REQUIREMENTS:-requirements.txt}
if [ "${1:-}" = "--system" ]; then
  requirements=requirements-dev.txt
  if ! command -v chromium >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium poppler-utils >/dev/null
  fi
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -r "$requirements"
