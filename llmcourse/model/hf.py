"""Import OpenAI's GPT-2 weights, as Hugging Face stores them, into :class:`~llmcourse.model.GPT`.

Our module names are GPT-2's, so the import is mostly a copy by name. Three details differ:

1. Hugging Face implements GPT-2's projections with ``Conv1D``, whose weight is stored as
   ``(in_features, out_features)``: the transpose of :class:`torch.nn.Linear`'s. The weights of
   ``attn.c_attn``, ``attn.c_proj``, ``mlp.c_fc`` and ``mlp.c_proj`` are transposed on import.
2. Old checkpoints carry the causal-mask buffers ``h.N.attn.bias`` and ``h.N.attn.masked_bias``;
   they are not weights and are skipped.
3. ``GPT2LMHeadModel.state_dict()`` prefixes keys with ``transformer.``; the bare ``GPT2Model``
   (and the published ``model.safetensors`` of ``gpt2``) does not, and has no ``lm_head``.
   Both are accepted (``lm_head`` is tied to ``wte`` anyway).

GPT-2 was trained with the tanh approximation of GELU (Hugging Face's ``"gelu_new"``), which
is :class:`GPTConfig`'s default ``gelu_approximate="tanh"``; with the exact GELU the logits
differ by about 1e-3.

No download happens here unless asked: :meth:`GPT.from_pretrained` (with
:func:`pretrained_weights`) reads a local file or folder
(for example one saved with ``GPT2LMHeadModel.from_pretrained("gpt2").save_pretrained(dir)``
on a machine with internet access).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from .config import GPTConfig

#: Shapes of the four released GPT-2 models (all: vocab 50257, context 1024, head size 64).
GPT2_SIZES: dict[str, dict[str, int]] = {
    "gpt2": {"n_layer": 12, "n_head": 12, "n_embd": 768},  # 124M parameters
    "gpt2-medium": {"n_layer": 24, "n_head": 16, "n_embd": 1024},  # 350M
    "gpt2-large": {"n_layer": 36, "n_head": 20, "n_embd": 1280},  # 774M
    "gpt2-xl": {"n_layer": 48, "n_head": 25, "n_embd": 1600},  # 1558M
}

_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_BUFFERS = (".attn.bias", ".attn.masked_bias")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.pt", "model.pth")


def gpt2_config(model_type: str = "gpt2", **overrides) -> GPTConfig:
    """The :class:`GPTConfig` of a released GPT-2 model (``"gpt2"``, ``"gpt2-medium"``, ...)."""
    if model_type not in GPT2_SIZES:
        raise ValueError(f"unknown GPT-2 model {model_type!r}; choose one of {sorted(GPT2_SIZES)}")
    fields = dict(vocab_size=50257, block_size=1024, bias=True, dropout=0.0,
                  gelu_approximate="tanh", **GPT2_SIZES[model_type])
    fields.update(overrides)
    return GPTConfig(**fields)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.safetensors`` file, a torch file, or a folder holding one.

    Torch files are read with ``torch.load(..., weights_only=True)``, which refuses to run
    arbitrary pickled code.
    """
    path = Path(path)
    if path.is_dir():
        for name in _WEIGHT_FILES:
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise FileNotFoundError(
                f"no weights file in {path}; expected one of {', '.join(_WEIGHT_FILES)}"
            )
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "reading .safetensors files needs the 'safetensors' package: pip install safetensors"
            ) from e
        return load_file(str(path), device="cpu")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    if not isinstance(sd, Mapping):
        raise ValueError(f"{path} does not hold a state dict (got {type(sd).__name__})")
    return dict(sd)


