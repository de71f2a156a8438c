"""Text corpora for character- and word-level language models.

The pipeline is: read the text (:func:`read_text` or :func:`builtin_corpus`),
split it *contiguously* into train/validation/test (shuffling would put
overlapping context on both sides), build the :class:`Vocab` from the
training part only (so validation perplexity is honest about unseen words,
which map to ``<unk>``), encode each part once into an int64 tensor, and
serve it as :class:`LanguageModelChunks` — ``seq_len``-step inputs with the
next token as target, each a *view* into that tensor, so the corpus exists in
memory once however it is chunked.  :class:`ContiguousBatches` is the
alternative layout for truncated BPTT with the hidden state carried across
batches.

Only :func:`read_text`, :meth:`Vocab.save` and :meth:`Vocab.load` touch files.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence, overload

import torch
from torch import Tensor

from .batch import Batch, Example
from .errors import DataError, did_you_mean, listing
from .splits import contiguous_split, validate_fractions

__all__ = [
    "PAD",
    "UNK",
    "EOS",
    "LEVELS",
    "tokenize",
    "Vocab",
    "read_text",
    "builtin_corpus",
    "BUILTIN_CORPORA",
    "LanguageModelChunks",
    "ContiguousBatches",
    "LanguageModelData",
    "language_model_data",
]

PAD = "<pad>"
UNK = "<unk>"
EOS = "<eos>"
LEVELS = ("char", "word")

_FORMAT = "rnnspec-vocab"
_VERSION = 1


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise DataError(f"unknown text level {level!r}{did_you_mean(str(level), LEVELS)}; expected 'char' or 'word'")
    return level


def tokenize(text: str, level: str) -> list[str]:
    """Split text into tokens.

    ``char``: every character (newlines included).  ``word``: whitespace-
    separated words, with an ``<eos>`` token for every newline (so line
    structure survives and ``decode`` can restore it).
    """
    _check_level(level)
    if level == "char":
        return list(text)
    lines = text.split("\n")
    tokens: list[str] = []
    for k, line in enumerate(lines):
        tokens.extend(line.split())
        if k < len(lines) - 1:
            tokens.append(EOS)
    return tokens


class Vocab:
    """Token <-> id mapping with ``<pad>`` = 0 and ``<unk>`` = 1.

    ``<pad>`` is id 0 so that :func:`rnnspec.data.batch.collate`'s default
    ``pad_value=0`` pads token inputs with it; ``<unk>`` stands for anything
    not seen when the vocabulary was built.  Word vocabularies also have
    ``<eos>`` (id 2) for line ends.  Build with :meth:`build`, persist with
    :meth:`save` / :meth:`load` so a trained model is always evaluated with
    the ids it was trained with.
    """

    def __init__(self, tokens: Sequence[str], level: str = "char") -> None:
        self.level = _check_level(level)
        self.tokens: tuple[str, ...] = tuple(tokens)
        specials = self.specials_for(level)
        if self.tokens[: len(specials)] != specials:
            raise DataError(f"a {level} vocabulary must start with {list(specials)}, got {list(self.tokens[:3])}")
        self.index: dict[str, int] = {}
        for i, tok in enumerate(self.tokens):
            if not isinstance(tok, str):
                raise DataError(f"vocabulary token #{i} is not a string: {tok!r}")
            if tok in self.index:
                raise DataError(f"vocabulary has the token {tok!r} twice (ids {self.index[tok]} and {i})")
            self.index[tok] = i

    @staticmethod
    def specials_for(level: str) -> tuple[str, ...]:
        """The reserved tokens, in id order, for a vocabulary of ``level``."""
        return (PAD, UNK, EOS) if _check_level(level) == "word" else (PAD, UNK)

    @classmethod
    def build(
        cls,
        text: str | Iterable[str],
        level: str = "char",
        *,
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> "Vocab":
        """A vocabulary of the tokens of ``text`` (a string or several strings).

        Tokens seen fewer than ``min_freq`` times are left out (they become
        ``<unk>``); ``max_size`` caps the size, specials included.  Order is
        by descending frequency, ties broken by the token itself, so the ids
        do not depend on dict or set ordering.
        """
        _check_level(level)
        parts = [text] if isinstance(text, str) else text
        return cls.from_tokens((tok for part in parts for tok in tokenize(part, level)), level,
                               min_freq=min_freq, max_size=max_size)

    @classmethod
    def from_tokens(
        cls,
        tokens: Iterable[str],
        level: str = "char",
        *,
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> "Vocab":
        """:meth:`build` for already-tokenized text."""
        _check_level(level)
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise DataError(f"min_freq must be an integer >= 1, got {min_freq!r}")
        specials = cls.specials_for(level)
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < len(specials)
        ):
            raise DataError(f"max_size must be an integer >= {len(specials)} (the special tokens), got {max_size!r}")
        counts: Counter[str] = Counter(tokens)
        for s in specials:
            counts.pop(s, None)
        ranked = sorted((tok for tok, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max_size - len(specials)]
        return cls([*specials, *ranked], level)

    # ---- lookup ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self.index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and (self.level, self.tokens) == (other.level, other.tokens)

    def __hash__(self) -> int:
        return hash((self.level, self.tokens))

    def __repr__(self) -> str:
        return f"Vocab(level={self.level!r}, size={len(self)})"

    @property
    def pad_index(self) -> int:
        return 0

    @property
    def unk_index(self) -> int:
        return 1

    @property
    def eos_index(self) -> int | None:
        return self.index.get(EOS)

    def id(self, token: str) -> int:
        """The id of ``token``, ``<unk>``'s id if unknown."""
        return self.index.get(token, 1)

    def token(self, idx: int) -> str:
        """The token with id ``idx``."""
        if not 0 <= idx < len(self.tokens):
            raise DataError(f"token id {idx} is out of range for a vocabulary of size {len(self.tokens)}")
        return self.tokens[idx]

    # ---- encode / decode -------------------------------------------------------------
    def encode_tokens(self, tokens: Iterable[str]) -> Tensor:
        """Ids of already-split tokens, int64 ``[N]``; unknown ones become ``<unk>``."""
        get = self.index.get
        return torch.tensor([get(t, 1) for t in tokens], dtype=torch.int64)

    def encode(self, text: str) -> Tensor:
        """Tokenize ``text`` at this vocabulary's level and return its ids, int64 ``[N]``."""
        return self.encode_tokens(tokenize(text, self.level))

    def decode(self, ids: Tensor | Iterable[int], *, skip_pad: bool = True) -> str:
        """Text for ``ids``: characters joined, or words joined by spaces with
        ``<eos>`` as a newline.  ``decode(encode(s)) == s`` for text whose
        tokens are all known (and, for words, single-spaced)."""
        if isinstance(ids, Tensor):
            ids = ids.reshape(-1).tolist()
        toks = [self.token(int(i)) for i in ids if not (skip_pad and int(i) == 0)]
        if self.level == "char":
            return "".join(toks)
        out: list[str] = []
        for tok in toks:
            if tok == EOS:
                out.append("\n")
            else:
                if out and out[-1] != "\n":
                    out.append(" ")
                out.append(tok)
        return "".join(out)

    # ---- persistence ---------------------------------------------------------------
    def to_json(self) -> dict:
        return {"format": _FORMAT, "version": _VERSION, "level": self.level, "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: object, source: str = "vocabulary") -> "Vocab":
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise DataError(f"{source}: not an rnnspec vocabulary (expected a JSON object with \"format\": \"{_FORMAT}\")")
        if data.get("version") != _VERSION:
            raise DataError(f"{source}: unsupported vocabulary version {data.get('version')!r} (this rnnspec reads {_VERSION})")
        tokens = data.get("tokens")
        if not isinstance(tokens, list):
            raise DataError(f"{source}: \"tokens\" must be a list of strings")
        try:
            return cls(tokens, data.get("level", "char"))
        except DataError as err:
            raise DataError(f"{source}: {err.message}") from err

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as UTF-8 JSON."""
        p = Path(path)
        try:
            p.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
        except OSError as err:
            raise DataError(f"{p}: cannot write vocabulary ({err.strerror or err})") from err

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        """Read a vocabulary written by :meth:`save`."""
        p = Path(path)
        text = read_text(p)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{p}:{err.lineno}:{err.colno}: invalid JSON in vocabulary file ({err.msg})") from err
        return cls.from_json(data, str(p))


def read_text(path: str | Path, *, encoding: str = "utf-8", allow_empty: bool = False) -> str:
    """The contents of a text file, with a :class:`DataError` naming the path
    when it is missing, a directory, unreadable, not valid ``encoding`` (with
    the byte offset and line of the first bad byte) or empty."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError as err:
        raise DataError(f"{p}: no such file") from err
    except IsADirectoryError as err:
        raise DataError(f"{p}: is a directory, expected a text file") from err
    except OSError as err:
        raise DataError(f"{p}: cannot read ({err.strerror or err})") from err
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"{p}: not valid {encoding} text (byte 0x{raw[err.start]:02x} at offset {err.start}, line {line}); "
            "convert the file to UTF-8 or give its encoding"
        ) from err
    except LookupError as err:
        raise DataError(f"unknown text encoding {encoding!r} for {p}") from err
    if not text and not allow_empty:
        raise DataError(f"{p}: file is empty")
    return text


