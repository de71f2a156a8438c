"""Two processes with a learned initial state (``initial_state: learned``)
train like one: the state takes part in a sequence's first chunk only (not
in later truncated-BPTT chunks, nor in a carried stream), so DDP is told that
some parameters may be unused in a step (without that it stops with
"Expected to have finished reduction in the prior iteration")."""
from __future__ import annotations

from pathlib import Path

from rnnspec.train.checkpoint import load_checkpoint

from ._util import load, run
from .test_ddp import TOL, _max_diff, _torchrun

EXAMPLES = """
name: ddp-learned
model:
  input: {tokens: 6, embed: 8}
  layers: [{cell: gru, hidden: 16, initial_state: learned, initial_init: 'normal(0.5)'}]
  output: {logits: 6, every_step: true}
train:
  data: {task: delayed_recall, params: {lag: 2, min_len: 5, max_len: 12, symbols: 6}, size: 160, split: 0.8}
  optimizer: {adam: {lr: 1.0e-2}}
  bptt: {truncate: 4}
  batch: 16
  max_steps: 8
  log_every: 4
"""

STREAM = """
name: ddp-learned-lm
model:
  input: {tokens: 14, embed: 8}
  layers: [{cell: lstm, hidden: 16, initial_state: learned}]
  output: {logits: 14, every_step: true}
train:
  data: {text: c.txt, seq_len: 8, split: 0.9}
  optimizer: {adam: {lr: 1.0e-2}}
  batch: 8
  max_steps: 8
  log_every: 4
"""


def test_two_processes_train_a_learned_initial_state_like_one(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("the cat sat on the mat. " * 200)
    for name, text in (("ex", EXAMPLES), ("lm", STREAM)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        _torchrun(str(path), "--run-dir", str(tmp_path / f"{name}-two"))
        run(load(tmp_path, text, f"{name}-one.yaml"), tmp_path / f"{name}-one")
        assert _max_diff(tmp_path / f"{name}-one", tmp_path / f"{name}-two") < TOL, name
        model = load_checkpoint(tmp_path / f"{name}-two" / "checkpoints" / "last.pt")["model"]
        assert "rnn.groups.0.initial.h" in model
