"""Sequences from tables and arrays: CSV, ``.npy`` and ``.npz`` files.

These are user files named in a spec, so the loaders check everything a
training run would otherwise trip over much later (a typo in a column name,
a class id beyond the output layer, a string in a numeric column, NaNs) and
report it as a :class:`~rnnspec.data.errors.DataError` naming the file, the
line or array, and what was expected.

Target conventions match the synthetic tasks: with ``num_classes`` (or
``classes``) labels are int64 class ids, scalar per sequence or ``[T]`` per
step; without, they are float32 regression targets, ``[k]`` per sequence or
``[T, k]`` per step.
"""
from __future__ import annotations

import csv
import inspect
import io
import math
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from .batch import Example
from .errors import DataError, did_you_mean, listing
from .text import read_text

__all__ = ["load_csv", "load_npy", "load_npz", "load_tabular", "SUFFIXES"]

SUFFIXES = (".csv", ".tsv", ".npy", ".npz")


# --------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------


def _column(name: str, header: list[str], path: Path, role: str) -> int:
    try:
        return header.index(name)
    except ValueError:
        raise DataError(
            f"{path}: no {role} column {name!r}{did_you_mean(name, header)}; the columns are {listing(header)}"
        ) from None


def _number(text: str, path: Path, line: int, col: str) -> float:
    try:
        value = float(text)
    except ValueError:
        what = "is empty" if not text.strip() else f"{text!r} is not a number"
        raise DataError(f"{path}:{line}: column {col!r}: {what}") from None
    if not math.isfinite(value):
        raise DataError(f"{path}:{line}: column {col!r}: {text!r} is not a finite number")
    return value


def _class_id(text: str, path: Path, line: int, col: str, num_classes: int | None, classes: Sequence[str] | None) -> int:
    if classes is not None:
        try:
            return list(classes).index(text)
        except ValueError:
            raise DataError(
                f"{path}:{line}: label {text!r} in column {col!r} is not one of the classes "
                f"{listing(classes)}{did_you_mean(text, classes)}"
            ) from None
    value = _number(text, path, line, col)
    if value != int(value):
        raise DataError(f"{path}:{line}: label {text!r} in column {col!r} is not an integer class id")
    k = int(value)
    assert num_classes is not None
    if not 0 <= k < num_classes:
        raise DataError(
            f"{path}:{line}: label {k} in column {col!r} is out of range for num_classes={num_classes} "
            f"(expected 0..{num_classes - 1})"
        )
    return k


def _check_num_classes(num_classes: int | None, classes: Sequence[str] | None) -> int | None:
    if classes is not None:
        classes = list(classes)
        if not classes or len(set(classes)) != len(classes):
            raise DataError(f"classes must be a non-empty list of distinct names, got {classes!r}")
        if num_classes is not None and num_classes != len(classes):
            raise DataError(f"num_classes={num_classes} but {len(classes)} class names were given")
        return len(classes)
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1):
        raise DataError(f"num_classes must be a positive integer, got {num_classes!r}")
    return num_classes