def _pydoc_topics() -> str:
    from pydoc_data.topics import topics  # ships with CPython

    return "\n\n".join(topics[k] for k in sorted(topics))


BUILTIN_CORPORA = {"pydoc_topics": _pydoc_topics}
"""Corpora that ship with Python, so examples and tests need no download."""


def builtin_corpus(name: str = "pydoc_topics") -> str:
    """A corpus available offline.

    ``"pydoc_topics"``: the help texts of ``pydoc_data.topics.topics`` (the
    Python language reference sections behind ``help('if')``), joined in
    sorted key order with blank lines — about 465k characters of English
    prose and code, enough for a small character-level model.
    """
    fn = BUILTIN_CORPORA.get(name)
    if fn is None:
        raise DataError(
            f"unknown built-in corpus {name!r}{did_you_mean(name, BUILTIN_CORPORA)}; "
            f"available: {listing(BUILTIN_CORPORA)}"
        )
    return fn()


class LanguageModelChunks(Sequence[Example]):
    """Consecutive ``seq_len``-token windows of an encoded corpus, as examples.

    Chunk ``i`` covers tokens ``s = i * seq_len`` to ``s + seq_len``:
    ``x = ids[s : s+seq_len]`` and ``y = ids[s+1 : s+seq_len+1]`` (next-token
    targets), both views into ``ids``, created on access.  The final chunk is
    shorter when the corpus does not divide evenly (``drop_last`` drops it).
    """

    def __init__(self, ids: Tensor, seq_len: int, *, drop_last: bool = False) -> None:
        if not isinstance(ids, Tensor) or ids.dim() != 1:
            raise DataError("language-model ids must be a 1-D tensor of token ids")
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise DataError(f"seq_len must be a positive integer, got {seq_len!r}")
        self.ids = ids
        self.seq_len = seq_len
        usable = int(ids.shape[0]) - 1
        if usable < 1:
            raise DataError(f"a language-model corpus needs at least 2 tokens, got {int(ids.shape[0])}")
        self._len = usable // seq_len if drop_last else math.ceil(usable / seq_len)
        if self._len == 0:
            raise DataError(f"corpus of {usable + 1} tokens is shorter than one chunk of {seq_len} + 1 tokens")

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, i: int) -> Example: ...

    @overload
    def __getitem__(self, i: slice) -> list[Example]: ...

    def __getitem__(self, i: int | slice) -> Example | list[Example]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._len))]
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"chunk {i} out of range ({self._len} chunks)")
        s = i * self.seq_len
        e = min(s + self.seq_len, int(self.ids.shape[0]) - 1)
        return Example(self.ids[s:e], self.ids[s + 1 : e + 1], per_step=True)

    def __iter__(self) -> Iterator[Example]:
        for i in range(self._len):
            yield self[i]

    @property
    def num_tokens(self) -> int:
        return int(self.ids.shape[0])


