"""Checks for day 12, "The GPT model", plus reference model tests and deliberately broken models.

Each ``check_*`` function runs the learner's code, prints one line - a pass, the hint of a typical
mistake (the tables ``TIED``, ``COUNT``, ``CAUSALITY_TEST``, ``GRADIENTS_TEST``), or "not done
yet" - and returns a verdict, true on a pass. None of them raises.

The tied model is compared with the package's tied GPT holding the same weights: logits, loss
and the gradient of every parameter after one backward pass (a shared matrix gets the sum of
its two uses' gradients). The parameter count is compared with the package's formula on five
configurations (biases on and off, tied and untied, sizes unlike the notebook's).

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
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks._core import Case, CheckFailed, Mistake, as_int, check, compare
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
class _PlantedMaskAttention(CausalSelfAttention):
    """Multi-head attention with a mask of its own (:meth:`allowed`) instead of the causal one."""

    def allowed(self, T: int, device: torch.device) -> torch.Tensor | None:
        """``(T, T)`` bool, True where a query position may look; None: everywhere."""
        return None

    def forward(self, x: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        B, T, C = x.shape
        nh, hs = self.n_head, self.head_size
        q, k, v = self.c_attn(x).split(C, dim=-1)
        q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.allowed(T, x.device))
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y), None


class _UnmaskedAttention(_PlantedMaskAttention):
    """Multi-head attention that forgot ``is_causal=True``: a classic bug, planted on purpose."""


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


class _PeekingAttention(_PlantedMaskAttention):
    """Attention whose mask lets every position see one token ahead: a leak of one step only."""

    def allowed(self, T: int, device: torch.device) -> torch.Tensor:
        return torch.ones(T, T, dtype=torch.bool, device=device).tril(diagonal=1)  # (T, T)


class _EarlyLeakAttention(_PlantedMaskAttention):
    """Causal attention except that position 0 also sees every later position, the last one
    included: a leak that shows only at an early position, not at the cut t. (Every later
    position, not the last alone: a correct test's fresh random ids may leave one token as it
    was, and then a leak from that token alone would go unseen.)"""

    def allowed(self, T: int, device: torch.device) -> torch.Tensor:
        allowed = torch.ones(T, T, dtype=torch.bool, device=device).tril()  # (T, T)
        allowed[0] = True
        return allowed


class _MiddleLeakAttention(_PlantedMaskAttention):
    """Causal attention except that position ``T // 4`` (neither 0 nor the cut ``T // 2``) also
    sees every later position: a leak that a test comparing only a few positions misses."""

    def allowed(self, T: int, device: torch.device) -> torch.Tensor:
        allowed = torch.ones(T, T, dtype=torch.bool, device=device).tril()  # (T, T)
        allowed[T // 4] = True
        return allowed


class _FarLeakAttention(_PlantedMaskAttention):
    """Causal attention except that position 0 also sees the positions from ``far_from`` on (the
    last two of a full context): a leak that a test on inputs shorter than block_size misses."""

    far_from = 0

    def allowed(self, T: int, device: torch.device) -> torch.Tensor:
        allowed = torch.ones(T, T, dtype=torch.bool, device=device).tril()  # (T, T)
        allowed[0, self.far_from:] = True
        return allowed


def _one_layer_model(config: GPTConfig, attention: type[_PlantedMaskAttention]) -> GPT:
    """A one-layer GPT (a leak is then one step, not compounded) with ``attention``'s mask."""
    model = GPT(dataclasses.replace(config, n_layer=1))
    for block in model.transformer.h:
        block.attn.__class__ = attention
    return model


def _peeking_model(config: GPTConfig) -> GPT:
    """A one-layer GPT in which position t also sees position t + 1 (and nothing further)."""
    return _one_layer_model(config, _PeekingAttention)


def _early_leak_model(config: GPTConfig) -> GPT:
    """A one-layer GPT in which position 0 also sees every later position."""
    return _one_layer_model(config, _EarlyLeakAttention)


def _middle_leak_model(config: GPTConfig) -> GPT:
    """A one-layer GPT in which position T // 4 also sees every later position."""
    return _one_layer_model(config, _MiddleLeakAttention)


def _far_leak_model(config: GPTConfig) -> GPT:
    """A one-layer GPT in which position 0 also sees the last two positions of a full context."""
    model = _one_layer_model(config, _FarLeakAttention)
    for block in model.transformer.h:
        block.attn.far_from = config.block_size - 2
    return model


