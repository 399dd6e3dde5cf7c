"""Tokenizers: text to integer ids and back.

- :class:`CharTokenizer` - one id per character (lesson 1).
- BPE in two tiers. The reference: :mod:`~llmcourse.tokenizers.basic`, the textbook BPE
  (:func:`get_stats`, :func:`merge`, ``basic.train`` / ``basic.encode`` / ``basic.decode``) of
  lesson 2. The engineered version beside it: :class:`BPETokenizer` (``bpe``), the same merges
  learned fast (``bpe_train``), sentencepiece-style options (``bpe_options``), regex
  pre-splitting (:data:`GPT2_SPLIT_PATTERN`, :data:`GPT4_SPLIT_PATTERN`), special tokens,
  export to tiktoken, and GPT-2 / cl100k vocabularies from tiktoken's ranks (``ranks``,
  ``pretrained``), lessons 2-3.
- :class:`TiktokenTokenizer` - tiktoken's encodings behind the same interface.
- :func:`get_tokenizer` - by name (``"gpt2"``, ``"cl100k_base"``, ``"char"``), file or spec.
- :func:`encode_file` - stream a large file into arrays of ids in bounded memory.

>>> from llmcourse.tokenizers import BPETokenizer
>>> tok = BPETokenizer.train("the cat sat on the mat " * 20, vocab_size=265)
>>> tok.decode(tok.encode("the mat"))
'the mat'
"""

from .base import ENDOFTEXT, SpecialTokenError, Tokenizer, token_dtype
from . import basic
from .basic import get_stats, merge
from .bpe import BPETokenizer
from .char import CharTokenizer, UnknownCharacterError
from .patterns import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN
from .pretrained import bytes_to_unicode, load_gpt2_files, merges_from_ranks
from .registry import get_tokenizer
from .stream import encode_file
from .tiktoken_bridge import TiktokenTokenizer

__all__ = [
    "token_dtype",
    "basic",
    "get_stats",
    "merge",
    "ENDOFTEXT",
    "GPT2_SPLIT_PATTERN",
    "GPT4_SPLIT_PATTERN",
    "BPETokenizer",
    "CharTokenizer",
    "SpecialTokenError",
    "TiktokenTokenizer",
    "Tokenizer",
    "UnknownCharacterError",
    "bytes_to_unicode",
    "encode_file",
    "get_tokenizer",
    "load_gpt2_files",
    "merges_from_ranks",
]
