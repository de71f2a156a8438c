"""Optimizers, schedules, early stopping, the best checkpoint, precision."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from rnnspec.errors import SpecError
from rnnspec.spec.model import ScheduleArgs
from rnnspec.train.checkpoint import load_checkpoint
from rnnspec.train.optim import Schedule, make_optimizer

from ._util import col_of, load, run

SPEC = """
name: o
model:
  input: {vector: 2}
  layers: [{cell: gru, hidden: 8}]
  output: {linear: 1}
train:
  data: {task: adding, params: {length: 6}, size: 96, split: 0.75}
  optimizer: OPT
  batch: 16
  epochs: 20
  max_steps: 8
  log_every: 2
EXTRA
"""


def _spec(tmp_path: Path, opt: str = "{adam: {lr: 0.01}}", extra: str = "", name: str = "spec.yaml"):
    return load(tmp_path, SPEC.replace("OPT", opt).replace("EXTRA", extra), name)


@pytest.mark.parametrize("opt,cls,check", [
    ("{sgd: {lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 1.0e-4}}", torch.optim.SGD,
     {"nesterov": True, "momentum": 0.9, "weight_decay": 1e-4}),
    ("{adagrad: {lr: 0.1}}", torch.optim.Adagrad, {"lr": 0.1}),
    ("{rmsprop: {lr: 0.01, alpha: 0.9, momentum: 0.5}}", torch.optim.RMSprop, {"alpha": 0.9, "momentum": 0.5}),
    ("{adam: {lr: 0.01, betas: [0.8, 0.99], eps: 1.0e-6}}", torch.optim.Adam, {"betas": (0.8, 0.99), "eps": 1e-6}),
    ("{adamw: {lr: 0.01}}", torch.optim.AdamW, {"weight_decay": 1e-2}),
])
def test_every_optimizer_trains(tmp_path: Path, opt: str, cls: type, check: dict) -> None:
    spec = _spec(tmp_path, opt)
    o = make_optimizer([torch.nn.Parameter(torch.zeros(2))], spec.train)
    assert type(o) is cls
    for k, v in check.items():
        assert o.param_groups[0][k] == v
    assert run(spec, tmp_path / "r").steps == 8


def _lrs(name: str, horizon: int = 10, **args: float) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = Schedule(opt, name, ScheduleArgs(**args), horizon)
    return [round(s.apply(i), 6) for i in range(horizon)]


def test_schedules() -> None:
    assert _lrs("constant", 4) == [1.0] * 4
    assert _lrs("constant", 5, warmup=4) == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert _lrs("step", 6, every=2, gamma=0.5) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    cos = _lrs("cosine", 10, min_lr=0.1)
    assert cos[0] == 1.0 and cos[5] == pytest.approx(0.55) and cos[-1] == pytest.approx(0.1 + 0.45 * (1 + math.cos(0.9 * math.pi)), abs=1e-5)
    lin = _lrs("linear", 5, warmup=1)
    assert lin == [1.0, 1.0, 0.75, 0.5, 0.25]


def test_reduce_on_plateau() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = Schedule(opt, "plateau", ScheduleArgs(patience=1, gamma=0.5), 100)
    for value in (1.0, 0.9, 0.95, 0.95):  # two bad evaluations after the best: more than patience 1
        s.observe(value, "min")
    assert s.apply(0) == 0.5
    state = s.state_dict()
    s2 = Schedule(opt, "plateau", ScheduleArgs(patience=1, gamma=0.5), 100)
    s2.load_state_dict(state)
    assert s2.apply(0) == 0.5


def test_early_stopping_and_the_best_checkpoint(tmp_path: Path) -> None:
    spec = load(tmp_path, SPEC.replace("OPT", "{sgd: {lr: 1.0e-9}}").replace("max_steps: 8", "max_steps: 50")
                .replace("EXTRA", "  eval_every: 1\n  early_stop: {patience: 2}"))
    r = run(spec, tmp_path / "r")
    assert r.stopped == "early_stop" and r.steps < 10
    best = json.loads((tmp_path / "r" / "checkpoints" / "best.json").read_text())
    assert best["metric"] == "loss" and load_checkpoint(tmp_path / "r" / "checkpoints" / "best.pt")["step"] == best["step"]
    rows = [json.loads(l) for l in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"train", "validation"}


def test_bf16_autocast_on_request(tmp_path: Path) -> None:
    spec = _spec(tmp_path, extra="  precision: bf16")
    assert run(spec, tmp_path / "r").steps == 8
    assert json.loads((tmp_path / "r" / "run.json").read_text())["precision"] == "bf16"


def test_optimizer_and_schedule_mistakes_are_located(tmp_path: Path) -> None:
    cases = [
        ("{sgd: {lr: 0.1, nesterov: true}}", "", "nesterov needs a momentum", "true"),
        ("{adam: {lr: 0.1}}", "  schedule: {step: {gamma: 0.5}}", "needs 'every'", "step:"),
        ("{adam: {lr: 0.1}}", "  schedule: {cosine: {every: 3}}", "schedule 'cosine' takes no argument 'every'", "every"),
        ("{adam: {lr: 0.1}}", "  monitor: accuracy", "not a metric of objective 'regress'", "accuracy"),
    ]
    for i, (opt, extra, msg, where) in enumerate(cases):
        path = tmp_path / f"s{i}.yaml"
        spec = _spec(tmp_path, opt, extra, path.name)
        with pytest.raises(SpecError) as e:
            run(spec, tmp_path / f"r{i}")
        assert msg in e.value.message
        assert (e.value.pos.line, e.value.pos.col) == col_of(path, where, e.value.pos.line)
    spec = _spec(tmp_path, extra="  early_stop: {patience: 2}\n", name="nv.yaml")
    spec = load(tmp_path, (tmp_path / "nv.yaml").read_text().replace("split: 0.75", "split: 1.0"), "nv2.yaml")
    with pytest.raises(SpecError, match="watches the validation split"):
        run(spec, tmp_path / "nv")
