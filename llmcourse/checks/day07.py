"""Checks for day 07, "Before attention: MLP and WaveNet language models".

Each ``check_*`` function compares the learner's code with a reference on a small seeded battery
of inputs (several sizes, kernel sizes 2 and 3, non-default arguments, edge cases), gradients
included, prints one line - a pass, a specific hint, or "not done yet" - and returns ``True`` on
a pass. None of them raises. Each exercise has a table of typical mistakes (``MAKE_WINDOWS``,
``MLP_FORWARD``, ``CAUSAL_CONV``, ``BATCHNORM``) from which the hints come.

Example::

    >>> import torch
    >>> from llmcourse.checks import day07
    >>> def make_windows(ids, block_size):
    ...     return ids.unfold(0, block_size, 1)[:-1], ids[block_size:]
    >>> ok = day07.check_make_windows(make_windows)
    ✅ make_windows: passed
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_pair, as_tensor, assert_dtype, check,
                                    compare, outputs_and_grads)

__all__ = [
    "check_make_windows",
    "check_mlp_forward",
    "check_causal_conv",
    "check_batchnorm",
    "reference_causal_conv",
    "MAKE_WINDOWS",
    "MLP_FORWARD",
    "CAUSAL_CONV",
    "BATCHNORM",
]


# ---- exercise 1: windows and targets -------------------------------------------------------------


def _ref_make_windows(ids: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = ids.shape[0] - block_size
    X = torch.stack([ids[i:i + block_size] for i in range(n)]) if n > 0 else ids.new_zeros(0, block_size)
    return X, ids[block_size:].clone()


def _mw_one_too_many(ids, block_size):      # unfold keeps the last window, which has no target
    return ids.unfold(0, block_size, 1), ids[block_size:]


def _mw_y_off_by_one(ids, block_size):      # Y = the last token of each window
    return ids.unfold(0, block_size, 1)[:-1], ids[block_size - 1:-1]


def _mw_float(ids, block_size):             # filled a torch.zeros table (float32 by default)
    X = torch.zeros(len(ids) - block_size, block_size)
    Y = torch.zeros(len(ids) - block_size)
    for i in range(len(ids) - block_size):
        X[i] = ids[i:i + block_size]
        Y[i] = ids[i + block_size]
    return X, Y


def _mw_int32(ids, block_size):             # torch.tensor(..., dtype=torch.int32)
    rows = [ids[i:i + block_size].tolist() for i in range(len(ids) - block_size)]
    return torch.tensor(rows, dtype=torch.int32), torch.tensor(ids[block_size:].tolist(), dtype=torch.int32)


def _mw_drops_last(ids, block_size):        # range(len(ids) - block_size - 1)
    X = torch.stack([ids[i:i + block_size] for i in range(len(ids) - block_size - 1)])
    return X, ids[block_size:-1]


def _mw_stride(ids, block_size):            # unfold's step set to block_size: windows do not overlap
    X = ids.unfold(0, block_size, block_size)
    return X, ids[block_size::block_size][:len(X)]


def _mw_drops_first(ids, block_size):       # unfold(...)[1:]: the first window dropped, not the last
    return ids.unfold(0, block_size, 1)[1:], ids[block_size:]


def _mw_loop_one_too_many(ids, block_size):  # range(len(ids) - block_size + 1): ids[i + block_size] overruns
    n = len(ids) - block_size + 1
    return (torch.stack([ids[i:i + block_size] for i in range(n)]),
            torch.stack([ids[i + block_size] for i in range(n)]))


_INT64_HINT = ("X and Y must hold int64 ids (torch.long), like the ids you were given: the model "
               "indexes the embedding table with C[X] and the loss needs int64 targets; slice ids "
               "(or build with dtype=torch.long) instead of filling a float or int32 tensor")

MAKE_WINDOWS = [
    Mistake("one window too many", _mw_one_too_many,
            hint="X has one window too many: the last window has no next token to predict; keep "
                 "N - block_size windows (ids.unfold(0, block_size, 1)[:-1])"),
    Mistake("Y off by one", _mw_y_off_by_one,
            hint="Y is off by one: it repeats the last token of each window; the target of window "
                 "ids[i:i+block_size] is ids[i+block_size]"),
    Mistake("drops the last window", _mw_drops_last,
            hint="the last window (ids[N-block_size-1:N-1] -> ids[N-1]) is missing: there are "
                 "N - block_size windows, range(len(ids) - block_size)"),
    Mistake("drops the first window", _mw_drops_first,
            hint="the first window (ids[0:block_size] -> ids[block_size]) is missing: drop the LAST "
                 "window of ids.unfold(0, block_size, 1), with [:-1], not the first"),
    Mistake("loop one window too far", _mw_loop_one_too_many,
            hint="the loop runs one window too far (range(len(ids) - block_size + 1)), so "
                 "ids[i + block_size] is out of range: there are len(ids) - block_size windows"),
    Mistake("non-overlapping windows", _mw_stride,
            hint="the windows should overlap: one starts at every position (step 1), not every "
                 "block_size positions"),
    Mistake("float X", _mw_float, expect="should have dtype int64, got float32"),
    Mistake("int32 X", _mw_int32, expect="should have dtype int64, got int32"),
    Mistake("returns None", lambda ids, block_size: None, expect="returned None"),
]


def _windows(value: Any, case: Case) -> tuple[Any, Any]:
    X, Y = as_pair(value, "make_windows", ("X", "Y"))
    as_tensor(X, "X")
    as_tensor(Y, "Y")
    assert_dtype(X, torch.long, "X", _INT64_HINT)
    assert_dtype(Y, torch.long, "Y", _INT64_HINT)
    return X, Y


def _mw_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)
    return [
        Case("make_windows([5, 1, 4, 1, 5, 9, 2, 6], block_size=3)", torch.tensor([5, 1, 4, 1, 5, 9, 2, 6]), 3),
        Case("make_windows(50 random ids, block_size=8)", torch.randint(0, 65, (50,), generator=g), 8),
        Case("make_windows(6 ids, block_size=5: one window)",
             torch.randint(0, 65, (6,), generator=g), 5),
        Case("make_windows(13 ids, block_size=1)", torch.randint(0, 1000, (13,), generator=g), 1),
    ]


@check("make_windows", mistakes=MAKE_WINDOWS)
def check_make_windows(make_windows: Callable[..., Any]) -> None:
    """Exercise 1: every window of ``block_size`` ids and the id that follows it (int64)."""
    compare(make_windows, _ref_make_windows, _mw_cases(), name="(X, Y)", mistakes=MAKE_WINDOWS,
            read=_windows)


# ---- exercise 2: the MLP's forward pass ----------------------------------------------------------


def _ref_mlp(X, C, W1, b1, W2, b2):
    N, bs = X.shape
    e = torch.cat([C[X[:, j].long()] for j in range(bs)], dim=1)  # (N, bs * E), token 0 first
    return torch.tanh(e @ W1 + b1) @ W2 + b2


def _mlp_transposed(X, C, W1, b1, W2, b2):    # flattens (N, E, bs): features of all tokens interleaved
    return torch.tanh(C[X].transpose(1, 2).reshape(X.shape[0], -1) @ W1 + b1) @ W2 + b2


def _mlp_no_tanh(X, C, W1, b1, W2, b2):
    return (C[X].view(X.shape[0], -1) @ W1 + b1) @ W2 + b2


def _mlp_softmax(X, C, W1, b1, W2, b2):
    return torch.softmax(torch.tanh(C[X].view(X.shape[0], -1) @ W1 + b1) @ W2 + b2, dim=-1)


def _mlp_no_b1(X, C, W1, b1, W2, b2):
    return torch.tanh(C[X].view(X.shape[0], -1) @ W1) @ W2 + b2


def _mlp_relu(X, C, W1, b1, W2, b2):
    return torch.relu(C[X].view(X.shape[0], -1) @ W1 + b1) @ W2 + b2


def _mlp_globals(X, C, W1, b1, W2, b2):       # the notebook's bs = 3, E = 2
    return torch.tanh(C[X].view(-1, 3 * 2) @ W1 + b1) @ W2 + b2


def _mlp_sum(X, C, W1, b1, W2, b2):            # adds the window's vectors instead of concatenating
    return torch.tanh(C[X].sum(1).repeat(1, X.shape[1]) @ W1 + b1) @ W2 + b2


def _mlp_sum_to_e(X, C, W1, b1, W2, b2):       # sums (or averages) the window: (N, E) @ W1 fails
    return torch.tanh(C[X].sum(1) @ W1 + b1) @ W2 + b2


def _mlp_view_30(X, C, W1, b1, W2, b2):        # a size copied from the notebook
    return torch.tanh(C[X].view(-1, 30) @ W1 + b1) @ W2 + b2


def _mlp_sigmoid(X, C, W1, b1, W2, b2):
    return torch.sigmoid(C[X].view(X.shape[0], -1) @ W1 + b1) @ W2 + b2


def _mlp_no_b2(X, C, W1, b1, W2, b2):
    return torch.tanh(C[X].view(X.shape[0], -1) @ W1 + b1) @ W2


def _mlp_tanh_logits(X, C, W1, b1, W2, b2):  # a tanh on the output layer too
    return torch.tanh(torch.tanh(C[X].view(X.shape[0], -1) @ W1 + b1) @ W2 + b2)


def _mlp_reversed_window(X, C, W1, b1, W2, b2):  # newest token first: X.flip(1)
    return torch.tanh(C[X.flip(1)].reshape(X.shape[0], -1) @ W1 + b1) @ W2 + b2


def _mlp_b1_outside_tanh(X, C, W1, b1, W2, b2):  # tanh(e @ W1) + b1
    return (torch.tanh(C[X].view(X.shape[0], -1) @ W1) + b1) @ W2 + b2


def _mlp_flatten_all(X, C, W1, b1, W2, b2):  # emb.flatten() with no start_dim: one vector for the batch
    return torch.tanh(C[X].flatten() @ W1 + b1) @ W2 + b2


_SUMMED = ("the window's embeddings were summed (or averaged) into one (N, E) vector, which does "
           "not fit W1 (block_size * E rows): concatenate them, emb.view(N, block_size * E)")


MLP_FORWARD = [
    Mistake("wrong flatten order", _mlp_transposed,
            hint="the embeddings are flattened in the wrong order: emb.view(N, block_size * n_embd) "
                 "must put the n_embd numbers of the first token first"),
    Mistake("no tanh", _mlp_no_tanh,
            hint="the hidden layer has no non-linearity: apply torch.tanh to emb @ W1 + b1"),
    Mistake("relu", _mlp_relu, hint="the hidden layer uses tanh (h = tanh(e @ W1 + b1)), not ReLU"),
    Mistake("window reversed", _mlp_reversed_window,
            hint="the window's tokens are concatenated newest first: keep the order of X, the oldest "
                 "token's n_embd numbers first (emb.view(N, block_size * n_embd))"),
    Mistake("sigmoid", _mlp_sigmoid,
            hint="the hidden layer uses tanh (h = tanh(e @ W1 + b1)), not a sigmoid"),
    Mistake("no b2", _mlp_no_b2, hint="the output layer's bias is missing: logits = h @ W2 + b2"),
    Mistake("tanh on the logits", _mlp_tanh_logits,
            hint="the logits went through tanh too, which squeezes them into (-1, 1): only the "
                 "hidden layer has the tanh; logits = h @ W2 + b2"),
    Mistake("softmax", _mlp_softmax, hint="return the logits, not probabilities (no softmax here)"),
    Mistake("no b1", _mlp_no_b1, hint="the hidden layer's bias is missing: h = tanh(e @ W1 + b1)"),
    Mistake("b1 outside the tanh", _mlp_b1_outside_tanh,
            hint="b1 is added after the tanh: the bias goes inside, h = torch.tanh(e @ W1 + b1)"),
    Mistake("flatten() of the whole batch", _mlp_flatten_all,
            hint="emb.flatten() flattened the whole batch into one vector: keep one row per window, "
                 "emb.flatten(1) or emb.view(X.shape[0], -1)"),
    Mistake("notebook globals", _mlp_globals,
            hint="use the sizes of the arguments (X.shape[0], X.shape[1] * C.shape[1]), not the "
                 "notebook's bs and E"),
    Mistake("sums the window", _mlp_sum, expect="differs by up to"),
    Mistake("sums the window, (N, E) @ W1", _mlp_sum_to_e, hint=_SUMMED),
    Mistake("hard-coded view size", _mlp_view_30,
            hint="use the sizes of the arguments (X.shape[0], X.shape[1] * C.shape[1]) in the view, not "
                 "numbers from the notebook"),
]


def _mlp_cases() -> list[Case]:
    g = torch.Generator().manual_seed(1)
    cases = []
    for N, bs, E, H, V, dtype in ((6, 4, 3, 10, 11, torch.long), (5, 3, 2, 5, 65, torch.long),
                                  (1, 1, 4, 3, 7, torch.long), (9, 5, 3, 8, 20, torch.int32)):
        X = torch.randint(0, V, (N, bs), generator=g).to(dtype)
        C = torch.randn(V, E, generator=g)
        W1 = torch.randn(bs * E, H, generator=g) * 0.7
        b1 = torch.randn(H, generator=g)
        W2 = torch.randn(H, V, generator=g) * 2
        b2 = torch.randn(V, generator=g)
        label = (f"mlp_forward(X {_dtype(dtype)} ({N}, {bs}), C ({V}, {E}), W1 ({bs * E}, {H}), "
                 f"b1 ({H},), W2 ({H}, {V}), b2 ({V},))")
        cases.append(Case(label, X, C, W1, b1, W2, b2))
    return cases


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _run_mlp(impl: Any, case: Case) -> Any:
    (X, *params), _ = case.fresh()
    params = [p.requires_grad_() for p in params]
    try:
        try:
            out = impl(X, *params)
        except RuntimeError as exc:  # F.one_hot(X, V) @ C (day 05's lookup) needs int64 ids: fine too
            if X.dtype == torch.long or "one_hot" not in str(exc):
                raise
            out = impl(X.long(), *params)
    except RuntimeError as exc:  # (N, E) @ W1: name the summed window, not torch's shapes
        N, E = X.shape[0], params[0].shape[1]
        if f"({N}x{E} and {params[1].shape[0]}x" in str(exc) and X.shape[1] > 1:
            raise ValueError("the hidden layer got one (N, E) vector per window") from exc
        if f"(1x{X.numel() * E} and" in str(exc) and X.shape[0] > 1:  # emb.flatten(): one row for the batch
            raise ValueError("the hidden layer got the whole batch as one vector") from exc
        raise
    if not isinstance(out, torch.Tensor):
        return out
    return outputs_and_grads(out, dict(zip(("C", "W1", "b1", "W2", "b2"), params)))


def _logits(value: Any, case: Case) -> Any:
    if isinstance(value, dict):
        return value
    as_tensor(value, "mlp_forward(...)")  # None, a list, a tuple: named
    return value


@check("mlp_forward", mistakes=MLP_FORWARD)
def check_mlp_forward(mlp_forward: Callable[..., Any]) -> None:
    """Exercise 2: the Bengio MLP on ``(N, block_size)`` windows: logits and their gradients."""
    compare(mlp_forward, _ref_mlp, _mlp_cases(), name="mlp_forward(...)", run=_run_mlp,
            mistakes=MLP_FORWARD, read=_logits, atol=1e-4)


# ---- exercise 3: dilated causal convolution ------------------------------------------------------


def reference_causal_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                          dilation: int) -> torch.Tensor:
    """Dilated causal 1-D convolution: ``x`` ``(B, C_in, T)`` -> ``(B, C_out, T)``.

    Left-pads with ``(k - 1) * dilation`` zeros, so output ``t`` reads inputs
    ``t - (k - 1) * dilation, ..., t - dilation, t`` only.
    """
    k = weight.shape[-1]
    return F.conv1d(F.pad(x, ((k - 1) * dilation, 0)), weight, bias, dilation=dilation)


def _ref_conv_by_taps(x, weight, bias, dilation):
    """The same convolution written as a sum over taps (independent of F.conv1d's padding)."""
    B, _, T = x.shape
    k = weight.shape[-1]
    out = torch.zeros(B, weight.shape[0], T, dtype=x.dtype)
    for j in range(k):
        shift = (k - 1 - j) * dilation                 # tap j reads x[t - shift]
        xs = F.pad(x, (shift, 0))[..., :T] if shift else x
        out = out + torch.einsum("oi,bit->bot", weight[:, :, j], xs)
    return out if bias is None else out + bias[None, :, None]


def _cc_pad_dilation(x, w, b, d):          # right for kernel size 2 only
    return F.conv1d(F.pad(x, (d, 0)), w, b, dilation=d)


def _cc_pad_hardcoded_k2(x, w, b, d):      # (2 - 1) * d: the lesson's k = 2 hard-coded
    return F.conv1d(F.pad(x, ((2 - 1) * d, 0)), w, b, dilation=d)


def _cc_conv_without_dilation(x, w, b, d):  # padded for the dilation, convolved without it
    return F.conv1d(F.pad(x, ((w.shape[-1] - 1) * d, 0)), w, b)


def _cc_no_dilation(x, w, b, d):           # the dilation forgotten everywhere
    return F.conv1d(F.pad(x, (w.shape[-1] - 1, 0)), w, b)


def _cc_same(x, w, b, d):                  # symmetric padding, the extra zero on the left
    p = (w.shape[-1] - 1) * d
    return F.conv1d(F.pad(x, (p - p // 2, p // 2)), w, b, dilation=d)


def _cc_right_pad(x, w, b, d):
    return F.conv1d(F.pad(x, (0, (w.shape[-1] - 1) * d)), w, b, dilation=d)


def _cc_no_pad(x, w, b, d):
    return F.conv1d(x, w, b, dilation=d)


def _cc_no_bias(x, w, b, d):
    return F.conv1d(F.pad(x, ((w.shape[-1] - 1) * d, 0)), w, None, dilation=d)


def _cc_pad_k_minus_1(x, w, b, d):         # the dilation passed to conv1d but not to the padding
    return F.conv1d(F.pad(x, (w.shape[-1] - 1, 0)), w, b, dilation=d)


def _cc_k_from_dim0(x, w, b, d):           # k = weight.shape[0], the output channels
    k = w.shape[0]
    return F.conv1d(F.pad(x, ((k - 1) * d, 0)), w, b, dilation=d)


def _cc_pad_int(x, w, b, d):               # F.pad(x, n): the padding given as one int
    return F.conv1d(F.pad(x, (w.shape[-1] - 1) * d), w, b, dilation=d)


_PAD_FOR_K2 = ("you pad `dilation` zeros, which is right only for kernel size 2: pad "
               "(k - 1) * dilation zeros on the left, with k = weight.shape[-1]")

_NOT_CAUSAL = ("not causal: some zeros are padded on the right, so outputs read future inputs; pad "
               "all (k - 1) * dilation zeros on the LEFT (F.pad(x, (left, 0)))")

def _cc_trim_minus_pad(x, weight, bias, dilation):  # padding on both sides, then out[..., :-pad]
    pad = (weight.shape[-1] - 1) * dilation
    return F.conv1d(x, weight, bias, padding=pad, dilation=dilation)[..., :-pad]


def _cc_flipped(x, weight, bias, dilation):  # the kernel reversed, as in the textbook convolution
    k = weight.shape[-1]
    return F.conv1d(F.pad(x, ((k - 1) * dilation, 0)), weight.flip(-1), bias, dilation=dilation)


CAUSAL_CONV = [
    Mistake("pads dilation (k=2 only)", _cc_pad_dilation, hint=_PAD_FOR_K2),
    Mistake("hard-coded (2-1)*d", _cc_pad_hardcoded_k2, hint=_PAD_FOR_K2),
    Mistake("conv1d without dilation", _cc_conv_without_dilation,
            hint="the padding is right but F.conv1d was called without dilation=..., so the "
                 "convolution ignores the dilation (its taps are 1 step apart and the output too "
                 "long): pass dilation=dilation to F.conv1d"),
    Mistake("dilation ignored", _cc_no_dilation,
            hint="the dilation is ignored: with dilation d the taps are d steps apart (pass "
                 "dilation=... to F.conv1d, and pad (k - 1) * dilation)"),
    Mistake("symmetric padding", _cc_same, hint=_NOT_CAUSAL),
    Mistake("right padding", _cc_right_pad, hint=_NOT_CAUSAL),
    Mistake("no padding", _cc_no_pad,
            hint="the output is shorter than the input: pad (kernel_size - 1) * dilation zeros on "
                 "the left so that the length stays T"),
    Mistake("k = weight.shape[0]", _cc_k_from_dim0,
            hint="the kernel size is the LAST dimension of weight, (C_out, C_in, k): "
                 "k = weight.shape[-1], not weight.shape[0] (the output channels)"),
    Mistake("F.pad with an int", _cc_pad_int,
            hint="F.pad takes a tuple (left, right) for the last dimension: "
                 "F.pad(x, ((k - 1) * dilation, 0))"),
    Mistake("no bias", _cc_no_bias, hint="the bias is missing: pass bias to F.conv1d"),
    Mistake("pads k - 1, not (k - 1) * dilation", _cc_pad_k_minus_1,
            hint="the padding ignores the dilation: with dilation d the kernel spans (k - 1) * d + 1 "
                 "inputs, so pad (k - 1) * dilation zeros on the left, not k - 1"),
    Mistake("flipped kernel", _cc_flipped,
            hint="the kernel was reversed (weight.flip(-1)): F.conv1d does not flip it, its last tap "
                 "weight[..., -1] multiplies input t and the first the oldest input; pass weight as it is"),
    Mistake("out[..., :-pad]", _cc_trim_minus_pad,
            hint="with kernel size 1 the padding is 0 and out[..., :-0] is empty: keep the first T "
                 "outputs, out[..., :x.shape[-1]], or pad only the left side with F.pad"),
]


def _conv_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    cases = []
    # every case has a bias: the statement gives bias as (C_out,), never None
    for B, C_in, C_out, T, k, d, bias in ((2, 4, 4, 10, 2, 1, True), (2, 4, 4, 10, 2, 2, True),
                                          (1, 3, 5, 9, 3, 1, True), (2, 2, 3, 12, 3, 2, True),
                                          (1, 3, 2, 16, 3, 4, True), (3, 1, 1, 7, 2, 4, True),
                                          (1, 2, 2, 20, 2, 3, True), (2, 3, 4, 8, 1, 2, True)):
        x = torch.randn(B, C_in, T, generator=g)
        w = torch.randn(C_out, C_in, k, generator=g)
        b = torch.randn(C_out, generator=g) if bias else None
        label = (f"causal_conv(x ({B}, {C_in}, {T}), weight ({C_out}, {C_in}, {k}), "
                 f"bias {'(' + str(C_out) + ',)' if bias else 'None'}, dilation={d})")
        cases.append(Case(label, x, w, b, d))
    return cases


def _run_conv(impl: Any, case: Case) -> Any:
    (x, w, b, d), _ = case.fresh()
    wrt = {"x": x.requires_grad_(), "weight": w.requires_grad_()}
    if b is not None:
        wrt["bias"] = b.requires_grad_()
    out = impl(x, w, b, d)
    if not isinstance(out, torch.Tensor):
        return out
    return outputs_and_grads(out, wrt)


def _conv_out(value: Any, case: Case) -> Any:
    if isinstance(value, dict):
        return value
    as_tensor(value, "causal_conv(...)")
    return value


@check("causal_conv", mistakes=CAUSAL_CONV)
def check_causal_conv(causal_conv: Callable[..., Any]) -> None:
    """Exercise 3: a dilated causal convolution, kernel sizes 1 to 3, dilations 1 to 4, gradients."""
    compare(causal_conv, _ref_conv_by_taps, _conv_cases(), name="causal_conv(...)", run=_run_conv,
            mistakes=CAUSAL_CONV, read=_conv_out, atol=1e-4)


# ---- exercise 4: BatchNorm -----------------------------------------------------------------------


def _ref_batchnorm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    return F.batch_norm(x, running_mean, running_var, gamma, beta, training, momentum, eps)


def _bn(x, gamma, beta, mean, var, eps):
    return (x - mean) / torch.sqrt(var + eps) * gamma + beta


def _update(rm, rv, x, momentum, *, var=None):
    with torch.no_grad():
        rm.mul_(1 - momentum).add_(momentum * x.mean(0))
        rv.mul_(1 - momentum).add_(momentum * (x.var(0, unbiased=True) if var is None else var))


def _bn_no_eps(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        _update(rm, rv, x, momentum)
    else:
        mean, var = rm, rv
    return (x - mean) / torch.sqrt(var) * gamma + beta


def _bn_eps_outside(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        _update(rm, rv, x, momentum)
    else:
        mean, var = rm, rv
    return (x - mean) / (torch.sqrt(var) + eps) * gamma + beta


def _bn_fixed_momentum(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        _update(rm, rv, x, 0.1)
    else:
        mean, var = rm, rv
    return _bn(x, gamma, beta, mean, var, eps)


def _bn_fixed_eps(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        _update(rm, rv, x, momentum)
    else:
        mean, var = rm, rv
    return _bn(x, gamma, beta, mean, var, 1e-5)


def _bn_under_no_grad(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    with torch.no_grad():
        if training:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            _update(rm, rv, x, momentum)
        else:
            mean, var = rm, rv
        return _bn(x, gamma, beta, mean, var, eps)


def _bn_detached_stats(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0).detach(), x.var(0, unbiased=False).detach()
        _update(rm, rv, x, momentum)
    else:
        mean, var = rm, rv
    return _bn(x, gamma, beta, mean, var, eps)


def _bn_update_with_grad(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        rm.mul_(1 - momentum).add_(momentum * mean)                    # not under no_grad
        rv.mul_(1 - momentum).add_(momentum * x.var(0, unbiased=True))
    else:
        mean, var = rm, rv
    return _bn(x, gamma, beta, mean, var, eps)


def _bn_eval_stub(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        _update(rm, rv, x, momentum)
        return _bn(x, gamma, beta, mean, var, eps)
    raise NotImplementedError  # TODO: the eval branch


def _bn_always_batch(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        _update(rm, rv, x, momentum)
    return _bn(x, gamma, beta, x.mean(0), x.var(0, unbiased=False), eps)


def _bn_rebinds(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        rm = (1 - momentum) * rm + momentum * mean.detach()             # rebinds the local name
        rv = (1 - momentum) * rv + momentum * x.var(0, unbiased=True).detach()
    else:
        mean, var = rm, rv
    return _bn(x, gamma, beta, mean, var, eps)


def _bn_unbiased_norm(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=True)
        _update(rm, rv, x, momentum)
    else:
        mean, var = rm, rv
    return _bn(x, gamma, beta, mean, var, eps)


def _bn_over_features(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:  # statistics of each row (dim=1): that is LayerNorm, not BatchNorm
        mean, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
        _update(rm, rv, x, momentum)
    else:
        mean, var = rm, rv
    return _bn(x, gamma, beta, mean, var, eps)


def _bn_biased_running(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        _update(rm, rv, x, momentum, var=var.detach())
    else:
        mean, var = rm, rv
    return _bn(x, gamma, beta, mean, var, eps)


def _bn_running_in_training(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        _update(rm, rv, x, momentum)
    return _bn(x, gamma, beta, rm, rv, eps)


def _bn_updates_in_eval(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
    else:
        mean, var = rm.clone(), rv.clone()
    if x.shape[0] > 1:
        _update(rm, rv, x, momentum)
    return _bn(x, gamma, beta, mean, var, eps)


def _bn_swapped_momentum(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        with torch.no_grad():
            rm.mul_(momentum).add_((1 - momentum) * mean)
            rv.mul_(momentum).add_((1 - momentum) * x.var(0, unbiased=True))
    else:
        mean, var = rm, rv
    return _bn(x, gamma, beta, mean, var, eps)


def _bn_no_eps_in_eval(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        _update(rm, rv, x, momentum)
        return _bn(x, gamma, beta, mean, var, eps)
    return (x - rm) / torch.sqrt(rv) * gamma + beta


def _bn_gamma_beta_swapped(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        _update(rm, rv, x, momentum)
    else:
        mean, var = rm, rv
    return (x - mean) / torch.sqrt(var + eps) * beta + gamma


def _bn_keepdim(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):  # (1, C) statistics
    if training:
        mean, var = x.mean(0, keepdim=True), x.var(0, unbiased=False, keepdim=True)
        with torch.no_grad():
            rm.mul_(1 - momentum).add_(momentum * mean)
            rv.mul_(1 - momentum).add_(momentum * x.var(0, keepdim=True))
    else:
        mean, var = rm, rv
    return (x - mean) / torch.sqrt(var + eps) * gamma + beta


def _bn_unbiased_over_c(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):  # / (C - 1), not / (N - 1)
    if training:
        mean = x.mean(0)
        var = ((x - mean) ** 2).mean(0)
        with torch.no_grad():
            rm.mul_(1 - momentum).add_(momentum * mean)
            rv.mul_(1 - momentum).add_(momentum * ((x - mean) ** 2).sum(0) / (x.shape[1] - 1))
    else:
        mean, var = rm, rv
    return (x - mean) / torch.sqrt(var + eps) * gamma + beta


_EVAL_STUB = ("the eval (running-statistics) branch is not written yet: for training=False, "
              "normalise with running_mean and running_var and change nothing")

BATCHNORM = [
    Mistake("no eps", _bn_no_eps,
            hint="eps is missing: divide by torch.sqrt(var + eps); without it a constant feature "
                 "(variance 0) gives NaN"),
    Mistake("eps outside the sqrt", _bn_eps_outside,
            hint="eps goes inside the square root: torch.sqrt(var + eps), not torch.sqrt(var) + eps "
                 "(they differ a lot for a feature with a small variance)"),
    Mistake("momentum hard-coded", _bn_fixed_momentum,
            hint="use the momentum argument, not a hard-coded 0.1, to update the running statistics"),
    Mistake("eps hard-coded", _bn_fixed_eps,
            hint="use the eps argument, not a hard-coded 1e-5"),
    Mistake("under no_grad", _bn_under_no_grad,
            hint="the output carries no gradients: only the running-statistics update goes under "
                 "torch.no_grad(); the normalisation itself must stay in the graph"),
    Mistake("detached batch statistics", _bn_detached_stats,
            hint="the batch mean and variance must stay in the graph (no .detach() or no_grad on "
                 "them): the gradient with respect to x flows through them too"),
    Mistake("running stats updated with autograd on", _bn_update_with_grad,
            hint="update running_mean and running_var under torch.no_grad(): otherwise they carry "
                 "autograd history (requires_grad, a grad_fn) and a later backward fails"),
    Mistake("eval branch still a stub", _bn_eval_stub, expect=_EVAL_STUB),
    Mistake("batch statistics in eval", _bn_always_batch,
            hint="in eval mode (training=False) normalise with running_mean and running_var, not "
                 "the batch's statistics"),
    Mistake("rebinds the running stats", _bn_rebinds,
            hint="running_mean did not change: update it in place, running_mean.mul_(1 - momentum)"
                 ".add_(momentum * batch_mean); `running_mean = ...` only rebinds a local name"),
    Mistake("unbiased variance to normalise", _bn_unbiased_norm,
            hint="normalise with the biased variance, x.var(0, unbiased=False) (divide by N, as "
                 "nn.BatchNorm1d does); the running variance uses the unbiased one"),
    Mistake("statistics over the features", _bn_over_features,
            hint="the batch statistics are taken over the features of each row (dim=1, that is "
                 "LayerNorm); BatchNorm averages each feature over the batch: x.mean(0), x.var(0, ...)"),
    Mistake("biased running variance", _bn_biased_running,
            hint="update running_var with the UNBIASED batch variance, x.var(0, unbiased=True) "
                 "(PyTorch's convention); normalise with the biased one"),
    Mistake("running stats in training", _bn_running_in_training,
            hint="in training mode, normalise with the statistics of the batch (x.mean(0), "
                 "x.var(0, unbiased=False)), not the running averages"),
    Mistake("updates in eval", _bn_updates_in_eval,
            hint="eval mode changed the running statistics: update them only when training=True"),
    Mistake("no eps in eval", _bn_no_eps_in_eval,
            hint="the eval branch leaves out eps: normalise with torch.sqrt(running_var + eps) there "
                 "too, as nn.BatchNorm1d does"),
    Mistake("gamma and beta swapped", _bn_gamma_beta_swapped,
            hint="gamma and beta are swapped: gamma multiplies the normalised x (the gain) and beta "
                 "is added (the shift), x_hat * gamma + beta"),
    Mistake("keepdim statistics in the in-place update", _bn_keepdim,
            hint="the batch mean has shape (1, C) (keepdim=True), which cannot be added in place to "
                 "running_mean of shape (C,): compute x.mean(0) without keepdim (or .squeeze(0) it)"),
    Mistake("unbiased variance over C - 1", _bn_unbiased_over_c,
            hint="the unbiased variance divides by N - 1, the batch size minus one "
                 "(x.shape[0] - 1), not by the number of features minus one; or use x.var(0)"),
    Mistake("momentum swapped", _bn_swapped_momentum,
            hint="the momentum weighs the NEW batch statistic: running = (1 - momentum) * running "
                 "+ momentum * batch_stat"),
]


def _bn_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)

    def batch(N, C, scale=3.0, shift=2.0):
        return torch.randn(N, C, generator=g) * scale + shift

    # 1: defaults; feature 1 is constant, feature 3 has std 1e-3.
    C = 5
    steps = []
    for _ in range(3):
        x = batch(16, C)
        x[:, 1] = 0.5                                   # exact in float32: its mean is exactly 0.5
        x[:, 3] = 1e-3 * torch.randn(16, generator=g)
        steps.append((x, True))
    steps += [(batch(1, C), False), (batch(4, C), False)]
    gamma, beta = torch.randn(C, generator=g), torch.randn(C, generator=g)
    cases = [Case("batchnorm: 3 training calls on (16, 5) (a constant feature, one with std 1e-3), "
                  "then eval on (1, 5) and (4, 5), default momentum and eps",
                  steps, gamma, beta, torch.zeros(C), torch.ones(C), {})]
    # 2: non-default momentum and eps, training and eval interleaved.
    C = 3
    steps = [(batch(8, C, 0.5, -1.0), True), (batch(8, C, 0.5, -1.0), True), (batch(2, C), False),
             (batch(8, C, 0.5, 1.0), True), (batch(3, C), False)]
    cases.append(Case("batchnorm: train, train, eval, train, eval on 3 features, momentum=0.3, eps=0.1",
                      steps, torch.randn(C, generator=g), torch.randn(C, generator=g),
                      torch.zeros(C), torch.ones(C), {"momentum": 0.3, "eps": 0.1}))
    # 3: a batch of two, running statistics not starting at 0 and 1, momentum 0.5.
    C = 7
    steps = [(batch(2, C), True), (batch(2, C), True), (batch(5, C), False)]
    cases.append(Case("batchnorm: 2 training calls on (2, 7), then eval on (5, 7), running stats "
                      "starting away from 0 and 1, momentum=0.5, eps=1e-3",
                      steps, torch.randn(C, generator=g), torch.randn(C, generator=g),
                      torch.randn(C, generator=g), torch.rand(C, generator=g) + 0.5,
                      {"momentum": 0.5, "eps": 1e-3}))
    return cases


def _run_bn(impl: Any, case: Case) -> dict[str, Any]:
    (steps, gamma, beta, running_mean, running_var, kwargs), _ = case.fresh()
    gamma.requires_grad_()
    beta.requires_grad_()
    transcript: dict[str, Any] = {}
    trained = False
    for i, (x, training) in enumerate(steps, 1):
        key = f"call {i} ({'training' if training else 'eval'}, x {tuple(x.shape)})"
        x.requires_grad_()
        try:
            y = impl(x, gamma, beta, running_mean, running_var, training, **kwargs)
        except NotImplementedError:
            if trained and not training:
                raise CheckFailed(_EVAL_STUB) from None
            raise
        trained = trained or training
        if y is None:
            raise CheckFailed(f"batchnorm returned None on {key}; did you forget `return y`?")
        as_tensor(y, f"batchnorm's result on {key}")
        obs = outputs_and_grads(y, {"x": x, "gamma": gamma, "beta": beta}, seed=i)
        history = bool(running_mean.requires_grad or running_var.requires_grad
                       or running_mean.grad_fn is not None or running_var.grad_fn is not None)
        obs["running stats carry autograd history"] = history
        obs["running_mean"] = running_mean.detach().clone()
        obs["running_var"] = running_var.detach().clone()
        transcript[key] = obs
    return transcript


@check("batchnorm", mistakes=BATCHNORM)
def check_batchnorm(batchnorm: Callable[..., Any]) -> None:
    """Exercise 4: BatchNorm in both modes over sequences of calls: outputs, gradients, running stats."""
    compare(batchnorm, _ref_batchnorm, _bn_cases(), name="batchnorm", run=_run_bn,
            mistakes=BATCHNORM, atol=1e-4)
