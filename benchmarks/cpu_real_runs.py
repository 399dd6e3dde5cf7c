"""Measure on a CPU the real-run figures five lessons report (days 07, 08, 09, 19, 26), and write them where lessons read them.

Each entry reruns a lesson's "Run it for real" configuration with the lesson's own code, sizes
and seeds, on one torch thread (``llmcourse.threads.limit_threads``):

- ``day07``: the bigram, MLP and WaveNet of day 07, 3,000 steps of 32 x 64, val loss at the
  half and at the end (the lesson's ``train`` and ``evaluate``, rebuilt below);
- ``one-head``: day 09's one-head language model, 3,000 steps of 64 x 128 (the model is defined
  in the lesson only: ``OneHeadLM`` of ``benchmarks/lesson_models.py`` is a faithful copy);
- ``kv-cache``: greedy decoding of the 6 x 384 model (block 256, random weights), timed by
  ``time_modes`` of ``benchmarks/bench_generate.py`` (a warm-up decode of each mode first):
  within the block (255 new tokens) with and without the KV cache, and past it (500 new tokens)
  with the exact sliding window and the approximate ``keep_on_rebuild=128``; CPU time, best of
  ``--repeats``, the exact modes' tokens asserted equal; ``kv-cache-compiled`` adds the compiled
  cached step (``generate(..., compile=True)``) and the wall time of its first, compiling call;
- ``bias-gelu``: day 26's ``shakespeare-char-cpu`` recipe, its first 500 steps, for seeds 1337,
  1 and 2, as the preset is and with nanoGPT's ``bias=False, gelu_approximate="none"``.

Run::

    nice -n 5 python benchmarks/cpu_real_runs.py --write          # all, about 15 min on 1 core
    python benchmarks/cpu_real_runs.py --only one-head             # print only
    python benchmarks/cpu_real_runs.py --smoke --write-to /tmp/cpu_figures.py   # seconds

``--write`` replaces the entries measured in ``MEASURED`` of ``llmcourse/cpu_figures.py``
(the others stay); ``--smoke`` (tiny sizes, for the tests) may only write to a copy.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from llmcourse import cpu_figures
from llmcourse.atomic import write_atomic
from llmcourse.device import cpu_name
from llmcourse.data import get_batch, load_text
from llmcourse.model import GPT, BigramConfig, BigramLM, GPTConfig, MLPConfig, MLPLM, WaveNetConfig, WaveNetLM
from llmcourse.runs import train_or_load
from llmcourse.threads import limit_threads
from llmcourse.tokenizers import CharTokenizer
from llmcourse.train import read_metrics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generate import Mode, Timings, TokensDiffer, time_modes  # noqa: E402  (one timing loop)
from lesson_models import AveragingLM, OneHeadLM  # noqa: E402  (days 08, 09: copied from the lessons)


def shakespeare() -> tuple[torch.Tensor, torch.Tensor, int]:
    """The lessons' character-level split: ``(train, val, vocabulary size)``."""
    text = load_text("shakespeare")
    tok = CharTokenizer.from_text(text)
    data = torch.tensor(tok.encode(text), dtype=torch.long)  # (N,)
    n = len(data) - int(0.1 * len(data))  # the package's split: the last tenth validates
    return data[:n], data[n:], tok.vocab_size


@torch.no_grad()
def val_loss(model: torch.nn.Module, val_data: torch.Tensor, cfg: dict) -> float:
    """The lessons' ``evaluate``: the mean loss of ``cfg["eval_iters"]`` validation batches drawn by
    a generator seeded 0, in eval mode (days 07, 08 and 09 write the same function)."""
    model.eval()
    g = torch.Generator().manual_seed(0)
    losses = [model(*get_batch(val_data, cfg["batch"], cfg["T"], generator=g))[1].item()
              for _ in range(cfg["eval_iters"])]
    model.train()
    return sum(losses) / len(losses)


