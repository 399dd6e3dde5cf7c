"""The day-07 checks pass the solutions, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmcourse.checks import day07
from checklines import one_line, stub


# ---- exercise 1: windows ---------------------------------------------------------------------


def good_make_windows(ids, block_size):
    X = torch.stack([ids[i:i + block_size] for i in range(len(ids) - block_size)])
    return X, ids[block_size:]


def test_make_windows(capsys):
    assert day07.check_make_windows(good_make_windows)
    assert "passed" in one_line(capsys)
    assert day07.check_make_windows(lambda ids, bs: (ids.unfold(0, bs, 1)[:-1], ids[bs:]))
    assert "passed" in one_line(capsys)
    assert not day07.check_make_windows(stub)
    assert "not done yet" in one_line(capsys)


def test_make_windows_mistakes(capsys):
    assert not day07.check_make_windows(lambda ids, bs: (ids.unfold(0, bs, 1)[:-1], ids[bs - 1:-1]))
    assert "off by one" in one_line(capsys)
    assert not day07.check_make_windows(lambda ids, bs: (ids.unfold(0, bs, 1), ids[bs:]))
    assert "no next token" in one_line(capsys)
    assert not day07.check_make_windows(lambda ids, bs: None)
    assert "None" in one_line(capsys)


# ---- exercise 2: the MLP ---------------------------------------------------------------------


def good_mlp_forward(X, C, W1, b1, W2, b2):
    emb = C[X]  # (N, bs, E)
    h = torch.tanh(emb.view(X.shape[0], -1) @ W1 + b1)
    return h @ W2 + b2


def test_mlp_forward(capsys):
    assert day07.check_mlp_forward(good_mlp_forward)
    assert "passed" in one_line(capsys)
    assert not day07.check_mlp_forward(stub)
    assert "not done yet" in one_line(capsys)


def test_mlp_forward_mistakes(capsys):
    def no_tanh(X, C, W1, b1, W2, b2):
        return (C[X].view(X.shape[0], -1) @ W1 + b1) @ W2 + b2

    assert not day07.check_mlp_forward(no_tanh)
    assert "tanh" in one_line(capsys)

    def wrong_flatten(X, C, W1, b1, W2, b2):
        return torch.tanh(C[X].transpose(1, 2).reshape(X.shape[0], -1) @ W1 + b1) @ W2 + b2

    assert not day07.check_mlp_forward(wrong_flatten)
    assert "wrong order" in one_line(capsys)

    def no_bias(X, C, W1, b1, W2, b2):
        return torch.tanh(C[X].view(X.shape[0], -1) @ W1) @ W2 + b2

    assert not day07.check_mlp_forward(no_bias)
    assert "MLPLM" in one_line(capsys)

    def probs(X, C, W1, b1, W2, b2):
        return good_mlp_forward(X, C, W1, b1, W2, b2).softmax(-1)

    assert not day07.check_mlp_forward(probs)
    assert "softmax" in one_line(capsys)


# ---- exercise 3: dilated causal convolution --------------------------------------------------


def good_causal_conv(x, weight, bias, dilation):
    k = weight.shape[-1]
    return F.conv1d(F.pad(x, ((k - 1) * dilation, 0)), weight, bias, dilation=dilation)


def test_causal_conv(capsys):
    assert day07.check_causal_conv(good_causal_conv)
    assert "passed" in one_line(capsys)
    assert day07.check_causal_conv(day07.reference_causal_conv)
    assert "passed" in one_line(capsys)
    assert not day07.check_causal_conv(stub)
    assert "not done yet" in one_line(capsys)


def test_causal_conv_mistakes(capsys):
    def symmetric(x, w, b, d):
        return F.conv1d(x, w, b, dilation=d, padding="same")

    assert not day07.check_causal_conv(symmetric)
    assert "not causal" in one_line(capsys)

    def right_pad(x, w, b, d):
        return F.conv1d(F.pad(x, (0, (w.shape[-1] - 1) * d)), w, b, dilation=d)

    assert not day07.check_causal_conv(right_pad)
    assert "not causal" in one_line(capsys)

    def no_padding(x, w, b, d):
        return F.conv1d(x, w, b, dilation=d)

    assert not day07.check_causal_conv(no_padding)
    assert "time steps" in one_line(capsys)

    def no_dilation(x, w, b, d):
        return F.conv1d(F.pad(x, ((w.shape[-1] - 1) * d, 0)), w, b)

    assert not day07.check_causal_conv(no_dilation)
    assert "time steps" in one_line(capsys)  # padded for the dilation but convolved without it

    def dilation_wrong_pad(x, w, b, d):
        return F.conv1d(F.pad(x, (w.shape[-1] - 1, 0)), w, b)

    assert not day07.check_causal_conv(dilation_wrong_pad)
    assert "dilation is ignored" in one_line(capsys)


# ---- exercise 4: BatchNorm -------------------------------------------------------------------


def good_batchnorm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    if training:
        mean = x.mean(0)
        var = x.var(0, unbiased=False)
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * x.var(0, unbiased=True))
    else:
        mean, var = running_mean, running_var
    return (x - mean) / torch.sqrt(var + eps) * gamma + beta


def test_batchnorm(capsys):
    assert day07.check_batchnorm(good_batchnorm)
    assert "passed" in one_line(capsys)
    assert not day07.check_batchnorm(stub)
    assert "not done yet" in one_line(capsys)


def test_batchnorm_mistakes(capsys):
    def always_batch_stats(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
        good_batchnorm(x, gamma, beta, rm, rv, True, momentum, eps) if training else None
        return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + eps) * gamma + beta

    assert not day07.check_batchnorm(always_batch_stats)
    assert "eval" in one_line(capsys)

    def never_updates(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
        mean, var = (x.mean(0), x.var(0, unbiased=False)) if training else (rm, rv)
        return (x - mean) / torch.sqrt(var + eps) * gamma + beta

    assert not day07.check_batchnorm(never_updates)
    assert "running_mean did not change" in one_line(capsys)

    def unbiased(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
        if training:
            good_batchnorm(x, gamma, beta, rm, rv, True, momentum, eps)
            return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=True) + eps) * gamma + beta
        return (x - rm) / torch.sqrt(rv + eps) * gamma + beta

    assert not day07.check_batchnorm(unbiased)
    assert "biased variance" in one_line(capsys)

    def running_in_training(x, gamma, beta, rm, rv, training, momentum=0.1, eps=1e-5):
        return (x - rm) / torch.sqrt(rv + eps) * gamma + beta

    assert not day07.check_batchnorm(running_in_training)
    assert "statistics of the batch" in one_line(capsys)


def test_make_windows_returns_three_things(capsys):
    def bad(ids, block_size):
        X, Y = good_make_windows(ids, block_size)
        return X, Y, len(Y)

    assert bool(day07.check_make_windows(bad)) is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "should return a pair (X, Y), got a tuple of 3 items" in out


def test_make_windows_crash_shows_the_input(capsys):
    def crash(ids, block_size):
        return torch.stack([ids[i:i + block_size] for i in range(len(ids))]), ids  # ragged

    assert bool(day07.check_make_windows(crash)) is False
    out = capsys.readouterr().out
    assert "your code raised RuntimeError" in out and "make_windows([5, 1, 4, 1, 5, 9, 2, 6], block_size=3)" in out
