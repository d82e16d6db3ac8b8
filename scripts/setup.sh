#!/usr/bin/env bash
# Create .venv and install mixmerge with pinned CPU dependencies (torch first: a free resolver would pull a
# multi-GB CUDA build). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
# bubblewrap: the local code sandbox (src/mixmerge/verifiers/sandbox.py). Installed only when missing.
if ! command -v bwrap >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q bubblewrap >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null; }
  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
    sudo apt-get install -y -q bubblewrap >/dev/null
  else
    echo "setup.sh: install bubblewrap (bwrap) for the local code sandbox, or set reward.sandbox_backend: fusion" >&2
  fi
fi
# chromium: the report's real-browser test (tests/test_report_html.py) opens the HTML report headless. Optional:
# without it that test skips and says why. Installed only when missing; a failure here is not fatal.
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    { apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; } \
      || echo "setup.sh: could not install chromium (apt-get); the HTML report browser test will skip" >&2
  else
    echo "setup.sh: chromium not installed (needs root and apt-get); the HTML report browser test will skip" >&2
  fi
fi
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import mixmerge, trl, mergekit, snakemake, tensorboard" 2>/dev/null; then
  python -m pip install -q --upgrade pip
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -c constraints-cpu.txt -e ".[test]"
fi
python -m pip check >/dev/null
