"""Checks for day 12, "The GPT model", plus reference model tests and deliberately broken models.

Each ``check_*`` function runs the learner's code, prints one line - a pass, a specific hint, or
"not done yet" - and returns ``True`` on a pass. None of them raises.

The lesson's last exercises are *tests*: functions that take a model and raise
``AssertionError`` when it is wrong. Their checks run the learner's test against a correct
:class:`~llmcourse.model.GPT` (it must pass) and against a GPT with a planted bug (it must fail).
The broken models come from :func:`broken_model`; :func:`reference_test_causality` and
:func:`reference_test_gradients` are the references the lesson uses after the exercises.

Example::

    >>> from llmcourse.model import GPT, GPTConfig
    >>> from llmcourse.checks import day12
    >>> cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    >>> day12.reference_test_causality(GPT(cfg))        # a correct model passes
    >>> try:
    ...     day12.reference_test_causality(day12.broken_model("no_causal_mask", cfg))
    ... except AssertionError:
    ...     print("caught")
    caught
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import CheckFailed, as_int, call, check
from llmcourse.model import GPT, CausalSelfAttention, GPTConfig, count_params_formula

__all__ = [
    "BROKEN_KINDS",
    "broken_model",
    "reference_test_causality",
    "reference_test_gradients",
    "check_tied",
    "check_count_params",
    "check_causality_test",
    "check_gradients_test",
]

BROKEN_KINDS = {
    "no_causal_mask": "attention without the causal mask (every position sees the future)",
    "detached_positions": "the position embedding is detached, so it never receives a gradient",
    "large_init": "weights initialised with std 1.0 instead of 0.02",
}
"""The bugs :func:`broken_model` can plant, with a one-line description of each."""


# ---------------------------------------------------------------------------- broken models
class _UnmaskedAttention(CausalSelfAttention):
    """Multi-head attention that forgot ``is_causal=True``: a classic bug, planted on purpose."""

    def forward(self, x: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        B, T, C = x.shape
        nh, hs = self.n_head, self.head_size
        q, k, v = self.c_attn(x).split(C, dim=-1)
        q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v)  # the bug: no causal mask
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y), None


def broken_model(kind: str, config: GPTConfig) -> GPT:
    """A :class:`GPT` for ``config`` with one planted bug (see :data:`BROKEN_KINDS`).

    Args:
        kind: ``"no_causal_mask"``, ``"detached_positions"`` or ``"large_init"``.
        config: a config with plain multi-head attention and learned positions.

    Raises:
        ValueError: for an unknown ``kind``, or a config the bug cannot be planted in.
    """
    if kind not in BROKEN_KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {sorted(BROKEN_KINDS)}")
    if kind == "large_init":
        return GPT(dataclasses.replace(config, init_std=1.0))
    if config.pos != "learned" or config.kv_heads != config.n_head:
        raise ValueError("broken_model needs learned positions and n_kv_head=None")
    model = GPT(config)
    if kind == "no_causal_mask":
        for block in model.transformer.h:
            block.attn.__class__ = _UnmaskedAttention
    else:  # detached_positions: the values are used, but no gradient flows back into wpe
        model.transformer.wpe.register_forward_hook(lambda module, inputs, output: output.detach())
    return model


# ---------------------------------------------------------------------------- reference tests
def reference_test_causality(model: nn.Module) -> None:
    """Fail unless changing the tokens after position ``t`` leaves the logits up to ``t`` unchanged.

    Raises:
        AssertionError: with the first position whose logits changed.
    """
    cfg = model.config
    T, V = cfg.block_size, cfg.vocab_size
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(V, (2, T), generator=g)
    t = T // 2
    idx2 = idx.clone()
    idx2[:, t + 1:] = torch.randint(V, (2, T - t - 1), generator=g)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    model.train(was_training)
    diff = (a[:, : t + 1] - b[:, : t + 1]).abs().amax(dim=(0, 2))  # (t + 1,)
    assert torch.all(diff < 1e-5), (
        f"changing tokens after position {t} changed the logits at position "
        f"{int(torch.nonzero(diff >= 1e-5)[0])} (by {diff.max().item():.2e}): the model sees the future"
    )


def reference_test_gradients(model: nn.Module) -> None:
    """Fail unless one backward pass gives every parameter a finite, non-zero gradient.

    Raises:
        AssertionError: naming the first parameter without a gradient.
    """
    cfg = model.config
    g = torch.Generator().manual_seed(0)
    x = torch.randint(cfg.vocab_size, (2, cfg.block_size), generator=g)
    y = torch.randint(cfg.vocab_size, (2, cfg.block_size), generator=g)
    model.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient (is it used in forward? detached?)"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"
    model.zero_grad(set_to_none=True)


# ---------------------------------------------------------------------------- exercise 1
@check("weight tying")
def check_tied(model: Any) -> None:
    """Exercise 1: ``lm_head.weight`` and ``transformer.wte.weight`` are one and the same tensor.

    The model must also still run: replacing the ``lm_head`` module by the embedding module
    shares the weight, but the forward then feeds float vectors to an ``nn.Embedding``.
    """
    if not isinstance(model, GPT):
        raise CheckFailed(f"pass the GPT you tied, got {type(model).__name__}")
    wte_module = model.transformer.wte
    if model.lm_head is wte_module or not isinstance(model.lm_head, nn.Linear):
        raise CheckFailed(
            f"lm_head is now {'the embedding module itself' if model.lm_head is wte_module else type(model.lm_head).__name__}, "
            "not an nn.Linear: the forward would call an Embedding on float vectors. Keep both "
            "modules and share their weight: model.lm_head.weight = model.transformer.wte.weight")
    head, wte = model.lm_head.weight, wte_module.weight
    if head is wte:
        n_unique = sum(p.numel() for p in model.parameters())
        n_listed = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
        if n_unique == n_listed:
            raise CheckFailed("the weights are shared but parameters() lists them twice")
        V, T = model.config.vocab_size, min(4, model.config.block_size)
        idx = torch.arange(T).remainder(V).view(1, T)
        with torch.no_grad():
            logits, _ = call(model, idx, shown=f"the tied model on ids of shape (1, {T})")
        if tuple(logits.shape) != (1, T, V):
            raise CheckFailed(f"the tied model gives logits of shape {tuple(logits.shape)} for ids of "
                              f"shape (1, {T}); expected (1, {T}, {V})")
        return
    if head.shape == wte.shape and torch.equal(head.detach(), wte.detach()):
        raise CheckFailed("lm_head.weight holds a copy of the embedding's values, but it is a "
                          "different tensor: training would update them separately. Assign the "
                          "Parameter itself: model.lm_head.weight = model.transformer.wte.weight")
    if getattr(model.config, "tie_weights", False):
        raise CheckFailed("model.config.tie_weights is True, but the weights are still two matrices: "
                          "the config is read once, when GPT(config) builds the model, so changing it "
                          "afterwards changes nothing. Assign the Parameter itself: "
                          "model.lm_head.weight = model.transformer.wte.weight")
    raise NotImplementedError("lm_head.weight is still its own matrix")


# ---------------------------------------------------------------------------- exercise 2
def _count_configs() -> list[GPTConfig]:
    return [
        GPTConfig(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384),
        GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768),
        GPTConfig(vocab_size=100, block_size=32, n_layer=3, n_head=2, n_embd=16, bias=False),
        GPTConfig(vocab_size=100, block_size=32, n_layer=2, n_head=4, n_embd=32, tie_weights=False),
        GPTConfig(vocab_size=7, block_size=5, n_layer=1, n_head=1, n_embd=8, bias=False,
                  tie_weights=False),
    ]


def _count_hint(cfg: GPTConfig, got: int, want: int) -> str:
    """Name the part of the formula that the difference ``got - want`` points at."""
    C, L, V = cfg.n_embd, cfg.n_layer, cfg.vocab_size
    b = 1 if cfg.bias else 0
    diff = got - want
    linear_biases = L * 9 * C * b               # c_attn 3C + c_proj C + c_fc 4C + c_proj C
    norm_params = (2 * L + 1) * C * (1 + b)     # 2 per block + ln_f, weight (+ bias)
    hints = {
        V * C: "with tie_weights=True the output layer shares the embedding matrix: count V * C "
               "once, not twice",
        -V * C: "with tie_weights=False the output layer lm_head has its own V * C weight",
        -cfg.block_size * C: "the position embedding wpe (block_size * n_embd) is missing",
        -C * (1 + b): "the final LayerNorm ln_f is missing",
        -linear_biases: "the biases of the linear layers are missing (with bias=True: c_attn has "
                        "3C, attn c_proj C, c_fc 4C and mlp c_proj C per block)",
        -norm_params: "the LayerNorms are missing (2 per block plus ln_f; each has C weights and, "
                      "with bias=True, C biases)",
        -(linear_biases + (2 * L + 1) * C * b): "the biases are missing; count them when config.bias "
                                                "is True",
        (linear_biases + (2 * L + 1) * C) if not cfg.bias else None: "with bias=False no layer has "
                                                                     "a bias: count them only when "
                                                                     "config.bias is True",
    }
    hints.pop(None, None)
    if diff in hints:
        return hints[diff]
    return ""


@check("parameter count", hint="per block: 2 LayerNorms, c_attn C x 3C, attn c_proj C x C, "
                               "c_fc C x 4C, mlp c_proj 4C x C (plus biases when config.bias)")
def check_count_params(count_fn: Callable[[GPTConfig], Any]) -> None:
    """Exercise 2: the learner's formula equals ``count_params_formula(cfg, non_embedding=False)``."""
    for cfg in _count_configs():
        shown = (f"count_params(GPTConfig(vocab_size={cfg.vocab_size}, n_layer={cfg.n_layer}, "
                 f"n_embd={cfg.n_embd}, bias={cfg.bias}, tie_weights={cfg.tie_weights}))")
        got = as_int(call(count_fn, cfg, shown=shown), "count_params")
        want = count_params_formula(cfg, non_embedding=False)
        if got == want:
            continue
        shape = (f"vocab_size={cfg.vocab_size}, block_size={cfg.block_size}, n_layer={cfg.n_layer}, "
                 f"n_embd={cfg.n_embd}, bias={cfg.bias}, tie_weights={cfg.tie_weights}")
        hint = _count_hint(cfg, got, want)
        raise CheckFailed(f"for ({shape}) you count {got:,} but the model has {want:,} "
                          f"(off by {got - want:+,})" + (f": {hint}" if hint else ""))


