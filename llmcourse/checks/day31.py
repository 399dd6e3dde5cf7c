"""Checks for day 31, "Data quality".

Each ``check_*`` function compares the learner's code with a reference on a small seeded battery
of its own (unlike the notebook's corpus: tabs and new lines between words, blank and
white-space-only lines, empty inputs, non-default bounds, many hash functions), prints one line -
a pass, a hint from the exercise's table of typical mistakes, or "not done yet" - and never
raises. The lesson continues with the package's versions (``llmcourse.data.clean`` and
``llmcourse.data.minhash``).

Example::

    >>> from llmcourse.checks import day31
    >>> ok = day31.check_length_filter(
    ...     lambda docs, lo, hi: [i for i, d in enumerate(docs) if lo <= len(d.split()) <= hi])
    ✅ length_filter: passed
"""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np

from llmcourse.checks._core import (Case, CheckFailed, Mistake, as_int_list, check, compare, kind_of,
                                    none_hint)
from llmcourse.data.clean import BOILERPLATE_PATTERNS, normalize

__all__ = ["check_length_filter", "check_strip_boilerplate", "check_exact_dedup",
           "check_minhash_signature"]


# ---- exercise 1: length_filter ---------------------------------------------------------------


def _length_filter(docs, min_words, max_words):
    return [i for i, d in enumerate(docs) if min_words <= len(d.split()) <= max_words]


LENGTH = [
    Mistake("strict bounds", lambda docs, lo, hi: [i for i, d in enumerate(docs) if lo < len(d.split()) < hi],
            hint="the bounds are inclusive: keep min_words <= number of words <= max_words (<=, not <)"),
    Mistake("characters", lambda docs, lo, hi: [i for i, d in enumerate(docs) if lo <= len(d) <= hi],
            hint="len(doc) counts characters; count words: len(doc.split())"),
    Mistake("no max", lambda docs, lo, hi: [i for i, d in enumerate(docs) if len(d.split()) >= lo],
            hint="a document with more than max_words words was kept: keep only min_words <= "
            "words <= max_words (both ends included)"),
    Mistake("split(' ')", lambda docs, lo, hi: [i for i, d in enumerate(docs)
                                                 if lo <= len(d.split(" ")) <= hi],
            hint="count words with doc.split(), which splits at any run of white space (new "
            "lines, tabs, double spaces too); doc.split(' ') does not"),
    Mistake("max excluded", lambda docs, lo, hi: [i for i, d in enumerate(docs)
                                                   if lo <= len(d.split()) < hi],
            hint="a document with exactly max_words words was dropped: max_words is included (use <=)"),
    Mistake("min excluded", lambda docs, lo, hi: [i for i, d in enumerate(docs)
                                                   if lo < len(d.split()) <= hi],
            hint="a document with exactly min_words words was dropped: min_words is included (use <=)"),
    Mistake("no min", lambda docs, lo, hi: [i for i, d in enumerate(docs) if len(d.split()) <= hi],
            hint="documents with fewer than min_words words were kept"),
    Mistake("documents", lambda docs, lo, hi: [d for d in docs if lo <= len(d.split()) <= hi],
            expect="should return a list of ints"),
    Mistake("no return", lambda docs, lo, hi: None, expect="forget the `return`"),
    Mistake("the dropped ones", lambda docs, lo, hi: [i for i, d in enumerate(docs)
                                                      if not lo <= len(d.split()) <= hi],
            hint="those are the documents to drop: return the indices of the documents kept, "
            "min_words <= number of words <= max_words"),
    Mistake("1-based", lambda docs, lo, hi: [i for i, d in enumerate(docs, 1)
                                              if lo <= len(d.split()) <= hi],
            hint="the indices start at 1; Python counts from 0: enumerate(docs), not "
            "enumerate(docs, 1)"),
    Mistake("words by regex", lambda docs, lo, hi: [i for i, d in enumerate(docs)
                                                     if lo <= len(re.findall(r"\w+", d)) <= hi],
            hint="count words with doc.split(), the pieces between white space: \"it's a "
            "well-known fact.\" has 4 words, not the 7 runs of letters re.findall(r'\\w+') finds"),
]

_DOCS = ["one two", "a b\nc\td", "x", "the cat sat on the mat", "w1 w2 w3 w4 w5 w6 w7",
         "", "  lead  and   trail  ", "tab\tseparated\twords\there\tnow",
         "it's a well-known fact."]