class ContiguousBatches(Sequence[Batch]):
    """Batches for truncated BPTT with the hidden state carried over.

    The corpus is cut into ``batch_size`` equal streams (a ``[B, M]`` view);
    batch ``i`` holds steps ``i*seq_len .. (i+1)*seq_len`` of every stream, so
    row ``b`` of batch ``i+1`` continues row ``b`` of batch ``i`` and the
    final hidden state of one batch is the right initial state of the next.
    Being a plain sequence, the position to resume from is just the index.
    """

    def __init__(self, ids: Tensor, batch_size: int, seq_len: int, *, batch_first: bool = True) -> None:
        if not isinstance(ids, Tensor) or ids.dim() != 1:
            raise DataError("language-model ids must be a 1-D tensor of token ids")
        for name, v in (("batch_size", batch_size), ("seq_len", seq_len)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise DataError(f"{name} must be a positive integer, got {v!r}")
        per_row = int(ids.shape[0]) // batch_size
        if per_row < 2:
            raise DataError(
                f"corpus of {int(ids.shape[0])} tokens is too short for {batch_size} streams of at least 2 tokens"
            )
        self.data = ids[: per_row * batch_size].view(batch_size, per_row)
        self.seq_len = seq_len
        self.batch_first = batch_first
        self._len = math.ceil((per_row - 1) / seq_len)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> Batch:  # type: ignore[override]
        if isinstance(i, slice):
            raise TypeError("ContiguousBatches does not support slicing; index one batch at a time")
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"batch {i} out of range ({self._len} batches)")
        s = i * self.seq_len
        e = min(s + self.seq_len, int(self.data.shape[1]) - 1)
        x, y = self.data[:, s:e], self.data[:, s + 1 : e + 1]
        if not self.batch_first:
            x, y = x.t(), y.t()
        lengths = torch.full((int(self.data.shape[0]),), e - s, dtype=torch.int64)
        return Batch(x=x, y=y, lengths=lengths, batch_first=self.batch_first, per_step=True)

    def __iter__(self) -> Iterator[Batch]:
        for i in range(self._len):
            yield self[i]


