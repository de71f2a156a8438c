"""A folder of files, one sequence per file.

The common layout for recordings, documents or exported feature matrices::

    data/
      speech/  a.npy  b.npy        # class "speech"
      music/   c.npy               # class "music"

Files are found recursively, sorted by relative path (so the example order,
and with it every seeded split and batch order, is the same on every
machine), and labelled by the name of the top-level subfolder they are in
when ``labels="subdirs"``.  Supported files:

* ``.npy``: ``[T, F]`` float -> ``x`` ``[T, F]``; ``[T]`` integer -> token ids;
  ``[T]`` float -> ``[T, 1]``;
* ``.csv``: numeric rows are time steps; a first row with any non-number is
  a header, and ``columns`` then picks the feature columns;
* ``.txt``: text, tokenized at ``level`` and encoded with ``vocab`` (built
  from all the files when not given — pass the training split's vocabulary
  for honest evaluation).

One folder holds one kind of file: mixing them would mix token ids with
float features in one batch.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .batch import Example
from .errors import DataError, did_you_mean, listing
from .tabular import _np_load, _x_tensor
from .text import Vocab, read_text, tokenize

__all__ = ["FolderData", "load_folder", "FOLDER_SUFFIXES"]

FOLDER_SUFFIXES = (".npy", ".csv", ".txt")


@dataclass
class FolderData:
    """What :func:`load_folder` found: examples in file order, the files they
    came from, the class names (index = label) and the text vocabulary."""

    examples: list[Example]
    files: list[Path]
    classes: list[str] | None
    vocab: Vocab | None


def _read_csv_sequence(path: Path, columns: Sequence[str] | None) -> np.ndarray:
    text = read_text(path)
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(f.strip() for f in r)]
    if not rows:
        raise DataError(f"{path}: no rows")

    def numeric(row: list[str]) -> bool:
        try:
            [float(f) for f in row]
        except ValueError:
            return False
        return True

    header = None if numeric(rows[0]) else [f.strip() for f in rows[0]]
    body = rows[1:] if header is not None else rows
    if not body:
        raise DataError(f"{path}: no data rows after the header")
    cols = list(range(len(body[0])))
    if columns is not None:
        if header is None:
            raise DataError(f"{path}: has no header row, so columns {listing(columns)} cannot be selected by name")
        cols = []
        for name in columns:
            if name not in header:
                raise DataError(f"{path}: no column {name!r}{did_you_mean(name, header)}; the columns are {listing(header)}")
            cols.append(header.index(name))
    width = len(header) if header is not None else len(body[0])
    out = np.empty((len(body), len(cols)), dtype=np.float64)
    first_line = 2 if header is not None else 1
    for r, row in enumerate(body):
        if len(row) != width:
            raise DataError(f"{path}: data row {r + 1} has {len(row)} fields, expected {width}")
        for j, c in enumerate(cols):
            try:
                out[r, j] = float(row[c])
            except ValueError:
                name = header[c] if header is not None else f"#{c + 1}"
                raise DataError(
                    f"{path}: row {r + first_line} column {name}: {row[c]!r} is not a number"
                ) from None
    return out


def load_folder(
    path: str | Path,
    *,
    labels: str = "auto",
    classes: Sequence[str] | None = None,
    suffixes: Sequence[str] = FOLDER_SUFFIXES,
    level: str = "char",
    vocab: Vocab | None = None,
    columns: Sequence[str] | None = None,
    encoding: str = "utf-8",
    allow_pickle: bool = False,
) -> FolderData:
    """Load every matching file under ``path`` as one example.

    ``labels``: ``"subdirs"`` (class = top-level subfolder name; ``y`` is a
    scalar int64 class id), ``"none"`` (``y`` is None), or ``"auto"``
    (subdirs when every file is inside a subfolder, else none).  ``classes``
    fixes the class order (default: sorted folder names) and rejects
    unexpected folders.  Hidden files and folders (leading ``.``) are
    skipped.
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: is a file, expected a folder of sequence files")
    if labels not in ("auto", "subdirs", "none"):
        raise DataError(f"labels must be 'auto', 'subdirs' or 'none', got {labels!r}{did_you_mean(str(labels), ['auto', 'subdirs', 'none'])}")
    wanted = {s.lower() if s.startswith(".") else "." + s.lower() for s in suffixes}
    bad = wanted - set(FOLDER_SUFFIXES)
    if bad:
        raise DataError(f"unsupported suffix(es) {listing(sorted(bad))}; a folder can hold {listing(FOLDER_SUFFIXES)}")
    files = sorted(
        (
            f
            for f in root.rglob("*")
            if f.is_file()
            and f.suffix.lower() in wanted
            and not any(part.startswith(".") for part in f.relative_to(root).parts)
        ),
        key=lambda f: f.relative_to(root).as_posix(),
    )
    if not files:
        raise DataError(f"{root}: no {'/'.join(sorted(wanted))} files found")
    kinds = sorted({f.suffix.lower() for f in files})
    if len(kinds) > 1:
        raise DataError(
            f"{root}: mixes {listing(kinds)} files; one folder must hold one kind (choose with suffixes=[...])"
        )
    kind = kinds[0]

    rel = [f.relative_to(root).parts for f in files]
    if labels == "auto":
        labels = "subdirs" if all(len(parts) > 1 for parts in rel) else "none"
    class_names: list[str] | None = None
    label_ids: list[int] = []
    if labels == "subdirs":
        loose = [f for f, parts in zip(files, rel) if len(parts) == 1]
        if loose:
            raise DataError(f"{loose[0]}: is not inside a class subfolder of {root} (labels='subdirs')")
        found = sorted({parts[0] for parts in rel})
        if classes is not None:
            class_names = list(classes)
            for name in found:
                if name not in class_names:
                    raise DataError(
                        f"{root / name}: folder is not one of the classes {listing(class_names)}{did_you_mean(name, class_names)}"
                    )
        else:
            class_names = found
        label_ids = [class_names.index(parts[0]) for parts in rel]

    if kind == ".txt":
        texts = [read_text(f, encoding=encoding) for f in files]
        if vocab is None:
            vocab = Vocab.from_tokens((t for text in texts for t in tokenize(text, level)), level)
        elif vocab.level != level:
            raise DataError(f"the given vocabulary is {vocab.level}-level but level={level!r}")
        xs = []
        for f, text in zip(files, texts):
            ids = vocab.encode(text)
            if ids.numel() == 0:
                raise DataError(f"{f}: has no {level} tokens")
            xs.append(ids)
    elif kind == ".npy":
        xs = []
        for f in files:
            arr = _np_load(f, allow_pickle)
            if not isinstance(arr, np.ndarray):
                raise DataError(f"{f}: is an .npz archive, expected one .npy array")
            xs.append(_x_tensor(arr, str(f)))
    else:
        xs = [_x_tensor(_read_csv_sequence(f, columns), str(f)) for f in files]

    shapes = {(tuple(x.shape[1:]), x.dtype) for x in xs}
    if len(shapes) > 1:
        first = xs[0]
        for f, x in zip(files, xs):
            if (tuple(x.shape[1:]), x.dtype) != (tuple(first.shape[1:]), first.dtype):
                raise DataError(
                    f"{f}: per-step shape {tuple(x.shape[1:])} ({x.dtype}) differs from "
                    f"{files[0]}: {tuple(first.shape[1:])} ({first.dtype})"
                )
    examples = [
        Example(x, torch.tensor(label_ids[i], dtype=torch.int64) if class_names is not None else None,
                {"file": str(files[i])}, per_step=False if class_names is not None else None)
        for i, x in enumerate(xs)
    ]
    return FolderData(examples, files, class_names, vocab)