@check("length_filter", mistakes=LENGTH)
def check_length_filter(length_filter: Callable[..., Any]) -> None:
    """Exercise 1: indices of documents with min_words <= words <= max_words."""
    cases = [Case("length_filter(9 small docs, min_words=4, max_words=6)", _DOCS, 4, 6),
             Case("length_filter(9 small docs, min_words=1, max_words=1)", _DOCS, 1, 1),
             Case("length_filter(9 small docs, min_words=0, max_words=3)", _DOCS, 0, 3),
             Case("length_filter(9 small docs, min_words=5, max_words=100)", _DOCS, 5, 100),
             Case("length_filter([], 2, 5)", [], 2, 5)]
    compare(length_filter, _length_filter, cases, name="length_filter(docs, min_words, max_words)",
            mistakes=LENGTH, read=lambda v, c: as_int_list(v, "length_filter"))


# ---- exercise 2: strip_boilerplate -----------------------------------------------------------


def _strip(doc, patterns, *, match=re.search, blank=lambda line: line.strip(), sep="\n", pats=None):
    return sep.join(line for line in doc.split("\n")
                    if blank(line) and not any(match(p, line) for p in (pats or (lambda ps: ps))(patterns)))


def _as_str(value: Any, case: Case) -> str:
    if value is None:
        raise CheckFailed("strip_boilerplate returned None; did you forget the `return`?")
    if isinstance(value, list):
        raise CheckFailed(f"strip_boilerplate returned a list of {len(value)} items; join the kept "
                          "lines into one string with '\\n'.join(...)")
    if not isinstance(value, str):
        raise CheckFailed(f"strip_boilerplate should return a str, got {type(value).__name__}")
    return value


def _sub_each(doc, patterns):                # re.sub: the matched text goes, the line stays
    for pattern in patterns:
        doc = re.sub(pattern, "", doc)
    return doc


STRIP = [
    Mistake("substring test", lambda doc, patterns: "\n".join(
        line for line in doc.split("\n") if line.strip() and not any(p in line for p in patterns)),
            hint="a line in which a pattern is found was kept: the patterns are regular "
                 "expressions (^ anchors, (?i) ignores case); drop a line when re.search(p, line) "
                 "finds ANY of them (not p in line, not re.fullmatch, not all of them)"),
    Mistake("the package's patterns", lambda d, p: _strip(d, list(BOILERPLATE_PATTERNS.values())),
            hint="the patterns argument was not used (the package's BOILERPLATE_PATTERNS were): "
            "test the lines against the patterns passed in"),
    Mistake("re.match", lambda d, p: _strip(d, p, match=re.match), hint="a line with a pattern in "
            "its middle was kept: re.match only looks at the start of a line; use re.search"),
    Mistake("blank kept", lambda d, p: _strip(d, p, blank=lambda line: True), hint="blank lines "
            "were kept: drop lines that are empty after .strip() too"),
    Mistake("space-only kept", lambda d, p: _strip(d, p, blank=lambda line: line), hint="a line of "
            "only spaces was kept: test line.strip(), not line, to drop blank lines"),
    Mistake("^ dropped", lambda d, p: _strip(d, p, pats=lambda ps: [q.lstrip("^") for q in ps]),
            hint="a line with 'Tags:' in its middle was dropped, but '^Tags:' only matches at the "
            "start of a line; pass each pattern to re.search unchanged"),
    Mistake("first pattern only", lambda d, p: _strip(d, p, pats=lambda ps: ps[:1]), hint="a line "
            "matching one of the patterns was kept; test every pattern with re.search(pattern, line)"),
    Mistake("joined with spaces", lambda d, p: _strip(d, p, sep=" "), hint="keep the other lines "
            "in order, joined with '\\n'"),
    Mistake("re.IGNORECASE", lambda d, p: _strip(d, p, match=lambda q, line: re.search(q, line, re.I)),
            hint="a line was dropped because re.IGNORECASE made a pattern match other cases; a "
            "pattern that should ignore case says so itself, (?i): call re.search(pattern, line)"),
    Mistake("kept lines stripped", lambda d, p: "\n".join(
        line.strip() for line in _strip(d, p).split("\n")), hint="the kept lines were stripped: "
            "use line.strip() only to test for a blank line, and keep the line itself unchanged"),
    Mistake("kept lines rstripped", lambda d, p: "\n".join(
        line.rstrip() for line in _strip(d, p).split("\n")), hint="the kept lines lost their "
            "trailing spaces: use line.strip() only to test for a blank line, and keep the line "
            "itself unchanged"),
    Mistake("whole document dropped", lambda d, p: "" if any(re.search(q, d) for q in p)
            else _strip(d, p), hint="the whole document was dropped because a pattern is found in "
            "it: test each line, and drop only the lines a pattern is found in"),
    Mistake("only the matched text removed", lambda d, p: _strip(_sub_each(d, p), []),
            hint="only the text a pattern matched was removed (re.sub): drop the whole line in "
            "which re.search(pattern, line) finds a pattern"),
    Mistake("lines lower-cased first", lambda d, p: _strip(d, p, match=lambda q, line: re.search(
        q, line.lower())), hint="the lines were lower-cased before the search, so '^Tags:' no "
            "longer finds 'Tags: ...'; search each line as it is (a pattern that ignores case "
            "says so itself, (?i))"),
    Mistake("a new line after each", lambda d, p: "".join(
        line + "\n" for line in _strip(d, p).split("\n")), hint="the result ends with a new "
            "line: '\\n'.join(kept) puts one only between the kept lines"),
    Mistake("a list", lambda d, p: [l for l in d.split("\n") if l.strip()
                                    and not any(re.search(q, l) for q in p)],
            expect="join the kept lines"),
]

