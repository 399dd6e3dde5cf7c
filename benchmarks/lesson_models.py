"""Models that exist only inside a lesson, copied here so that the benchmark scripts can run them.

A lesson's "Run it for real" sometimes trains a model it defines itself, which the package does not
hold. ``benchmarks/count_ops.py`` (operations per step, for the launch bound of
``llmcourse/gpu_figures.py``) and ``benchmarks/cpu_real_runs.py`` (the lesson's run measured on a
CPU) need that model, so each class below is a faithful copy of the lesson's: the same code, line
for line, with the names the lesson imports imported the same way. ``tests/test_gpu_acceptance.py``
checks that every class here still reads exactly as in its lesson.

Example:
    >>> import torch
    >>> model = OneHeadLM(vocab_size=65, block_size=8, n_embd=16)
    >>> logits, loss = model(torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 8, dtype=torch.long))
    >>> tuple(logits.shape)
    (2, 8, 65)
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks import day08 as checks
from llmcourse.model import CausalSelfAttention, GPTConfig

# The lesson each class is copied from (its "Run it for real" cell).
LESSONS = {"AveragingLM": "solutions/day08_attention_as_averaging.md",
           "OneHeadLM": "solutions/day09_scaled_dot_product_attention.md"}


# Day 08 (solutions/day08_attention_as_averaging.md): three kinds of weights, trained as three runs.
class AveragingLM(nn.Module):
    """Next-token logits from [embedding of token t, causal weighted average of embeddings]."""

    def __init__(self, vocab_size, n_embd, weights="uniform"):
        super().__init__()
        self.weights = weights
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.decay = nn.Parameter(torch.zeros(())) if weights == "recency" else None
        in_features = n_embd if weights == "none" else 2 * n_embd
        self.head = nn.Linear(in_features, vocab_size)

    def attention_weights(self, T, device):
        pos = torch.arange(T, device=device)
        distance = (pos[:, None] - pos[None, :]).float()           # (T, T): t - s
        a = F.softplus(self.decay) if self.decay is not None else 0.0
        return checks.reference_causal_softmax(-a * distance)      # (T, T)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        e = self.wte(idx)                                          # (B, T, C)
        if self.weights == "none":
            features = e                                           # a bigram: the current token only
        else:
            avg = self.attention_weights(T, idx.device) @ e        # (B, T, C)
            features = torch.cat([e, avg], dim=-1)                 # (B, T, 2C)
        logits = self.head(features)                               # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(-1))
        return logits, loss


# Day 09 (solutions/day09_scaled_dot_product_attention.md): one attention head.
class OneHeadLM(nn.Module):
    """Embeddings + one causal attention head + a linear output layer."""

    def __init__(self, vocab_size, block_size, n_embd):
        super().__init__()
        cfg = GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=1, n_head=1,
                        n_embd=n_embd, bias=False)
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.lm_head = nn.Linear(2 * n_embd, vocab_size)

    def forward(self, idx, targets=None, need_weights=False):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))   # (B, T, C)
        a, att = self.attn(x, need_weights=need_weights)                     # (B, T, C), (B, 1, T, T)
        logits = self.lm_head(torch.cat([x, a], dim=-1))                     # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.view(B * T, -1), targets.view(-1))
        return (logits, loss, att) if need_weights else (logits, loss)
