"""Checks for day 02, "Byte Pair Encoding from scratch".

The learner writes five pieces of a byte-level BPE tokenizer; each check below compares one of
them with the package's textbook BPE (``llmcourse.tokenizers.basic``) on a small seeded
battery (empty and one-id inputs, overlapping pairs, ids above 255, the lesson's worked
example, texts with multi-byte characters), prints one line (pass, specific hint, or "not done
yet") and returns ``True`` on a pass. None of them raises. Every exercise has a table of
typical mistakes (``GET_PAIR_COUNTS``, ``MERGE``, ``TRAIN_BPE``, ``DECODE``, ``ENCODE``) from
which the hints and the tests come.

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

import random
from typing import Any, Callable, Mapping, Sequence

from llmcourse.checks._core import labelled as _labelled  # shared in _core
from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_int_list, check, compare, kind_of,
                                    needs_earlier, none_hint)
from llmcourse.tokenizers import basic

__all__ = [
    "check_get_pair_counts",
    "check_merge",
    "check_train_bpe",
    "check_decode",
    "check_encode",
    "GET_PAIR_COUNTS",
    "MERGE",
    "TRAIN_BPE",
    "DECODE",
    "ENCODE",
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


# ---- exercise 1: get_pair_counts -------------------------------------------------------------
def _counts_all_ones(ids):
    return {p: 1 for p in zip(ids, ids[1:])}


def _counts_no_overlap(ids):  # skips past a counted pair, so overlapping pairs count once
    counts, i = {}, 0
    while i + 1 < len(ids):
        pair = (ids[i], ids[i + 1])
        counts[pair] = counts.get(pair, 0) + 1
        i += 2 if ids[i] == ids[i + 1] else 1
    return counts


def _counts_wrap(ids):
    ids = list(ids)
    counts = {}
    for pair in zip(ids, ids[1:] + ids[:1]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def _counts_str_keys(ids):
    counts = {}
    for a, b in zip(ids, ids[1:]):
        counts[f"{a},{b}"] = counts.get(f"{a},{b}", 0) + 1
    return counts


def _counts_misses_last(ids):  # range(len(ids) - 2): one pair short
    counts = {}
    for i in range(len(ids) - 2):
        pair = (ids[i], ids[i + 1])
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def _counts_every_other(ids):  # zip(ids[::2], ids[1::2]): pairs (0, 1), (2, 3), ... only
    counts = {}
    for pair in zip(ids[::2], ids[1::2]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def _counts_reversed(ids):  # keys (b, a) instead of (a, b)
    counts = {}
    for a, b in zip(ids, ids[1:]):
        counts[(b, a)] = counts.get((b, a), 0) + 1
    return counts


def _counts_consumes_ids(ids):  # pops from the caller's list: ids is empty afterwards
    counts = {}
    while len(ids) > 1:
        a = ids.pop(0)
        counts[(a, ids[0])] = counts.get((a, ids[0]), 0) + 1
    return counts


_IDS_CHANGED = ("get_pair_counts changed the list ids it was given: only read it (zip(ids, ids[1:])), "
                "the caller still needs its ids")

GET_PAIR_COUNTS = [
    Mistake("changes ids", _counts_consumes_ids, expect=_IDS_CHANGED),
    Mistake("every other pair", _counts_every_other,
            hint="only every other pair was counted (ids[0], ids[1]), (ids[2], ids[3]), ...: the pairs "
                 "overlap, so count (ids[i], ids[i + 1]) for EVERY i, zip(ids, ids[1:])"),
    Mistake("pairs reversed", _counts_reversed,
            hint="the pairs are the wrong way round: key each pair as (ids[i], ids[i + 1]), the left "
                 "id first"),
    Mistake("every count 1", _counts_all_ones,
            hint="every count is 1: add one each time a pair is seen, e.g. counts[pair] = counts.get(pair, 0) + 1"),
    Mistake("no overlap", _counts_no_overlap,
            hint="overlapping pairs are counted once: in [2, 2, 2] the pair (2, 2) occurs twice "
                 "(positions 0-1 and 1-2); count every adjacent pair"),
    Mistake("misses the last pair", _counts_misses_last,
            hint="the last pair is missing: a list of n ids has n - 1 adjacent pairs, so loop over "
                 "range(len(ids) - 1) (or zip(ids, ids[1:]))"),
    Mistake("wraps around", _counts_wrap,
            hint="you counted a pair that wraps around from the last id to the first; zip(ids, ids[1:]) "
                 "stops at the last adjacent pair"),
    Mistake("string keys", _counts_str_keys, expect="the keys should be tuples (a, b) of two ids"),
]


def _read_counts(value: Any, case: Case) -> dict[Any, Any]:
    if value is None:
        raise none_hint("get_pair_counts", "a dict {(a, b): count}")
    if not isinstance(value, Mapping):
        raise CheckFailed(f"get_pair_counts should return a dict {{(a, b): count}}, got {kind_of(value)}")
    if any(not (isinstance(k, tuple) and len(k) == 2) for k in value):
        raise CheckFailed(f"the keys should be tuples (a, b) of two ids, got {next(iter(value))!r}")
    return {tuple(int(x) for x in k): v for k, v in value.items()}


def _pair_cases() -> list[Case]:
    rng = random.Random(2)
    noisy = [rng.randrange(4) for _ in range(200)]
    return [Case("get_pair_counts([1, 2, 3, 4])", [1, 2, 3, 4]),
            Case("get_pair_counts([1, 2, 3, 1, 2, 2, 2])", [1, 2, 3, 1, 2, 2, 2]),
            Case("get_pair_counts([])", []),
            Case("get_pair_counts([7])", [7]),
            Case("get_pair_counts(the bytes of 'banana bandana')", list(_BANANA.encode("utf-8"))),
            Case("get_pair_counts([256, 300, 256, 300, 300, 300]) (ids above 255)", [256, 300, 256, 300, 300, 300]),
            Case("get_pair_counts(200 random ids in 0..3)", noisy)]


def _run_pair_counts(impl: Any, case: Case) -> Any:
    """``impl(ids)`` on a fresh copy of ids, which must come back unchanged."""
    (ids,), _ = case.fresh()
    before = list(ids)
    out = impl(ids)
    if ids != before:
        raise CheckFailed(f"{_IDS_CHANGED} (on {case.label})")
    return out


@check("get_pair_counts", mistakes=GET_PAIR_COUNTS)
def check_get_pair_counts(get_pair_counts: Callable[[list[int]], Any]) -> None:
    """``get_pair_counts(ids)`` returns ``{(a, b): count}`` over adjacent pairs; ``ids`` stays as it was."""
    compare(get_pair_counts, _pair_counts, _pair_cases(), name="get_pair_counts(ids)", run=_run_pair_counts,
            mistakes=GET_PAIR_COUNTS, read=_labelled(_read_counts))


# ---- exercise 2: merge -----------------------------------------------------------------------
def _merge_step_one(ids, pair, new_id):  # merges (i, i+1) but only moves one step
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
        else:
            out.append(ids[i])
        i += 1
    return out


def _merge_drops_last(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_first_only(ids, pair, new_id):
    ids = list(ids)
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == tuple(pair):
            return ids[:i] + [new_id] + ids[i + 2:]
    return ids


def _merge_in_place(ids, pair, new_id):  # rewrites the caller's list and returns it
    i = 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == tuple(pair):
            ids[i:i + 2] = [new_id]
        i += 1
    return ids


def _merge_last_always_copied(ids, pair, new_id):  # loop to len - 1, then the last id unconditionally
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    if ids:
        out.append(ids[-1])
    return out


def _merge_str_replace(ids, pair, new_id):  # replaces the pair in the ids' text: '12 3' holds '2 3'
    text = " ".join(str(i) for i in ids).replace(f"{pair[0]} {pair[1]}", str(new_id))
    return [int(t) for t in text.split()]


def _merge_no_bound_check(ids, pair, new_id):  # reads ids[i + 1] past the end
    out, i = [], 0
    while i < len(ids):
        if ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_first_id_only(ids, pair, new_id):  # tests ids[i] == pair[0] and nothing else
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_right_to_left(ids, pair, new_id):  # walks from the end: [5, 5, 5] -> [5, 7]
    out, i = [], len(ids) - 1
    while i >= 0:
        if i > 0 and (ids[i - 1], ids[i]) == tuple(pair):
            out.append(new_id)
            i -= 2
        else:
            out.append(ids[i])
            i -= 1
    return out[::-1]


_NEW_LIST = "merge changed the list ids it was given: return a new list; leave ids as it was"

MERGE = [
    Mistake("rewrites ids in place", _merge_in_place, expect=_NEW_LIST),
    Mistake("i += 1 after a merge", _merge_step_one,
            hint="after a merge, skip past both ids of the pair (i += 2): the second id of the pair "
                 "is part of the new token"),
    Mistake("drops the last id", _merge_drops_last,
            hint="the last id is lost: the loop must run while i < len(ids) and copy a last id "
                 "that is not part of a pair"),
    Mistake("first occurrence only", _merge_first_only,
            hint="only the first occurrence was replaced: walk the whole list and replace every "
                 "non-overlapping occurrence"),
    Mistake("last id copied after the loop", _merge_last_always_copied,
            hint="the last id was copied after the loop even when the pair before it had just been "
                 "merged: copy it only when the loop stopped on it (i == len(ids) - 1)"),
    Mistake("replaces in the ids' text", _merge_str_replace,
            hint="the pair was replaced in the ids written as text, where '12 3' also contains '2 3': "
                 "compare the ids themselves, ids[i] == pair[0] and ids[i + 1] == pair[1]"),
    Mistake("no bound check", _merge_no_bound_check,
            hint="ids[i + 1] does not exist at the last id: test i + 1 < len(ids) before comparing "
                 "ids[i + 1] with pair[1]"),
    Mistake("first id only", _merge_first_id_only,
            hint="only the first id of the pair was compared: merge where ids[i] == pair[0] AND "
                 "ids[i + 1] == pair[1]"),
    Mistake("right to left", _merge_right_to_left,
            hint="the merge walked from the right: walk from left to right, so that "
                 "merge([5, 5, 5], (5, 5), 7) == [7, 5]"),
]


def _merge_cases() -> list[Case]:
    rng = random.Random(3)
    noisy = [rng.choice([1, 2, 2, 3]) for _ in range(120)]
    return [Case("merge([1, 2, 3, 1, 2], (1, 2), 99)", [1, 2, 3, 1, 2], (1, 2), 99),
            Case("merge([5, 5, 5], (5, 5), 7) (overlapping occurrences)", [5, 5, 5], (5, 5), 7),
            Case("merge([1, 2], (2, 1), 9) (nothing to merge)", [1, 2], (2, 1), 9),
            Case("merge([], (1, 2), 9)", [], (1, 2), 9),
            Case("merge([1, 2, 1], (1, 2), 256)", [1, 2, 1], (1, 2), 256),
            Case("merge([7, 300, 300, 300, 300, 7], (300, 300), 301)", [7, 300, 300, 300, 300, 7], (300, 300), 301),
            Case("merge(120 random ids in 1..3, (2, 2), 260)", noisy, (2, 2), 260),
            Case("merge([12, 3, 1, 23, 2, 3], (2, 3), 99)", [12, 3, 1, 23, 2, 3], (2, 3), 99)]


def _run_merge(impl: Any, case: Case) -> Any:
    """``impl(ids, pair, new_id)`` on a fresh copy of ids, which must come back unchanged."""
    (ids, pair, new_id), _ = case.fresh()
    before = list(ids)
    out = impl(ids, pair, new_id)
    if ids != before:
        raise CheckFailed(f"{_NEW_LIST} (on {case.label})")
    return out


@check("merge", mistakes=MERGE)
def check_merge(merge: Callable[[list[int], tuple[int, int], int], Any]) -> None:
    """``merge(ids, pair, new_id)`` returns a new list with every non-overlapping occurrence
    replaced, left to right; ``ids`` itself stays as it was."""
    compare(merge, _merge, _merge_cases(), name="merge(ids, pair, new_id)", run=_run_merge,
            mistakes=MERGE, read=_labelled(lambda v, case: as_int_list(v, "merge")))


# ---- exercise 3: train_bpe -------------------------------------------------------------------
def _train_once(text, vocab_size):  # ranks pairs by their counts in the raw bytes only
    ids = list(text.encode("utf-8"))
    counts = _pair_counts(ids)
    ranked = sorted(counts, key=counts.get, reverse=True)
    return {p: 256 + k for k, p in enumerate(ranked[: vocab_size - 256])}


def _train_too_many(text, vocab_size):
    return _train(text, vocab_size + 256)


def _train_least(text, vocab_size):
    ids, merges = list(text.encode("utf-8")), {}
    for new_id in range(256, vocab_size):
        counts = _pair_counts(ids)
        if not counts:
            break
        pair = min(counts, key=counts.get)
        ids = _merge(ids, pair, new_id)
        merges[pair] = new_id
    return merges


def _train_no_update(text, vocab_size):  # forgets ids = merge(...)
    ids, merges = list(text.encode("utf-8")), {}
    for new_id in range(256, vocab_size):
        counts = _pair_counts(ids)
        if not counts:
            break
        pair = max(counts, key=counts.get)
        _merge(ids, pair, new_id)
        merges[pair] = new_id
    return merges


def _train_no_stop(text, vocab_size):  # max() of an empty dict once no pair is left
    ids, merges = list(text.encode("utf-8")), {}
    for new_id in range(256, vocab_size):
        counts = _pair_counts(ids)
        pair = max(counts, key=counts.get)
        ids = _merge(ids, pair, new_id)
        merges[pair] = new_id
    return merges


def _train_from_zero(text, vocab_size):
    ids, merges = list(text.encode("utf-8")), {}
    for new_id in range(vocab_size - 256):
        counts = _pair_counts(ids)
        if not counts:
            break
        pair = max(counts, key=counts.get)
        ids = _merge(ids, pair, new_id)
        merges[pair] = new_id
    return merges


def _train_code_points(text, vocab_size):  # ord(ch): code points, not UTF-8 bytes
    ids, merges = [ord(ch) for ch in text], {}
    for new_id in range(256, vocab_size):
        counts = _pair_counts(ids)
        if not counts:
            break
        pair = max(counts, key=counts.get)
        ids = _merge(ids, pair, new_id)
        merges[pair] = new_id
    return merges


def _train_inverted(text, vocab_size):  # records merges[new_id] = pair
    return {idx: pair for pair, idx in _train(text, vocab_size).items()}


def _train_stops_at_one(text, vocab_size):  # stops once the best pair is seen only once
    ids, merges = list(text.encode("utf-8")), {}
    for new_id in range(256, vocab_size):
        counts = _pair_counts(ids)
        if not counts or max(counts.values()) < 2:
            break
        pair = max(counts, key=counts.get)
        ids = _merge(ids, pair, new_id)
        merges[pair] = new_id
    return merges


TRAIN_BPE = [
    Mistake("counts once", _train_once,
            hint="count the pairs of the *current* ids (after the earlier merges) at every step"),
    Mistake("too many merges", _train_too_many,
            hint="vocab_size - 256 merges: the 256 bytes are already in the vocabulary"),
    Mistake("least frequent", _train_least,
            hint="take the most frequent pair at every step (max(counts, key=counts.get))"),
    Mistake("ids not updated", _train_no_update,
            hint="the ids are never updated: assign the merged list back, ids = merge(ids, pair, new_id)"),
    Mistake("no early stop", _train_no_stop,
            hint="stop when no pair is left (if not counts: break): a short text runs out of pairs"),
    Mistake("ids from 0", _train_from_zero,
            hint="the new ids should be 256, 257, ... (range(256, vocab_size)): 0-255 are the bytes"),
    Mistake("code points, not bytes", _train_code_points,
            hint="start from the UTF-8 bytes, list(text.encode('utf-8')), not the characters' code "
                 "points (ord): 'é' is the two bytes 195, 169, not the one number 233"),
    Mistake("stops when the best pair is seen once", _train_stops_at_one,
            hint="the training stopped while pairs were left: keep merging as long as any pair "
                 "is left, even one seen only once; stop only when counts is empty"),
    Mistake("merges[new_id] = pair", _train_inverted,
            hint="merges is the wrong way round (new_id -> pair): it maps each pair to its new id, "
                 "merges[pair] = new_id"),
]
_T_ONCE, _T_MANY, _T_LEAST, _T_UPDATE, _T_STOP, _T_ZERO, _T_ORD, _T_EARLY, _T_INVERTED = TRAIN_BPE


def _check_training(train_bpe: Any, text: str, vocab_size: int, label: str) -> None:
    shown = f"train_bpe({label}, {vocab_size})"
    try:
        merges = train_bpe(text, vocab_size)
    except (NotImplementedError, AssertionError):
        raise
    except ValueError as exc:
        if "empty" in str(exc) or "arg is an empty sequence" in str(exc):
            raise CheckFailed(f"{_T_STOP.hint} (your code raised ValueError: {exc} on {shown})") from exc
        raise CheckFailed(f"your code raised ValueError: {exc} on {shown}") from exc
    except Exception as exc:  # noqa: BLE001 - turned into a verdict
        raise CheckFailed(f"your code raised {type(exc).__name__}: {exc} on {shown}") from exc
    if merges is None:
        raise none_hint("train_bpe", "the dict merges {(a, b): new_id}")
    if not isinstance(merges, Mapping):
        raise CheckFailed(f"train_bpe should return a dict {{(a, b): new_id}}, got {kind_of(merges)}")
    merges = dict(merges)
    if merges and all(isinstance(k, int) and isinstance(v, tuple) for k, v in merges.items()):
        raise CheckFailed(f"{_T_INVERTED.hint} (on {shown})")
    n_merges = len(_train(text, vocab_size))
    if len(merges) == 1 and n_merges > 1 and list(merges.values()) == [256]:
        raise CheckFailed(f"{_T_EARLY.hint} (on {shown}: 1 merge learned, expected {n_merges})")
    if len(merges) == 1 and n_merges > 1:
        raise CheckFailed(f"{_T_UPDATE.hint} (on {shown}: 1 merge learned)")
    if len(merges) != n_merges:
        why = _T_MANY.hint if len(merges) > n_merges else "some merges are missing"
        raise CheckFailed(f"{shown} learned {len(merges)} merges, expected {n_merges}: {why}")
    ordered = sorted(merges.items(), key=lambda kv: kv[1])
    new_ids = [idx for _, idx in ordered]
    if new_ids != list(range(256, 256 + n_merges)):
        raise CheckFailed(f"{_T_ZERO.hint}; got {new_ids[:4]}... on {shown}")
    ids = list(text.encode("utf-8"))
    known = set(ids) | set(new_ids)
    for pair, _ in ordered:
        if any(i not in known for i in tuple(pair)):
            raise CheckFailed(f"{_T_ORD.hint} (on {shown}: the pair {tuple(pair)} holds an id that "
                              f"is not one of the text's bytes)")
    for step, (pair, idx) in enumerate(ordered):
        counts = _pair_counts(ids)
        best = max(counts.values())
        seen = counts.get(tuple(pair), 0)
        if seen != best:
            hint = _T_LEAST.hint if seen and seen == min(counts.values()) and step == 0 else _T_ONCE.hint
            raise CheckFailed(f"merge number {step} is {tuple(pair)} (seen {seen} time{'' if seen == 1 else 's'}), "
                              f"but the most frequent pair at that step is seen {best} times: {hint} (on {shown})")
        ids = _merge(ids, tuple(pair), idx)


@check("train_bpe", mistakes=TRAIN_BPE)
@needs_earlier(get_pair_counts=1, merge=2)
def check_train_bpe(train_bpe: Callable[[str, int], Any]) -> None:
    """``train_bpe(text, vocab_size)`` returns ``{(a, b): new_id}`` with ids 256, 257, ..."""
    _check_training(train_bpe, _CORPUS, 256 + 12, "the check's corpus")
    _check_training(train_bpe, _BANANA, 256 + 3, repr(_BANANA))
    _check_training(train_bpe, "aaaa", 300, "'aaaa'")  # runs out of pairs after 2 merges
    _check_training(train_bpe, _CORPUS, 256, "the check's corpus")  # no merge at all
    _check_training(train_bpe, "abababab cdcdcd abcd", 256 + 7, "'abababab cdcdcd abcd'")
    _check_training(train_bpe, _ACCENTS, 256 + 3, repr(_ACCENTS))  # two bytes per 'é'


_ACCENTS = "été à côté, été"


# ---- exercise 4: decode ----------------------------------------------------------------------
def _decode(ids, vocab):
    return b"".join(vocab[int(i)] for i in ids).decode("utf-8", errors="replace")


def _decode_per_token(ids, vocab):
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)


def _decode_strict(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8")


def _decode_bytes(ids, vocab):
    return b"".join(vocab[i] for i in ids)


def _decode_ignore(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="ignore")


def _decode_latin1(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("latin-1")


def _decode_ids_as_bytes(ids, vocab):  # bytes(ids): the vocabulary is never used
    return bytes(ids).decode("utf-8", errors="replace")


def _decode_backslash(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="backslashreplace")


DECODE = [
    Mistake("decodes token by token", _decode_per_token,
            hint="join the bytes of every token first, then decode the whole byte string once: a "
                 "character's bytes may sit in two tokens"),
    Mistake("strict UTF-8", _decode_strict,
            hint="decode raised UnicodeDecodeError on an incomplete character; a model can generate "
                 "any id sequence, so pass errors='replace'"),
    Mistake("returns bytes", _decode_bytes, expect="decode returned bytes; finish with .decode('utf-8', errors='replace')"),
    Mistake("errors='ignore'", _decode_ignore,
            hint="broken bytes vanished (errors='ignore'): use errors='replace' so they show as U+FFFD"),
    Mistake("latin-1", _decode_latin1,
            hint="the bytes were decoded as latin-1, one character per byte: decode them as UTF-8, "
                 ".decode('utf-8', errors='replace')"),
    Mistake("bytes(ids)", _decode_ids_as_bytes,
            hint="the ids were taken as bytes, but an id above 255 is a merged token: look each id up "
                 "in vocab and join those bytes, b''.join(vocab[i] for i in ids)"),
    Mistake("errors='backslashreplace'", _decode_backslash,
            hint="broken bytes came out as backslash escapes: use errors='replace' so they show as U+FFFD"),
]


def _read_str(value: Any, case: Case) -> str:
    if isinstance(value, (bytes, bytearray)):
        raise CheckFailed(DECODE[2].expect)
    if value is None:
        raise none_hint("decode", "a str")
    if not isinstance(value, str):
        raise CheckFailed(f"decode should return a str, got {kind_of(value)}")
    return value


def _decode_cases() -> list[Case]:
    merges = _train(_CORPUS, 256 + 20)
    vocab = _vocab(merges)
    ids = _encode(_CORPUS, merges)
    own = {i: bytes([i]) for i in range(256)}
    own.update({300: "é".encode("utf-8"), 301: b"th", 302: "🥞".encode("utf-8")[:2]})
    split = list("café".encode("utf-8"))  # é as two separate byte ids
    return [Case(f"decode(the {len(ids)} ids of the check's corpus, vocab of 20 merges)", ids, vocab),
            Case("decode([], vocab)", [], vocab),
            Case(f"decode({split}, vocab) ('café', é as two byte ids)", split, vocab),
            Case("decode([0xC3], vocab) (half of 'é')", [0xC3], vocab),
            Case("decode([301, 300, 302, 33], vocab with ids 300-302 unlike training's)",
                 [301, 300, 302, 33], own)]


@check("decode", mistakes=DECODE)
def check_decode(decode: Callable[[Sequence[int], Mapping[int, bytes]], Any]) -> None:
    """``decode(ids, vocab)`` joins the tokens' bytes and decodes them as UTF-8, replacing errors."""
    compare(decode, _decode, _decode_cases(), name="decode(ids, vocab)", mistakes=DECODE, read=_labelled(_read_str))


