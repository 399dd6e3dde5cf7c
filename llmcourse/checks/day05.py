"""Checks for day 05, "Embeddings and positions", and the reference sinusoidal table.

Each ``check_*`` function compares the learner's code (or the value they built) with a reference
on a small seeded battery of inputs, prints one line - a pass, a specific hint, or "not done
yet" - and returns ``True`` on a pass. None of them raises, so a check cell never stops a
notebook. Each exercise has a table of typical mistakes (``ONE_HOT``, ``SINUSOIDAL``,
``EMBEDDING``) from which the hints come.

:func:`sinusoidal_table` is the reference the lesson uses after its exercise 2, so that a learner
who skipped the exercise can run the rest of the notebook.

Example::

    >>> from llmcourse.checks import day05
    >>> day05.sinusoidal_table(2, 4)
    tensor([[0.0000, 1.0000, 0.0000, 1.0000],
            [0.8415, 0.5403, 0.0100, 0.9999]])
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from llmcourse.model.layers import sinusoidal_table
from llmcourse.checks._core import (Case, CheckFailed, Mistake, Raised, as_tensor, check, compare, layer,
                                    outputs_and_grads, require, same)

__all__ = ["sinusoidal_table", "check_one_hot_lookup", "check_sinusoidal", "check_embedding_module",
           "ONE_HOT", "SINUSOIDAL", "EMBEDDING"]


# ---- exercise 1: the lookup as a matrix product --------------------------------------------------

# The notebook's worked example: W = arange(15).reshape(5, 3), idx = [3, 0, 3].
_W = torch.arange(15, dtype=torch.float32).reshape(5, 3)
_IDX = torch.tensor([3, 0, 3])


def _value(name: str, emb: torch.Tensor, **words: str) -> Mistake:
    """A wrong ``emb`` for the notebook's worked example (the check takes the value, idx and W)."""
    return Mistake(name, emb, args=(emb, _IDX, _W), **words)


_ONE_HOT_IDX = F.one_hot(_IDX, 5).float()

ONE_HOT = [
    _value("the one-hot matrix itself", _ONE_HOT_IDX,
           hint="that is the one-hot matrix itself, shape (T, V); multiply it by W (one_hot @ W) to "
                "get (T, C)"),
    _value("transposed product", _W.T @ _ONE_HOT_IDX.T,
           hint="emb is (C, T), the transpose: compute one_hot(idx) @ W, (T, V) @ (V, C) -> (T, C)"),
    _value("integer product", F.one_hot(_IDX, 5) @ _W.long(),
           hint="emb holds integers: F.one_hot returns int64, convert it with .float() before the "
                "product (and keep W as it is)"),
    _value("summed over tokens", (_ONE_HOT_IDX @ _W).sum(0),
           hint="emb should keep one row per token, shape (T, C); do not sum (or average) over the "
                "tokens"),
    _value("a different idx", F.one_hot(torch.tensor([3, 0, 2]), 5).float() @ _W, expect="differs by up to"),
]


@check("one-hot lookup", mistakes=ONE_HOT, learner=("emb",))
def check_one_hot_lookup(emb: Any, idx: torch.Tensor, W: torch.Tensor) -> None:
    """Exercise 1: ``emb = F.one_hot(idx, V).float() @ W`` equals ``W[idx]`` (shape, dtype, values)."""
    require(emb, "emb")
    emb = as_tensor(emb, "emb")
    V, C = W.shape
    T = len(idx)
    want = W[idx]
    if same(emb, want, "emb") is None:
        return
    # the table's mistakes, recognised for whatever idx and W the notebook holds
    one_hot = F.one_hot(idx.long(), V).float()
    if tuple(emb.shape) == (T, V) and V != C and torch.equal(emb.float(), one_hot):
        raise CheckFailed(ONE_HOT[0].hint)
    if tuple(emb.shape) == (C, T) and (T != C or torch.allclose(emb.double(), want.T.double())):
        raise CheckFailed(ONE_HOT[1].hint)
    if tuple(emb.shape) == (T, C) and not emb.is_floating_point():
        raise CheckFailed(ONE_HOT[2].hint)
    if tuple(emb.shape) == (C,):
        raise CheckFailed(ONE_HOT[3].hint)
    why = same(emb, want, f"emb (should equal W[idx], shape {tuple(want.shape)})")
    if why:
        raise CheckFailed(why)


# ---- exercise 2: the sinusoidal table ------------------------------------------------------------


