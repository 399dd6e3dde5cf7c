"""Text generation: sampling, the decoding loop with a KV cache, streaming, beam search.

A language model gives, for every position, *logits* over the vocabulary. To write text we
turn the logits of the last position into one next token, append it and run the model again.
One concept a module, in two tiers:

- :mod:`~llmcourse.generate.reference` - **the reference**: the sampling loop in about 25 plain
  lines (crop to ``block_size``, temperature, top-k, top-p, one draw), nanoGPT's size;
- :mod:`~llmcourse.generate.sampling` - :func:`apply_temperature`, :func:`top_k_filter`,
  :func:`top_p_filter`, :func:`min_p_filter`, :func:`apply_repetition_penalty`,
  :func:`sample_next` (penalty, temperature, top-k, top-p, min-p, then a draw);
- :mod:`~llmcourse.generate.decoding` - the loop, with the model's KV cache when it has one,
  and the one rule for the context window past ``block_size``;
- :mod:`~llmcourse.generate.settings` - :class:`Settings`, every generation option declared
  once, frozen and checked when made;
- :mod:`~llmcourse.generate.api` - :func:`generate` (the engineered loop: the same tokens as
  the reference, with a batch, several samples per prompt, a stop id) and :func:`stream`;
- :mod:`~llmcourse.generate.beam` - :func:`beam_search` with GNMT length normalisation;
- :mod:`~llmcourse.generate.compiled` - ``compile=True``: the cached one-token step compiled
  with ``torch.compile``, for speed.

Options are checked once, when a :class:`Settings` is made (``generate(..., top_k=40)`` makes
one from its keywords).
Any model that follows the package's model contract works: ``model(idx) -> (logits, loss)``
with ``logits`` ``(B, T, vocab_size)`` and a ``config`` with ``vocab_size`` and ``block_size``.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
    >>> sample_next(logits, temperature=0.0)
    tensor([[0]])
    >>> top_k_filter(logits, 2)
    tensor([[2., 1., -inf, -inf]])
"""

from . import reference
from .api import generate, stream
from .beam import BeamHypothesis, beam_search, gnmt_length_penalty
from .sampling import (Sampling, apply_repetition_penalty, apply_temperature, min_p_filter,
                       sample_next, top_k_filter, top_p_filter)
from .settings import Settings, end_of_text_id

__all__ = [
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "min_p_filter",
    "apply_repetition_penalty",
    "sample_next",
    "Sampling",
    "Settings",
    "end_of_text_id",
    "generate",
    "stream",
    "reference",
    "beam_search",
    "BeamHypothesis",
    "gnmt_length_penalty",
]
