"""Checks for day 19, "Autoregressive generation": the loop, a KV cache, decoding with the cache.

Every check runs the learner's code on a GPT unlike the notebook's (other vocabulary, a short
``block_size`` that the decoding must run past, a batch of two prompts) and compares it with
the package: :func:`llmcourse.generate.generate` for the tokens, a full recomputation for the
logits (to ``1e-5``).

Example::

    >>> from llmcourse.checks import day19
    >>> from llmcourse.generate import generate
    >>> v = day19.check_generate_greedy(lambda m, idx, n: generate(m, idx, n, temperature=0))
    ✅ generate_greedy: passed
"""

from __future__ import annotations

from typing import Any

import torch

from llmcourse.checks._core import (CheckFailed, as_pair, as_tensor, call, check, needs_earlier,
                                    require)
from llmcourse.model import GPT, GPTConfig

__all__ = ["check_generate_greedy", "check_kv_cache", "check_generate_cached"]

# Not the notebook's sizes: vocabulary 23, block 10 (the decoding runs past it), 3 layers.
_CFG = dict(vocab_size=23, block_size=10, n_layer=3, n_head=3, n_embd=24)


def _model(dropout: float = 0.0, **kw: Any) -> GPT:
    torch.manual_seed(19)
    return GPT(GPTConfig(**{**_CFG, "dropout": dropout, **kw}))


def _prompt() -> torch.Tensor:
    return torch.tensor([[3, 1, 4, 1, 5, 9], [2, 7, 1, 8, 2, 8]])  # (2, 6)


