"""The course's one table of GPU figures: what a lesson's real-size run costs on a Colab T4.

No T4 was used to write the course, so every figure here is an estimate, and each says how it
was made. The method, written once:

1. **Work.** A run's floating-point work is ``flops_per_token`` (the model's training cost per
   token, :func:`llmcourse.model.flops_per_token`) times its tokens (times 2/3 for LoRA, which
   skips the frozen weights' gradients), plus the forward passes of a second model where a run
   has one (distillation's teacher, DPO's reference).
2. **Compute bound.** The T4's data-sheet peak at the run's precision (65 TFLOP/s float16 on
   its tensor cores, 8.1 TFLOP/s float32, which it runs without tensor cores or TF32), times a
   model FLOPs utilisation (MFU). Before a GPU measurement that MFU is *assumed*:
   ``ASSUMED_MFU`` (10-25% in float16: small models, no compile; 40-70% in float32). After
   ``benchmarks/gpu_acceptance.py`` has run, it is the MFU *measured* for the same step at the
   same precision on that card, taken as the T4's best case, and 70% of it as its worst (a
   70 W card that lowers its clock when hot). The script's T4 stand-in run is preferred: it
   computes as a T4 does (float16 with a gradient scaler, float32 without TF32, the T4's SDPA
   kernels), and its float32 MFU counts against the card's float32 peak without TF32. A small model leaves a fast card idle between
   kernel launches, so its measured MFU understates what a T4 reaches: such a figure errs long.
   It is never shorter than the run took on the measured card itself.
3. **Memory bound.** Each optimizer step moves about 32 bytes a parameter (weights and gradients
   read and written, AdamW's two moments) plus twice the activation memory (written forward,
   read backward; the measured peak memory, or an estimate), at the T4's 320 GB/s.
4. The time is the larger of the two bounds.
5. **Launch bound.** The first lessons' models are so small that a GPU step is spent launching
   operations (Python, dispatch, a kernel launch: ``LAUNCH_S``, assumed 10-30 µs each on a
   Colab host), not computing: such a run (:class:`LaunchFigure`) costs its operations
   (``OPS_PER_STEP``, counted by ``benchmarks/count_ops.py``) times that. A run of such small
   models with a long sweep behind it (day 30's) names its model in ``Figure.launch_ops``: its
   time is then never below its launches' (steps times operations times ``LAUNCH_S``).

A lesson cell prints ``line(name)``; ``python -m llmcourse.gpu_figures RESULTS.json [MORE.json]``
(or the script's ``--ingest``) rebuilds the measured part from a run of the acceptance script,
and every lesson follows.

Example:
    >>> print(line("shakespeare-char train"))  # doctest: +ELLIPSIS
    T4: about ... min, val loss about 1.47 (estimate: ...)
    >>> sorted(show("gpt2 lora tune"))[:3]
    ['how', 'lessons', 'loss']
"""

from __future__ import annotations

import json
import pprint
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmcourse.device import peak_flops
from llmcourse.model import GPTConfig, count_params_formula, flops_per_token

T4_NAME = "Tesla T4"
T4_BANDWIDTH = 320e9            # bytes/s, data sheet
ASSUMED_MFU = {"float16": (0.10, 0.25), "float32": (0.40, 0.70)}
HOT_CARD = 0.7                  # a measured MFU's worst case on a T4, as a fraction of it
BYTES_PER_PARAM_STEP = 32       # weights, gradients and AdamW moments, read and written
SCRIPT = "benchmarks/gpu_acceptance.py"

SHAKESPEARE = dict(vocab_size=65, n_layer=6, n_head=6, n_embd=384, block_size=256)
GPT2_SMALL = dict(vocab_size=50257, n_layer=12, n_head=12, n_embd=768, block_size=1024)


