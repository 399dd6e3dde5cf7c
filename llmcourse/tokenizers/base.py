"""The interface every tokenizer of the package follows, and the special-token rules they share.

A tokenizer maps text to a list of integer ids and back. All of ours (character, byte-level BPE,
and the thin wrapper around tiktoken) expose the same small surface, so the data pipeline and the
lessons never need to know which one they hold:

- ``name`` and ``vocab_size``;
- ``encode(text, *, allowed_special=...) -> list[int]`` and ``decode(ids) -> str``;
- ``eot_token``: the id of ``<|endoftext|>`` (or ``None`` when the tokenizer has none);
- ``spec() -> dict``: a JSON-serialisable description that ``get_tokenizer(spec)`` rebuilds.

Special tokens follow tiktoken's conventions. ``allowed_special`` decides what happens when a
special token's *string* (say ``"<|endoftext|>"``) appears in the text to encode:

=================  ==========================================================================
``"none_raise"``   (default) raise :class:`SpecialTokenError`: such text usually comes from
                   untrusted data, and silently turning it into a control token is a classic bug.
``"none"``         encode the string as ordinary text, byte by byte, like any other characters.
``"all"``          encode every special token string as its single id.
a set of strings   encode those as their ids; any *other* special token string still raises.
=================  ==========================================================================
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np
import regex

from ..atomic import write_atomic

AllowedSpecial = Union[Literal["none_raise", "none", "all"], Collection[str]]

#: The end-of-text marker used by GPT-2, tiktoken and most public corpora.
ENDOFTEXT = "<|endoftext|>"


class SpecialTokenError(ValueError):
    """Text to encode holds a special token string that the caller did not allow."""


class Tokenizer(ABC):
    """Base class: the shared interface plus special-token handling.

    Subclasses set ``name`` and ``special_tokens`` (string -> id) and implement
    :meth:`encode_ordinary`, :meth:`decode`, :attr:`vocab_size` and :meth:`spec`.
    """

    name: str
    special_tokens: dict[str, int]

    # ------------------------------------------------------------------ interface
    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids the tokenizer can produce (ordinary and special): ids are ``0..vocab_size-1``."""

    @abstractmethod
    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` treating every character as ordinary text (special strings included)."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Turn ids back into text."""

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """A JSON-serialisable description; ``get_tokenizer(tok.spec())`` rebuilds the tokenizer."""

    # ------------------------------------------------------------------ shared behaviour
    @property
    def eot_token(self) -> int | None:
        """Id of ``<|endoftext|>``, or ``None`` when this tokenizer has no such token."""
        return self.special_tokens.get(ENDOFTEXT)

    def encode(self, text: str, *, allowed_special: AllowedSpecial = "none_raise") -> list[int]:
        """Encode ``text`` to ids; see the module docstring for ``allowed_special``.

        >>> from llmcourse.tokenizers import CharTokenizer
        >>> CharTokenizer.from_text("hello").encode("hell")
        [1, 0, 2, 2]
        """
        check_text(text)
        allowed = self._resolve_allowed(allowed_special)
        if allowed is None:  # "none": specials are plain text
            return self.encode_ordinary(text)
        if not self.special_tokens:
            return self.encode_ordinary(text)
        out: list[int] = []
        for piece, special_id in self._split_on_special(text, allowed):
            if special_id is None:
                out.extend(self.encode_ordinary(piece))
            else:
                out.append(special_id)
        return out

    def __call__(self, text: str, **kwargs: Any) -> list[int]:
        return self.encode(text, **kwargs)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, vocab_size={self.vocab_size})"

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write :meth:`spec` as indented, human-readable JSON (UTF-8).

        The write is atomic, and an existing file is kept unless ``overwrite=True``.
        """
        save_text(path, json.dumps(self.spec(), ensure_ascii=False, indent=1) + "\n", overwrite)

    # ------------------------------------------------------------------ helpers
    def _resolve_allowed(self, allowed_special: AllowedSpecial) -> frozenset[str] | None:
        """Return the set of special strings to encode as ids, or ``None`` for "as ordinary text"."""
        if isinstance(allowed_special, str):
            if allowed_special == "none_raise":
                return frozenset()
            if allowed_special == "none":
                return None
            if allowed_special == "all":
                return frozenset(self.special_tokens)
            raise ValueError(
                f"allowed_special={allowed_special!r} is not understood; use 'none_raise' (default), "
                "'none' (special strings are ordinary text), 'all', or a set of special token strings"
            )
        allowed = frozenset(allowed_special)
        unknown = sorted(allowed - set(self.special_tokens))
        if unknown:
            known = sorted(self.special_tokens) or "none"
            raise ValueError(
                f"allowed_special names {unknown}, which {'is' if len(unknown) == 1 else 'are'} not a "
                f"special token of {self.name!r} (its special tokens: {known})"
            )
        return allowed

    def _special_regex(self) -> regex.Pattern[str]:
        cached = getattr(self, "_special_re", None)
        key = tuple(sorted(self.special_tokens))
        if cached is None or cached[0] != key:
            # Longest first so that a token that is a prefix of another never wins.
            alts = sorted(self.special_tokens, key=lambda s: (-len(s), s))
            cached = (key, regex.compile("|".join(regex.escape(s) for s in alts)))
            self._special_re = cached
        return cached[1]

    def _disallowed_error(self, tok: str, pos: int) -> SpecialTokenError:
        return SpecialTokenError(
            f"the text holds the special token {tok!r} at character {pos}, which is not allowed. "
            f"To encode it as its id ({self.special_tokens[tok]}) pass "
            f"allowed_special={{{tok!r}}} (or 'all'); to encode it as ordinary text pass "
            "allowed_special='none'"
        )

    def _check_allowed(self, text: str, allowed: frozenset[str]) -> None:
        """Raise :class:`SpecialTokenError` if ``text`` holds a special string not in ``allowed``."""
        if not self.special_tokens or allowed.issuperset(self.special_tokens):
            return
        for m in self._special_regex().finditer(text):
            if m.group() not in allowed:
                raise self._disallowed_error(m.group(), m.start())

    def _split_on_special(
        self, text: str, allowed: frozenset[str]
    ) -> Iterator[tuple[str, int | None]]:
        """Yield ``(piece, None)`` for ordinary text and ``("", id)`` for each allowed special token.

        Raises :class:`SpecialTokenError` on the first special string that is not allowed.
        """
        start = 0
        for m in self._special_regex().finditer(text):
            tok = m.group()
            if tok not in allowed:
                raise self._disallowed_error(tok, m.start())
            if m.start() > start:
                yield text[start : m.start()], None
            yield "", self.special_tokens[tok]
            start = m.end()
        if start < len(text):
            yield text[start:], None


def check_text(text: object) -> None:
    """Raise ``TypeError`` unless ``text`` is a ``str`` (what every ``encode`` takes)."""
    if not isinstance(text, str):
        raise TypeError(
            f"encode expects a str, got {type(text).__name__}; decode bytes first "
            "(e.g. data.decode('utf-8'))"
        )


def check_special_tokens(special_tokens: dict[str, int], ordinary: Sequence[Any] = ()) -> None:
    """Validate a ``{string: id}`` mapping of special tokens (non-empty strings, distinct ids).

    ``ordinary`` lists the tokenizer's ordinary tokens (characters, byte strings): their ids
    ``0 .. len(ordinary) - 1`` are taken, so a special id among them is an error.

    >>> check_special_tokens({"<|end|>": 1}, ordinary=["a", "b"])
    Traceback (most recent call last):
    ...
    ValueError: special token '<|end|>' has id 1, which is already the ordinary token 'b'; special ids must be >= 2
    """
    seen: dict[int, str] = {}
    for s, i in special_tokens.items():
        if not isinstance(s, str) or not s:
            raise ValueError(f"special token {s!r} must be a non-empty string")
        if not isinstance(i, int) or i < 0:
            raise ValueError(f"special token {s!r} has id {i!r}; ids must be non-negative ints")
        if i in seen:
            raise ValueError(f"special tokens {seen[i]!r} and {s!r} share the id {i}")
        if i < len(ordinary):
            raise ValueError(f"special token {s!r} has id {i}, which is already the ordinary token "
                             f"{ordinary[i]!r}; special ids must be >= {len(ordinary)}")
        seen[i] = s


def save_text(path: str | os.PathLike[str], text: str, overwrite: bool = False) -> None:
    """Write a tokenizer file atomically; refuse to replace one unless ``overwrite=True``."""
    if not overwrite and Path(path).exists():
        raise FileExistsError(f"{path} exists; a tokenizer's save() never replaces a file unless "
                              "asked: give a new path, or pass overwrite=True")
    write_atomic(path, text, overwrite=overwrite)


def read_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON object in a tokenizer file; every error is one line naming the file.

    >>> import tempfile
    >>> read_spec(tempfile.gettempdir())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ... is a folder, not a tokenizer file; give the JSON file a tokenizer's save() wrote
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a tokenizer file; give the JSON file a "
                         "tokenizer's save() wrote")
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer file at {path}")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not a tokenizer JSON file: byte {e.start} is not UTF-8 "
                         "text; give the JSON file a tokenizer's save() wrote") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not a tokenizer JSON file ({e}); give the JSON file a "
                         "tokenizer's save() wrote, or a tokenizer name (char, bpe, gpt2)") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path} does not hold a tokenizer description (a JSON object)")
    return spec


def load_file(path: str | os.PathLike[str], from_spec: Callable[[dict[str, Any]], Any]) -> Any:
    """``from_spec(read_spec(path))``, with the file named in any error about its content."""
    spec = read_spec(path)
    try:
        return from_spec(spec)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path} is not a usable tokenizer file: {e}") from None


def require_fields(spec: dict[str, Any], kind: str, *fields: str) -> None:
    """Raise a one-line ``ValueError`` naming the first of ``fields`` missing from ``spec``.

    >>> require_fields({"type": "bpe"}, "BPE", "merges")
    Traceback (most recent call last):
    ...
    ValueError: the BPE tokenizer description has no 'merges' field; save the tokenizer again with tok.save(path)
    """
    for field in fields:
        if field not in spec:
            raise ValueError(f"the {kind} tokenizer description has no {field!r} field; save the "
                             "tokenizer again with tok.save(path)")

def dump_readable(obj: dict[str, Any]) -> str:
    """JSON with one list item per line (merges, vocab): readable, diffable, not 10 lines per pair.

    >>> print(dump_readable({"type": "bpe", "merges": [[97, 98], [256, 99]]}), end="")
    {
     "type": "bpe",
     "merges": [
      [97, 98],
      [256, 99]
     ]
    }
    """
    lines = ["{"]
    items = list(obj.items())
    for n, (k, v) in enumerate(items):
        comma = "," if n < len(items) - 1 else ""
        if isinstance(v, list) and k in ("merges", "vocab", "byte_ids"):
            if not v:
                lines.append(f" {json.dumps(k)}: []{comma}")
                continue
            lines.append(f" {json.dumps(k)}: [")
            for m, item in enumerate(v):
                sep = "," if m < len(v) - 1 else ""
                lines.append("  " + json.dumps(item, ensure_ascii=False) + sep)
            lines.append(f" ]{comma}")
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id of a vocabulary (token files, streams).

    Example:
        >>> token_dtype(50257), token_dtype(65536), token_dtype(65537)
        (dtype('uint16'), dtype('uint16'), dtype('uint32'))
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)):
        raise TypeError(f"vocab_size must be an int, got {vocab_size!r}")
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be at least 1, got {vocab_size}")
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    if vocab_size <= 1 << 32:
        return np.dtype(np.uint32)
    raise ValueError(
        f"vocab_size {vocab_size:,} is too large for the token files: ids are stored as uint32, "
        f"which holds at most {1 << 32:,} distinct ids. Use a smaller vocabulary."
    )
