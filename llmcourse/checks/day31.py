"""Checks for day 31, "Data quality".

Each ``check_*`` function runs the learner's code on small cases of its own (unlike the
notebook's corpus), prints one line - a pass, a specific hint, or "not done yet" - and never
raises. The lesson continues with the package's versions (``llmcourse.data.clean`` and
``llmcourse.data.minhash``).

Example::

    >>> from llmcourse.checks import day31
    >>> from llmcourse.data.clean import exact_dedup
    >>> ok = day31.check_exact_dedup(exact_dedup)
    ✅ exact_dedup: passed
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from llmcourse.checks._core import CheckFailed, as_int_list, as_list, call, check

__all__ = ["check_length_filter", "check_strip_boilerplate", "check_exact_dedup",
           "check_minhash_signature"]


def _as_str(value: Any, name: str) -> str:
    if value is None:
        raise CheckFailed(f"{name} returned None; did you forget the `return`?")
    if isinstance(value, list):
        raise CheckFailed(f"{name} returned a list of {len(value)} items; join the kept lines "
                          "into one string with '\\n'.join(...)")
    if not isinstance(value, str):
        raise CheckFailed(f"{name} should return a str, got {type(value).__name__}")
    return value


# ---- exercise 1: length_filter ---------------------------------------------------------------


@check("length_filter")
def check_length_filter(length_filter: Callable[..., Any]) -> None:
    """Exercise 1: indices of documents with min_words <= words <= max_words."""
    docs = ["one two", "a b\nc\td", "x", "the cat sat on the mat", "w1 w2 w3 w4 w5 w6 w7"]
    shown = "length_filter(docs, min_words=4, max_words=6) on 5 small documents"
    got = as_int_list(call(length_filter, docs, 4, 6, shown=shown), "length_filter")
    if got == [1, 3, 4] or got == [3, 4]:
        raise CheckFailed("a document with more than max_words words was kept: keep only "
                          "min_words <= words <= max_words (both ends included)")
    if got == [3]:
        raise CheckFailed("'a b\\nc\\td' has 4 words: count words with doc.split(), which splits "
                          "at any run of white space (new lines too)")
    if got == [1]:
        raise CheckFailed("a document with exactly max_words words was dropped: max_words is "
                          "included (use <=)")
    if got == [0, 1, 3] or got == [0, 1, 2, 3]:
        raise CheckFailed("documents with fewer than min_words words were kept")
    if got != [1, 3]:
        raise CheckFailed(f"expected the indices [1, 3] for {shown}, got {got}; return the "
                          "indices (not the documents), in order")
    got = as_int_list(call(length_filter, docs, 1, 1, shown="length_filter(docs, 1, 1)"),
                      "length_filter")
    if got != [2]:
        raise CheckFailed(f"length_filter(docs, 1, 1) should keep only the one-word document "
                          f"[2], got {got}")


# ---- exercise 2: strip_boilerplate -----------------------------------------------------------


@check("strip_boilerplate")
def check_strip_boilerplate(strip_boilerplate: Callable[..., Any]) -> None:
    """Exercise 2: drop the lines matching any pattern (anywhere in the line) and blank lines."""
    patterns = [r"https?://", r"(?i)all rights reserved", r"^Tags:"]
    doc = ("Tags: fun, dogs\nThe dog ran fast.\n\nSee https://x.example for more\n"
           "It was happy.\n(c) Me. All Rights Reserved.\nThe end, Tags: none")
    shown = "strip_boilerplate(doc, patterns) with 3 patterns and a 7-line doc"
    got = _as_str(call(strip_boilerplate, doc, patterns, shown=shown), "strip_boilerplate")
    expected = "The dog ran fast.\nIt was happy.\nThe end, Tags: none"
    lines = got.split("\n")
    if "See https://x.example for more" in lines:
        raise CheckFailed("a line with a URL in its middle was kept: re.match only looks at the "
                          "start of a line; use re.search")
    if "" in lines:
        raise CheckFailed("blank lines were kept: drop lines that are empty after .strip() too")
    if "The end, Tags: none" not in got:
        raise CheckFailed("'The end, Tags: none' was dropped, but '^Tags:' only matches at the "
                          "start of a line; pass each pattern to re.search unchanged")
    if "(c) Me. All Rights Reserved." in lines:
        raise CheckFailed("a line matching one of the patterns (with its (?i) flag) was kept; "
                          "test every pattern with re.search(pattern, line)")
    if got != expected:
        raise CheckFailed(f"expected {expected!r}, got {got!r}; keep the other lines in order, "
                          "joined with '\\n'")
    got = _as_str(call(strip_boilerplate, "only text\nhere", [], shown="no patterns"),
                  "strip_boilerplate")
    if got != "only text\nhere":
        raise CheckFailed(f"with no patterns every non-blank line stays, got {got!r}")


# ---- exercise 3: exact_dedup -----------------------------------------------------------------


@check("exact_dedup")
def check_exact_dedup(exact_dedup: Callable[..., Any]) -> None:
    """Exercise 3: indices of the first copy of each document, equal after normalisation."""
    docs = ["The cat.", "A dog ran.", "the  cat.", "A dog ran.\n", "The cat!", "THE CAT."]
    shown = "exact_dedup(docs) on 6 small documents"
    got = call(exact_dedup, docs, shown=shown)
    if isinstance(got, list) and got and all(isinstance(g, str) for g in got):
        raise CheckFailed("exact_dedup returned documents; return their indices (ints)")
    got = as_int_list(got, "exact_dedup")
    if got == [0, 1, 2, 3, 4, 5] or got == [0, 1, 2, 4, 5]:
        raise CheckFailed("documents that differ only in case or white space were kept: compare "
                          "normalize(doc) (lower case, white space runs as one space, stripped)")
    if got == [3, 4, 5] or got == [4, 5, 3] or sorted(got) == [3, 4, 5]:
        raise CheckFailed("you kept the last copy; keep the first one of each group")
    if sorted(got) == [0, 1, 4] and got != [0, 1, 4]:
        raise CheckFailed(f"got {got}: keep the original order (a set loses it)")
    if got != [0, 1, 4]:
        raise CheckFailed(f"expected [0, 1, 4] for {shown}, got {got}")
    got = as_int_list(call(exact_dedup, [], shown="exact_dedup([])"), "exact_dedup")
    if got != []:
        raise CheckFailed(f"exact_dedup([]) should be [], got {got}")


# ---- exercise 4: minhash_signature -----------------------------------------------------------


P = (1 << 31) - 1


@check("minhash_signature")
def check_minhash_signature(minhash_signature: Callable[..., Any]) -> None:
    """Exercise 4: signature[i] = min over shingles x of (a[i] * x + b[i]) % p."""
    rng = np.random.default_rng(7)
    x = rng.integers(0, P, size=9, dtype=np.int64)             # 9 shingles
    a = rng.integers(1, P, size=5, dtype=np.int64)             # 5 hash functions
    b = rng.integers(0, P, size=5, dtype=np.int64)
    shown = "minhash_signature(x, a, b, p) with 9 shingle hashes and 5 hash functions"
    got = call(minhash_signature, x, a, b, P, shown=shown)
    got = as_list(got.tolist() if isinstance(got, np.ndarray) else got, "minhash_signature")
    h = (a[:, None] * x[None, :] + b[:, None]) % P              # (5, 9)
    if len(got) == 9:
        raise CheckFailed("the signature has one entry per shingle; it needs one per hash "
                          "function: take the minimum over the shingles (axis=1 of (P, S))")
    if len(got) != 5:
        raise CheckFailed(f"the signature should have 5 entries (one per hash function), got "
                          f"{len(got)}")
    got = [int(g) for g in got]
    if got == h.max(axis=1).tolist():
        raise CheckFailed("that is the maximum of each hash function; MinHash takes the minimum")
    if got == (a[:, None] * x[None, :] + b[:, None]).min(axis=1).tolist():
        raise CheckFailed("the hashes were not taken modulo p: (a * x + b) % p")
    if got == ((a[:, None] * x[None, :]) % P).min(axis=1).tolist():
        raise CheckFailed("b is missing: each hash function is (a[i] * x + b[i]) % p")
    if got != h.min(axis=1).tolist():
        raise CheckFailed(f"got {got}, expected {h.min(axis=1).tolist()} for {shown}")
    same = call(minhash_signature, x[::-1].copy(), a, b, P, shown="the same shingles reversed")
    same = [int(g) for g in (same.tolist() if isinstance(same, np.ndarray) else same)]
    if same != got:
        raise CheckFailed("the signature changed when the shingles came in another order; "
                          "a set's signature must not depend on order")