_PATTERNS = [r"https?://", r"(?i)all rights reserved", r"^Tags:"]


@check("strip_boilerplate", mistakes=STRIP)
def check_strip_boilerplate(strip_boilerplate: Callable[..., Any]) -> None:
    """Exercise 2: drop the lines matching any pattern (anywhere in the line) and blank lines."""
    doc = ("Tags: fun, dogs\nThe dog ran fast.\n\nSee https://x.example for more\n"
           "It was happy.\n(c) Me. All Rights Reserved.\nThe end, Tags: none")
    cases = [Case("strip_boilerplate(a 7-line doc, 3 patterns)", doc, _PATTERNS),
             Case("strip_boilerplate(a doc with a line of spaces, 2 patterns)",
                  "Intro\n   \nvisit http://a.b now\n\tTabbed line\nend  \n", _PATTERNS[:2]),
             Case("strip_boilerplate(a doc, 4 patterns incl. 'cookie' at the end)",
                  "We use a cookie\nreal text\nall rights reserved\nmore text\nHTTP://LOUD kept: "
                  "https?:// is lower case", _PATTERNS + ["cookie"]),
             Case("strip_boilerplate('only text\\nhere', [])", "only text\nhere", []),
             Case("strip_boilerplate('', patterns)", "", _PATTERNS)]
    compare(strip_boilerplate, _strip, cases, name="strip_boilerplate(doc, patterns)",
            mistakes=STRIP, read=_as_str)


# ---- exercise 3: exact_dedup -----------------------------------------------------------------


def _dedup(docs, key=normalize, last=False):
    first: dict[str, int] = {}
    for i, d in enumerate(docs):
        if last or key(d) not in first:
            first[key(d)] = i
    return sorted(first.values()) if last else list(first.values())


DEDUP = [
    Mistake("not normalised", lambda docs: _dedup(docs, key=lambda d: d), hint="documents that "
            "differ only in case or white space were kept: compare normalize(doc) (lower case, "
            "white space runs as one space, stripped)"),
    Mistake("lower only", lambda docs: _dedup(docs, key=lambda d: d.lower().strip()),
            hint="documents that differ only in white space inside were kept: compare "
            "normalize(doc), which also turns runs of white space into one space"),
    Mistake("keeps the last", lambda docs: _dedup(docs, last=True), hint="you kept the last copy; "
            "keep the first one of each group"),
    Mistake("order lost", lambda docs: sorted(_dedup(docs), key=lambda i: normalize(docs[i])),
            hint="keep the original order of the documents (a set or a sort loses it)"),
    Mistake("case kept", lambda docs: _dedup(docs, key=lambda d: " ".join(d.split())),
            hint="documents that differ only in upper and lower case were kept: compare "
            "normalize(doc), which also lower-cases"),
    Mistake("every copy dropped", lambda docs: [i for i, d in enumerate(docs)
                                                if [normalize(e) for e in docs].count(normalize(d)) == 1],
            hint="documents with copies were dropped altogether: keep the FIRST copy of each "
            "document, drop only the later ones"),
    Mistake("the copies", lambda docs: [i for i in range(len(docs)) if i not in _dedup(docs)],
            hint="those are the later copies, the ones to drop: return the indices of the "
            "documents kept (the first copy of each)"),
    Mistake("a set of indices", lambda docs: list(set(_dedup(docs))),
            hint="keep the original order of the documents (a set or a sort loses it)"),
    Mistake("all white space removed", lambda docs: _dedup(docs, key=lambda d: "".join(d.lower().split())),
            hint="documents that differ by a space between words ('ice cream', 'icecream') were "
            "taken as copies: normalize turns runs of white space into ONE space, it does not "
            "remove them"),
    Mistake("added before the test", lambda docs: [],
            hint="nothing was kept: test whether normalize(doc) is already in the set BEFORE "
            "adding it"),
    Mistake("1-based", lambda docs: [i + 1 for i in _dedup(docs)],
            hint="the indices start at 1; Python counts from 0: enumerate(docs), not "
            "enumerate(docs, 1)"),
    Mistake("documents", lambda docs: list(dict.fromkeys(normalize(d) for d in docs)),
            expect="should return a list of ints"),
]


