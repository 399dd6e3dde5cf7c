"""From tiktoken's *mergeable ranks* to our *merges*, and loading tiktoken encodings by name.

tiktoken ships a vocabulary as ``{token bytes: rank}``, where the rank is also the token id, and
encodes by repeatedly joining the adjacent pair whose concatenation has the lowest rank. Our
:class:`~llmcourse.tokenizers.BPETokenizer` stores merges instead (``(a, b) -> new id``). The
merge behind the token of rank ``r`` is found by running that same procedure on the token's own
bytes while only allowing ranks ``< r``: it stops at exactly two parts, and those are the pair.

This module sits below ``bpe`` (it knows nothing of our tokenizer classes), so that
``BPETokenizer.from_tiktoken`` and the tiktoken wrapper can both use it without a cycle.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import tiktoken

__all__ = ["merges_from_ranks", "tiktoken_merges", "get_encoding"]


def merges_from_ranks(ranks: dict[bytes, int]) -> tuple[list[int], list[tuple[int, int]]]:
    """Recover ``(byte_ids, merges)`` from tiktoken-style mergeable ranks.

    Requires, as GPT-2, r50k and cl100k satisfy, that the 256 single bytes have ranks
    ``0..255`` and the other tokens ranks ``256..N-1`` (so that merge ``i`` makes id ``256+i``).

    >>> ranks = {bytes([i]): i for i in range(256)}
    >>> ranks.update({b"ab": 256, b"abc": 257})
    >>> merges_from_ranks(ranks)[1]
    [(97, 98), (256, 99)]
    """
    n = len(ranks)
    by_rank: list[bytes | None] = [None] * n
    for tok, r in ranks.items():
        if not 0 <= r < n or by_rank[r] is not None:
            raise ValueError(f"ranks must be 0..{n - 1} without gaps or repeats; found rank {r}")
        by_rank[r] = tok
    byte_ids = [-1] * 256
    for r in range(256):
        tok = by_rank[r]
        if tok is None or len(tok) != 1:
            raise ValueError(
                f"rank {r} is {tok!r}; this loader expects the 256 single bytes at ranks 0..255"
            )
        byte_ids[tok[0]] = r
    merges: list[tuple[int, int]] = []
    for r in range(256, n):
        tok = by_rank[r]
        assert tok is not None
        if len(tok) < 2:
            raise ValueError(f"rank {r} is the single byte {tok!r}, but single bytes must be 0..255")
        parts = _restricted_bpe(ranks, tok, r)
        if len(parts) != 2:
            raise ValueError(
                f"token {tok!r} (rank {r}) cannot be built by merging two lower-ranked tokens; "
                "this vocabulary cannot be expressed as merges"
            )
        merges.append((ranks[parts[0]], ranks[parts[1]]))
    return byte_ids, merges


def _restricted_bpe(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """tiktoken's merge procedure on ``token``'s bytes, using only ranks below ``max_rank``."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 1:
        best_rank, best_i = max_rank, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best_rank:
                best_rank, best_i = r, i
        if best_i < 0:
            break
        parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return parts


@lru_cache(maxsize=4)
def tiktoken_merges(name: str) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
    """``(byte_ids, merges)`` of the named tiktoken encoding, cached per process (~1 s for cl100k)."""
    byte_ids, merges = merges_from_ranks(get_encoding(name)._mergeable_ranks)
    return tuple(byte_ids), tuple(merges)


def get_encoding(name: str) -> tiktoken.Encoding:
    """``tiktoken.get_encoding(name)`` with one-line errors for unknown names and offline use."""
    import tiktoken

    try:
        return tiktoken.get_encoding(name)
    except ValueError as e:
        raise ValueError(
            f"unknown tiktoken encoding {name!r}; known: {sorted(tiktoken.list_encoding_names())}"
        ) from e
    except Exception as e:  # network or cache problems
        raise RuntimeError(
            f"could not load the tiktoken encoding {name!r} ({type(e).__name__}: {e}). tiktoken "
            "downloads it on first use; offline, set TIKTOKEN_CACHE_DIR to a directory holding "
            "its cached files (the course ships one in shared/tiktoken_cache)"
        ) from e