def _table(T: int, C: int, *, pos0: int = 0, pair_exp: float = 2.0, sign: float = -1.0,
           width: int | None = None) -> torch.Tensor:
    """The table with one ingredient changed (for the mistakes below), computed in float64."""
    pos = torch.arange(pos0, pos0 + T, dtype=torch.float64)[:, None]
    i = torch.arange(C // 2, dtype=torch.float64)
    freq = 10000.0 ** (sign * pair_exp * i / (width or C))
    pe = torch.empty(T, C, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return pe.float()


def _odd_ok(fn: Callable[[int, int], torch.Tensor]) -> Callable[[int, int], torch.Tensor]:
    def table(T, C):
        if C % 2:
            raise ValueError(f"C must be even, got {C}")
        return fn(T, C)
    return table


def _sin_swapped(T, C):
    pe = _table(T, C)
    return torch.stack([pe[:, 1::2], pe[:, 0::2]], dim=-1).reshape(T, C)


def _sin_halves(T, C):
    pe = _table(T, C)
    return torch.cat([pe[:, 0::2], pe[:, 1::2]], dim=1)


def _sin_no_odd_check(T, C):
    pe = torch.zeros(T, C)
    pe[:, 0::2] = _table(T, C + C % 2)[:, 0::2]
    pe[:, 1::2] = _table(T, C + C % 2)[:, 1::2][:, :C // 2]
    return pe


def _sin_float64(T, C):
    if C % 2:
        raise ValueError("C must be even")
    return _table(T, C).double()


def _sin_odd_crash(T, C):  # the lesson's code without the C % 2 test: torch fails on an odd C
    pos = torch.arange(T, dtype=torch.float32)[:, None]
    freq = 10000.0 ** (-torch.arange(0, C, 2, dtype=torch.float32) / C)
    pe = torch.zeros(T, C)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


def _sin_int_division(T, C):  # arange(0, C, 2) // C: integer division, every exponent 0
    if C % 2:
        raise ValueError(f"C must be even, got {C}")
    pos = torch.arange(T, dtype=torch.float32)[:, None]
    freq = 10000.0 ** (-(torch.arange(0, C, 2) // C))
    pe = torch.zeros(T, C)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


def _sin_positions_row(T, C):  # arange(T) without [:, None]: (T,) * (C/2,) does not broadcast
    if C % 2:
        raise ValueError(f"C must be even, got {C}")
    pos = torch.arange(T, dtype=torch.float32)
    freq = 10000.0 ** (-torch.arange(0, C, 2, dtype=torch.float32) / C)
    pe = torch.zeros(T, C)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


def _sin_odd_index_for_cos(T, C):  # the cosines use the odd column index 2i + 1 in the exponent
    if C % 2:
        raise ValueError(f"C must be even, got {C}")
    pos = torch.arange(T, dtype=torch.float32)[:, None]
    pe = torch.zeros(T, C)
    pe[:, 0::2] = torch.sin(pos * 10000.0 ** (-torch.arange(0, C, 2, dtype=torch.float32) / C))
    pe[:, 1::2] = torch.cos(pos * 10000.0 ** (-torch.arange(1, C, 2, dtype=torch.float32) / C))
    return pe


def _sin_assert_even(T, C):  # refuses an odd C with assert instead of ValueError
    assert C % 2 == 0, "C must be even"
    return _table(T, C)


_ODD_C = ("an odd C should raise ValueError: with an odd C the last sine has no cosine partner "
          "(check C % 2 first)")

SINUSOIDAL = [
    Mistake("sin and cos swapped", _odd_ok(_sin_swapped),
            hint="sines and cosines are swapped: sin goes into the even columns 0, 2, 4, ..., cos "
                 "into the odd ones"),
    Mistake("halves, not interleaved", _odd_ok(_sin_halves),
            hint="the sines fill the first half of the columns and the cosines the second; "
                 "interleave them instead: pe[:, 0::2] = sin, pe[:, 1::2] = cos"),
    Mistake("i/C exponent", _odd_ok(lambda T, C: _table(T, C, pair_exp=1.0)),
            hint="the frequencies are off: column pair i uses 1 / 10000**(2i / C), where 2i is the "
                 "even column index (torch.arange(0, C, 2))"),
    Mistake("positive exponent", _odd_ok(lambda T, C: _table(T, C, sign=1.0)),
            hint="the frequencies should decrease from pair to pair: divide the position by "
                 "10000**(2i / C) (a negative exponent), do not multiply"),
    Mistake("positions from 1", _odd_ok(lambda T, C: _table(T, C, pos0=1)),
            hint="positions should start at 0, not 1: use torch.arange(T)"),
    Mistake("notebook's n_embd", _odd_ok(lambda T, C: _table(T, C, width=16)),
            hint="use the argument C in the exponent (2i / C), not the notebook's n_embd"),
    Mistake("no ValueError for odd C", _sin_no_odd_check,
            hint="an odd C should raise ValueError: with an odd C the last sine has no cosine "
                 "partner (check C % 2 first)"),
    Mistake("float64 table", _sin_float64, expect="dtype float64, expected float32"),
    Mistake("exponent not divided by C", _odd_ok(lambda T, C: _table(T, C, width=1)),
            hint="the exponent is not divided by C: column pair i uses 1 / 10000**(2i / C); without "
                 "the / C every pair after the first has a frequency of almost 0"),
    Mistake("2i doubled", _odd_ok(lambda T, C: _table(T, C, pair_exp=4.0)),
            hint="torch.arange(0, C, 2) already gives the even column index 2i: use "
                 "10000 ** (arange(0, C, 2) / C), do not multiply by 2 again"),
    Mistake("odd C not checked", _sin_odd_crash, hint=_ODD_C),
    Mistake("integer division in the exponent", _sin_int_division,
            hint="every column pair has the same frequency: arange(0, C, 2) // C is integer division "
                 "(always 0); divide with /, 10000 ** (-arange(0, C, 2) / C)"),
    Mistake("positions not a column", _sin_positions_row,
            hint="pos * freq must broadcast to (T, C/2): make the positions a column, "
                 "torch.arange(T)[:, None] (T, 1), times the frequencies (C/2,)"),
    Mistake("cos with the odd index", _sin_odd_index_for_cos,
            hint="the cosine of pair i uses the same frequency as its sine, 1 / 10000**(2i / C): "
                 "compute freq once from arange(0, C, 2), not from arange(1, C, 2) for the cosines"),
    Mistake("assert for odd C", _sin_assert_even,
            expect="refused the odd C with assert (AssertionError); raise ValueError(...) instead"),
]


def _sin_cases() -> list[Case]:
    return [Case(f"sinusoidal_positions({T}, {C})", T, C)
            for T, C in ((50, 16), (33, 20), (10, 8), (3, 2), (1, 64), (7, 6), (4, 7), (2, 1))]


def _reference_sinusoidal(T: int, C: int) -> Any:
    try:
        return sinusoidal_table(T, C)
    except ValueError as exc:  # an odd C: the learner's code must raise ValueError too
        return Raised(exc)


def _pe(value: Any, case: Case) -> Any:
    return value if isinstance(value, Raised) else as_tensor(value, case.label)


_S_ASSERT = next(m for m in SINUSOIDAL if m.name == "assert for odd C")


def _run_sin(impl: Any, case: Case) -> Any:
    """``impl(T, C)``; for an odd C any exception other than ValueError is named here."""
    (T, C), _ = case.fresh()
    try:
        return impl(T, C)
    except (NotImplementedError, CheckFailed, ValueError):
        raise
    except Exception as exc:  # noqa: BLE001 - an odd C refused with the wrong exception
        if not C % 2:
            raise
        if isinstance(exc, AssertionError):
            raise CheckFailed(f"{_S_ASSERT.expect}, as the exercise asks (asserts vanish under "
                              f"python -O) (on {case.label})") from exc
        raise CheckFailed(f"{_ODD_C} (your code raised {type(exc).__name__}: {str(exc)[:100]} "
                          f"on {case.label})") from exc


@check("sinusoidal positions", mistakes=SINUSOIDAL)
def check_sinusoidal(sinusoidal_positions: Callable[[int, int], Any]) -> None:
    """Exercise 2: the ``(T, C)`` float32 table, sin in even columns, cos in odd ones.

    An odd ``C`` must raise ``ValueError``.
    """
    compare(sinusoidal_positions, _reference_sinusoidal, _sin_cases(), name="the table", run=_run_sin,
            mistakes=SINUSOIDAL, read=_pe, atol=5e-5)


# ---- exercise 3: the embedding module ------------------------------------------------------------


class _ReferenceEmbedding(nn.Module):
    def __init__(self, vocab_size: int, block_size: int, n_embd: int) -> None:
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        nn.init.normal_(self.wte.weight, std=0.02)
        nn.init.normal_(self.wpe.weight, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError(f"T={T} > block_size={self.block_size}: crop the input")
        return F.embedding(idx.long(), self.wte.weight) + self.wpe.weight[:T]


class _DefaultInit(_ReferenceEmbedding):
    def __init__(self, vocab_size, block_size, n_embd):
        nn.Module.__init__(self)
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)


class _MeanNotStd(_ReferenceEmbedding):       # nn.init.normal_(w, 0.02): the second argument is the mean
    def __init__(self, vocab_size, block_size, n_embd):
        nn.Module.__init__(self)
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        nn.init.normal_(self.wte.weight, 0.02)
        nn.init.normal_(self.wpe.weight, 0.02)


class _OnlyWte(_ReferenceEmbedding):           # re-initialised the token table only
    def __init__(self, vocab_size, block_size, n_embd):
        nn.Module.__init__(self)
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        nn.init.normal_(self.wte.weight, std=0.02)


class _NoPositions(_ReferenceEmbedding):
    def forward(self, idx):
        if idx.shape[1] > self.block_size:
            raise ValueError("crop")
        return self.wte(idx)


class _NoLengthCheck(_ReferenceEmbedding):
    def forward(self, idx):
        return self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))


class _AllPositions(_ReferenceEmbedding):      # positions 0 .. block_size - 1 whatever T is
    def forward(self, idx):
        if idx.shape[1] > self.block_size:
            raise ValueError("crop")
        return self.wte(idx) + self.wpe(torch.arange(self.block_size, device=idx.device))


class _BatchAsTime(_ReferenceEmbedding):       # T = idx.shape[0]
    def forward(self, idx):
        T = idx.shape[0]
        if T > self.block_size:
            raise ValueError("crop")
        return self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))[:, None, :]


class _PositionsFrom1(_ReferenceEmbedding):
    def forward(self, idx):
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError("crop")
        return self.wte(idx) + self.wpe(torch.arange(1, T + 1, device=idx.device) % self.block_size)


class _PositionsFromIds(_ReferenceEmbedding):  # the token ids used as positions
    def forward(self, idx):
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError("crop")
        return self.wte(idx) + self.wpe(idx)


class _AssertLength(_ReferenceEmbedding):
    def forward(self, idx):
        assert idx.shape[1] <= self.block_size, "sequence too long"
        return self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))