def normalize_hf_keys(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the attention-mask buffers and give every key the ``transformer.`` prefix.

    >>> sorted(normalize_hf_keys({"wte.weight": 0, "h.0.attn.bias": 0, "lm_head.weight": 0}))
    ['lm_head.weight', 'transformer.wte.weight']
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith(_BUFFERS):
            continue
        if key != "lm_head.weight" and not key.startswith("transformer."):
            key = "transformer." + key
        out[key] = value
    return out


def infer_gpt2_config(sd: Mapping[str, torch.Tensor], **overrides) -> GPTConfig:
    """Guess the :class:`GPTConfig` of a Hugging Face GPT-2 state dict.

    Vocabulary, context, width, depth and bias are read off the tensors. The number of heads
    is not visible in the weights; every released GPT-2 uses 64-dimensional heads, so
    ``n_head = n_embd // 64`` is assumed. Pass ``n_head=...`` (or a full config) otherwise.
    """
    sd = normalize_hf_keys(sd)
    try:
        vocab_size, n_embd = sd["transformer.wte.weight"].shape
        block_size = sd["transformer.wpe.weight"].shape[0]
    except KeyError as e:
        raise KeyError(
            f"{e.args[0]!r} not found: this does not look like a GPT-2 state dict "
            f"(keys start with {sorted(sd)[:3]})"
        ) from None
    layers = {int(k.split(".")[2]) for k in sd if k.startswith("transformer.h.")}
    fields = dict(vocab_size=int(vocab_size), block_size=int(block_size), n_embd=int(n_embd),
                  n_layer=len(layers), bias="transformer.h.0.attn.c_attn.bias" in sd,
                  tie_weights=True, dropout=0.0, gelu_approximate="tanh")
    if "n_head" not in overrides:
        if n_embd % 64:
            raise ValueError(
                f"cannot infer n_head for n_embd={n_embd} (not a multiple of GPT-2's head size 64); "
                f"pass a config, e.g. from_hf_state_dict(sd, config=GPTConfig(..., n_head=...))"
            )
        fields["n_head"] = int(n_embd) // 64
    fields.update(overrides)
    return GPTConfig(**fields)


def _check_gpt2_compatible(config: GPTConfig) -> None:
    wrong = [f"{name}={getattr(config, name)!r} (GPT-2: {want!r})"
             for name, want in (("norm", "layernorm"), ("pos", "learned"), ("mlp", "gelu"))
             if getattr(config, name) != want]
    if config.kv_heads != config.n_head:
        wrong.append(f"n_kv_head={config.n_kv_head} (GPT-2: None, plain multi-head attention)")
    if wrong:
        raise ValueError("GPT-2 weights need the GPT-2 architecture; this model has " + ", ".join(wrong))


def _summary(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_gpt2_weights(model: torch.nn.Module,
                      path_or_sd: str | Path | Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """Copy Hugging Face GPT-2 weights into ``model`` (in place) and return it.

    Args:
        model: a :class:`GPT` with the GPT-2 architecture and the checkpoint's sizes.
        path_or_sd: a state dict (``GPT2LMHeadModel(...).state_dict()`` or ``GPT2Model``'s),
            or a path to a ``.safetensors`` file, a torch file or a folder holding one.

    Raises:
        KeyError: when keys are missing or unexpected (both lists are in the message).
        ValueError: on shape mismatches, an llmcourse-layout state dict (use
            ``model.load_state_dict``), or a non-GPT-2 architecture.
    """
    _check_gpt2_compatible(model.config)
    raw = load_state_dict_file(path_or_sd) if isinstance(path_or_sd, (str, Path)) else path_or_sd
    sd = normalize_hf_keys(raw)
    tied = model.config.tie_weights
    ours = model.state_dict()
    expected = set(ours) - ({"lm_head.weight"} if tied else set())
    missing = sorted(expected - set(sd))
    unexpected = sorted(set(sd) - set(ours))
    if missing or unexpected:
        raise KeyError(
            "the state dict does not match the model. "
            + (f"Missing keys: {_summary(missing)}. " if missing else "")
            + (f"Unexpected keys: {_summary(unexpected)}. " if unexpected else "")
            + "Check that the config (n_layer, bias, tie_weights) matches the checkpoint."
        )
    probe = "transformer.h.0.attn.c_attn.weight"
    if probe in sd and tuple(sd[probe].shape) == tuple(ours[probe].shape):
        raise ValueError(
            f"{probe} has the nn.Linear layout {tuple(ours[probe].shape)}, not Hugging Face's "
            f"transposed Conv1D layout: this looks like an llmcourse/nanoGPT state dict; load it "
            f"with model.load_state_dict(sd) instead"
        )
    if tied and "lm_head.weight" in sd and not torch.equal(
        sd["lm_head.weight"], sd["transformer.wte.weight"]
    ):
        raise ValueError(
            "lm_head.weight differs from transformer.wte.weight but the model ties them; "
            "build it with GPTConfig(tie_weights=False) to load both"
        )
    with torch.no_grad():
        for key in sorted(expected):
            src = sd[key]
            if key.endswith(_CONV1D):
                src = src.t()
            dst = ours[key]
            if tuple(src.shape) != tuple(dst.shape):
                raise ValueError(
                    f"shape mismatch for {key}: checkpoint {tuple(src.shape)} (after transposing "
                    f"Conv1D weights), model {tuple(dst.shape)}; is the config right?"
                )
            dst.copy_(src)
    return model


def pretrained_weights(model_type: str = "gpt2", path: str | Path | None = None, *,
                       dropout: float = 0.0, allow_download: bool = False
                       ) -> tuple[GPTConfig, dict[str, torch.Tensor]]:
    """The config and Hugging Face state dict of a released GPT-2, for :meth:`GPT.from_pretrained`.

    Args:
        model_type: ``"gpt2"``, ``"gpt2-medium"``, ``"gpt2-large"`` or ``"gpt2-xl"``; fixes
            the config.
        path: a local ``.safetensors``/torch weights file, or a folder holding
            ``model.safetensors`` or ``pytorch_model.bin`` (a Hugging Face snapshot). Defaults
            to ``$LLMCOURSE_GPT2_DIR/<model_type>`` when that variable is set.
        dropout: dropout for fine-tuning (0.0 for inference).
        allow_download: with no local file, fetch the weights through ``transformers``
            (needs that package and internet access). Off by default.
    """
    config = gpt2_config(model_type, dropout=dropout)
    if path is None and os.environ.get("LLMCOURSE_GPT2_DIR"):
        candidate = Path(os.environ["LLMCOURSE_GPT2_DIR"]) / model_type
        if candidate.exists():
            path = candidate
    if path is not None:
        return config, load_state_dict_file(path)
    if not allow_download:
        raise FileNotFoundError(
            f"no local weights for {model_type!r}: pass path= to a model.safetensors / "
            f"pytorch_model.bin file or a folder holding one, set LLMCOURSE_GPT2_DIR, or use "
            f"allow_download=True (needs transformers and internet)"
        )
    try:  # pragma: no cover - needs internet
        from transformers import GPT2LMHeadModel
    except ImportError as e:  # pragma: no cover
        raise ImportError("allow_download=True needs the transformers package") from e
    hf = GPT2LMHeadModel.from_pretrained(model_type)  # pragma: no cover
    return config, hf.state_dict()  # pragma: no cover
