"""The neural history compressor learns the experiment of its paper from
specs/examples/history_compressor.yaml (slow: a few seconds of training on
one CPU thread).

Schmidhuber, "Learning complex, extended sequences using the principle of
history compression" (Neural Computation 4(2), 1992): 22 symbols; sequences
"a b1 ... b20" and "x b1 ... b20"; the target at the end depends on the first
symbol.  The paper: 13 of 17 runs of the chunking system solve it in fewer
than 5,000 training sequences; a flat recurrent net does not after more than
1,000,000.  ../shared/REFERENCES.md's reduced scale: solved in <= 35k
sequences.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rnnspec
from rnnspec.data import collate
from rnnspec.data import synthetic as S
from rnnspec.spec.dump import dump_rnn, dump_yaml
from rnnspec.train.inference import load_run
from rnnspec.train.loop import train, with_train

SPEC = Path(__file__).resolve().parents[2] / "specs" / "examples" / "history_compressor.yaml"
PAPER_SEQUENCES = 5_000  # "13/17 runs < 5,000 sequences"
REDUCED_SEQUENCES = 35_000


def _quiet(msg: str) -> None:
    pass


def _budget(spec: rnnspec.Spec) -> int:
    assert spec.train is not None and spec.train.max_steps is not None
    return spec.train.max_steps * spec.train.batch


def test_example_checks_and_round_trips() -> None:
    spec = rnnspec.load(SPEC)
    assert rnnspec.loads(dump_yaml(spec), "yaml") == spec
    assert rnnspec.loads(dump_rnn(spec), "rnn") == spec
    assert _budget(spec) <= PAPER_SEQUENCES
    rnnspec.compile(spec)


@pytest.mark.slow
def test_history_compressor_solves_the_paper_task(tmp_path: Path) -> None:
    spec = rnnspec.load(SPEC)
    r = train(spec, run_dir=tmp_path / "run", log=_quiet, threads=1)
    assert r.steps * spec.train.batch == _budget(spec) <= min(PAPER_SEQUENCES, REDUCED_SEQUENCES)
    assert r.metrics["accuracy"] == 1.0, r.metrics  # the class of the first symbol, 20 steps back
    aux = [h["aux_loss"] for h in r.history if h.get("split") == "train"]
    assert aux[-1] < 0.05 < aux[0]  # the automatizer learned to predict b1..b20

    # The trained net on fresh sequences: right, and the chunker ran about once
    # per sequence (on the first symbol, the only one the automatizer cannot
    # predict) -- the compressed, slower time scale of the paper's §2-3.
    net = load_run(r.run_dir, "last").net
    batch = collate(S.make_history_compression(64, seed=123, length=20))
    with torch.no_grad():
        logits, state = net(batch.x)
    assert torch.equal(logits.argmax(-1), batch.y)
    ticks = state.ticks
    assert 1.0 <= float(ticks.mean()) <= 2.0 and int(ticks.max()) <= 3, ticks


@pytest.mark.slow
def test_a_flat_elman_net_of_the_same_size_mostly_fails_in_the_same_budget(tmp_path: Path) -> None:
    """The paper's contrast, at this scale: one Elman layer of 32 units (the
    compressor has 16 + 16), the same data, optimizer and 4,800 sequences.
    Over seeds 0-9 it solved the task in 4 (the compressor in 10 of 10);
    five seeds here, so the check holds unless every one gets lucky.  (With
    full BPTT a flat LSTM does solve this 21-step lag, in 1,600 sequences.)"""
    text = SPEC.read_text().replace(
        "{block: compressor, automatizer: elman, chunker: elman, hidden: 16, chunker_hidden: 16, threshold: 0.5}",
        "{cell: elman, hidden: 32}",
    )
    flat = rnnspec.loads(text, "yaml")
    assert flat.model.layers[0].cell == "elman"
    accuracy = []
    for seed in range(5):
        r = train(with_train(flat, seed=seed), run_dir=tmp_path / f"flat{seed}", log=_quiet, threads=1)
        accuracy.append(r.metrics["accuracy"])
    assert min(accuracy) < 0.7, accuracy  # at least one seed still at chance, where the compressor never is


def test_the_task_is_the_papers() -> None:
    examples = S.make_history_compression(40, seed=0, length=20)
    for ex in examples:
        first = int(ex.x[0])
        assert first in (0, 1) and int(ex.y) == first  # a (0) or x (1), and the class is the first symbol
        assert ex.x[1:].tolist() == list(range(2, 22))  # then b1..b20, always the same
    assert {int(ex.y) for ex in examples} == {0, 1}
    assert S.make_history_compression(1, seed=0, length=20, one_hot=True)[0].x.shape == (21, 22)  # 22 symbols