@dataclass(frozen=True)
class Figure:
    """One real-size run a lesson talks about."""

    what: str
    lessons: tuple[int, ...]
    shape: dict[str, int]          # the GPTConfig of the model that is trained
    tokens: int                    # tokens of the whole run (all runs of it together)
    precision: str                 # "float16" (a T4's autocast) or "float32"
    steps: tuple[str, ...]         # acceptance-script steps that measure this kind of run
    seq_len: int | None = None     # tokens per row, when shorter than block_size
    optimizer_steps: int = 1
    cost: float = 1.0
    loss: float | None = None      # the validation loss a lesson states, if any
    loss_how: str = ""
    activation_gb: float = 1.0     # activation memory per step, until measured
    forward_of: dict[str, int] | None = None   # a second model run forward only on every token
    launch_ops: str | None = None  # a model in OPS_PER_STEP: launching its steps bounds the time too

    @property
    def flops(self) -> float:
        train = flops_per_token(GPTConfig(**self.shape), seq_len=self.seq_len) * self.cost
        if self.forward_of is not None:
            train += flops_per_token(GPTConfig(**self.forward_of), seq_len=self.seq_len, training=False)
        return train * self.tokens

    @property
    def params(self) -> int:
        return count_params_formula(GPTConfig(**self.shape), non_embedding=False)


# A small model's step is bound by launching its operations, not by arithmetic or memory
# (method, point 5): operations per training step at each lesson's real-run size, counted by
# `python benchmarks/count_ops.py` (torch.profiler, torch 2.13), and the assumed cost of one.
OPS_PER_STEP = {"bigram": 18, "mlp": 65, "wavenet": 241, "gpt 2 x 64": 317, "averaging none": 36,
                "averaging uniform": 50, "averaging recency": 69, "one head": 75}
LAUNCH_S = (10e-6, 30e-6)       # seconds per operation on a T4's host: Python, dispatch, launch


@dataclass(frozen=True)
class LaunchFigure:
    """A run of small models whose time is the number of operations it launches."""

    what: str
    lessons: tuple[int, ...]
    runs: tuple[tuple[str, int], ...]   # (model in OPS_PER_STEP, training steps) per run
    eval_share: float = 0.0             # evaluation operations, as a share of the training ones
    precision: str = "float32"
    steps: tuple[str, ...] = ()         # no acceptance-script step measures these
    loss: float | None = None
    loss_how: str = ""

    @property
    def operations(self) -> int:
        return round(sum(OPS_PER_STEP[m] * n for m, n in self.runs) * (1 + self.eval_share))


