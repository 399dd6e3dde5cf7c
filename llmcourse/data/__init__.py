"""Data: the dataset registry and downloads, token files, and batches for training.

The path from text to training batches:

1. :func:`load_text` / :func:`dataset_path` - a registered dataset's text, downloaded once
   into the cache (``LLMCOURSE_CACHE_DIR``, default ``~/.cache/llmcourse``) with resume,
   retries and checksums, or read from the offline copies in ``LLMCOURSE_DATA_DIR``.
2. :func:`prepare` - tokenize it once into ``train.bin`` / ``val.bin`` (raw ``uint16`` or
   ``uint32`` ids) plus ``meta.json``; a second call with the same inputs does nothing.
3. :func:`get_batch` - random ``(x, y)`` windows, ``y`` being ``x`` shifted by one token, read
   from the memory-mapped token file; or :class:`TokenDataset` / :func:`make_dataloader` for
   a ``torch.utils.data`` pipeline.

Before step 2, a raw corpus can be cleaned: :func:`clean_corpus` strips boilerplate lines,
filters by length and removes exact and near duplicates (``llmcourse.data.clean``, with MinHash
and LSH in ``llmcourse.data.minhash``).

Example:
    >>> from llmcourse.data import prepare, get_batch          # doctest: +SKIP
    >>> prep = prepare("shakespeare", "char")                  # doctest: +SKIP
    >>> x, y = get_batch(prep.load("train"), batch_size=4, block_size=8)  # doctest: +SKIP
    >>> x.shape                                                # doctest: +SKIP
    torch.Size([4, 8])
"""

from __future__ import annotations

from llmcourse.data.batch import check_block_size, get_batch
from llmcourse.data.clean import (
    clean_corpus,
    corpus_stats,
    exact_dedup,
    length_filter,
    make_dirty_corpus,
    split_documents,
    strip_boilerplate,
)
from llmcourse.data.dataset import TokenDataset, make_dataloader
from llmcourse.data.fetch import (
    ChecksumError,
    DownloadError,
    dataset_path,
    download,
    load_text,
    sha256_file,
)
from llmcourse.data.minhash import MinHasher, dedup_near, near_duplicates
from llmcourse.data.prepared import (
    FORMAT_VERSION,
    PreparedData,
    open_prepared,
    prepare,
    token_dtype,
)
from llmcourse.data.registry import (
    DATASETS,
    DatasetFile,
    DatasetInfo,
    UnknownDatasetError,
    cache_dir,
    get_dataset_info,
    list_datasets,
)

__all__ = [
    "ChecksumError",
    "DATASETS",
    "DatasetFile",
    "DatasetInfo",
    "DownloadError",
    "FORMAT_VERSION",
    "MinHasher",
    "PreparedData",
    "TokenDataset",
    "UnknownDatasetError",
    "cache_dir",
    "check_block_size",
    "clean_corpus",
    "corpus_stats",
    "dataset_path",
    "dedup_near",
    "download",
    "exact_dedup",
    "get_batch",
    "get_dataset_info",
    "length_filter",
    "list_datasets",
    "load_text",
    "make_dataloader",
    "make_dirty_corpus",
    "near_duplicates",
    "open_prepared",
    "prepare",
    "sha256_file",
    "split_documents",
    "strip_boilerplate",
    "token_dtype",
]
