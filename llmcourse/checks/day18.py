"""Checks for day 18, "Training fast", and the reference versions the lesson runs on.

Each ``check_*`` function runs the learner's code on cases of its own, prints one line - a pass,
a specific hint, or "not done yet" - and never raises.

Example::

    >>> from llmcourse.checks import day18
    >>> ok = day18.check_precision_for(day18.reference_precision_for)
    ✅ precision_for: passed
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import CheckFailed, as_bool, call, check

__all__ = [
    "check_precision_for",
    "check_mfu",
    "check_accumulate_grads",
    "check_scaled_step",
    "reference_precision_for",
    "reference_mfu",
    "reference_accumulate_grads",
    "reference_scaled_step",
]


# ---- reference implementations -------------------------------------------------------------


def reference_precision_for(capability: tuple[int, int]) -> tuple[torch.dtype, bool]:
    """``(autocast dtype, use a GradScaler)`` for a CUDA GPU of this compute capability."""
    if tuple(capability) >= (8, 0):
        return torch.bfloat16, False
    return torch.float16, True


def reference_mfu(tokens_per_s: float, n_params: int, n_layer: int, n_embd: int, seq_len: int,
                  peak_flops: float) -> float:
    """Model FLOPs utilisation: ``(6 N + 12 L C T) * tokens/s / peak``, a fraction."""
    flops_per_token = 6 * n_params + 12 * n_layer * n_embd * seq_len
    return flops_per_token * tokens_per_s / peak_flops


def reference_accumulate_grads(model: nn.Module,
                               micro_batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Backward over each micro-batch with the loss divided by their number; the gradients
    add up in ``.grad`` to those of one big batch. Returns the mean loss."""
    n = len(micro_batches)
    total = 0.0
    for x, y in micro_batches:
        _, loss = model(x, y)
        (loss / n).backward()
        total += loss.item()
    return total / n


def reference_scaled_step(model: nn.Module, optimizer: torch.optim.Optimizer,
                          scaler: torch.amp.GradScaler, x: torch.Tensor, y: torch.Tensor,
                          max_norm: float) -> float:
    """One float16-style step: scaled backward, unscale, clip, scaler.step, update.
    Returns the gradient norm before clipping (of the true, unscaled gradients)."""
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    scaler.update()
    return norm.item()


# ---- exercise 1: precision_for -----------------------------------------------------------------


_GPUS = [((7, 0), "V100"), ((7, 5), "T4"), ((8, 0), "A100"), ((8, 6), "RTX 3090 / A10"),
         ((8, 9), "L4 / RTX 4090"), ((9, 0), "H100"), ((10, 0), "B200"), ((12, 0), "RTX 5090")]


@check("precision_for")
def check_precision_for(precision_for: Callable[..., Any]) -> None:
    """Exercise 1: bfloat16 without a scaler from capability 8.0, float16 with one below."""
    for cap, name in _GPUS:
        got = call(precision_for, cap, shown=f"precision_for({cap})")
        if not isinstance(got, tuple) or len(got) != 2:
            raise CheckFailed(f"precision_for({cap}) should return a pair (dtype, use_scaler), got "
                              f"{got!r}")
        dtype, scaler = got
        scaler = as_bool(scaler, f"precision_for({cap})[1]")
        if dtype not in (torch.float16, torch.bfloat16, torch.float32):
            raise CheckFailed(f"precision_for({cap})[0] should be a torch dtype such as "
                              f"torch.bfloat16, got {dtype!r}")
        want_dtype, want_scaler = reference_precision_for(cap)
        if dtype != want_dtype:
            if cap < (8, 0):
                raise CheckFailed(f"a {name} (capability {cap[0]}.{cap[1]}) has no bfloat16 tensor "
                                  "cores: bfloat16 would be emulated, several times slower; use "
                                  "torch.float16 there (compare the capability with (8, 0))")
            raise CheckFailed(f"an {name} (capability {cap[0]}.{cap[1]}) has bfloat16 tensor cores: "
                              "from (8, 0) on use torch.bfloat16 (compare the whole tuple, "
                              "capability >= (8, 0), not only the major number with > 8)")
        if scaler != want_scaler:
            if want_scaler:
                raise CheckFailed(f"float16 on a {name} needs a GradScaler: its smallest normal "
                                  "number is 6e-5, and small gradients underflow to zero without "
                                  "loss scaling")
            raise CheckFailed(f"bfloat16 on an {name} needs no GradScaler: it has float32's "
                              "exponent range, so gradients do not underflow")


# ---- exercise 2: mfu -------------------------------------------------------------------------


