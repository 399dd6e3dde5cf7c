"""llmcourse.model.functional equals torch.nn.functional on random inputs, and stays stable."""

from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn.functional as F

from llmcourse.model import functional as LF


def _randn(*shape, seed=0, scale=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype) * scale


def test_doctests():
    result = doctest.testmod(LF, verbose=False)
    assert result.attempted > 5 and result.failed == 0


@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax_and_log_softmax_match_torch(dim):
    x = _randn(3, 4, 7, scale=5.0)
    torch.testing.assert_close(LF.softmax(x, dim=dim), F.softmax(x, dim=dim))
    torch.testing.assert_close(LF.log_softmax(x, dim=dim), F.log_softmax(x, dim=dim))


def test_softmax_stable_at_large_logits():
    x = torch.tensor([[1e4, 0.0, -1e4], [1e4, 1e4 - 1, 1e4 - 2]])
    p = LF.softmax(x)
    assert torch.isfinite(p).all()
    torch.testing.assert_close(p, F.softmax(x, dim=-1))
    lp = LF.log_softmax(x)
    assert torch.isfinite(lp).all()
    torch.testing.assert_close(lp, F.log_softmax(x, dim=-1))
    assert lp[0].tolist() == [0.0, -1e4, -2e4]


def test_softmax_gradients_match_torch():
    x = _randn(5, 9, scale=3.0).requires_grad_(True)
    w = _randn(5, 9, seed=1)
    (LF.log_softmax(x) * w).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    (F.log_softmax(x, dim=-1) * w).sum().backward()
    torch.testing.assert_close(ours, x.grad)


@pytest.mark.parametrize("shape", [(6,), (2, 5), (3, 4, 2)])
def test_cross_entropy_matches_torch(shape):
    V = 11
    logits = _randn(*shape, V, scale=4.0)
    g = torch.Generator().manual_seed(1)
    targets = torch.randint(V, shape, generator=g)
    want = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
    torch.testing.assert_close(LF.cross_entropy(logits, targets), want)
    torch.testing.assert_close(
        LF.cross_entropy(logits, targets, reduction="sum"),
        F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="sum"),
    )
    torch.testing.assert_close(
        LF.cross_entropy(logits, targets, reduction="none").reshape(-1),
        F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none"),
    )


@pytest.mark.parametrize("ignore_index", [-100, 0, 3])
def test_cross_entropy_ignore_index(ignore_index):
    V = 7
    logits = _randn(4, 6, V, scale=2.0)
    g = torch.Generator().manual_seed(2)
    targets = torch.randint(V, (4, 6), generator=g)
    targets[0, :3] = ignore_index if ignore_index >= 0 else -100
    targets[2, 5] = ignore_index if ignore_index >= 0 else -100
    for reduction in ("mean", "sum", "none"):
        want = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                               ignore_index=ignore_index, reduction=reduction)
        got = LF.cross_entropy(logits, targets, ignore_index=ignore_index, reduction=reduction)
        torch.testing.assert_close(got.reshape(-1) if reduction == "none" else got, want)
    # the mean is over the counted targets, not all of them
    keep = targets != ignore_index
    per = LF.cross_entropy(logits, targets, ignore_index=ignore_index, reduction="none")
    torch.testing.assert_close(LF.cross_entropy(logits, targets, ignore_index=ignore_index),
                               per.sum() / keep.sum())


def test_cross_entropy_all_ignored_is_nan_like_torch():
    logits = _randn(3, 5)
    t = torch.full((3,), -100)
    assert torch.isnan(LF.cross_entropy(logits, t))
    assert torch.isnan(F.cross_entropy(logits, t))
    assert LF.cross_entropy(logits, t, reduction="sum").item() == 0.0


def test_cross_entropy_stable_and_differentiable():
    logits = torch.tensor([[0.0, 1e4, -1e4]], requires_grad=True)
    loss = LF.cross_entropy(logits, torch.tensor([0]))
    assert torch.isfinite(loss) and loss.item() == pytest.approx(1e4)
    loss.backward()
    ref = logits.detach().clone().requires_grad_(True)
    F.cross_entropy(ref, torch.tensor([0])).backward()
    torch.testing.assert_close(logits.grad, ref.grad)


def test_cross_entropy_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        LF.cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), reduction="avg")


@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_gelu_matches_torch(approximate):
    x = _randn(1000, scale=4.0)
    torch.testing.assert_close(LF.gelu(x, approximate=approximate),
                               F.gelu(x, approximate=approximate))


def test_gelu_default_is_the_models_form():
    from llmcourse.model import GPTConfig

    assert GPTConfig().gelu_approximate == "tanh"
    x = _randn(100, scale=3.0)
    torch.testing.assert_close(LF.gelu(x), F.gelu(x, approximate="tanh"))
    with pytest.raises(ValueError, match="approximate"):
        LF.gelu(x, approximate="erf")


