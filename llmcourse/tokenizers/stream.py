"""Encode a large text file chunk by chunk, in bounded memory, with exactly the whole-text ids.

>>> for ids in encode_file("input.txt", get_tokenizer("gpt2")):   # doctest: +SKIP
...     out.write(ids.tobytes())                                      # uint16 ids

Cutting text at an arbitrary point would change the result: a BPE pre-token (``" the"``) or a
multi-byte UTF-8 character could be split in two. :func:`encode_file` therefore

- reads bytes and decodes them incrementally, so a character split across two reads is joined;
- only cuts the text at *safe points*, where encoding the two sides separately gives the same ids
  as encoding the whole:

  - BPE with a split pattern and tiktoken tokenizers: right after a newline that sits between two
    non-whitespace characters (``"...end.\\nNext..."``). Under the GPT-2 and GPT-4 patterns no
    pre-token crosses such a point, and none depends on what precedes it. Other patterns must
    share that property for the guarantee to hold.
  - character tokenizers: anywhere, or just after a newline when the tokenizer has special
    tokens or documents are being separated (so no special token string is cut).
  - BPE without a split pattern treats the whole text as one sequence: it cannot be streamed
    exactly, and :func:`encode_file` refuses it.

Memory is bounded by ``chunk_bytes`` plus the longest stretch of text without a safe point (a
file of one giant line, or with Windows ``\\r\\n`` line ends, has few; a warning says so).

With ``separator``, a line whose whole content equals ``separator`` ends a document: every
document is encoded on its own and followed by the end-of-text id. ``separator="<|endoftext|>"``
fits the public TinyStories release; ``separator=""`` makes each blank line a boundary (in the
TinyStories samples blank lines separate paragraphs as well as stories).
"""

from __future__ import annotations

import codecs
import os
import warnings
from collections.abc import Iterator
from typing import Any, Callable

import numpy as np
import regex

from .base import AllowedSpecial, Tokenizer, token_dtype
from .bpe import BPETokenizer
from .char import CharTokenizer
from .tiktoken_bridge import TiktokenTokenizer

# Searching backwards ((?r)) for the last "non-space, newline, non-space".
_SAFE_REV = regex.compile(r"(?r)\S\n(?=\S)")
_SAFE_FWD = regex.compile(r"\S\n(?=\S)")


def encode_file(
    path: str | os.PathLike[str],
    tokenizer: Tokenizer,
    *,
    chunk_bytes: int = 1 << 20,
    allowed_special: AllowedSpecial = "none_raise",
    separator: str | None = None,
    eot_token: int | None = None,
    dtype: Any = None,
    num_threads: int = 4,
    errors: str = "strict",
) -> Iterator[np.ndarray]:
    """Yield 1-D numpy arrays of token ids covering ``path``; their concatenation equals
    ``tokenizer.encode(text, allowed_special=allowed_special)`` for the whole text.

    Args:
        path: a UTF-8 text file; it is read as bytes (no newline translation, as with
            ``open(path, encoding="utf-8", newline="")``).
        tokenizer: any tokenizer of this package.
        chunk_bytes: how many bytes to read at a time (one array is yielded per read, at most).
        allowed_special: passed to ``tokenizer.encode`` (see :mod:`llmcourse.tokenizers.base`).
        separator: if given, a line equal to it (without its line end) ends a document. The
            separator lines are dropped, and so is the line end just before them (and the one
            ending the file); documents that are empty are skipped; every document is followed by ``eot_token``. The concatenation
            then equals ``sum((encode(doc) + [eot] for doc in documents), [])``.
        eot_token: the id written after each document; defaults to ``tokenizer.eot_token``.
        dtype: numpy dtype of the arrays; default ``uint16`` when every id fits, else ``uint32``.
        num_threads: threads for tiktoken-backed tokenizers (ours run in the calling thread).
        errors: how to treat invalid UTF-8: ``"strict"`` raises, ``"replace"`` substitutes U+FFFD.
    """
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
    dtype = _pick_dtype(tokenizer, dtype)
    eot = None
    if separator is not None:
        if "\n" in separator or "\r" in separator:
            raise ValueError("separator is the content of one line: it cannot hold a line end")
        eot = eot_token if eot_token is not None else tokenizer.eot_token
        if eot is None:
            raise ValueError(
                f"tokenizer {tokenizer.name!r} has no end-of-text token, needed after each document. "
                "Pass eot_token=<id>, or use a tokenizer with one (e.g. "
                "BPETokenizer.train(..., special_tokens=['<|endoftext|>']))"
            )
        sep_re = regex.compile(r"(?m)^" + regex.escape(separator) + r"(?:\r?\n|\Z)")

    find_cut = _cut_finder(tokenizer, has_separator=separator is not None)
    encode = _piece_encoder(tokenizer, allowed_special, num_threads)

    decoder = codecs.getincrementaldecoder("utf-8")(errors=errors)
    buf = ""
    doc_open = False  # some text of the current document was already emitted
    warned = False
    offset = 0
    with open(path, "rb") as f:
        while True:
            raw = f.read(chunk_bytes)
            final = not raw
            try:
                buf += decoder.decode(raw, final=final)
            except UnicodeDecodeError as e:
                raise ValueError(
                    f"{os.fspath(path)} is not valid UTF-8 near byte {offset + e.start}: {e.reason}. "
                    "Fix the file, or pass errors='replace' to substitute U+FFFD"
                ) from None
            offset += len(raw)
            out: list[list[int]] = []

            if separator is not None:
                while True:
                    m = sep_re.search(buf)
                    if m is None:
                        break
                    if not m.group().endswith("\n") and not (final and separator):
                        # A separator at the very end without a line end: it may continue in
                        # the next read; at the end of the file, only a non-empty one counts
                        # (the "empty line" after a final newline is no blank line).
                        break
                    tail = buf[: m.start()]
                    if tail.endswith("\n"):
                        tail = tail[:-2] if tail.endswith("\r\n") else tail[:-1]
                    if tail:
                        out.append(encode(tail))
                    if tail or doc_open:
                        out.append([eot])  # type: ignore[list-item]
                    doc_open = False
                    buf = buf[m.end() :]

            if final:
                cut = len(buf)
            else:
                cut = find_cut(buf)
            if cut > 0:
                piece = buf[:cut]
                buf = buf[cut:]
                if separator is not None and final and piece.endswith("\n"):
                    # The line end before the end of the file closes the last document, like the
                    # one before a separator line.
                    piece = piece[:-2] if piece.endswith("\r\n") else piece[:-1]
                if piece:
                    out.append(encode(piece))
                    doc_open = True
                if separator is not None and final and doc_open:
                    out.append([eot])  # type: ignore[list-item]
            elif not warned and len(buf) > 64 * chunk_bytes:
                warnings.warn(
                    f"{os.fspath(path)}: {len(buf):,} characters without a safe point to cut the text "
                    "(very long lines or \\r\\n line ends); memory use grows until one is found",
                    stacklevel=2,
                )
                warned = True

            if out:
                arr = np.fromiter((i for ids in out for i in ids), dtype=dtype)
                if arr.size:
                    yield arr
            if final:
                return


