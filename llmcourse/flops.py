"""Parameters, FLOPs and MFU on paper, and the data-sheet peak FLOP/s of known GPUs.

Plain arithmetic on a model's sizes, with nothing to import from the rest of the package, so
every part can use it: the model reports its cost, the trainer logs its MFU, the device
description shows the peak of the GPU, the benchmarks divide one by the other.

- :func:`count_params_formula`: the parameters of ``GPT(config)``, counted on paper;
- :func:`flops_per_token`: the cost of a training (or forward) pass, per token;
- :func:`mfu` and :func:`estimate_mfu`: model FLOPs utilisation, achieved over peak;
- :func:`peak_flops` and :data:`PEAK_FLOPS`: data-sheet peaks of known GPUs.

``config`` is a :class:`~llmcourse.model.GPTConfig` (anything with its fields will do).

Example:
    >>> from llmcourse.model.config import GPTConfig
    >>> cfg = GPTConfig(vocab_size=50257)                # GPT-2 small
    >>> count_params_formula(cfg, non_embedding=False)
    124439808
    >>> round(mfu(flops_per_token(cfg), 150_000, peak_flops("A100", "bfloat16")), 3)
    0.411
"""

from __future__ import annotations

from typing import Any

__all__ = ["count_params_formula", "flops_per_token", "mfu", "estimate_mfu", "peak_flops",
           "PEAK_TABLE", "PEAK_FLOPS"]

#: Dense (no sparsity) peak tensor-core throughput in FLOP/s from the vendors' data sheets, for
#: MFU. Keys are matched as substrings of ``torch.cuda.get_device_name()``, in this order.
PEAK_TABLE: list[tuple[str, dict[str, float]]] = [
    ("H100 PCIe", {"bfloat16": 756e12, "float16": 756e12, "float32": 378e12}),
    ("H100", {"bfloat16": 989e12, "float16": 989e12, "float32": 494e12}),
    ("H200", {"bfloat16": 989e12, "float16": 989e12, "float32": 494e12}),
    ("A100", {"bfloat16": 312e12, "float16": 312e12, "float32": 156e12}),
    ("L4", {"bfloat16": 121e12, "float16": 121e12, "float32": 60e12}),
    ("V100", {"float16": 125e12, "float32": 15.7e12}),
    ("T4", {"float16": 65e12, "float32": 8.1e12}),
]


def peak_flops(device_name: str, dtype_name: str) -> float | None:
    """Data-sheet peak FLOP/s of a known GPU for a precision, or ``None`` when unknown.

    ``dtype_name="float32"`` means TF32 tensor cores where the GPU has them. Used for the
    model FLOPs utilisation (MFU); give ``TrainConfig.peak_flops`` for other hardware.

    >>> peak_flops("NVIDIA A100-SXM4-40GB", "bfloat16")
    312000000000000.0
    >>> peak_flops("Tesla T4", "bfloat16") is None
    True
    """
    for key, table in PEAK_TABLE:
        if key in device_name:
            return table.get(dtype_name)
    return None


#: Data-sheet peaks (dense, FLOP/s) for ``estimate_mfu(peak_flops=...)``, by GPU and precision.
PEAK_FLOPS: dict[str, float | None] = {
    "A100-bf16": peak_flops("A100", "bfloat16"),
    "H100-SXM-bf16": peak_flops("H100", "bfloat16"),
    "T4-fp16": peak_flops("T4", "float16"),
    "V100-fp16": peak_flops("V100", "float16"),
}