# ---------------------------------------------------------------------------- exercises 3 and 4
def _tiny_config() -> GPTConfig:
    # Sizes unlike the lesson's (V = 65, block_size = 16, n_embd = 32), and dropout on, so that a
    # test that forgets model.eval() sees two different outputs on a correct model.
    return GPTConfig(vocab_size=13, block_size=12, n_layer=2, n_head=2, n_embd=16, dropout=0.2)


def _run_learner_test(test_fn: Callable[[nn.Module], Any], model: nn.Module) -> str | None:
    """Run the learner's test on ``model``: ``None`` if it passed, else the failure message.

    A test fails by raising ``AssertionError`` (pytest ignores what a test returns).
    ``NotImplementedError`` propagates (the exercise is a stub). A test that returns ``False``
    is reported as ``"returned False"`` and any other exception as a crash, so the check can
    tell "failed an assert" from "returned False" from "crashed".
    """
    try:
        result = test_fn(model)
    except NotImplementedError:
        raise
    except AssertionError as exc:
        return f"AssertionError: {exc}".strip().rstrip(":")
    except Exception as exc:  # noqa: BLE001 - reported to the learner as a crash
        return f"crash: {type(exc).__name__}: {exc}"
    if result is False:
        return "returned False"
    return None


_RETURNED_FALSE = ("your test returned False on {what} instead of raising AssertionError: pytest "
                   "(and this check) ignore a test's return value, so a failing test must fail an "
                   "assert: assert condition, \"message\"")


