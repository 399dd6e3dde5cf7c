"""Regex pre-tokenization patterns (for the third-party ``regex`` module, which knows ``\\p{L}``).

Before BPE runs, text is cut into *pre-tokens* (words with their leading space, runs of digits,
punctuation, whitespace); merges never cross a pre-token boundary. That keeps ``" dog"``, ``"dog"``
and ``"dog."`` from spawning a zoo of near-duplicate tokens, and makes encoding cacheable per chunk.

The two patterns are the ones tiktoken uses, character for character, so that our encoders
reproduce its ids exactly:

>>> import regex
>>> regex.findall(GPT2_SPLIT_PATTERN, "Hello world, it's 2024!!\\n")
['Hello', ' world', ',', ' it', "'s", ' 2024', '!!', '\\n']
>>> regex.findall(GPT4_SPLIT_PATTERN, "Hello world, it's 2024!!\\n")
['Hello', ' world', ',', ' it', "'s", ' ', '202', '4', '!!\\n']
"""

from __future__ import annotations

from functools import lru_cache

import regex

#: GPT-2 (tiktoken ``gpt2`` / ``r50k_base``): contractions, optional space + letters, optional
#: space + digits, optional space + other symbols, then whitespace runs (a run followed by text
#: leaves its last space to the next word).
GPT2_SPLIT_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)

#: GPT-4 (tiktoken ``cl100k_base``): case-insensitive contractions, numbers in groups of at most
#: three digits, punctuation keeps following newlines, and newline runs are their own pre-token.
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

#: Short names accepted wherever a pattern is expected.
NAMED_PATTERNS = {"gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN}


def resolve_pattern(pattern: str | None) -> str | None:
    """Map ``"gpt2"``/``"gpt4"`` to the full pattern; return other strings (or ``None``) unchanged."""
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a regex string, 'gpt2', 'gpt4' or None, not {pattern!r}")
    return NAMED_PATTERNS.get(pattern, pattern)


@lru_cache(maxsize=32)
def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """Compile (and cache) a split pattern, with a clear error when it is not a valid regex."""
    try:
        return regex.compile(pattern)
    except regex.error as e:
        raise ValueError(f"invalid split pattern {pattern!r}: {e}") from e
