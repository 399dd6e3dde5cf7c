"""Checks for day 19, "Autoregressive generation": the loop, a KV cache, decoding with the cache.

Every check is differential: it runs the learner's code and a reference on a small battery of
GPTs and prompts unlike the notebook's (vocabularies 23 and 17, a ``block_size`` of 10 that the
decoding runs past, a prompt longer than the block, batches of 1 to 3, learned and rotary
positions, untied large weights whose greedy tokens do not settle into repeating one) and
compares the token sequences, the logits (to ``1e-5``) and, for the cache, the whole sequence of
forwards (prefill in one or two chunks, decoding steps, reset and refill).
Each exercise has a table of typical mistakes (``GREEDY``, ``KV_CACHE``, ``CACHED``) whose hints
the checks print and whose entries the tests hand to the checks.

Example::

    >>> from llmcourse.checks import day19
    >>> from llmcourse.generate import generate
    >>> v = day19.check_generate_greedy(lambda m, idx, n: generate(m, idx, n, temperature=0))
    ✅ generate_greedy: passed
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_pair, as_tensor, check,
                                    compare, needs_earlier, require)
from llmcourse.model import GPT, GPTConfig
from llmcourse.model.kv_cache import KVCache as _PackageKVCache

__all__ = ["check_generate_greedy", "check_kv_cache", "check_generate_cached"]

# Not the notebook's sizes: vocabulary 23, block 10 (the decoding runs past it), 2 layers.
_CFG = dict(vocab_size=23, block_size=10, n_layer=2, n_head=3, n_embd=24)


def _model(dropout: float = 0.0, **kw: Any) -> GPT:
    torch.manual_seed(19)
    return GPT(GPTConfig(**{**_CFG, "dropout": dropout, **kw}))


# A model whose greedy tokens vary (the default one soon repeats its last token for ever).
_VARIED = dict(init_std=1.0, tie_weights=False)


def _prompt(b: int, t: int, vocab: int = 23, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (b, t), generator=torch.Generator().manual_seed(seed))


def _raised(exc: BaseException) -> str | None:
    """The model's and the package cache's own errors, by what they mean."""
    text = str(exc)
    if "KV cache overflow" in text:
        return "the KV cache overflowed (pos + T > max_len)"
    if text.startswith("cannot run"):
        return "the model was given more than block_size positions"
    return None


# ---- exercise 1: the generation loop -----------------------------------------------------------


def _reference_greedy(model: GPT, idx: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    block_size = model.config.block_size
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits, _ = model(idx[:, -block_size:])
            idx = torch.cat([idx, logits[:, -1, :].argmax(dim=-1, keepdim=True)], dim=1)
    return idx


def _greedy(model, idx, max_new_tokens, *, crop=None, eval_mode=True, no_grad=True, pick=-1,
            new_only=False):
    block_size = model.config.block_size if crop is None else crop
    if eval_mode:
        model.eval()
    start = idx.shape[1]
    with torch.set_grad_enabled(not no_grad):
        for _ in range(max_new_tokens):
            logits, _ = model(idx if block_size == 0 else idx[:, -block_size:])
            idx = torch.cat([idx, logits[:, pick, :].argmax(dim=-1, keepdim=True)], dim=1)
    return idx[:, start:] if new_only else idx


def _gg_no_crop(model, idx, max_new_tokens):
    return _greedy(model, idx, max_new_tokens, crop=0)


# A block size written as a number. The notebook's block is 64 on the CPU and 256 on a GPU, both
# above the check models' 10 and 40, so those crop nothing here and get the "no crop" hint.
def _gg_crop_32(model, idx, max_new_tokens):
    return _greedy(model, idx, max_new_tokens, crop=32)


def _gg_no_eval(model, idx, max_new_tokens):
    return _greedy(model, idx, max_new_tokens, eval_mode=False)


def _gg_no_grad_off(model, idx, max_new_tokens):
    return _greedy(model, idx, max_new_tokens, no_grad=False)


def _gg_first_position(model, idx, max_new_tokens):
    return _greedy(model, idx, max_new_tokens, pick=0)


def _gg_new_only(model, idx, max_new_tokens):
    return _greedy(model, idx, max_new_tokens, new_only=True)


def _gg_crop_one_short(model, idx, max_new_tokens):  # idx[:, -(block_size - 1):]
    return _greedy(model, idx, max_new_tokens, crop=model.config.block_size - 1)


def _gg_flat_argmax(model, idx, max_new_tokens):  # argmax without keepdim: (B,), not (B, 1)
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits, _ = model(idx[:, -model.config.block_size:])
            idx = torch.cat([idx, logits[:, -1, :].argmax(dim=-1)], dim=1)
    return idx


def _gg_tuple_as_logits(model, idx, max_new_tokens):  # model(...) is (logits, loss), not logits
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(idx[:, -model.config.block_size:])
            idx = torch.cat([idx, logits[:, -1, :].argmax(dim=-1, keepdim=True)], dim=1)
    return idx


def _gg_crop_front(model, idx, max_new_tokens):  # idx[:, :block_size]: the first tokens
    block_size = model.config.block_size
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits, _ = model(idx[:, :block_size])
            idx = torch.cat([idx, logits[:, -1, :].argmax(dim=-1, keepdim=True)], dim=1)
    return idx


def _gg_unsqueeze_front(model, idx, max_new_tokens):  # the new tokens as (1, B)
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits, _ = model(idx[:, -model.config.block_size:])
            idx = torch.cat([idx, logits[:, -1, :].argmax(dim=-1).unsqueeze(0)], dim=1)
    return idx


def _gg_samples(model, idx, max_new_tokens):  # draws from the softmax instead of the argmax
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits, _ = model(idx[:, -model.config.block_size:])
            probs = torch.softmax(logits[:, -1, :], dim=-1)
            idx = torch.cat([idx, torch.multinomial(probs, 1)], dim=1)
    return idx


_OWN_BLOCK = ("with the model's own model.config.block_size, not a notebook global such as "
              "cfg.block_size")
_CROP = ("the model was given more than block_size tokens: crop the context to its last "
         f"block_size tokens, idx[:, -block_size:], before each forward, {_OWN_BLOCK}")

GREEDY = [
    Mistake("no crop", _gg_no_crop, hint=_CROP),
    Mistake("crop to a fixed 32", _gg_crop_32, hint="crop with the model's own block_size "
            "(model.config.block_size), not a number or a notebook global"),
    Mistake("no model.eval()", _gg_no_eval, hint="the tokens differ from greedy decoding and the "
            "model stayed in training mode: call model.eval() first, or dropout makes every run "
            "different"),
    Mistake("gradients on", _gg_no_grad_off, hint="the model ran with gradients on: wrap the loop "
            "in torch.no_grad() (or decorate the function with @torch.no_grad()); generating "
            "needs no backward and the graph costs memory"),
    Mistake("first position's logits", _gg_first_position, hint="take logits[:, -1, :] (the last "
            "position: it predicts the next token), argmax over the vocabulary, and append it "
            "with torch.cat(..., dim=1)"),
    Mistake("new tokens only", _gg_new_only, hint="return the whole sequence, prompt included, "
            "(B, T + max_new_tokens)"),
    Mistake("argmax without keepdim", _gg_flat_argmax, hint="argmax(dim=-1) gives shape (B,), "
            "which torch.cat cannot put after idx (B, T): use argmax(dim=-1, keepdim=True), "
            "shape (B, 1)"),
    Mistake("(logits, loss) not unpacked", _gg_tuple_as_logits, hint="the model returns a pair "
            "(logits, loss): unpack it, logits, _ = model(idx_cond), before logits[:, -1, :]"),
    Mistake("crops the first tokens", _gg_crop_front, hint="idx[:, :block_size] keeps the FIRST "
            "block_size tokens, so the model never sees the newest ones: keep the last, "
            "idx[:, -block_size:]"),
    Mistake("new tokens as (1, B)", _gg_unsqueeze_front, hint="the new tokens must have shape "
            "(B, 1) to be appended after idx (B, T): argmax over the vocabulary, dim=-1, with "
            "keepdim=True (or .unsqueeze(-1), not .unsqueeze(0))"),
    Mistake("samples", _gg_samples, hint="that samples from the softmax; greedy decoding takes "
            "the most likely token, logits[:, -1, :].argmax(dim=-1, keepdim=True)"),
    Mistake("crop one token short", _gg_crop_one_short, hint="the model saw one token less than "
            "block_size once the sequence was long: crop to the last block_size tokens, "
            "idx[:, -block_size:], not block_size - 1"),
]


def _greedy_cases() -> list[Case]:
    return [
        Case("generate_greedy(model with block_size 40, idx (4, 34), 12)",
             dict(block_size=40, vocab_size=17), _prompt(4, 34, 17, seed=4), 12),
        Case("generate_greedy(model with block_size 10, idx (2, 6), 14): past the block twice",
             {}, _prompt(2, 6, seed=2), 14),
        Case("generate_greedy(model, idx (3, 1), 4): a one-token prompt", {}, _prompt(3, 1, seed=3), 4),
        Case("generate_greedy(model, idx (1, 13) longer than block_size 10, 3)",
             {}, _prompt(1, 13, seed=4), 3),
        Case("generate_greedy(model, idx (2, 4), 0): no new tokens", {}, _prompt(2, 4, seed=5), 0),
        # large untied weights: greedy text that does not settle on repeating one token, so
        # a window taken from the wrong end of idx shows
        Case("generate_greedy(model with untied, large weights, idx (2, 13), 12)",
             _VARIED, _prompt(2, 13, seed=4), 12),
    ]


def _run_greedy(generate_greedy: Any, case: Case) -> dict[str, Any]:
    kw, prompt, n = case.args
    model = _model(dropout=0.3, **kw).train()  # dropout on: a loop without model.eval() is random
    grad_modes: list[bool] = []
    lengths: list[int] = []

    def spy(_module: Any, args: Any, _out: Any) -> None:
        grad_modes.append(torch.is_grad_enabled())
        lengths.append(int(args[0].shape[1]))

    hook = model.register_forward_hook(spy)
    torch.manual_seed(7)
    try:
        out = generate_greedy(model, prompt.clone(), n)
    except ValueError as exc:
        if _raised(exc) is None:
            raise
        return {"raised": _raised(exc)}
    finally:
        hook.remove()
    return {"tokens": as_tensor(out, "the result"), "gradients on during a forward": any(grad_modes),
            "a forward saw a whole block_size window": max(lengths, default=0) == model.config.block_size}


@check("generate_greedy", mistakes=GREEDY)
def check_generate_greedy(generate_greedy) -> None:
    """Exercise 1: the loop - crop to block_size, eval mode, no_grad, argmax, append."""
    compare(generate_greedy, _reference_greedy, _greedy_cases(), name="generate_greedy",
            run=_run_greedy, mistakes=GREEDY)


# ---- exercise 2: the KV cache ----------------------------------------------------------------


class _Spy:
    """Passes the model's calls on to the learner's cache and records what happens."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        self.returned: list[tuple[int, int]] = []

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
        k_all = as_tensor(k_all, "the keys update returns")
        v_all = as_tensor(v_all, "the values update returns")
        self.returned.append((int(k_all.shape[2]), int(v_all.shape[2])))
        for what, t in (("keys", k_all), ("values", v_all)):
            _returned_positions(what, int(t.shape[2]) if t.dim() == 4 else None, before,
                                int(k.shape[2]), self.cache)
        return k_all, v_all

    def advance(self, n: int) -> None:
        self.cache.advance(n)


