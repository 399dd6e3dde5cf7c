"""The day-33 checks pass the references, catch plausible mistakes, and say "not done yet" for stubs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmcourse.checks import day33
from checklines import one_line, stub

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("check, reference", [
    (day33.check_rms_norm, day33.reference_rms_norm),
    (day33.check_apply_rope, day33.reference_apply_rope),
    (day33.check_swiglu, day33.reference_swiglu),
    (day33.check_repeat_kv, day33.reference_repeat_kv),
])
def test_references_pass_and_stubs_are_not_done(capsys, check, reference):
    assert bool(check(reference)) is True
    assert "passed" in one_line(capsys)
    assert bool(check(stub)) is False
    assert "not done yet" in one_line(capsys)


def test_solutions_as_written_in_the_lesson(capsys):
    assert bool(day33.check_rms_norm(
        lambda x, w, eps=1e-5: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w)) is True
    assert bool(day33.check_repeat_kv(lambda x, r: x.repeat_interleave(r, dim=1))) is True
    capsys.readouterr()


def _ms(x):
    return x.pow(2).mean(-1, keepdim=True)


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, w, eps: F.layer_norm(x, (x.shape[-1],), w, eps=eps), "that is LayerNorm"),
    (lambda x, w, eps: x / (_ms(x).sqrt() + eps) * w, "inside the square root"),
    (lambda x, w, eps: x * torch.rsqrt(_ms(x) + eps), "scaled by weight"),
    (lambda x, w, eps: x * torch.rsqrt(_ms(x) + 1e-5) * w, "use the eps argument"),
    (lambda x, w, eps: x / (x.norm(dim=-1, keepdim=True) + eps) * w, "MEAN of the squares"),
    (lambda x, w, eps: x * torch.rsqrt(x.pow(2).mean(0, keepdim=True) + eps) * w, "last dimension"),
    (lambda x, w, eps: x[0], "shape"),
    (lambda x, w, eps: (x * 2).tolist(), "torch tensor"),
])
def test_rms_norm_mistakes(capsys, wrong, hint):
    assert bool(day33.check_rms_norm(wrong)) is False
    assert hint in one_line(capsys)


def _halves(x):
    h = x.shape[-1] // 2
    return x[..., :h], x[..., h:]


def _backwards(x, cos, sin):
    x1, x2 = _halves(x)
    return torch.cat((x1 * cos + x2 * sin, -x1 * sin + x2 * cos), dim=-1)


def _interleaved(x, cos, sin):
    ev, od = x[..., 0::2], x[..., 1::2]
    return torch.stack((ev * cos - od * sin, ev * sin + od * cos), dim=-1).flatten(-2)


def _sign(x, cos, sin):
    x1, x2 = _halves(x)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin - x2 * cos), dim=-1)


@pytest.mark.parametrize("wrong, hint", [
    (_backwards, "wrong way"),
    (_interleaved, "paired neighbours"),
    (_sign, "x1*sin + x2*cos"),
    (lambda x, cos, sin: x.clone(), "unchanged"),
    (lambda x, cos, sin: x * cos.repeat(1, 2), "mixes both halves"),
    (lambda x, cos, sin: x * 0.5, "expected"),
])
def test_apply_rope_mistakes(capsys, wrong, hint):
    assert bool(day33.check_apply_rope(wrong)) is False
    assert hint in one_line(capsys)


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, g, u, d: ((x @ g) * F.silu(x @ u)) @ d, "wrong branch"),
    (lambda x, g, u, d: (F.gelu(x @ g) * (x @ u)) @ d, "GeGLU"),
    (lambda x, g, u, d: (torch.sigmoid(x @ g) * (x @ u)) @ d, "original GLU"),
    (lambda x, g, u, d: ((x @ g) * (x @ u)) @ d, "no activation"),
    (lambda x, g, u, d: F.silu((x @ g) * (x @ u)) @ d, "on the gate alone"),
    (lambda x, g, u, d: F.silu(x @ g) @ d, "expected"),
])
def test_swiglu_mistakes(capsys, wrong, hint):
    assert bool(day33.check_swiglu(wrong)) is False
    assert hint in one_line(capsys)


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, r: x.repeat(1, r, 1, 1), "x.repeat tiles the heads"),
    (lambda x, r: x.repeat_interleave(r, dim=1) if r > 1 else x * 2, "n_rep = 1"),
    (lambda x, r: x.repeat_interleave(r, dim=2), "shape"),
    (lambda x, r: x.flip(1).repeat_interleave(r, dim=1), "kv head j // 2"),
])
def test_repeat_kv_mistakes(capsys, wrong, hint):
    assert bool(day33.check_repeat_kv(wrong)) is False
    assert hint in one_line(capsys)


def test_swiglu_crash_shows_the_input(capsys):
    assert bool(day33.check_swiglu(lambda x, g, u, d: x @ d)) is False
    line = one_line(capsys)
    assert "raised RuntimeError" in line and "w_down (20, 12)" in line
