"""Exact resume, atomic checkpoints, Ctrl-C."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch

from rnnspec.cli import main
from rnnspec.train import checkpoint as ck
from rnnspec.train.checkpoint import CheckpointError, load_checkpoint

from ._util import load, run

# Shuffled synthetic data, dropout between stacked levels (RNG state), a
# cosine schedule with warmup, truncated BPTT, and a checkpoint that falls
# mid-epoch and mid-log-window.
SPEC = """
name: resumable
model:
  input: {tokens: 6, embed: 8}
  layers: [{cell: gru, hidden: 16, depth: 2, dropout: 0.3}]
  output: {logits: 6, every_step: true}
train:
  data: {task: delayed_recall, params: {lag: 2, min_len: 6, max_len: 14, symbols: 6}, size: 120, split: 0.8, bucket: 2}
  optimizer: {adamw: {lr: 1.0e-2}}
  schedule: {cosine: {warmup: 3}}
  bptt: {truncate: 5}
  batch: 8
  epochs: 3
  max_steps: 30
  log_every: 4
  eval_every: 10
  checkpoint_every: 7
"""


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def _train_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] in ("train", "validation")]


def test_resume_mid_epoch_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    spec = load(tmp_path, SPEC)
    whole = run(spec, tmp_path / "whole")
    assert whole.steps == 30
    # stop at step 13 (mid-epoch: 12 batches per epoch; mid log window; after the checkpoint at 7)
    run(spec, tmp_path / "split", max_steps=13)
    resumed = run(spec, tmp_path / "ignored", resume=tmp_path / "split")
    assert resumed.steps == 30
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ra = [(r["step"], r["split"], r["loss"]) for r in _train_rows(tmp_path / "whole")]
    rb = [(r["step"], r["split"], r["loss"]) for r in _train_rows(tmp_path / "split") if not (r["step"] == 13)]
    assert ra == rb


def test_resume_from_the_cli_continues_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.yaml").write_text(SPEC.replace("max_steps: 30", "max_steps: 12"))
    assert main(["train", str(tmp_path / "s.yaml"), "--run-dir", str(tmp_path / "r"), "--max-steps", "6", "--threads", "1"]) == 0
    assert main(["train", "--resume", str(tmp_path / "r"), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "resumed" in out and "at step 6" in out and "done: 12 steps" in out
    # a resumed run keeps its spec: changing it is refused, at the override
    assert main(["train", "--resume", str(tmp_path / "r"), "--train.batch=4"]) == 2
    assert "keeps its spec" in capsys.readouterr().err


def test_truncated_or_corrupted_checkpoint_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = load(tmp_path, SPEC.replace("max_steps: 30", "max_steps: 4"))
    run(spec, tmp_path / "r")
    last = tmp_path / "r" / "checkpoints" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        run(spec, tmp_path / "x", resume=tmp_path / "r")
    last.write_bytes(b"garbage" * 100)
    assert main(["train", "--resume", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "last.pt: not a readable checkpoint" in err and "Traceback" not in err
    assert main(["eval", str(last)]) == 2


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load(tmp_path, SPEC.replace("max_steps: 30", "max_steps: 7"))
    run(spec, tmp_path / "r")
    last = tmp_path / "r" / "checkpoints" / "last.pt"
    before = last.read_bytes()

    def crash(fd: int) -> None:  # the disk fails (or the power goes) halfway through the next save
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck.os, "fsync", crash)
    with pytest.raises(OSError):
        run(spec, tmp_path / "r", resume=tmp_path / "r", max_steps=14)
    monkeypatch.undo()
    assert last.read_bytes() == before
    assert load_checkpoint(last)["step"] == 7
    assert not [p for p in last.parent.iterdir() if p.name.endswith(".tmp")]


def test_ctrl_c_saves_a_checkpoint_and_resumes(tmp_path: Path) -> None:
    spec = load(tmp_path, SPEC)
    logs: list[str] = []

    def log(msg: str) -> None:
        logs.append(msg)
        if msg.startswith("step") and "8/" in msg.split()[1]:
            signal.raise_signal(signal.SIGINT)  # as if the user pressed Ctrl-C during step 9

    with pytest.raises(KeyboardInterrupt):
        run(spec, tmp_path / "r", log=log)
    assert any("resume with  rnnspec train --resume" in m for m in logs)
    assert load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")["step"] == 8
    assert run(spec, tmp_path / "r", resume=tmp_path / "r").steps == 30
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
