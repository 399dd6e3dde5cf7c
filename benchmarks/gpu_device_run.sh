#!/usr/bin/env bash
# The one command for a lent GPU machine (CONTRIBUTING.md, "The GPU acceptance run").
#
# Here, first:   bash benchmarks/gpu_device_run.sh --prepare
#   copies Tiny Shakespeare and the tiktoken cache into .gpudata/ (ignored by git), which the
#   device call carries: carry [".gpudata"], command "bash benchmarks/gpu_device_run.sh",
#   timeout_s 450 (both passes together stop within TOTAL_S, default 440 s).
# There:         bash benchmarks/gpu_device_run.sh
#   runs benchmarks/gpu_acceptance.py twice, the card as it is (CUDA_BUDGET_S, default 260 s)
#   and the T4 stand-in (T4_BUDGET_S, default 110 s), each under `timeout` and writing its
#   results after every step, so a run killed at its limit still leaves what it measured. All
#   files go to $OUT (at most 8 come back): the two JSON and Markdown results, the two logs and
#   machine.txt.
# Back here:     python benchmarks/gpu_acceptance.py --ingest <the folder the files came back to>
#
# GPU_ACCEPTANCE_SMOKE=1 runs the same sequence on the CPU at tiny sizes (tests/test_gpu_device_run.py).
set -u
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
  data=${LLMCOURSE_DATA_DIR:-}
  cache=${TIKTOKEN_CACHE_DIR:-}
  if [ -z "$data" ] || [ ! -f "$data/tinyshakespeare.txt" ]; then
    echo "gpu_device_run: error: set LLMCOURSE_DATA_DIR to a folder holding tinyshakespeare.txt" >&2
    exit 2
  fi
  mkdir -p .gpudata/data .gpudata/tiktoken_cache
  cp "$data/tinyshakespeare.txt" .gpudata/data/
  if [ -n "$cache" ] && [ -d "$cache" ]; then cp -r "$cache/." .gpudata/tiktoken_cache/; fi
  grep -qx '/.gpudata/' .git/info/exclude 2>/dev/null || echo '/.gpudata/' >> .git/info/exclude
  echo "prepared .gpudata ($(du -sh .gpudata | cut -f1)); carry it: carry [\".gpudata\"]"
  exit 0
fi
if [ $# -gt 0 ]; then
  echo "gpu_device_run: error: unknown argument '$1'; give none (on the GPU machine) or --prepare (here)" >&2
  exit 2
fi

: "${OUT:?gpu_device_run: error: OUT is not set; the device tool sets it (or set OUT=folder to try it here)}"
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if [ -d .gpudata ]; then
  export LLMCOURSE_DATA_DIR="$PWD/.gpudata/data" TIKTOKEN_CACHE_DIR="$PWD/.gpudata/tiktoken_cache"
fi
CUDA_BUDGET_S=${CUDA_BUDGET_S:-260}
T4_BUDGET_S=${T4_BUDGET_S:-110}
TOTAL_S=${TOTAL_S:-440}   # both passes, hung steps included: under the device call's timeout_s 450
args=(--out "$OUT")
modes=("" "--t4")
if [ "${GPU_ACCEPTANCE_SMOKE:-0}" = 1 ]; then
  args+=(--cpu-smoke)
  modes=("")
  for step in ${GPU_ACCEPTANCE_ONLY:-}; do args+=(--only "${step//_/ }"); done
fi

{
  date -u
  nvidia-smi 2>&1 | head -20
  "$PY" -c 'import sys, torch; print(sys.version); print("torch", torch.__version__, "cuda", torch.version.cuda,
"gpus", torch.cuda.device_count() if torch.cuda.is_available() else 0)'
} > "$OUT/machine.txt" 2>&1

status=0
for mode in "${modes[@]}"; do
  if [ "$mode" = "--t4" ]; then budget=$T4_BUDGET_S; log=t4.log; else budget=$CUDA_BUDGET_S; log=cuda.log; fi
  # The plan stops starting steps at its budget; `timeout` stops a step that hangs in C code, a
  # minute after the budget or when TOTAL_S runs out, whichever comes first (SECONDS: since start).
  left=$((TOTAL_S - SECONDS))
  limit=$((budget + 60 < left ? budget + 60 : left))
  if [ "$limit" -le 20 ]; then
    echo "gpu_acceptance ${mode:-(cuda)} skipped: ${left}s left of TOTAL_S=${TOTAL_S}" | tee "$OUT/$log"
    status=124
    continue
  fi
  budget=$((budget < limit - 20 ? budget : limit - 20))
  timeout -k 5 "$limit" "$PY" benchmarks/gpu_acceptance.py "${args[@]}" $mode --budget "$budget" \
    > "$OUT/$log" 2>&1
  rc=$?
  tail -n 25 "$OUT/$log"
  echo "gpu_acceptance ${mode:-(cuda)} exited with $rc"
  [ $rc -eq 0 ] || status=$rc
done
exit $status
