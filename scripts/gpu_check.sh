#!/usr/bin/env bash
# GPU check: run the CI-sized grid (tests/ci_config.yaml) on CUDA with the HF generate backend, in a scratch
# directory, and print where the time went. Each GPU job costs about 16 s (interpreter, imports, CUDA start),
# and on one GPU they run one at a time: measured on an H200, the whole grid (91 jobs) needs about 25 minutes.
# --quick runs one path through every stage (base, data, SFT, the 5 GRPO runs, opd (2 distillation steps on CUDA),
# one study-exact merge, 2 evals).
#
#   scripts/gpu_check.sh            # needs an environment with CUDA torch: pip install -e ".[gpu]"
#   scripts/gpu_check.sh --quick    # every stage once: about 3 minutes on one GPU
#   scripts/gpu_check.sh --dry-run  # no GPU needed: check the wiring (snakemake -n) only (add --quick: its part)
#
# Environment: PYTHON (interpreter, default python3), CI_CONFIG (default tests/ci_config.yaml),
# GPU_CHECK_DIR (scratch directory, default a new temporary one), GPU_CHECK_BUDGET_S (default 1800, --quick 300).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
CI_CONFIG=$(realpath "${CI_CONFIG:-$REPO/tests/ci_config.yaml}")
DRY=0
QUICK=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    --quick) QUICK=1 ;;
    *) echo "gpu_check: unknown argument $arg (use --quick, --dry-run)" >&2; exit 2 ;;
  esac
done
BUDGET=${GPU_CHECK_BUDGET_S:-$([ "$QUICK" = 1 ] && echo 300 || echo 1800)}
TARGETS=()
[ "$QUICK" = 1 ] && TARGETS=(results/eval/rl-mixed/math.json results/eval/merge-ties-study/instruct.json
                             results/models/opd)
[ -f "$CI_CONFIG" ] || { echo "gpu_check: $CI_CONFIG not found" >&2; exit 2; }
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"

if [ "$DRY" = 1 ]; then
  NGPU=1
else
  NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
  [ "$NGPU" -ge 1 ] || { echo "gpu_check: torch sees no CUDA device" >&2; exit 2; }
  "$PY" -c "import torch; print('gpu_check:', torch.cuda.device_count(), 'x', torch.cuda.get_device_name(0), \
'| torch', torch.__version__, '| CUDA', torch.version.cuda)"
fi

WORK=${GPU_CHECK_DIR:-$(mktemp -d -t mixmerge-gpu-check.XXXXXX)}
mkdir -p "$WORK"
cat > "$WORK/gpu.yaml" <<'EOF'
gpus: {sft: 1, grpo: 1, opd: 1, merge: 0, eval: 1}
grpo: {trl: {use_vllm: false}}
opd: {trl: {use_vllm: false}}
eval: {backend: hf}
EOF
# A --configfile replaces config/config.yaml, so write one complete file: default + CI sizes + GPU settings.
PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m mixmerge config --base "$REPO/config/config.yaml" \
  --overlay "$CI_CONFIG" --overlay "$WORK/gpu.yaml" --out "$WORK/config.yaml"
SNAKE=("$PY" -m snakemake ${TARGETS[@]+"${TARGETS[@]}"} -s "$REPO/workflow/Snakefile" --directory "$WORK"
       --configfile "$WORK/config.yaml" --cores all --resources "gpu=$NGPU")  # targets first: --resources takes nargs
echo "gpu_check: workdir $WORK, $NGPU GPU(s), budget ${BUDGET}s"

if [ "$DRY" = 1 ]; then
  "${SNAKE[@]}" -n -p > "$WORK/dry_run.txt"
  grep -q -- "mixmerge.compute.launch --gpus 1 --job grpo" "$WORK/dry_run.txt" \
    || { echo "gpu_check: GRPO jobs are not launched on 1 GPU" >&2; exit 1; }
  grep -q -- "mixmerge.compute.launch --gpus 1 --job opd" "$WORK/dry_run.txt" \
    || { echo "gpu_check: the opd job is not launched on 1 GPU" >&2; exit 1; }
  grep -c "^rule " "$WORK/dry_run.txt" | sed 's/^/gpu_check: dry run OK, jobs: /'
  exit 0
fi

START=$(date +%s)
"${SNAKE[@]}"
ELAPSED=$(( $(date +%s) - START ))

"$PY" - "$WORK" "$ELAPSED" "$BUDGET" "$QUICK" <<'EOF'
import json, re, sys
from pathlib import Path

import pandas as pd

work, elapsed, budget, quick = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
rows = []
for tsv in sorted((work / "benchmarks").rglob("*.tsv")):
    rows.append({"stage": tsv.relative_to(work / "benchmarks").parts[0], "job": tsv.stem,
                 "wall_s": float(pd.read_csv(tsv, sep="\t")["s"].mean())})
jobs = pd.DataFrame(rows)
print(jobs.groupby("stage")["wall_s"].agg(["count", "sum", "max"]).round(1).to_string())
devices = set()
for log in (work / "logs").rglob("*.log"):
    m = re.search(r"\[launch\] job '(\w+)': CUDA_VISIBLE_DEVICES=([^ ]*)", log.read_text(errors="replace"))
    if m and m.group(1) in ("sft", "grpo", "opd", "eval"):
        devices.add(m.group(2))
backends = {json.loads(p.read_text())["backend"] for p in (work / "results/eval").glob("*/*.json")}
report = work / "results/report/compute_table.md"
print(f"devices used by GPU jobs: {sorted(devices)}; eval backends: {sorted(backends)}")
print(report.read_text().splitlines()[-1] if report.exists() else "no report")
stages = set(jobs["stage"]) if len(jobs) else set()
ok = (elapsed <= budget and devices and "" not in devices and backends == {"hf"}
      and {"sft", "grpo", "opd", "merge", "eval"} <= stages and (quick or report.exists()))
print(f"gpu_check: total {elapsed} s (budget {budget} s): {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
EOF
