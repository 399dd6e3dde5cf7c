"""The model's reference code: GPT.forward read top to bottom, and the plain attention of day 10
(llmcourse.model.attention_reference) against the model's one."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

from llmcourse.model import GPT, CausalSelfAttention, GPTConfig, PlainCausalSelfAttention

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------- GPT.forward
def test_forward_reads_top_to_bottom():
    """GPT.forward holds the whole model in day 12's order; no private helper hides a step."""
    source = inspect.getsource(GPT.forward)
    steps = ["self.transformer.wte(", "self.transformer.wpe(", "self.rotary(",
             "self.transformer.drop(", "in enumerate(self.transformer.h)",
             "self.transformer.ln_f(", "self.lm_head(", "F.cross_entropy("]
    where = [source.find(step) for step in steps]
    assert -1 not in where and where == sorted(where), dict(zip(steps, where))
    assert "self._" not in source and not hasattr(GPT, "_trunk")


@pytest.mark.parametrize("overrides", [{}, {"tie_weights": False}, {"bias": False}])
def test_forward_is_day12s_computation_bit_for_bit(overrides):
    """The steps of day 12's cell, run by hand, give exactly model(idx, targets)."""
    V = 50
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=V, block_size=16, n_layer=2, n_head=4, n_embd=32,
                          **overrides)).eval()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randint(0, V, (2, 12), generator=g), torch.randint(0, V, (2, 12), generator=g)
    with torch.no_grad():
        tr = model.transformer
        h = tr.drop(tr.wte(x) + tr.wpe(torch.arange(12)))  # (B, T, C)
        for block in tr.h:
            h, _ = block(h)
        logits = model.lm_head(tr.ln_f(h))  # (B, T, V)
        loss = F.cross_entropy(logits.view(-1, V), y.view(-1))
        got_logits, got_loss = model(x, y)
    assert torch.equal(got_logits, logits) and torch.equal(got_loss, loss)


# ---------------------------------------------------------------------------- attention
SIZES = [  # (n_embd, n_head, bias, T): one head, several heads, no bias, one position
    (8, 1, True, 5),
    (12, 3, True, 7),
    (16, 4, False, 6),
    (16, 2, True, 1),
]


def pair(n_embd: int, n_head: int, bias: bool, dropout: float = 0.0):
    """The plain and the engineered attention with the same random weights, in float64."""
    cfg = GPTConfig(vocab_size=10, block_size=16, n_layer=1, n_head=n_head, n_embd=n_embd,
                    bias=bias, dropout=dropout)
    torch.manual_seed(0)
    engineered = CausalSelfAttention(cfg).double()
    with torch.no_grad():
        for p in engineered.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    plain = PlainCausalSelfAttention(cfg).double()
    plain.load_state_dict(engineered.state_dict())  # strict: the same names and shapes
    return plain, engineered


@pytest.mark.parametrize("impl", ["sdpa", "manual"])
@pytest.mark.parametrize("n_embd, n_head, bias, T", SIZES)
def test_same_weights_give_the_same_outputs_and_gradients(n_embd, n_head, bias, T, impl):
    plain, engineered = pair(n_embd, n_head, bias)
    engineered.impl = impl
    x = torch.randn(3, T, n_embd, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, (y2, _) = plain(x1), engineered(x2)
    assert y1.shape == (3, T, n_embd)
    torch.testing.assert_close(y1, y2, atol=1e-12, rtol=1e-12)
    g = torch.randn_like(y1)
    y1.backward(g)
    y2.backward(g)
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-12, rtol=1e-12)
    grads = {name: p.grad for name, p in engineered.named_parameters()}
    for name, p in plain.named_parameters():
        torch.testing.assert_close(p.grad, grads[name], atol=1e-12, rtol=1e-12, msg=name)


def test_state_dicts_have_the_same_names_and_shapes():
    plain, engineered = pair(12, 3, True)
    assert {k: v.shape for k, v in plain.state_dict().items()} == \
        {k: v.shape for k, v in engineered.state_dict().items()}
    engineered.load_state_dict(plain.state_dict())  # and back


def test_it_is_causal():
    plain, _ = pair(8, 2, True)
    x = torch.randn(1, 6, 8, dtype=torch.float64)
    changed = x.clone()
    changed[:, 4:] += 1.0  # change the future of positions 0..3
    torch.testing.assert_close(plain(x)[:, :4], plain(changed)[:, :4], atol=0, rtol=0)
    assert not torch.allclose(plain(x)[:, 4:], plain(changed)[:, 4:])


def test_dropout_only_in_training_mode():
    plain, _ = pair(8, 2, True, dropout=0.5)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    assert not torch.allclose(plain(x), plain(x))
    plain.eval()
    torch.testing.assert_close(plain(x), plain(x), atol=0, rtol=0)


@pytest.mark.parametrize("extra", [{"n_kv_head": 1}, {"pos": "rope"}])
def test_what_it_does_not_have_is_refused(extra):
    cfg = GPTConfig(vocab_size=10, block_size=16, n_layer=1, n_head=2, n_embd=8, **extra)
    with pytest.raises(ValueError, match="no grouped-query heads and no RoPE; use "
                                         "CausalSelfAttention"):
        PlainCausalSelfAttention(cfg)


def test_manual_attention_keeps_float64():
    """llmcourse.model.functional's attention used to run its softmax in float32 for any input."""
    from llmcourse.model import functional

    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 3, 6, 8, dtype=torch.float64, generator=g) for _ in range(3))
    out, w = functional.scaled_dot_product_attention(q, k, v, is_causal=True, return_weights=True)
    assert out.dtype == w.dtype == torch.float64
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, want, atol=1e-12, rtol=1e-12)
