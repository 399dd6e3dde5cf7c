#!/usr/bin/env bash
# Build the Jupyter Book into _build/html, failing on any warning. One command for the test
# suite (tools/test_notebooks.sh, stage 4) and the publishing workflow (.github/workflows/book.yml),
# so that what is tested is what is published. Run from the repository root, inside the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m tools.vendor
# --all: a full build, so that warnings of unchanged pages are not hidden by the cache.
jupyter-book build . --all -W -n --keep-going