@check("mfu")
def check_mfu(mfu: Callable[..., Any]) -> None:
    """Exercise 2: (6N + 12 L C T) * tokens/s / peak, as a fraction."""
    cases = [  # tokens/s, N, L, C, T, peak
        (30_000.0, 800_000, 4, 128, 64, 3e11),
        (150_000.0, 10_700_000, 6, 384, 256, 65e12),
    ]
    for args in cases:
        tok_s, n, L, C, T, peak = args
        got = call(mfu, *args, shown=f"mfu({tok_s:g}, n_params={n}, n_layer={L}, n_embd={C}, "
                                     f"seq_len={T}, peak_flops={peak:g})")
        if got is None:
            raise CheckFailed("mfu returned None; did you forget the `return`?")
        if isinstance(got, torch.Tensor):
            got = got.item()
        try:
            value = float(got)
        except (TypeError, ValueError) as exc:
            raise CheckFailed(f"mfu should return a number, got {type(got).__name__}") from exc
        want = reference_mfu(*args)
        if math.isclose(value, 100 * want, rel_tol=1e-6):
            raise CheckFailed("that is a percentage; return the fraction (0.25, not 25), and "
                              "format it with :.0% when printing")
        if math.isclose(value, 2 * n * tok_s / peak, rel_tol=1e-6) or math.isclose(
                value, (2 * n + 4 * L * C * T) * tok_s / peak, rel_tol=1e-6):
            raise CheckFailed("that counts the forward pass only: training costs 3 times as much "
                              "(the backward pass does two matmuls per forward matmul), 6N FLOPs "
                              "per token, not 2N")
        if math.isclose(value, 6 * n * tok_s / peak, rel_tol=1e-6):
            raise CheckFailed("the attention term is missing: add 12 * n_layer * n_embd * seq_len "
                              "FLOPs per token for the QK^T and AV matmuls")
        if math.isclose(value, peak / ((6 * n + 12 * L * C * T) * tok_s), rel_tol=1e-6):
            raise CheckFailed("the fraction is upside down: achieved FLOP/s divided by the peak")
        if not math.isclose(value, want, rel_tol=1e-6):
            raise CheckFailed(f"mfu{args} returned {value:.4g}; expected {want:.4g} "
                              "= (6 N + 12 L C T) * tokens_per_s / peak_flops")


# ---- exercise 3: gradient accumulation --------------------------------------------------------


class _TinyLM(nn.Module):
    def __init__(self, vocab: int = 13, width: int = 10) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.wte = nn.Embedding(vocab, width)
        self.head = nn.Linear(width, vocab)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> Any:
        logits = self.head(torch.tanh(self.wte(idx)))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def _grads(model: nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]


def _max_diff(a: list[torch.Tensor | None], b: list[torch.Tensor | None]) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


@check("accumulate_grads")
def check_accumulate_grads(accumulate_grads: Callable[..., Any]) -> None:
    """Exercise 3: the accumulated gradients equal those of one big batch."""
    g = torch.Generator().manual_seed(0)
    k, b, t = 3, 5, 7
    micro = [(torch.randint(13, (b, t), generator=g), torch.randint(13, (b, t), generator=g))
             for _ in range(k)]
    big_x = torch.cat([x for x, _ in micro])  # (k * b, t)
    big_y = torch.cat([y for _, y in micro])

    ref = _TinyLM()
    _, big_loss = ref(big_x, big_y)
    big_loss.backward()
    want = _grads(ref)

    mine = _TinyLM()
    got_loss = call(accumulate_grads, mine, micro, shown="accumulate_grads(model, 3 micro-batches)")
    got = _grads(mine)
    if any(gr is None for gr in got):
        raise CheckFailed("after accumulate_grads some parameters have no .grad: call backward() "
                          "on each micro-batch's loss")
    if _max_diff(got, want) < 1e-6:
        pass
    elif _max_diff([x / k for x in got], want) < 1e-6:  # type: ignore[operator]
        raise CheckFailed(f"the gradients are {k} times those of one big batch: divide each "
                          f"micro-batch's loss by the number of micro-batches ({k}) before "
                          "backward(); backward adds the gradients up, and the big batch's loss "
                          "is a mean, not a sum")
    else:
        last = _TinyLM()
        _, loss = last(*micro[-1])
        (loss / k).backward()
        if _max_diff(got, _grads(last)) < 1e-6 or _max_diff([x / k for x in got], _grads(last)) < 1e-6:  # type: ignore[operator]
            raise CheckFailed("only the last micro-batch's gradient is left: do not zero the "
                              "gradients inside the loop; backward() is meant to add them up")
        raise CheckFailed(f"the accumulated gradients differ from those of one big batch "
                          f"(largest difference {_max_diff(got, want):.2e}); call "
                          "(loss / n).backward() once per micro-batch")
    if got_loss is None:
        raise CheckFailed("accumulate_grads returned None; return the mean loss of the "
                          "micro-batches as a float")
    if isinstance(got_loss, torch.Tensor):
        got_loss = got_loss.item()
    try:
        value = float(got_loss)
    except (TypeError, ValueError) as exc:
        raise CheckFailed(f"accumulate_grads should return a float, got "
                          f"{type(got_loss).__name__}") from exc
    if math.isclose(value, big_loss.item() / k, rel_tol=1e-5):
        raise CheckFailed("the returned loss is divided by the number of micro-batches once too "
                          "often: return the mean of the micro-batch losses (the loss of the big "
                          "batch)")
    if not math.isclose(value, big_loss.item(), rel_tol=1e-5):
        raise CheckFailed(f"accumulate_grads returned the loss {value:.4f}; the mean over the "
                          f"micro-batches is {big_loss.item():.4f}")


