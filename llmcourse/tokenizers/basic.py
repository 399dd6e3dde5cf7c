"""Byte-pair encoding as the textbook writes it: count pairs, merge the most frequent, repeat.

This is the reference for lesson 2, in the fewest lines: the text is one sequence of UTF-8
bytes (ids 0-255), and every merge recounts every pair. :class:`~llmcourse.tokenizers.BPETokenizer`
learns the *same* merges (``BPETokenizer.train(text, vocab_size, pattern=None)``) much faster,
by updating only the counts a merge changes (:mod:`~llmcourse.tokenizers.bpe_train`), and adds
regex pre-splitting and special tokens; a test checks that both give the same merges and ids.

Ties: among pairs of equal count the smallest pair ``(a, b)`` is merged first, the fast
trainer's rule, so the result depends only on the text.

Example:
    >>> merges = train("banana bandana", 256 + 3)
    >>> merges                                  # "an" -> 256, then "b"+"an", "an"+"a"
    {(97, 110): 256, (98, 256): 257, (256, 97): 258}
    >>> ids = encode("banana", merges)          # "ban" "ana"
    >>> ids, decode(ids, merges)
    ([257, 258], 'banana')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["get_stats", "merge", "train", "encode", "decode"]

Merges = Mapping[tuple[int, int], int]


def get_stats(ids: Sequence[int]) -> dict[tuple[int, int], int]:
    """How often each adjacent pair occurs: ``[1, 2, 3, 1, 2] -> {(1, 2): 2, (2, 3): 1, (3, 1): 1}``.

    >>> get_stats([1, 2, 3, 1, 2])
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: Sequence[int], pair: tuple[int, int], idx: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``idx``, left to right.

    >>> merge([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    >>> merge([1, 1, 1], (1, 1), 4)              # non-overlapping: the first two
    [4, 1]
    """
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    """Learn ``vocab_size - 256`` merges (fewer if the text runs out of pairs).

    Returns ``{pair: new_id}`` in the order learned; new ids count up from 256.
    """
    ids = list(text.encode("utf-8"))  # the text as bytes 0..255; each merge shortens it
    merges: dict[tuple[int, int], int] = {}  # (a, b) -> new id, in the order learned
    for idx in range(256, vocab_size):
        stats = get_stats(ids)
        if not stats:
            break
        pair = min(stats, key=lambda p: (-stats[p], p))  # the most frequent; smallest on ties
        ids = merge(ids, pair, idx)
        merges[pair] = idx
    return merges


def encode(text: str, merges: Merges) -> list[int]:
    """The ids of ``text``: apply the merges in the order they were learned (lowest id first)."""
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        # the pair learned earliest (lowest new id); pairs never learned rank last
        pair = min(get_stats(ids), key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break  # nothing left to merge
        ids = merge(ids, pair, merges[pair])
    return ids


def decode(ids: Sequence[int], merges: Merges) -> str:
    """The text of ``ids``: each id's bytes, joined, read as UTF-8 (bad bytes become U+FFFD)."""
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), idx in sorted(merges.items(), key=lambda kv: kv[1]):
        vocab[idx] = vocab[a] + vocab[b]
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