# ---- exercise 5: encode ----------------------------------------------------------------------
def _encode_by_frequency(text, merges):  # merges the most frequent known pair of the new text
    ids = list(text.encode("utf-8"))
    while True:
        counts = {p: c for p, c in _pair_counts(ids).items() if p in merges}
        if not counts:
            return ids
        pair = max(counts, key=counts.get)
        ids = _merge(ids, pair, merges[pair])


def _encode_single_pass(text, merges):  # applies one merge, once
    ids = list(text.encode("utf-8"))
    pairs = _pair_counts(ids)
    pair = min(pairs, key=lambda p: merges.get(p, float("inf"))) if pairs else None
    return _merge(ids, pair, merges[pair]) if pair in merges else ids


def _encode_no_merges(text, merges):
    return list(text.encode("utf-8"))


def _encode_dict_order(text, merges):  # each merge once, in the dict's order
    ids = list(text.encode("utf-8"))
    for pair, idx in merges.items():
        ids = _merge(ids, pair, idx)
    return ids


def _encode_first_pair(text, merges):  # merges the leftmost known pair, whatever its rank
    ids = list(text.encode("utf-8"))
    while True:
        known = [p for p in zip(ids, ids[1:]) if p in merges]
        if not known:
            return ids
        ids = _merge(ids, known[0], merges[known[0]])


