#!/usr/bin/env bash
# Set up Assay in ./.venv: Python packages (torch pinned to the CPU build), and htmx from npm.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: 2.13.0 is the CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
# htmx is served from its installed npm package, never a committed copy.
npm ci --no-audit --no-fund --loglevel=error
echo "Assay is set up: .venv/bin/assay --help"
