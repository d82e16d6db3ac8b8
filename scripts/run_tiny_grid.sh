#!/usr/bin/env bash
# The main job: set up, then run the whole tiny mix-vs-merge grid on CPU. Extra arguments go to snakemake.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. .venv/bin/activate
exec snakemake --cores all "$@"