def _encode_one_sweep(text, merges):  # the text's own pairs, each merged once, by rank
    ids = list(text.encode("utf-8"))
    for pair in sorted(_pair_counts(ids), key=lambda p: merges.get(p, float("inf"))):
        if pair in merges:
            ids = _merge(ids, pair, merges[pair])
    return ids


def _encode_code_points(text, merges):
    ids = [ord(ch) for ch in text]
    while len(ids) >= 2:
        pair = min(_pair_counts(ids), key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = _merge(ids, pair, merges[pair])
    return ids


def _encode_no_length_guard(text, merges):  # min() of no pairs once one id is left
    ids = list(text.encode("utf-8"))
    while True:
        pair = min(_pair_counts(ids), key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = _merge(ids, pair, merges[pair])
    return ids


def _encode_get_no_default(text, merges):  # min(..., key=merges.get): None for unknown pairs
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pair = min(_pair_counts(ids), key=merges.get)
        if pair not in merges:
            break
        ids = _merge(ids, pair, merges[pair])
    return ids


def _encode_stops_at_two(text, merges):  # while len(ids) > 2: the last pair is never merged
    ids = list(text.encode("utf-8"))
    while len(ids) > 2:
        pair = min(_pair_counts(ids), key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = _merge(ids, pair, merges[pair])
    return ids


def _encode_pops_merges(text, merges):  # removes each applied merge from the caller's table
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pair = min(_pair_counts(ids), key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = _merge(ids, pair, merges.pop(pair))
    return ids


def _encode_highest_rank(text, merges):  # max instead of min: the latest merge first
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pair = max(_pair_counts(ids), key=lambda p: merges.get(p, -1))
        if pair not in merges:
            break
        ids = _merge(ids, pair, merges[pair])
    return ids


def _encode_reversed(text, merges):  # each merge once, the dict read backwards
    ids = list(text.encode("utf-8"))
    for pair, idx in reversed(list(merges.items())):
        ids = _merge(ids, pair, idx)
    return ids


_HIGHER_FIRST = ("a merge of higher rank was applied before one of lower rank (the merges in the "
                 "dict's order, or the highest rank first): pick the pair with the lowest rank "
                 "(smallest new id) at every step")
_LEFTMOST = ("a merge of higher rank was applied first (the leftmost known pair, or the merges in "
             "reverse order): pick the pair with the lowest rank (smallest new id) at every step, "
             "wherever it sits")

_MERGES_CHANGED = ("encode changed the merges it was given (removed or added entries): only read "
                   "the table, so the next call still has every merge")

ENCODE = [
    Mistake("by frequency", _encode_by_frequency,
            hint="apply the merge with the lowest rank (smallest new id) first, not the most "
                 "frequent pair of the text"),
    Mistake("one merge only", _encode_single_pass,
            hint="some merges were not applied; keep merging until no pair of the ids is in merges"),
    Mistake("no merge", _encode_no_merges,
            hint="no merge was applied; loop until no pair of ids is in merges, and rank unknown "
                 "pairs last, merges.get(p, float('inf')), so that min() never picks one while a "
                 "known pair is left"),
    Mistake("dict order", _encode_dict_order, hint=_HIGHER_FIRST),
    Mistake("leftmost pair", _encode_first_pair, hint=_LEFTMOST),
    Mistake("highest rank first", _encode_highest_rank, hint=_HIGHER_FIRST),
    Mistake("reverse order", _encode_reversed, hint=_LEFTMOST),
    Mistake("one sweep over the text's pairs", _encode_one_sweep,
            hint="only the pairs of the original bytes were merged: a merge creates new pairs "
                 "(with the new id) that later merges need, so recount the pairs after every merge "
                 "(while loop) until none is in merges"),
    Mistake("code points", _encode_code_points,
            hint="start from the UTF-8 bytes, list(text.encode('utf-8')), not the characters' code "
                 "points (ord): 'é' is the two bytes 195, 169"),
    Mistake("no len(ids) >= 2 guard", _encode_no_length_guard,
            hint="once everything is merged into one id there are no pairs left and min() of "
                 "nothing fails: loop while len(ids) >= 2"),
    Mistake("key=merges.get", _encode_get_no_default,
            hint="merges.get(p) is None for a pair that is not a merge, and min() cannot compare "
                 "None with an id: rank unknown pairs last, key=lambda p: merges.get(p, float('inf'))"),
    Mistake("while len(ids) > 2", _encode_stops_at_two,
            hint="the loop stopped with two ids left, so their pair was never merged: loop while "
                 "len(ids) >= 2"),
    Mistake("pops the merges", _encode_pops_merges, expect=_MERGES_CHANGED),
]


def _run_encode(impl: Any, case: Case) -> Any:
    """``impl(text, merges)`` on a fresh copy of merges, which must come back unchanged."""
    (text, merges), _ = case.fresh()
    before = dict(merges)
    out = impl(text, merges)
    if merges != before:
        raise CheckFailed(f"{_MERGES_CHANGED} (on {case.label})")
    return out


def _encode_cases() -> list[Case]:
    a, b, c = ord("a"), ord("b"), ord("c")
    merges = _train(_CORPUS, 256 + 30)
    cases = [
        # three toy tables, each telling one wrong rule from the rank rule
        Case("encode('abcab', {(b, c): 257, (a, b): 256}) (a dict not in rank order)", "abcab",
             {(b, c): 257, (a, b): 256}),
        Case("encode('abcbc', {(b, c): 256, (a, b): 257})", "abcbc", {(b, c): 256, (a, b): 257}),
        Case("encode('abcbc', {(a, b): 256, (b, c): 257})", "abcbc", {(a, b): 256, (b, c): 257}),
    ]
    cases += [Case(f"encode({s!r}, merges of the check's corpus)", s, merges)
              for s in ["the cat sat on the mat.", "the hat", "ça", "", "x", "🥞 thé"]]
    cases.append(Case("encode('abcabc xbc', {(a, b): 257, (b, c): 256, (97, 256): 258})", "abcabc xbc",
                      {(a, b): 257, (b, c): 256, (a, 256): 258}))
    return cases


@check("encode", mistakes=ENCODE)
@needs_earlier(get_pair_counts=1, merge=2)
def check_encode(encode: Callable[[str, Mapping[tuple[int, int], int]], Any]) -> None:
    """``encode(text, merges)`` applies merges by rank (lowest new id first) until none applies."""
    compare(encode, _encode, _encode_cases(), name="encode(text, merges)", mistakes=ENCODE, run=_run_encode,
            read=_labelled(lambda v, case: as_int_list(v, "encode")))

