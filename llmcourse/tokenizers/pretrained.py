"""Load published BPE vocabularies (GPT-2, cl100k) into our :class:`BPETokenizer`.

From tiktoken: :func:`bpe_from_tiktoken` (the same as ``BPETokenizer.from_tiktoken``) recovers
the merges from tiktoken's ranks (:mod:`~llmcourse.tokenizers.ranks` explains how). With those
merges, our encoder reproduces tiktoken's ids (tested on the whole of Tiny Shakespeare,
hand-picked tricky strings and random Unicode text). One caveat: the pre-split regex runs on the
``regex`` module here and on Rust's regex in tiktoken, and each carries its own Unicode tables;
a code point that only the newer one has assigned (say a letter of a CJK extension added in the
latest Unicode version) can be split differently. Characters assigned in both versions agree.

GPT-2's original release instead has ``encoder.json`` (token string -> id) and ``vocab.bpe`` (one
merge per line) whose strings are bytes disguised as printable characters by
:func:`bytes_to_unicode`. :func:`load_gpt2_files` reads them.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .bpe import BPETokenizer
from .patterns import GPT2_SPLIT_PATTERN
from .ranks import merges_from_ranks

if TYPE_CHECKING:  # pragma: no cover
    import tiktoken


def bpe_from_tiktoken(encoding: str | tiktoken.Encoding) -> BPETokenizer:
    """Our :class:`BPETokenizer` with the vocabulary, pattern and special tokens of a tiktoken encoding.

    ``encoding`` is a name (``"gpt2"``, ``"r50k_base"``, ``"cl100k_base"``) or an Encoding; see
    :meth:`BPETokenizer.from_tiktoken`.
    """
    return BPETokenizer.from_tiktoken(encoding)


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from byte values to printable characters.

    Printable Latin-1 bytes (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) map to themselves; the
    other 68 bytes (controls, space, ...) map to ``chr(256)``, ``chr(257)``, ... in byte order.
    That is why a leading space shows up as ``Ġ`` (``chr(288)``) in GPT-2's files.

    >>> m = bytes_to_unicode()
    >>> m[ord("A")], m[ord(" ")], m[ord("\\n")]
    ('A', 'Ġ', 'Ċ')
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _unicode_to_bytes(s: str) -> bytes:
    inverse = {c: b for b, c in bytes_to_unicode().items()}
    try:
        return bytes(inverse[c] for c in s)
    except KeyError as e:
        raise ValueError(f"{s!r} holds {e.args[0]!r}, which is not a GPT-2 byte character") from None


def load_gpt2_files(
    encoder_json: str | os.PathLike[str], vocab_bpe: str | os.PathLike[str]
) -> BPETokenizer:
    """Load GPT-2's ``encoder.json`` and ``vocab.bpe`` into a :class:`BPETokenizer`.

    Entries of ``encoder.json`` whose ids come after the last merge (``<|endoftext|>``)
    become special tokens. Uses GPT-2's split pattern. The ids must follow the merge order
    (bytes ``0..255``, then merge ``i`` = id ``256 + i``), as they do in GPT-2's files.
    """
    with open(encoder_json, encoding="utf-8") as f:
        encoder: dict[str, int] = json.load(f)
    lines = Path(vocab_bpe).read_text(encoding="utf-8").split("\n")
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    merge_lines = [ln for ln in lines if ln.strip()]

    byte_ids = [-1] * 256
    for value, ch in bytes_to_unicode().items():
        if ch not in encoder:
            raise ValueError(f"{encoder_json}: the single-byte token {ch!r} is missing")
        byte_ids[value] = encoder[ch]
    merges: list[tuple[int, int]] = []
    for n, line in enumerate(merge_lines):
        try:
            left, right = line.split(" ")
        except ValueError:
            raise ValueError(f"{vocab_bpe}: merge line {n + 2} {line!r} is not two tokens") from None
        for part in (left, right, left + right):
            if part not in encoder:
                raise ValueError(f"{vocab_bpe}: token {part!r} (line {n + 2}) is not in {encoder_json}")
        if encoder[left + right] != 256 + n:
            raise ValueError(
                f"{encoder_json}: {left + right!r} has id {encoder[left + right]} but is merge #{n}; "
                f"this loader expects merge i to have id 256 + i"
            )
        merges.append((encoder[left], encoder[right]))
    # Whatever is neither a byte nor a merge result (GPT-2: "<|endoftext|>") is a special token.
    specials = {s: i for s, i in encoder.items() if i >= 256 + len(merges)}
    return BPETokenizer(
        merges, byte_ids=byte_ids, special_tokens=specials, pattern=GPT2_SPLIT_PATTERN, name="gpt2"
    )


__all__ = [
    "bpe_from_tiktoken",
    "bytes_to_unicode",
    "load_gpt2_files",
    "merges_from_ranks",
]
