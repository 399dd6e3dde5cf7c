"""Checks for day 32, "Choosing a tokenizer".

Each ``check_*`` function runs the learner's code on small cases of its own (unlike the
notebook's texts and tokenizers), prints one line - a pass, a specific hint, or "not done yet" -
and never raises. The lesson continues with the package's versions
(``llmcourse.train.evaluate.bits_per_byte``, ``llmcourse.tokenizers.bpe.rare_characters``).

Example::

    >>> from llmcourse.checks import day32
    >>> ok = day32.check_bits_per_byte(lambda loss, n_tokens, n_bytes:
    ...                                loss * n_tokens / (0.6931471805599453 * n_bytes))
    ✅ bits_per_byte: passed
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable

from llmcourse.checks._core import CheckFailed, as_list, call, check

__all__ = ["check_tokens_per_char", "check_bits_per_byte", "check_rare_characters",
           "reference_tokens_per_char", "reference_rare_characters"]


def reference_tokens_per_char(tok: Any, text: str) -> float:
    """Tokens per character of ``text`` under ``tok``."""
    return len(tok.encode(text)) / len(text)


def reference_rare_characters(text: str, coverage: float) -> set[str]:
    """The characters outside the most frequent ones that cover ``coverage`` of ``text``
    (ranked by count, ties by code point; kept while the covered share is below ``coverage``)."""
    counts = Counter(text)
    kept, covered = set(), 0
    for ch, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if covered >= coverage * len(text):
            break
        kept.add(ch)
        covered += n
    return set(counts) - kept


def _as_float(value: Any, name: str) -> float:
    if value is None:
        raise CheckFailed(f"{name} returned None; did you forget the `return`?")
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckFailed(f"{name} should return a float, got {type(value).__name__}")
    return float(value)


class _WordTokenizer:
    """A stand-in tokenizer: one token per word and one per run of spaces."""

    def encode(self, text: str) -> list[int]:
        import re
        return [hash(piece) % 1000 for piece in re.findall(r"\S+|\s+", text)]


# ---- exercise 1: tokens_per_char -------------------------------------------------------------


@check("tokens_per_char")
def check_tokens_per_char(tokens_per_char: Callable[..., Any]) -> None:
    """Exercise 1: len(tok.encode(text)) / len(text), characters (not bytes)."""
    text = "caf\u00e9 na\u00efve \u65e5\u672c go"            # 16 characters, 22 bytes, 7 tokens
    shown = "tokens_per_char(tok, text) with a one-token-per-word tokenizer"
    got = _as_float(call(tokens_per_char, _WordTokenizer(), text, shown=shown), "tokens_per_char")
    n_tok, n_chars, n_bytes = 7, len(text), len(text.encode("utf-8"))
    if math.isclose(got, n_chars / n_tok, rel_tol=1e-6):
        raise CheckFailed("that is characters per token; divide the number of tokens by the "
                          "number of characters")
    if math.isclose(got, n_tok / n_bytes, rel_tol=1e-6):
        raise CheckFailed("you divided by the number of UTF-8 bytes; the task asks per character, "
                          "len(text)")
    if not math.isclose(got, n_tok / n_chars, rel_tol=1e-6):
        raise CheckFailed(f"expected {n_tok / n_chars:.4f} ({n_tok} tokens / {n_chars} "
                          f"characters), got {got:.4f}")


# ---- exercise 2: bits_per_byte ---------------------------------------------------------------


@check("bits_per_byte")
def check_bits_per_byte(bits_per_byte: Callable[..., Any]) -> None:
    """Exercise 2: loss (nats/token) * n_tokens / (ln 2 * n_bytes)."""
    loss, n_tokens, n_bytes = 2.7, 300, 1150
    shown = f"bits_per_byte({loss}, n_tokens={n_tokens}, n_bytes={n_bytes})"
    got = _as_float(call(bits_per_byte, loss, n_tokens, n_bytes, shown=shown), "bits_per_byte")
    want = loss * n_tokens / (math.log(2) * n_bytes)
    if math.isclose(got, loss * n_tokens / n_bytes, rel_tol=1e-6):
        raise CheckFailed("that is nats per byte: divide by ln 2 (math.log(2)) to get bits")
    if math.isclose(got, loss / math.log(2), rel_tol=1e-6):
        raise CheckFailed("that is bits per token: multiply by n_tokens / n_bytes to spread "
                          "the bits of all tokens over the bytes of the text")
    if math.isclose(got, loss * n_tokens / (math.log(10) * n_bytes), rel_tol=1e-6):
        raise CheckFailed("bits need log base 2: divide by math.log(2), not math.log(10)")
    if math.isclose(got, loss * n_bytes / (math.log(2) * n_tokens), rel_tol=1e-6):
        raise CheckFailed("n_tokens and n_bytes are swapped: bits per byte = loss * n_tokens / "
                          "(ln 2 * n_bytes)")
    if math.isclose(got, loss * n_tokens * math.log(2) / n_bytes, rel_tol=1e-6):
        raise CheckFailed("you multiplied by ln 2; divide by it (nats / ln 2 = bits)")
    if not math.isclose(got, want, rel_tol=1e-6):
        raise CheckFailed(f"expected {want:.4f} for {shown}, got {got:.4f}")


# ---- exercise 3: rare_characters -------------------------------------------------------------


@check("rare_characters")
def check_rare_characters(rare_characters: Callable[..., Any]) -> None:
    """Exercise 3: the characters outside the most frequent ones covering ``coverage``."""
    text = "e" * 50 + "t" * 25 + "a" * 13 + "q" * 7 + "\u00e9" * 4 + "\u65e5"   # 100 characters
    shown = "rare_characters(text, 0.9) on a 100-character text"
    got = call(rare_characters, text, 0.9, shown=shown)
    if got is None:
        raise CheckFailed("rare_characters returned None; did you forget the `return`?")
    got = set(as_list(sorted(got) if isinstance(got, (set, frozenset)) else got,
                      "rare_characters"))
    if got == {"e", "t", "a", "q"} or got == {"e", "t", "a"}:
        raise CheckFailed("those are the kept (frequent) characters; return the rare ones, the "
                          "characters that are not kept")
    if got == {"q", "\u00e9", "\u65e5"}:
        raise CheckFailed("'q' was dropped, but e, t, a cover only 88% of the text: keep "
                          "characters while the covered share is below the coverage, so the "
                          "character that crosses 90% is kept")
    if got == {"\u65e5"}:
        raise CheckFailed("coverage is a share of all characters counted with repeats "
                          "(Counter(text)), not a share of the distinct characters")
    if got != {"\u00e9", "\u65e5"}:
        raise CheckFailed(f"expected {{'\u00e9', '\u65e5'}} for {shown}, got {sorted(got)}; rank "
                          "the characters by count, most frequent first")
    got = call(rare_characters, text, 1.0, shown="rare_characters(text, 1.0)")
    if got is None or len(set(got)) != 0:
        raise CheckFailed(f"coverage 1.0 keeps every character, so nothing is rare; got "
                          f"{sorted(got) if got is not None else None}")