# ---- exercise 4: the GradScaler step ----------------------------------------------------------


class _Huge(nn.Module):
    """A model whose gradients overflow float32 once multiplied by the scaler's 2**16."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -2.0]))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Any:
        return None, (self.w * 1e35).sum() * 1e0


class _SpyScaler(torch.amp.GradScaler):
    """A GradScaler that records which of its methods were called."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            super().__init__("cpu", init_scale=2.0**16)
        self.calls: list[str] = []

    def scale(self, outputs: Any) -> Any:  # type: ignore[override]
        self.calls.append("scale")
        return super().scale(outputs)

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        self.calls.append("unscale_")
        super().unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("step")
        return super().step(optimizer, *args, **kwargs)

    def update(self, new_scale: Any = None) -> None:
        self.calls.append("update")
        super().update(new_scale)


def _scaler() -> _SpyScaler:
    return _SpyScaler()


def _check_calls(calls: list[str]) -> None:
    if "scale" not in calls:
        raise CheckFailed("the loss was not scaled: call scaler.scale(loss).backward() instead of "
                          "loss.backward(), so that small float16 gradients do not underflow")
    if "step" not in calls:
        raise CheckFailed("step through the scaler, scaler.step(optimizer), not optimizer.step(): "
                          "it skips the step when the scaled gradients overflowed")
    if "update" not in calls:
        raise CheckFailed("call scaler.update() at the end of every step: it lowers the scale "
                          "after an overflow and raises it again after many good steps")


@check("scaled_step")
def check_scaled_step(scaled_step: Callable[..., Any]) -> None:
    """Exercise 4: scale, backward, unscale_, clip, scaler.step, scaler.update; return the norm."""
    g = torch.Generator().manual_seed(1)
    x = torch.randint(13, (4, 6), generator=g)
    y = torch.randint(13, (4, 6), generator=g)
    max_norm = 0.5

    ref = _TinyLM()
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    ref_norm = reference_scaled_step(ref, ref_opt, _scaler(), x, y, max_norm)

    mine = _TinyLM()
    opt = torch.optim.SGD(mine.parameters(), lr=0.1)
    scaler = _scaler()
    before = copy.deepcopy(mine.state_dict())
    norm = call(scaled_step, mine, opt, scaler, x, y, max_norm,
                shown="scaled_step(model, optimizer, scaler, x, y, max_norm=0.5)")
    _check_calls(scaler.calls)
    if norm is None:
        raise CheckFailed("scaled_step returned None; return the gradient norm that "
                          "clip_grad_norm_ returns (before clipping)")
    if isinstance(norm, torch.Tensor):
        norm = norm.item()
    norm = float(norm)
    scale = 2.0**16
    if math.isclose(norm, ref_norm * scale, rel_tol=1e-3):
        raise CheckFailed("the norm is 65536 times too large: you clipped the *scaled* gradients. "
                          "Call scaler.unscale_(optimizer) before clip_grad_norm_, so that max_norm "
                          "applies to the true gradients")
    if all(torch.equal(v, before[k]) for k, v in mine.state_dict().items()):
        raise CheckFailed("the parameters did not change: call scaler.step(optimizer) after "
                          "clipping")
    diff = max((mine.state_dict()[k] - ref.state_dict()[k]).abs().max().item() for k in before)
    if diff > 1e-5:
        raise CheckFailed(f"after one step the parameters differ from the reference by {diff:.2e} "
                          "(is the gradient clipped to max_norm, after scaler.unscale_?)")
    if not math.isclose(norm, ref_norm, rel_tol=1e-4):
        raise CheckFailed(f"scaled_step returned {norm:.4g}; the norm of the unscaled gradients "
                          f"before clipping is {ref_norm:.4g} (what clip_grad_norm_ returns)")

    # Overflow: the scaled gradients are inf. The step must be skipped and the scale halved.
    huge = _Huge()
    opt = torch.optim.SGD(huge.parameters(), lr=0.1)
    scaler = _scaler()
    w0 = huge.w.detach().clone()
    call(scaled_step, huge, opt, scaler, x, y, max_norm,
         shown="scaled_step on a model whose scaled gradients overflow")
    if not torch.equal(huge.w.detach(), w0):
        raise CheckFailed("when the scaled gradients overflow (inf), the step must be skipped, but "
                          "the weights changed: scale the loss (scaler.scale(loss).backward()) and "
                          "step through the scaler (scaler.step(optimizer)), not optimizer.step()")
    if scaler.get_scale() != scale / 2:
        raise CheckFailed("after an overflow the scale should halve (65536 -> 32768): call "
                          "scaler.update() at the end of every step")
