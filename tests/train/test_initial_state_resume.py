"""Truncated BPTT with a learned initial state (``initial_state: learned``):
the trainer starts each sequence from it (its first chunk; later chunks
carry the state), it trains, and a run stopped and resumed from its
checkpoint equals the uninterrupted run, the learned state included."""
from __future__ import annotations

from pathlib import Path

import torch

from rnnspec.train.checkpoint import load_checkpoint

from ._util import load, run

SPEC = """
name: learned_start_chunks
model:
  input: {tokens: 6, embed: 8}
  layers: [{cell: gru, hidden: 12, depth: 2, initial_state: learned, initial_init: 'normal(0.5)'}]
  output: {logits: 6, every_step: true}
train:
  data: {task: delayed_recall, params: {lag: 2, min_len: 6, max_len: 14, symbols: 6}, size: 120, split: 0.8, bucket: 2}
  optimizer: {adam: {lr: 1.0e-2}}
  bptt: {truncate: 5}
  batch: 8
  epochs: 2
  max_steps: 20
  log_every: 4
  checkpoint_every: 7
"""


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def test_resumed_chunked_run_with_a_learned_state_equals_the_whole_run(tmp_path: Path) -> None:
    spec = load(tmp_path, SPEC)
    torch.manual_seed(spec.train.seed)
    import rnnspec

    start = rnnspec.compile(spec).state_dict()["rnn.groups.0.initial.h"]
    whole = run(spec, tmp_path / "whole")
    assert whole.steps == 20
    run(spec, tmp_path / "split", max_steps=9)  # stops mid-epoch, after the checkpoint at 7
    resumed = run(spec, tmp_path / "ignored", resume=tmp_path / "split")
    assert resumed.steps == 20
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert "rnn.groups.0.initial.h" in a and a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the learned state trained: both layers' rows moved from where they began
    moved = (a["rnn.groups.0.initial.h"] - start).abs().amax(-1)
    assert moved.shape == (2,) and bool((moved > 1e-3).all()), moved
