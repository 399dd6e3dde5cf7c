"""Language models from before attention, with the same interface as :class:`GPT`.

- :class:`BigramLM`: a ``V x V`` table of next-token logits; looks at the last token only.
- :class:`MLPLM`: Bengio et al. (2003): embed a fixed window of ``block_size`` tokens,
  concatenate, one hidden ``tanh`` layer (optionally with BatchNorm), output layer.
- :class:`WaveNetLM`: a stack of dilated causal 1-D convolutions (van den Oord et al., 2016)
  with dilations 1, 2, 4, ... so that the receptive field covers ``block_size`` tokens.

All three take ``idx`` ``(B, T)`` of any length ``T >= 1`` and return logits for every position,
``(B, T, vocab_size)``, so they train with the same ``get_batch`` as the GPT and can be compared
on the same validation loss. Position ``t`` only ever depends on tokens ``<= t``.

BatchNorm note: in training mode BatchNorm normalises with statistics of the current batch,
which mixes information across sequences *and positions* (so a training-mode forward is not
strictly causal); in evaluation mode it uses its running averages and everything is causal.
Call ``model.eval()`` before evaluating or sampling - a one-token batch cannot even be
normalised in training mode.

Example:
    >>> import torch
    >>> m = MLPLM(MLPConfig(vocab_size=27, block_size=3)).eval()
    >>> logits, _ = m(torch.tensor([[1, 2, 3, 4, 5]]))
    >>> tuple(logits.shape)
    (1, 5, 27)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


def _positive(owner: str, **values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}.{name} must be a positive integer, got {value!r}")


def _check_idx(idx: torch.Tensor, kv_cache: Any) -> None:
    if kv_cache is not None:
        raise ValueError(
            "this baseline model has no KV cache (only GPT does); call it with kv_cache=None"
        )
    if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.shape[1] == 0:
        shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"idx must be a non-empty (batch, time) tensor of token ids, got {shape}")
    if idx.dtype.is_floating_point or idx.dtype == torch.bool or idx.dtype.is_complex:
        raise TypeError(f"idx must hold integer token ids (torch.long), got dtype {idx.dtype}")


def _loss(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    if targets is None:
        return None
    if targets.shape != logits.shape[:2]:
        raise ValueError(
            f"targets must have the shape of idx {tuple(logits.shape[:2])}, got {tuple(targets.shape)}"
        )
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1).long(),
                           ignore_index=-1)


class _LMBase(nn.Module):
    """Shared plumbing: ``generate`` delegates to :func:`llmcourse.generate.generate`."""

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, **sampling: Any) -> torch.Tensor:
        """Continue ``idx`` ``(B, T)`` by ``max_new_tokens`` tokens; see :func:`llmcourse.generate.generate`."""
        from llmcourse.generate import generate as _gen

        return _gen(self, idx, max_new_tokens, **sampling)

    def num_params(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())


# ---------------------------------------------------------------------------- bigram
@dataclass
class BigramConfig:
    """Settings of :class:`BigramLM`.

    Attributes:
        vocab_size: number of token ids.
        block_size: context length handed to the generator; the bigram only reads the last
            token, so 1 is enough, and any ``T`` is accepted in ``forward``.
        init_std: standard deviation of the table's initial values (small, so the initial loss
            is about ``ln(vocab_size)``).
    """

    vocab_size: int = 65
    block_size: int = 1
    init_std: float = 0.02

    def __post_init__(self) -> None:
        _positive("BigramConfig", vocab_size=self.vocab_size, block_size=self.block_size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class BigramLM(_LMBase):
    """Next-token logits read from a ``V x V`` table: row ``i`` holds the logits after token ``i``.

    Its best possible loss is the conditional entropy of the next token given the current
    one, which is what makes it a useful floor for every later model.
    """

    def __init__(self, config: BigramConfig) -> None:
        super().__init__()
        self.config = config
        self.table = nn.Embedding(config.vocab_size, config.vocab_size)
        nn.init.normal_(self.table.weight, std=config.init_std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                kv_cache: None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        _check_idx(idx, kv_cache)
        logits = self.table(idx)  # (B, T, V)
        return logits, _loss(logits, targets)


# ---------------------------------------------------------------------------- MLP (Bengio 2003)
@dataclass
class MLPConfig:
    """Settings of :class:`MLPLM`.

    Attributes:
        vocab_size: number of token ids.
        block_size: how many tokens (the current one and those before it) each prediction sees.
        n_embd: embedding size per token; the hidden layer reads ``block_size * n_embd`` inputs.
        n_hidden: width of the ``tanh`` hidden layer.
        batchnorm: BatchNorm before the ``tanh`` (then the hidden layer has no bias).
        dropout: dropout on the hidden activations.
        pad_token: what fills the window before the first token. ``None`` (default) uses a
            dedicated learned padding embedding (row ``vocab_size`` of the table) that no real
            token shares; an integer reuses that token's embedding (e.g. 0, as in makemore,
            where 0 is the boundary character ``.``).
    """

    vocab_size: int = 65
    block_size: int = 8
    n_embd: int = 16
    n_hidden: int = 200
    batchnorm: bool = False
    dropout: float = 0.0
    pad_token: int | None = None

    def __post_init__(self) -> None:
        _positive("MLPConfig", vocab_size=self.vocab_size, block_size=self.block_size,
                  n_embd=self.n_embd, n_hidden=self.n_hidden)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MLPConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.pad_token is not None and not 0 <= self.pad_token < self.vocab_size:
            raise ValueError(
                f"MLPConfig.pad_token must be None (a dedicated padding embedding) or a token id "
                f"in [0, {self.vocab_size}), got {self.pad_token!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MLPLM(_LMBase):
    """Bengio-style MLP language model over a sliding window of ``block_size`` tokens.

    For an input ``(B, T)`` the sequence is left-padded with ``block_size - 1`` padding tokens
    (see :class:`MLPConfig`.pad_token) and the window ending at every position ``t`` predicts
    token ``t + 1``. That gives ``(B, T, V)`` logits from one call, so the model trains on the
    same ``(x, y)`` batches as the GPT; the first positions simply see padding.
    """

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.pad_id = c.vocab_size if c.pad_token is None else c.pad_token
        self.wte = nn.Embedding(c.vocab_size + (1 if c.pad_token is None else 0), c.n_embd)
        self.hidden = nn.Linear(c.block_size * c.n_embd, c.n_hidden, bias=not c.batchnorm)
        self.bn = nn.BatchNorm1d(c.n_hidden) if c.batchnorm else None
        self.dropout = nn.Dropout(c.dropout)
        self.lm_head = nn.Linear(c.n_hidden, c.vocab_size)
        # Kaiming init for tanh (gain 5/3) keeps the hidden layer out of saturation; a small
        # output layer makes the initial prediction nearly uniform (loss ~ ln V).
        nn.init.normal_(self.wte.weight, std=1.0)
        nn.init.normal_(self.hidden.weight, std=(5 / 3) / math.sqrt(c.block_size * c.n_embd))
        if self.hidden.bias is not None:
            nn.init.zeros_(self.hidden.bias)
        nn.init.normal_(self.lm_head.weight, std=0.1 / math.sqrt(c.n_hidden))
        nn.init.zeros_(self.lm_head.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                kv_cache: None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        _check_idx(idx, kv_cache)
        B, T = idx.shape
        c = self.config
        padded = F.pad(idx, (c.block_size - 1, 0), value=self.pad_id)  # (B, T + bs - 1)
        windows = padded.unfold(1, c.block_size, 1)  # (B, T, bs): window t ends at token t
        emb = self.wte(windows).reshape(B, T, c.block_size * c.n_embd)  # (B, T, bs * E)
        h = self.hidden(emb)  # (B, T, H)
        if self.bn is not None:
            h = self.bn(h.reshape(B * T, -1)).reshape(B, T, -1)
        h = self.dropout(torch.tanh(h))
        logits = self.lm_head(h)  # (B, T, V)
        return logits, _loss(logits, targets)


# ---------------------------------------------------------------------------- WaveNet
@dataclass
class WaveNetConfig:
    """Settings of :class:`WaveNetLM`.

    Attributes:
        vocab_size: number of token ids.
        block_size: the context the model must see; the number of layers is chosen so that
            the receptive field ``1 + (kernel_size - 1) * (2**n_layer - 1)`` reaches it.
        n_embd: token embedding size (the first layer's input channels).
        n_hidden: channels of every convolution.
        kernel_size: taps per convolution (2 halves the sequence per level, like a binary tree).
        n_layer: number of convolution layers, or ``None`` for the smallest that covers
            ``block_size``.
        batchnorm: BatchNorm after each convolution (then the convolutions have no bias).
        dropout: dropout on each layer's output.
    """

    vocab_size: int = 65
    block_size: int = 16
    n_embd: int = 24
    n_hidden: int = 128
    kernel_size: int = 2
    n_layer: int | None = None
    batchnorm: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _positive("WaveNetConfig", vocab_size=self.vocab_size, block_size=self.block_size,
                  n_embd=self.n_embd, n_hidden=self.n_hidden)
        if isinstance(self.kernel_size, bool) or not isinstance(self.kernel_size, int) \
                or self.kernel_size < 2:
            raise ValueError(f"WaveNetConfig.kernel_size must be an integer >= 2, got {self.kernel_size!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"WaveNetConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.n_layer is not None:
            _positive("WaveNetConfig", n_layer=self.n_layer)
            if self.receptive_field < self.block_size:
                need = self._layers_needed()
                raise ValueError(
                    f"with kernel_size={self.kernel_size} and n_layer={self.n_layer} the receptive "
                    f"field is {self.receptive_field} tokens, less than block_size="
                    f"{self.block_size}; use n_layer >= {need} (or n_layer=None)"
                )

    def _layers_needed(self) -> int:
        n = 1
        while 1 + (self.kernel_size - 1) * (2 ** n - 1) < self.block_size:
            n += 1
        return n

    @property
    def layers(self) -> int:
        """The number of convolution layers actually built."""
        return self.n_layer if self.n_layer is not None else self._layers_needed()

    @property
    def receptive_field(self) -> int:
        """How many tokens (the current one included) each output position can see."""
        return 1 + (self.kernel_size - 1) * (2 ** self.layers - 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WaveNetLM(_LMBase):
    """Dilated causal convolutions over token embeddings.

    Layer ``i`` is a ``Conv1d`` with dilation ``2**i``, left-padded with
    ``(kernel_size - 1) * 2**i`` zeros so that output ``t`` only reads inputs ``<= t``; then
    optional BatchNorm and ``tanh``. A final linear layer maps each position's features to
    logits. This is the fully convolutional form of makemore's hierarchical "WaveNet": the
    same tree of pairwise merges, evaluated at every position at once.
    """

    def __init__(self, config: WaveNetConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.dilations: list[int] = []
        channels = c.n_embd
        for i in range(c.layers):
            d = 2 ** i
            self.dilations.append(d)
            self.convs.append(nn.Conv1d(channels, c.n_hidden, c.kernel_size, dilation=d,
                                        bias=not c.batchnorm))
            self.norms.append(nn.BatchNorm1d(c.n_hidden) if c.batchnorm else nn.Identity())
            channels = c.n_hidden
        self.dropout = nn.Dropout(c.dropout)
        self.lm_head = nn.Linear(c.n_hidden, c.vocab_size)
        nn.init.normal_(self.wte.weight, std=1.0)
        for conv in self.convs:
            fan_in = conv.in_channels * c.kernel_size
            nn.init.normal_(conv.weight, std=(5 / 3) / math.sqrt(fan_in))
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        nn.init.normal_(self.lm_head.weight, std=0.1 / math.sqrt(c.n_hidden))
        nn.init.zeros_(self.lm_head.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                kv_cache: None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        _check_idx(idx, kv_cache)
        k = self.config.kernel_size
        x = self.wte(idx).transpose(1, 2)  # (B, E, T): channels first for Conv1d
        for conv, norm, d in zip(self.convs, self.norms, self.dilations):
            x = F.pad(x, ((k - 1) * d, 0))  # left padding only: causal
            x = self.dropout(torch.tanh(norm(conv(x))))  # (B, H, T)
        logits = self.lm_head(x.transpose(1, 2))  # (B, T, V)
        return logits, _loss(logits, targets)
