"""Near-duplicate detection with MinHash and LSH banding, written from scratch.

Two documents are *near duplicates* when their sets of shingles (here: runs of ``k`` words) are
similar; the similarity is the Jaccard index ``|A & B| / |A | B|``. Comparing every pair of a
corpus is quadratic, so real pipelines estimate it with **MinHash** (Broder, 1997) and find the
candidate pairs with **locality-sensitive hashing** (LSH) by banding:

1. :func:`shingles` - the set of word ``k``-grams of a normalised document.
2. :class:`MinHasher` - ``num_perm`` random hash functions ``h_i(x) = (a_i x + b_i) mod p``;
   the signature of a set is the minimum of each ``h_i`` over it. For one ``h_i``,
   ``P[min h_i(A) == min h_i(B)] = Jaccard(A, B)``, so the share of equal signature entries
   estimates the Jaccard index (:func:`estimate_jaccard`).
3. :func:`lsh_candidates` - cut every signature into ``bands`` bands of ``rows`` entries; two
   documents that agree on a whole band land in the same bucket and become a candidate pair.
   A pair of similarity ``s`` becomes a candidate with probability
   ``1 - (1 - s**rows)**bands`` (:func:`lsh_probability`), an S-curve around
   ``(1 / bands) ** (1 / rows)``.
4. :func:`near_duplicates` / :func:`dedup_near` - candidates whose estimated similarity reaches
   the threshold; keep the first document of each group.

The production choice in Python is the ``datasketch`` package (``MinHash``, ``MinHashLSH``),
which implements the same scheme with many more options; this module exists to show the idea.

>>> docs = ["the cat sat on the mat today", "the cat sat on the mat today !", "a dog ran"]
>>> hasher = MinHasher(num_perm=64, seed=0)
>>> sigs = [hasher.signature(shingles(d, k=2)) for d in docs]
>>> round(jaccard(shingles(docs[0], 2), shingles(docs[1], 2)), 3)
0.857
>>> estimate_jaccard(sigs[0], sigs[2]) < 0.2
True
>>> dedup_near(docs, threshold=0.6, k=2, num_perm=64, bands=16)
[0, 2]
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "MERSENNE_PRIME",
    "MinHasher",
    "dedup_near",
    "estimate_jaccard",
    "jaccard",
    "lsh_candidates",
    "lsh_probability",
    "near_duplicates",
    "shingle_hash",
    "shingles",
]

#: The prime of the hash family: 2**31 - 1, so ``a * x + b`` (all below 2**31) fits in int64.
MERSENNE_PRIME = (1 << 31) - 1

_WORD = re.compile(r"\w+|[^\w\s]")


def shingles(text: str, k: int = 3) -> set[str]:
    """The set of word ``k``-grams of ``text``, lower-cased (punctuation marks count as words).

    A text shorter than ``k`` words gives one shingle, the whole text, so it still has a set.

    >>> sorted(shingles("The cat sat. The cat", k=2))
    ['. the', 'cat sat', 'sat .', 'the cat']
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    words = _WORD.findall(text.lower())
    if len(words) <= k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    """``|a & b| / |a | b|``, and 1.0 for two empty sets.

    >>> jaccard({"x", "y"}, {"y", "z"})
    0.3333333333333333
    """
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def shingle_hash(shingle: str) -> int:
    """A stable 31-bit hash of a shingle (Python's ``hash`` of a str changes per process)."""
    digest = hashlib.blake2b(shingle.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % MERSENNE_PRIME


class MinHasher:
    """``num_perm`` hash functions ``h_i(x) = (a_i * x + b_i) mod (2**31 - 1)``, drawn from ``seed``.

    Args:
        num_perm: the signature length; the estimate's standard error is about
            ``sqrt(s (1 - s) / num_perm)``.
        seed: the random ``a_i``, ``b_i``; signatures compare only between equal seeds.
    """

    def __init__(self, num_perm: int = 128, seed: int = 0) -> None:
        if num_perm < 1:
            raise ValueError(f"num_perm must be >= 1, got {num_perm}")
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self.a = rng.integers(1, MERSENNE_PRIME, size=num_perm, dtype=np.int64)   # (P,)
        self.b = rng.integers(0, MERSENNE_PRIME, size=num_perm, dtype=np.int64)   # (P,)

    def signature(self, items: Iterable[str]) -> np.ndarray:
        """The MinHash signature of a set of shingles: ``(num_perm,)`` int64.

        An empty set gets the largest value everywhere (it matches only other empty sets).
        """
        x = np.fromiter((shingle_hash(s) for s in items), dtype=np.int64)           # (S,)
        if x.size == 0:
            return np.full(self.num_perm, MERSENNE_PRIME, dtype=np.int64)
        h = (self.a[:, None] * x[None, :] + self.b[:, None]) % MERSENNE_PRIME       # (P, S)
        return h.min(axis=1)                                                        # (P,)


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The share of equal entries of two signatures: an unbiased estimate of the Jaccard index."""
    sig_a, sig_b = np.asarray(sig_a), np.asarray(sig_b)
    if sig_a.shape != sig_b.shape:
        raise ValueError(f"signatures of different lengths {sig_a.shape} and {sig_b.shape}; "
                         "use one MinHasher for all documents")
    return float((sig_a == sig_b).mean())


def lsh_probability(s: float, bands: int, rows: int) -> float:
    """Probability that a pair of Jaccard similarity ``s`` shares at least one band.

    >>> round(lsh_probability(0.8, bands=16, rows=8), 3), round(lsh_probability(0.3, 16, 8), 4)
    (0.947, 0.001)
    """
    return 1.0 - (1.0 - s ** rows) ** bands


def _check_bands(num_perm: int, bands: int) -> int:
    if bands < 1 or num_perm % bands:
        raise ValueError(f"bands={bands} must divide the signature length {num_perm}; "
                         "pick bands * rows == num_perm")
    return num_perm // bands


def lsh_candidates(signatures: Sequence[np.ndarray], bands: int) -> set[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of documents whose signatures agree on at least one band."""
    if len(signatures) == 0:
        return set()
    rows = _check_bands(len(signatures[0]), bands)
    pairs: set[tuple[int, int]] = set()
    for band in range(bands):
        buckets: dict[bytes, list[int]] = defaultdict(list)
        for i, sig in enumerate(signatures):
            buckets[np.asarray(sig[band * rows:(band + 1) * rows]).tobytes()].append(i)
        for members in buckets.values():
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    pairs.add((members[x], members[y]))
    return pairs


def near_duplicates(docs: Sequence[str], *, threshold: float = 0.7, k: int = 3,
                    num_perm: int = 128, bands: int = 32,
                    seed: int = 0) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, estimated_similarity)``, ``i < j``, with an estimate ``>= threshold``.

    Only LSH candidates are compared, so the cost grows with the corpus, not with its square.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    hasher = MinHasher(num_perm, seed)
    sigs = [hasher.signature(shingles(d, k)) for d in docs]
    out = []
    for i, j in sorted(lsh_candidates(sigs, bands)):
        s = estimate_jaccard(sigs[i], sigs[j])
        if s >= threshold:
            out.append((i, j, s))
    return out


def dedup_near(docs: Sequence[str], *, threshold: float = 0.7, k: int = 3,
               num_perm: int = 128, bands: int = 32, seed: int = 0) -> list[int]:
    """The indices of the documents to keep: each one that has no near duplicate kept before it."""
    dropped: set[int] = set()
    for i, j, _ in near_duplicates(docs, threshold=threshold, k=k, num_perm=num_perm,
                                   bands=bands, seed=seed):
        if i not in dropped:
            dropped.add(j)
    return [i for i in range(len(docs)) if i not in dropped]
