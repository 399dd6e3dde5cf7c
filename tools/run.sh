#!/usr/bin/env bash
# The course's two entry points, each working on a fresh clone:
#   bash tools/run.sh main   set up, prepare Tiny Shakespeare, train a small model on the CPU, print a sample
#   bash tools/run.sh test   set up, run the whole test suite (package, notebooks, book)
# Set-up creates .venv (CPU build of torch first, then the package with its dev extras) once.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${LLMCOURSE_VENV:-$ROOT/.venv}

stage_start=0
stage() { stage_start=$(date +%s); echo "=== [$(date +%H:%M:%S)] $*"; }
stage_end() { echo "=== stage took $(( $(date +%s) - stage_start ))s"; }

setup() {
  stage "set-up: virtual environment in $VENV"
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  if ! python -c "import torch" 2>/dev/null; then
    # torch first, on its own, pinned to the version the course is tested with. On Linux,
    # PyPI's default wheel is the CUDA build (several GB): LLMCOURSE_TORCH_INDEX (e.g.
    # https://download.pytorch.org/whl/cpu, as the GitHub workflows set it) names the index
    # of the CPU build (README, "The two commands").
    python -m pip install -q "torch==2.13.0" ${LLMCOURSE_TORCH_INDEX:+--index-url "$LLMCOURSE_TORCH_INDEX"}
  fi
  python -m pip install -q -e ".[dev]"
  stage_end
}

main_job() {
  setup
  stage "main job: prepare Tiny Shakespeare, train on the CPU, sample"
  out=${LLMCOURSE_OUT:-$ROOT/out/shakespeare-char-fast}
  llmcourse prepare shakespeare --tokenizer char
  llmcourse train --preset shakespeare-char-fast --set out_dir="$out" --set overwrite=true
  llmcourse sample --checkpoint "$out" --max-new-tokens 300 --seed 1337
  stage_end
}

test_job() {
  setup
  export MPLBACKEND=Agg
  # Two test workers on two cores: one thread each, or torch's threads fight over the cores
  # (measured: a small model's step went from 1.6 ms to 38 ms under oversubscription). The
  # count is the course's one thread policy (llmcourse/threads.py: 1, or $LLMCOURSE_THREADS).
  threads=$(python -m llmcourse.threads --export)
  eval "$threads"
  if ! command -v bwrap >/dev/null; then
    # bubblewrap confines `llmcourse check` on collected notebooks (book/exercises.md); its
    # tests skip, saying why, where it cannot be installed.
    echo "installing Debian's bubblewrap (needs root and the package mirror)"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap \
      || { $sudo apt-get update -q && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap; }; } \
      || echo "bubblewrap not installed: the confinement tests of llmcourse check will skip"
  fi
  stage "tests: package (pytest)"
  python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile tests
  stage_end
  if [ -x tools/test_notebooks.sh ]; then
    bash tools/test_notebooks.sh
  fi
}

case "${1:-}" in
  main) main_job ;;
  test) test_job ;;
  setup) setup ;;  # only the virtual environment (the book workflow's first step)
  *) echo "usage: bash tools/run.sh main|test|setup" >&2; exit 2 ;;
esac
