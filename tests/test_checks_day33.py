"""The day-33 checks pass the solutions, reject every mistake of their tables with its hint (outputs
and gradients), say "not done yet" for stubs and refuse the package's own reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llmcourse.checks import day33
from llmcourse.model.layers import apply_rotary, repeat_kv as package_repeat_kv
from checklines import fails, mistake_params, one_line, passes, rejects, stub

pytestmark = pytest.mark.usefixtures("one_thread")

CHECKS = (day33.check_rms_norm, day33.check_apply_rope, day33.check_swiglu, day33.check_repeat_kv)


# ---- the lesson's solutions (solutions/day33_modern_architecture_upgrades.md) and variants ----


def rms_norm(x, weight, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def rms_norm_sqrt(x, weight, eps=1e-5):
    return weight * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def apply_rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def apply_rope_chunk(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return x * torch.cat((cos, cos), -1) + rotated * torch.cat((sin, sin), -1)


def swiglu(x, w_gate, w_up, w_down):
    return (F.silu(x @ w_gate) * (x @ w_up)) @ w_down


def swiglu_sigmoid(x, w_gate, w_up, w_down):
    a = x @ w_gate
    return (a * torch.sigmoid(a) * (x @ w_up)) @ w_down


def swiglu_btc(x, w_gate, w_up, w_down):  # relies on x being (B, T, C), as the exercise says
    B, T, C = x.shape
    flat = x.reshape(B * T, C)
    return ((F.silu(flat @ w_gate) * (flat @ w_up)) @ w_down).view(B, T, -1)


def swiglu_einsum(x, w_gate, w_up, w_down):
    gate = F.silu(torch.einsum("btc,ch->bth", x, w_gate))
    return torch.einsum("bth,hc->btc", gate * torch.einsum("btc,ch->bth", x, w_up), w_down)


def repeat_kv(x, n_rep):
    return x.repeat_interleave(n_rep, dim=1)


def repeat_kv_expand(x, n_rep):
    B, n, T, hs = x.shape
    return x[:, :, None].expand(B, n, n_rep, T, hs).reshape(B, n * n_rep, T, hs)


@pytest.mark.parametrize("check_fn, mistake", mistake_params(day33))
def test_mistake_rejected(check_fn, mistake, capsys):
    rejects(capsys, check_fn, mistake)


def test_every_table_has_three_mistakes():
    assert all(len(fn.mistakes) >= 3 for fn in CHECKS)


@pytest.mark.parametrize("check_fn, fn", [
    (day33.check_rms_norm, rms_norm), (day33.check_rms_norm, rms_norm_sqrt),
    (day33.check_apply_rope, apply_rope), (day33.check_apply_rope, apply_rope_chunk),
    (day33.check_swiglu, swiglu), (day33.check_swiglu, swiglu_sigmoid),
    (day33.check_swiglu, swiglu_btc), (day33.check_swiglu, swiglu_einsum),
    (day33.check_repeat_kv, repeat_kv), (day33.check_repeat_kv, repeat_kv_expand),
])
def test_solutions_pass(check_fn, fn, capsys):
    passes(capsys, check_fn, fn)


@pytest.mark.parametrize("check_fn, fn", [
    (day33.check_rms_norm, day33.reference_rms_norm),
    (day33.check_apply_rope, apply_rotary),
    (day33.check_swiglu, day33.reference_swiglu),
    (day33.check_repeat_kv, package_repeat_kv),
])
def test_package_reference_refused(check_fn, fn, capsys):
    fails(capsys, check_fn, fn, "the course's own reference")


@pytest.mark.parametrize("check_fn", CHECKS)
def test_stub(check_fn, capsys):
    fails(capsys, check_fn, stub, "not done yet")


@pytest.mark.parametrize("check_fn", CHECKS)
def test_odd_return_is_one_line(check_fn, capsys):
    assert bool(check_fn(lambda *a: None)) is False
    assert one_line(capsys).startswith("❌")


def test_hand_worked():
    y = rms_norm(torch.tensor([[3.0, -3.0, 3.0, -3.0]]), torch.tensor([1.0, 2.0, 1.0, 1.0]), eps=0.0)
    assert torch.allclose(y, torch.tensor([[1.0, -2.0, 1.0, -1.0]]))
    # a quarter turn: (x1, x2) = (1, 0) -> (cos, sin) = (0, 1)
    x = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    out = apply_rope(x, torch.tensor([[math.cos(math.pi / 2)]]), torch.tensor([[1.0]]))
    assert torch.allclose(out.flatten(), torch.tensor([0.0, 1.0]), atol=1e-6)
    assert repeat_kv(torch.tensor([[[[1.0]], [[2.0]]]]), 2).flatten().tolist() == [1.0, 1.0, 2.0, 2.0]


def test_checks_are_fast():
    import time
    t = time.process_time()
    for check_fn, fn in zip(CHECKS, (rms_norm, apply_rope, swiglu, repeat_kv)):
        check_fn(fn)
    assert time.process_time() - t < 2.0


def test_second_round_correct_variants_pass(capsys):
    def rope_rotate_half(x, cos, sin):       # the Hugging Face form: full-width cos/sin, rotate_half
        c, s = torch.cat((cos, cos), -1), torch.cat((sin, sin), -1)
        x1, x2 = x.chunk(2, dim=-1)
        return x * c + torch.cat((-x2, x1), -1) * s
    passes(capsys, day33.check_apply_rope, rope_rotate_half)
    passes(capsys, day33.check_swiglu,
           lambda x, w_gate, w_up, w_down: ((x @ w_gate) * torch.sigmoid(x @ w_gate) * (x @ w_up)) @ w_down)
    passes(capsys, day33.check_repeat_kv, lambda x, n_rep: x[:, torch.arange(x.shape[1] * n_rep) // n_rep])