def _check_model_test(test_fn: Callable[[nn.Module], Any], bug: str, harmless_bug: str,
                      what: str) -> None:
    cfg = _tiny_config()
    torch.manual_seed(0)
    outcome = _run_learner_test(test_fn, GPT(cfg))  # a fresh GPT is in training mode: dropout on
    if outcome == "returned False":
        raise CheckFailed(_RETURNED_FALSE.format(what="a correct GPT"))
    if outcome is not None:
        torch.manual_seed(0)
        if _run_learner_test(test_fn, GPT(dataclasses.replace(cfg, dropout=0.0))) is None:
            raise CheckFailed(f"your test fails a correct GPT that has dropout ({outcome}) but passes "
                              "it without dropout: call model.eval() before the forward passes, so "
                              "that dropout is off and two runs give the same logits")
        raise CheckFailed(f"your test fails a correct GPT ({outcome}); it should pass it")
    torch.manual_seed(0)
    outcome = _run_learner_test(test_fn, broken_model(bug, cfg))
    if outcome is None:
        raise CheckFailed(f"your test passed a model with a planted bug ({BROKEN_KINDS[bug]}); "
                          f"it should fail with an AssertionError: {what}")
    if outcome == "returned False":
        raise CheckFailed(_RETURNED_FALSE.format(what=f"the broken model ({BROKEN_KINDS[bug]})"))
    if outcome.startswith("crash"):
        raise CheckFailed(f"on the broken model ({BROKEN_KINDS[bug]}) your test crashed "
                          f"({outcome[7:]}) instead of failing an assert")
    torch.manual_seed(0)
    outcome = _run_learner_test(test_fn, broken_model(harmless_bug, cfg))
    if outcome is not None:
        raise CheckFailed(f"your test also fails a model whose bug it is not about "
                          f"({BROKEN_KINDS[harmless_bug]}): {outcome}; test one property only")


@check("causality test")
def check_causality_test(test_fn: Callable[[nn.Module], Any]) -> None:
    """Exercise 3: passes a GPT, fails one without the causal mask."""
    _check_model_test(
        test_fn, "no_causal_mask", "detached_positions",
        "compare the logits up to position t of two inputs that differ only after t, e.g. "
        "torch.allclose(a[:, :t + 1], b[:, :t + 1], atol=1e-5), and assert they are equal",
    )


@check("gradient test")
def check_gradients_test(test_fn: Callable[[nn.Module], Any]) -> None:
    """Exercise 4: passes a GPT, fails one whose position embedding gets no gradient."""
    _check_model_test(
        test_fn, "detached_positions", "no_causal_mask",
        "after loss.backward(), assert p.grad is not None (and not all zero) for every "
        "p in model.parameters()",
    )
