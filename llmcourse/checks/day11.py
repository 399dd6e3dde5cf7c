"""Checks for day 11, "The Transformer block".

Each ``check_*`` function runs the learner's code, prints one line - a pass, a specific hint, or
"not done yet" - and returns ``True`` on a pass. None of them raises.

The learner's modules are compared with the package's (:class:`llmcourse.model.MLP`,
:class:`llmcourse.model.Block`) by loading the learner's weights into the package's module by
parameter name and running both on the same random inputs.

Example::

    >>> import torch, torch.nn.functional as F
    >>> from llmcourse.checks import day11
    >>> ok = day11.check_gelu_tanh(lambda x: F.gelu(x, approximate="tanh"))
    ✅ GELU (tanh): passed
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import (CheckFailed, as_tensor, assert_close, assert_shape, check, layer,
                                    needs_earlier)
from llmcourse.model import MLP, Block, GPTConfig

__all__ = ["check_gelu_tanh", "check_mlp", "check_layer_norm", "check_block"]


def _output(value: Any) -> Any:
    """A module may return ``(y, extra)`` like the package's ``Block``; keep ``y``."""
    if isinstance(value, tuple) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return value


@check("GELU (tanh)")
def check_gelu_tanh(gelu_fn: Callable[[torch.Tensor], Any]) -> None:
    """Exercise 1: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    x = torch.linspace(-6, 6, 241, dtype=torch.float64)
    got = as_tensor(gelu_fn(x.clone()), "gelu_tanh")
    assert_shape(got, x.shape, "gelu_tanh(x)")
    want = F.gelu(x, approximate="tanh")
    if torch.allclose(got.double(), want, atol=1e-6):
        return
    if torch.allclose(got.double(), F.gelu(x), atol=1e-6):
        raise CheckFailed("that is the exact (erf) GELU; this exercise asks for the tanh "
                          "approximation 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))")
    if torch.allclose(got.double(), 2 * want, atol=1e-6):
        raise CheckFailed("the result is twice too large: the formula starts with 0.5 * x")
    if torch.allclose(got.double(), F.relu(x), atol=1e-6):
        raise CheckFailed("that is ReLU; write the GELU formula")
    inner = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 2)))
    if torch.allclose(got.double(), inner, atol=1e-6):
        raise CheckFailed("the cubic term should be 0.044715 * x ** 3, not x ** 2")
    no_sqrt = 0.5 * x * (1 + torch.tanh((2 / math.pi) * (x + 0.044715 * x ** 3)))
    if torch.allclose(got.double(), no_sqrt, atol=1e-6):
        raise CheckFailed("the factor inside tanh is the square root of 2 / pi: math.sqrt(2 / math.pi)")
    assert_close(got, want, "gelu_tanh(x) on [-6, 6]", atol=1e-6)


def _load_into(ref: nn.Module, mine: nn.Module) -> None:
    """Load ``mine``'s parameters into ``ref`` by name, with a readable hint on a mismatch."""
    state = mine.state_dict()
    want = ref.state_dict()
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    if missing or extra:
        raise CheckFailed(f"the parameter names differ from the package's: missing {missing}, "
                          f"unexpected {extra}; use exactly the attribute names the exercise gives")
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(want[name].shape):
            raise CheckFailed(f"{name} has shape {tuple(tensor.shape)} but should have shape "
                              f"{tuple(want[name].shape)}")
    ref.load_state_dict(state)


