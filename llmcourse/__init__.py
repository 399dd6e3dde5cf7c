"""llmcourse: build a GPT language model from scratch.

The package the course's notebooks import. Each sub-package holds one concept:

- :mod:`llmcourse.tokenizers` - character and byte-level BPE tokenizers, the tiktoken bridge.
- :mod:`llmcourse.data` - dataset registry, download, preparation to token files, batching.
- :mod:`llmcourse.model` - the GPT model, its modern variants, and baseline language models.
- :mod:`llmcourse.generate` - sampling (greedy, temperature, top-k, top-p, beam) with a KV cache.
- :mod:`llmcourse.train` - the trainer: mixed precision, accumulation, checkpoints, DDP.
- :mod:`llmcourse.checks` - automatic feedback for the lessons' exercises.

Sub-packages are imported on first use so that ``import llmcourse`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = {"tokenizers", "data", "model", "generate", "train", "checks", "device", "cli"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["__version__", *sorted(_SUBMODULES)]
