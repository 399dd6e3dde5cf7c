"""``get_tokenizer``: one entry point for every tokenizer, by name, file, or spec dict."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .base import Tokenizer, load_file, require_fields
from .bpe import BPETokenizer
from .char import CharTokenizer
from .tiktoken_bridge import TiktokenTokenizer


def _tiktoken_names() -> list[str]:
    import tiktoken

    return sorted(tiktoken.list_encoding_names())


def get_tokenizer(name_or_spec: str | os.PathLike[str] | dict[str, Any] | Tokenizer, **kwargs: Any) -> Tokenizer:
    """Build or load a tokenizer.

    ``name_or_spec`` may be:

    - ``"char"`` with ``text=...``: a :class:`CharTokenizer` built from that text
      (optional ``special_tokens=[...]``);
    - ``"bpe"`` with ``text=...`` and ``vocab_size=...``: train a :class:`BPETokenizer`
      (other keywords go to :meth:`BPETokenizer.train`);
    - a tiktoken encoding name (``"gpt2"``, ``"r50k_base"``, ``"cl100k_base"``...): a
      :class:`TiktokenTokenizer`, or our pure-Python :class:`BPETokenizer` with the same merges
      when ``implementation="python"``;
    - a path to a JSON file written by a tokenizer's ``save`` (its ``"type"`` says which);
    - a dict from a tokenizer's ``spec()``;
    - a tokenizer, returned as is.

    For BPE files and specs, ``fast=True`` returns the tiktoken export (same ids, much faster).

    >>> get_tokenizer("char", text="abc").encode("cab")
    [2, 0, 1]
    >>> tok = get_tokenizer("char", text="abc")
    >>> get_tokenizer(tok.spec()).chars
    ['a', 'b', 'c']
    """
    if isinstance(name_or_spec, Tokenizer):
        return name_or_spec
    if isinstance(name_or_spec, dict):
        return _from_spec(name_or_spec, **kwargs)
    if isinstance(name_or_spec, os.PathLike):
        return _from_file(Path(name_or_spec), **kwargs)
    if not isinstance(name_or_spec, str):
        raise TypeError(
            f"get_tokenizer expects a name, a path or a spec dict, not {type(name_or_spec).__name__}"
        )
    name = name_or_spec
    if name == "char":
        text = kwargs.pop("text", None)
        if text is None:
            raise ValueError(
                "get_tokenizer('char') needs the text to take its characters from: "
                "get_tokenizer('char', text=corpus)"
            )
        return CharTokenizer.from_text(text, **kwargs)
    if name == "bpe":
        if "text" not in kwargs or "vocab_size" not in kwargs:
            raise ValueError(
                "get_tokenizer('bpe') trains a tokenizer: pass text=... and vocab_size=..."
            )
        fast = kwargs.pop("fast", False)
        tok = BPETokenizer.train(kwargs.pop("text"), kwargs.pop("vocab_size"), **kwargs)
        return _maybe_fast(tok, fast)
    names = _tiktoken_names()
    if name in names:
        impl = kwargs.pop("implementation", "tiktoken")
        if kwargs:
            raise TypeError(f"unexpected keyword arguments for {name!r}: {sorted(kwargs)}")
        if impl == "tiktoken":
            return TiktokenTokenizer(name)
        if impl == "python":
            return BPETokenizer.from_tiktoken(name)
        raise ValueError(f"implementation must be 'tiktoken' or 'python', not {impl!r}")
    path = Path(name)
    if path.exists():  # a file, or a folder (refused with a one-line error naming it)
        return _from_file(path, **kwargs)
    raise ValueError(
        f"unknown tokenizer {name!r}: not 'char', 'bpe', a tiktoken encoding ({', '.join(names)}) "
        "or an existing tokenizer JSON file"
    )


def _fast_only(kwargs: dict[str, Any]) -> bool:
    fast = kwargs.pop("fast", False)
    if kwargs:
        raise TypeError(f"unexpected keyword arguments when loading a tokenizer: {sorted(kwargs)}")
    return bool(fast)


def _from_file(path: Path, **kwargs: Any) -> Tokenizer:
    fast = _fast_only(kwargs)
    return load_file(path, lambda spec: _from_spec(spec, fast=fast))


def _from_spec(spec: dict[str, Any], **kwargs: Any) -> Tokenizer:
    fast = _fast_only(kwargs)
    kind = spec.get("type")
    if kind == "char":
        return CharTokenizer.from_spec(spec)
    if kind == "bpe":
        return _maybe_fast(BPETokenizer.from_spec(spec), fast)
    if kind == "tiktoken":
        require_fields(spec, "tiktoken", "name")
        return TiktokenTokenizer(spec["name"])
    raise ValueError(
        f"tokenizer spec has type {kind!r}; expected 'char', 'bpe' or 'tiktoken' "
        "(was it written by a tokenizer's save()/spec()?)"
    )


def _maybe_fast(tok: BPETokenizer, fast: bool) -> Tokenizer:
    if not fast:
        return tok
    return TiktokenTokenizer(tok.to_tiktoken(), spec=tok.spec())


__all__ = ["get_tokenizer"]
