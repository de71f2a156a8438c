"""Optimizers and learning-rate schedules, from the spec's ``optimizer`` and
``schedule`` sections.

A schedule here is a pure function of the step (plus, for ``plateau``, a
small state fed by validation results), so it resumes exactly from
:meth:`Schedule.state_dict` and its horizon does not depend on when a run
was stopped.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Optional

import torch

from rnnspec.errors import SpecError
from rnnspec.spec.model import OptimizerArgs, ScheduleArgs, Spec

# Which arguments each optimizer takes (the rest are an error at their key).
OPTIMIZER_ARGS: dict[str, tuple[str, ...]] = {
    "sgd": ("lr", "momentum", "nesterov", "weight_decay"),
    "adam": ("lr", "betas", "eps", "weight_decay"),
    "adamw": ("lr", "betas", "eps", "weight_decay"),
    "rmsprop": ("lr", "momentum", "alpha", "eps", "weight_decay"),
    "adagrad": ("lr", "eps", "weight_decay"),
    # not a gradient optimizer: the read-out fitted in closed form (rnnspec.train.ridge)
    "ridge": ("alpha", "washout"),
}

SCHEDULE_ARGS: dict[str, tuple[str, ...]] = {
    "constant": ("warmup",),
    "step": ("warmup", "every", "gamma"),
    "cosine": ("warmup", "min_lr"),
    "linear": ("warmup", "min_lr"),
    "plateau": ("warmup", "gamma", "patience", "threshold", "min_lr"),
}


def _where(spec: Spec, path: tuple, key: bool = False) -> Any:
    w = spec._where
    if w is None:
        return None
    return w.key(path) if key else w.value(path)


def check_optimizer(spec: Spec) -> None:
    """Arguments that do not apply to the chosen optimizer/schedule are errors."""
    t = spec.train
    assert t is not None
    (name, args), = t.optimizer.items()
    for key in args.model_fields_set:
        if key not in OPTIMIZER_ARGS[name]:
            raise SpecError(
                f"optimizer {name!r} takes no argument {key!r}; it takes {', '.join(OPTIMIZER_ARGS[name])}",
                _where(spec, ("train", "optimizer", name, key), key=True),
            )
    if name == "rmsprop" and args.alpha is not None and args.alpha >= 1.0:
        raise SpecError(f"rmsprop's alpha (smoothing constant) must be below 1, got {args.alpha}",
                        _where(spec, ("train", "optimizer", name, "alpha")))
    if name == "sgd" and args.nesterov and args.momentum <= 0:
        raise SpecError("nesterov needs a momentum > 0", _where(spec, ("train", "optimizer", name, "nesterov")))
    (sname, sargs), = t.schedule.items()
    for key in sargs.model_fields_set:
        if key not in SCHEDULE_ARGS[sname]:
            raise SpecError(
                f"schedule {sname!r} takes no argument {key!r}; it takes {', '.join(SCHEDULE_ARGS[sname])}",
                _where(spec, ("train", "schedule", sname, key), key=True),
            )
    if sname == "step" and sargs.every is None:
        raise SpecError("schedule 'step' needs 'every' (steps between decays)",
                        _where(spec, ("train", "schedule", sname), key=True))
    if sargs.min_lr >= args.lr and sname in ("cosine", "linear", "plateau") and "min_lr" in sargs.model_fields_set:
        raise SpecError(f"min_lr ({sargs.min_lr}) must be below lr ({args.lr})",
                        _where(spec, ("train", "schedule", sname, "min_lr")))


def make_optimizer(params: Iterable[Any], train: Any) -> torch.optim.Optimizer:
    """The optimizer named in ``train.optimizer`` (a TrainSpec)."""
    (name, a), = train.optimizer.items()
    a: OptimizerArgs
    wd = a.weight_decay if a.weight_decay is not None else (1e-2 if name == "adamw" else 0.0)
    if name == "sgd":
        return torch.optim.SGD(params, lr=a.lr, momentum=a.momentum, nesterov=a.nesterov, weight_decay=wd)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=a.lr, betas=tuple(a.betas or (0.9, 0.999)), eps=a.eps or 1e-8, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=a.lr, alpha=a.alpha or 0.99, momentum=a.momentum, eps=a.eps or 1e-8,
                                   weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=a.lr, eps=a.eps or 1e-10, weight_decay=wd)
    if name == "ridge":
        raise ValueError("ridge is not a gradient optimizer: rnnspec.train.ridge fits the read-out")
    raise ValueError(f"unknown optimizer {name!r}")


class Schedule:
    """``lr(step) = base_lr * warmup(step) * shape(step) * plateau_factor``.

    ``horizon`` is the planned number of steps (the spec's ``max_steps`` or
    ``epochs`` worth of batches), used by ``cosine`` and ``linear``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, name: str, args: ScheduleArgs, horizon: int) -> None:
        self.optimizer = optimizer
        self.name = name
        self.args = args
        self.horizon = max(1, int(horizon))
        self.base = [float(g["lr"]) for g in optimizer.param_groups]
        self.factor = 1.0  # plateau reductions so far
        self.best: Optional[float] = None
        self.bad = 0

    def multiplier(self, step: int) -> float:
        a = self.args
        m = 1.0
        if a.warmup and step < a.warmup:
            m = (step + 1) / a.warmup
        if self.name == "step":
            m *= a.gamma ** (step // int(a.every or 1))
        elif self.name in ("cosine", "linear"):
            span = max(1, self.horizon - a.warmup)
            p = min(1.0, max(0.0, (step - a.warmup) / span))
            shape = 0.5 * (1.0 + math.cos(math.pi * p)) if self.name == "cosine" else 1.0 - p
            m *= shape
        return m * self.factor

    def apply(self, step: int) -> float:
        """Set the learning rate for the step about to be taken (0-based); returns it."""
        m = self.multiplier(step)
        lr = 0.0
        for g, base in zip(self.optimizer.param_groups, self.base):
            floor = self.args.min_lr if self.name in ("cosine", "linear", "plateau") else 0.0
            lr = floor + (base - floor) * m if self.name in ("cosine", "linear") else max(floor, base * m)
            g["lr"] = lr
        return lr

    def observe(self, value: float, mode: str) -> None:
        """A validation result (``plateau`` reduces the rate after ``patience`` bad ones)."""
        if self.name != "plateau":
            return
        better = self.best is None or (
            value < self.best - self.args.threshold * abs(self.best) if mode == "min"
            else value > self.best + self.args.threshold * abs(self.best)
        )
        if better:
            self.best, self.bad = value, 0
            return
        self.bad += 1
        if self.bad > self.args.patience:
            self.factor *= self.args.gamma
            self.bad = 0

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "factor": self.factor, "best": self.best, "bad": self.bad, "base": self.base,
                "horizon": self.horizon}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.factor = float(state.get("factor", 1.0))
        self.best = state.get("best")
        self.bad = int(state.get("bad", 0))
        self.base = list(state.get("base", self.base))
        self.horizon = int(state.get("horizon", self.horizon))


def make_schedule(optimizer: torch.optim.Optimizer, train: Any, horizon: int) -> Schedule:
    (name, args), = train.schedule.items()
    return Schedule(optimizer, name, args, horizon)
