"""The memory-block example specs learn their papers' tasks (reduced scale),
trained through `rnnspec train` exactly as a user would run them."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rnnspec
from rnnspec.data.synthetic import make_task
from rnnspec.train.inference import load_run
from rnnspec.train.loop import train, with_train

EXAMPLES = Path(__file__).resolve().parents[2] / "specs" / "examples"


def quiet(_: str) -> None:
    pass


def _run(spec: rnnspec.Spec, run_dir: Path):  # type: ignore[no-untyped-def]
    return train(spec, run_dir=run_dir, log=quiet, threads=1)


@pytest.mark.slow
def test_ntm_copies_and_generalizes_to_longer_sequences(tmp_path: Path) -> None:
    # Graves et al. 2014 §4.1: ~0 bits/sequence after ~100k sequences (lengths 1-20), and
    # copies of lengths 30-50 afterwards.  Reduced: lengths 1-6, memory 16x8, ~19k sequences.
    r = _run(rnnspec.load(EXAMPLES / "ntm_copy.yaml"), tmp_path / "run")
    assert r.metrics["bit_errors"] < 0.1, r.metrics
    net = load_run(tmp_path / "run").net
    longer = make_task("copy", 64, seed=123, bits=8, min_len=10, max_len=10)  # never seen in training
    x = torch.stack([e.x for e in longer], 1)
    y = torch.stack([e.y for e in longer], 1)
    mask = torch.stack([e.extras["loss_mask"] for e in longer], 1)
    with torch.no_grad():
        out, _ = net(x)
    wrong = ((out > 0) != (y > 0.5)).sum(-1)[mask].sum().item() / len(longer)
    # 10 vectors of 8 bits = 80 bits per sequence; guessing gets 40 wrong.
    assert wrong < 8.0, f"{wrong:.2f} bit errors per length-10 sequence"


@pytest.mark.slow
def test_dnc_learns_repeat_copy(tmp_path: Path) -> None:
    # Graves et al. 2016: repeat-copy solved (loss near 0).  Reduced: 1-3 vectors of 4 bits,
    # 1-2 repeats, memory 16x16, 4 read heads.
    r = _run(rnnspec.load(EXAMPLES / "dnc_repeat_copy.rnn"), tmp_path / "run")
    assert r.metrics["bit_errors"] < 0.1, r.metrics


def test_hopfield_recall_below_and_near_capacity(tmp_path: Path) -> None:
    # Hopfield 1982 / Amit et al. 1985: capacity ~0.138 N.  N = 100, 10% of bits flipped:
    # 5 patterns -> all recalled; 20 patterns -> a minority.
    spec = rnnspec.load(EXAMPLES / "hopfield_recall.yaml")
    low = _run(spec, tmp_path / "low")
    assert low.metrics["recall"] == 1.0 and low.metrics["energy_rose"] == 0.0
    many = with_train(spec, data=spec.train.data.model_copy(update={"params": {**spec.train.data.params, "num_patterns": 20}}))
    high = _run(many, tmp_path / "high")
    assert high.metrics["recall"] < 0.6 and high.metrics["energy_rose"] == 0.0, high.metrics


def test_bam_recalls_few_pairs_not_many(tmp_path: Path) -> None:
    # Kosko 1988: capacity well below min(n, p).  n = p = 100, 10% flipped: 5 pairs -> 100%.
    spec = rnnspec.load(EXAMPLES / "bam_pairs.rnn")
    assert _run(spec, tmp_path / "low").metrics["recall"] == 1.0
    many = with_train(spec, data=spec.train.data.model_copy(update={"params": {**spec.train.data.params, "num_patterns": 20}}))
    assert _run(many, tmp_path / "high").metrics["recall"] < 0.7


def test_memory_training_data_errors_are_located(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: h\nmemory:\n  hopfield: {units: 50}\ntrain:\n  data: {task: associative_pairs, params: {size: 60}}\n")
    with pytest.raises(rnnspec.SpecError, match="must match the memory") as e:
        _run(rnnspec.load(bad), tmp_path / "r")
    assert e.value.pos.line == 5