def _stale_grad_positions_model(config: GPTConfig) -> GPT:
    """A GPT with detached positions whose position table still holds a gradient from an earlier
    backward pass: a test that does not clear the gradients first sees one and passes."""
    model = broken_model("detached_positions", config)
    model.transformer.wpe.weight.grad = torch.ones_like(model.transformer.wpe.weight)
    return model


def _cancelling(grad: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(grad)
    out[0, 0], out[0, 1] = 1.0, -1.0  # not zero, but its entries sum to exactly 0
    return out


def _cancelling_grad_positions_model(config: GPTConfig) -> GPT:
    """A GPT whose position embedding receives a non-zero gradient whose entries sum to 0: it
    does get a gradient, so a correct test passes it."""
    model = GPT(config)
    model.transformer.wpe.weight.register_hook(_cancelling)
    return model


def _zero_grad_positions_model(config: GPTConfig) -> GPT:
    """A GPT whose position embedding receives a gradient that is all zeros (not None)."""
    model = GPT(config)
    model.transformer.wpe.weight.register_hook(torch.zeros_like)
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
def _mistake_model(change: Callable[[GPT], Any]) -> GPT:
    """A small untied GPT with ``change`` applied: a wrong answer to exercise 1, for the table.

    Built under its own seed without touching the notebook's random state.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(12)
        model = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=8,
                              tie_weights=False))
    with torch.no_grad():
        change(model)
    return model


def _copy_values(m: GPT) -> None:
    m.lm_head.weight.copy_(m.transformer.wte.weight)


def _share_data(m: GPT) -> None:
    m.lm_head.weight.data = m.transformer.wte.weight.data


def _new_parameter(m: GPT) -> None:
    m.lm_head.weight = nn.Parameter(m.transformer.wte.weight)


def _replace_module(m: GPT) -> None:
    m.lm_head = m.transformer.wte


def _transposed(m: GPT) -> None:
    m.lm_head.weight = nn.Parameter(m.transformer.wte.weight.T)


def _tied_to_wpe(m: GPT) -> None:
    m.lm_head.weight = m.transformer.wpe.weight


def _replace_embedding(m: GPT) -> None:
    m.transformer.wte = m.lm_head


def _new_head_with_bias(m: GPT) -> None:
    with torch.random.fork_rng(devices=[]):  # built at import: leave the notebook's RNG alone
        m.lm_head = nn.Linear(m.config.n_embd, m.config.vocab_size)  # bias=True by default
    m.lm_head.weight = m.transformer.wte.weight


def _set_config(m: GPT) -> None:
    m.config.tie_weights = True


_ASSIGN = "Assign the Parameter itself: model.lm_head.weight = model.transformer.wte.weight"

_SAME_SHAPE = ("nn.Linear(C, V) stores its weight as (V, C), the embedding's own shape, so no "
               "transpose is needed. " + _ASSIGN)

TIED = [
    Mistake("copied values", args=(_mistake_model(_copy_values),),
            hint="lm_head.weight holds a copy of the embedding's values, but it is a different "
                 "tensor: training would update them separately. " + _ASSIGN),
    Mistake("shared .data", args=(_mistake_model(_share_data),),
            hint="lm_head.weight shares the embedding's memory (.data or nn.Parameter(...)) but is "
                 "a different Parameter: parameters() lists the matrix twice and each copy gets "
                 "only the gradient of its own use. " + _ASSIGN),
    Mistake("new Parameter", args=(_mistake_model(_new_parameter),),
            expect="is a different Parameter"),
    Mistake("replaced the module", args=(_mistake_model(_replace_module),),
            hint="lm_head is now the embedding module itself, not an nn.Linear: the forward would "
                 "call an Embedding on float vectors. Keep both modules and share their weight: "
                 "model.lm_head.weight = model.transformer.wte.weight"),
    Mistake("set the config", args=(_mistake_model(_set_config),),
            hint="model.config.tie_weights is True, but the weights are still two matrices: the "
                 "config is read once, when GPT(config) builds the model, so changing it "
                 "afterwards changes nothing. " + _ASSIGN),
    Mistake("not a model", args=(None,), expect="pass the GPT you tied"),
    Mistake("transposed", args=(_mistake_model(_transposed),), expect=_SAME_SHAPE),
    Mistake("tied to wpe", args=(_mistake_model(_tied_to_wpe),),
            hint="lm_head.weight is now the POSITION embedding transformer.wpe.weight; tie it to the "
                 "token embedding: model.lm_head.weight = model.transformer.wte.weight"),
    Mistake("replaced the embedding module", args=(_mistake_model(_replace_embedding),),
            hint="transformer.wte is now the nn.Linear lm_head itself: the forward would call a "
                 "Linear on token ids. Keep both modules and share their weight: "
                 "model.lm_head.weight = model.transformer.wte.weight"),
    Mistake("new head with a bias", args=(_mistake_model(_new_head_with_bias),),
            hint="lm_head is a new nn.Linear with a bias; GPT-2's output layer has none. Keep the "
                 "model's own lm_head and only share its weight: "
                 "model.lm_head.weight = model.transformer.wte.weight"),
]


def _run_tied(model: Any, case: Case) -> Any:
    """Logits, loss and every parameter's gradient (shared ones under each name) after one backward."""
    (idx, targets), _ = case.fresh()
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    try:
        logits, loss = model(idx, targets)
        loss.backward()
        grads = {f"grad of {name}": None if p.grad is None else p.grad.detach().clone()
                 for name, p in model.named_parameters(remove_duplicate=False)}
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return {"logits": logits.detach(), "loss": loss.detach(), **grads}


@check("weight tying", mistakes=TIED)
def check_tied(model: Any) -> None:
    """Exercise 1: ``lm_head.weight`` and ``transformer.wte.weight`` are one and the same Parameter.

    The model must also still run, and one backward pass must give the shared matrix the sum of
    the gradients of its two uses, like the package's tied GPT with the same weights.
    """
    if not isinstance(model, GPT):
        raise CheckFailed(f"pass the GPT you tied, got {type(model).__name__}")
    wte_module = model.transformer.wte
    if model.lm_head is wte_module:
        raise CheckFailed(TIED[8].hint if isinstance(wte_module, nn.Linear) else TIED[3].hint)
    if not isinstance(model.lm_head, nn.Linear):
        raise CheckFailed(f"lm_head is now {type(model.lm_head).__name__}, not an nn.Linear. Keep "
                          "both modules and share their weight: model.lm_head.weight = "
                          "model.transformer.wte.weight")
    if getattr(model.lm_head, "bias", None) is not None:
        raise CheckFailed(TIED[9].hint)
    head, wte = model.lm_head.weight, wte_module.weight
    wpe = getattr(getattr(model.transformer, "wpe", None), "weight", None)
    if head is not wte and wpe is not None and head is wpe:
        raise CheckFailed(TIED[7].hint)
    if head is not wte:
        if head.shape == wte.shape and head.data_ptr() == wte.data_ptr():
            raise CheckFailed(TIED[1].hint)
        if head.shape == wte.shape and torch.equal(head.detach(), wte.detach()):
            raise CheckFailed(TIED[0].hint)
        if getattr(model.config, "tie_weights", False):
            raise CheckFailed(TIED[4].hint)
        if head.shape != wte.shape:
            raise CheckFailed(f"lm_head.weight now has shape {tuple(head.shape)}, the embedding "
                              f"{tuple(wte.shape)}: {_SAME_SHAPE}")
        raise NotImplementedError("lm_head.weight is still its own matrix")
    n_unique = sum(p.numel() for p in model.parameters())
    n_listed = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    if n_unique == n_listed:
        raise CheckFailed("the weights are shared but parameters() lists them twice")
    cfg = model.config
    V, T = cfg.vocab_size, min(5, cfg.block_size)
    g = torch.Generator().manual_seed(12)
    case = Case(f"the tied model on ids of shape (3, {T}) with targets",
                torch.randint(V, (3, T), generator=g), torch.randint(V, (3, T), generator=g))
    reference = GPT(dataclasses.replace(cfg, tie_weights=True, dropout=0.0))
    reference.load_state_dict(model.state_dict())
    compare(model, reference, [case], name="the tied model", run=_run_tied)


# ---------------------------------------------------------------------------- exercise 2
def _count(cfg: GPTConfig, *, bias: Any = None, tied: Any = None, wpe: bool = True, ln_f: bool = True,
           V: Any = None, L: Any = None) -> int:
    """The parameter count, written from the lesson's table, with one part changed."""
    C = cfg.n_embd
    L = cfg.n_layer if L is None else L
    V = cfg.vocab_size if V is None else V
    b = int(cfg.bias if bias is None else bias)
    tied = cfg.tie_weights if tied is None else tied
    ln = C + b * C
    block = 2 * ln + 3 * C * C + 3 * C * b + C * C + C * b + 4 * C * C + 4 * C * b + 4 * C * C + C * b
    return (V * C + (cfg.block_size * C if wpe else 0) + L * block + (ln if ln_f else 0)
            + (0 if tied else V * C))


COUNT = [
    Mistake("tied matrix counted twice", lambda cfg: _count(cfg, tied=False),
            hint="with tie_weights=True the output layer shares the embedding matrix: count V * C "
                 "once, not twice"),
    Mistake("untied head missing", lambda cfg: _count(cfg, tied=True),
            hint="with tie_weights=False the output layer lm_head has its own V * C weight"),
    Mistake("no wpe", lambda cfg: _count(cfg, wpe=False),
            hint="the position embedding wpe (block_size * n_embd) is missing"),
    Mistake("no ln_f", lambda cfg: _count(cfg, ln_f=False), hint="the final LayerNorm ln_f is missing"),
    Mistake("biases always counted", lambda cfg: _count(cfg, bias=True),
            hint="with bias=False no layer has a bias: count them only when config.bias is True"),
    Mistake("biases never counted", lambda cfg: _count(cfg, bias=False),
            hint="the biases are missing; count them when config.bias is True (c_attn 3C, attn "
                 "c_proj C, c_fc 4C, mlp c_proj C per block, and the LayerNorms' C each)"),
    Mistake("notebook V", lambda cfg: _count(cfg, V=65),
            hint="the vocabulary size is not the config's: use cfg.vocab_size, not the notebook's V"),
    Mistake("non-embedding count", lambda cfg: count_params_formula(cfg),
            hint="that is the non-embedding count (no wpe, no untied wte), the package's default; "
                 "this exercise counts every parameter"),
    Mistake("mlp c_proj bias 4C", lambda cfg: _count(cfg) + cfg.n_layer * 3 * cfg.n_embd * int(cfg.bias),
            hint="the MLP's c_proj maps 4C -> C, so its bias has C numbers, not 4C: a layer's bias "
                 "has one number per OUTPUT"),
    Mistake("blocks not multiplied by n_layer",
            lambda cfg: _count(cfg, L=1),
            hint="only one block is counted: the model has n_layer blocks, so multiply the "
                 "per-block count by cfg.n_layer"),
    Mistake("c_attn bias C", lambda cfg: _count(cfg) - cfg.n_layer * 2 * cfg.n_embd * int(cfg.bias),
            hint="attn.c_attn maps C -> 3C (query, key and value at once), so its bias has 3C "
                 "numbers, not C: one per output"),
    Mistake("LayerNorm bias missing", lambda cfg: _count(cfg) - (2 * cfg.n_layer + 1) * cfg.n_embd * int(cfg.bias),
            hint="with bias=True each LayerNorm (ln_1, ln_2 per block, and ln_f) has a bias of C "
                 "numbers as well as its weight: C + b * C each"),
    Mistake("one LayerNorm per block", lambda cfg: _count(cfg) - cfg.n_layer * cfg.n_embd * (1 + int(cfg.bias)),
            hint="a block has two LayerNorms, ln_1 before the attention and ln_2 before the MLP: "
                 "count 2 * (C + b * C) per block"),
    Mistake("no attention c_proj",
            lambda cfg: _count(cfg) - cfg.n_layer * (cfg.n_embd ** 2 + cfg.n_embd * int(cfg.bias)),
            hint="the attention's output projection attn.c_proj (C -> C: C * C weights, C biases) is "
                 "missing from each block"),
    Mistake("LayerNorm biases with bias=False",
            lambda cfg: _count(cfg) + (2 * cfg.n_layer + 1) * cfg.n_embd * (1 - int(cfg.bias)),
            hint="with bias=False the LayerNorms have no bias either: each LayerNorm counts C weights, "
                 "plus C biases only when config.bias is True"),
    Mistake("lm_head bias", lambda cfg: _count(cfg) + (0 if cfg.tie_weights else cfg.vocab_size),
            hint="lm_head has no bias (nn.Linear(C, V, bias=False)): count only its V * C weight"),
    Mistake("12 L C^2", lambda cfg: (cfg.vocab_size * cfg.n_embd + cfg.block_size * cfg.n_embd
                                     + 12 * cfg.n_layer * cfg.n_embd ** 2
                                     + (0 if cfg.tie_weights else cfg.vocab_size * cfg.n_embd)),
            hint="12 * L * C^2 is only the approximate size of the blocks: count every part of the "
                 "table exactly, LayerNorms and biases included (and ln_f)"),
    Mistake("12 L C^2 + V C", lambda cfg: 12 * cfg.n_layer * cfg.n_embd ** 2 + cfg.vocab_size * cfg.n_embd,
            hint="12 * L * C^2 + V * C is only the lesson's approximation: count every part of the "
                 "table exactly (wpe, the LayerNorms, the biases, ln_f, and lm_head when untied)"),
    Mistake("c_fc bias C", lambda cfg: _count(cfg) - cfg.n_layer * 3 * cfg.n_embd * int(cfg.bias),
            hint="mlp.c_fc maps C -> 4C, so its bias has 4C numbers, not C: one per output"),
    Mistake("tied matrix not counted",
            lambda cfg: _count(cfg) - (cfg.vocab_size * cfg.n_embd if cfg.tie_weights else 0),
            hint="with tie_weights=True the shared matrix still counts once: V * C for wte, and "
                 "nothing more for lm_head"),
    Mistake("float", lambda cfg: _count(cfg) + 0.5, expect="should return an int"),
    Mistake("no return", lambda cfg: None, expect="None"),
]


def _count_cases() -> list[Case]:
    def case(**kw: Any) -> Case:
        cfg = GPTConfig(**kw)
        return Case(f"count_params(GPTConfig(vocab_size={cfg.vocab_size}, block_size={cfg.block_size}, "
                    f"n_layer={cfg.n_layer}, n_embd={cfg.n_embd}, bias={cfg.bias}, "
                    f"tie_weights={cfg.tie_weights}))", cfg)

    return [
        case(vocab_size=100, block_size=24, n_layer=3, n_head=2, n_embd=16, bias=False, tie_weights=False),
        case(vocab_size=7, block_size=5, n_layer=1, n_head=1, n_embd=8, bias=False),
        case(vocab_size=100, block_size=40, n_layer=2, n_head=4, n_embd=32, tie_weights=False),
        case(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384),
        case(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768),
    ]


def _read_count(value: Any, case: Case) -> int:
    return as_int(value, "count_params(cfg)")


@check("parameter count", mistakes=COUNT)
def check_count_params(count_fn: Callable[[GPTConfig], Any]) -> None:
    """Exercise 2: the learner's formula equals ``count_params_formula(cfg, non_embedding=False)``."""
    compare(count_fn, lambda cfg: count_params_formula(cfg, non_embedding=False), _count_cases(),
            name="count_params(cfg)", mistakes=COUNT, read=_read_count)


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
_SIZES_HINT = ("read the sizes from the model you are given, V = model.config.vocab_size and "
               "T = model.config.block_size, not from the notebook's variables: the check's GPT "
               "has other sizes")
_NO_EVAL = ("call model.eval() before the forward passes, so that dropout is off and two runs give "
            "the same logits")


def _check_model_test(test_fn: Callable[[nn.Module], Any], bug: str, harmless_bug: str, what: str,
                      subtle: Sequence[tuple[Callable[[GPTConfig], GPT], str, str]] = (),
                      names: tuple[str, str] | None = None,
                      also_correct: Sequence[tuple[Callable[[GPTConfig], GPT], str, str]] = (),
                      wrong_on_correct: Sequence[tuple[Callable[[str, GPT], bool], str]] = ()) -> None:
    """The learner's test passes a correct GPT (dropout on), fails ``bug``, passes ``harmless_bug``.

    ``subtle`` lists ``(build, description, hint)``: smaller forms of ``bug`` that the test must
    fail as well (``hint`` says what the test missed). ``names`` is ``(word, hint)``: the failure
    message on ``bug`` must contain ``word``. ``also_correct`` lists ``(build, description, hint)``:
    models without the bug that the test must pass. ``wrong_on_correct`` lists ``(seen, hint)``:
    when the test fails the correct GPT and ``seen(outcome, model)`` holds, ``hint`` names why.
    """
    cfg = _tiny_config()
    torch.manual_seed(0)
    correct = GPT(cfg)  # a fresh GPT is in training mode: dropout on
    outcome = _run_learner_test(test_fn, correct)
    if outcome == "returned False":
        raise CheckFailed(_RETURNED_FALSE.format(what="a correct GPT"))
    if outcome is not None:
        torch.manual_seed(0)
        if _run_learner_test(test_fn, GPT(dataclasses.replace(cfg, dropout=0.0))) is None:
            raise CheckFailed(f"your test fails a correct GPT that has dropout ({outcome}) but passes "
                              f"it without dropout: {_NO_EVAL}")
        if outcome.startswith("crash") and ("block_size" in outcome or "index out of range" in outcome):
            raise CheckFailed(f"your test crashed on a correct GPT ({outcome[7:]}): {_SIZES_HINT}")
        for words, hint in wrong_on_correct:
            if words(outcome, correct):
                raise CheckFailed(f"your test fails a correct GPT ({outcome}): {hint}")
        raise CheckFailed(f"your test fails a correct GPT ({outcome}); it should pass it: {what}")
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
    if names is not None and names[0] not in outcome:
        raise CheckFailed(f"your test fails the broken model ({BROKEN_KINDS[bug]}), but its message "
                          f"does not name the parameter: {names[1]}")
    for build, description, hint in also_correct:
        torch.manual_seed(0)
        outcome = _run_learner_test(test_fn, build(cfg))
        if outcome is not None:
            raise CheckFailed(f"your test fails a model without the bug ({description}): {outcome}; {hint}")
    for build, description, hint in subtle:
        for seed in range(3):  # a correct test's random ids may leave the one leaking token as it was
            torch.manual_seed(seed)
            outcome = _run_learner_test(test_fn, build(cfg))
            if outcome is not None:
                break
        if outcome is None:
            raise CheckFailed(f"your test passed a model with a planted bug ({description}): {hint}")
    torch.manual_seed(0)
    outcome = _run_learner_test(test_fn, broken_model(harmless_bug, cfg))
    if outcome is not None:
        raise CheckFailed(f"your test also fails a model whose bug it is not about "
                          f"({BROKEN_KINDS[harmless_bug]}): {outcome}; test one property only")


def _two_inputs(model: nn.Module, first: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    V, T = model.config.vocab_size, model.config.block_size
    idx = torch.randint(V, (2, T))
    t = T // 2
    idx2 = idx.clone()
    idx2[:, first:] = (idx2[:, first:] + 1) % V
    return idx, idx2, t


def _causality_without_eval(model: nn.Module) -> None:
    idx, idx2, t = _two_inputs(model, model.config.block_size // 2 + 1)
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5), "the future leaks"


def _causality_returning_bool(model: nn.Module) -> bool:
    idx, idx2, t = _two_inputs(model, model.config.block_size // 2 + 1)
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    return torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5)


def _causality_changes_t_too(model: nn.Module) -> None:
    idx, idx2, t = _two_inputs(model, model.config.block_size // 2)  # off by one: t changes too
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5), "the future leaks"


def _causality_compares_everything(model: nn.Module) -> None:
    idx, idx2, _ = _two_inputs(model, model.config.block_size - 1)
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    assert torch.allclose(a, b), "changed"


def _causality_skips_t_plus_1(model: nn.Module) -> None:
    idx, idx2, t = _two_inputs(model, model.config.block_size // 2 + 2)  # t + 1 stays the same
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5), "the future leaks"


def _causality_position_0_only(model: nn.Module) -> None:
    idx, idx2, _ = _two_inputs(model, model.config.block_size // 2 + 1)
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    assert torch.allclose(a[:, 0], b[:, 0], atol=1e-5), "the future leaks"


def _causality_position_t_only(model: nn.Module) -> None:
    idx, idx2, t = _two_inputs(model, model.config.block_size // 2 + 1)
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    assert torch.allclose(a[:, t], b[:, t], atol=1e-5), "the future leaks"


def _causality_global_sizes(model: nn.Module) -> None:
    V, T = 65, 16  # the notebook's V and tiny.block_size, not the model's
    idx = torch.randint(V, (2, T))
    t = T // 2
    idx2 = idx.clone()
    idx2[:, t + 1:] = torch.randint(V, (2, T - t - 1))
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5), "the future leaks"


def _causality_positions_0_and_t(model: nn.Module) -> None:
    idx, idx2, t = _two_inputs(model, model.config.block_size // 2 + 1)
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    assert torch.allclose(a[:, [0, t]], b[:, [0, t]], atol=1e-5), "the future leaks"


def _causality_short_input(model: nn.Module) -> None:  # (2, t + 2): only token t + 1 changes
    V, t = model.config.vocab_size, model.config.block_size // 2
    idx = torch.randint(V, (2, t + 2))
    idx2 = idx.clone()
    idx2[:, t + 1:] = (idx2[:, t + 1:] + 1) % V
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5), "the future leaks"


_EARLY = "position 0 also sees the last token, and every other later one"
_EARLY_HINT = ("compare the logits at ALL the positions 0..t, not only at t: a leak can reach an "
               "early position and leave position t alone")
_MIDDLE = "position block_size // 4 also sees every later token"
_MIDDLE_HINT = ("compare the logits at EVERY position 0..t, a[:, :t + 1], not a few chosen ones: a "
                "leak can reach any position before t")
_FAR = "position 0 also sees the last two positions of a full context, and nothing else ahead"
_FAR_HINT = ("run inputs of the full length, shape (2, model.config.block_size), and change every "
             "token after t: a leak from the end of the context shows only when the input reaches it")
_PEEK = "every position also sees the next token, and nothing further"
_PEEK_HINT = ("change EVERY token after t (from t + 1 on) and compare the logits at ALL the "
              "positions 0..t: a leak of one step shows only at position t")


def _causality_and_gradients(model: nn.Module) -> None:
    _causality_solution(model)
    _gradients_solution(model)


def _causality_solution(model: nn.Module) -> None:
    idx, idx2, t = _two_inputs(model, model.config.block_size // 2 + 1)
    model.eval()
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(idx2)
    assert torch.allclose(a[:, : t + 1], b[:, : t + 1], atol=1e-5), "the future leaks"


def _gradients_solution(model: nn.Module) -> None:
    V, T = model.config.vocab_size, model.config.block_size
    model.zero_grad(set_to_none=True)
    _, loss = model(torch.randint(V, (2, T)), torch.randint(V, (2, T)))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


CAUSALITY_TEST = [
    Mistake("no eval", _causality_without_eval, hint=_NO_EVAL),
    Mistake("returns a bool", _causality_returning_bool, expect="returned False"),
    Mistake("changes position t too", _causality_changes_t_too,
            expect="fails a correct GPT (AssertionError: the future leaks); it should pass it: compare "
                   "the logits up to position t of two inputs that differ only after t"),
    Mistake("compares every position", _causality_compares_everything,
            expect="it should pass it: compare the logits up to position t of two inputs that differ "
                   "only after t"),
    Mistake("cannot fail", lambda model: None, expect="planted bug"),
    Mistake("tests gradients too", _causality_and_gradients, expect="test one property only"),
    Mistake("changes the tokens from t + 2", _causality_skips_t_plus_1, expect=_PEEK_HINT),
    Mistake("compares position 0 only", _causality_position_0_only, expect=_PEEK_HINT),
    Mistake("compares position t only", _causality_position_t_only, expect=_EARLY_HINT),
    Mistake("the notebook's sizes", _causality_global_sizes, expect=_SIZES_HINT),
    Mistake("compares positions 0 and t only", _causality_positions_0_and_t, expect=_MIDDLE_HINT),
    Mistake("input shorter than block_size", _causality_short_input, expect=_FAR_HINT),
]


@check("causality test", mistakes=CAUSALITY_TEST)
def check_causality_test(test_fn: Callable[[nn.Module], Any]) -> None:
    """Exercise 3: passes a GPT (dropout on), fails one without the causal mask, one whose
    positions see one token ahead and one whose position 0 alone sees the later tokens, passes one
    whose positions are detached (a bug it is not about)."""
    _check_model_test(
        test_fn, "no_causal_mask", "detached_positions",
        "compare the logits up to position t of two inputs that differ only after t (idx2 = "
        "idx.clone(), then change idx2; idx2 = idx is the same tensor), e.g. "
        "torch.allclose(a[:, :t + 1], b[:, :t + 1], atol=1e-5), and assert they are equal",
        subtle=[(_peeking_model, _PEEK, _PEEK_HINT), (_early_leak_model, _EARLY, _EARLY_HINT),
                (_middle_leak_model, _MIDDLE, _MIDDLE_HINT), (_far_leak_model, _FAR, _FAR_HINT)],
    )


def _gradients_first_parameter(model: nn.Module) -> None:
    x = torch.randint(model.config.vocab_size, (1, 4))
    model(x, x)[1].backward()
    assert next(model.parameters()).grad is not None


def _gradients_no_backward(model: nn.Module) -> None:
    for name, p in model.named_parameters():
        assert p.grad.abs().sum() > 0, name  # no backward: grad is None -> crash


def _gradients_returning_bool(model: nn.Module) -> bool:
    V, T = model.config.vocab_size, model.config.block_size
    _, loss = model(torch.randint(V, (2, T)), torch.randint(V, (2, T)))
    loss.backward()
    return all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters())


def _gradients_not_none_only(model: nn.Module) -> None:
    V, T = model.config.vocab_size, model.config.block_size
    model.zero_grad(set_to_none=True)
    _, loss = model(torch.randint(V, (2, T)), torch.randint(V, (2, T)))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name


_ZERO_GRAD = "the position embedding's gradient is all zeros"
_ZERO_GRAD_HINT = ("a gradient can exist and still be all zeros: assert p.grad.abs().sum() > 0 "
                   "as well as p.grad is not None")


_STALE = ("the position embedding is detached, and still holds a gradient from an earlier "
          "backward pass")
_STALE_HINT = ("clear the old gradients first, model.zero_grad(set_to_none=True), before the "
               "forward pass: a gradient left by an earlier backward hides a parameter that gets "
               "none now")


def _gradients_without_zero_grad(model: nn.Module) -> None:
    V, T = model.config.vocab_size, model.config.block_size
    _, loss = model(torch.randint(V, (2, T)), torch.randint(V, (2, T)))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def _gradients_unnamed(model: nn.Module) -> None:
    V, T = model.config.vocab_size, model.config.block_size
    model.zero_grad(set_to_none=True)
    _, loss = model(torch.randint(V, (2, T)), torch.randint(V, (2, T)))
    loss.backward()
    for p in model.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def _gradients_sum_not_zero(model: nn.Module) -> None:
    V, T = model.config.vocab_size, model.config.block_size
    model.zero_grad(set_to_none=True)
    _, loss = model(torch.randint(V, (2, T)), torch.randint(V, (2, T)))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.sum() != 0, name


_UNNAMED_HINT = ("say which parameter failed: put its name in the assert's message, "
                 "assert p.grad is not None, f\"{name} has no gradient\" for name, p in "
                 "model.named_parameters()")
_NO_GRAPH_HINT = ("the loss has no graph to go back through: run the forward pass outside "
                  "torch.no_grad() (no_grad is for the causality test, not this one)")
_CLEARED_HINT = ("every gradient was None when your asserts ran: call loss.backward() before them, and "
                 "clear the old gradients BEFORE the forward pass, model.zero_grad(set_to_none=True), "
                 "not after the backward")


def _no_graph(outcome: str, model: GPT) -> bool:
    return outcome.startswith("crash") and "does not require grad" in outcome


def _grads_cleared(outcome: str, model: GPT) -> bool:
    return outcome.startswith("AssertionError") and all(p.grad is None for p in model.parameters())


def _gradients_no_grad_forward(model: nn.Module) -> None:
    V, T = model.config.vocab_size, model.config.block_size
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        _, loss = model(torch.randint(V, (2, T)), torch.randint(V, (2, T)))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def _gradients_cleared_after_backward(model: nn.Module) -> None:
    V, T = model.config.vocab_size, model.config.block_size
    _, loss = model(torch.randint(V, (2, T)), torch.randint(V, (2, T)))
    loss.backward()
    model.zero_grad(set_to_none=True)
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


_CANCEL = "the position embedding's gradient is not zero, but its entries sum to 0"
_CANCEL_HINT = ("entries of opposite sign cancel in p.grad.sum(): test that some entry is non-zero, "
                "p.grad.abs().sum() > 0")


def _gradients_and_causality(model: nn.Module) -> None:
    _gradients_solution(model)
    _causality_solution(model)


GRADIENTS_TEST = [
    Mistake("first parameter only", _gradients_first_parameter, expect="planted bug"),
    Mistake("no backward", _gradients_no_backward, expect="fails a correct GPT"),
    Mistake("returns a bool", _gradients_returning_bool, expect="returned False"),
    Mistake("loss only", lambda model: None, expect="planted bug"),
    Mistake("tests causality too", _gradients_and_causality, expect="test one property only"),
    Mistake("checks only that grad is not None", _gradients_not_none_only, expect=_ZERO_GRAD_HINT),
    Mistake("no zero_grad", _gradients_without_zero_grad, expect=_STALE_HINT),
    Mistake("no name in the message", _gradients_unnamed, expect=_UNNAMED_HINT),
    Mistake("p.grad.sum() != 0", _gradients_sum_not_zero, expect=_CANCEL_HINT),
    Mistake("forward under no_grad", _gradients_no_grad_forward, expect=_NO_GRAPH_HINT),
    Mistake("zero_grad after backward", _gradients_cleared_after_backward, expect=_CLEARED_HINT),
]


@check("gradient test", mistakes=GRADIENTS_TEST)
def check_gradients_test(test_fn: Callable[[nn.Module], Any]) -> None:
    """Exercise 4: passes a GPT, fails one whose position embedding gets no gradient, one whose
    position embedding gets an all-zero gradient and one whose detached position embedding still
    holds an old gradient, passes one without the causal mask (a bug it is not about)."""
    _check_model_test(
        test_fn, "detached_positions", "no_causal_mask",
        "after loss.backward(), assert p.grad is not None (and not all zero) for every "
        "p in model.parameters()",
        subtle=[(_zero_grad_positions_model, _ZERO_GRAD, _ZERO_GRAD_HINT),
                (_stale_grad_positions_model, _STALE, _STALE_HINT)],
        names=("wpe", _UNNAMED_HINT),
        also_correct=[(_cancelling_grad_positions_model, _CANCEL, _CANCEL_HINT)],
        wrong_on_correct=[(_no_graph, _NO_GRAPH_HINT), (_grads_cleared, _CLEARED_HINT)],
    )
