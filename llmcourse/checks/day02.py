"""Checks for day 02, "Byte Pair Encoding from scratch".

The learner writes five pieces of a byte-level BPE tokenizer; each check below runs one of
them on small inputs whose answer can be worked out by hand, prints one line (pass, specific
hint, or "not done yet") and returns ``True`` on a pass. None of them raises.

The checks accept any tie-breaking rule in training: a merge is right when, at its step, no
other pair was more frequent.

Example::

    >>> from llmcourse.checks import day02
    >>> def get_pair_counts(ids):
    ...     counts = {}
    ...     for pair in zip(ids, ids[1:]):
    ...         counts[pair] = counts.get(pair, 0) + 1
    ...     return counts
    >>> ok = day02.check_get_pair_counts(get_pair_counts)
    ✅ get_pair_counts: passed
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from llmcourse.checks._core import CheckFailed, as_int_list, call, first_difference, needs_earlier, run_check
from llmcourse.tokenizers import basic

__all__ = [
    "check_get_pair_counts",
    "check_merge",
    "check_train_bpe",
    "check_decode",
    "check_encode",
]

# Small corpora for the checks. The first is the lesson's worked example.
_BANANA = "banana bandana"
_CORPUS = (
    "the cat sat on the mat. the cat ate the rat; then the rat sat on the hat.\n"
    "Thé café servait des crêpes 🥞 - ça sent bon!\n"
)


# ---- reference pieces (the checks compare against these) -----------------------------------
# The textbook BPE is the package's own (llmcourse.tokenizers.basic); only the training loop is
# kept here, because the lesson breaks ties between equally frequent pairs with `max(counts,
# key=counts.get)` (the first pair seen), as the learner writes it.
_pair_counts = basic.get_stats
_merge = basic.merge
_encode = basic.encode


def _train(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    ids = list(text.encode("utf-8"))
    merges: dict[tuple[int, int], int] = {}
    for new_id in range(256, vocab_size):
        counts = _pair_counts(ids)
        if not counts:
            break
        pair = max(counts, key=counts.__getitem__)
        ids = _merge(ids, pair, new_id)
        merges[pair] = new_id
    return merges


def _vocab(merges: Mapping[tuple[int, int], int]) -> dict[int, bytes]:
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), idx in sorted(merges.items(), key=lambda kv: kv[1]):
        vocab[idx] = vocab[a] + vocab[b]
    return vocab


# ---- exercise 1 ----------------------------------------------------------------------------
def check_get_pair_counts(get_pair_counts: Callable[[list[int]], Any]) -> bool:
    """``get_pair_counts(ids)`` returns ``{(a, b): count}`` over adjacent pairs."""

    def body() -> None:
        ids = [1, 2, 3, 1, 2, 2, 2]
        got = call(get_pair_counts, list(ids), shown=f"get_pair_counts({ids})")
        if got is None:
            raise CheckFailed("get_pair_counts returned None; did you forget `return`?")
        got = dict(got)
        expected = _pair_counts(ids)
        if set(got) == set(expected) and all(v == 1 for v in got.values()):
            raise CheckFailed(
                "every count is 1: add one each time a pair is seen, e.g. "
                "counts[pair] = counts.get(pair, 0) + 1"
            )
        if got == {**expected, (2, 2): 1}:
            raise CheckFailed(
                "overlapping pairs are counted once: in [2, 2, 2] the pair (2, 2) occurs "
                "twice (positions 0-1 and 1-2); count every adjacent pair"
            )
        if (ids[-1], ids[0]) in got and (ids[-1], ids[0]) not in expected:
            raise CheckFailed(
                "you counted a pair that wraps around from the last id to the first; "
                "zip(ids, ids[1:]) stops at the last adjacent pair"
            )
        if any(not isinstance(k, tuple) for k in got):
            raise CheckFailed("the keys should be tuples (a, b) of two ids")
        if got != expected:
            raise CheckFailed(
                f"get_pair_counts({ids}) gave {got}, expected {expected}"
            )
        if dict(get_pair_counts([7])) != {} or dict(get_pair_counts([])) != {}:
            raise CheckFailed("a list with fewer than two ids has no pairs: return {}")
        banana = list(_BANANA.encode("utf-8"))
        if dict(get_pair_counts(banana)) != _pair_counts(banana):
            raise CheckFailed("wrong counts on the bytes of 'banana bandana'")

    return run_check("get_pair_counts", body)


# ---- exercise 2 ----------------------------------------------------------------------------
def check_merge(merge: Callable[[list[int], tuple[int, int], int], Any]) -> bool:
    """``merge(ids, pair, new_id)`` replaces every non-overlapping occurrence, left to right."""

    def body() -> None:
        cases = [
            ([1, 2, 3, 1, 2], (1, 2), 99),
            ([5, 5, 5], (5, 5), 7),  # overlap: only the first two merge
            ([1, 2], (2, 1), 9),  # nothing to merge
            ([], (1, 2), 9),
            ([1, 2, 1], (1, 2), 256),
        ]
        for ids, pair, new_id in cases:
            original = list(ids)
            got = as_int_list(call(merge, list(ids), pair, new_id, shown=f"merge({ids}, {pair}, {new_id})"),
                              f"merge({ids}, {pair}, {new_id})")
            expected = _merge(ids, pair, new_id)
            if got != expected:
                hint = ""
                if new_id in got and len(got) == len(ids) or ids == [5, 5, 5]:
                    hint = (
                        " - after a merge, skip past both ids of the pair (i += 2): the "
                        "second id of the pair is part of the new token"
                    )
                elif new_id not in got and new_id in expected:
                    hint = " - nothing was replaced; compare ids[i] and ids[i + 1] with the pair"
                elif ids and ids[-1] != expected[-1:][0]:
                    hint = " - check the end of the list: is the last id kept?"
                raise CheckFailed(
                    f"merge({original}, {pair}, {new_id}) gave {got}, expected {expected}{hint}"
                )

    return run_check("merge", body)


# ---- exercise 3 ----------------------------------------------------------------------------
def check_train_bpe(train_bpe: Callable[[str, int], Any]) -> bool:
    """``train_bpe(text, vocab_size)`` returns ``{(a, b): new_id}`` with ids 256, 257, ..."""

    @needs_earlier(get_pair_counts=1, merge=2)
    def body() -> None:
        vocab_size = 256 + 12
        merges = call(train_bpe, _CORPUS, vocab_size, shown=f"train_bpe(text, {vocab_size})")
        if merges is None:
            raise CheckFailed("train_bpe returned None; did you forget `return merges`?")
        merges = dict(merges)
        n_merges = vocab_size - 256
        if len(merges) != n_merges:
            raise CheckFailed(
                f"train_bpe(text, {vocab_size}) learned {len(merges)} merges, expected "
                f"{n_merges} (vocab_size - 256: the 256 bytes are already in the vocabulary)"
            )
        ordered = sorted(merges.items(), key=lambda kv: kv[1])
        new_ids = [idx for _, idx in ordered]
        if new_ids != list(range(256, vocab_size)):
            raise CheckFailed(
                f"the new ids should be 256, 257, ..., {vocab_size - 1} in order; got "
                f"{new_ids[:4]}..."
            )
        # Replay: every merge must be a most frequent pair of the sequence at its step.
        ids = list(_CORPUS.encode("utf-8"))
        for step, (pair, idx) in enumerate(ordered):
            counts = _pair_counts(ids)
            best = max(counts.values())
            if counts.get(pair, 0) != best:
                raise CheckFailed(
                    f"merge number {step} is {pair} (seen {counts.get(pair, 0)} times), but "
                    f"the most frequent pair at that step is seen {best} times; count the "
                    "pairs of the *current* ids (after the earlier merges) at every step"
                )
            ids = _merge(ids, pair, idx)

    return run_check("train_bpe", body)


# ---- exercise 4 ----------------------------------------------------------------------------
def check_decode(decode: Callable[[Sequence[int], Mapping[int, bytes]], Any]) -> bool:
    """``decode(ids, vocab)`` joins the tokens' bytes and decodes them as UTF-8, replacing errors."""

    def body() -> None:
        merges = _train(_CORPUS, 256 + 20)
        vocab = _vocab(merges)
        ids = _encode(_CORPUS, merges)
        got = call(decode, ids, vocab, shown=f"decode(ids, vocab) with {len(ids)} ids")
        if isinstance(got, (bytes, bytearray)):
            raise CheckFailed("decode returned bytes; finish with .decode('utf-8', errors='replace')")
        if not isinstance(got, str):
            raise CheckFailed(f"decode should return a str, got {type(got).__name__}")
        if got != _CORPUS:
            raise CheckFailed(
                f"decode(encode(text)) != text ({first_difference(got, _CORPUS)}); join the "
                "bytes of every token first, then decode the whole byte string once"
            )
        if decode([], vocab) != "":
            raise CheckFailed("decode([]) should be ''")
        # 'é' is two bytes; either byte alone is not valid UTF-8.
        try:
            half = decode([0xC3], vocab)
        except UnicodeDecodeError:
            raise CheckFailed(
                "decode raised UnicodeDecodeError on an incomplete character; a model can "
                "generate any id sequence, so pass errors='replace'"
            ) from None
        if half != "\ufffd":
            raise CheckFailed(f"decode([0xC3]) gave {half!r}, expected '\\ufffd' (U+FFFD)")

    return run_check("decode", body)


