"""Checks for day 32, "Choosing a tokenizer".

Each ``check_*`` function compares the learner's code with a reference on a small battery of its
own (unlike the notebook's texts and tokenizers: word, character and byte tokenizers, accented
and CJK text, ties at the coverage boundary, non-default arguments), prints one line - a pass, a
hint from the exercise's table of typical mistakes, or "not done yet" - and never raises. The
lesson continues with the package's versions (``llmcourse.train.evaluate.bits_per_byte``,
``llmcourse.tokenizers.bpe.rare_characters``).

Example::

    >>> from llmcourse.checks import day32
    >>> ok = day32.check_bits_per_byte(lambda loss, n_tokens, n_bytes:
    ...                                loss * n_tokens / (0.6931471805599453 * n_bytes))
    ✅ bits_per_byte: passed
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Callable

from llmcourse.checks._core import Case, Mistake, as_float, as_list, check, compare

__all__ = ["check_tokens_per_char", "check_bits_per_byte", "check_rare_characters",
           "reference_tokens_per_char", "reference_rare_characters"]


def reference_tokens_per_char(tok: Any, text: str) -> float:
    """Tokens per character of ``text`` under ``tok``."""
    return len(tok.encode(text)) / len(text)


def reference_rare_characters(text: str, coverage: float) -> set[str]:
    """The characters outside the most frequent ones that cover ``coverage`` of ``text``
    (ranked by count, ties by code point; kept while the covered share is below ``coverage``)."""
    counts = Counter(text)
    kept, covered = set(), 0
    for ch, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if covered >= coverage * len(text):
            break
        kept.add(ch)
        covered += n
    return set(counts) - kept


# ---- exercise 1: tokens_per_char -------------------------------------------------------------


class _Tokenizer:
    """A stand-in tokenizer: ``"word"`` (a token per word and per run of spaces), ``"char"`` or
    ``"byte"`` (a token per UTF-8 byte); ids are stable."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def encode(self, text: str) -> list[int]:
        if self.kind == "byte":
            return list(text.encode("utf-8"))
        if self.kind == "char":
            return [ord(c) for c in text]
        return [len(piece) for piece in re.findall(r"\S+|\s+", text)]

    def __repr__(self) -> str:
        return f"{self.kind} tokenizer"


TPC = [
    Mistake("inverted", lambda tok, text: len(text) / len(tok.encode(text)), hint="that is "
            "characters per token; divide the number of tokens by the number of characters"),
    Mistake("bytes", lambda tok, text: len(tok.encode(text)) / len(text.encode("utf-8")),
            hint="you divided by the number of UTF-8 bytes; the task asks per character, len(text)"),
    Mistake("integer division", lambda tok, text: len(tok.encode(text)) // len(text),
            hint="// is integer division and rounds the ratio down; divide with /"),
    Mistake("words", lambda tok, text: len(tok.encode(text)) / len(text.split()), hint="you "
            "divided by the number of words; the task asks per character, len(text)"),
    Mistake("count only", lambda tok, text: len(tok.encode(text)), expect="should be"),
    Mistake("stripped text", lambda tok, text: len(tok.encode(text)) / len(text.strip()),
            hint="you divided by len(text.strip()); the tokenizer encoded every character, the "
            "spaces and new lines at the ends too: divide by len(text)"),
]


@check("tokens_per_char", mistakes=TPC)
def check_tokens_per_char(tokens_per_char: Callable[..., Any]) -> None:
    """Exercise 1: len(tok.encode(text)) / len(text), characters (not bytes)."""
    text = "caf\u00e9 na\u00efve \u65e5\u672c go"            # 16 characters, 22 bytes, 7 words/spaces
    cases = [Case("tokens_per_char(word tokenizer, 'café naïve 日本 go')", _Tokenizer("word"), text),
             Case("tokens_per_char(byte tokenizer, 'café naïve 日本 go')", _Tokenizer("byte"), text),
             Case("tokens_per_char(char tokenizer, 'abc')", _Tokenizer("char"), "abc"),
             Case("tokens_per_char(word tokenizer, 'to be\\n\\nor not')", _Tokenizer("word"),
                  "to be\n\nor not"),
             Case("tokens_per_char(char tokenizer, ' a line\\n'): white space at both ends",
                  _Tokenizer("char"), " a line\n")]
    compare(tokens_per_char, reference_tokens_per_char, cases, name="tokens_per_char(tok, text)",
            mistakes=TPC, read=lambda v, c: as_float(v, "tokens_per_char"), atol=1e-9, rtol=1e-6)


# ---- exercise 2: bits_per_byte ---------------------------------------------------------------


def _bpb(loss, n_tokens, n_bytes):
    return loss * n_tokens / (math.log(2) * n_bytes)


BPB = [
    Mistake("mean loss as the total", lambda loss, n_tokens, n_bytes: loss / (math.log(2) * n_bytes),
            hint="loss is a mean per token: the total is loss * n_tokens nats; divide that by "
                 "ln 2 and by n_bytes"),
    Mistake("nats", lambda l, t, b: l * t / b, hint="that is nats per byte: divide by ln 2 "
            "(math.log(2)) to get bits"),
    Mistake("bits per token", lambda l, t, b: l / math.log(2), hint="that is bits per token: "
            "multiply by n_tokens / n_bytes to spread the bits of all tokens over the bytes of "
            "the text"),
    Mistake("log10", lambda l, t, b: l * t / (math.log(10) * b), hint="bits need log base 2: "
            "divide by math.log(2), not math.log(10)"),
    Mistake("swapped", lambda l, t, b: l * b / (math.log(2) * t), hint="n_tokens and n_bytes are "
            "swapped: bits per byte = loss * n_tokens / (ln 2 * n_bytes)"),
    Mistake("times ln 2", lambda l, t, b: l * t * math.log(2) / b, hint="you multiplied by ln 2; "
            "divide by it (nats / ln 2 = bits)"),
    Mistake("log2 of the loss", lambda l, t, b: math.log2(l) * t / b, hint="you took log2 of the "
            "loss; the loss is already a log (in nats): divide it by ln 2 instead"),
    Mistake("precedence", lambda l, t, b: l * t / math.log(2) * b, hint="that is loss * n_tokens / "
            "ln 2 * n_bytes (the precedence of / and *), which multiplies by n_bytes: write "
            "loss * n_tokens / (math.log(2) * n_bytes)"),
    Mistake("a str", lambda l, t, b: str(l), expect="should return one number"),
]


