"""Training monitors: what to watch besides the loss.

Every ``interval`` optimizer steps a :class:`TrainingMonitor` records, for that one step:

- **activations** of every GPT-2 MLP (``act``): the mean and standard deviation of the GELU's
  input (the ``c_fc`` output) and output, the *dead fraction* (share of GELU inputs below
  ``DEAD_BELOW = -3``, where GELU is flat: its slope there is under 0.012, so almost no
  gradient flows back) and the *dead units* (share of hidden units whose input is below that
  threshold for every token of the batch), and of each block's output (the residual stream,
  ``resid``);
- **gradients** (``grad``): the norm of each parameter tensor's gradient, before clipping;
- **update-to-data ratios** (``update``): ``log10(||delta W|| / ||W||)`` of each parameter
  tensor, with ``delta W`` the change the optimizer step actually made (learning rate, Adam's
  scaling and weight decay included). About ``-3`` is a rule of thumb for SGD; with Adam the
  level follows the learning rate (day 29's healthy runs sit near ``-1.5`` to ``-2``), so compare
  layers and runs: far above the others the step is too large, far below them the tensor barely
  trains;
- **histograms** (``hist``) of each MLP's GELU inputs: 40 equal bins on ``[-5, 5]``, values
  outside clipped into the end bins.

The record is one ``{"type": "monitor", "iter": ..., "act": ..., "grad": ..., "update": ...,
"hist": ...}`` line of ``metrics.jsonl`` (see :mod:`llmcourse.train.metrics`).

Cost: nothing when off (the trainer then creates no monitor and registers no hook). When on,
forward hooks exist only during a monitored step and are removed right after it; the
statistics are gathered with a single device synchronisation.

Example:
    >>> import torch
    >>> from llmcourse.model import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16))
    >>> opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    >>> mon = TrainingMonitor(model, interval=10)
    >>> mon.wants(20), mon.wants(25)
    (True, False)
    >>> x = torch.randint(0, 11, (4, 8))
    >>> with mon.watch():                      # hooks on only inside this block
    ...     _, loss = model(x, x)
    >>> loss.backward(); mon.read_gradients(); mon.before_update()
    >>> opt.step(); rec = mon.after_update(20)
    >>> sorted(rec["act"]), sorted(rec["act"]["h.0.mlp"])[:3]
    (['h.0.mlp', 'h.0.resid', 'h.1.mlp', 'h.1.resid'], ['dead_frac', 'dead_units', 'in_mean'])
    >>> # Adam's first step moves every weight by about lr = 1e-3; the weights are about 0.02:
    >>> round(rec["update"]["transformer.h.0.mlp.c_fc.weight"], 1)     # log10(1e-3 / 0.02)
    -1.3
    >>> sum(m._forward_hooks.__len__() for m in model.modules())  # all removed again
    0
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llmcourse.train.metrics import load_records

__all__ = ["TrainingMonitor", "update_ratio", "dead_fraction", "monitor_curves",
           "DEAD_BELOW", "HIST_RANGE", "HIST_BINS"]

#: A GELU input below this is "dead": GELU's slope there is below 0.012.
DEAD_BELOW = -3.0
#: Range and number of bins of the GELU-input histograms.
HIST_RANGE = (-5.0, 5.0)
HIST_BINS = 40


def update_ratio(before: torch.Tensor, after: torch.Tensor) -> float:
    """``log10(||after - before|| / ||after||)``: how big one step was against the weights.

    ``-inf`` when nothing changed (a skipped float16 step), ``inf`` for all-zero weights.

    >>> w = torch.ones(10, 10)
    >>> round(update_ratio(w, w * 1.001), 3)
    -3.0
    """
    delta = (after.float() - before.float()).norm().item()
    size = after.float().norm().item()
    if delta == 0.0:
        return -math.inf
    return math.inf if size == 0.0 else math.log10(delta / size)


def dead_fraction(pre: torch.Tensor, threshold: float = DEAD_BELOW) -> tuple[float, float]:
    """``(dead_frac, dead_units)`` of GELU inputs ``pre`` of shape ``(..., H)``.

    ``dead_frac``: the share of all entries below ``threshold``; ``dead_units``: the share of
    the ``H`` units that are below it for every row.

    >>> pre = torch.tensor([[-4.0, 1.0, -5.0], [-6.0, -4.0, 2.0]])
    >>> [round(f, 4) for f in dead_fraction(pre)]  # 4 of 6 entries; unit 0 dead in both rows
    [0.6667, 0.3333]
    """
    below = pre.detach().reshape(-1, pre.shape[-1]) < threshold  # (N, H)
    return below.float().mean().item(), below.all(dim=0).float().mean().item()


def _short(name: str) -> str:
    """``transformer.h.3.mlp`` -> ``h.3.mlp`` (shorter labels for plots)."""
    return name[len("transformer."):] if name.startswith("transformer.") else name


class TrainingMonitor:
    """Record activation, gradient and update statistics every ``interval`` steps.

    Use, within one optimizer step that :meth:`wants`: run the forward pass(es) inside
    :meth:`watch` (only the first forward is recorded: the first micro-batch), then after the
    backward pass (and float16 unscaling, before clipping) :meth:`read_gradients`, just
    before ``optimizer.step()`` :meth:`before_update`, and after it :meth:`after_update`,
    which returns the record.

    Args:
        model: the model (unwrapped: not DDP or compiled); its ``MLP`` modules (those with
            ``c_fc`` and a GELU) and ``transformer.h`` blocks are watched.
        interval: record at steps ``0, interval, 2 * interval, ...``.
        histograms: also record the GELU-input histograms.
        activations: watch activations at all (the trainer turns this off for a compiled
            model, whose graph the hooks would break); gradients and updates are recorded
            either way.
    """

    def __init__(self, model: nn.Module, interval: int, *, histograms: bool = True,
                 activations: bool = True) -> None:
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise ValueError(f"monitor interval must be an integer >= 1, got {interval!r}; "
                             "leave it unset (None) to switch the monitors off")
        self.model = model
        self.interval = interval
        self.histograms = histograms
        self._mlps: list[tuple[str, nn.Module]] = []
        self._blocks: list[tuple[str, nn.Module]] = []
        for name, module in (model.named_modules() if activations else ()):
            fc = getattr(module, "c_fc", None)
            if isinstance(fc, nn.Linear) and hasattr(module, "approximate"):
                self._mlps.append((_short(name), module))  # GELU MLP: c_fc output = GELU input
            if re.fullmatch(r"(.*\.)?h\.\d+", name):
                self._blocks.append((_short(name), module))
        self._params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self._act: dict[str, dict[str, torch.Tensor]] = {}
        self._hist: dict[str, torch.Tensor] = {}
        self._grad: dict[str, torch.Tensor] = {}
        self._before: list[torch.Tensor] | None = None

    def wants(self, it: int) -> bool:
        """Whether step ``it`` is a monitored one."""
        return it % self.interval == 0

    # ---- activations --------------------------------------------------------------------
    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        """Forward hooks on for the duration of the block, removed afterwards."""
        self._act, self._hist = {}, {}
        handles = []
        for name, mlp in self._mlps:
            handles.append(mlp.c_fc.register_forward_hook(self._mlp_hook(name, mlp)))
        for name, block in self._blocks:
            handles.append(block.register_forward_hook(self._block_hook(name)))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def _mlp_hook(self, name: str, mlp: nn.Module) -> Any:
        key = f"{name}"

        def hook(_module: nn.Module, _inputs: Any, pre: torch.Tensor) -> None:
            if key in self._act:  # a later micro-batch: keep the first
                return
            with torch.no_grad():
                pre = pre.detach().float()  # (B, T, H)
                post = F.gelu(pre, approximate=mlp.approximate)
                below = pre.reshape(-1, pre.shape[-1]) < DEAD_BELOW  # (B*T, H)
                self._act[key] = {
                    "in_mean": pre.mean(), "in_std": pre.std(),
                    "out_mean": post.mean(), "out_std": post.std(),
                    "dead_frac": below.float().mean(),
                    "dead_units": below.all(dim=0).float().mean(),
                }
                if self.histograms:
                    lo, hi = HIST_RANGE
                    self._hist[key] = torch.histc(pre.clamp(lo, hi), HIST_BINS, lo, hi)

        return hook

    def _block_hook(self, name: str) -> Any:
        key = f"{name}.resid"

        def hook(_module: nn.Module, _inputs: Any, out: Any) -> None:
            if key in self._act:
                return
            x = out[0] if isinstance(out, tuple) else out
            with torch.no_grad():
                x = x.detach().float()
                self._act[key] = {"mean": x.mean(), "std": x.std()}

        return hook

    # ---- gradients and updates ----------------------------------------------------------
    def read_gradients(self) -> None:
        """Note each parameter tensor's gradient norm (call before clipping)."""
        self._grad = {n: p.grad.detach().float().norm() for n, p in self._params
                      if p.grad is not None}

    def before_update(self) -> None:
        """Copy the weights, to measure the optimizer's step (call right before it)."""
        self._before = [p.detach().clone() for _, p in self._params]

    def after_update(self, it: int) -> dict[str, Any]:
        """Measure the step and return the ``"monitor"`` record of step ``it``."""
        names, values = [], []
        for layer, stats in self._act.items():
            for stat, v in stats.items():
                names.append(("act", layer, stat))
                values.append(v)
        for pname, g in self._grad.items():
            names.append(("grad", pname, None))
            values.append(g)
        if self._before is not None:
            for (pname, p), old in zip(self._params, self._before):
                with torch.no_grad():
                    names.append(("update_delta", pname, None))
                    values.append((p.detach().float() - old.float()).norm())
                    names.append(("update_size", pname, None))
                    values.append(p.detach().float().norm())
        flat = torch.stack([v.reshape(()).float() for v in values]).tolist() if values else []
        hist = {k: v.tolist() for k, v in self._hist.items()}  # small: HIST_BINS numbers each

        record: dict[str, Any] = {"type": "monitor", "iter": it, "act": {}, "grad": {},
                                  "update": {}}
        deltas: dict[str, float] = {}
        for (kind, key, stat), v in zip(names, flat):
            if kind == "act":
                record["act"].setdefault(key, {})[stat] = v
            elif kind == "grad":
                record["grad"][key] = v
            elif kind == "update_delta":
                deltas[key] = v
            else:  # update_size
                d = deltas[key]
                record["update"][key] = (-math.inf if d == 0.0 else
                                         math.inf if v == 0.0 else math.log10(d / v))
        if self.histograms and hist:
            lo, hi = HIST_RANGE
            record["hist"] = {k: {"lo": lo, "hi": hi, "counts": [int(c) for c in counts]}
                              for k, counts in hist.items()}
        self._act, self._hist, self._grad, self._before = {}, {}, {}, None
        return record


