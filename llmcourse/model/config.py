"""The GPT configuration: one dataclass that fixes the shape of the network.

Every architectural choice of :class:`~llmcourse.model.GPT` is a field here, so a checkpoint
only needs ``config.to_dict()`` next to its weights to be rebuilt exactly. The defaults describe
GPT-2 small (124M parameters, with the vocabulary padded from 50257 to 50304, a multiple of 64,
as nanoGPT does for speed); the modern variants are switched on one field at a time and combine
freely:

=====================  ===========================  =======================================
field                  GPT-2 (default)              modern alternative
=====================  ===========================  =======================================
``norm``               ``"layernorm"``              ``"rmsnorm"`` (Zhang & Sennrich 2019)
``pos``                ``"learned"``                ``"rope"`` (Su et al. 2021)
``mlp``                ``"gelu"``                   ``"swiglu"`` (Shazeer 2020)
``n_kv_head``          ``None`` (= ``n_head``)      fewer K/V heads: grouped-query attention
``bias``               ``True``                     ``False`` (no bias in linears and norms)
=====================  ===========================  =======================================

Example:
    >>> cfg = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    >>> cfg.head_size, cfg.kv_heads, cfg.mlp_hidden_size
    (32, 4, 512)
    >>> GPTConfig.from_dict(cfg.to_dict()) == cfg
    True
    >>> modern = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128,
    ...                    norm="rmsnorm", pos="rope", mlp="swiglu", n_kv_head=2, bias=False)
    >>> modern.mlp_hidden_size  # 8/3 * 128 = 341.3, rounded up to a multiple of 64
    384
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from llmcourse.fields import DictConfig, check_field

NORMS = ("layernorm", "rmsnorm")
POSITIONS = ("learned", "rope")
MLPS = ("gelu", "swiglu")
GELU_APPROXIMATIONS = ("tanh", "none")


@dataclass
class GPTConfig(DictConfig):
    """Shape and variant switches of a GPT.

    Attributes:
        vocab_size: number of token ids the model reads and predicts.
        block_size: the longest context (in tokens) the model accepts; also the size of the
            learned position table or of the precomputed RoPE tables.
        n_layer: number of Transformer blocks.
        n_head: number of attention (query) heads; must divide ``n_embd``.
        n_embd: width of the residual stream (the embedding size).
        dropout: dropout probability used after the embeddings, on the attention weights and
            on both residual branches. 0.0 for pre-training small models; 0.1-0.2 when
            fine-tuning or training a big model on little data.
        bias: whether the linear layers (except ``lm_head``, which never has one) and the
            LayerNorms have a bias (GPT-2: yes). With ``False`` no module has a bias (RMSNorm
            never has one).
        norm: ``"layernorm"`` (GPT-2) or ``"rmsnorm"`` (scale only, no mean subtraction).
        norm_eps: the epsilon added inside the norms (GPT-2 uses 1e-5).
        pos: ``"learned"`` absolute position embeddings (GPT-2's ``wpe``) or ``"rope"``
            rotary embeddings applied to queries and keys inside attention.
        rope_theta: RoPE base; the frequencies are ``rope_theta ** (-2i / head_size)``.
        mlp: ``"gelu"`` (Linear, GELU, Linear) or ``"swiglu"`` (a SiLU-gated linear unit).
        mlp_hidden: the MLP's hidden width, or ``None`` for the usual rule (see
            :attr:`mlp_hidden_size`).
        mlp_multiple_of: the SwiGLU hidden width is rounded up to a multiple of this.
        gelu_approximate: ``"tanh"`` (the approximation GPT-2 was trained with, called
            ``gelu_new`` in Hugging Face; needed for exact GPT-2 parity) or ``"none"`` (the
            exact erf GELU). Ignored by SwiGLU.
        n_kv_head: number of key/value heads. ``None`` means ``n_head`` (ordinary multi-head
            attention); 1 is multi-query attention; anything in between that divides ``n_head``
            is grouped-query attention.
        tie_weights: share the token embedding matrix with the output layer (GPT-2: yes).
        init_std: standard deviation of the normal initialisation of linear and embedding
            weights (GPT-2: 0.02). Residual output projections use
            ``init_std / sqrt(2 * n_layer)``.
    """

    vocab_size: int = 50304
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True
    norm: str = "layernorm"
    norm_eps: float = 1e-5
    pos: str = "learned"
    rope_theta: float = 10000.0
    mlp: str = "gelu"
    mlp_hidden: int | None = None
    mlp_multiple_of: int = 64
    gelu_approximate: str = "tanh"
    n_kv_head: int | None = None
    tie_weights: bool = True
    init_std: float = 0.02

    def __post_init__(self) -> None:
        def field(name: str, kind: type | None = None, **rule: Any) -> None:
            check_field(name, getattr(self, name), kind, owner="GPTConfig", **rule)

        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "mlp_multiple_of"):
            field(name, int, low=1, rule="a positive integer")
        field("dropout", float, low=0, high=1, high_open=True, what="0.0 turns dropout off")
        for name in ("bias", "tie_weights"):
            field(name, bool)
        for name, choices in (("norm", NORMS), ("pos", POSITIONS), ("mlp", MLPS),
                              ("gelu_approximate", GELU_APPROXIMATIONS)):
            field(name, choices=choices)
        if self.n_embd % self.n_head != 0:
            divisors = [h for h in range(1, min(self.n_embd, 64) + 1) if self.n_embd % h == 0]
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}) so that every "
                f"head gets n_embd / n_head dimensions; choose n_head from {divisors} or change "
                f"n_embd to a multiple of {self.n_head}"
            )
        field("n_kv_head", int, low=1, high=self.n_head, optional=True)
        if self.n_kv_head is not None and self.n_head % self.n_kv_head != 0:
            options = [k for k in range(1, self.n_head + 1) if self.n_head % k == 0]
            raise ValueError(
                f"n_head ({self.n_head}) must be a multiple of n_kv_head ({self.n_kv_head}): "
                f"each key/value head serves the same number of query heads; "
                f"choose n_kv_head from {options}"
            )
        if self.pos == "rope" and self.head_size % 2 != 0:
            raise ValueError(
                f"pos='rope' rotates pairs of dimensions, so the head size must be even; "
                f"n_embd / n_head = {self.n_embd} / {self.n_head} = {self.head_size} is odd. "
                f"Change n_embd or n_head, or use pos='learned'"
            )
        field("mlp_hidden", int, low=1, optional=True, what="None uses the default rule")
        for name in ("rope_theta", "norm_eps", "init_std"):
            field(name, float, low=0, low_open=True)

    # ------------------------------------------------------------------ derived sizes
    @property
    def head_size(self) -> int:
        """Dimensions per attention head: ``n_embd // n_head``."""
        return self.n_embd // self.n_head

    @property
    def kv_heads(self) -> int:
        """The number of key/value heads actually used (``n_kv_head`` or ``n_head``)."""
        return self.n_head if self.n_kv_head is None else self.n_kv_head

    @property
    def mlp_hidden_size(self) -> int:
        """The MLP's hidden width.

        ``mlp_hidden`` when set; otherwise ``4 * n_embd`` for ``mlp="gelu"`` (GPT-2), and for
        ``mlp="swiglu"`` two thirds of that, ``8/3 * n_embd``, rounded up to a multiple of
        ``mlp_multiple_of``. The 2/3 keeps the parameter count close to the GELU MLP's, because
        SwiGLU has three weight matrices instead of two (the LLaMA rule).
        """
        if self.mlp_hidden is not None:
            return self.mlp_hidden
        if self.mlp == "gelu":
            return 4 * self.n_embd
        hidden = int(8 * self.n_embd / 3)
        m = self.mlp_multiple_of
        return m * math.ceil(hidden / m)
