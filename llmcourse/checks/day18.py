"""Checks for day 18, "Training fast", and the reference versions the lesson runs on.

Each ``check_*`` function is differential: it runs the learner's code and the reference on a
battery of its own (nine GPU capabilities around (8, 0); four MFU cases of other sizes; 1, 3 and
6 micro-batches, int32 inputs, comparing every parameter's gradient; two or three scaled steps
in a row with SGD and AdamW, clipping on and off, a scale of 1 that shows gradients left from
the previous step, and gradients that overflow) and compares what they do. Each exercise has a
table of typical mistakes whose hints the check prints and whose entries the tests hand to the
check. It prints one line - a pass, a specific hint, or "not done yet" - and never raises.

Example::

    >>> import torch
    >>> from llmcourse.checks import day18
    >>> ok = day18.check_precision_for(lambda cap: (torch.bfloat16, False) if cap >= (8, 0)
    ...                                else (torch.float16, True))
    ✅ precision_for: passed
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_bool, as_float, check,
                                    compare, kind_of)

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


def _pf_always_bf16(capability):
    return torch.bfloat16, False


def _pf_strict(capability):  # > instead of >=: the A100 (8, 0) itself gets float16
    if capability > (8, 0):
        return torch.bfloat16, False
    return torch.float16, True


def _pf_major(capability):  # the major number only, with >
    if capability[0] > 8:
        return torch.bfloat16, False
    return torch.float16, True


def _pf_no_scaler(capability):
    return (torch.bfloat16, False) if capability >= (8, 0) else (torch.float16, False)


def _pf_scaler_everywhere(capability):
    return (torch.bfloat16, True) if capability >= (8, 0) else (torch.float16, True)


def _pf_strings(capability):
    return ("bf16", False) if capability >= (8, 0) else ("fp16", True)


def _pf_dtype_only(capability):
    return torch.bfloat16 if capability >= (8, 0) else torch.float16


_PF_ALWAYS_FP16 = ("every capability got float16, so the argument was ignored "
                   "(torch.cuda.is_bf16_supported() describes this machine, not the GPU asked "
                   "about): return bfloat16 without a scaler when capability >= (8, 0)")


def _pf_always_fp16(capability):  # e.g. torch.cuda.is_bf16_supported() on a machine without one
    return torch.float16, True


PRECISION_FOR = [
    Mistake("always bfloat16", _pf_always_bf16, hint="a GPU below capability 8.0 (V100, T4) has no "
            "bfloat16 tensor cores: bfloat16 would be emulated, several times slower; use "
            "torch.float16 there (compare the capability with (8, 0))"),
    Mistake("> (8, 0)", _pf_strict, hint="(8, 0) itself (the A100) has bfloat16 tensor cores: "
            "use capability >= (8, 0), not >"),
    Mistake("major > 8", _pf_major, hint="capability 8.x (A100, RTX 3090, L4) has bfloat16 tensor "
            "cores: compare the whole tuple, capability >= (8, 0), not only the major number with "
            "> 8"),
    Mistake("float16 without a scaler", _pf_no_scaler, hint="float16 needs a GradScaler: its "
            "smallest normal number is 6e-5, and small gradients underflow to zero without loss "
            "scaling"),
    Mistake("bfloat16 with a scaler", _pf_scaler_everywhere, hint="bfloat16 needs no GradScaler: "
            "it has float32's exponent range, so gradients do not underflow"),
    Mistake("float32 below 8.0", lambda c: (torch.bfloat16, False) if c >= (8, 0) else (torch.float32, False),
            hint="below capability 8.0 (V100, T4) use float16 with a GradScaler, not float32: those "
                 "GPUs have float16 tensor cores, and float32 gives up the speed-up"),
    Mistake("major == 8", lambda c: (torch.bfloat16, False) if c[0] == 8 else (torch.float16, True),
            hint="capability 9.0 (H100) and later have bfloat16 too: compare capability >= (8, 0), "
                 "not == 8"),
    Mistake("always float16", _pf_always_fp16, expect="every capability got float16, so the "
            "argument was ignored"),
    Mistake("strings for dtypes", _pf_strings, expect="should be a torch dtype"),
    Mistake("dtype only", _pf_dtype_only, expect="should return a pair"),
]

_GPUS = [((7, 0), "V100"), ((7, 5), "T4"), ((8, 6), "RTX 3090 / A10"), ((8, 0), "A100"),
         ((8, 9), "L4 / RTX 4090"), ((9, 0), "H100"), ((10, 0), "B200"), ((12, 0), "RTX 5090"),
         ((6, 1), "GTX 1080")]


def _read_precision(value: Any, case: Case) -> tuple[Any, bool]:
    shown = f"precision_for({case.args[0]})"
    if value is None:
        raise CheckFailed(f"{shown} returned None; did you forget `return dtype, use_scaler`?")
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise CheckFailed(f"{shown} should return a pair (dtype, use_scaler), got {kind_of(value)}")
    dtype, scaler = value
    if not isinstance(dtype, torch.dtype):
        raise CheckFailed(f"{shown}[0] should be a torch dtype such as torch.bfloat16, got "
                          f"{kind_of(dtype)}")
    return dtype, as_bool(scaler, f"{shown}[1]")


@check("precision_for", mistakes=PRECISION_FOR)
def check_precision_for(precision_for: Callable[..., Any]) -> None:
    """Exercise 2: bfloat16 without a scaler from capability 8.0, float16 with one below."""
    cases = [Case(f"precision_for({cap}) for the {name}", cap) for cap, name in _GPUS]
    try:
        compare(precision_for, reference_precision_for, cases, name="(dtype, use_scaler)",
                mistakes=PRECISION_FOR, read=_read_precision)
    except CheckFailed:
        # float16 for every GPU: the argument was ignored (a single case cannot tell this from
        # comparing the major number only)
        try:
            answers = {tuple(precision_for(cap)) for cap, _ in _GPUS}
        except Exception:  # noqa: BLE001 - the compare's own message stands
            answers = set()
        if answers == {(torch.float16, True)}:
            raise CheckFailed(_PF_ALWAYS_FP16) from None
        raise


# ---- exercise 1 of the lesson: mfu -------------------------------------------------------------


def _mfu_percent(tokens_per_s, n_params, n_layer, n_embd, seq_len, peak_flops):
    return 100 * (6 * n_params + 12 * n_layer * n_embd * seq_len) * tokens_per_s / peak_flops


def _mfu_forward_only(tokens_per_s, n_params, n_layer, n_embd, seq_len, peak_flops):
    return (2 * n_params + 4 * n_layer * n_embd * seq_len) * tokens_per_s / peak_flops


def _mfu_2n(tokens_per_s, n_params, n_layer, n_embd, seq_len, peak_flops):
    return 2 * n_params * tokens_per_s / peak_flops


def _mfu_no_attention(tokens_per_s, n_params, n_layer, n_embd, seq_len, peak_flops):
    return 6 * n_params * tokens_per_s / peak_flops


def _mfu_upside_down(tokens_per_s, n_params, n_layer, n_embd, seq_len, peak_flops):
    return peak_flops / ((6 * n_params + 12 * n_layer * n_embd * seq_len) * tokens_per_s)


def _mfu_no_seq_len(tokens_per_s, n_params, n_layer, n_embd, seq_len, peak_flops):
    return (6 * n_params + 12 * n_layer * n_embd) * tokens_per_s / peak_flops


def _mfu_floor(tokens_per_s, n_params, n_layer, n_embd, seq_len, peak_flops):
    return (6 * n_params + 12 * n_layer * n_embd * seq_len) * tokens_per_s // peak_flops


def _mfu_rounded(tokens_per_s, n_params, n_layer, n_embd, seq_len, peak_flops):
    return round((6 * n_params + 12 * n_layer * n_embd * seq_len) * tokens_per_s / peak_flops, 2)


def _mfu_per_sequence(tokens_per_s, n_params, n_layer, n_embd, seq_len, peak_flops):
    return (6 * n_params + 12 * n_layer * n_embd * seq_len) * tokens_per_s * seq_len / peak_flops


def _mfu_with(flops_per_token: Callable[[int, int, int, int], float]) -> Callable[..., float]:
    def mfu(tokens_per_s, n_params, n_layer, n_embd, seq_len, peak_flops):
        return flops_per_token(n_params, n_layer, n_embd, seq_len) * tokens_per_s / peak_flops
    return mfu


MFU = [
    Mistake("percentage", _mfu_percent, hint="that is a percentage; return the fraction (0.25, not "
            "25), and format it with :.0% when printing"),
    Mistake("forward pass only", _mfu_forward_only, hint="that counts the forward pass only: "
            "training costs 3 times as much (the backward pass does two matmuls per forward "
            "matmul), 6N FLOPs per token, not 2N"),
    Mistake("2N", _mfu_2n, hint="that counts the forward pass only: training costs 3 times as "
            "much (the backward pass does two matmuls per forward matmul), 6N FLOPs per token, "
            "not 2N; and add the attention term"),
    Mistake("no attention term", _mfu_no_attention, hint="the attention term is missing: add "
            "12 * n_layer * n_embd * seq_len FLOPs per token for the QK^T and AV matmuls"),
    Mistake("upside down", _mfu_upside_down, hint="the fraction is upside down: achieved FLOP/s "
            "divided by the peak"),
    Mistake("2N + attention", _mfu_with(lambda N, L, C, T: 2 * N + 12 * L * C * T),
            hint="2N counts the forward pass only: training (forward and backward) costs 6N FLOPs "
                 "per token, 6 * n_params + 12 * n_layer * n_embd * seq_len"),
    Mistake("seq_len squared", _mfu_with(lambda N, L, C, T: 6 * N + 12 * L * C * T * T),
            hint="the attention term is per TOKEN: each token attends to seq_len others, so it is "
                 "12 * n_layer * n_embd * seq_len, not seq_len ** 2 (that would be per sequence)"),
    Mistake("6 * (N + attention)", _mfu_with(lambda N, L, C, T: 6 * (N + 12 * L * C * T)),
            hint="the 6 multiplies n_params only: the attention term 12 * n_layer * n_embd * "
                 "seq_len already counts forward and backward; FLOPs per token = 6 * n_params + 12 "
                 "* n_layer * n_embd * seq_len"),
    Mistake("integer division", _mfu_floor, hint="// rounds the fraction down to a whole number "
            "(0 for any MFU below 100%): divide with /"),
    Mistake("rounded", _mfu_rounded, hint="return the exact fraction, not a rounded one: round "
            "only when printing (f\"{mfu:.0%}\")"),
    Mistake("times seq_len", _mfu_per_sequence, hint="tokens_per_s already counts tokens, and "
            "6 N + 12 L C T is per token: do not multiply by seq_len again"),
    Mistake("no seq_len", _mfu_no_seq_len, hint="the attention term grows with the context: "
            "12 * n_layer * n_embd * seq_len FLOPs per token"),
]


def _mfu_cases() -> list[Case]:
    rows = [(30_000.0, 800_000, 4, 128, 64, 3e11), (150_000.0, 10_700_000, 6, 384, 256, 65e12),
            (412_000, 124_000_000, 12, 768, 1024, 989e12), (2_500.5, 50_000, 1, 16, 8, 1e9)]
    return [Case(f"mfu({s:g}, n_params={n}, n_layer={L}, n_embd={C}, seq_len={T}, "
                 f"peak_flops={p:g})", s, n, L, C, T, p) for s, n, L, C, T, p in rows]


@check("mfu", mistakes=MFU)
def check_mfu(mfu: Callable[..., Any]) -> None:
    """Exercise 1: (6N + 12 L C T) * tokens/s / peak, as a fraction."""
    compare(mfu, reference_mfu, _mfu_cases(), name="mfu(...)", mistakes=MFU,
            read=lambda v, case: as_float(v, "mfu"), atol=0.0, rtol=1e-6)


# ---- exercise 4 of the lesson: gradient accumulation ------------------------------------------


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


def _ag_no_divide(model, micro_batches):
    losses = []
    for x, y in micro_batches:
        _, loss = model(x, y)
        loss.backward()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def _ag_zero_inside(model, micro_batches):
    losses = []
    for x, y in micro_batches:
        model.zero_grad()
        _, loss = model(x, y)
        (loss / len(micro_batches)).backward()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def _ag_returns_scaled_loss(model, micro_batches):
    total = 0.0
    for x, y in micro_batches:
        _, loss = model(x, y)
        loss = loss / len(micro_batches)
        loss.backward()
        total += loss.item()
    return total / len(micro_batches)


def _ag_fixed_steps(model, micro_batches):  # the notebook's 4 micro-batches, hard-coded
    total = 0.0
    for x, y in micro_batches:
        _, loss = model(x, y)
        (loss / 4).backward()
        total += loss.item()
    return total / len(micro_batches)


def _ag_returns_last(model, micro_batches):
    n = len(micro_batches)
    for x, y in micro_batches:
        _, loss = model(x, y)
        (loss / n).backward()
    return loss.item()


def _ag_one_big_batch(model, micro_batches):  # the gradients are right, the memory is not
    x = torch.cat([x for x, _ in micro_batches])
    y = torch.cat([y for _, y in micro_batches])
    _, loss = model(x, y)
    loss.backward()
    return loss.item()


def _ag_keeps_graph(model, micro_batches):  # total += loss keeps every micro-batch's graph
    total = 0.0
    for x, y in micro_batches:
        _, loss = model(x, y)
        (loss / len(micro_batches)).backward()
        total += loss
    return total / len(micro_batches)


_AG_GRAPH = ("the returned loss still carries its autograd graph (total += loss keeps every "
             "micro-batch's graph alive in memory): add loss.item(), a plain number")


def _ag_only_first(model, micro_batches):
    _, loss = model(*micro_batches[0])
    loss.backward()
    return loss.item()


def _ag_backward_at_end(model, micro_batches):  # every graph kept until one backward at the end
    losses = [model(x, y)[1] for x, y in micro_batches]
    loss = torch.stack(losses).mean()
    loss.backward()
    return loss.item()


def _ag_divides_by_batch_size(model, micro_batches):  # n confused with the micro-batch's size
    total = 0.0
    for xb, yb in micro_batches:
        _, loss = model(xb, yb)
        (loss / xb.shape[0]).backward()
        total += loss.item()
    return total / len(micro_batches)


def _ag_len_of_first(model, micro_batches):  # len of the first (x, y) pair: always 2
    n = len(micro_batches[0])
    total = 0.0
    for xb, yb in micro_batches:
        _, loss = model(xb, yb)
        (loss / n).backward()
        total += loss.item()
    return total / len(micro_batches)


def _ag_returns_sum(model, micro_batches):
    n = len(micro_batches)
    total = 0.0
    for xb, yb in micro_batches:
        _, loss = model(xb, yb)
        (loss / n).backward()
        total += loss.item()
    return total


ACCUMULATE = [
    Mistake("no division", _ag_no_divide, hint="the gradients are n times those of one big batch: "
            "divide each micro-batch's loss by the number of micro-batches before backward(); "
            "backward adds the gradients up, and the big batch's loss is a mean, not a sum"),
    Mistake("zero_grad inside the loop", _ag_zero_inside, hint="only the last micro-batch's "
            "gradient is left: do not zero the gradients inside the loop; backward() is meant to "
            "add them up"),
    Mistake("loss divided twice", _ag_returns_scaled_loss, hint="the returned loss is divided by "
            "the number of micro-batches once too often: return the mean of the micro-batch "
            "losses (the loss of the big batch)"),
    Mistake("divides by a fixed 4", _ag_fixed_steps, hint="divide by the number of micro-batches "
            "given, n = len(micro_batches), not a fixed number"),
    Mistake("returns the last loss", _ag_returns_last, hint="return the mean of all the "
            "micro-batch losses, not the last one"),
    Mistake("first micro-batch only", _ag_only_first, hint="loop over every micro-batch: the "
            "gradients should add up over all of them"),
    Mistake("one big batch", _ag_one_big_batch, hint="the micro-batches were joined into one big "
            "batch, which needs all the memory accumulation saves: run the model on each "
            "micro-batch on its own and let backward() add up the gradients"),
    Mistake("loss kept as a tensor", _ag_keeps_graph, expect=_AG_GRAPH),
    Mistake("one backward at the end", _ag_backward_at_end, hint="the micro-batch losses were kept "
            "and backpropagated together at the end, which holds every micro-batch's graph in "
            "memory at once (the memory of the big batch): call (loss / n).backward() inside the "
            "loop, right after each micro-batch's forward pass"),
    Mistake("divides by the batch size", _ag_divides_by_batch_size, hint="the loss was divided by "
            "the micro-batch's size; divide by the number of micro-batches, n = len(micro_batches) "
            "(the loss is already a mean over the micro-batch)"),
    Mistake("len(micro_batches[0])", _ag_len_of_first, hint="the loss was divided by 2, the "
            "length of one (x, y) pair: divide by the number of micro-batches, "
            "n = len(micro_batches)"),
    Mistake("returns the sum", _ag_returns_sum, hint="that is the sum of the micro-batch losses; "
            "return their mean, total / n (the loss of the big batch)"),
]


def _accumulate_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)

    def micro(k: int, b: int, t: int, dtype: torch.dtype = torch.long) -> list[Any]:
        return [(torch.randint(13, (b, t), generator=g).to(dtype), torch.randint(13, (b, t), generator=g))
                for _ in range(k)]

    return [Case("accumulate_grads(model, 3 micro-batches of (5, 7))", micro(3, 5, 7)),
            Case("accumulate_grads(model, 1 micro-batch of (4, 5))", micro(1, 4, 5)),
            Case("accumulate_grads(model, 6 micro-batches of (2, 9), int32 inputs)",
                 micro(6, 2, 9, torch.int32))]


class _CountingLM(_TinyLM):
    """:class:`_TinyLM` that remembers the batch size of every forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_sizes: list[int] = []
        self.backwards = 0                 # backward passes that reached a forward's logits
        self.backward_before_next: list[bool] = []

    def _count_backward(self, grad: torch.Tensor) -> None:
        self.backwards += 1

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> Any:
        self.backward_before_next.append(self.backwards == len(self.batch_sizes))
        self.batch_sizes.append(int(idx.shape[0]))
        logits, loss = super().forward(idx, targets)
        if logits.requires_grad:
            logits.register_hook(self._count_backward)
        return logits, loss


