"""Checks for day 07, "Before attention: MLP and WaveNet language models".

Each ``check_*`` function runs the learner's code on random inputs, compares it numerically
with the package (:class:`llmcourse.model.MLPLM`, :class:`llmcourse.model.WaveNetLM`) or with
PyTorch (:class:`torch.nn.BatchNorm1d`), prints one line - a pass, a specific hint, or "not done
yet" - and returns ``True`` on a pass. None of them raises.

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
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import CheckFailed, as_pair, assert_close, assert_shape, call, check
from llmcourse.model import MLPConfig, MLPLM, WaveNetConfig, WaveNetLM

__all__ = [
    "check_make_windows",
    "check_mlp_forward",
    "check_causal_conv",
    "check_batchnorm",
    "reference_causal_conv",
]


@check("make_windows")
def check_make_windows(make_windows: Callable[..., Any]) -> None:
    """Exercise 1: every window of ``block_size`` ids and the id that follows it."""
    ids = torch.tensor([5, 1, 4, 1, 5, 9, 2, 6])
    X, Y = as_pair(call(make_windows, ids, 3, shown=f"make_windows({ids.tolist()}, block_size=3)"),
                   "make_windows", ("X", "Y"))
    if not isinstance(X, torch.Tensor) or not isinstance(Y, torch.Tensor):
        raise CheckFailed("make_windows should return two tensors (X, Y)")
    want_X = torch.tensor([[5, 1, 4], [1, 4, 1], [4, 1, 5], [1, 5, 9], [5, 9, 2]])
    want_Y = torch.tensor([1, 5, 9, 2, 6])
    if tuple(X.shape) == (6, 3):
        raise CheckFailed("X has 6 windows for 8 ids and block_size 3, but the last window "
                          "[9, 2, 6] has no next token to predict; keep N - block_size windows")
    assert_shape(X, (5, 3), "X for 8 ids and block_size=3")
    assert_shape(Y, (5,), "Y for 8 ids and block_size=3")
    if torch.equal(Y, ids[2:7]):
        raise CheckFailed("Y is off by one: it repeats the last token of each window; the "
                          "target of window ids[i:i+block_size] is ids[i+block_size]")
    if not torch.equal(X, want_X):
        raise CheckFailed(f"X should be {want_X.tolist()}, got {X.tolist()}")
    if not torch.equal(Y, want_Y):
        raise CheckFailed(f"Y should be {want_Y.tolist()}, got {Y.tolist()}")
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(0, 65, (50,), generator=g)
    X, Y = as_pair(call(make_windows, ids, 8, shown="make_windows(50 random ids, block_size=8)"),
                   "make_windows", ("X", "Y"))
    assert_shape(X, (42, 8), "X for 50 ids and block_size=8")
    for i in (0, 17, 41):
        if not torch.equal(X[i], ids[i:i + 8]) or int(Y[i]) != int(ids[i + 8]):
            raise CheckFailed(f"window {i} for block_size=8 is wrong: expected X[{i}] = ids[{i}:{i + 8}] "
                              f"and Y[{i}] = ids[{i + 8}]")


def _mlp_params(model: MLPLM) -> tuple[torch.Tensor, ...]:
    """The MLP's parameters in the lesson's math convention: ``h = tanh(e @ W1 + b1)``."""
    return (model.wte.weight.detach(), model.hidden.weight.detach().T.contiguous(),
            model.hidden.bias.detach(), model.lm_head.weight.detach().T.contiguous(),
            model.lm_head.bias.detach())


@check("mlp_forward")
def check_mlp_forward(mlp_forward: Callable[..., Any]) -> None:
    """Exercise 2: the Bengio MLP on ``(N, block_size)`` windows, against ``MLPLM``."""
    torch.manual_seed(0)
    V, bs, E, H = 11, 4, 3, 10
    model = MLPLM(MLPConfig(vocab_size=V, block_size=bs, n_embd=E, n_hidden=H, pad_token=0)).eval()
    with torch.no_grad():  # give the biases some size so that forgetting them shows
        model.hidden.bias.normal_()
        model.lm_head.bias.normal_()
        model.lm_head.weight.mul_(10)
    C, W1, b1, W2, b2 = _mlp_params(model)
    g = torch.Generator().manual_seed(1)
    X = torch.randint(0, V, (6, bs), generator=g)
    with torch.no_grad():
        got = mlp_forward(X, C, W1, b1, W2, b2)
        # MLPLM's prediction at the last position of a block_size-long input reads exactly X.
        want = model(X)[0][:, -1, :]  # (N, V)
    if got is None:
        raise CheckFailed("mlp_forward returned None; did you forget `return logits`?")
    assert_shape(got, (6, V), "logits for 6 windows and V=11")
    emb = C[X]  # (N, bs, E)
    wrong_flat = emb.transpose(1, 2).reshape(6, bs * E)
    if torch.allclose(got, torch.tanh(wrong_flat @ W1 + b1) @ W2 + b2, atol=1e-5):
        raise CheckFailed("the embeddings are flattened in the wrong order: emb.view(N, block_size "
                          "* n_embd) must put the n_embd numbers of the first token first")
    flat = emb.reshape(6, bs * E)
    if torch.allclose(got, (flat @ W1 + b1) @ W2 + b2, atol=1e-5):
        raise CheckFailed("the hidden layer has no non-linearity: apply torch.tanh to emb @ W1 + b1")
    if torch.allclose(got, torch.softmax(want, dim=-1), atol=1e-5):
        raise CheckFailed("return the logits, not probabilities (no softmax here)")
    assert_close(got, want, "logits compared with llmcourse.model.MLPLM", atol=1e-4)


def reference_causal_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                          dilation: int) -> torch.Tensor:
    """Dilated causal 1-D convolution: ``x`` ``(B, C_in, T)`` -> ``(B, C_out, T)``.

    Left-pads with ``(k - 1) * dilation`` zeros, so output ``t`` reads inputs
    ``t - (k - 1) * dilation, ..., t - dilation, t`` only.
    """
    k = weight.shape[-1]
    return F.conv1d(F.pad(x, ((k - 1) * dilation, 0)), weight, bias, dilation=dilation)


@check("causal_conv")
def check_causal_conv(causal_conv: Callable[..., Any]) -> None:
    """Exercise 3: a dilated causal convolution, against the layers of ``WaveNetLM``."""
    torch.manual_seed(0)
    model = WaveNetLM(WaveNetConfig(vocab_size=5, block_size=8, n_embd=3, n_hidden=4,
                                    batchnorm=False))
    with torch.no_grad():
        for conv in model.convs:
            conv.bias.normal_()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 10, generator=g)  # (B, C_in, T)
    for conv, d in list(zip(model.convs, model.dilations))[1:]:  # layers with 4 input channels
        w, b = conv.weight.detach(), conv.bias.detach()
        with torch.no_grad():
            got = causal_conv(x, w, b, d)
            want = conv(F.pad(x, ((conv.kernel_size[0] - 1) * d, 0)))  # as WaveNetLM does it
        if got is None:
            raise CheckFailed("causal_conv returned None; did you forget the `return`?")
        if isinstance(got, torch.Tensor) and got.shape[-1] != x.shape[-1]:
            raise CheckFailed(f"the output has {got.shape[-1]} time steps for an input of "
                              f"{x.shape[-1]}; pad (kernel_size - 1) * dilation zeros on the left "
                              "so that the length stays T")
        assert_shape(got, tuple(want.shape), f"output for dilation {d}")
        x2 = x.clone()
        x2[..., -1] += 10.0  # change only the last time step
        with torch.no_grad():
            got2 = causal_conv(x2, w, b, d)
        if not torch.allclose(got[..., :-1], got2[..., :-1], atol=1e-5):
            raise CheckFailed("not causal: changing the input at the last time step changed earlier "
                              "outputs; pad on the LEFT only (F.pad(x, (left, 0)))")
        if d > 1 and torch.allclose(got, causal_conv_no_dilation(x, w, b), atol=1e-5):
            raise CheckFailed(f"the dilation is ignored: with dilation {d} the two taps are {d} "
                              "steps apart (pass dilation=... to F.conv1d, and pad (k - 1) * dilation)")
        assert_close(got, want, f"output for dilation {d} (compared with WaveNetLM's layer)", atol=1e-5)


def causal_conv_no_dilation(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A causal convolution that forgets the dilation (a mistake the check recognises)."""
    return F.conv1d(F.pad(x, (w.shape[-1] - 1, 0)), w, b)


