"""The day-07 checks pass the solutions, reject every mistake of their tables, and say "not done yet" for stubs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from checklines import fails, mistake_params, passes, rejects, stub
from llmcourse.checks import day07


# ---- the lesson's solutions (copied from solutions/day07_mlp_and_wavenet.md) ------------------


def solution_make_windows(ids, block_size):
    X = ids.unfold(0, block_size, 1)[:-1]  # (N - block_size, block_size)
    Y = ids[block_size:]                   # (N - block_size,)
    return X, Y


def solution_mlp_forward(X, C, W1, b1, W2, b2):
    emb = C[X]                                   # (N, bs, E)
    h = torch.tanh(emb.view(X.shape[0], -1) @ W1 + b1)  # (N, H)
    return h @ W2 + b2                           # (N, V)


def solution_causal_conv(x, weight, bias, dilation):
    k = weight.shape[-1]
    x = F.pad(x, ((k - 1) * dilation, 0))                       # (B, C_in, T + (k-1)d)
    return F.conv1d(x, weight, bias, dilation=dilation)         # (B, C_out, T)


def solution_batchnorm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        mean = x.mean(0)                          # (C,)
        var = x.var(0, unbiased=False)            # (C,)
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * x.var(0, unbiased=True))
    else:
        mean, var = running_mean, running_var
    return (x - mean) / torch.sqrt(var + eps) * gamma + beta   # (N, C)


# ---- other correct variants -------------------------------------------------------------------


def stack_make_windows(ids, block_size):
    X = torch.stack([ids[i:i + block_size] for i in range(len(ids) - block_size)])
    return X, ids[block_size:]


def cat_mlp_forward(X, C, W1, b1, W2, b2):
    emb = torch.cat([C[X[:, j]] for j in range(X.shape[1])], dim=1)
    return torch.tanh(emb @ W1 + b1) @ W2 + b2


def one_hot_mlp_forward(X, C, W1, b1, W2, b2):  # day 05's lookup: F.one_hot needs int64 ids
    emb = F.one_hot(X, C.shape[0]).float() @ C   # (N, bs, E)
    return torch.tanh(emb.reshape(len(X), -1) @ W1 + b1) @ W2 + b2


def unfold_causal_conv(x, weight, bias, dilation):  # by hand: windows of the padded input
    k = weight.shape[-1]
    xp = F.pad(x, ((k - 1) * dilation, 0))
    taps = torch.stack([xp[..., j * dilation: j * dilation + x.shape[-1]] for j in range(k)], -1)
    out = torch.einsum("bitk,oik->bot", taps, weight)
    return out if bias is None else out + bias[:, None]


def detached_update_batchnorm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        running_mean.copy_((1 - momentum) * running_mean + momentum * mean.detach())
        running_var.copy_((1 - momentum) * running_var + momentum * x.detach().var(0, unbiased=True))
    else:
        mean, var = running_mean, running_var
    return gamma * (x - mean) * torch.rsqrt(var + eps) + beta


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day07))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def wide_unfold_make_windows(ids, block_size):  # windows of block_size + 1: inputs and target together
    w = ids.unfold(0, block_size + 1, 1)
    return [w[:, :-1], w[:, -1]]


def flatten_linear_mlp_forward(X, C, W1, b1, W2, b2):  # flatten(1) and F.linear on transposed weights
    h = torch.tanh(F.linear(C[X].flatten(1), W1.T, b1))
    return F.linear(h, W2.T, b2)


def trimmed_causal_conv(x, weight, bias, dilation):  # padding on both sides, keep the first T outputs
    pad = (weight.shape[-1] - 1) * dilation
    return F.conv1d(x, weight, bias, padding=pad, dilation=dilation)[..., :x.shape[-1]]


def taps_causal_conv(x, weight, bias, dilation):  # tap by tap, bias added by hand as (C_out,)
    k, T = weight.shape[-1], x.shape[-1]
    xp = F.pad(x, ((k - 1) * dilation, 0))
    out = bias.view(1, -1, 1)
    for j in range(k):
        out = out + torch.einsum("oi,bit->bot", weight[:, :, j], xp[:, :, j * dilation:j * dilation + T])
    return out


def lerp_keepdim_batchnorm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if not training:
        return (x - running_mean) * torch.rsqrt(running_var + eps) * gamma + beta
    mean = x.mean(0, keepdim=True)                              # (1, C)
    var = ((x - mean) ** 2).mean(0, keepdim=True)               # (1, C), biased
    with torch.no_grad():
        running_mean.lerp_(mean.squeeze(0), momentum)
        running_var.lerp_(var.squeeze(0) * x.shape[0] / (x.shape[0] - 1), momentum)
    return (x - mean) * torch.rsqrt(var + eps) * gamma + beta


@pytest.mark.parametrize("check_fn, fn", [
    (day07.check_make_windows, solution_make_windows),
    (day07.check_make_windows, wide_unfold_make_windows),
    (day07.check_mlp_forward, flatten_linear_mlp_forward),
    (day07.check_causal_conv, trimmed_causal_conv),
    (day07.check_causal_conv, taps_causal_conv),
    (day07.check_batchnorm, lerp_keepdim_batchnorm),
    (day07.check_make_windows, stack_make_windows),
    (day07.check_mlp_forward, solution_mlp_forward),
    (day07.check_mlp_forward, cat_mlp_forward),
    (day07.check_mlp_forward, one_hot_mlp_forward),
    (day07.check_causal_conv, solution_causal_conv),
    (day07.check_causal_conv, unfold_causal_conv),
    (day07.check_batchnorm, solution_batchnorm),
    (day07.check_batchnorm, detached_update_batchnorm),
])
def test_solution_passes(check_fn, fn, capsys):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn", [day07.check_make_windows, day07.check_mlp_forward,
                                      day07.check_causal_conv, day07.check_batchnorm])
def test_stub_not_done(check_fn, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn, reference", [
    (day07.check_make_windows, day07._ref_make_windows),
    (day07.check_mlp_forward, day07._ref_mlp),
    (day07.check_causal_conv, day07.reference_causal_conv),
    (day07.check_batchnorm, day07._ref_batchnorm),
])
def test_reference_refused(check_fn, reference, capsys):
    fails(capsys, check_fn, reference, "the course's own reference")


# ---- the references, against hand-worked values -------------------------------------------------


def test_reference_causal_conv_by_hand():
    # weights [1, 10], dilation 2: y[t] = x[t - 2] + 10 x[t], zeros before the start
    x = torch.arange(1.0, 7.0).view(1, 1, 6)
    w = torch.tensor([[[1.0, 10.0]]])
    assert day07.reference_causal_conv(x, w, None, 2).view(-1).tolist() == [10, 20, 31, 42, 53, 64]
    assert day07._ref_conv_by_taps(x, w, None, 2).view(-1).tolist() == [10, 20, 31, 42, 53, 64]
    # kernel 3, dilation 1, bias 0.5: y[t] = x[t-2] + 2 x[t-1] + 3 x[t] + 0.5
    w3 = torch.tensor([[[1.0, 2.0, 3.0]]])
    want = [3.5, 8.5, 14.5, 20.5, 26.5, 32.5]
    assert day07._ref_conv_by_taps(x, w3, torch.tensor([0.5]), 1).view(-1).tolist() == want


def test_reference_batchnorm_by_hand():
    x = torch.tensor([[1.0], [3.0]])  # mean 2, biased var 1, unbiased var 2
    rm, rv = torch.zeros(1), torch.ones(1)
    y = day07._ref_batchnorm(x, torch.ones(1), torch.zeros(1), rm, rv, True, momentum=0.5, eps=1e-12)
    assert y.view(-1).tolist() == pytest.approx([-1.0, 1.0])
    assert rm.tolist() == [1.0] and rv.tolist() == [1.5]
    y = day07._ref_batchnorm(torch.tensor([[2.5]]), torch.ones(1), torch.zeros(1), rm, rv, False, eps=1e-12)
    assert y.item() == pytest.approx(1.5 / 1.5 ** 0.5)


def test_make_windows_reference_by_hand():
    X, Y = day07._ref_make_windows(torch.tensor([5, 1, 4, 1, 5, 9, 2, 6]), 3)
    assert X.tolist() == [[5, 1, 4], [1, 4, 1], [4, 1, 5], [1, 5, 9], [5, 9, 2]]
    assert Y.tolist() == [1, 5, 9, 2, 6]


# ---- behaviours other than the tables' mistakes --------------------------------------------------


def test_make_windows_returns_three_things(capsys):
    def bad(ids, block_size):
        X, Y = solution_make_windows(ids, block_size)
        return X, Y, len(Y)

    fails(capsys, day07.check_make_windows, bad, "should return a pair (X, Y), got a tuple of 3 items")


def test_make_windows_crash_shows_the_input(capsys):
    def crash(ids, block_size):
        return torch.stack([ids[i:i + block_size] for i in range(len(ids))]), ids  # ragged

    fails(capsys, day07.check_make_windows, crash,
          "your code raised RuntimeError")


def test_mlp_forward_returns_a_list(capsys):
    fails(capsys, day07.check_mlp_forward, lambda *a: solution_mlp_forward(*a).tolist(),
          "should be a torch tensor")


def test_causal_conv_kernel_3_mismatch_names_the_case(capsys):
    def off(x, w, b, d):  # right for k = 2, slightly wrong weights for k = 3
        out = solution_causal_conv(x, w, b, d)
        return out * 1.5 if w.shape[-1] == 3 else out

    fails(capsys, day07.check_causal_conv, off, "weight (5, 3, 3)")


def test_batchnorm_mismatch_names_the_call(capsys):
    def off_in_eval(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
        y = solution_batchnorm(x, gamma, beta, rm, rv, training, momentum, eps)
        return y if training else y + 0.01

    fails(capsys, day07.check_batchnorm, off_in_eval, "call 4 (eval")


def test_batchnorm_returns_none(capsys):
    fails(capsys, day07.check_batchnorm, lambda *a, **k: None, "returned None")


def test_checks_are_fast():
    import time

    start = time.process_time()
    for check_fn, fn in ((day07.check_make_windows, solution_make_windows),
                         (day07.check_mlp_forward, solution_mlp_forward),
                         (day07.check_causal_conv, solution_causal_conv),
                         (day07.check_batchnorm, solution_batchnorm)):
        assert check_fn(fn)
    assert time.process_time() - start < 2.0
