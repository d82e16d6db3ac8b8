#!/usr/bin/env bash
# Create .venv and install mixmerge with pinned CPU dependencies (torch first: a free resolver would pull a
# multi-GB CUDA build). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import mixmerge, trl, mergekit, snakemake, periodictable" 2>/dev/null; then
  python -m pip install -q --upgrade pip
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -c constraints-cpu.txt -e ".[test]"
fi
python -m pip check >/dev/null
