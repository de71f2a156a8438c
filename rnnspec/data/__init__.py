"""The data layer: seeded sources of variable-length examples, and their batching.

* :mod:`.batch` — :class:`Example`, :class:`Batch`, :func:`collate`,
  :class:`BatchIterator` (deterministic, resumable mid-epoch);
* :mod:`.synthetic` — the classic RNN benchmarks (copy, adding, Reber,
  Tomita, Mackey-Glass, ...), ``make_<task>(n, *, seed, ...)``;
* :mod:`.speech` — synthetic spoken digit strings (audio rendered here) and
  log-mel/MFCC features in torch, for CTC (task ``speech_digits``);
* :mod:`.text` — character/word corpora, :class:`Vocab`, language-model chunks;
* :mod:`.tabular` — CSV, ``.npy`` and ``.npz`` files;
* :mod:`.folder` — one sequence per file;
* :mod:`.splits` — seeded train/validation/test splits;
* :mod:`.errors` — :class:`DataError`.

Everything is a pure function of its arguments (and the files it is told to
read); randomness comes only from explicit seeds.
"""
from __future__ import annotations

from .batch import Batch, BatchIterator, Example, bucket_by_length, collate, make_rng
from .errors import DataError
from .folder import FolderData, load_folder
from .splits import Splits, Subset, contiguous_split, split_indices, train_validation_test
from .synthetic import TASKS, make_task, mackey_glass, series_windows
from .tabular import load_csv, load_npy, load_npz, load_tabular
from .text import (
    ContiguousBatches,
    LanguageModelChunks,
    LanguageModelData,
    Vocab,
    builtin_corpus,
    language_model_data,
    read_text,
    tokenize,
)

__all__ = [
    "Batch",
    "BatchIterator",
    "ContiguousBatches",
    "DataError",
    "Example",
    "FolderData",
    "LanguageModelChunks",
    "LanguageModelData",
    "Splits",
    "Subset",
    "TASKS",
    "Vocab",
    "bucket_by_length",
    "builtin_corpus",
    "collate",
    "contiguous_split",
    "language_model_data",
    "load_csv",
    "load_folder",
    "load_npy",
    "load_npz",
    "load_tabular",
    "mackey_glass",
    "make_rng",
    "make_task",
    "read_text",
    "series_windows",
    "split_indices",
    "tokenize",
    "train_validation_test",
]