@dataclass
class LanguageModelData:
    """A vocabulary and the three language-model splits (validation/test may be None)."""

    vocab: Vocab
    train: LanguageModelChunks
    validation: LanguageModelChunks | None
    test: LanguageModelChunks | None


def language_model_data(
    text: str,
    *,
    level: str = "char",
    seq_len: int = 64,
    validation: float = 0.05,
    test: float = 0.05,
    vocab: Vocab | None = None,
    min_freq: int = 1,
    max_size: int | None = None,
) -> LanguageModelData:
    """Split ``text`` contiguously (train first, then validation, then test),
    build the vocabulary from the training part (unless ``vocab`` is given,
    e.g. loaded from the run being resumed), and chunk each part.

    A part with fraction 0 is ``None``; a nonzero fraction too small to hold
    two tokens is an error rather than a silently empty evaluation.
    """
    _check_level(level)
    if vocab is not None and vocab.level != level:
        raise DataError(f"the given vocabulary is {vocab.level}-level but level={level!r} was asked for")
    val_f, test_f = validate_fractions([validation, test])
    tokens = tokenize(text, level)
    if len(tokens) < 2:
        raise DataError(f"the corpus has {len(tokens)} token(s); a language model needs at least 2")
    train_r, val_r, test_r = contiguous_split(len(tokens), [max(0.0, 1.0 - val_f - test_f), val_f, test_f])
    train_tokens = tokens[train_r.start : train_r.stop]
    if vocab is None:
        vocab = Vocab.from_tokens(train_tokens, level, min_freq=min_freq, max_size=max_size)

    def part(r: range, name: str, fraction: float) -> LanguageModelChunks | None:
        if fraction == 0 and name != "train":
            return None
        if len(r) < 2:
            raise DataError(
                f"the {name} split ({fraction:g} of {len(tokens)} tokens) has {len(r)} token(s); "
                "a language-model split needs at least 2 — use a larger corpus or fraction"
            )
        return LanguageModelChunks(vocab.encode_tokens(tokens[r.start : r.stop]), seq_len)  # type: ignore[union-attr]

    train = part(train_r, "train", 1.0 - val_f - test_f)
    assert train is not None
    return LanguageModelData(vocab, train, part(val_r, "validation", val_f), part(test_r, "test", test_f))