FIGURES: dict[str, Figure | LaunchFigure] = {
    "shakespeare-char train": Figure(
        "the shakespeare-char preset, 5,000 steps of 64 x 256 and its 21 evaluations of 2 x 200 batches "
        "(forward only: a third of a training step's work each)", (4, 12, 17, 19, 20, 21, 22, 23, 24, 26, 34, 35, 36),
        SHAKESPEARE, 5000 * 64 * 256, "float16", ("fp16 + GradScaler (T4 path)", "train shakespeare-char"),
        optimizer_steps=5000, cost=1 + (5000 // 250 + 1) * 2 * 200 / 3 / 5000, loss=1.47,
        loss_how="nanoGPT's published 1.4697 for this configuration (day 26)", activation_gb=2.0),
    "shakespeare-char 2000 steps": Figure(
        "the same model, 2,000 steps of 64 x 256 (days 12, 13; day 14 divides it by its steps)", (12, 13, 14),
        SHAKESPEARE, 2000 * 64 * 256,
        "float16", ("fp16 + GradScaler (T4 path)", "train shakespeare-char"), optimizer_steps=2000,
        activation_gb=2.0),
    "shakespeare-char compiled 500 steps": Figure(
        "the preset compiled, 500 steps (day 18)", (18,), SHAKESPEARE, 500 * 64 * 256, "float16",
        ("train compiled", "fp16 + GradScaler (T4 path)"), optimizer_steps=500, activation_gb=2.0),
    "tinystories train": Figure(
        "the tinystories preset (GPT-2 vocabulary), 5,000 steps of 64 x 256 and 11 evaluations of "
        "2 x 100 batches", (27, 30), dict(SHAKESPEARE, vocab_size=50257), 5000 * 64 * 256, "float16",
        ("tinystories",), optimizer_steps=5000, cost=1 + 11 * 2 * 100 / (3 * 5000), activation_gb=6.0),
    "gpt2 lora tune": Figure(
        "GPT-2 small + LoRA r=8, 200 steps of 8 x 256, float32 (day 34)", (34,), GPT2_SMALL, 200 * 8 * 256,
        "float32", ("fine-tune + LoRA",), seq_len=256, optimizer_steps=200, cost=2 / 3, activation_gb=3.0),
    "gpt2 full tune": Figure(
        "GPT-2 small fully fine-tuned, 200 steps of 8 x 256, float32 (day 34)", (34,), GPT2_SMALL,
        200 * 8 * 256, "float32", ("fine-tune + LoRA",), seq_len=256, optimizer_steps=200, activation_gb=3.0),
    "architecture sweep": Figure(
        "day 33's 18 runs of 1,000 steps of the 6 x 384 model, 5 evaluations of 2 x 50 batches each", (33,),
        SHAKESPEARE, 18 * 1000 * 64 * 256, "float16", ("fp16 + GradScaler (T4 path)", "train shakespeare-char"),
        optimizer_steps=18 * 1000, cost=1 + (1000 // 250 + 1) * 2 * 50 / (3 * 1000), activation_gb=2.0),
    # --- days 01-06 ---
    "bigram 5000 steps": LaunchFigure(
        "day 06's bigram, 5,000 steps of 64 x 256 and 6 evaluations of 2 x 100 batches", (6,),
        (("bigram", 5000),), eval_share=6 * 2 * 100 / 3 / 5000),
    # --- end days 01-06 ---
    # --- days 07-12 ---
    "bigram, MLP and WaveNet 3000 steps": LaunchFigure(
        "day 07's three models, 3,000 steps of 32 x 64 each and 7 evaluations of 50 batches", (7,),
        (("bigram", 3000), ("mlp", 3000), ("wavenet", 3000)), eval_share=7 * 50 / 3 / 3000),
    "averaging 3 x 3000 steps": LaunchFigure(
        "day 08's three runs (no average, uniform, recency-weighted), 3,000 steps of 64 x 128 each and "
        "7 evaluations of 50 batches", (8,),
        (("averaging none", 3000), ("averaging uniform", 3000), ("averaging recency", 3000)),
        eval_share=7 * 50 / 3 / 3000),
    "one head 3000 steps": LaunchFigure(
        "day 09's one-head model, 3,000 steps of 64 x 128 and 7 evaluations of 50 batches", (9,),
        (("one head", 3000),), eval_share=7 * 50 / 3 / 3000),
    "attention heatmap model 1500 steps": LaunchFigure(
        "day 10's 2-layer, 64-wide GPT, 1,500 steps of 32 x 32", (10,), (("gpt 2 x 64", 1500),)),
    "pre/post-norm 3 x 600 steps": Figure(
        "day 11's three 600-step runs (pre-norm, post-norm, post-norm at lr/10) of the 6 x 384 model, "
        "64 x 256", (11,), SHAKESPEARE, 3 * 600 * 64 * 256, "float16",
        ("fp16 + GradScaler (T4 path)", "train shakespeare-char"), optimizer_steps=3 * 600,
        activation_gb=2.0),
    # --- end days 07-12 ---
    # --- days 13-18 ---
    "day 15 schedule runs": Figure(
        "day 15's nine runs in float32: 5 sweep runs of 200 steps and 4 schedules of 1,000, 32 x 256",
        (15,), SHAKESPEARE, (5 * 200 + 4 * 1000) * 32 * 256, "float32", ("train fp32",),
        optimizer_steps=5 * 200 + 4 * 1000),
    "day 16 optimizer runs": Figure(
        "day 16's three runs in float32 (SGD, Adam, AdamW), 1,000 steps of 32 x 256 each",
        (16,), SHAKESPEARE, 3 * 1000 * 32 * 256, "float32", ("train fp32",), optimizer_steps=3 * 1000),
    # --- end days 13-18 ---
    # --- days 19-24 ---
    # --- end days 19-24 ---
    # --- days 25-30 ---
    # Evaluations are forward passes, a third of a training step's work per token: a run of S steps
    # that evaluates E times on 2 splits x I batches costs 1 + 2 * E * I / (3 * S) times its training.
    "shakespeare-char 500 steps": Figure(
        "the shakespeare-char preset, 500 steps of 64 x 256 and 3 evaluations of 2 x 200 batches (day 25)",
        (25,), SHAKESPEARE, 500 * 64 * 256, "float16", ("fp16 + GradScaler (T4 path)", "train shakespeare-char"),
        optimizer_steps=500, cost=1 + 2 * 3 * 200 / (3 * 500), activation_gb=2.0),
    **{f"size-context sweep {size}": Figure(
        f"day 28's {runs} {size} runs of 2,000 steps of 64 x 256 (shorter contexts counted as 256), "
        "9 evaluations of 2 x 50 batches each", (28,), dict(SHAKESPEARE, **shape), runs * 2000 * 64 * 256,
        "float16", ("fp16 + GradScaler (T4 path)", "train shakespeare-char"), optimizer_steps=runs * 2000,
        cost=1 + 2 * 9 * 50 / (3 * 2000), activation_gb=act)
       for size, runs, shape, act in (("tiny", 17, dict(n_layer=2, n_head=4, n_embd=128), 0.5),
                                      ("small", 3, dict(n_layer=4, n_head=4, n_embd=256), 1.0),
                                      ("medium", 3, dict(n_layer=6, n_head=6, n_embd=384), 2.0))},
    "watching four runs": Figure(
        "day 29's four monitored runs of the 6 x 384 model, 2,000 steps of 64 x 256 each, 6 evaluations "
        "of 2 x 50 batches (the monitor adds about 1.5%, book/performance_training.md)", (29,), SHAKESPEARE,
        4 * 2000 * 64 * 256, "float16", ("fp16 + GradScaler (T4 path)", "train shakespeare-char"),
        optimizer_steps=4 * 2000, cost=(1 + 2 * 6 * 50 / (3 * 2000)) * 1.015, activation_gb=2.0),
    **{f"isoflop sweep width {w}": Figure(
        f"day 30's 2-layer, {w}-wide model at the budgets 7.5e12, 3e13 and 1.2e14 (6ND), batches of "
        "64 x 128, 9 evaluations of 2 x 8 batches a run", (30,), shape, steps * 64 * 128, "float16",
        ("fp16 + GradScaler (T4 path)",), optimizer_steps=steps, cost=1 + 3 * 2 * 9 * 8 / (3 * steps),
        activation_gb=0.25, launch_ops="gpt 2 x 64")
       for w in (64, 96, 128, 192, 256)
       for shape in [dict(vocab_size=65, n_layer=2, n_head=2, n_embd=w, block_size=128)]
       for steps in [sum(round(c / (6 * count_params_formula(GPTConfig(**shape))) / (64 * 128))
                         for c in (7.5e12, 3e13, 1.2e14))]},
    # --- end days 25-30 ---
    # --- days 31-36 ---
    "data quality runs": Figure(
        "day 31's five runs of a 4 x 128 character model, 2,000 steps of 64 x 128 each, float32 "
        "(a plain loop; its batches are built on the CPU, so the T4 may wait on them)", (31,),
        dict(vocab_size=86, n_layer=4, n_head=4, n_embd=128, block_size=128), 5 * 2000 * 64 * 128,
        "float32", ("train fp32",), optimizer_steps=5 * 2000, activation_gb=0.5),
    "tokenizer runs": Figure(
        "day 32's four runs of the 6 x 384 model (vocabularies 80, 512, 2,048 and 50,257), 3,000 steps "
        "of 64 x 256 each, float32 (a plain loop)",
        (32,), dict(SHAKESPEARE, vocab_size=50257), 4 * 3000 * 64 * 256, "float32",
        ("train fp32", "tinystories"), optimizer_steps=4 * 3000, activation_gb=4.0,
        # shape: the largest run's (its memory traffic bounds the others'); cost: the four
        # vocabularies' work per token as a share of four runs at 50,257
        cost=sum(flops_per_token(GPTConfig(**dict(SHAKESPEARE, vocab_size=v)))
                 for v in (80, 512, 2048, 50257))
        / (4 * flops_per_token(GPTConfig(**dict(SHAKESPEARE, vocab_size=50257))))),
    "distill two students": Figure(
        "day 35's two 2 x 128 students, 2,000 steps of 64 x 256 each, and the 6 x 384 teacher's forward "
        "pass for the distilled one, float32 (a plain loop)", (35,),
        dict(SHAKESPEARE, n_layer=2, n_head=4, n_embd=128), 2000 * 64 * 256, "float32", ("distillation",),
        optimizer_steps=2 * 2000, cost=2.0, forward_of=SHAKESPEARE, activation_gb=2.0),
    "dpo two betas": Figure(
        "day 36's DPO on the 6 x 384 model for two betas, 400 steps of 64 rows x 48 tokens each, float32 "
        "(a plain loop; the reference's log-probabilities are computed once, 2 x 1,024 rows, about 1% more)",
        (36,), SHAKESPEARE, 2 * 400 * 64 * 48, "float32", ("DPO",), seq_len=48, optimizer_steps=2 * 400,
        cost=1 + 2 * 1024 / (3 * 2 * 400 * 64), activation_gb=0.5),
    # --- end days 31-36 ---
}

# --- measured: written by `python -m llmcourse.gpu_figures RESULTS.json`; do not edit by hand ---
MEASURED: dict[str, dict[str, Any]] = {}
# --- end of measured ---


def t4_seconds(name: str, measured: dict[str, dict[str, Any]] | None = None) -> tuple[float, float, str]:
    """``(low, high, how)``: the T4 time of figure ``name`` in seconds, and how it was made."""
    fig = FIGURES[name]
    if isinstance(fig, LaunchFigure):
        lo, hi = (fig.operations * s for s in LAUNCH_S)
        return lo, hi, (f"estimate: {fig.operations:,} operations (counted by benchmarks/count_ops.py) at an "
                        f"assumed {LAUNCH_S[0] * 1e6:.0f}-{LAUNCH_S[1] * 1e6:.0f} µs each to launch; the "
                        "arithmetic of models this small takes less")
    m = (MEASURED if measured is None else measured).get(name)
    peak = peak_flops(T4_NAME, fig.precision)
    assert peak is not None, f"the device table has no T4 {fig.precision} peak"
    act_gb = m["peak_mem_gb"] if m and m.get("peak_mem_gb") else fig.activation_gb
    traffic = fig.optimizer_steps * (BYTES_PER_PARAM_STEP * fig.params + 2 * act_gb * 2**30)
    memory_s = traffic / T4_BANDWIDTH
    if m and "T4" in m["card"]:
        lo = hi = fig.flops / (peak * m["mfu"])
        return lo, hi, f"measured on {m['card']} {m['date']} by {SCRIPT}"
    floor = 0.0
    if m:
        best, worst = m["mfu"], m["mfu"] * HOT_CARD
        floor = fig.tokens / m["tokens_per_s"] if m.get("tokens_per_s") else 0.0
        where = f"{m['card']} ({m['mode']})" if m.get("mode", "cuda") != "cuda" else m["card"]
        how = (f"estimate: the {fig.precision} MFU measured on {where} {m['date']} by {SCRIPT} "
               f"({best:.1%}, down to {worst:.1%} on a hot T4) applied to the T4's {peak / 1e12:g} TFLOP/s")
    else:
        worst, best = ASSUMED_MFU[fig.precision]
        how = (f"estimate: {fig.flops:.1e} FLOPs at an assumed {worst:.0%}-{best:.0%} of the T4's "
               f"{fig.precision} peak of {peak / 1e12:g} TFLOP/s")
    lo, hi = fig.flops / (peak * best), fig.flops / (peak * worst)
    if memory_s > lo:
        how += f"; memory traffic at {T4_BANDWIDTH / 1e9:.0f} GB/s needs at least {memory_s:.0f} s"
    if floor > lo:
        how += f"; no faster than the {m['card']} itself ({floor:.0f} s)"
    launch = (0.0, 0.0)
    if fig.launch_ops is not None:   # evaluations launch in the share they add to the work
        operations = round(fig.optimizer_steps * OPS_PER_STEP[fig.launch_ops] * fig.cost)
        launch = tuple(operations * s for s in LAUNCH_S)
        if launch[1] > lo:
            how += (f"; launching its {operations:,} operations at an assumed {LAUNCH_S[0] * 1e6:.0f}-"
                    f"{LAUNCH_S[1] * 1e6:.0f} µs each takes {launch[0]:.0f}-{launch[1]:.0f} s")
    return max(lo, memory_s, floor, launch[0]), max(hi, memory_s, floor, launch[1]), how


def _span(lo: float, hi: float) -> str:
    if hi < 120:
        return f"{lo:.0f}-{hi:.0f} s" if round(lo) != round(hi) else f"{lo:.0f} s"
    a, b = lo / 60, hi / 60
    return f"{a:.0f}-{b:.0f} min" if round(a) != round(b) else f"{a:.0f} min"


def show(name: str) -> dict[str, Any]:
    """Everything the table holds on ``name``: time range, loss and how each was made."""
    if name not in FIGURES:
        raise KeyError(f"no GPU figure named {name!r}; the table has: {', '.join(FIGURES)}")
    fig = FIGURES[name]
    lo, hi, how = t4_seconds(name)
    return {"what": fig.what, "lessons": fig.lessons, "precision": fig.precision,
            "t4_seconds": (round(lo), round(hi)), "t4_text": _span(lo, hi), "loss": fig.loss,
            "loss_how": fig.loss_how, "how": how}


def line(name: str) -> str:
    """One sentence for a lesson: ``T4: about 5-12 min, val loss about 1.47 (estimate: ...)``."""
    s = show(name)
    loss = f", val loss about {s['loss']:.2f}" if s["loss"] is not None else ""
    return f"T4: about {s['t4_text']}{loss} ({s['how']})"


def rebuild(results: dict[str, Any] | list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The ``MEASURED`` table from ``gpu_acceptance`` JSON results, in order of preference: per
    figure, the first step of its ``steps`` that passed at the figure's precision with an MFU."""
    out: dict[str, dict[str, Any]] = {}
    for result in [results] if isinstance(results, dict) else results:
        card, date = result["machine"]["card"], result["machine"]["date"].split()[0]
        mode = result["machine"].get("mode", "cuda")
        by_step = {r["step"]: r for r in result["steps"] if r.get("ok") and r.get("mfu")}
        for name, fig in FIGURES.items():
            for step in fig.steps if name not in out else ():
                rec = by_step.get(step)
                precision = str((rec or {}).get("details", {}).get("precision", ""))
                if rec and re.search(rf"\b{fig.precision}\b", precision):   # bfloat16 is not float16
                    out[name] = {"card": card, "date": date, "mode": mode, "step": step, "mfu": rec["mfu"],
                                 "tokens_per_s": rec.get("tokens_per_s"), "peak_mem_gb": rec.get("peak_mem_gb")}
                    break
    return out


def write_measured(measured: dict[str, dict[str, Any]], path: Path = Path(__file__)) -> None:
    """Replace the ``MEASURED`` block of this module's source with ``measured``."""
    from llmcourse.atomic import write_atomic

    text = path.read_text(encoding="utf-8")
    body = pprint.pformat(measured, sort_dicts=True)
    new, n = re.subn(r"(?s)(MEASURED: dict\[str, dict\[str, Any\]\] = ).*?(\n# --- end of measured ---)",
                     lambda mo: mo.group(1) + body + mo.group(2), text, count=1)
    if n != 1:
        raise ValueError(f"{path} has no MEASURED block to replace")
    write_atomic(path, new)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or any(a.startswith("-") for a in args):
        print("usage: python -m llmcourse.gpu_figures RESULTS.json [MORE.json ...]  (from "
              "benchmarks/gpu_acceptance.py; the first file that measures a figure gives it)", file=sys.stderr)
        return 2
    measured = rebuild([json.loads(Path(a).read_text(encoding="utf-8")) for a in args])
    write_measured(measured)
    print(f"{len(measured)} of {len(FIGURES)} figures now rest on the measurement; the others stay assumed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
