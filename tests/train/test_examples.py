"""The training examples in specs/examples/ learn (slow: each well under a
minute on one CPU thread), and their train sections survive both formats."""
from __future__ import annotations

from pathlib import Path

import pytest

import rnnspec
from rnnspec.spec.dump import dump_rnn, dump_yaml

from ._util import run

EXAMPLES = Path(__file__).resolve().parents[2] / "specs" / "examples"


@pytest.mark.parametrize("name", ["adding_lstm.yaml", "tagging_gru.rnn", "char_lm.yaml"])
def test_example_train_sections_round_trip(name: str) -> None:
    spec = rnnspec.load(EXAMPLES / name)
    assert rnnspec.loads(dump_yaml(spec), "yaml") == spec
    assert rnnspec.loads(dump_rnn(spec), "rnn") == spec


@pytest.mark.slow
def test_adding_lstm_learns(tmp_path: Path) -> None:
    r = run(rnnspec.load(EXAMPLES / "adding_lstm.yaml"), tmp_path / "run")
    # predicting the mean costs MSE 1/6 = 0.167
    assert r.metrics["loss"] < 0.02, r.metrics


@pytest.mark.slow
def test_tagging_gru_learns(tmp_path: Path) -> None:
    r = run(rnnspec.load(EXAMPLES / "tagging_gru.rnn"), tmp_path / "run")
    assert r.metrics["accuracy"] > 0.95 and r.metrics["loss"] < 0.2, r.metrics  # chance: 1/8