def _pick_dtype(tokenizer: Tokenizer, dtype: Any) -> np.dtype[Any]:
    top = tokenizer.vocab_size - 1
    if dtype is None:
        return token_dtype(tokenizer.vocab_size)
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu" or top > np.iinfo(dtype).max:
        raise ValueError(f"dtype {dtype} cannot hold ids up to {top}; use uint32 or int64")
    return dtype


def _cut_finder(tokenizer: Tokenizer, *, has_separator: bool) -> Callable[[str], int]:
    """Return ``f(buf) -> n``: the text ``buf[:n]`` can be encoded now (0: wait for more)."""
    if isinstance(tokenizer, CharTokenizer):
        if not tokenizer.special_tokens and not has_separator:
            return len

        if not has_separator:

            def after_last_newline(buf: str) -> int:
                return buf.rfind("\n") + 1

            return after_last_newline

        def before_last_complete_line(buf: str) -> int:
            # The last complete line is not a separator (those were consumed), so cutting before it
            # never separates a document from the line end that a separator would drop.
            last = buf.rfind("\n")
            return buf.rfind("\n", 0, last) + 1 if last > 0 else 0

        return before_last_complete_line
    if isinstance(tokenizer, BPETokenizer) and tokenizer.pattern is None:
        raise ValueError(
            f"tokenizer {tokenizer.name!r} has no split pattern, so BPE may merge across any point "
            "of the file and it cannot be encoded chunk by chunk exactly. Read the file and call "
            "tokenizer.encode(text), or use a tokenizer trained with a pattern (e.g. pattern='gpt2')"
        )

    def safe_point(buf: str) -> int:
        # With a separator, only cut before a complete line (one that cannot still turn out to
        # be a separator line).
        end = buf.rfind("\n") + 1 if has_separator else len(buf)
        m = _SAFE_REV.search(buf, 0, end)
        return m.end() if m else 0

    return safe_point


def _piece_encoder(
    tokenizer: Tokenizer, allowed_special: AllowedSpecial, num_threads: int
) -> Callable[[str], list[int]]:
    if isinstance(tokenizer, TiktokenTokenizer) and num_threads > 1:

        def encode_parallel(text: str) -> list[int]:
            if len(text) < 1 << 16:
                return tokenizer.encode(text, allowed_special=allowed_special)
            parts = _split_safe(text, num_threads)
            out: list[int] = []
            for ids in tokenizer.encode_batch(
                parts, allowed_special=allowed_special, num_threads=num_threads
            ):
                out.extend(ids)
            return out

        return encode_parallel

    def encode_one(text: str) -> list[int]:
        return tokenizer.encode(text, allowed_special=allowed_special)

    return encode_one


def _split_safe(text: str, n: int) -> list[str]:
    """Cut ``text`` at safe points into about ``n`` parts of similar length."""
    parts = []
    start = 0
    step = len(text) // n
    for k in range(1, n):
        m = _SAFE_FWD.search(text, max(start, k * step))
        if m is None:
            break
        parts.append(text[start : m.end()])
        start = m.end()
    parts.append(text[start:])
    return [p for p in parts if p]


__all__ = ["encode_file"]
