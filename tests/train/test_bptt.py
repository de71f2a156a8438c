"""Full and truncated BPTT: the state carried across chunks, gradients cut
at chunk bounds, gradient clipping."""
from __future__ import annotations

from pathlib import Path

import torch

import rnnspec
from rnnspec.train.checkpoint import load_checkpoint
from rnnspec.train.loop import evaluate
from rnnspec.train.tasks import load_data

from ._util import load, run

LM = """
name: lm
model:
  input: {tokens: 8, embed: 4}
  layers: [{cell: lstm, hidden: 6}]
  output: {logits: 8, every_step: true}
  batch_first: BF
train:
  data: {text: c.txt, seq_len: SEQ, split: 0.5}
  optimizer: {sgd: {lr: 1.0e-30}}
  bptt: {truncate: SEQ}
  batch: 2
  max_steps: 3
  log_every: 1
"""


def _lm(tmp_path: Path, seq: int, batch_first: bool = True, name: str = "lm.yaml") -> rnnspec.Spec:
    (tmp_path / "c.txt").write_text("abcdefab" * 40 + "hgfedcba" * 40)
    return load(tmp_path, LM.replace("SEQ", str(seq)).replace("BF", "true" if batch_first else "false"), name)


def test_stream_state_is_carried_across_batches(tmp_path: Path) -> None:
    spec = _lm(tmp_path, 5, batch_first=False)
    run(spec, tmp_path / "r")  # lr ~ 0: the weights stay as initialised
    ck = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")
    net = rnnspec.compile(spec)
    net.load_state_dict(ck["model"])
    data = load_data(spec, vocab=None)
    streams = data.train[: (len(data.train) // 2) * 2].view(2, -1)  # the 2 streams
    with torch.no_grad():
        _, (h, c) = net(streams[:, :15].t())  # 3 batches of 5 steps, from a zero state, in one go
    carried_h, carried_c = ck["carry"]
    assert torch.allclose(carried_h, h, atol=1e-6) and torch.allclose(carried_c, c, atol=1e-6)


def test_evaluation_carries_the_state_through_the_stream(tmp_path: Path) -> None:
    spec_a = _lm(tmp_path, 4, name="a.yaml")
    spec_b = _lm(tmp_path, 40, name="b.yaml")
    torch.manual_seed(0)
    net = rnnspec.compile(spec_a)
    da, db = load_data(spec_a), load_data(spec_b)
    kw = dict(batch=1, batch_first=True, device=torch.device("cpu"))
    short = evaluate(net, da.objective, da, "validation", **kw)
    long = evaluate(net, db.objective, db, "validation", **kw)
    assert abs(short["loss"] - long["loss"]) < 1e-5


TASK = """
name: t
model:
  input: {vector: 2}
  layers: [{cell: gru, hidden: 8}]
  output: {linear: 1}
train:
  data: {task: adding, params: {length: 12}, size: 64, split: 1.0, shuffle: false}
  optimizer: {sgd: {lr: 0.5}}
  batch: 16
  max_steps: 1
  log_every: 1
EXTRA
"""


def _task(tmp_path: Path, extra: str, name: str) -> tuple[float, dict[str, torch.Tensor]]:
    spec = load(tmp_path, TASK.replace("EXTRA", extra), name + ".yaml")
    r = run(spec, tmp_path / name)
    return r.history[0]["loss"], load_checkpoint(tmp_path / name / "checkpoints" / "last.pt")["model"]


def test_truncated_chunks_carry_the_state_and_cut_the_gradient(tmp_path: Path) -> None:
    full_loss, full = _task(tmp_path, "", "full")
    cut_loss, cut = _task(tmp_path, "  bptt: {truncate: 4}", "cut")
    same_loss, same = _task(tmp_path, "  bptt: {truncate: 12}", "same")
    assert abs(full_loss - cut_loss) < 1e-6  # the forward pass is the same: the state crosses chunk bounds
    assert all(torch.equal(full[k], same[k]) for k in full)
    assert any(not torch.allclose(full[k], cut[k]) for k in full)  # the gradient does not


def test_gradient_clipping_by_value_and_by_norm(tmp_path: Path) -> None:
    spec = load(tmp_path, TASK.replace("EXTRA", ""), "init.yaml")
    torch.manual_seed(0)
    init = rnnspec.compile(spec).state_dict()
    _, by_value = _task(tmp_path, "  clip_grad_value: 1.0e-4", "value")
    _, by_norm = _task(tmp_path, "  clip_grad_norm: 1.0e-4", "norm")
    step_v = torch.cat([(by_value[k] - init[k]).flatten() for k in init])
    step_n = torch.cat([(by_norm[k] - init[k]).flatten() for k in init])
    assert step_v.abs().max() <= 0.5 * 1e-4 * 1.01 and step_v.abs().max() > 0
    assert 0.5 * 1e-4 * 0.99 < step_n.norm() <= 0.5 * 1e-4 * 1.01