_ONLY_NEW = ("update returned only the new token's keys and values: return every filled position, "
             "self.k[layer][:, :, :pos + T] (and the same for v), so the query sees the past")
_WHOLE_BUFFER = ("update returned all max_len positions, the empty (zero) ones too, so attention also "
                 "looks at keys that were never written: return the filled ones only, "
                 "self.k[layer][:, :, :pos + T]")


def _returned_positions(what: str, n: int | None, pos: int, T: int, cache: Any) -> None:
    """After a chunk of ``T`` tokens at ``pos``, update must return positions ``0 .. pos + T - 1``."""
    if n is None or n == pos + T:
        return
    if n == T:
        raise CheckFailed(_ONLY_NEW)
    if n == getattr(cache, "max_len", None):
        raise CheckFailed(_WHOLE_BUFFER)
    held = f"a {T}-token chunk at pos {pos}" if pos else f"a {T}-token prefill"
    raise CheckFailed(f"update returned {what} for {n} position{'s' * (n != 1)} after {held}, "
                      f"expected {pos + T}: return positions 0 .. pos + T - 1, "
                      "self.k[layer][:, :, :pos + T] (and the same for v)")


class _KV:
    """The lesson's solution, the base of the table's wrong caches."""

    def __init__(self, n_layer, batch_size, n_head, max_len, head_size):
        self.max_len = max_len
        self.pos = 0
        shape = (batch_size, n_head, max_len, head_size)
        self.k = [torch.zeros(shape) for _ in range(n_layer)]
        self.v = [torch.zeros(shape) for _ in range(n_layer)]

    def check_room(self, batch_size, n_new):
        if self.pos + n_new > self.max_len:
            raise ValueError(f"KV cache overflow: {self.pos} + {n_new} > {self.max_len}")

    def update(self, layer, k, v):
        end = self.pos + k.shape[2]
        self.k[layer][:, :, self.pos:end] = k
        self.v[layer][:, :, self.pos:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def advance(self, n):
        self.pos += n

    def reset(self):
        self.pos = 0


class _KvShared(_KV):  # [torch.zeros(shape)] * n_layer: one tensor in every slot
    def __init__(self, n_layer, batch_size, n_head, max_len, head_size):
        super().__init__(n_layer, batch_size, n_head, max_len, head_size)
        shape = (batch_size, n_head, max_len, head_size)
        self.k = [torch.zeros(shape)] * n_layer
        self.v = [torch.zeros(shape)] * n_layer


class _KvOnlyNew(_KV):
    def update(self, layer, k, v):
        end = self.pos + k.shape[2]
        self.k[layer][:, :, self.pos:end] = k
        self.v[layer][:, :, self.pos:end] = v
        return k, v


class _KvMovesPos(_KV):  # advances inside update
    def update(self, layer, k, v):
        out = super().update(layer, k, v)
        self.pos += k.shape[2]
        return out

    def advance(self, n):
        pass


class _KvSetsPos(_KV):  # pos = n instead of pos += n
    def advance(self, n):
        self.pos = n


class _KvNoAdvance(_KV):
    def advance(self, n):
        pass


class _KvWritesAtZero(_KV):  # writes the chunk at positions 0 .. T - 1
    def update(self, layer, k, v):
        T = k.shape[2]
        self.k[layer][:, :, :T] = k
        self.v[layer][:, :, :T] = v
        return self.k[layer][:, :, :self.pos + T], self.v[layer][:, :, :self.pos + T]


class _KvValuesIntoKeys(_KV):  # a copy-paste slip: the values go into self.k
    def update(self, layer, k, v):
        end = self.pos + k.shape[2]
        self.k[layer][:, :, self.pos:end] = k
        self.k[layer][:, :, self.pos:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


class _KvWholeBuffer(_KV):  # returns every max_len position, the empty ones too
    def update(self, layer, k, v):
        super().update(layer, k, v)
        return self.k[layer], self.v[layer]


class _KvTimeSecond(_KV):  # buffers laid out (B, max_len, n_head, hs)
    def __init__(self, n_layer, batch_size, n_head, max_len, head_size):
        super().__init__(n_layer, batch_size, n_head, max_len, head_size)
        shape = (batch_size, max_len, n_head, head_size)
        self.k = [torch.zeros(shape) for _ in range(n_layer)]
        self.v = [torch.zeros(shape) for _ in range(n_layer)]


class _KvOnePosition(_KV):  # [:, :, :pos + 1]: right for one token, not for a prefill
    def update(self, layer, k, v):
        super().update(layer, k, v)
        return self.k[layer][:, :, :self.pos + 1], self.v[layer][:, :, :self.pos + 1]


class _KvGrows(_KV):  # allocates nothing: a list of None, then torch.cat at every update
    def __init__(self, n_layer, batch_size, n_head, max_len, head_size):
        self.max_len, self.pos = max_len, 0
        self.k, self.v = [None] * n_layer, [None] * n_layer

    def update(self, layer, k, v):
        if self.k[layer] is None or self.pos == 0:
            self.k[layer], self.v[layer] = k, v
        else:
            self.k[layer] = torch.cat([self.k[layer][:, :, :self.pos], k], dim=2)
            self.v[layer] = torch.cat([self.v[layer][:, :, :self.pos], v], dim=2)
        return self.k[layer], self.v[layer]


class _KvStartsEmpty(_KvGrows):  # (B, n_head, 0, head_size) tensors, grown with torch.cat
    def __init__(self, n_layer, batch_size, n_head, max_len, head_size):
        super().__init__(n_layer, batch_size, n_head, max_len, head_size)
        self.k = [torch.zeros(batch_size, n_head, 0, head_size) for _ in range(n_layer)]
        self.v = [torch.zeros(batch_size, n_head, 0, head_size) for _ in range(n_layer)]


class _KvWritesOne(_KV):  # writes one position: right for a decoding step, not for a prefill
    def update(self, layer, k, v):
        self.k[layer][:, :, self.pos:self.pos + 1] = k[:, :, -1:]
        self.v[layer][:, :, self.pos:self.pos + 1] = v[:, :, -1:]
        end = self.pos + k.shape[2]
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


class _KvHeadsAsTime(_KV):  # T read from dim 1, the heads
    def update(self, layer, k, v):
        end = self.pos + k.shape[1]
        self.k[layer][:, :, self.pos:end] = k
        self.v[layer][:, :, self.pos:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


class _KvReturnsVK(_KV):  # (values, keys)
    def update(self, layer, k, v):
        k_all, v_all = super().update(layer, k, v)
        return v_all, k_all


_ALLOCATE = ("allocate self.k[layer] and self.v[layer] once, in __init__, as zeros of shape "
             "(batch_size, n_head, max_len, head_size); update writes into them, it does not grow "
             "them with torch.cat")
_TIME_BEFORE_HEADS = ("the buffers are laid out like k and v, (batch_size, n_head, max_len, "
                      "head_size): positions are dim 2, so write self.k[layer][:, :, pos:pos + T] = k")


def _allocated(cache: Any, n_layer: int, shape: tuple[int, int, int, int]) -> None:
    """Right after ``__init__``: one ``(batch_size, n_head, max_len, head_size)`` tensor per layer."""
    B, H, L, hs = shape
    for name in ("k", "v"):
        buffers = getattr(cache, name)
        try:
            found = [buffers[i] for i in range(n_layer)]
        except (TypeError, IndexError, KeyError):
            raise CheckFailed(f"self.{name} should be a list of n_layer = {n_layer} tensors, got "
                              f"{type(buffers).__name__}: {_ALLOCATE}") from None
        for i, t in enumerate(found):
            if not isinstance(t, torch.Tensor):
                found_here = "None" if t is None else f"a {type(t).__name__}, not a tensor,"
                raise CheckFailed(f"self.{name}[{i}] is {found_here} after __init__: {_ALLOCATE}")
            if tuple(t.shape) == (B, L, H, hs) and H != L:
                raise CheckFailed(_TIME_BEFORE_HEADS)
            if tuple(t.shape) != shape:
                raise CheckFailed(f"self.{name}[{i}] has shape {tuple(t.shape)} after __init__, "
                                  f"expected {shape}: {_ALLOCATE}")


_ADVANCE = ("advance(n) must add n to pos (self.pos += n): otherwise the next chunk runs at the "
            "wrong positions and overwrites the cache")

KV_CACHE = [
    Mistake("one tensor shared by the layers", _KvShared, hint="every layer wrote into the same "
            "tensor: write k and v into *this* layer's tensors (self.k[layer]), not a shared one; "
            "[torch.zeros(shape)] * n_layer puts one tensor in every slot, build the list with a "
            "comprehension"),
    Mistake("returns only the new keys", _KvOnlyNew, hint=_ONLY_NEW),
    Mistake("returns the whole buffer", _KvWholeBuffer, hint=_WHOLE_BUFFER),
    Mistake("returns one position too few", _KvOnePosition, expect="update returned keys for 1 "
            "position after a 6-token prefill, expected 6: return positions 0 .. pos + T - 1"),
    Mistake("grows with torch.cat", _KvGrows, hint=_ALLOCATE),
    Mistake("starts from empty tensors", _KvStartsEmpty, hint=_ALLOCATE),
    Mistake("time before heads", _KvTimeSecond, hint=_TIME_BEFORE_HEADS),
    Mistake("update moves pos", _KvMovesPos, expect="update must not move pos"),
    Mistake("pos = n", _KvSetsPos, hint=_ADVANCE),
    Mistake("advance does nothing", _KvNoAdvance, hint=_ADVANCE),
    Mistake("writes at position 0", _KvWritesAtZero, hint="write the chunk's keys and values at "
            "positions pos .. pos + T - 1 (self.k[layer][:, :, pos:pos + T] = k), not from 0"),
    Mistake("writes one position", _KvWritesOne, hint="a chunk of T tokens fills T positions: "
            "write all of them, self.k[layer][:, :, pos:pos + T] = k with T = k.shape[2] (a "
            "prefill has T > 1)"),
    Mistake("T from the heads' dim", _KvHeadsAsTime, hint="k and v are (B, n_head, T, "
            "head_size): the chunk's length is T = k.shape[2], not k.shape[1] (the heads)"),
    Mistake("returns (v, k)", _KvReturnsVK, hint="return the keys first, then the values: "
            "(self.k[layer][:, :, :pos + T], self.v[layer][:, :, :pos + T])"),
    Mistake("values stored in the keys", _KvValuesIntoKeys, hint="store the new values in "
            "self.v[layer] as you do the keys in self.k[layer], and return both"),
]


def _kv_cases() -> list[Case]:
    return [
        Case("learned positions, batch 2: prefill 6 tokens, 7 decoding steps, reset, refill 5, "
             "1 step", dict(block_size=16), 2, [6], 7, 5),
        Case("rotary positions, batch 1: prefill in two chunks of 3 and 4, 4 steps, reset, refill 9",
             dict(block_size=16, pos="rope"), 1, [3, 4], 4, 9),
        Case("learned positions, batch 3, max_len 10 filled exactly: prefill 1, 9 steps",
             dict(block_size=10), 3, [1], 9, 2),
    ]


def _run_kv(KVCache: Any, case: Case) -> dict[str, Any]:
    kw, batch, chunks, steps, refill = case.args
    model = _model(**kw).eval()
    cfg = model.config
    cache = KVCache(cfg.n_layer, batch, cfg.n_head, cfg.block_size, cfg.head_size)
    require(getattr(cache, "k", None), "self.k")  # the __init__ fill-in, still None
    require(getattr(cache, "v", None), "self.v")
    _allocated(cache, cfg.n_layer, (batch, cfg.n_head, cfg.block_size, cfg.head_size))
    spy = _Spy(cache)
    ids = _prompt(batch, sum(chunks) + refill, seed=11)
    obs: dict[str, Any] = {"pos after each forward": [], "positions update returned (k, v)": []}
    logits_seen = []

    def forward(chunk: torch.Tensor) -> torch.Tensor:
        spy.returned.clear()
        logits, _ = model(chunk, kv_cache=spy)
        obs["pos after each forward"].append(cache.pos)
        obs["positions update returned (k, v)"].append(list(spy.returned))
        logits_seen.append(logits[:, -1])
        return logits[:, -1]

    with torch.no_grad():
        at = 0
        for n in chunks:
            last = forward(ids[:, at:at + n])
            at += n
        for _ in range(steps):
            last = forward(last.argmax(-1, keepdim=True))
        reset = getattr(cache, "reset", None)
        if reset is not None:
            reset()
            last = forward(ids[:, -refill:])
            if cache.pos < cfg.block_size:
                forward(last.argmax(-1, keepdim=True))
    obs["the logits of each forward's last position"] = torch.stack(logits_seen, dim=1)
    return obs


def _package_cache(n_layer, batch_size, n_head, max_len, head_size):
    return _PackageKVCache(n_layer, batch_size, n_head, max_len, head_size)


@check("KVCache", mistakes=KV_CACHE)
def check_kv_cache(KVCache) -> None:
    """Exercise 2: the learner's cache, used by the package's GPT, against the package's cache
    over a sequence of forwards (prefill, decoding steps, reset, refill). Its tensors must be
    allocated in ``__init__``, ``(batch_size, n_head, max_len, head_size)`` per layer, and each
    update must return positions ``0 .. pos + T - 1``."""
    compare(KVCache, _package_cache, _kv_cases(), name="the cached forwards", run=_run_kv,
            mistakes=KV_CACHE)


# ---- exercise 3: the cached loop -------------------------------------------------------------


def _reference_cached(model, idx, max_new_tokens, *, mistake=None):
    block_size = model.config.block_size
    if mistake != "no_eval":
        model.eval()
    step_logits = []
    full = block_size - 1 if mistake == "reset_early" else block_size
    with torch.set_grad_enabled(mistake == "grad_on"):
        cache = model.new_kv_cache(batch_size=idx.shape[0])
        logits, _ = model(idx[:, -block_size:], kv_cache=cache)
        for _ in range(max_new_tokens):
            last = logits[:, -1, :]
            step_logits.append(last)
            idx = torch.cat([idx, last.argmax(dim=-1, keepdim=mistake != "flat_argmax")], dim=1)
            if mistake == "recompute":
                logits, _ = model(idx[:, -block_size:])
            elif mistake == "whole":
                logits, _ = model(idx, kv_cache=cache)
            elif cache.pos >= full and mistake != "no_reset":
                cache.reset()
                chunk = (idx[:, -1:] if mistake == "reset_only" else
                         idx[:, :block_size] if mistake == "refill_front" else idx[:, -block_size:])
                logits, _ = model(chunk, kv_cache=cache)
            elif mistake == "cache not passed":
                logits, _ = model(idx[:, -1:])
            else:
                logits, _ = model(idx[:, -1:], kv_cache=cache)
    if mistake == "probs":
        step_logits = [torch.softmax(s, dim=-1) for s in step_logits]
    if mistake == "late_logits":
        step_logits = step_logits[1:] + [logits[:, -1]]
    if mistake == "tokens_only":
        return idx
    if mistake == "cat":
        return idx, torch.cat(step_logits, dim=1)
    return idx, torch.stack(step_logits, dim=1)


def _gc(mistake: str) -> Callable[..., Any]:
    def generate_cached(model, idx, max_new_tokens):
        return _reference_cached(model, idx, max_new_tokens, mistake=mistake)
    return generate_cached


def _gc_recompute(model, idx, max_new_tokens):
    return _reference_cached(model, idx, max_new_tokens, mistake="recompute")


def _gc_no_reset(model, idx, max_new_tokens):
    return _reference_cached(model, idx, max_new_tokens, mistake="no_reset")


def _gc_whole(model, idx, max_new_tokens):
    return _reference_cached(model, idx, max_new_tokens, mistake="whole")


def _gc_reset_only(model, idx, max_new_tokens):
    return _reference_cached(model, idx, max_new_tokens, mistake="reset_only")


def _gc_late_logits(model, idx, max_new_tokens):
    return _reference_cached(model, idx, max_new_tokens, mistake="late_logits")


def _gc_tokens_only(model, idx, max_new_tokens):
    return _reference_cached(model, idx, max_new_tokens, mistake="tokens_only")


def _gc_no_eval(model, idx, max_new_tokens):
    return _reference_cached(model, idx, max_new_tokens, mistake="no_eval")


def _gc_grad_on(model, idx, max_new_tokens):
    return _reference_cached(model, idx, max_new_tokens, mistake="grad_on")


CACHED = [
    Mistake("no cache", _gc_recompute, hint="the forwards all ran the whole window: after the "
            "prefill feed only the newest token, idx[:, -1:], and let the cache supply the past"),
    Mistake("no reset when full", _gc_no_reset, hint="the cache overflowed: after the prefill feed "
            "only the newest token, idx[:, -1:], and when cache.pos reaches block_size, call "
            "cache.reset() and prefill it again with the last block_size tokens; "
            f"compare {_OWN_BLOCK}"),
    Mistake("feeds the whole sequence", _gc_whole, expect="the cache overflowed: after the prefill "
            "feed only the newest token, idx[:, -1:]"),
    Mistake("reset without refill", _gc_reset_only, hint="after cache.reset() the cache is empty: "
            "prefill it again with the last block_size tokens, idx[:, -block_size:], not only the "
            "newest one"),
    Mistake("logits one step late", _gc_late_logits, hint="logits[:, s] should be the last "
            "position's logits of step s, the ones the token of that step was chosen from"),
    Mistake("returns the tokens only", _gc_tokens_only, expect="should return a pair (tokens, logits)"),
    Mistake("no model.eval()", _gc_no_eval, hint="the model stayed in training mode: call "
            "model.eval() first (with dropout on, training mode makes every run different)"),
    Mistake("gradients on", _gc_grad_on, hint="the model ran with gradients on: wrap the loop in "
            "torch.no_grad(); generating needs no backward and the graph costs memory"),
    Mistake("argmax without keepdim", _gc("flat_argmax"), hint="argmax(dim=-1) gives shape "
            "(B,), which torch.cat cannot put after idx (B, T): use argmax(dim=-1, keepdim=True), "
            "shape (B, 1)"),
    Mistake("cache not passed", _gc("cache not passed"), hint="a one-token forward without "
            "kv_cache=cache sees only that token, not the past: pass kv_cache=cache to every "
            "forward, the prefill and each step"),
    Mistake("torch.cat of the logits", _gc("cat"), hint="torch.cat joins the (B, V) logits of "
            "the steps end to end into (B, n * V); torch.stack(step_logits, dim=1) gives "
            "(B, n, V)"),
    Mistake("probabilities, not logits", _gc("probs"), hint="return the logits each token was "
            "chosen from (logits[:, -1, :]), not their softmax"),
    Mistake("refill from the front", _gc("refill_front"), hint="the refill after cache.reset() "
            "must hold the LAST block_size tokens, idx[:, -block_size:], not the first ones"),
    Mistake("reset one step early", _gc("reset_early"), hint="the cache was reset one step "
            "early: refill only when it is full, cache.pos == block_size"),
]


def _cached_cases() -> list[Case]:
    return [
        Case("generate_cached(model with block_size 10, idx (2, 6), 17): past the block twice",
             {}, _prompt(2, 6, seed=21), 17),
        Case("generate_cached(rotary model, idx (1, 12) longer than block_size 10, 5)",
             dict(pos="rope"), _prompt(1, 12, seed=22), 5),
        Case("generate_cached(model, idx (3, 2), 6): inside the block", {}, _prompt(3, 2, seed=23), 6),
        Case("generate_cached(model with untied, large weights, idx (2, 13), 12)", _VARIED,
             _prompt(2, 13, seed=24), 12),
    ]


def _run_cached(generate_cached: Any, case: Case) -> dict[str, Any]:
    kw, prompt, n = case.args
    model = _model(**kw).train()  # handed over in training mode: the loop must call eval()
    room = model.config.block_size - min(prompt.shape[1], model.config.block_size)
    forwards: list[int] = []
    modes: list[tuple[bool, bool]] = []

    def spy(module: Any, args: Any, _out: Any) -> None:
        forwards.append(args[0].shape[1])
        modes.append((module.training, torch.is_grad_enabled()))

    hook = model.register_forward_hook(spy)
    try:
        out = generate_cached(model, prompt.clone(), n)
    except ValueError as exc:
        if _raised(exc) is None:
            raise
        return {"raised": _raised(exc)}
    finally:
        hook.remove()
    tokens, logits = as_pair(out, "generate_cached", ("tokens", "logits"))
    return {"tokens": as_tensor(tokens, "tokens"), "logits": as_tensor(logits, "logits"),
            "one-token forwards before the cache is full": min(forwards.count(1), room, n - 1),
            "in training mode during a forward": any(m[0] for m in modes),
            "gradients on during a forward": any(m[1] for m in modes)}


@check("generate_cached", mistakes=CACHED)
@needs_earlier(KVCache=2)
def check_generate_cached(generate_cached) -> None:
    """Exercise 3: prefill, one token a step, reset and refill when the cache is full."""
    compare(generate_cached, _reference_cached, _cached_cases(), name="generate_cached",
            run=_run_cached, mistakes=CACHED)