def count_params_formula(config: Any, non_embedding: bool = True) -> int:
    """The parameter count of ``GPT(config)``, worked out on paper.

    With ``C = n_embd``, ``H`` the MLP hidden size, ``K = n_kv_head * head_size``:

    - per block: two norms (``C`` each, ``2C`` for LayerNorm with bias); attention
      ``C(C + 2K)`` for ``c_attn`` plus ``C^2`` for ``c_proj`` (+ biases ``C + 2K`` and ``C``);
      MLP ``2CH`` for GELU or ``3CH`` for SwiGLU (+ biases ``H + C`` or ``2H + C``);
    - once: ``ln_f``, ``wte`` (``V C``), ``wpe`` (``block_size C``, learned positions only),
      and ``lm_head`` (``V C``) unless tied.

    ``non_embedding`` follows :meth:`GPT.num_params <llmcourse.model.GPT.num_params>`. For
    GPT-2 small (V = 50257, 12 layers, 768 wide) this gives 124,439,808 parameters,
    123,653,376 of them non-embedding.
    """
    C, H, L = config.n_embd, config.mlp_hidden_size, config.n_layer
    K = config.kv_heads * config.head_size
    b = 1 if config.bias else 0
    norm = C + (b * C if config.norm == "layernorm" else 0)
    attn = C * (C + 2 * K) + b * (C + 2 * K) + C * C + b * C
    if config.mlp == "gelu":
        mlp = 2 * C * H + b * (H + C)
    else:
        mlp = 3 * C * H + b * (2 * H + C)
    block = 2 * norm + attn + mlp
    wte = config.vocab_size * C
    wpe = config.block_size * C if config.pos == "learned" else 0
    head = 0 if config.tie_weights else config.vocab_size * C
    total = L * block + norm + wte + wpe + head
    if non_embedding:
        total -= wpe
        if not config.tie_weights:
            total -= wte
    return total


def flops_per_token(config: Any, seq_len: int | None = None, training: bool = True) -> float:
    """Floating-point operations per token for a forward (+ backward) pass.

    The estimate of Kaplan et al. (2020, "Scaling Laws for Neural Language Models", Table 1)
    as written in the PaLM paper (Chowdhery et al. 2022, Appendix B): a training step costs
    ``6N + 12 * n_layer * n_head * head_size * T`` FLOPs per token, where ``N`` is the
    non-embedding parameter count (every weight does one multiply-add, 2 FLOPs, forward and
    twice that backward) and the second term is the attention score and weighted-sum matmuls
    ``QK^T`` and ``AV`` over a context of ``T`` tokens (no discount for the causal mask). A
    forward pass alone costs a third of that: ``2N + 4 * n_layer * n_head * head_size * T``.

    Args:
        seq_len: context length ``T`` (defaults to ``block_size``).
        training: forward + backward (True) or forward only.

    >>> from llmcourse.model.config import GPTConfig
    >>> cfg = GPTConfig(vocab_size=50257)
    >>> round(flops_per_token(cfg) / 1e6)  # 6 * 123.65M + 12 * 12 * 12 * 64 * 1024, in MFLOPs
    855
    """
    T = config.block_size if seq_len is None else seq_len
    N = count_params_formula(config, non_embedding=True)
    attn = config.n_layer * config.n_head * config.head_size * T
    return float(6 * N + 12 * attn) if training else float(2 * N + 4 * attn)


def mfu(flops_per_tok: float | None, tokens_per_s: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s over the hardware's peak (``None`` if unknown).

    ``flops_per_tok * tokens_per_s / peak`` (PaLM, Appendix B). The one MFU of the package:
    the Trainer's log, the benchmarks and :func:`estimate_mfu` all use it.

    >>> mfu(6e6, 1e6, 12e12)
    0.5
    >>> mfu(None, 1e6, 12e12) is None
    True
    """
    if not flops_per_tok or not peak or tokens_per_s <= 0:
        return None
    return flops_per_tok * tokens_per_s / peak


def estimate_mfu(config: Any, tokens_per_second: float,
                 peak_flops: float = PEAK_FLOPS["A100-bf16"], seq_len: int | None = None) -> float:
    """The MFU of a training run of ``GPT(config)``: :func:`mfu` of :func:`flops_per_token`.

    Pass the peak of your device and precision (default: an A100 in bfloat16; see
    :data:`PEAK_FLOPS` and :func:`peak_flops` for data-sheet values); for a multi-GPU run use
    the total throughput and the summed peak.

    >>> from llmcourse.model.config import GPTConfig
    >>> cfg = GPTConfig(vocab_size=50257)
    >>> round(estimate_mfu(cfg, tokens_per_second=150_000, peak_flops=312e12), 3)
    0.411
    """
    if peak_flops <= 0:
        raise ValueError(f"peak_flops must be positive, got {peak_flops}")
    return mfu(flops_per_token(config, seq_len=seq_len, training=True), tokens_per_second,
               peak_flops) or 0.0
