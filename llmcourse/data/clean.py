"""Cleaning a text corpus: boilerplate lines, length filters, exact duplicates, statistics.

A corpus is a list of documents (strings). The steps, in the order a pipeline runs them:

1. :func:`strip_boilerplate` - drop the lines that are navigation, headers, footers, links and
   metadata rather than text (:data:`BOILERPLATE_PATTERNS`, one regular expression a kind).
2. :func:`length_filter` - drop documents with too few (or too many) words.
3. :func:`exact_dedup` - keep the first of documents equal after :func:`normalize`.
4. near duplicates - :func:`llmcourse.data.dedup_near` (MinHash and LSH).

:func:`clean_corpus` runs them all and reports what each removed; :func:`corpus_stats` gives
before/after numbers. :func:`make_dirty_corpus` adds known dirt to a clean corpus, so that a
lesson (or a test) can measure how much of it a pipeline finds.

>>> doc = "Home | About | Contact\\nOnce upon a time there was a cat.\\nCopyright 2023 Foo Inc."
>>> strip_boilerplate(doc)
'Once upon a time there was a cat.'
>>> exact_dedup(["A cat.", "a  cat. ", "A dog."])
[0, 2]
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmcourse.data.minhash import dedup_near

__all__ = [
    "BOILERPLATE_PATTERNS",
    "CleanReport",
    "clean_corpus",
    "corpus_stats",
    "exact_dedup",
    "is_boilerplate",
    "length_filter",
    "make_dirty_corpus",
    "normalize",
    "split_documents",
    "strip_boilerplate",
    "word_count",
]

#: One regular expression per kind of non-text line; a line matching any of them is dropped.
BOILERPLATE_PATTERNS: dict[str, str] = {
    "url": r"https?://|www\.\S+",
    "copyright": r"(?i)copyright|\u00a9|all rights reserved",
    "navigation": r"^\s*\w[\w ]{0,20}(\s*\|\s*\w[\w ]{0,20}){2,}\s*$",     # Home | About | Contact
    "call to action": r"(?i)\b(click here|subscribe|sign up|share this|read more \w+ at)\b",
    "metadata": r"(?i)^\s*(posted|published|updated|tags|category|author|by)\b.{0,60}"
                r"(\d{4}|:)",
    "page number": r"(?i)^\s*page \d+( of \d+)?\s*$",
    "html": r"<[a-z/][^>]*>",
}

_COMPILED = {name: re.compile(p) for name, p in BOILERPLATE_PATTERNS.items()}


def split_documents(text: str) -> list[str]:
    """Split a text at blank lines into documents, dropping empty ones.

    >>> split_documents("one\\ntwo\\n\\n\\nthree\\n")
    ['one\\ntwo', 'three']
    """
    return [d.strip() for d in re.split(r"\n\s*\n", text) if d.strip()]


def is_boilerplate(line: str, patterns: dict[str, str] | None = None) -> str | None:
    """The name of the first boilerplate pattern ``line`` matches, or ``None`` for text.

    >>> is_boilerplate("Read more at https://example.com"), is_boilerplate("The sun was hot.")
    ('url', None)
    """
    compiled = _COMPILED if patterns is None else {n: re.compile(p) for n, p in patterns.items()}
    for name, rx in compiled.items():
        if rx.search(line):
            return name
    return None


def strip_boilerplate(doc: str, patterns: dict[str, str] | None = None) -> str:
    """``doc`` without its boilerplate lines (and without the blank lines that leaves)."""
    return "\n".join(line for line in doc.split("\n")
                     if line.strip() and is_boilerplate(line, patterns) is None)


def word_count(doc: str) -> int:
    """The number of white-space separated words."""
    return len(doc.split())


def length_filter(docs: Sequence[str], min_words: int = 5,
                  max_words: int | None = None) -> list[int]:
    """The indices of the documents with ``min_words <= words <= max_words``.

    >>> length_filter(["ok", "a real sentence of words", ""], min_words=3)
    [1]
    """
    if min_words < 0 or (max_words is not None and max_words < min_words):
        raise ValueError(f"need 0 <= min_words <= max_words, got {min_words}, {max_words}")
    return [i for i, d in enumerate(docs)
            if word_count(d) >= min_words and (max_words is None or word_count(d) <= max_words)]


def normalize(doc: str) -> str:
    """Lower case, runs of white space as one space, no space at the ends: the form two
    documents must share to count as exact duplicates.

    >>> normalize("  The Cat\\n sat. ")
    'the cat sat.'
    """
    return " ".join(doc.lower().split())


def exact_dedup(docs: Sequence[str]) -> list[int]:
    """The indices of the first occurrence of each document, compared after :func:`normalize`
    through a hash (SHA-1 of the normalised text), in the original order."""
    seen: set[bytes] = set()
    keep = []
    for i, d in enumerate(docs):
        h = hashlib.sha1(normalize(d).encode("utf-8")).digest()
        if h not in seen:
            seen.add(h)
            keep.append(i)
    return keep


def corpus_stats(docs: Sequence[str]) -> dict[str, Any]:
    """Documents, characters, words, mean words per document, and the share of distinct
    documents (after :func:`normalize`) - the before/after numbers of a cleaning step."""
    n = len(docs)
    words = sum(word_count(d) for d in docs)
    return {
        "documents": n,
        "characters": sum(len(d) for d in docs),
        "words": words,
        "mean_words": round(words / n, 1) if n else 0.0,
        "distinct_share": round(len({normalize(d) for d in docs}) / n, 4) if n else 0.0,
    }


@dataclass
class CleanReport:
    """What :func:`clean_corpus` did: documents left after each step, and lines stripped."""

    steps: list[tuple[str, int]] = field(default_factory=list)
    lines_stripped: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        rows = [f"{name:<22} {n:>6} documents" for name, n in self.steps]
        if self.lines_stripped:
            rows.append("boilerplate lines: " + ", ".join(
                f"{k} {v}" for k, v in sorted(self.lines_stripped.items())))
        return "\n".join(rows)


def clean_corpus(docs: Sequence[str], *, min_words: int = 5, max_words: int | None = None,
                 near_threshold: float | None = 0.7, **minhash: Any) -> tuple[list[str], CleanReport]:
    """Strip boilerplate, filter by length, remove exact then near duplicates.

    ``near_threshold=None`` skips the near-duplicate step; ``minhash`` goes to
    :func:`~llmcourse.data.dedup_near` (``k``, ``num_perm``, ``bands``, ``seed``).
    """
    report = CleanReport(steps=[("input", len(docs))])
    stripped = []
    for d in docs:
        kept_lines = []
        for line in d.split("\n"):
            kind = is_boilerplate(line) if line.strip() else "blank"
            if kind is None:
                kept_lines.append(line)
            elif kind != "blank":
                report.lines_stripped[kind] = report.lines_stripped.get(kind, 0) + 1
        stripped.append("\n".join(kept_lines))
    out = [stripped[i] for i in length_filter(stripped, min_words, max_words)]
    report.steps.append(("length filter", len(out)))
    out = [out[i] for i in exact_dedup(out)]
    report.steps.append(("exact duplicates", len(out)))
    if near_threshold is not None:
        out = [out[i] for i in dedup_near(out, threshold=near_threshold, **minhash)]
        report.steps.append(("near duplicates", len(out)))
    return out, report


_HEADERS = ["Posted by admin on 2023-0{m}-1{d}", "Tags: kids, stories, bedtime",
            "Home | Stories | About | Contact", "Published: 2022-1{d}-0{m} by StoryHub"]
_FOOTERS = ["Copyright \u00a9 2023 StoryHub. All rights reserved.",
            "Read more stories at https://storyhub.example.com/{n}",
            "Click here to subscribe to our newsletter!", "Page {d} of 9"]
_JUNK = ["lol", "asdf asdf", "Loading...", "ok ok", "404 not found", "test", "null null"]


def make_dirty_corpus(docs: Sequence[str], *, seed: int = 0, exact_dups: float = 0.15,
                      near_dups: float = 0.1, boilerplate: float = 0.3,
                      junk: float = 0.1,
                      dup_pool: int | None = None) -> tuple[list[str], dict[str, int]]:
    """``docs`` with known dirt mixed in, and how much of each kind was added.

    Adds ``exact_dups * n`` exact copies (some with changed case and spacing), ``near_dups * n``
    copies with a few words changed, a header or footer line on ``boilerplate * n`` documents,
    and ``junk * n`` short junk documents, then shuffles everything with ``seed``.
    ``dup_pool`` draws all duplicates from that many documents (a few pages repeated many times,
    as in a web crawl); ``None`` draws them from the whole corpus.
    """
    rng = random.Random(seed)
    n = len(docs)
    out = list(docs)
    added = {"exact duplicates": 0, "near duplicates": 0, "boilerplate lines": 0, "junk": 0}
    pool = list(docs) if dup_pool is None else rng.sample(list(docs), dup_pool)
    for _ in range(int(exact_dups * n)):
        d = rng.choice(pool)
        out.append(d.upper() if rng.random() < 0.1 else (d + "  " if rng.random() < 0.5 else d))
        added["exact duplicates"] += 1
    for _ in range(int(near_dups * n)):
        words = rng.choice(pool).split(" ")
        for _ in range(max(1, len(words) // 30)):          # change about 1 word in 30
            words[rng.randrange(len(words))] = rng.choice(["big", "small", "red", "happy"])
        out.append(" ".join(words))
        added["near duplicates"] += 1
    for i in rng.sample(range(len(out)), int(boilerplate * n)):
        fill = {"m": rng.randint(1, 9), "d": rng.randint(1, 9), "n": rng.randint(100, 999)}
        if rng.random() < 0.5:
            out[i] = rng.choice(_HEADERS).format(**fill) + "\n" + out[i]
        else:
            out[i] = out[i] + "\n" + rng.choice(_FOOTERS).format(**fill)
        added["boilerplate lines"] += 1
    for _ in range(int(junk * n)):
        out.append(rng.choice(_JUNK))
        added["junk"] += 1
    rng.shuffle(out)
    return out, added
