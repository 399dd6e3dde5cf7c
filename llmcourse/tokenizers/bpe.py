"""Byte-level Byte Pair Encoding, written from scratch: training, encoding, decoding, save/load.

Ids ``0..255`` stand for the 256 byte values (in identity order for tokenizers we train; GPT-2
and cl100k use a permutation, kept in ``byte_ids``). Merge number ``i`` (its *rank*) joins two
existing ids into the new id ``256 + i``, so a lower id is always an earlier, more frequent merge.
Special tokens get the ids after the merges.

>>> tok = BPETokenizer.train("low lower lowest " * 50, vocab_size=260, pattern=None)
>>> [tok.decode([i]) for i in range(256, 260)]
['lo', 'low', ' low', ' lowe']
>>> tok.encode("lowest"), tok.encode(" lowest")
([257, 101, 115, 116], [259, 115, 116])
>>> tok.decode(tok.encode("lowest"))
'lowest'

Two tiers, one concept a module:

- :mod:`~llmcourse.tokenizers.basic` is the textbook BPE (train, encode, decode) to read first;
- this class is the engineered one: :meth:`BPETokenizer.train` learns the textbook's merges
  fast (:mod:`~llmcourse.tokenizers.bpe_train`: pre-tokens counted once, pair counts updated
  incrementally), with the sentencepiece-style options beside it
  (:mod:`~llmcourse.tokenizers.bpe_options`); encoding adds regex pre-splitting, a cache, a
  heap for long pre-tokens and special tokens; tiktoken's vocabularies come in through
  :mod:`~llmcourse.tokenizers.ranks`.
"""

from __future__ import annotations

import heapq
import os
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .base import (Tokenizer, check_special_tokens, dump_readable, load_file, require_fields,
                   save_text)
from .basic import merge
from .bpe_options import check_options, drop_rare_characters, max_length_rule, rare_characters
from .bpe_train import count_pretokens, learn_merges, lone_surrogate_error
from .patterns import GPT2_SPLIT_PATTERN, compile_pattern, resolve_pattern
from .ranks import get_encoding, merges_from_ranks, tiktoken_merges

if TYPE_CHECKING:  # pragma: no cover
    import tiktoken

__all__ = ["BPETokenizer", "rare_characters"]  # rare_characters: day 32 imports it from here

_INF = float("inf")
#: Pre-tokens longer than this (in ids) are encoded with a heap instead of repeated scans.
_LONG_CHUNK = 64