def train_as_the_lessons(model: torch.nn.Module, opt: torch.optim.Optimizer, train_data: torch.Tensor,
                         val_data: torch.Tensor, cfg: dict) -> dict[int, float]:
    """Days 07-09's ``train``: ``cfg["steps"]`` steps on batches from a generator seeded 1337, and
    the validation loss (:func:`val_loss`) every ``cfg["eval_every"]`` steps and at the end."""
    model.train()
    g = torch.Generator().manual_seed(1337)
    history = {}
    for step in range(cfg["steps"] + 1):
        if step % cfg["eval_every"] == 0 or step == cfg["steps"]:
            history[step] = val_loss(model, val_data, cfg)
        if step == cfg["steps"]:
            break
        _, loss = model(*get_batch(train_data, cfg["batch"], cfg["T"], generator=g))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return history


# ---- day 07: bigram, MLP, WaveNet ------------------------------------------------------------

def day07(smoke: bool, repeats: int) -> list[list]:
    cfg = dict(steps=3000, batch=32, T=64, eval_every=500, eval_iters=50)   # the lesson's REAL_RUN CFG
    if smoke:
        cfg = dict(steps=4, batch=4, T=16, eval_every=2, eval_iters=2)
    train_data, val_data, V = shakespeare()

    models = [  # (label, build, lr): the lesson's real-run configurations
        ("bigram", lambda: BigramLM(BigramConfig(vocab_size=V)), 1e-2),
        ("MLP, block 16, embedding 24, hidden 256",
         lambda: MLPLM(MLPConfig(vocab_size=V, block_size=16, n_embd=24, n_hidden=256)), 3e-3),
        ("WaveNet, block 32, embedding 24, 96 channels",
         lambda: WaveNetLM(WaveNetConfig(vocab_size=V, block_size=32, n_embd=24, n_hidden=96)), 3e-3),
    ]
    rows = []
    for label, build, lr in models:
        torch.manual_seed(1337)
        model = build()
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)   # the lesson's AdamW
        history = train_as_the_lessons(model, opt, train_data, val_data, cfg)
        half = cfg["steps"] // 2
        rows.append([label, model.num_params(), round(history[half], 4), round(history[cfg["steps"]], 4)])
        print(f"  {label}: {rows[-1][1:]}", flush=True)
    return rows


# ---- days 08 and 09: averaging, one attention head (models copied in lesson_models.py) -------

def averaging(smoke: bool, repeats: int) -> list[list]:
    """Day 08's three averaging models, trained as the lesson's ``train`` does."""
    cfg = dict(steps=3000, batch=64, T=128, n_embd=64, eval_every=500, eval_iters=50)   # REAL_RUN CFG
    if smoke:
        cfg = dict(steps=6, batch=4, T=16, n_embd=8, eval_every=2, eval_iters=2)
    train_data, val_data, V = shakespeare()

    rows = []
    for kind in ("none", "uniform", "recency"):
        torch.manual_seed(1337)
        model = AveragingLM(V, cfg["n_embd"], kind)
        history = train_as_the_lessons(model, torch.optim.AdamW(model.parameters(), lr=1e-2),
                                       train_data, val_data, cfg)
        a = round(F.softplus(model.decay).item(), 4) if model.decay is not None else None
        rows.append([kind, round(history[cfg["steps"]], 4), a])
        print(f"  {rows[-1]}", flush=True)
    return rows


def one_head(smoke: bool, repeats: int) -> list[list]:
    cfg = dict(steps=3000, batch=64, T=128, n_embd=64, lr=3e-3, eval_every=500, eval_iters=50)
    if smoke:
        cfg = dict(steps=6, batch=4, T=16, n_embd=8, lr=3e-3, eval_every=2, eval_iters=2)
    train_data, val_data, V = shakespeare()

    torch.manual_seed(1337)
    model = OneHeadLM(V, cfg["T"], cfg["n_embd"])
    history = train_as_the_lessons(model, torch.optim.AdamW(model.parameters(), lr=cfg["lr"]),
                                   train_data, val_data, cfg)
    return [[step, round(loss, 4)] for step, loss in history.items()]