def test_silu_matches_torch():
    x = _randn(1000, scale=10.0)
    torch.testing.assert_close(LF.silu(x), F.silu(x))
    x32 = torch.tensor([-100.0, -20.0, 0.0, 20.0, 100.0])
    torch.testing.assert_close(LF.silu(x32), F.silu(x32))


@pytest.mark.parametrize("lead", [(), (3,), (2, 4), (2, 3, 2)])
@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_matches_torch_any_leading_dims(lead, causal):
    q = _randn(*lead, 5, 8, seed=1)
    k = _randn(*lead, 5, 8, seed=2)
    v = _randn(*lead, 5, 6, seed=3)
    want = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch.testing.assert_close(LF.scaled_dot_product_attention(q, k, v, is_causal=causal), want)


def test_sdpa_rectangular_causal_is_top_left_like_torch():
    q, k, v = _randn(2, 3, 4, seed=1), _randn(2, 6, 4, seed=2), _randn(2, 6, 4, seed=3)
    torch.testing.assert_close(LF.scaled_dot_product_attention(q, k, v, is_causal=True),
                               F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_sdpa_boolean_and_additive_masks():
    from llmcourse.model import causal_mask

    q, k, v = _randn(2, 2, 3, 4, seed=1), _randn(2, 2, 7, 4, seed=2), _randn(2, 2, 7, 5, seed=3)
    bool_mask = causal_mask(3, 7)  # (3, 7), broadcast over batch and heads
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=bool_mask)
    torch.testing.assert_close(LF.scaled_dot_product_attention(q, k, v, bool_mask), want)
    additive = _randn(2, 1, 3, 7, seed=4)  # a float bias, broadcast over heads
    torch.testing.assert_close(LF.scaled_dot_product_attention(q, k, v, additive),
                               F.scaled_dot_product_attention(q, k, v, attn_mask=additive))
    inf_mask = torch.zeros(3, 7, dtype=q.dtype).masked_fill(~bool_mask, float("-inf"))
    torch.testing.assert_close(LF.scaled_dot_product_attention(q, k, v, inf_mask), want)


def test_sdpa_fully_masked_row_gives_zeros_like_torch():
    q, k, v = _randn(1, 3, 4, seed=1), _randn(1, 5, 4, seed=2), _randn(1, 5, 4, seed=3)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[1] = False
    ours, w = LF.scaled_dot_product_attention(q, k, v, mask, return_weights=True)
    assert torch.isfinite(ours).all() and torch.isfinite(w).all()
    assert ours[0, 1].abs().max().item() == 0.0
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_sdpa_scale_weights_and_errors():
    q, k, v = _randn(2, 4, 8, seed=1), _randn(2, 4, 8, seed=2), _randn(2, 4, 8, seed=3)
    torch.testing.assert_close(LF.scaled_dot_product_attention(q, k, v, scale=0.3),
                               F.scaled_dot_product_attention(q, k, v, scale=0.3))
    out, w = LF.scaled_dot_product_attention(q, k, v, is_causal=True, return_weights=True)
    assert w.shape == (2, 4, 4)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, dtype=w.dtype))
    assert (w.triu(diagonal=1) == 0).all()
    torch.testing.assert_close(out, w @ v)
    with pytest.raises(ValueError, match="not both"):
        LF.scaled_dot_product_attention(q, k, v, torch.ones(4, 4, dtype=torch.bool), is_causal=True)


def test_sdpa_half_precision_and_gradients():
    q, k, v = (_randn(2, 3, 6, 8, seed=s, dtype=torch.float32) for s in (1, 2, 3))
    out16 = LF.scaled_dot_product_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), is_causal=True)
    assert out16.dtype == torch.bfloat16
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out16.float(), ref, atol=3e-2, rtol=3e-2)
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    LF.scaled_dot_product_attention(*leaves, is_causal=True).square().sum().backward()
    ours = [t.grad for t in leaves]
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    F.scaled_dot_product_attention(*leaves, is_causal=True).square().sum().backward()
    for a, b in zip(ours, (t.grad for t in leaves)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_sdpa_dropout_keeps_the_expectation():
    torch.manual_seed(0)
    q, k, v = _randn(1, 4, 8, seed=1), _randn(1, 4, 8, seed=2), _randn(1, 4, 8, seed=3)
    plain = LF.scaled_dot_product_attention(q, k, v)
    runs = torch.stack([LF.scaled_dot_product_attention(q, k, v, dropout_p=0.5) for _ in range(4000)])
    assert not torch.allclose(runs[0], plain)
    torch.testing.assert_close(runs.mean(0), plain, atol=0.1, rtol=0.1)