class _VagueError(_ReferenceEmbedding):       # a ValueError, but it does not say what to do
    def forward(self, idx):
        if idx.shape[1] > self.block_size:
            raise ValueError("bad input")
        return self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))


class _Concatenated(_ReferenceEmbedding):
    def forward(self, idx):
        B, T = idx.shape
        if T > self.block_size:
            raise ValueError("crop")
        pos = self.wpe(torch.arange(T, device=idx.device)).expand(B, T, -1)
        return torch.cat([self.wte(idx), pos], dim=-1)


class _RaisesAtBlockSize(_ReferenceEmbedding):  # T >= block_size: a full block is refused
    def forward(self, idx):
        T = idx.shape[1]
        if T >= self.block_size:
            raise ValueError(f"T={T} >= block_size={self.block_size}: crop the input")
        return self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))


class _ScaledTokens(_ReferenceEmbedding):      # the original Transformer's sqrt(C) scale
    def forward(self, idx):
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError("crop")
        scale = self.wte.embedding_dim ** 0.5
        return self.wte(idx) * scale + self.wpe(torch.arange(T, device=idx.device))


class _CpuPositions(_ReferenceEmbedding):      # torch.arange(T) on the CPU, whatever idx's device
    def forward(self, idx):
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError("crop")
        return self.wte(idx) + self.wpe(torch.arange(T))


