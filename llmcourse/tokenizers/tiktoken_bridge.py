"""A thin wrapper giving a :class:`tiktoken.Encoding` the package's tokenizer interface.

>>> tok = TiktokenTokenizer("gpt2")                      # doctest: +SKIP
>>> tok.encode("Hello world"), tok.eot_token             # doctest: +SKIP
([15496, 995], 50256)

It wraps both tiktoken's published encodings (``"gpt2"``, ``"r50k_base"``, ``"cl100k_base"``) and
encodings exported from our own BPE (``BPETokenizer.to_tiktoken()``) for speed on large corpora.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .base import AllowedSpecial, SpecialTokenError, Tokenizer, check_text
from .ranks import get_encoding

if TYPE_CHECKING:  # pragma: no cover
    import tiktoken


class TiktokenTokenizer(Tokenizer):
    """The package interface over a tiktoken encoding.

    Args:
        encoding: a tiktoken encoding name or an :class:`tiktoken.Encoding`.
        spec: what :meth:`spec` returns; by default ``{"type": "tiktoken", "name": name}``, which
            only works for encodings that ``tiktoken.get_encoding`` knows. Wrappers of exported
            encodings pass the spec of the tokenizer they came from.
    """

    def __init__(
        self, encoding: str | tiktoken.Encoding, *, spec: dict[str, Any] | None = None
    ) -> None:
        if isinstance(encoding, str):
            encoding = get_encoding(encoding)
        self.encoding = encoding
        self.name: str = encoding.name
        self.special_tokens: dict[str, int] = dict(encoding._special_tokens)
        self._spec = spec

    @property
    def vocab_size(self) -> int:
        return int(self.encoding.n_vocab)

    def encode_ordinary(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text)

    def encode(self, text: str, *, allowed_special: AllowedSpecial = "none_raise") -> list[int]:
        check_text(text)
        allowed = self._resolve_allowed(allowed_special)
        if allowed is None:
            return self.encoding.encode_ordinary(text)
        # Same check and message as our own tokenizers (tiktoken's own error is terser).
        self._check_allowed(text, allowed)
        return self.encoding.encode(text, allowed_special=set(allowed), disallowed_special=())

    def encode_ordinary_batch(self, texts: Sequence[str], *, num_threads: int = 8) -> list[list[int]]:
        """Encode many texts in parallel threads (tiktoken releases the GIL)."""
        return self.encoding.encode_ordinary_batch(list(texts), num_threads=num_threads)

    def encode_batch(
        self,
        texts: Sequence[str],
        *,
        allowed_special: AllowedSpecial = "none_raise",
        num_threads: int = 8,
    ) -> list[list[int]]:
        """:meth:`encode` over many texts in parallel threads."""
        allowed = self._resolve_allowed(allowed_special)
        if allowed is None:
            return self.encode_ordinary_batch(texts, num_threads=num_threads)
        for t in texts:
            check_text(t)
            self._check_allowed(t, allowed)
        return self.encoding.encode_batch(
            list(texts), allowed_special=set(allowed), disallowed_special=(), num_threads=num_threads
        )

    def decode(self, ids: Sequence[int]) -> str:
        """Decode; invalid UTF-8 becomes U+FFFD."""
        try:
            return self.encoding.decode([int(i) for i in ids], errors="replace")
        except KeyError as e:
            raise ValueError(
                f"id {e.args[0]} is not in the vocabulary of {self.name!r} (size {self.vocab_size})"
            ) from None
        except OverflowError:  # a negative or huge id
            bad = next(i for i in ids if not 0 <= int(i) < self.vocab_size)
            raise ValueError(
                f"id {bad} is not in the vocabulary of {self.name!r} (size {self.vocab_size})"
            ) from None

    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        return self.encoding.decode_bytes([int(i) for i in ids])

    def spec(self) -> dict[str, Any]:
        if self._spec is not None:
            return dict(self._spec)
        return {"type": "tiktoken", "name": self.name}


__all__ = ["SpecialTokenError", "TiktokenTokenizer"]
