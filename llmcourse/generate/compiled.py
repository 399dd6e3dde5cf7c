"""A compiled decoding step: the model's one-token forward as a few fused loops.

Why. With batch 1, a cached decoding step multiplies one vector by every weight matrix, so it
must read every weight once: its floor is the weights' bytes over the machine's memory speed
(``benchmarks/bench_generate.py`` measures both). Run eagerly, a step stays far above that
floor for two reasons: about 25 small operations per layer, each paying microseconds of
dispatch, and, on some CPUs, a BLAS matrix-vector product that reads the weights far below the
memory speed (the book's performance page has the figures).

How. ``torch.compile`` traces :meth:`GPT.forward <llmcourse.model.GPT.forward>` for one new
token with a KV cache (the very code of the eager step: nothing is written twice) and Inductor
fuses the norms, residual adds, GELU and cache writes into a few loops. On the CPU two
operations are also written out as sums that Inductor then generates itself:

- a matrix product with few rows, ``x @ W.T`` with ``x`` ``(M, K)``, ``M <= MAX_ROWS``, as
  ``(x[:, :, None] * W.T).sum(1)``: one vectorised pass over every weight row, rows split
  across the threads, instead of the BLAS call;
- the attention of one query over the cached keys, ``softmax(q k^T * scale) v``, as two sums
  and a softmax, instead of a flash-attention kernel made for long sequences.

Only the one-token steps are compiled (the prefill and the refills after the window moves run
eagerly), so the compiler sees one shape, with the cache's fill level as a symbol (the attention tests
``T > 1`` before ``L == T``, so a one-token step adds no guard on the cache length): one graph
per model, batch size and dtype. Compiling takes seconds (Inductor keeps what it built on disk for
later processes) and needs a C++ compiler on the CPU; the compile time and the speed-up are
measured by ``benchmarks/bench_generate.py`` and reported on the book's performance page.

This module is the only one in the package that touches torch's private compiler settings
(:class:`CompiledStep`, :func:`run_step`); the eager path never imports it.

The sums are taken in another order than the eager kernels take them, so the logits differ by
rounding (about 1e-6): greedy tokens agree with the eager ones except at a near tie, and
``tests/test_generate_compiled.py`` checks them over long runs.

Example (not run here: it compiles)::

    >>> out = generate(model, prompt, 500, temperature=0, compile=True)   # doctest: +SKIP
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

# Up to this many rows (the batch size) a matrix product is written as a multiply-and-sum on
# the CPU; wider ones are real matrix products, where the BLAS is the better kernel
# (benchmarks/bench_generate.py's batch-8 modes compare the two).
MAX_ROWS = 8


class CompileError(RuntimeError):
    """The decoding step could not be compiled (the message says why, in one line)."""


_STEPS: "weakref.WeakKeyDictionary[nn.Module, Callable[..., Any]]" = weakref.WeakKeyDictionary()


def compiled_step(model: nn.Module) -> Callable[..., Any]:
    """``model``'s forward compiled for decoding (made on the first call, then kept per model).

    Compilation itself happens on the first call of the returned function.
    """
    step = _STEPS.get(model)
    if step is None:
        # The step reaches the model through a weak reference: torch.compile(model) would hold
        # it, and a value of _STEPS that holds its key keeps both alive for good (with the
        # model's memory, on a GPU too).
        model_ref = weakref.ref(model)

        def forward(*args: Any, **kwargs: Any) -> Any:
            return model_ref()(*args, **kwargs)

        # dynamic=True: the cache's fill level (and the batch size) become symbols from the first
        # compile on, instead of one graph for the first value and a second, general one.
        step = torch.compile(forward, backend=_backend, dynamic=True)
        _STEPS[model] = step
    return step


class CompiledStep:
    """A model's forward for the decoding loop: one-token cached steps compiled, the rest eager.

    Called like the model, ``step(new (B, t), kv_cache=cache, **kwargs)``. The prefill, the
    refills and the cache's first and last position run the model eagerly: their views (the
    whole tensor or one row) would each cost the compiler a graph of its own. The first
    compiled call of a decode checks torch's guards; later ones skip them (:func:`run_step`)
    until :meth:`new_batch`.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model, self.step = model, compiled_step(model)
        self.checked = False  # whether a compiled call of this decode has checked the guards

    def __call__(self, new: Tensor, *, kv_cache: Any, **kwargs: Any) -> Any:
        inside = 0 < kv_cache.pos < kv_cache.max_len - 1
        if new.shape[1] != 1 or not inside:
            return self.model(new, kv_cache=kv_cache, **kwargs)
        out = run_step(self.step, new, kv_cache=kv_cache, first=not self.checked, **kwargs)
        self.checked = True
        return out

    def new_batch(self) -> None:
        """The rows changed (beam search): the next compiled call checks the guards again."""
        self.checked = False


