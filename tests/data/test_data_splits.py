"""Seeded splits: disjoint, sized by the fractions, identical on every run."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnspec.data import DataError
from rnnspec.data.splits import (
    Subset,
    contiguous_split,
    split_indices,
    split_sizes,
    train_validation_test,
    validate_fractions,
)


def test_train_validation_test_is_deterministic_and_disjoint() -> None:
    items = [f"item{i}" for i in range(100)]
    a = train_validation_test(items, validation=0.2, test=0.1, seed=5)
    b = train_validation_test(items, validation=0.2, test=0.1, seed=5)
    c = train_validation_test(items, validation=0.2, test=0.1, seed=6)
    assert (len(a.train), len(a.validation), len(a.test)) == (70, 20, 10)
    assert list(a.train) == list(b.train) and list(a.test) == list(b.test)
    assert list(a.validation) != list(c.validation)
    assert sorted([*a.train, *a.validation, *a.test]) == sorted(items)
    assert isinstance(a.train, Subset) and a.train[0] == items[a.train.indices[0]]


def test_unshuffled_split_is_contiguous() -> None:
    s = train_validation_test(list(range(10)), validation=0.2, test=0.2, shuffle=False)
    assert list(s.train) == list(range(6)) and list(s.validation) == [6, 7] and list(s.test) == [8, 9]
    assert contiguous_split(10, [0.5, 0.3]) == [range(0, 5), range(5, 8)]


def test_fractions_are_validated() -> None:
    with pytest.raises(DataError, match="at most 1.*0.6 \\+ 0.5 = 1.1"):
        validate_fractions([0.6, 0.5])
    with pytest.raises(DataError, match=">= 0"):
        validate_fractions([0.5, -0.1])
    with pytest.raises(DataError, match="finite"):
        validate_fractions([math.nan])
    with pytest.raises(DataError, match="must be a number"):
        validate_fractions(["a lot"])
    with pytest.raises(DataError, match="at most 1"):
        train_validation_test([1, 2, 3], validation=0.7, test=0.5)
    assert validate_fractions([0.7, 0.2, 0.1]) == [0.7, 0.2, 0.1]


def test_explicit_train_fraction_subsamples() -> None:
    s = train_validation_test(list(range(100)), train=0.5, validation=0.1, test=0.1, seed=0)
    assert (len(s.train), len(s.validation), len(s.test)) == (50, 10, 10)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 300),
    st.lists(st.floats(0, 1), min_size=1, max_size=4).filter(lambda f: sum(f) <= 1),
    st.integers(0, 2**40),
)
def test_split_sizes_and_indices_properties(n: int, fractions: list[float], seed: int) -> None:
    sizes = split_sizes(n, fractions)
    assert sum(sizes) == min(n, round(n * sum(fractions)))
    assert all(abs(s - f * n) <= 1 + 1e-6 for s, f in zip(sizes, fractions))
    parts = split_indices(n, fractions, seed=seed)
    flat = [i for p in parts for i in p]
    assert len(flat) == len(set(flat)) == sum(sizes)
    assert all(0 <= i < n for i in flat)
    assert parts == split_indices(n, fractions, seed=seed)