class BPETokenizer(Tokenizer):
    """A byte-level BPE tokenizer with optional regex pre-splitting and special tokens.

    Usually made by :meth:`train`, :meth:`load` or :meth:`from_tiktoken` rather than called
    directly.

    Args:
        merges: the merges in rank order; merge ``i`` turns the adjacent pair ``(a, b)`` into
            the id ``256 + i``. ``a`` and ``b`` must be ids that exist before it.
        byte_ids: ``byte_ids[v]`` is the id of the byte value ``v``; a permutation of
            ``0..255``. ``None`` (default) means the identity.
        special_tokens: ``{string: id}``; ids must not collide with byte or merge ids.
        pattern: the pre-tokenization regex (or ``"gpt2"``/``"gpt4"``), or ``None`` to run BPE
            over the whole text as one sequence.
        name: a label, also the name of the exported tiktoken encoding.
        cache_size: the encoder memoises the ids of each distinct pre-token; when the cache holds
            this many entries it is emptied and refilled (bounded memory, no LRU bookkeeping).
            ``0`` disables the cache.
    """

    def __init__(
        self,
        merges: Sequence[tuple[int, int]],
        *,
        byte_ids: Sequence[int] | None = None,
        special_tokens: dict[str, int] | None = None,
        pattern: str | None = GPT2_SPLIT_PATTERN,
        name: str = "bpe",
        cache_size: int = 200_000,
    ) -> None:
        self.name = name
        if byte_ids is None:
            byte_ids = range(256)
        byte_ids = [int(i) for i in byte_ids]
        if sorted(byte_ids) != list(range(256)):
            raise ValueError("byte_ids must be a permutation of 0..255 (one id per byte value)")
        self.byte_ids: list[int] = byte_ids
        self._identity_bytes = byte_ids == list(range(256))

        vocab: list[bytes] = [b""] * 256
        for value, i in enumerate(byte_ids):
            vocab[i] = bytes([value])
        self.merge_list: list[tuple[int, int]] = []
        self.merges: dict[tuple[int, int], int] = {}
        for rank, pair in enumerate(merges):
            a, b = int(pair[0]), int(pair[1])
            new_id = 256 + rank
            if not (0 <= a < new_id and 0 <= b < new_id):
                raise ValueError(
                    f"merge #{rank} {(a, b)} uses an id that does not exist yet (ids so far: "
                    f"0..{new_id - 1}); merges must be listed in rank order"
                )
            if (a, b) in self.merges:
                raise ValueError(f"merge #{rank} {(a, b)} repeats merge #{self.merges[(a, b)] - 256}")
            self.merges[(a, b)] = new_id
            self.merge_list.append((a, b))
            vocab.append(vocab[a] + vocab[b])
        #: ``vocab[i]`` is the byte string of ordinary id ``i``.
        self.vocab: list[bytes] = vocab

        specials = dict(special_tokens or {})
        check_special_tokens(specials, ordinary=vocab)
        self.special_tokens: dict[str, int] = specials
        self._special_bytes = {i: s.encode("utf-8") for s, i in specials.items()}
        self._size = max([len(vocab) - 1, *specials.values()]) + 1

        self.pattern: str | None = resolve_pattern(pattern)
        self._compiled = compile_pattern(self.pattern) if self.pattern is not None else None
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.cache_size = cache_size
        self._cache: dict[str, tuple[int, ...]] = {}
        #: Where a pretrained tokenizer came from (``"gpt2"``...), so that :meth:`spec` stays small.
        self.pretrained: str | None = None
        #: Pair frequency at the time of each merge (filled by :meth:`train`; not saved).
        self.merge_counts: list[int] = []

    # ================================================================== training
    @classmethod
    def train(
        cls,
        text: str | Iterable[str],
        vocab_size: int,
        *,
        special_tokens: Iterable[str] = (),
        pattern: str | None = GPT2_SPLIT_PATTERN,
        name: str = "bpe",
        max_token_length: int | None = None,
        character_coverage: float = 1.0,
    ) -> BPETokenizer:
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text``.

        Args:
            text: the corpus, a string or an iterable of strings (documents); they are
                pre-tokenized separately, so no merge spans two documents.
            vocab_size: the size of the final vocabulary, counting the 256 byte tokens, the
                merges and the special tokens.
            special_tokens: strings such as ``"<|endoftext|>"``; they get the last ids. Where they
                occur in the corpus they are cut out before counting, so no merge learns them.
            pattern: pre-tokenization regex (default GPT-2's; ``"gpt4"`` for cl100k's), or
                ``None`` to treat each document as one byte sequence (merges may then cross
                spaces and punctuation; slower on long texts).
            name: a label for the tokenizer.
            max_token_length: the longest token, in bytes, a merge may make; a longer one is
                skipped for the next most frequent pair. ``None`` (default): no limit.
            character_coverage: the share of the corpus' characters the merges are learned
                from, as in sentencepiece: the rarest characters beyond it get no merge and
                are encoded as their UTF-8 bytes. ``1.0`` (default) keeps every character.
                Both options are explained in :mod:`~llmcourse.tokenizers.bpe_options`.

        Tie-breaking is deterministic: among pairs of equal frequency the smallest pair
        ``(a, b)`` (by first id, then second id) is merged first. The result depends only on
        the text and the arguments. If the corpus runs out of pairs before reaching
        ``vocab_size``, training stops early with a warning and the vocabulary is smaller.
        """
        specials = list(dict.fromkeys(special_tokens))
        if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
            raise TypeError(f"vocab_size must be an int, got {vocab_size!r}")
        if vocab_size < 256 + len(specials):
            raise ValueError(
                f"vocab_size={vocab_size} is too small: a byte-level BPE needs 256 byte tokens"
                + (f" plus {len(specials)} special token(s)" if specials else "")
                + f", so vocab_size >= {256 + len(specials)}"
            )
        docs = [text] if isinstance(text, str) else list(text)
        for d in docs:
            if not isinstance(d, str):
                raise TypeError(f"text must be a str or an iterable of str, got an item {type(d).__name__}")
        pattern = resolve_pattern(pattern)
        check_options(max_token_length, character_coverage)

        # 1. Count the distinct pre-tokens once.
        counts = count_pretokens(docs, pattern, specials)
        if not counts:
            raise ValueError("cannot train BPE on empty text; pass a non-empty corpus")
        if character_coverage < 1.0:  # option: rare characters take no part (bpe_options)
            counts = drop_rare_characters(counts, character_coverage)
        can_merge = None if max_token_length is None else max_length_rule(max_token_length)

        # 2. Learn the merges (bpe_train), the textbook's merges found incrementally.
        num_merges = vocab_size - 256 - len(specials)
        try:
            merges, merge_counts = learn_merges(counts, num_merges, can_merge)
        except UnicodeEncodeError:
            raise lone_surrogate_error(docs) from None
        if len(merges) < num_merges:
            warnings.warn(
                f"the corpus only supports {len(merges)} merges ({num_merges} requested); the "
                f"vocabulary has {256 + len(merges) + len(specials)} tokens instead of {vocab_size}. "
                "Train on more text or ask for a smaller vocab_size.",
                stacklevel=2,
            )
        first_special = 256 + len(merges)
        tok = cls(
            merges,
            special_tokens={s: first_special + k for k, s in enumerate(specials)},
            pattern=pattern,
            name=name,
        )
        tok.merge_counts = merge_counts
        return tok

    # ================================================================== encoding
    @property
    def vocab_size(self) -> int:
        return self._size

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` with special token strings treated as ordinary text."""
        try:
            return self._encode_ordinary(text)
        except UnicodeEncodeError:
            # Lone surrogates cannot be UTF-8 encoded; replace them by U+FFFD like tiktoken.
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return self._encode_ordinary(text)

    def _encode_ordinary(self, text: str) -> list[int]:
        if self._compiled is None:
            return self._encode_bytes(text.encode("utf-8"))
        out: list[int] = []
        cache = self._cache
        limit = self.cache_size
        encode_bytes = self._encode_bytes
        for chunk in self._compiled.findall(text):
            ids = cache.get(chunk)
            if ids is None:
                ids = tuple(encode_bytes(chunk.encode("utf-8")))
                if limit:
                    if len(cache) >= limit:
                        cache.clear()
                    cache[chunk] = ids
            out.extend(ids)
        return out

    def _encode_bytes(self, data: bytes) -> list[int]:
        """Apply the merges to one pre-token: lowest rank first, leftmost first among equals."""
        ids = list(data) if self._identity_bytes else [self.byte_ids[v] for v in data]
        if len(ids) < 2:
            return ids
        if len(ids) > _LONG_CHUNK:
            return self._encode_long(ids)
        merges = self.merges
        get = merges.get
        while len(ids) >= 2:
            best = min(zip(ids, ids[1:]), key=lambda p: get(p, _INF))
            new_id = get(best)
            if new_id is None:
                break
            ids = merge(ids, best, new_id)  # the textbook step (tokenizers.basic)
        return ids

    def _encode_long(self, ids: list[int]) -> list[int]:
        """Same result as the scan in :meth:`_encode_bytes`, in O(n log n) for long sequences.

        A doubly linked list over positions plus a heap of ``(rank, position)`` candidate merges;
        stale heap entries (a neighbour changed) are skipped when popped.
        """
        get = self.merges.get
        n = len(ids)
        tok: list[int | None] = list(ids)
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        heap = [(r, i) for i in range(n - 1) if (r := get((ids[i], ids[i + 1]))) is not None]
        heapq.heapify(heap)
        while heap:
            rank, i = heapq.heappop(heap)
            left = tok[i]
            j = nxt[i]
            if left is None or j >= n:
                continue
            right = tok[j]
            if get((left, right)) != rank:  # type: ignore[arg-type]
                continue  # stale entry
            tok[i] = rank  # ranks are the new ids
            tok[j] = None
            k = nxt[j]
            nxt[i] = k
            if k < n:
                prv[k] = i
                r = get((rank, tok[k]))  # type: ignore[arg-type]
                if r is not None:
                    heapq.heappush(heap, (r, i))
            p = prv[i]
            if p >= 0:
                r = get((tok[p], rank))  # type: ignore[arg-type]
                if r is not None:
                    heapq.heappush(heap, (r, p))
        return [t for t in tok if t is not None]

    # ================================================================== decoding
    def decode_bytes(self, ids: Sequence[int]) -> bytes:
        """The raw bytes of ``ids`` (special tokens as their UTF-8 strings)."""
        vocab = self.vocab
        n = len(vocab)
        parts: list[bytes] = []
        for i in ids:
            i = int(i)
            if 0 <= i < n:
                parts.append(vocab[i])
            elif i in self._special_bytes:
                parts.append(self._special_bytes[i])
            else:
                raise ValueError(
                    f"id {i} is not in the vocabulary of tokenizer {self.name!r} (ordinary ids "
                    f"0..{n - 1}, special ids {sorted(self._special_bytes) or 'none'}); were these "
                    "ids made by another tokenizer?"
                )
        return b"".join(parts)

    def decode(self, ids: Sequence[int]) -> str:
        """Decode to text; byte sequences that are not valid UTF-8 become U+FFFD, never an error."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # ================================================================== export / persistence
    def to_tiktoken(self) -> tiktoken.Encoding:
        """Export to a :class:`tiktoken.Encoding` with the same ids (and tiktoken's Rust speed).

        Without a split pattern, tiktoken sees the whole text as one piece, which it handles
        slowly for long texts; pre-split tokenizers are the intended use.
        """
        import tiktoken

        ranks = {b: i for i, b in enumerate(self.vocab)}
        if len(ranks) != len(self.vocab):  # some byte string has two ids
            i = next(i for i, b in enumerate(self.vocab) if ranks[b] != i)
            raise ValueError(f"ids {i} and {ranks[self.vocab[i]]} both stand for the bytes "
                             f"{self.vocab[i]!r}; tiktoken needs one id per byte string, so this "
                             "tokenizer cannot be exported")
        return tiktoken.Encoding(
            name=self.name,
            pat_str=self.pattern if self.pattern is not None else r"[\s\S]+",
            mergeable_ranks=ranks,
            special_tokens=dict(self.special_tokens),
        )

    def to_dict(self) -> dict[str, Any]:
        """The complete, human-readable description written by :meth:`save`.

        ``merges`` are pairs of ids in rank order (merge ``i`` makes id ``256 + i``); ``vocab``
        shows each id's bytes as text (``\\x..`` escapes for bytes that are not UTF-8) for
        reading only: it is ignored when loading.
        """
        return {
            "type": "bpe",
            "format_version": 1,
            "name": self.name,
            "pattern": self.pattern,
            "byte_ids": None if self._identity_bytes else list(self.byte_ids),
            "special_tokens": dict(self.special_tokens),
            "merges": [list(p) for p in self.merge_list],
            "vocab": [b.decode("utf-8", errors="backslashreplace") for b in self.vocab],
        }

    def spec(self) -> dict[str, Any]:
        """Compact for pretrained tokenizers (``{"type": "bpe", "pretrained": "gpt2"}``), full otherwise."""
        if self.pretrained is not None:
            return {"type": "bpe", "pretrained": self.pretrained, "name": self.name}
        return self.to_dict()

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write :meth:`to_dict` as JSON (always the full merges, even for pretrained ones).

        Atomic, and an existing file is kept unless ``overwrite=True``.
        """
        save_text(path, dump_readable(self.to_dict()), overwrite)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> BPETokenizer:
        """Rebuild from :meth:`spec` / :meth:`to_dict` (the content of a saved file)."""
        if spec.get("type") != "bpe":
            raise ValueError(f"not a BPE tokenizer spec (type={spec.get('type')!r})")
        if spec.get("pretrained"):
            return cls.from_tiktoken(spec["pretrained"])
        version = spec.get("format_version", 1)
        if version != 1:
            raise ValueError(f"unsupported BPE file format_version {version}; this code reads 1")
        require_fields(spec, "BPE", "merges")
        merges = spec["merges"]
        if not isinstance(merges, list):
            raise ValueError(f"'merges' is {type(merges).__name__}, not a list of [a, b] id pairs")
        for k, p in enumerate(merges):
            if not (isinstance(p, list) and len(p) == 2
                    and all(isinstance(i, int) and not isinstance(i, bool) for i in p)):
                raise ValueError(f"merge #{k} is {p!r}; each merge must be a pair of ids [a, b]")
        specials = spec.get("special_tokens") or {}
        if not isinstance(specials, dict):
            raise ValueError("'special_tokens' must be an object {string: id}")
        return cls(
            [tuple(p) for p in merges],
            byte_ids=spec.get("byte_ids"),
            special_tokens={str(k): int(v) for k, v in specials.items()},
            pattern=spec.get("pattern"),
            name=spec.get("name", "bpe"),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """Load a tokenizer written by :meth:`save`; an error names the file and what is wrong."""
        return load_file(path, cls.from_spec)

    @classmethod
    def from_tiktoken(cls, encoding: str | tiktoken.Encoding) -> BPETokenizer:
        """Our BPE with the vocabulary, pattern and special tokens of a tiktoken encoding.

        ``encoding`` is a name (``"gpt2"``, ``"r50k_base"``, ``"cl100k_base"``) or an Encoding.
        The merges are recovered from tiktoken's ranks (:mod:`~llmcourse.tokenizers.ranks`);
        about a second for cl100k, cached per process for named encodings. Offline, point
        ``TIKTOKEN_CACHE_DIR`` at a directory holding tiktoken's cached files.
        """
        if isinstance(encoding, str):
            enc = get_encoding(encoding)
            byte_ids, merges = tiktoken_merges(encoding)
        else:
            enc = encoding
            byte_ids, merges = merges_from_ranks(enc._mergeable_ranks)
        tok = cls(merges, byte_ids=byte_ids, special_tokens=dict(enc._special_tokens),
                  pattern=enc._pat_str, name=enc.name)
        tok.pretrained = encoding if isinstance(encoding, str) else None
        return tok