def monitor_curves(records: Any) -> dict[str, Any]:
    """The monitor records of a log as columns, for plotting.

    Args:
        records: a run directory, a ``metrics.jsonl`` path, or a list of records.

    Returns a dict with ``iter`` (list of steps) and, for ``act`` (``"layer/stat"``),
    ``grad`` and ``update`` (parameter names), a dict of name -> list of values (``None``
    where a step lacks it).

    >>> recs = [{"type": "monitor", "iter": 0, "act": {"h.0.mlp": {"dead_frac": 0.1}},
    ...          "grad": {"w": 1.0}, "update": {"w": -3.0}},
    ...         {"type": "train", "iter": 0, "loss": 4.0},
    ...         {"type": "monitor", "iter": 10, "act": {"h.0.mlp": {"dead_frac": 0.2}},
    ...          "grad": {"w": 0.5}, "update": {"w": -3.2}}]
    >>> c = monitor_curves(recs)
    >>> c["iter"], c["act"]["h.0.mlp/dead_frac"], c["update"]["w"]
    ([0, 10], [0.1, 0.2], [-3.0, -3.2])
    """
    mons = sorted((r for r in load_records(records) if r.get("type") == "monitor"),
                  key=lambda r: r["iter"])
    out: dict[str, Any] = {"iter": [r["iter"] for r in mons], "act": {}, "grad": {},
                           "update": {}, "hist": {}}
    for kind in ("grad", "update"):
        keys = list(dict.fromkeys(k for r in mons for k in r.get(kind, {})))
        out[kind] = {k: [r.get(kind, {}).get(k) for r in mons] for k in keys}
    keys = list(dict.fromkeys((layer, stat) for r in mons
                              for layer, stats in r.get("act", {}).items() for stat in stats))
    out["act"] = {f"{layer}/{stat}": [r.get("act", {}).get(layer, {}).get(stat) for r in mons]
                  for layer, stat in keys}
    hkeys = list(dict.fromkeys(k for r in mons for k in r.get("hist", {})))
    out["hist"] = {k: [r.get("hist", {}).get(k) for r in mons] for k in hkeys}
    return out