_AT_BLOCK_SIZE = ("a sequence of exactly block_size tokens was refused: it fits (positions 0 .. "
                  "block_size - 1); raise only when T > block_size")
_CPU_POSITIONS = ("the positions are made on the CPU whatever idx's device, so on a GPU the lookup "
                  "fails: create them with torch.arange(T, device=idx.device)")

_DEFAULT_INIT = ("has the default initialisation (std 1); re-initialise it with "
                 "nn.init.normal_(weight, mean=0.0, std=0.02)")
_MEAN_NOT_STD = ("has mean 0.02 and std 1: nn.init.normal_(weight, 0.02) sets the MEAN; pass the "
                 "standard deviation by name, nn.init.normal_(weight, mean=0.0, std=0.02)")

EMBEDDING = [
    Mistake("wpe(idx)", _PositionsFromIds,
            hint="the position table was indexed with the token ids (self.wpe(idx)); it is indexed "
                 "with the positions 0 .. T - 1: self.wpe(torch.arange(T, device=idx.device))"),
    Mistake("assert for the length", _AssertLength,
            hint="for T > block_size raise a ValueError (raise ValueError(...)), not an assert: an "
                 "assert disappears under python -O and gives no hint to crop the input"),
    Mistake("concatenated", _Concatenated,
            hint="the token and position vectors were concatenated (2 * n_embd columns); add them: "
                 "self.wte(idx) + self.wpe(pos), shape (B, T, n_embd)"),
    Mistake("default init", _DefaultInit, hint=_DEFAULT_INIT),
    Mistake("normal_(w, 0.02) sets the mean", _MeanNotStd, hint=_MEAN_NOT_STD),
    Mistake("wpe not re-initialised", _OnlyWte, expect="self.wpe " + _DEFAULT_INIT),
    Mistake("no positions", _NoPositions,
            hint="the output equals the token vectors alone: add the position vectors "
                 "self.wpe(torch.arange(T))"),
    Mistake("no length check", _NoLengthCheck,
            hint="for T > block_size the lookup fails with IndexError from deep inside nn.Embedding; "
                 "check T first and raise a ValueError that says to crop the input to its last "
                 "block_size tokens"),
    Mistake("block_size positions", _AllPositions,
            hint="add the position vectors of positions 0 .. T - 1 only, torch.arange(T) with "
                 "T = idx.shape[1], not all block_size of them"),
    Mistake("T from the batch axis", _BatchAsTime,
            hint="idx is (B, T): the sequence length is idx.shape[1], not idx.shape[0]"),
    Mistake("positions from 1", _PositionsFrom1,
            hint="positions start at 0: use torch.arange(T), so the first token gets wpe row 0"),
    Mistake("ValueError that does not say what to do", _VagueError,
            expect="say what to do: e.g. crop the input to its last 8 tokens"),
    Mistake("raises when T == block_size", _RaisesAtBlockSize, expect=_AT_BLOCK_SIZE),
    Mistake("token vectors scaled by sqrt(n_embd)", _ScaledTokens,
            hint="the token vectors were scaled (by sqrt(n_embd)?): a GPT adds wte(idx) and the "
                 "position vectors as they are"),
    Mistake("positions on the CPU", _CpuPositions, expect=_CPU_POSITIONS),
]