# ---- day 19: the KV cache --------------------------------------------------------------------

def _kv_model(smoke: bool) -> tuple[GPT, torch.Tensor]:
    """bench_generate's model (6 x 384, block 256, random weights; smoke: 1 x 48, block 16) and
    its one-token prompt."""
    shape = dict(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384)   # bench_generate's
    if smoke:
        shape = dict(shape, block_size=16, n_layer=1, n_embd=48)
    torch.manual_seed(0)
    model = GPT(GPTConfig(**shape, dropout=0.0)).eval()
    return model, torch.zeros(1, 1, dtype=torch.long)   # (1, 1)


def _time_kv_modes(model: GPT, prompt: torch.Tensor, modes: dict, repeats: int) -> Timings:
    """bench_generate's ``time_modes`` in CPU time; modes whose tokens differ stop the script."""
    try:
        return time_modes(model, prompt, modes, repeats, clock=time.process_time)
    except TokensDiffer as e:
        raise SystemExit(f"cpu_real_runs: error: {e.name} decoded other tokens than {e.same_as}")


def kv_cache(smoke: bool, repeats: int) -> list[list]:
    model, prompt = _kv_model(smoke)
    within, past = (15, 30) if smoke else (255, 500)
    repeats = 1 if smoke else repeats
    keep = model.config.block_size // 2
    modes = {   # name: Mode(new tokens, generate's arguments, the mode whose tokens it must equal)
        "recompute, within the block": Mode(within, dict(use_cache=False)),
        "kv-cache, within the block": Mode(within, dict(use_cache=True), "recompute, within the block"),
        "recompute, past the block": Mode(past, dict(use_cache=False)),
        "kv-cache, sliding window (exact)": Mode(past, dict(use_cache=True), "recompute, past the block"),
        f"kv-cache, keep_on_rebuild={keep} (approximate)":
            Mode(past, dict(use_cache=True, keep_on_rebuild=keep)),
    }
    best = _time_kv_modes(model, prompt, modes, repeats).best
    rows = []
    for name, mode in modes.items():
        n = mode.new_tokens
        base = "recompute, within the block" if n == within else "recompute, past the block"
        rows.append([name, n, round(1000 * best[name] / n, 2), round(best[base] / best[name], 2)])
        print(f"  {rows[-1]}", flush=True)
    return rows


def kv_cache_compiled(smoke: bool, repeats: int) -> list[list]:
    """The cached step compiled (``generate(..., compile=True)``) against the eager one, within
    the block; its first call, which compiles, is timed apart (wall time: compiling uses helper
    processes)."""
    model, prompt = _kv_model(smoke)
    n = 15 if smoke else 255
    repeats = 1 if smoke else repeats
    modes = {"recompute": Mode(n, dict(use_cache=False)),
             "kv-cache, eager": Mode(n, dict(use_cache=True), "recompute"),
             "kv-cache, compiled": Mode(n, dict(use_cache=True, compile=True), "recompute")}
    timed = _time_kv_modes(model, prompt, modes, repeats)
    rows = []
    for name in modes:
        best = timed.best[name]
        rows.append([name, n, round(1000 * best / n, 2), round(timed.best["recompute"] / best, 2),
                     round(timed.first_call[name], 1)])
        print(f"  {rows[-1]}", flush=True)
    return rows


# ---- day 26: nanoGPT's bias and GELU ---------------------------------------------------------