def load_csv(
    path: str | Path,
    *,
    features: Sequence[str] | None = None,
    label: str | Sequence[str] | None = None,
    sequence_id: str | None = None,
    time: str | None = None,
    target: str | None = None,
    num_classes: int | None = None,
    classes: Sequence[str] | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> list[Example]:
    """Sequences from a CSV file with a header row.

    * ``features``: the input columns (default: every column not used as
      label, id or time), giving ``x`` ``[T, len(features)]`` float32.
    * ``label``: the target column (or several, for regression vectors).
    * ``sequence_id``: rows with the same id form one sequence, in order of
      first appearance; without it the whole file is one sequence.
    * ``time``: sort rows within a sequence by this column (numerically when
      every value is a number, else as text, e.g. ISO dates); otherwise file
      order is kept.
    * ``target``: ``"step"`` (a label per row) or ``"sequence"`` (one label
      per sequence, which must then be the same on all its rows).  Default:
      ``"sequence"`` with ``sequence_id``, ``"step"`` without.
    * ``num_classes`` / ``classes``: make the label a class id, checked to be
      in ``0..num_classes-1`` (or one of the ``classes`` names, mapped to its
      index).
    * ``delimiter``, ``encoding``: how to read the file.
    """
    p = Path(path)
    nc = _check_num_classes(num_classes, classes)
    target = target or ("sequence" if sequence_id is not None else "step")
    if target not in ("step", "sequence"):
        raise DataError(f"target must be 'step' or 'sequence', got {target!r}{did_you_mean(str(target), ['step', 'sequence'])}")
    text = read_text(p, encoding=encoding)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    for fields in reader:
        if not fields or all(not f.strip() for f in fields):
            continue
        if header is None:
            header = [f.strip() for f in fields]
            dupes = sorted({h for h in header if header.count(h) > 1})
            if dupes:
                raise DataError(f"{p}: the header repeats column name(s) {listing(dupes)}")
            continue
        if len(fields) != len(header):
            raise DataError(f"{p}:{reader.line_num}: row has {len(fields)} fields, the header has {len(header)}")
        rows.append((reader.line_num, fields))
    if header is None:
        raise DataError(f"{p}: file has no header row")
    if not rows:
        raise DataError(f"{p}: no data rows after the header")

    labels = [] if label is None else ([label] if isinstance(label, str) else list(label))
    if nc is not None and len(labels) != 1:
        raise DataError(f"{p}: classification needs exactly one label column, got {labels!r}")
    label_cols = [_column(c, header, p, "label") for c in labels]
    id_col = _column(sequence_id, header, p, "sequence-id") if sequence_id is not None else None
    time_col = _column(time, header, p, "time") if time is not None else None
    used = {*label_cols, *(c for c in (id_col, time_col) if c is not None)}
    if features is None:
        feat_cols = [i for i in range(len(header)) if i not in used]
    else:
        if isinstance(features, str):
            features = [features]
        feat_cols = [_column(c, header, p, "feature") for c in features]
        clash = [header[i] for i in feat_cols if i in used]
        if clash:
            raise DataError(f"{p}: column(s) {listing(clash)} cannot be both a feature and a label/id/time column")
    if not feat_cols:
        raise DataError(f"{p}: no feature columns left (columns: {listing(header)})")

    groups: dict[str, list[tuple[int, list[str]]]] = {}
    for line, fields in rows:
        key = fields[id_col].strip() if id_col is not None else ""
        groups.setdefault(key, []).append((line, fields))

    out: list[Example] = []
    for key, group in groups.items():
        if time_col is not None:
            stamps = [f[time_col].strip() for _, f in group]
            try:
                numeric = [float(s) for s in stamps]
                order = sorted(range(len(group)), key=lambda k: numeric[k])
            except ValueError:
                order = sorted(range(len(group)), key=lambda k: stamps[k])
            group = [group[k] for k in order]
        x = torch.tensor(
            [[_number(f[c].strip(), p, line, header[c]) for c in feat_cols] for line, f in group], dtype=torch.float32
        )
        y: Tensor | None = None
        if label_cols:
            if nc is not None:
                col = label_cols[0]
                ids = [_class_id(f[col].strip(), p, line, header[col], nc, classes) for line, f in group]
                if target == "sequence":
                    if len(set(ids)) > 1:
                        lines = [line for line, _ in group]
                        raise DataError(
                            f"{p}: label column {header[col]!r} varies within sequence {key!r} "
                            f"(lines {min(lines)}..{max(lines)}); use target='step' for per-row labels"
                        )
                    y = torch.tensor(ids[0], dtype=torch.int64)
                else:
                    y = torch.tensor(ids, dtype=torch.int64)
            else:
                vals = torch.tensor(
                    [[_number(f[c].strip(), p, line, header[c]) for c in label_cols] for line, f in group],
                    dtype=torch.float32,
                )
                if target == "sequence":
                    if not bool((vals == vals[0]).all()):
                        lines = [line for line, _ in group]
                        raise DataError(
                            f"{p}: label column(s) {listing(labels)} vary within sequence {key!r} "
                            f"(lines {min(lines)}..{max(lines)}); use target='step' for per-row labels"
                        )
                    y = vals[0].clone()
                else:
                    y = vals
        extras = {"sequence_id": key} if id_col is not None else {}
        out.append(Example(x, y, extras, per_step=(target == "step") if y is not None else None))
    return out


# --------------------------------------------------------------------------
# NumPy arrays
# --------------------------------------------------------------------------


def _np_load(path: Path, allow_pickle: bool) -> Any:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from err
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a {path.suffix or '.npy/.npz'} file")
    if size == 0:
        raise DataError(f"{path}: file is empty")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK\x03\x04"):
        raise DataError(f"{path}: not a valid NumPy file (no .npy header or .npz archive signature)")
    try:
        return np.load(path, allow_pickle=allow_pickle)
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise DataError(
                f"{path}: holds Python objects (e.g. variable-length sequences), which NumPy stores with pickle; "
                "pass allow_pickle=True only if you trust this file, or store padded 'x' plus 'lengths' in a .npz"
            ) from err
        raise DataError(f"{path}: not a valid NumPy file ({err})") from err
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: not a valid NumPy file ({err})") from err


def _check_numeric(arr: np.ndarray, what: str) -> None:
    if arr.dtype == object:
        return
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
        raise DataError(f"{what} has dtype {arr.dtype}; expected integers, floats or booleans")


def _x_tensor(arr: Any, what: str) -> Tensor:
    """One sequence: int ``[T]`` -> token ids; float ``[T]`` -> ``[T, 1]``; ``[T, F]`` -> float32."""
    arr = np.asarray(arr)
    _check_numeric(arr, what)
    if arr.dtype == object:
        raise DataError(f"{what} is a nested object array; expected a numeric [T] or [T, features] array")
    if arr.ndim == 1:
        if np.issubdtype(arr.dtype, np.integer):
            if arr.size and arr.min() < 0:
                raise DataError(f"{what}: integer token ids must be >= 0, found {int(arr.min())}")
            return torch.from_numpy(arr.astype(np.int64))
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{what} has shape {arr.shape}; expected [T] or [T, features]")
    if arr.shape[0] == 0:
        raise DataError(f"{what} is empty (0 time steps)")
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if not bool(torch.isfinite(t).all()):
        raise DataError(f"{what} contains NaN or infinite values")
    return t


def _sequences(arr: np.ndarray, what: str) -> list[Any]:
    """Split an ``x`` array into per-sequence arrays."""
    _check_numeric(arr, what)
    if arr.dtype == object:
        if arr.ndim != 1:
            raise DataError(f"{what}: an object array of sequences must be 1-D [N], got shape {arr.shape}")
        return list(arr)
    if arr.ndim not in (2, 3):
        raise DataError(
            f"{what} has shape {arr.shape}; expected [N, T, features], [N, T] (tokens or a univariate series) "
            "or an object array of variable-length sequences"
        )
    return [arr[i] for i in range(arr.shape[0])]


def _targets(
    y: np.ndarray,
    lengths: list[int],
    steps: int | None,
    target: str,
    num_classes: int | None,
    what: str,
) -> tuple[list[Tensor], bool]:
    """Per-example target tensors and whether they are per-step."""
    _check_numeric(y, what)
    n = len(lengths)
    if y.dtype == object:
        raise DataError(f"{what} is an object array; expected a numeric array")
    if y.ndim == 0 or y.shape[0] != n:
        raise DataError(f"{what} has shape {y.shape}, but there are {n} sequences in x")
    if target not in ("auto", "step", "sequence"):
        raise DataError(f"target must be 'auto', 'step' or 'sequence', got {target!r}")
    if target == "auto":
        per_step = y.ndim >= 2 and steps is not None and y.shape[1] == steps
    else:
        per_step = target == "step"
    if per_step and (y.ndim < 2 or y.shape[1] < max(lengths)):
        raise DataError(f"{what} has shape {y.shape}; per-step targets need [N, T, ...] with T >= the sequence lengths")
    parts = [y[i, : lengths[i]] if per_step else y[i] for i in range(n)]
    out: list[Tensor] = []
    for i, part in enumerate(parts):
        part = np.asarray(part)
        if num_classes is not None:
            if np.issubdtype(part.dtype, np.floating):
                if not np.all(np.isfinite(part)) or not np.all(part == np.round(part)):
                    raise DataError(f"{what}[{i}] has non-integer labels; with num_classes labels are class ids")
            ids = part.astype(np.int64)
            bad = (ids < 0) | (ids >= num_classes)
            if bad.any():
                first = int(ids[bad].reshape(-1)[0])
                raise DataError(
                    f"{what}[{i}]: label {first} is out of range for num_classes={num_classes} "
                    f"(expected 0..{num_classes - 1})"
                )
            out.append(torch.from_numpy(np.ascontiguousarray(ids)))
        else:
            vals = np.ascontiguousarray(part, dtype=np.float32)
            if not np.all(np.isfinite(vals)):
                raise DataError(f"{what}[{i}] contains NaN or infinite values")
            t = torch.from_numpy(vals)
            if per_step and t.dim() == 1:
                t = t.unsqueeze(1)  # [T] -> [T, 1], matching a 1-output model
            elif not per_step and t.dim() == 0:
                t = t.reshape(1)
            out.append(t)
    return out, per_step


def _examples(
    xs: list[Any],
    y: np.ndarray | None,
    target: str,
    num_classes: int | None,
    x_what: str,
    y_what: str,
    steps: int | None,
) -> list[Example]:
    x_tensors = [_x_tensor(s, f"{x_what}[{i}]") for i, s in enumerate(xs)]
    widths = {tuple(t.shape[1:]) for t in x_tensors}
    kinds = {t.dtype for t in x_tensors}
    if len(widths) > 1 or len(kinds) > 1:
        raise DataError(f"{x_what}: sequences differ in feature shape or type ({sorted(map(str, widths | kinds))})")
    if y is None:
        return [Example(x) for x in x_tensors]
    lengths = [int(t.shape[0]) for t in x_tensors]
    ys, per_step = _targets(np.asarray(y), lengths, steps, target, num_classes, y_what)
    return [Example(x, yy, per_step=per_step) for x, yy in zip(x_tensors, ys)]


def load_npy(
    path: str | Path,
    *,
    labels: str | Path | None = None,
    num_classes: int | None = None,
    target: str = "auto",
    allow_pickle: bool = False,
) -> list[Example]:
    """Sequences from a ``.npy`` array, with optional targets from a second ``.npy``.

    ``x`` may be ``[N, T, F]`` (float features), ``[N, T]`` (integer token
    ids, or floats taken as a univariate series ``[T, 1]``), or a 1-D object
    array of variable-length ``[T_i, F]``/``[T_i]`` arrays.  Object arrays are
    pickled by NumPy, and unpickling runs code, so they need
    ``allow_pickle=True``.

    ``labels``: ``[N]`` (one per sequence), ``[N, k]`` (vectors) or
    ``[N, T, ...]`` (per step; ``target="auto"`` decides by comparing with
    ``x``'s ``T``, ``"step"``/``"sequence"`` force it).
    """
    p = Path(path)
    nc = _check_num_classes(num_classes, None)
    arr = _np_load(p, allow_pickle)
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{p}: is an .npz archive; use load_npz (or a .npz suffix)")
    xs = _sequences(arr, str(p))
    if not xs:
        raise DataError(f"{p}: holds no sequences (N = 0)")
    y = None
    if labels is not None:
        lp = Path(labels)
        y = _np_load(lp, False)
        if not isinstance(y, np.ndarray):
            raise DataError(f"{lp}: expected a .npy array of labels, got an .npz archive")
    steps = arr.shape[1] if arr.dtype != object else None
    return _examples(xs, y, target, nc, str(p), str(labels), steps)


def load_npz(
    path: str | Path,
    *,
    x: str = "x",
    y: str | None = "y",
    lengths: str | None = "lengths",
    num_classes: int | None = None,
    target: str = "auto",
    allow_pickle: bool = False,
) -> list[Example]:
    """Sequences from a ``.npz`` archive of named arrays.

    ``x`` (required): as in :func:`load_npy`.  ``y`` (pass ``y=None`` for
    unlabeled data): targets as in :func:`load_npy`.  ``lengths``
    (optional, ``[N]`` ints): true lengths of padded ``x`` rows; each ``x``
    (and per-step ``y``) is cut to its length, which is how variable-length
    data is stored without pickle.
    """
    p = Path(path)
    nc = _check_num_classes(num_classes, None)
    archive = _np_load(p, allow_pickle)
    if isinstance(archive, np.ndarray):
        raise DataError(f"{p}: is a single .npy array, not an .npz archive; use load_npy")
    with archive:
        names = list(archive.files)

        def get(key: str, role: str) -> np.ndarray:
            if key not in names:
                hint = "; pass y=None for unlabeled data" if role == "target" else ""
                raise DataError(
                    f"{p}: no {role} array {key!r}{did_you_mean(key, names)}; the archive has {listing(names)}{hint}"
                )
            try:
                return archive[key]
            except ValueError as err:
                raise DataError(
                    f"{p}: array {key!r} holds Python objects; pass allow_pickle=True only if you trust this file"
                ) from err

        xa = get(x, "input")
        ya = get(y, "target") if y is not None else None
        la = None
        if lengths is not None and (lengths in names or lengths != "lengths"):
            la = get(lengths, "lengths")
    what = f"{p}[{x!r}]"
    xs = _sequences(xa, what)
    if not xs:
        raise DataError(f"{what}: holds no sequences (N = 0)")
    if la is not None:
        la = np.asarray(la)
        if la.ndim != 1 or la.shape[0] != len(xs) or not np.issubdtype(la.dtype, np.integer):
            raise DataError(
                f"{p}[{lengths!r}] must be {len(xs)} integers (one per sequence), got dtype {la.dtype} shape {la.shape}"
            )
        for i, (seq, n) in enumerate(zip(xs, la)):
            if not 1 <= n <= len(seq):
                raise DataError(f"{p}[{lengths!r}][{i}] = {int(n)} is outside 1..{len(seq)} (the padded length)")
        xs = [seq[: int(n)] for seq, n in zip(xs, la)]
    steps = xa.shape[1] if xa.dtype != object else None
    return _examples(xs, ya, target, nc, what, f"{p}[{y!r}]", steps)


def load_tabular(path: str | Path, **options: Any) -> list[Example]:
    """Dispatch on the suffix: ``.csv``/``.tsv`` -> :func:`load_csv`,
    ``.npy`` -> :func:`load_npy`, ``.npz`` -> :func:`load_npz`."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".tsv":
        options.setdefault("delimiter", "\t")
        return load_csv(p, **options)
    loaders = {".csv": load_csv, ".npy": load_npy, ".npz": load_npz}
    if suffix not in loaders:
        raise DataError(f"{p}: unsupported data file type {suffix or '(no suffix)'!r}; expected {listing(SUFFIXES)}")
    fn = loaders[suffix]
    allowed = [k for k in inspect.signature(fn).parameters if k != "path"]
    for key in options:
        if key not in allowed:
            raise DataError(
                f"{p}: option {key!r} does not apply to {suffix} files{did_you_mean(key, allowed)}; "
                f"valid options: {listing(allowed)}"
            )
    return fn(p, **options)