@check("MLP", hint="c_fc, then F.gelu(h, approximate='tanh'), then c_proj")
def check_mlp(mlp_cls: Callable[[int], nn.Module]) -> None:
    """Exercise 2: ``c_proj(gelu_tanh(c_fc(x)))`` with a 4x hidden layer."""
    for C in (16, 40):
        torch.manual_seed(C)
        mine = mlp_cls(C)
        for name in ("c_fc", "c_proj"):
            if getattr(mine, name, None) is None:
                raise NotImplementedError(f"self.{name} is missing")
            layer(mine, name, nn.Linear, owner=f"self (n_embd={C})")
        if mine.c_fc.out_features != 4 * C:
            raise CheckFailed(f"the hidden layer has {mine.c_fc.out_features} units for n_embd={C}; "
                              f"GPT-2 uses 4 * n_embd = {4 * C}")
        cfg = GPTConfig(vocab_size=2, block_size=2, n_layer=1, n_head=1, n_embd=C)
        ref = MLP(cfg).eval()
        _load_into(ref, mine)
        mine.eval()
        x = torch.randn(2, 5, C)
        with torch.no_grad():
            got = as_tensor(_output(mine(x)), "forward")
            assert_shape(got, (2, 5, C), f"forward(x of shape {(2, 5, C)})")
            want = ref(x)
            if torch.allclose(got, want, atol=1e-5, rtol=1e-4):
                continue
            h = mine.c_fc(x)
            variants = {
                "you used the exact GELU; GPT-2 (and the package) use the tanh approximation: "
                "F.gelu(h, approximate='tanh')": mine.c_proj(F.gelu(h)),
                "that is ReLU; GPT-2's MLP uses GELU (approximate='tanh')": mine.c_proj(F.relu(h)),
                "the activation is missing between c_fc and c_proj": mine.c_proj(h),
            }
            for hint, variant in variants.items():
                if torch.allclose(got, variant, atol=1e-5, rtol=1e-4):
                    raise CheckFailed(hint)
            assert_close(got, want, f"forward(x) for n_embd={C}")


@check("LayerNorm", hint="normalise over the last axis: (x - mean) / sqrt(var + eps) * weight + bias")
def check_layer_norm(layer_norm_fn: Callable[..., Any]) -> None:
    """Exercise 3: LayerNorm over the last axis, biased variance, eps inside the square root."""
    g = torch.Generator().manual_seed(0)
    for shape in ((3, 8), (2, 5, 16)):
        C = shape[-1]
        x = torch.randn(*shape, generator=g) * 3 + 1
        w, b = torch.randn(C, generator=g), torch.randn(C, generator=g)
        got = as_tensor(layer_norm_fn(x, w, b), "layer_norm")
        assert_shape(got, shape, f"layer_norm(x of shape {shape})")
        want = F.layer_norm(x, (C,), w, b, eps=1e-5)
        if torch.allclose(got, want, atol=1e-4):
            continue
        normed = F.layer_norm(x, (C,), eps=1e-5)
        unbiased = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + 1e-5)
        if torch.allclose(got, unbiased * w + b, atol=1e-4):
            raise CheckFailed("you used the unbiased variance (dividing by C - 1); LayerNorm divides "
                              "by C: x.var(dim=-1, keepdim=True, unbiased=False)")
        if torch.allclose(got, normed, atol=1e-4):
            raise CheckFailed("weight and bias are not applied: multiply by weight, then add bias")
        if torch.allclose(got, normed * b + w, atol=1e-4):
            raise CheckFailed("weight and bias are swapped: it is normalised * weight + bias")
        if len(shape) == 2:
            other = (x - x.mean(0, keepdim=True)) / torch.sqrt(x.var(0, keepdim=True, unbiased=False) + 1e-5) * w + b
            if torch.allclose(got, other, atol=1e-4):
                raise CheckFailed("the statistics are taken over the batch axis (dim=0, like "
                                  "BatchNorm); LayerNorm uses the last axis: dim=-1, keepdim=True")
        assert_close(got, want, f"layer_norm(x of shape {shape})", atol=1e-4)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    got = as_tensor(layer_norm_fn(x, torch.ones(4), torch.zeros(4)), "layer_norm")
    assert_shape(got, (1, 4), "layer_norm([[1, 2, 3, 4]])")
    want = F.layer_norm(x, (4,))
    if not torch.allclose(got, want, atol=1e-4):
        unbiased = (x - 2.5) / torch.sqrt(x.var(-1, keepdim=True) + 1e-5)
        if torch.allclose(got, unbiased, atol=1e-4):
            raise CheckFailed("you used the unbiased variance (dividing by C - 1); LayerNorm divides "
                              "by C: x.var(dim=-1, keepdim=True, unbiased=False)")
        assert_close(got, want, "layer_norm([[1, 2, 3, 4]]) with weight 1, bias 0", atol=1e-4)
    # eps must sit inside the square root: visible on a constant row.
    x = torch.full((1, 4), 2.0)
    got = as_tensor(layer_norm_fn(x, torch.ones(4), torch.zeros(4), eps=1e-5), "layer_norm")
    if not torch.isfinite(got).all():
        raise CheckFailed("a constant row gives NaN or inf: add eps to the variance before the "
                          "square root, sqrt(var + eps)")
    x = torch.tensor([[0.0, 0.0, 0.0, 0.02]])
    got = as_tensor(layer_norm_fn(x, torch.ones(4), torch.zeros(4), eps=1e-3), "layer_norm")
    want = F.layer_norm(x, (4,), eps=1e-3)
    if not torch.allclose(got, want, atol=1e-4):
        raise CheckFailed("with eps=1e-3 the result is off: eps goes inside the square root, "
                          "sqrt(var + eps), and the eps argument must be used")


