#!/usr/bin/env bash
# The test command: set up, then run the whole test suite (includes a CI-sized end-to-end DAG run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. .venv/bin/activate
exec python -m pytest -q "$@"