def _emb_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    cases = []
    for V, bs, C, B, T, dtype in ((100, 16, 32, 2, 10, torch.long), (65, 8, 16, 3, 8, torch.long),
                                  (11, 5, 3, 1, 1, torch.long), (50, 12, 6, 4, 7, torch.int32)):
        idx = torch.randint(0, V, (B, T), generator=g).to(dtype)
        label = (f"TokenAndPositionEmbedding({V}, {bs}, {C}) on idx {str(dtype)[6:]} ({B}, {T}), then on "
                 f"a sequence of {bs + 1} > block_size")
        cases.append(Case(label, V, bs, C, idx))
    return cases


def _run_emb(impl: Any, case: Case) -> dict[str, Any]:
    (V, bs, C, idx), _ = case.fresh()
    torch.manual_seed(0)
    m = impl(V, bs, C)
    owner = f"TokenAndPositionEmbedding({V}, {bs}, {C})"
    for name, shape in (("wte", (V, C)), ("wpe", (bs, C))):
        if getattr(m, name, None) is None:
            raise NotImplementedError(f"self.{name} is missing")
        layer(m, name, nn.Embedding, shape=shape, owner=owner)
    g = torch.Generator().manual_seed(V * 1000 + bs)
    with torch.no_grad():  # the same weights for the learner and the reference
        m.wte.weight.copy_(torch.randn(V, C, generator=g))
        m.wpe.weight.copy_(torch.randn(bs, C, generator=g))
    try:
        out = m(idx)
    except ValueError as exc:
        if idx.shape[1] == bs:
            raise CheckFailed(f"{_AT_BLOCK_SIZE} (on {case.label})") from exc
        raise
    obs = outputs_and_grads(out, {"wte.weight": m.wte.weight, "wpe.weight": m.wpe.weight})
    try:
        m(torch.zeros(1, bs + 1, dtype=torch.long))
        obs["a sequence longer than block_size"] = "returned"
    except Exception as exc:  # noqa: BLE001 - which exception is the observation
        obs["a sequence longer than block_size"] = f"raised {type(exc).__name__}"
    return obs