def run_step(step: Callable[..., Any], *args: Any, first: bool, **kwargs: Any) -> Any:
    """Call a compiled step; after the ``first`` call of a decode, without re-checking guards.

    ``torch.compile`` checks before every call that its inputs still match what it compiled for
    (dtypes, shapes, module attributes), a noticeable part of a small model's step
    (``benchmarks/profile_decode.py`` shows it). Within one decode nothing but the cache's fill
    level changes between steps, and that is a symbol of the graph, so the first step checks
    everything and the others do not.
    (So, between the tokens of a ``stream``, change the weights' values if you like, but not
    their dtype, device or shapes: the next decode, which checks again, is the place for that.)
    Compiling, the sizes that happen to be equal (say a cache of 129 positions and a token
    buffer 129 wide) are kept apart, or the graph would hold only while they stay equal.
    A failed compilation (no C++ compiler, for example) is one clear error.
    """
    try:
        if first:  # where a compilation happens; no "duck sizing": equal sizes stay two symbols
            with torch.fx.experimental._config.patch(use_duck_shape=False):
                return step(*args, **kwargs)
        with torch.compiler.set_stance(skip_guard_eval_unsafe=True):
            return step(*args, **kwargs)
    except Exception as err:  # torch's compile errors carry pages of context: keep one line
        if not type(err).__module__.startswith(("torch._dynamo", "torch._inductor")):
            raise
        cause = err  # the error under torch's wrappers (BackendCompilerFailed, InductorError)
        while getattr(cause, "inner_exception", None) is not None or cause.__cause__ is not None:
            cause = getattr(cause, "inner_exception", None) or cause.__cause__
        lines = str(cause).strip().splitlines()
        raise CompileError(
            f"compile=True could not compile the decoding step ({type(cause).__name__}: "
            f"{lines[0][:200] if lines else '?'}); on a CPU torch.compile needs a working C++ "
            f"compiler (g++ or clang). Decode without compile=True, or install one"
        ) from None


def _backend(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
    """Inductor, with the decompositions of the module docstring added."""
    from torch._inductor.compile_fx import compile_fx
    from torch._inductor.decomposition import select_decomp_table

    aten = torch.ops.aten
    table = dict(select_decomp_table())
    table[aten.mm.default] = _mm_rows
    table[aten.addmm.default] = _addmm_rows
    table[aten._scaled_dot_product_flash_attention_for_cpu.default] = _attend_one_query
    return compile_fx(gm, example_inputs, decompositions=table)


def _few_rows(x: Tensor) -> bool:
    return x.device.type == "cpu" and x.shape[0] <= MAX_ROWS


def _mm_rows(x: Tensor, w: Tensor, out_dtype: torch.dtype | None = None) -> Any:
    """``x @ w``, ``x`` ``(M, K)`` and ``w`` ``(K, N)``, as ``M x N`` sums over ``K``."""
    if out_dtype is not None or not _few_rows(x):
        return NotImplemented  # Inductor's own lowering (the BLAS)
    return (x[:, :, None] * w[None, :, :]).sum(1)  # (M, K, 1) * (1, K, N) -> (M, N)


def _addmm_rows(bias: Tensor, x: Tensor, w: Tensor, *, beta: float = 1, alpha: float = 1) -> Any:
    """``bias + x @ w`` (``F.linear`` with a bias), the same way."""
    if beta != 1 or alpha != 1:
        return NotImplemented
    product = _mm_rows(x, w)
    return product if product is NotImplemented else product + bias  # (M, N)


def _attend_one_query(q: Tensor, k: Tensor, v: Tensor, dropout_p: float = 0.0,
                      is_causal: bool = False, *, attn_mask: Tensor | None = None,
                      scale: float | None = None) -> Any:
    """CPU attention of one query per head over ``L`` keys: ``(output, logsumexp)``.

    ``q`` ``(B, nh, 1, hs)``, ``k`` and ``v`` ``(B, nh, L, hs)``; the same two results as
    torch's flash kernel, in float32 as it computes them.
    """
    if q.shape[2] != 1 or dropout_p or is_causal or attn_mask is not None:
        return NotImplemented
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = (q.float() * k.float()).sum(-1) * scale  # (B, nh, L)
    lse = torch.logsumexp(scores, dim=-1, keepdim=True)  # (B, nh, 1)
    weights = torch.exp(scores - lse)  # (B, nh, L), the softmax
    out = (weights[..., None] * v.float()).sum(-2, keepdim=True)  # (B, nh, 1, hs)
    return out.to(q.dtype), lse
