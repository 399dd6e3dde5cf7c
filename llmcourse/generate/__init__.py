"""Text generation: sampling, the decoding loop with a KV cache, streaming, beam search.

A language model gives, for every position, *logits* over the vocabulary. To write text we
turn the logits of the last position into one next token, append it and run the model again.
One concept a module:

- :mod:`~llmcourse.generate.sampling` - :func:`apply_temperature`, :func:`top_k_filter`,
  :func:`top_p_filter`, :func:`min_p_filter`, :func:`apply_repetition_penalty`,
  :func:`sample_next` (penalty, temperature, top-k, top-p, min-p, then a draw);
- :mod:`~llmcourse.generate.decoding` - the loop, with the model's KV cache when it has one,
  and the one rule for the context window past ``block_size``;
- :mod:`~llmcourse.generate.api` - :func:`generate` (a batch, several samples per prompt,
  stopping at an end-of-text id, reproducible with a seed) and :func:`stream` (token by token);
- :mod:`~llmcourse.generate.beam` - :func:`beam_search` with GNMT length normalisation;
- :mod:`~llmcourse.generate.compiled` - ``compile=True``: the cached one-token step compiled
  with ``torch.compile``, for speed.

Arguments are checked once, at these public functions (:mod:`~llmcourse.generate.settings`).
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

from .api import generate, stream
from .beam import BeamHypothesis, beam_search, gnmt_length_penalty
from .sampling import (Sampling, apply_repetition_penalty, apply_temperature, min_p_filter,
                       sample_next, top_k_filter, top_p_filter)

__all__ = [
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "min_p_filter",
    "apply_repetition_penalty",
    "sample_next",
    "Sampling",
    "generate",
    "stream",
    "beam_search",
    "BeamHypothesis",
    "gnmt_length_penalty",
]