@check("exact_dedup", mistakes=DEDUP)
def check_exact_dedup(exact_dedup: Callable[..., Any]) -> None:
    """Exercise 3: indices of the first copy of each document, equal after normalisation."""
    docs = ["The cat.", "A dog ran.", "the  cat.", "A dog ran.\n", "The cat!", "THE CAT."]
    cases = [Case("exact_dedup(6 small docs)", docs),
             Case("exact_dedup(docs with tabs, inner spaces, empty and blank docs)",
                  ["b  a", "", "Zebra\tcrossing", "b a", "   ", "zebra crossing", "a b", "\n"]),
             Case("exact_dedup(7 copies of 2 docs)", ["y", "x", "Y", "x ", "X", " y", "x"]),
             Case("exact_dedup(13 docs: 'ice cream' in many spellings, then 'icecream', then "
                  "'ice-cream')", ["ice cream", "Ice cream", "ICE  CREAM", " ice\tcream", "ice cream\n",
                                   "icecream", "Icecream", "ice cream", "ICECREAM ", "ice  cream",
                                   "icecream", "ice\ncream", "ice-cream"]),
             Case("exact_dedup([])", []),
             Case("exact_dedup(the 6 small docs again, in a new call: remember nothing from "
                  "earlier calls)", docs)]
    compare(exact_dedup, _dedup, cases, name="exact_dedup(docs)", mistakes=DEDUP,
            read=lambda v, c: as_int_list(v, "exact_dedup"))


# ---- exercise 4: minhash_signature -----------------------------------------------------------


P = (1 << 31) - 1


def _minhash(x, a, b, p):
    return ((a[:, None] * x[None, :] + b[:, None]) % p).min(axis=1)


_WHOLE_TABLE = (".min() without an axis gives one number for the whole table: take .min(axis=1), "
                "one minimum per hash function")

MINHASH = [
    Mistake("no broadcasting", lambda x, a, b, p: ((a * x + b) % p).min(),
            hint="a (P,) and x (S,) do not combine element by element: make the (P, S) table "
                 "a[:, None] * x[None, :] + b[:, None], then take % p and .min(axis=1)"),
    Mistake("maximum", lambda x, a, b, p: ((a[:, None] * x[None, :] + b[:, None]) % p).max(axis=1),
            hint="that is the maximum of each hash function; MinHash takes the minimum"),
    Mistake("no modulo", lambda x, a, b, p: (a[:, None] * x[None, :] + b[:, None]).min(axis=1),
            hint="the hashes were not taken modulo p: (a * x + b) % p"),
    Mistake("min before modulo", lambda x, a, b, p: (a[:, None] * x[None, :] + b[:, None]).min(axis=1) % p,
            hint="the minimum was taken before % p (which hashes only the smallest shingle): "
            "hash every shingle first, (a * x + b) % p, then take the minimum"),
    Mistake("no b", lambda x, a, b, p: ((a[:, None] * x[None, :]) % p).min(axis=1),
            hint="b is missing: each hash function is (a[i] * x + b[i]) % p"),
    Mistake("min over hash functions",
            lambda x, a, b, p: ((a[:, None] * x[None, :] + b[:, None]) % p).min(axis=0),
            hint="the signature needs one entry per hash function: take the minimum over the "
            "shingles (axis=1 of the (P, S) table)"),
    Mistake("argmin", lambda x, a, b, p: ((a[:, None] * x[None, :] + b[:, None]) % p).argmin(axis=1),
            hint="argmin gives WHICH shingle has the smallest hash; the signature holds the "
            "smallest hash values themselves (.min(axis=1))"),
    Mistake("b after the modulo", lambda x, a, b, p: ((a[:, None] * x[None, :]) % p
                                                       + b[:, None]).min(axis=1),
            hint="b was added after % p: each hash is (a[i] * x + b[i]) % p, b inside the "
            "brackets"),
    Mistake("float table", lambda x, a, b, p: ((a[:, None].astype(np.float64) * x[None, :]
                                                 + b[:, None]) % p).min(axis=1).astype(np.int64),
            hint="the table was computed in floats, which round products this large (up to "
            "2^62): keep x, a and b int64 throughout"),
    Mistake("b not broadcast", lambda x, a, b, p: ((a[:, None] * x[None, :] + b) % p).min(axis=1),
            hint="b must be broadcast too: b[:, None], so that b[i] is added to row i of the "
            "(P, S) table"),
    Mistake("b as a row", lambda x, a, b, p: ((a[:, None] * x[None, :] + b[None, :]) % p).min(axis=1),
            hint="b must be broadcast too: b[:, None], so that b[i] is added to row i of the "
            "(P, S) table"),
    Mistake("min of the whole table", lambda x, a, b, p: ((a[:, None] * x[None, :] + b[:, None])
                                                           % p).min(),
            expect=".min() without an axis gives one number"),
    Mistake("float", lambda x, a, b, p: _minhash(x, a, b, p).astype(np.float64),
            expect="should return the (P,) array of ints (int64, like x, a and b)"),
    Mistake("list of floats", lambda x, a, b, p: [float(v) for v in _minhash(x, a, b, p)],
            expect="should return the (P,) array of ints (int64, like x, a and b)"),
]


