"""Character-level tokenizer: one id per Unicode code point seen in the training text.

The simplest tokenizer there is, and the one of the nanoGPT Shakespeare run: the vocabulary is the
sorted set of characters of a text, so ids are stable for a given text.

>>> tok = CharTokenizer.from_text("hello world")
>>> tok.vocab_size, tok.chars
(8, [' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w'])
>>> tok.encode("hold")
[3, 5, 4, 1]
>>> tok.decode([3, 5, 4, 1])
'hold'
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from .base import Tokenizer, check_special_tokens, load_file, require_fields


class UnknownCharacterError(ValueError):
    """The text holds a character that is not in the character vocabulary."""


class CharTokenizer(Tokenizer):
    """Maps each character of a fixed vocabulary to an id, ``0..len(chars)-1`` in list order.

    Optional special tokens (e.g. ``{"<|endoftext|>": 65}``) get ids after the characters; they
    are encoded as one id only when ``encode(..., allowed_special=...)`` allows it.

    Args:
        chars: the vocabulary, each a single character, without repeats. Use
            :meth:`from_text` to build it from a corpus.
        special_tokens: optional names of special tokens (ids are assigned after the
            characters in the given order), or a ``{string: id}`` mapping.
        name: a label for reports.
    """

    def __init__(
        self,
        chars: Iterable[str],
        *,
        special_tokens: Iterable[str] | dict[str, int] = (),
        name: str = "char",
    ) -> None:
        chars = list(chars)
        if not chars:
            raise ValueError(
                "a character tokenizer needs at least one character; build it from non-empty text"
            )
        for i, c in enumerate(chars):
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"chars[{i}] = {c!r} is not a single character")
        if len(set(chars)) != len(chars):
            dup = next(c for i, c in enumerate(chars) if c in chars[:i])
            raise ValueError(f"character {dup!r} appears twice in the vocabulary")
        self.name = name
        self.chars: list[str] = chars
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(chars)}
        if isinstance(special_tokens, dict):
            specials = dict(special_tokens)
        else:
            specials = {s: len(chars) + k for k, s in enumerate(special_tokens)}
        check_special_tokens(specials, ordinary=chars)
        self.special_tokens = specials
        # Decoding table: id -> string (characters, then special tokens).
        self._itos: dict[int, str] = dict(enumerate(chars))
        self._itos.update({i: s for s, i in specials.items()})
        self._size = max(self._itos) + 1

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_text(
        cls, text: str, *, special_tokens: Iterable[str] = (), name: str = "char"
    ) -> CharTokenizer:
        """Build the vocabulary from the sorted set of characters of ``text``.

        Special token strings appearing in ``text`` are not split into vocabulary characters
        on their own account; their characters are included like any others.
        """
        if not isinstance(text, str):
            raise TypeError(f"from_text expects a str, got {type(text).__name__}")
        if not text:
            raise ValueError(
                "cannot build a character vocabulary from empty text; pass the training corpus "
                "(e.g. the contents of tinyshakespeare.txt)"
            )
        return cls(sorted(set(text)), special_tokens=special_tokens, name=name)

    # ------------------------------------------------------------------ interface
    @property
    def vocab_size(self) -> int:
        return self._size

    def encode_ordinary(self, text: str) -> list[int]:
        stoi = self.stoi
        try:
            return [stoi[c] for c in text]
        except KeyError:
            pass
        # Slow path only to build a precise error message.
        for pos, c in enumerate(text):
            if c not in stoi:
                try:
                    uname = unicodedata.name(c)
                except ValueError:
                    uname = "unnamed"
                raise UnknownCharacterError(
                    f"character {c!r} (U+{ord(c):04X} {uname}) at position {pos} is not in the "
                    f"vocabulary of {len(self.chars)} characters of tokenizer {self.name!r}. "
                    "Rebuild the tokenizer from text that includes it "
                    "(CharTokenizer.from_text(corpus_including_this_text)), or clean the text."
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def decode(self, ids: Sequence[int]) -> str:
        itos = self._itos
        try:
            return "".join([itos[int(i)] for i in ids])
        except KeyError:
            bad = next(int(i) for i in ids if int(i) not in itos)
            raise ValueError(
                f"id {bad} is not in the vocabulary of tokenizer {self.name!r} (valid ids: "
                f"0..{self.vocab_size - 1}); were these ids made by another tokenizer?"
            ) from None

    def spec(self) -> dict[str, Any]:
        return {
            "type": "char",
            "format_version": 1,
            "name": self.name,
            "chars": list(self.chars),
            "special_tokens": dict(self.special_tokens),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> CharTokenizer:
        """Rebuild from :meth:`spec` (also the content of a file written by :meth:`save`)."""
        if spec.get("type") != "char":
            raise ValueError(f"not a character tokenizer spec (type={spec.get('type')!r})")
        require_fields(spec, "character", "chars")
        return cls(
            spec["chars"],
            special_tokens={str(k): int(v) for k, v in spec.get("special_tokens", {}).items()},
            name=spec.get("name", "char"),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CharTokenizer:
        """Load a tokenizer written by :meth:`save`; an error names the file and what is wrong."""
        return load_file(path, cls.from_spec)