@check("batchnorm")
def check_batchnorm(batchnorm: Callable[..., Any]) -> None:
    """Exercise 4: BatchNorm's forward in both modes, against ``nn.BatchNorm1d``."""
    torch.manual_seed(0)
    N, C = 16, 5
    ref = nn.BatchNorm1d(C)
    with torch.no_grad():
        ref.weight.normal_()
        ref.bias.normal_()
    gamma, beta = ref.weight.detach().clone(), ref.bias.detach().clone()
    running_mean, running_var = torch.zeros(C), torch.ones(C)
    g = torch.Generator().manual_seed(3)
    batches = [torch.randn(N, C, generator=g) * 3 + 2 for _ in range(3)]
    for step, x in enumerate(batches):
        ref.train()
        with torch.no_grad():
            want = ref(x)
            got = batchnorm(x, gamma, beta, running_mean, running_var, True)
        if got is None:
            raise CheckFailed("batchnorm returned None; did you forget `return y`?")
        assert_shape(got, (N, C), "the output")
        if step == 0 and torch.allclose(got, (x - 0.0) / (1.0 + 1e-5) ** 0.5 * gamma + beta, atol=1e-4):
            raise CheckFailed("in training mode, normalise with the statistics of the batch "
                              "(x.mean(0), x.var(0, unbiased=False)), not the running averages")
        unbiased = (x - x.mean(0)) / (x.var(0, unbiased=True) + 1e-5).sqrt() * gamma + beta
        if torch.allclose(got, unbiased, atol=1e-5):
            raise CheckFailed("normalise with the biased variance, x.var(0, unbiased=False) "
                              "(divide by N, as nn.BatchNorm1d does); the running variance uses "
                              "the unbiased one")
        assert_close(got, want, f"training-mode output, batch {step + 1}", atol=1e-4)
        if torch.equal(running_mean, torch.zeros(C)):
            raise CheckFailed("running_mean did not change: in training mode update it in place, "
                              "running_mean.mul_(1 - momentum).add_(momentum * batch_mean)")
        assert_close(running_mean, ref.running_mean, f"running_mean after batch {step + 1}", atol=1e-4)
        assert_close(running_var, ref.running_var,
                     f"running_var after batch {step + 1} (update it with the UNBIASED batch "
                     "variance, x.var(0, unbiased=True))", atol=1e-4)
    ref.eval()
    x = torch.randn(1, C, generator=g)  # one example: only eval mode can handle it
    before = running_mean.clone()
    with torch.no_grad():
        want = ref(x)
        got = batchnorm(x, gamma, beta, running_mean, running_var, False)
    if got is None:
        raise CheckFailed("batchnorm returned None in eval mode; did you forget `return y`?")
    if not torch.isfinite(torch.as_tensor(got)).all():
        raise CheckFailed("eval mode gave NaN/inf for a batch of one example: in eval mode use "
                          "running_mean and running_var, not the batch's statistics")
    if not torch.equal(running_mean, before):
        raise CheckFailed("eval mode changed running_mean: update the running statistics only "
                          "when training=True")
    assert_close(got, want, "eval-mode output (it should use running_mean and running_var)", atol=1e-4)