def _signature(value: Any, case: Case) -> list[int]:
    """The learner's signature as a list of ints; a float result is told what the text asks for."""
    name = "minhash_signature"
    if value is None:
        raise none_hint(name, "the (P,) array of ints")
    try:
        floats = np.asarray(value).dtype.kind == "f"
    except (TypeError, ValueError, RuntimeError):  # not array-like: as_int_list names what it is
        floats = False
    if floats:
        raise CheckFailed(f"{name} should return the (P,) array of ints (int64, like x, a and b), "
                          f"got floats ({kind_of(value)}): keep the integer dtype (*, + and % "
                          "of int64 arrays and .min stay int64; no / and no float())")
    shape = tuple(value.shape) if hasattr(value, "shape") else None
    if shape == ():
        raise CheckFailed(_WHOLE_TABLE)
    if shape is not None and len(shape) != 1:
        raise CheckFailed(f"{name} should return the (P,) array, one entry per hash function, got "
                          f"shape {shape}: .min(axis=1), without keepdims")
    return as_int_list(value, name)


def _minhash_cases() -> list[Case]:
    rng = np.random.default_rng(7)

    def draw(s, n, high=P):
        return (rng.integers(0, high, size=s, dtype=np.int64), rng.integers(1, P, size=n, dtype=np.int64),
                rng.integers(0, P, size=n, dtype=np.int64))

    big = draw(40, 128)
    edge = (np.array([P - 1, 0, 1, P - 1, 5], dtype=np.int64),) + draw(0, 6)[1:]
    return [Case("minhash_signature(9 shingle hashes, 5 hash functions)", *draw(9, 5), P),
            Case("minhash_signature(1 shingle hash, 3 hash functions)", *draw(1, 3), P),
            Case("minhash_signature(40 shingle hashes, 128 hash functions)", *big, P),
            Case("minhash_signature(the same 40 hashes reversed, 128 hash functions)",
                 big[0][::-1].copy(), big[1], big[2], P),
            Case("minhash_signature(hashes 0, 1, p - 1 and repeats, 6 hash functions)", *edge, P),
            Case("minhash_signature(6 shingle hashes, 6 hash functions: a square table)", *draw(6, 6), P),
            Case("minhash_signature(12 hashes, 4 hash functions, p = 65521)", *draw(12, 4, 65521)[:1],
                 *(v % 65521 + 1 for v in draw(0, 4)[1:]), 65521)]


@check("minhash_signature", mistakes=MINHASH)
def check_minhash_signature(minhash_signature: Callable[..., Any]) -> None:
    """Exercise 4: signature[i] = min over shingles x of (a[i] * x + b[i]) % p."""
    compare(minhash_signature, _minhash, _minhash_cases(), name="minhash_signature(x, a, b, p)",
            mistakes=MINHASH, read=_signature)