def _init_stats(module_cls: Any) -> None:
    """Both tables of a large module are drawn with mean 0 and std 0.02."""
    torch.manual_seed(0)
    big = module_cls(2000, 64, 64)
    for name in ("wte", "wpe"):
        if getattr(big, name, None) is None:
            raise NotImplementedError(f"self.{name} is missing")
        layer(big, name, nn.Embedding, owner="TokenAndPositionEmbedding(2000, 64, 64)")
        w = getattr(big, name).weight.detach()
        std, mean = w.std().item(), w.mean().item()
        if abs(mean - 0.02) < 0.005 and abs(std - 1.0) < 0.1:
            raise CheckFailed(f"self.{name} {_MEAN_NOT_STD}")
        if abs(std - 1.0) < 0.1:
            raise CheckFailed(f"self.{name} {_DEFAULT_INIT}")
        if abs(std - 0.02) > 0.003 or abs(mean) > 0.003:
            raise CheckFailed(f"self.{name}.weight has mean {mean:.4f} and std {std:.4f}, expected 0 "
                              "and 0.02: use nn.init.normal_(weight, mean=0.0, std=0.02)")


# Words that tell the caller what to do with a too-long input (any one of them will do).
_FIX_WORDS = ("crop", "truncat", "trim", "shorten", "shorter", "reduc", "cut ", "keep", "drop", "at most",
              "no more than", "no longer than", "<=", "limit", "slice", "[:, -")


def _error_says_what_to_do(module_cls: Any) -> None:
    """The ValueError for a too-long sequence names the fix (crop, truncate, ...) or gives block_size."""
    block_size = 8
    m = module_cls(65, block_size, 16)
    try:
        m(torch.zeros(1, block_size + 1, dtype=torch.long))
    except ValueError as exc:
        message = " ".join(str(exc).split())
        says = any(word in message.lower() for word in _FIX_WORDS)
        if not says and str(block_size) not in message:
            raise CheckFailed(
                f"your ValueError for {block_size + 1} tokens with block_size={block_size} reads "
                f"{message!r}; say what to do: e.g. crop the input to its last {block_size} tokens")


class _DeviceMix(Exception):
    """Raised by :class:`_OneDevice` when an operation mixes tensors of two devices."""


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors in ``value``, looking into tuples, lists and dicts."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


# The operations that CUDA allows across devices: they move or copy a tensor to another one's
# device (pos.to(idx), pos.type_as(idx), buf.copy_(pos), idx.new_tensor(pos)).
_MOVES = frozenset({torch.Tensor.to, torch.Tensor.type_as, torch.Tensor.copy_, torch.Tensor.new_tensor})


class _OneDevice(TorchFunctionMode):
    """Refuse, as CUDA does, an operation that mixes tensors of two devices (0-d tensors and the
    moves of ``_MOVES`` aside)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _MOVES:
            return func(*args, **kwargs)
        devices = {t.device.type for t in _tensors((args, kwargs)) if t.dim() > 0}
        if len(devices) > 1:
            raise _DeviceMix(getattr(func, "__name__", str(func)))
        return func(*args, **kwargs)


def _positions_follow_idx(module_cls: Any) -> None:
    """The module on the 'meta' device, idx there too: positions made on the CPU mix devices.

    Without a GPU this shows what a GPU would: a tensor created without ``device=`` stays on the
    CPU. Anything else that fails on 'meta' (``.item()`` on the data) proves nothing and is let be.
    """
    m = module_cls(11, 5, 3)
    idx = torch.zeros(2, 4, dtype=torch.long, device="meta")
    try:
        m.to("meta")
        with _OneDevice():
            m(idx)
    except _DeviceMix as exc:
        raise CheckFailed(f"{_CPU_POSITIONS} (seen with the module and idx on another device than "
                          "the CPU)") from exc
    except Exception:  # noqa: BLE001 - not a device question
        pass


@check("TokenAndPositionEmbedding", mistakes=EMBEDDING)
def check_embedding_module(module_cls: Any) -> None:
    """Exercise 3: ``wte(idx) + wpe(arange(T))`` with its gradients, std 0.02 tables.

    A sequence longer than ``block_size`` must raise a ``ValueError`` that says what to do (its
    message says "crop" or names block_size).
    """
    compare(module_cls, _ReferenceEmbedding, _emb_cases(), name="TokenAndPositionEmbedding",
            run=_run_emb, mistakes=EMBEDDING, atol=1e-5)
    _error_says_what_to_do(module_cls)
    _init_stats(module_cls)
    _positions_follow_idx(module_cls)
