"""The sampling loop, plain: the reference to read before :func:`~llmcourse.generate.generate`.

Run the model on the last ``block_size`` tokens, take the logits of the last position, shape
them (temperature, then top-k, then top-p), draw one token, append it, repeat. Nothing else:
no KV cache, no batch of samples, no stop id, no checks. :func:`llmcourse.generate.generate`
is the engineered version beside it (a KV cache, a compiled step, a stop id, streaming, the
settings checked once) and gives the same tokens for the same seed and settings
(``tests/test_generate_reference.py``).

Example:
    >>> from llmcourse.model import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=1, n_embd=8)).eval()
    >>> out = sample(model, torch.tensor([[1, 2]]), 10, top_k=5,
    ...              generator=torch.Generator().manual_seed(0))
    >>> out.shape
    torch.Size([1, 12])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .sampling import top_k_filter, top_p_filter


@torch.no_grad()
def sample(model: nn.Module, idx: Tensor, max_new_tokens: int, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None,
           generator: torch.Generator | None = None) -> Tensor:
    """Append ``max_new_tokens`` sampled tokens to ``idx`` ``(B, T)``; ``temperature=0`` is greedy.

    Put the model in eval mode first (``model.eval()``): dropout would change the logits.
    """
    block_size = model.config.block_size
    for _ in range(max_new_tokens):
        idx_cond = idx[:, -block_size:]  # (B, <= block_size): the model's positions end there
        logits, _ = model(idx_cond)  # (B, T, V)
        logits = logits[:, -1, :].float()  # (B, V): only the last position predicts the next
        if temperature == 0:
            idx_next = logits.argmax(dim=-1, keepdim=True)  # (B, 1): greedy, no randomness
        else:
            logits = logits / temperature  # < 1 sharpens the distribution, > 1 flattens it
            if top_k is not None:
                logits = top_k_filter(logits, top_k)  # (B, V): the rest -inf
            if top_p is not None:
                logits = top_p_filter(logits, top_p)  # (B, V): the nucleus, the rest -inf
            probs = torch.softmax(logits, dim=-1)  # (B, V)
            idx_next = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
        idx = torch.cat([idx, idx_next], dim=1)  # (B, T + 1)
    return idx
