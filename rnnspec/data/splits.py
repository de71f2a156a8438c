"""Train / validation / test splits that are the same on every run.

A split must not change between the run that trains and the run that resumes
or evaluates, or validation numbers silently leak training data.  So every
split here is a pure function of ``(number of items, fractions, seed)``, and
the split parts are lazy :class:`Subset` views (no copy of the data).

Two flavours:

* :func:`split_indices` / :func:`train_validation_test` shuffle with a seed —
  for independent examples.
* :func:`contiguous_split` keeps order — for one long series or corpus, where
  a shuffled split would put overlapping windows on both sides.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, Iterator, Sequence, TypeVar, overload

import numpy as np

from .batch import make_rng
from .errors import DataError

__all__ = [
    "Subset",
    "Splits",
    "validate_fractions",
    "split_sizes",
    "split_indices",
    "contiguous_split",
    "train_validation_test",
]

T = TypeVar("T")


class Subset(Sequence[T], Generic[T]):
    """A read-only view of ``items`` at ``indices`` (nothing is copied)."""

    def __init__(self, items: Sequence[T], indices: Sequence[int]) -> None:
        self.items = items
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> "Subset[T]": ...

    def __getitem__(self, i: int | slice) -> "T | Subset[T]":
        if isinstance(i, slice):
            return Subset(self.items, self.indices[i])
        return self.items[self.indices[i]]

    def __iter__(self) -> Iterator[T]:
        for j in self.indices:
            yield self.items[j]

    def __repr__(self) -> str:
        return f"Subset({len(self)} of {len(self.items)})"


@dataclass(frozen=True)
class Splits(Generic[T]):
    """The three parts of a split; any of them may be empty."""

    train: Subset[T]
    validation: Subset[T]
    test: Subset[T]


def validate_fractions(fractions: Sequence[float]) -> list[float]:
    """Check split fractions: each finite and >= 0, total <= 1.

    Returns them as floats.  A total below 1 leaves the rest of the data
    unused (useful for quick runs on a subsample).
    """
    out: list[float] = []
    for i, f in enumerate(fractions):
        try:
            value = float(f)
        except (TypeError, ValueError) as err:
            raise DataError(f"split fraction #{i + 1} must be a number, got {f!r}") from err
        if not math.isfinite(value) or value < 0:
            raise DataError(f"split fraction #{i + 1} must be a finite number >= 0, got {f!r}")
        out.append(value)
    total = sum(out)
    if total > 1 + 1e-9:
        shown = " + ".join(f"{v:g}" for v in out)
        raise DataError(f"split fractions must add up to at most 1, got {shown} = {total:g}")
    return out


def split_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Item counts for each fraction of ``n`` items.

    Largest-remainder rounding, so the counts add up to ``round(n * sum)``
    exactly (all ``n`` items when the fractions sum to 1) and no part is off
    by more than one from ``n * fraction``.
    """
    if n < 0:
        raise DataError(f"cannot split a negative number of items ({n})")
    fr = validate_fractions(fractions)
    exact = [f * n for f in fr]
    sizes = [math.floor(e + 1e-9) for e in exact]
    total = min(n, round(sum(exact)))
    remainders = sorted(range(len(fr)), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in remainders[: max(0, total - sum(sizes))]:
        sizes[i] += 1
    return sizes


def split_indices(n: int, fractions: Sequence[float], *, seed: int, shuffle: bool = True) -> list[list[int]]:
    """Disjoint index lists, one per fraction, drawn from ``range(n)``.

    Shuffled with ``seed`` (unless ``shuffle=False``); each list is returned
    in increasing index order so iteration over a part touches the underlying
    storage in order.
    """
    sizes = split_sizes(n, fractions)
    order = make_rng(seed, 0x5B117).permutation(n) if shuffle else np.arange(n)
    parts: list[list[int]] = []
    start = 0
    for size in sizes:
        parts.append(sorted(int(i) for i in order[start : start + size]))
        start += size
    return parts


def contiguous_split(n: int, fractions: Sequence[float]) -> list[range]:
    """Consecutive index ranges, in order, one per fraction (no shuffling)."""
    sizes = split_sizes(n, fractions)
    out: list[range] = []
    start = 0
    for size in sizes:
        out.append(range(start, start + size))
        start += size
    return out


def train_validation_test(
    items: Sequence[T],
    *,
    validation: float = 0.1,
    test: float = 0.1,
    train: float | None = None,
    seed: int = 0,
    shuffle: bool = True,
) -> Splits[T]:
    """Split ``items`` into train/validation/test views with a fixed seed.

    ``train`` defaults to everything not in validation or test.  With
    ``shuffle=False`` the parts are consecutive (train first).
    """
    val_f, test_f = validate_fractions([validation, test])
    train_f = 1.0 - val_f - test_f if train is None else train
    fractions = validate_fractions([max(0.0, train_f) if train is None else train_f, val_f, test_f])
    n = len(items)
    if shuffle:
        parts: list[Sequence[int]] = list(split_indices(n, fractions, seed=seed))
    else:
        parts = list(contiguous_split(n, fractions))
    return Splits(Subset(items, parts[0]), Subset(items, parts[1]), Subset(items, parts[2]))
