"""Day 10's causal self-attention, written out in full (the nanoGPT form).

:class:`PlainCausalSelfAttention` is the formula of day 09 for several heads at once and
nothing else: no grouped-query heads, no RoPE, no KV cache, no choice of kernel. The model uses
:class:`~llmcourse.model.CausalSelfAttention`, which adds those; with learned positions
and ``n_kv_head == n_head`` both compute the same function from the same weights
(``tests/test_model_reference.py`` checks outputs and gradients), so a state dict of one loads
into the other.

Example:
    >>> import torch
    >>> from llmcourse.model import CausalSelfAttention, GPTConfig
    >>> cfg = GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)
    >>> plain, engineered = PlainCausalSelfAttention(cfg), CausalSelfAttention(cfg)
    >>> _ = plain.load_state_dict(engineered.state_dict())   # the same parameter names
    >>> x = torch.randn(3, 5, 8)                              # (B, T, C)
    >>> torch.allclose(plain(x), engineered(x)[0], atol=1e-6)
    True
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GPTConfig
from .layers import causal_mask

__all__ = ["PlainCausalSelfAttention"]


class PlainCausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: ``softmax(q k^T / sqrt(hs) + mask) v`` for every head.

    ``c_attn`` makes the queries, keys and values in one ``(3C, C)`` projection and ``c_proj``
    mixes the heads' outputs, as in GPT-2. ``forward(x)`` maps ``(B, T, C)`` to ``(B, T, C)``.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if config.kv_heads != config.n_head or config.pos == "rope":
            raise ValueError("PlainCausalSelfAttention is day 10's attention: it has no "
                             "grouped-query heads and no RoPE; use CausalSelfAttention for "
                             "n_kv_head or pos='rope'")
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # (B, nh, T, T)
        att = att.masked_fill(~causal_mask(T, T, device=x.device), float("-inf"))
        att = F.softmax(att, dim=-1)  # (B, nh, T, T), each row sums to 1
        att = self.attn_dropout(att)
        y = att @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C), the heads side by side
        return self.resid_dropout(self.c_proj(y))  # (B, T, C)
