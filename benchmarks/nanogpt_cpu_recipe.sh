#!/usr/bin/env bash
# Rerun nanoGPT's own train.py with the CPU recipe of its README ("I only have a macbook"), the
# source of the 1.89 milestone in llmcourse/train/evaluate.py, and keep what it printed.
#
#   NANOGPT_DIR=/path/to/nanoGPT [NANOGPT_COMMIT=<hash>] bash benchmarks/nanogpt_cpu_recipe.sh
#
# NANOGPT_DIR is a nanoGPT checkout (a `git archive` has no .git: then pass NANOGPT_COMMIT).
# Tiny Shakespeare comes from the course's data loader (offline: $LLMCOURSE_DATA_DIR), copied to
# nanoGPT's data/shakespeare_char/input.txt so that its prepare.py finds it and downloads nothing.
# Threads follow the course's policy (python -m llmcourse.threads); the README names none.
# nanoGPT's out_dir and the full log go to a temporary folder; the one file written here is
# benchmarks/results/nanogpt_cpu_recipe_<UTC date>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
: "${NANOGPT_DIR:?set NANOGPT_DIR to a nanoGPT checkout}"
NANOGPT_DIR=$(cd "$NANOGPT_DIR" && pwd)
commit=${NANOGPT_COMMIT:-$(git -C "$NANOGPT_DIR" rev-parse HEAD 2>/dev/null || echo unknown)}

# The README's CPU recipe, option for option (nanoGPT commit 3adf61e, README line 85).
RECIPE=(--device=cpu --compile=False --eval_iters=20 --log_interval=1 --block_size=64
        --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000
        --lr_decay_iters=2000 --dropout=0.0)

exports=$("$PYTHON" -m llmcourse.threads --export)
export PYTHONUNBUFFERED=1   # live progress through tee
eval "$exports"
work=$(mktemp -d)
text=$("$PYTHON" -c "from llmcourse.data import dataset_path; print(dataset_path('shakespeare', progress=False))")
install -m 644 "$text" "$NANOGPT_DIR/data/shakespeare_char/input.txt"
(cd "$NANOGPT_DIR" && "$PYTHON" data/shakespeare_char/prepare.py)

cmd=("$PYTHON" train.py config/train_shakespeare_char.py "${RECIPE[@]}" "--out_dir=$work/out")
echo "nanogpt_cpu_recipe: $exports; log in $work/train.log"
start=$(date +%s.%N)
(cd "$NANOGPT_DIR" && "${cmd[@]}") 2>&1 | tee "$work/train.log"
end=$(date +%s.%N)

mkdir -p benchmarks/results
out=benchmarks/results/nanogpt_cpu_recipe_$(date -u +%Y-%m-%d).json
LOG=$work/train.log COMMIT=$commit START=$start END=$end OUT=$out \
CMD="cd \$NANOGPT_DIR && $exports && python train.py config/train_shakespeare_char.py ${RECIPE[*]} --out_dir=<temporary folder>" \
"$PYTHON" - <<'EOF'
import json, os, platform, re, statistics, torch
log = open(os.environ["LOG"]).read()
evals = [{"iter": int(i), "train_loss": float(t), "val_loss": float(v)}
         for i, t, v in re.findall(r"^step (\d+): train loss ([\d.]+), val loss ([\d.]+)$", log, re.M)]
step_ms = [float(ms) for ms in re.findall(r"^iter \d+: loss [\d.]+, time ([\d.]+)ms", log, re.M)]
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
            if line.startswith("model name")), platform.processor())
result = {
    "nanogpt_commit": os.environ["COMMIT"],
    "command": os.environ["CMD"],
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "loadavg_end": os.getloadavg()[0]},
    "torch": torch.__version__,
    "threads": torch.get_num_threads(),
    "evals": evals,
    "best_val_loss": min(e["val_loss"] for e in evals),
    "final_val_loss": evals[-1]["val_loss"],
    "median_step_ms": statistics.median(step_ms),
    "wall_s": round(float(os.environ["END"]) - float(os.environ["START"]), 1),
}
with open(os.environ["OUT"], "w") as f:
    json.dump(result, f, indent=1)
    f.write("\n")
print(f"final val loss {result['final_val_loss']}, best {result['best_val_loss']}: {os.environ['OUT']}")
EOF
