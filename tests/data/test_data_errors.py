"""DataError formatting: message first, spec location when the caller knows it."""
from __future__ import annotations

import pickle

import pytest

from rnnspec.data import DataError
from rnnspec.data.errors import did_you_mean, listing


def test_message_and_location() -> None:
    err = DataError("data/x.csv: no label column 'lable' (did you mean 'label'?)")
    assert str(err) == "error: data/x.csv: no label column 'lable' (did you mean 'label'?)"
    assert err.where is None
    located = err.located("spec.yaml:12:5")
    assert str(located) == "spec.yaml:12:5: error: " + err.message
    assert located.located("other.yaml:1:1").where == "spec.yaml:12:5"  # first location wins
    assert str(DataError("bad", where="s.yaml:1:2")) == "s.yaml:1:2: error: bad"


def test_is_a_plain_exception_and_pickles() -> None:
    err = DataError("bad", where="s.yaml:3:1")
    with pytest.raises(Exception, match="bad"):
        raise err
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, DataError) and again.message == "bad" and again.where == "s.yaml:3:1"


def test_helpers() -> None:
    assert did_you_mean("lable", ["label", "x"]) == " (did you mean 'label'?)"
    assert did_you_mean("zzz", ["label"]) == ""
    assert listing([]) == "none"
    assert listing(["a", "b"]) == "'a', 'b'"
    assert listing([str(i) for i in range(30)], limit=3).endswith("(27 more)")