def _run_accumulate(accumulate_grads: Callable[..., Any], case: Case) -> dict[str, Any]:
    (micro,), _ = case.fresh()
    model = _CountingLM()
    got = accumulate_grads(model, micro)
    if isinstance(got, torch.Tensor) and got.requires_grad:
        raise CheckFailed(f"{_AG_GRAPH} (on {case.label})")
    obs: dict[str, Any] = {}
    for name, p in model.named_parameters():
        obs[f"grad of {name}"] = None if p.grad is None else p.grad.detach().clone()
    obs["the returned mean loss"] = as_float(got, "accumulate_grads")
    sizes = [int(x.shape[0]) for x, _ in micro]
    obs["one forward pass per micro-batch"] = model.batch_sizes == sizes
    obs["each micro-batch's backward before the next forward"] = all(model.backward_before_next)
    return obs


@check("accumulate_grads", mistakes=ACCUMULATE)
def check_accumulate_grads(accumulate_grads: Callable[..., Any]) -> None:
    """Exercise 4: the accumulated gradients equal those of one big batch; the mean loss."""
    compare(accumulate_grads, reference_accumulate_grads, _accumulate_cases(),
            name="accumulate_grads", run=_run_accumulate, mistakes=ACCUMULATE, atol=1e-6)


# ---- exercise 3 of the lesson: the GradScaler step ---------------------------------------------