@check("bits_per_byte", mistakes=BPB)
def check_bits_per_byte(bits_per_byte: Callable[..., Any]) -> None:
    """Exercise 2: loss (nats/token) * n_tokens / (ln 2 * n_bytes)."""
    cases = [Case(f"bits_per_byte({l}, n_tokens={t}, n_bytes={b})", l, t, b)
             for l, t, b in ((2.7, 300, 1150), (1.0, 100, 100), (4.25, 7, 3), (0.0, 5, 9))]
    compare(bits_per_byte, _bpb, cases, name="bits_per_byte(loss, n_tokens, n_bytes)",
            mistakes=BPB, read=lambda v, c: as_float(v, "bits_per_byte"), atol=1e-9, rtol=1e-6)


# ---- exercise 3: rare_characters -------------------------------------------------------------


def _keep_while(ranked, total, coverage, strict=False):
    kept, covered = set(), 0
    for ch, n in ranked:
        if (covered + n > coverage * total) if strict else (covered >= coverage * total):
            break
        kept.add(ch)
        covered += n
    return kept


def _by_first_seen(text, coverage):  # Counter.most_common breaks ties by first occurrence
    return set(text) - _keep_while(Counter(text).most_common(), len(text), coverage)


def _covered_by_one(text, coverage):  # covered += 1: counts the kept characters, not their uses
    counts = Counter(text)
    kept, covered = set(), 0
    for ch, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if covered >= coverage * len(text):
            break
        kept.add(ch)
        covered += 1
    return set(counts) - kept


def _rare_gt(text, coverage):  # > instead of >=: keeps one more character at the line
    counts = Counter(text)
    kept, covered = set(), 0
    for ch, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if covered > coverage * len(text):
            break
        kept.add(ch)
        covered += n
    return set(counts) - kept


RARE = [
    Mistake("kept returned", lambda t, c: set(t) - reference_rare_characters(t, c), hint="those are "
            "the kept (frequent) characters; return the rare ones, the characters that are not kept"),
    Mistake("strict", lambda t, c: set(t) - _keep_while(Counter(t).most_common(), len(t), c, True),
            hint="the character that crosses the coverage line was dropped: keep characters while "
            "the covered share is below the coverage, so the one that crosses it is kept"),
    Mistake("ties by first occurrence", _by_first_seen, hint="two characters tie at the coverage "
            "line: break ties by the character itself, sorted(counts.items(), key=lambda kv: "
            "(-kv[1], kv[0])), smallest first, not by first occurrence (Counter.most_common) nor reversed"),
    Mistake("distinct", lambda t, c: set([ch for ch, _ in Counter(t).most_common()]
                                         [int(c * len(set(t))):]),
            hint="coverage is a share of all characters counted with repeats (Counter(text)), not "
            "a share of the distinct characters"),
    Mistake("ascending", lambda t, c: set(t) - _keep_while(sorted(Counter(t).items(),
                                                                  key=lambda kv: kv[1]), len(t), c),
            hint="rank the characters by count, most frequent first, and add each kept "
                 "character's count to what is covered (covered += n, not += 1)"),
    Mistake("covered += 1", _covered_by_one, expect="covered += n, not += 1"),
    Mistake("no return", lambda t, c: None, expect="forget the `return`"),
    Mistake("stops past the line", _rare_gt,
            hint="one character too many is kept: stop as soon as the kept ones cover the share "
                 "(covered >= coverage * len(text)), not only once they exceed it"),
]


def _as_chars(value: Any, case: Case) -> list[str]:
    if isinstance(value, (set, frozenset)):
        value = sorted(value, key=str)
    return sorted(as_list(value, "rare_characters", of=str))


@check("rare_characters", mistakes=RARE)
def check_rare_characters(rare_characters: Callable[..., Any]) -> None:
    """Exercise 3: the characters outside the most frequent ones covering ``coverage``."""
    text = "e" * 50 + "t" * 25 + "a" * 13 + "q" * 7 + "\u00e9" * 4 + "\u65e5"   # 100 characters
    tie = "zzzz" + "y" * 3 + "x" * 3 + "w"   # y and x tie at the 0.6 line; x < y keeps x
    cases = [Case("rare_characters(a 100-character text, 0.9)", text, 0.9),
             Case("rare_characters('zzzzyyyxxxw', 0.6) (a tie at the line)", tie, 0.6),
             Case("rare_characters(a 100-character text, 0.5)", text, 0.5),
             Case("rare_characters(a 100-character text, 1.0)", text, 1.0),
             Case("rare_characters('abcabd', 0.0)", "abcabd", 0.0)]
    compare(rare_characters, reference_rare_characters, cases, name="rare_characters(text, coverage)",
            mistakes=RARE, read=_as_chars)
