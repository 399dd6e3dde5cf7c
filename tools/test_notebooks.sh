#!/usr/bin/env bash
# The notebooks and the book as regression tests (called by `bash tools/run.sh test` after
# pytest; runs on its own too, from the repository root, inside the project's venv):
#   1. the generated files are current        python -m tools.nb check
#   2. solved notebooks reproduce their stored outputs on ANOTHER instruction set than this
#      CPU's own (ATEN_CPU_CAPABILITY=avx2, or default where the CPU's own is AVX2):
#      pytest --nbval -p tools.nbtolerance solutions/*.ipynb. The build stored the outputs with
#      some CPU's own kernels, so one pass on other kernels tests that they do not depend on the
#      instruction set (the guide's rule) without a second, same-CPU pass.
#      LLMCOURSE_NB_NATIVE=1 adds a pass with this CPU's own kernels (2b);
#      LLMCOURSE_NB_EMULATE=0 runs the pass with this CPU's own kernels instead.
#   3. lesson notebooks (stubs) run without errors       pytest --nbval-lax lessons/*.ipynb
#      (but those stage 6 runs against this checkout's package: python -m tools.colab_rehearsal --sample --covers)
#   4. the book builds with no warning         jupyter-book build . -W -n --keep-going
#   5. the built book works in a browser       python -m tools.browser_test
#   6. a Colab rehearsal of one lesson a week  python -m tools.colab_rehearsal --sample
#      (a fresh venv, the set-up cell's pip install from a local clone at the release tag, the
#      lesson copied out of the repository, data from a local HTTP server; LLMCOURSE_NB_REHEARSAL=0 skips it)
# Every stage prints its wall time. Stages 2-3 are skipped, with a message, while no lesson exists.
# Outputs are compared as CONTRIBUTING.md ("Outputs are regression tests") says: text and
# integers exactly, decimals within 1% or two units of the last digit (tools/nbtolerance.py).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${VIRTUAL_ENV:-}" ] && [ -x .venv/bin/python ]; then
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
# The kernels draw plots inline (as when the outputs were stored) and hash strings alike.
export MPLBACKEND=module://matplotlib_inline.backend_inline
export PYTHONHASHSEED=0
export CUDA_VISIBLE_DEVICES=""
JOBS=${LLMCOURSE_NB_JOBS:-2}

total_start=$(date +%s)
stage_start=0
stage() { stage_start=$(date +%s); echo "=== [$(date +%H:%M:%S)] notebooks: $*"; }
stage_end() { echo "=== stage took $(( $(date +%s) - stage_start ))s"; }

# pytest exits 5 when it collected nothing; that is not a failure here.
pytest_ok() { local rc=0; "$@" || rc=$?; if [ "$rc" -eq 5 ]; then echo "(no notebook tests collected)"; return 0; fi; return "$rc"; }

shopt -s nullglob
solutions=(solutions/day*.ipynb)
lessons=(lessons/day*.ipynb)

stage "1/6 generated files are current (python -m tools.nb check)"
python -m tools.nb check
stage_end

# Each notebook stage gets a temporary folder of its own: lessons that share a trained model
# through tempfile.gettempdir() (days 19-20) train it afresh in every stage, under that stage's
# CPU settings, and nothing left in /tmp by an earlier run is read.
NB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/llmcourse-nb.XXXXXX")
trap 'rm -rf "$NB_TMP"' EXIT
fresh_tmp() { mktemp -d "$NB_TMP/stage.XXXXXX"; }

# A kernel gets 300 s to start, not nbval's 60: on a busy 2-core machine one lesson's kernel of
# 36 once missed the 60 s (the lesson itself passed when run again).
nbval_solutions() {
  TMPDIR=$(fresh_tmp) pytest_ok python -m pytest -q -p no:cacheprovider -p tools.nbtolerance --nbval --nbval-current-env \
    -n "$JOBS" --dist loadfile --nbval-sanitize-with tools/sanitize.cfg --nbval-cell-timeout 900 --nbval-kernel-startup-timeout 300 "${solutions[@]}"
}

native=$(python -c "import torch; print(torch.backends.cpu.get_cpu_capability())")
if [ "$native" = "AVX2" ]; then emulate=default; else emulate=avx2; fi
if [ "${LLMCOURSE_NB_EMULATE:-1}" = "0" ]; then emulate=""; fi
stage "2/6 solved notebooks reproduce their stored outputs (nbval, ${#solutions[@]} notebooks, CPU capability ${emulate:-$native} on a $native CPU, ${OMP_NUM_THREADS:-all} torch thread(s))"
if [ ${#solutions[@]} -eq 0 ]; then
  echo "no solutions/day*.ipynb yet: skipped"
elif [ -n "$emulate" ]; then
  ATEN_CPU_CAPABILITY=$emulate nbval_solutions
else
  nbval_solutions
fi
stage_end

if [ "${LLMCOURSE_NB_NATIVE:-0}" = "1" ] && [ -n "$emulate" ] && [ ${#solutions[@]} -gt 0 ]; then
  stage "2b/6 solved notebooks again with this CPU's own kernels ($native)"
  nbval_solutions
  stage_end
fi

# The lessons stage 6 rehearses run top to bottom there, with their stubs, in a Colab-like venv
# that installs this checkout's package: stage 3 leaves them out (when the rehearsal would install
# another commit's package, --covers prints nothing and stage 3 runs them all).
rehearsed=()
if [ "${LLMCOURSE_NB_REHEARSAL:-1}" != "0" ] && [ ${#lessons[@]} -gt 0 ]; then
  mapfile -t rehearsed < <(python -m tools.colab_rehearsal --sample --covers)
fi
stubbed=()
for nb in "${lessons[@]}"; do
  case " ${rehearsed[*]} " in *" $nb "*) ;; *) stubbed+=("$nb") ;; esac
done
stage "3/6 lesson notebooks run with their stubs (nbval-lax, ${#stubbed[@]} notebooks${rehearsed:+; stage 6 runs the other ${#rehearsed[@]}})"
if [ ${#lessons[@]} -eq 0 ]; then
  echo "no lessons/day*.ipynb yet: skipped"
else
  TMPDIR=$(fresh_tmp) pytest_ok python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env -n "$JOBS" --dist loadfile \
    --nbval-cell-timeout 900 --nbval-kernel-startup-timeout 300 "${stubbed[@]}"
fi
stage_end

stage "4/6 book: vendored JavaScript, then jupyter-book build -W -n (tools/build_book.sh)"
bash tools/build_book.sh
stage_end

stage "5/6 browser test of the built book"
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium (needs root and the Debian package mirror)"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  else
    sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  fi
fi
python -m tools.browser_test
stage_end

if [ "${LLMCOURSE_NB_REHEARSAL:-1}" != "0" ]; then
  stage "6/6 Colab rehearsal: one lesson a week, installed and run as in Colab (python -m tools.colab_rehearsal --sample)"
  TMPDIR=$(fresh_tmp) python -m tools.colab_rehearsal --sample -j "$JOBS"
  stage_end
fi

echo "=== notebooks and book: all stages passed in $(( $(date +%s) - total_start ))s"