def bias_gelu(smoke: bool, repeats: int) -> list[list]:
    nanogpt = {"bias": False, "gelu_approximate": "none"}
    train = {"max_iters": 500, "log_interval": 50}   # the lesson's CPU run: lr_decay_iters stays 2000
    if smoke:
        train = {"max_iters": 2, "eval_interval": 2, "eval_iters": 1, "log_interval": 1}
    rows = []
    with tempfile.TemporaryDirectory(prefix="cpu_real_runs_") as tmp:
        for seed in (1337, 1, 2):
            val = {}
            for variant, model in (("ours", {}), ("nanogpt", nanogpt)):
                run_dir = Path(tmp) / f"{variant}-{seed}"
                train_or_load("shakespeare-char-cpu", run_dir, device="cpu",
                              overrides={"train": dict(train, seed=seed), "model": model})
                evals = [r for r in read_metrics(run_dir / "metrics.jsonl") if r["type"] == "eval"]
                assert evals[-1]["iter"] == train["max_iters"], evals[-1]
                val[variant] = evals[-1]["val_loss"]
            rows.append([seed, round(val["ours"], 4), round(val["nanogpt"], 4),
                         round(val["nanogpt"] - val["ours"], 4)])
            print(f"  seed {rows[-1]}", flush=True)
    return rows


ENTRIES = {"day07": day07, "averaging": averaging, "one-head": one_head, "kv-cache": kv_cache,
           "kv-cache-compiled": kv_cache_compiled, "bias-gelu": bias_gelu}
NAMES = {fig.only: name for name, fig in cpu_figures.FIGURES.items()}   # --only NAME -> figure


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", choices=sorted(ENTRIES),
                   help="measure only this entry (repeat for several; default: all)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the script runs")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per kv-cache mode (default 3)")
    p.add_argument("--write", action="store_true", help=f"write the results into {cpu_figures.__name__}")
    p.add_argument("--write-to", type=Path, default=None,
                   help="write into this copy of llmcourse/cpu_figures.py instead (implies --write)")
    p.add_argument("--json", type=Path, default=None, help="also save the results as JSON here")
    args = p.parse_args(argv)
    target = args.write_to or (Path(cpu_figures.__file__) if args.write else None)
    if args.smoke and target is not None and target.resolve() == Path(cpu_figures.__file__).resolve():
        p.error("--smoke figures are not measurements: write them only to a copy (--write-to PATH)")
    if args.repeats < 1:
        p.error(f"--repeats {args.repeats}: give at least 1")
    if args.json and not args.json.parent.is_dir():
        p.error(f"--json {args.json}: its folder does not exist; create it or give another path")
    old = _read_measured(target, p) if target is not None else {}   # before a long run, not after
    threads = limit_threads("cpu")
    machine = {"cpu": cpu_name(), "threads": threads, "torch": torch.__version__,
               "capability": torch.backends.cpu.get_cpu_capability(),
               "date": datetime.date.today().isoformat()}
    print(f"{machine['cpu']}, {threads} thread(s), {machine['capability']}, torch {machine['torch']}"
          + (", SMOKE sizes" if args.smoke else ""), flush=True)
    results = {}
    for only in args.only or list(ENTRIES):
        print(f"{only}:", flush=True)
        t0 = time.perf_counter()
        rows = ENTRIES[only](args.smoke, args.repeats)
        results[NAMES[only]] = dict(machine, rows=rows, seconds=round(time.perf_counter() - t0, 1))
        print(f"  {cpu_figures.line(NAMES[only], measured=results)}  [{results[NAMES[only]]['seconds']} s]",
              flush=True)
    if args.json:
        write_atomic(args.json, json.dumps(results, indent=1) + "\n")
    if target is not None:
        cpu_figures.write_measured({**old, **results}, target)
        print(f"wrote {', '.join(results)} into {target}")
    return 0


def _read_measured(path: Path, parser: argparse.ArgumentParser) -> dict:
    """The ``MEASURED`` table of the module at ``path`` (the entries not measured now are kept)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        parser.error(f"cannot read {path} ({e.strerror}): give a copy of llmcourse/cpu_figures.py")
    found = re.search(r"(?s)MEASURED: dict\[str, dict\[str, Any\]\] = (.*?)\n# --- end of measured ---", text)
    if not found:
        parser.error(f"{path} has no MEASURED block: give a copy of llmcourse/cpu_figures.py")
    return ast.literal_eval(found.group(1))


if __name__ == "__main__":
    sys.exit(main())