# ---- exercise 5 ----------------------------------------------------------------------------
def check_encode(encode: Callable[[str, Mapping[tuple[int, int], int]], Any]) -> bool:
    """``encode(text, merges)`` applies merges by rank (lowest new id first) until none applies."""

    @needs_earlier(get_pair_counts=1, merge=2)
    def body() -> None:
        merges = _train(_CORPUS, 256 + 30)
        for sample in ["the cat sat on the mat.", "the hat", "ça", "", "x", "🥞 thé"]:
            got = as_int_list(call(encode, sample, merges, shown=f"encode({sample!r}, merges)"),
                              f"encode({sample!r}, merges)")
            expected = _encode(sample, merges)
            if got != expected:
                hint = ""
                if len(got) == len(sample.encode("utf-8")):
                    hint = " - no merge was applied; loop until no pair of ids is in merges"
                elif len(got) > len(expected):
                    hint = " - some merges were not applied; keep merging until no pair is in merges"
                raise CheckFailed(
                    f"encode({sample!r}) gave {got}, expected {expected}{hint}"
                )
        # Merge order matters: with merges a+b -> 256 (rank 0) then b+c -> 257 (rank 1),
        # "abc" must become [256, c], never [a, 257], even though (b, c) comes second.
        toy = {(ord("b"), ord("c")): 257, (ord("a"), ord("b")): 256}
        got = as_int_list(call(encode, "abcbc", toy, shown="encode('abcbc', merges)"), "encode")
        if got != [256, ord("c"), 257]:
            raise CheckFailed(
                f"with merges {{(a,b): 256, (b,c): 257}}, 'abcbc' should encode to "
                f"[256, 99, 257], got {got}: apply the merge with the lowest rank (smallest "
                "new id) first, not the most frequent pair or the first pair in the text"
            )

    return run_check("encode", body)
