"""The sentencepiece-style training options, kept beside the fast trainer (``bpe_train``).

Neither changes the trainer's algorithm; each works from outside it:

- ``character_coverage`` edits the *counts* before training: the rarest characters, those
  outside the most frequent ones that cover this share of the text, are cut out of the
  pre-tokens, so no merge is spent on them (they are still encoded, as their UTF-8 bytes).
- ``max_token_length`` is a *rule* the trainer asks before each merge
  (:func:`max_length_rule`): a pair whose token would be longer, in bytes, is skipped.

At their defaults (``1.0`` and ``None``) neither is applied, and training gives exactly the
merges of the textbook loop in :mod:`llmcourse.tokenizers.basic`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

__all__ = ["check_options", "rare_characters", "drop_rare_characters", "max_length_rule"]


def check_options(max_token_length: int | None, character_coverage: float) -> None:
    """Raise a one-line ``ValueError`` for an option outside its range."""
    if max_token_length is not None and (
            isinstance(max_token_length, bool) or not isinstance(max_token_length, int)
            or max_token_length < 2):
        raise ValueError(f"max_token_length must be an int >= 2 (bytes) or None, got "
                         f"{max_token_length!r}")
    if not 0.0 < character_coverage <= 1.0:
        raise ValueError(f"character_coverage must be in (0, 1], got {character_coverage!r}; "
                         "1.0 keeps every character, sentencepiece uses 0.9995 for large "
                         "character sets")


def rare_characters(counts: dict[str, int], coverage: float) -> set[str]:
    """The characters outside the most frequent ones that cover ``coverage`` of all characters.

    ``counts`` maps pieces of text to how often they occur. Characters are ranked by frequency
    (ties: by code point), and kept until their total reaches ``coverage`` of the whole.

    >>> sorted(rare_characters({"aaaaaaaab": 1, "c": 1}, 0.8))
    ['b', 'c']
    """
    chars: Counter[str] = Counter()
    for piece, f in counts.items():
        for ch, n in Counter(piece).items():
            chars[ch] += n * f
    total = sum(chars.values())
    kept, covered = set(), 0
    for ch, n in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0])):
        if covered >= coverage * total:
            break
        kept.add(ch)
        covered += n
    return set(chars) - kept


def drop_rare_characters(counts: dict[str, int], coverage: float) -> Counter[str]:
    """Cut every pre-token at its rare characters; the pieces between them are counted.

    >>> drop_rare_characters({"aaxaa": 1, "ab": 1}, 0.8)   # "x" is rare: cut there
    Counter({'aa': 2, 'ab': 1})
    """
    rare = rare_characters(counts, coverage)
    if not rare:
        return Counter(counts)
    out: Counter[str] = Counter()
    for piece, f in counts.items():
        start = 0
        for i, ch in enumerate(piece):
            if ch in rare:
                if i > start:
                    out[piece[start:i]] += f
                start = i + 1
        if start < len(piece):
            out[piece[start:]] += f
    return out


def max_length_rule(max_token_length: int) -> Callable[[tuple[int, int]], bool]:
    """A ``can_merge`` rule for :func:`~llmcourse.tokenizers.bpe_train.learn_merges`.

    It tracks the length in bytes of every id; a pair whose token would be longer than
    ``max_token_length`` is refused. A ``True`` answer means the trainer takes the merge, so
    the rule records the new id's length then.

    >>> rule = max_length_rule(2)
    >>> rule((97, 98)), rule((256, 99))     # "ab" (id 256) is 2 bytes; "ab"+"c" would be 3
    (True, False)
    """
    lengths = [1] * 256  # bytes per id; one more entry per merge taken

    def can_merge(pair: tuple[int, int]) -> bool:
        n = lengths[pair[0]] + lengths[pair[1]]
        if n > max_token_length:
            return False
        lengths.append(n)
        return True

    return can_merge