class _Huge(nn.Module):
    """A model whose gradients overflow float32 once multiplied by the scaler's 2**16."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -2.0]))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Any:
        # logits (B, T, 13) of size 1e36: the loss is finite, 2**16 times it (and its gradient)
        # overflow float32; returned too, so that a loss computed from the logits works alike
        pattern = torch.linspace(-1.0, 1.0, 13)
        logits = (1e36 * (self.w[0] * pattern + self.w[1] * pattern.flip(0))).expand(
            *x.shape, 13)
        loss = None if y is None else F.cross_entropy(logits.flatten(0, 1), y.flatten())
        return logits, loss


class _SpyScaler(torch.amp.GradScaler):
    """A GradScaler that records which of its methods the learner called (not its inner calls)."""

    def __init__(self, init_scale: float = 2.0**16) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            super().__init__("cpu", init_scale=init_scale)
        self.calls: list[str] = []
        self._inner = False

    def scale(self, outputs: Any) -> Any:  # type: ignore[override]
        self.calls.append("scale")
        return super().scale(outputs)

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        if not self._inner:
            self.calls.append("unscale_")
        super().unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("step")
        self._inner = True
        try:
            return super().step(optimizer, *args, **kwargs)
        finally:
            self._inner = False

    def update(self, new_scale: Any = None) -> None:
        self.calls.append("update")
        super().update(new_scale)


def _ss(model, optimizer, scaler, x, y, max_norm, *, zero=True, scale=True, unscale=True,
        clip=True, via_scaler=True, update=True, after=False):
    if zero:
        optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    (scaler.scale(loss) if scale else loss).backward()
    if unscale:
        scaler.unscale_(optimizer)
    if clip:
        norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    else:
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    if via_scaler:
        scaler.step(optimizer)
    else:
        optimizer.step()
    if update:
        scaler.update()
    if after:  # the norm after clipping
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    return norm


def _ss_clip_before_unscale(model, optimizer, scaler, x, y, max_norm):
    optimizer.zero_grad()
    _, loss = model(x, y)
    scaler.scale(loss).backward()
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.unscale_(optimizer)
    scaler.step(optimizer)
    scaler.update()
    return norm


def _ss_manual_unscale(model, optimizer, scaler, x, y, max_norm):  # p.grad /= scale by hand
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    scaler.scale(loss).backward()
    for p in model.parameters():
        p.grad /= scaler.get_scale()
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    scaler.update()
    return norm


def _ss_no_unscale(model, optimizer, scaler, x, y, max_norm):
    return _ss(model, optimizer, scaler, x, y, max_norm, unscale=False)


def _ss_optimizer_step(model, optimizer, scaler, x, y, max_norm):
    return _ss(model, optimizer, scaler, x, y, max_norm, via_scaler=False)


def _ss_no_update(model, optimizer, scaler, x, y, max_norm):
    return _ss(model, optimizer, scaler, x, y, max_norm, update=False)


def _ss_no_scale(model, optimizer, scaler, x, y, max_norm):  # the float32 loop, scaler unused
    return _ss(model, optimizer, scaler, x, y, max_norm, scale=False, unscale=False,
               via_scaler=False, update=False)


def _ss_no_zero_grad(model, optimizer, scaler, x, y, max_norm):
    return _ss(model, optimizer, scaler, x, y, max_norm, zero=False)


def _ss_no_clip(model, optimizer, scaler, x, y, max_norm):
    return _ss(model, optimizer, scaler, x, y, max_norm, clip=False)


def _ss_norm_after(model, optimizer, scaler, x, y, max_norm):
    return _ss(model, optimizer, scaler, x, y, max_norm, after=True)


def _ss_loss_backward(model, optimizer, scaler, x, y, max_norm):  # scaler used, loss not scaled
    return _ss(model, optimizer, scaler, x, y, max_norm, scale=False)


def _ss_scaled_threshold(model, optimizer, scaler, x, y, max_norm):  # clips the scaled gradients
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    scaler.scale(loss).backward()
    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm * scaler.get_scale())
    scaler.step(optimizer)
    scaler.update()
    return norm


def _ss_returns_loss(model, optimizer, scaler, x, y, max_norm):
    optimizer.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    scaler.update()
    return loss


_NOT_SCALED = ("the loss was not scaled: call scaler.scale(loss).backward() instead of "
               "loss.backward(), so that small float16 gradients do not underflow")

_UNSCALE_FIRST = ("you clipped the *scaled* gradients (65536 times too large): call "
                  "scaler.unscale_(optimizer) before clip_grad_norm_, so that max_norm applies to "
                  "the true gradients")

SCALED_STEP = [
    Mistake("clip before unscale_", _ss_clip_before_unscale, hint=_UNSCALE_FIRST),
    Mistake("no unscale_", _ss_no_unscale, hint=_UNSCALE_FIRST),
    Mistake("gradients divided by hand", _ss_manual_unscale, hint="you divided the gradients by the "
            "scale yourself, and scaler.step, which did not know, unscaled them a second time: call "
            "scaler.unscale_(optimizer) instead"),
    Mistake("optimizer.step()", _ss_optimizer_step, hint="step through the scaler, "
            "scaler.step(optimizer), not optimizer.step(): it skips the step when the scaled "
            "gradients overflowed"),
    Mistake("no scaler.update()", _ss_no_update, hint="call scaler.update() at the end of every "
            "step: it lowers the scale after an overflow and raises it again after many good steps"),
    Mistake("loss not scaled", _ss_no_scale, hint=_NOT_SCALED),
    Mistake("loss.backward(), then the scaler", _ss_loss_backward, expect=_NOT_SCALED),
    Mistake("returns the loss", _ss_returns_loss, hint="that is the loss; return the gradient norm "
            "that clip_grad_norm_ returns (before clipping), the figure worth logging"),
    Mistake("max_norm times the scale", _ss_scaled_threshold, hint="the norm returned is that of "
            "the scaled gradients (65536 times too large): call scaler.unscale_(optimizer) first, "
            "then clip with max_norm itself and return that norm"),
    Mistake("no zero_grad", _ss_no_zero_grad, hint="the gradients of the previous step were added "
            "to this one's: clear them first, optimizer.zero_grad(set_to_none=True)"),
    Mistake("no clipping", _ss_no_clip, hint="the gradients were not clipped to max_norm: call "
            "nn.utils.clip_grad_norm_(model.parameters(), max_norm) after scaler.unscale_"),
    Mistake("norm after clipping", _ss_norm_after, hint="return the norm that clip_grad_norm_ "
            "returned: the norm before clipping"),
]


def _scaled_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randint(13, (4, 6), generator=g), torch.randint(13, (4, 6), generator=g))
               for _ in range(3)]
    return [Case("3 scaled_steps with SGD, max_norm=0.5 (the gradients get clipped)",
                 "tiny", "SGD", batches, 0.5),
            Case("2 scaled_steps with AdamW, max_norm=50.0 (no clipping)",
                 "tiny", "AdamW", batches[:2], 50.0),
            Case("2 scaled_steps on a model whose scaled gradients overflow (inf)",
                 "huge", "SGD", batches[:2], 1.0),
            # at a scale of 1, gradients left from the previous step are not hidden by 2**16
            Case("3 scaled_steps with SGD and a GradScaler whose scale is 1.0, max_norm=50.0",
                 "tiny", "SGD", batches, 50.0, 1.0)]


def _run_scaled(scaled_step: Callable[..., Any], case: Case) -> list[dict[str, Any]]:
    kind, optimizer, batches, max_norm, *init_scale = case.args
    model: nn.Module = _TinyLM() if kind == "tiny" else _Huge()
    if optimizer == "SGD":
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    scaler = _SpyScaler(*init_scale)
    out = []
    for x, y in batches:
        scaler.calls = []
        try:
            norm = scaled_step(model, opt, scaler, x.clone(), y.clone(), max_norm)
        except AssertionError as exc:  # GradScaler asserts that a scaled loss came first
            if "_scale is None" in str(exc):
                raise CheckFailed(_NOT_SCALED) from exc
            raise
        if norm is None:
            raise CheckFailed("scaled_step returned None; return the gradient norm that "
                              "clip_grad_norm_ returns (before clipping)")
        out.append({"the norm returned": as_float(norm, "scaled_step"),
                    "the scaler's methods called": list(scaler.calls),
                    "the scale afterwards": scaler.get_scale(),
                    **{f"{n} afterwards": p.detach().clone() for n, p in model.named_parameters()}})
    return out


@check("scaled_step", mistakes=SCALED_STEP)
def check_scaled_step(scaled_step: Callable[..., Any]) -> None:
    """Exercise 3: scale, backward, unscale_, clip, scaler.step, scaler.update; return the norm."""
    compare(scaled_step, reference_scaled_step, _scaled_cases(), name="the steps",
            run=_run_scaled, mistakes=SCALED_STEP, rtol=1e-4, atol=1e-6)
