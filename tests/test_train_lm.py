"""The `rnnspec train` skeleton: a char LM learns, checkpoints, resumes exactly."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import rnnspec
from rnnspec.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rnnspec.train.loop import train

SPEC = """
name: tiny-lm
model:
  input: {tokens: 40, embed: 8}
  layers: [{cell: gru, hidden: 32}]
  output: {logits: 40, every_step: true}
  batch_first: true
train:
  data: {text: corpus.txt, seq_len: 16, split: 0.9}
  optimizer: {adam: {lr: 1.0e-2}}
  bptt: {truncate: 16}
  batch: 8
  max_steps: 60
  log_every: 10
"""


def _spec(tmp_path: Path) -> rnnspec.Spec:
    # A very predictable corpus: a repeated phrase; uniform guessing costs ln(|vocab|).
    (tmp_path / "corpus.txt").write_text("the cat sat on the mat. " * 300)
    (tmp_path / "lm.yaml").write_text(SPEC)
    return rnnspec.load(tmp_path / "lm.yaml")


def test_char_lm_loss_falls_well_below_uniform(tmp_path: Path) -> None:
    result = train(_spec(tmp_path), run_dir=tmp_path / "run", log=lambda s: None)
    first = result.history[0]["loss"]
    assert result.train_loss < 0.5 < first, (first, result.train_loss)  # uniform over 13 chars: ln 13 = 2.56
    rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"step", "split", "loss"} <= set(rows[0])
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


def test_resume_continues_exactly(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    whole = train(spec, run_dir=tmp_path / "whole", max_steps=30, log=lambda s: None)
    train(spec, run_dir=tmp_path / "split", max_steps=20, log=lambda s: None)
    resumed = train(spec, resume=tmp_path / "split", max_steps=30, log=lambda s: None)
    a = torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=False)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-7)
    assert resumed.steps == whole.steps == 30


def test_truncated_checkpoint_is_a_clear_error_and_old_one_survives(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(3)}})
    data = path.read_bytes()
    (tmp_path / "bad.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(tmp_path / "bad.pt")
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(3))


def test_vocabulary_larger_than_input_is_a_located_error(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    (tmp_path / "corpus.txt").write_text("".join(chr(65 + i % 58) for i in range(2000)))
    with pytest.raises(rnnspec.SpecError, match="distinct char tokens") as e:
        train(spec, run_dir=tmp_path / "r", log=lambda s: None)
    assert e.value.pos is not None and e.value.pos.line == 4