def _block_variants(ref: Block, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of the common ways to get a block wrong, computed with the reference weights."""
    attn = lambda t: ref.attn(t)[0]  # noqa: E731
    post = ref.ln_1(x + attn(x))
    post = ref.ln_2(post + ref.mlp(post))
    no_res_1 = attn(ref.ln_1(x))
    no_res_1 = no_res_1 + ref.mlp(ref.ln_2(no_res_1))
    no_res_2 = x + attn(ref.ln_1(x))
    no_res_2 = ref.mlp(ref.ln_2(no_res_2))
    stream = ref.ln_1(x)
    stream = stream + attn(stream)
    stream = ref.ln_2(stream)
    stream = stream + ref.mlp(stream)
    one_norm = x + attn(ref.ln_1(x))
    one_norm = one_norm + ref.mlp(ref.ln_1(one_norm))
    parallel = x + attn(ref.ln_1(x)) + ref.mlp(ref.ln_2(x))
    return {
        "this is the post-norm arrangement LN(x + f(x)); GPT-2 is pre-norm: x = x + f(ln(x))": post,
        "the attention branch is not added to x: x = x + self.attn(self.ln_1(x))[0]": no_res_1,
        "the MLP branch is not added to x: x = x + self.mlp(self.ln_2(x))": no_res_2,
        "the normalised value is written back into the stream; normalise only the branch's input: "
        "x = x + self.attn(self.ln_1(x))[0]": stream,
        "both branches use ln_1; the MLP branch reads self.ln_2(x)": one_norm,
        "the MLP reads the block's input instead of the stream after the attention branch; "
        "update x first, then x = x + self.mlp(self.ln_2(x))": parallel,
    }


@check("Block", hint="x = x + self.attn(self.ln_1(x))[0]; x = x + self.mlp(self.ln_2(x)); "
                     "the package's attention returns a pair, take [0]")
@needs_earlier(gelu_tanh=1, MyMLP=2, layer_norm=3)
def check_block(block_cls: Callable[[GPTConfig], nn.Module]) -> None:
    """Exercise 4: a pre-norm block equal to :class:`llmcourse.model.Block`."""
    for C, nh, T in ((32, 4, 6), (48, 6, 9)):
        cfg = GPTConfig(vocab_size=2, block_size=16, n_layer=2, n_head=nh, n_embd=C)
        torch.manual_seed(C)
        mine = block_cls(cfg)
        for name in ("ln_1", "attn", "ln_2", "mlp"):
            if getattr(mine, name, None) is None:
                raise NotImplementedError(f"self.{name} is missing")
        ref = Block(cfg).eval()
        # Random norm weights, so that a mix-up of ln_1 and ln_2 shows.
        with torch.no_grad():
            for ln in (mine.ln_1, mine.ln_2):
                if isinstance(getattr(ln, "weight", None), torch.Tensor):
                    ln.weight.uniform_(0.5, 1.5)
                if isinstance(getattr(ln, "bias", None), torch.Tensor):
                    ln.bias.uniform_(-0.5, 0.5)
        _load_into(ref, mine)
        mine.eval()
        x = torch.randn(2, T, C) * 2
        with torch.no_grad():
            got = as_tensor(_output(mine(x)), "forward")
            assert_shape(got, (2, T, C), f"forward(x of shape {(2, T, C)})")
            want, _ = ref(x)
            if torch.allclose(got, want, atol=1e-5, rtol=1e-4):
                continue
            for hint, variant in _block_variants(ref, x).items():
                if torch.allclose(got, variant, atol=1e-5, rtol=1e-4):
                    raise CheckFailed(hint)
            assert_close(got, want, f"forward(x) for n_embd={C}, n_head={nh}")
