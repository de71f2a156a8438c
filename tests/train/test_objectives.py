"""Every objective trains (its loss falls on small data), and masked losses
score exactly the real, unmasked steps."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from rnnspec.data.batch import Batch
from rnnspec.train.inference import predict
from rnnspec.train.losses import Objective
from rnnspec.train.tasks import load_data

from ._util import load, run

NET = """
name: n
model:
  input: INPUT
  layers: [{cell: CELL, hidden: 24}]
  output: OUTPUT
  batch_first: true
train:
  data: DATA
  optimizer: {adam: {lr: 2.0e-2}}
  batch: 16
  max_steps: STEPS
  epochs: 100
  log_every: LOG
EXTRA
"""


def _spec(tmp_path: Path, input: str, output: str, data: str, steps: int = 40, log: int = 10, cell: str = "gru",
          extra: str = "", name: str = "spec.yaml"):
    text = (NET.replace("INPUT", input).replace("OUTPUT", output).replace("DATA", data).replace("CELL", cell)
            .replace("STEPS", str(steps)).replace("LOG", str(log)).replace("EXTRA", extra))
    return load(tmp_path, text, name)


def _falls(result, factor: float) -> tuple[float, float]:
    rows = [r for r in result.history if r["split"] == "train"]
    first, last = rows[0]["loss"], rows[-1]["loss"]
    assert last < factor * first, (first, last)
    return first, last


def test_classification_of_whole_sequences(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "{tokens: 2, embed: 4}", "{logits: 2}",
                 "{task: tomita, params: {grammar: 1, min_len: 3, max_len: 8}, size: 300}")
    r = run(spec, tmp_path / "r")
    _falls(r, 0.5)
    assert "accuracy" in r.history[-1]


def test_per_step_tagging_with_loss_mask(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "{tokens: 6, embed: 8}", "{logits: 6, every_step: true}",
                 "{task: delayed_recall, params: {lag: 1, min_len: 4, max_len: 9, symbols: 6}, size: 300}")
    r = run(spec, tmp_path / "r")
    _falls(r, 0.5)
    assert r.history[-1]["accuracy"] > 0.6


def test_multi_label_tagging_with_bce(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "{tokens: 7, embed: 8}", "{logits: 7, every_step: true}",
                 "{task: reber, size: 200}", steps=30)
    assert load_data(spec).objective.loss == "bce"
    _falls(run(spec, tmp_path / "r"), 0.5)


def test_regression_per_step_and_at_the_last_step(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "{vector: 1}", "{linear: 1, every_step: true}",
                 "{task: mackey_glass, params: {window: 20}, size: 80}", steps=30)
    d = load_data(spec)
    assert d.objective.name == "regress" and d.objective.per_step
    _falls(run(spec, tmp_path / "r1"), 0.5)
    spec = _spec(tmp_path, "{vector: 2}", "{linear: 1}", "{task: adding, params: {length: 6}, size: 300}",
                 cell="lstm", name="b.yaml")
    r = run(spec, tmp_path / "r2")
    _falls(r, 0.6)
    assert "mae" in r.history[-1]


def test_ctc_with_target_lengths(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, T, U = 120, 12, 3
    x = np.zeros((n, T, 4), np.float32)
    y = np.zeros((n, U), np.int64)
    tl = rng.integers(1, U + 1, size=n)
    lengths = np.zeros(n, np.int64)
    for i in range(n):
        labels = rng.integers(1, 4, size=tl[i])
        t = 0
        for lab in labels:
            x[i, t : t + 2, lab] = 1.0
            x[i, t + 2, 0] = 1.0  # a gap
            t += 3
        lengths[i] = t
        y[i, : tl[i]] = labels
    np.savez(tmp_path / "ctc.npz", x=x + 0.1 * rng.normal(size=x.shape).astype(np.float32), y=y, lengths=lengths, tl=tl)
    spec = _spec(tmp_path, "{vector: 4}", "{logits: 4, every_step: true}",
                 "{npz: ctc.npz, keys: {target_lengths: tl}, target: sequence}", steps=40,
                 extra="  objective: ctc")
    d = load_data(spec)
    assert d.objective.name == "ctc"
    assert sorted(int(ex.y.shape[0]) for ex in [*d.train, *d.validation]) == sorted(tl.tolist())
    r = run(spec, tmp_path / "r")
    _falls(r, 0.5)
    np.save(tmp_path / "in.npy", x[:3])
    assert predict(tmp_path / "r", tmp_path / "in.npy", tmp_path / "out.jsonl") == 3
    labels = [json.loads(l)["labels"] for l in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert all(all(1 <= k < 4 for k in seq) for seq in labels)


def test_seq2seq_reverses_sequences(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n, T = 300, 5
    src = np.zeros((n, T), np.int64)
    tgt = np.zeros((n, T), np.int64)
    lengths = rng.integers(2, T + 1, size=n)
    for i in range(n):
        s = rng.integers(2, 7, size=lengths[i])
        src[i, : lengths[i]] = s
        tgt[i, : lengths[i]] = s[::-1]
    np.savez(tmp_path / "rev.npz", x=src, y=tgt, lengths=lengths, tl=lengths)
    spec = _spec(tmp_path, "{tokens: 7, embed: 8}", "{logits: 7, every_step: true}",
                 "{npz: rev.npz, keys: {target_lengths: tl}, target: sequence}", steps=60,
                 extra="  seq2seq: {source: {tokens: 7, embed: 8}, bos: 1}")
    assert load_data(spec).objective.name == "seq2seq"
    r = run(spec, tmp_path / "r")
    _falls(r, 0.6)
    assert {"perplexity", "accuracy"} <= set(r.history[-1])
    np.savez(tmp_path / "in.npz", x=src[:4], lengths=lengths[:4])
    assert predict(tmp_path / "r", tmp_path / "in.npz", tmp_path / "out.jsonl") == 4
    outs = [json.loads(l)["output"] for l in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert all(isinstance(o, list) and all(0 <= k < 7 for k in o) for o in outs)


def test_language_model_on_a_folder_of_texts(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    for k in range(20):
        (tmp_path / "docs" / f"{k}.txt").write_text("abcabcabc"[k % 3 :] + "abc" * (k % 4))
    spec = _spec(tmp_path, "{tokens: 5, embed: 4}", "{logits: 5, every_step: true}", "{folder: docs}", steps=30)
    d = load_data(spec)
    assert d.objective.name == "lm" and d.vocab is not None
    _falls(run(spec, tmp_path / "r"), 0.5)


# ---------------------------------------------------------------- masking

def _batch(y: torch.Tensor, lengths: list[int], mask: torch.Tensor | None = None) -> Batch:
    extras = {"loss_mask": mask} if mask is not None else {}
    x = torch.zeros(y.shape[0], y.shape[1], dtype=torch.long)
    return Batch(x=x, y=y, lengths=torch.tensor(lengths), extras=extras, batch_first=True, per_step=True)


def test_per_step_loss_ignores_padding_and_masked_steps() -> None:
    obj = Objective("tag", "cross_entropy", per_step=True, every_step_output=True, num_outputs=3)
    y = torch.tensor([[0, 1, 2, -100], [2, 2, -100, -100]])
    mask = torch.tensor([[False, True, True, False], [True, True, False, False]])
    p = obj.prepare(_batch(y, [3, 2], mask), True)
    assert p.count == 4.0
    out = torch.randn(2, 4, 3)
    loss, _ = obj.score(out, p)
    changed = out.clone()
    changed[0, 0] += 5.0  # masked out by loss_mask
    changed[0, 3] += 5.0  # padding
    changed[1, 2:] -= 5.0  # padding
    assert torch.allclose(obj.score(changed, p)[0], loss)
    ref = sum(torch.nn.functional.cross_entropy(out[b, t], y[b, t]) for b, t in ((0, 1), (0, 2), (1, 0), (1, 1)))
    assert torch.allclose(loss, ref)


def test_sequence_targets_use_each_sequences_last_valid_step() -> None:
    obj = Objective("regress", "mse", per_step=False, every_step_output=True, num_outputs=1)
    b = Batch(x=torch.zeros(2, 4, 1), y=torch.tensor([[1.0], [2.0]]), lengths=torch.tensor([4, 2]), batch_first=True)
    p = obj.prepare(b, True)
    out = torch.zeros(2, 4, 1)
    out[0, 3] = 1.0
    out[1, 1] = 2.0
    out[1, 3] = 99.0  # padding: never read
    loss, stats = obj.score(out, p)
    assert float(loss) == 0.0
    # split into chunks (truncated BPTT): each sequence is scored once, in the chunk holding its end
    l1, _ = obj.score(out[:, :2], p, 0, 2)
    l2, _ = obj.score(out[:, 2:], p, 2, 4)
    assert float(l1 + l2) == 0.0
    out[1, 1] = 0.0
    assert float(obj.score(out[:, :2], p, 0, 2)[0]) == 4.0 and float(obj.score(out[:, 2:], p, 2, 4)[0]) == 0.0