@torch.no_grad()
def _recomputed(model: GPT, idx: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy decoding by full recomputation: ``(B, T + n)`` tokens, ``(B, n, V)`` logits."""
    was = model.training
    model.eval()
    all_logits = []
    for _ in range(n):
        logits, _ = model(idx[:, -model.config.block_size:])
        all_logits.append(logits[:, -1])
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    model.train(was)
    return idx, torch.stack(all_logits, dim=1)


def _overflow_hint(exc: BaseException, what: str) -> str | None:
    text = str(exc)
    if text.startswith("cannot run") and " tokens: " in text:
        return (f"{what} gave the model more than block_size tokens ({text.split(':')[0]}); crop "
                "the context to its last block_size tokens, idx[:, -block_size:], before each "
                "forward")
    return None


@check("generate_greedy")
def check_generate_greedy(generate_greedy) -> None:
    """Exercise 1: the loop - crop to block_size, eval mode, no_grad, argmax, append."""
    model = _model(dropout=0.3).train()  # dropout on: a loop without model.eval() is random
    grad_modes: list[bool] = []
    hook = model.register_forward_hook(lambda *_: grad_modes.append(torch.is_grad_enabled()))
    prompt, n = _prompt(), 14  # 6 + 14 = 20 tokens: twice block_size
    shown = "generate_greedy(model, idx, 14) with idx of shape (2, 6) and block_size 10"
    try:
        out = call(generate_greedy, model, prompt.clone(), n, shown=shown)
    except CheckFailed as exc:
        hint = _overflow_hint(exc.__cause__ or exc, "generate_greedy")
        raise CheckFailed(hint) if hint else exc
    finally:
        hook.remove()
    out = as_tensor(out, "the result", shape=(2, 6 + n))
    if not torch.equal(out[:, :6], prompt):
        raise CheckFailed("the result should start with the prompt: return the whole sequence, "
                          "prompt included, (B, T + max_new_tokens)")
    if any(grad_modes):
        raise CheckFailed("the model ran with gradients on: wrap the loop in torch.no_grad() (or "
                          "decorate the function with @torch.no_grad()); generating needs no "
                          "backward and the graph costs memory")
    expected, _ = _recomputed(model, prompt, n)
    if not torch.equal(out, expected):
        if model.training:
            raise CheckFailed("the tokens differ from greedy decoding and the model is still in "
                              "training mode: call model.eval() first, or dropout makes every run "
                              "different")
        first = int((out != expected).any(0).nonzero()[0])
        raise CheckFailed(f"token {first} (counting the prompt) differs from greedy decoding: "
                          "take logits[:, -1, :] (the last position), argmax over the vocabulary, "
                          "and append it with torch.cat(..., dim=1)")


class _Spy:
    """Passes the model's calls on to the learner's cache and remembers what ``update`` returned."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        self.returned: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    @property
    def pos(self) -> int:
        return self.cache.pos

    def check_room(self, batch_size: int, n_new: int) -> None:
        check_room = getattr(self.cache, "check_room", None)
        if check_room is not None:
            check_room(batch_size, n_new)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        before = self.cache.pos
        out = self.cache.update(layer, k, v)
        if self.cache.pos != before:
            raise CheckFailed(f"update moved pos from {before} to {self.cache.pos}: update must "
                              "not move pos (every layer writes at the same positions); only "
                              "advance does, once per forward, after the last layer")
        k_all, v_all = as_pair(out, "update(layer, k, v)", ("k", "v"))
        k_all, v_all = as_tensor(k_all, "the keys update returns"), as_tensor(v_all, "the values update returns")
        self.returned.append((tuple(k_all.shape), tuple(v_all.shape)))
        return k_all, v_all

    def advance(self, n: int) -> None:
        self.cache.advance(n)


@check("KVCache")
def check_kv_cache(KVCache) -> None:
    """Exercise 2: the learner's cache, used by the package's GPT, against recomputation."""
    for kw in ({}, {"pos": "rope"}):  # learned positions, then rotary embeddings
        model = _model(block_size=16, **kw).eval()
        cfg = model.config
        prompt = _prompt()
        shown = (f"KVCache(n_layer={cfg.n_layer}, batch_size=2, n_head={cfg.n_head}, max_len=16, "
                 f"head_size={cfg.head_size})")
        cache = call(KVCache, cfg.n_layer, 2, cfg.n_head, 16, cfg.head_size, shown=shown)
        require(getattr(cache, "k", None), "self.k")  # the __init__ fill-in, still None
        require(getattr(cache, "v", None), "self.v")
        spy = _Spy(cache)
        expected, expected_logits = _recomputed(model, prompt, 8)
        with torch.no_grad():
            shown = "model(idx, kv_cache=your_cache) with idx of shape (2, 6) (the prefill)"
            logits, _ = call(model, prompt, kv_cache=spy, shown=shown)
            if cache.pos != 6:
                if cache.pos == 0:
                    raise CheckFailed("after a 6-token prefill cache.pos is still 0: advance(n) "
                                      "must add n to pos, or the next token is run at position 0 "
                                      "again (its position is not offset) and overwrites the cache")
                if cache.pos == 6 * cfg.n_layer:
                    raise CheckFailed(f"after a 6-token prefill cache.pos is {cache.pos} = 6 x "
                                      f"{cfg.n_layer} layers: update must not move pos (every "
                                      "layer writes at the same positions); only advance does, "
                                      "once per forward")
                raise CheckFailed(f"after a 6-token prefill cache.pos is {cache.pos}, expected 6")
            (k_shape, v_shape) = spy.returned[0]
            want = (2, cfg.n_head, 6, cfg.head_size)
            if k_shape != want or v_shape != want:
                raise CheckFailed(f"update returned keys of shape {k_shape} and values of shape "
                                  f"{v_shape} for the prefill; both should be {want}, "
                                  "(B, n_head, pos + T, head_size)")
            got_logits, ids = [logits[:, -1]], prompt
            for step in range(7):
                ids = torch.cat([ids, got_logits[-1].argmax(-1, keepdim=True)], dim=1)
                spy.returned.clear()
                shown = f"decoding step {step + 1}: model(idx[:, -1:], kv_cache=your_cache)"
                logits, _ = call(model, ids[:, -1:], kv_cache=spy, shown=shown)
                k_shape, v_shape = spy.returned[0]
                L = 7 + step
                if k_shape[2] == 1 and v_shape[2] == 1:
                    raise CheckFailed("update returned only the new token's keys and values: "
                                      "return every filled position, self.k[layer][:, :, :pos + T]"
                                      " (and the same for v), so the query sees the past")
                if k_shape[2] == L and v_shape[2] != L:
                    raise CheckFailed(f"update returned keys over {L} positions but values over "
                                      f"{v_shape[2]}: store the new values in self.v[layer] as "
                                      "you do the keys, and return all the filled ones")
                if k_shape[2] != L or v_shape[2] != L:
                    raise CheckFailed(f"at decoding step {step + 1} update returned keys {k_shape}"
                                      f" and values {v_shape}; both should cover {L} positions "
                                      "(the prompt's 6 plus the new tokens)")
                got_logits.append(logits[:, -1])
        got = torch.stack(got_logits, dim=1)
        diff = float((got - expected_logits).abs().max())
        if diff > 1e-5:
            raise CheckFailed(f"the cached logits differ from the recomputed ones by up to "
                              f"{diff:.3g} (rope: {cfg.pos == 'rope'}): write k and v at "
                              "positions pos .. pos + T - 1 of *this* layer's tensors "
                              "(self.k[layer]), not of a shared one")
        if not torch.equal(torch.cat([ids, got[:, -1].argmax(-1, keepdim=True)], 1), expected):
            raise CheckFailed("the greedy tokens with your cache differ from recomputation")


@check("generate_cached")
@needs_earlier(KVCache=2)
def check_generate_cached(generate_cached) -> None:
    """Exercise 3: prefill, one token a step, reset and refill when the cache is full."""
    model = _model().eval()
    prompt, n = _prompt(), 17  # 6 + 17 = 23 tokens: past block_size 10 twice
    expected, expected_logits = _recomputed(model, prompt, n)
    shown = "generate_cached(model, idx, 17) with idx of shape (2, 6) and block_size 10"
    forwards: list[int] = []
    hook = model.register_forward_hook(lambda _m, args, _out: forwards.append(args[0].shape[1]))
    try:
        out = call(generate_cached, model, prompt.clone(), n, shown=shown)
    except CheckFailed as exc:
        text = str(exc.__cause__ or exc)
        if "KV cache overflow" in text or "cannot run positions" in text:
            raise CheckFailed("the cache overflowed: when cache.pos reaches block_size, call "
                              "cache.reset() and prefill it again with the last block_size "
                              "tokens; after a prefill feed only the newest token, idx[:, -1:]"
                              ) from None
        hint = _overflow_hint(exc.__cause__ or exc, "generate_cached")
        raise CheckFailed(hint) if hint else exc
    finally:
        hook.remove()
    tokens, logits = as_pair(out, "generate_cached", ("tokens", "logits"))
    tokens = as_tensor(tokens, "tokens", shape=(2, 6 + n))
    logits = as_tensor(logits, "logits", shape=(2, n, _CFG["vocab_size"]))
    if not torch.equal(tokens, expected):
        first = int((tokens != expected).any(0).nonzero()[0])
        raise CheckFailed(f"token {first} (counting the prompt) differs from greedy decoding by "
                          "recomputation; check what you feed after the prefill and after a "
                          "reset (the last block_size tokens)")
    diff = float((logits - expected_logits).abs().max())
    if diff > 1e-5:
        raise CheckFailed(f"the logits differ from the recomputed ones by up to {diff:.3g}: "
                          "logits[:, s] should be the last position's logits of step s, the ones "
                          "the token of that step was chosen from")
    room = _CFG["block_size"] - prompt.shape[1]  # steps before the cache is full
    if forwards.count(1) < room:
        raise CheckFailed(f"only {forwards.count(1)} forwards ran a single token, expected {room} "
                          "(until the cache is full): after the prefill feed only the newest "
                          "token, idx[:, -1:], and let the cache supply the past")
