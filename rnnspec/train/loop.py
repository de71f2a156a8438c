"""``rnnspec train``: the training loop.

One loop for every objective (:mod:`rnnspec.train.losses`) and data source
(:mod:`rnnspec.train.tasks`):

* **BPTT.**  Full by default.  With ``bptt: {truncate: K}`` a language
  model's stream is cut into K-step batches and the recurrent state is
  carried (detached) from one batch to the next; a batch of examples longer
  than K is run in K-step chunks, the state carried (detached) between
  chunks, each chunk's loss back-propagated as soon as it is computed, and
  one optimizer step taken per batch.
* **Steps.**  A step is one optimizer update on one global batch; the data
  position, the schedule, logging, evaluation and checkpoints all count
  steps, so a run stopped at any step and resumed (``resume=RUN_DIR``)
  continues exactly as if it had not stopped.
* **Gradients** are of the mean loss over the scored elements of the whole
  global batch, whatever the chunking or the number of processes.

The checkpoint holds the model, optimizer, schedule, RNG states, data
position, the carried state, the open log window and the best/early-stop
records; it is written atomically (a crash leaves the previous one intact).
"""
from __future__ import annotations

import contextlib
import json
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from rnnspec import __version__
from rnnspec.backends.runtime import LayerGroup
from rnnspec.data.text import Vocab
from rnnspec.errors import Pos, SpecError
from rnnspec.spec.dump import dump_yaml
from rnnspec.spec.model import Spec
from rnnspec.train import distributed as D
from rnnspec.train.auxiliary import add_aux, aux_metrics, take_aux_loss
from rnnspec.train.checkpoint import CheckpointError, atomic_write_text, load_checkpoint, save_checkpoint
from rnnspec.train.losses import Objective, Prepared
from rnnspec.train.models import build_model
from rnnspec.train.optim import check_optimizer, make_optimizer, make_schedule
from rnnspec.train.progress import Progress
from rnnspec.train.runs import Run
from rnnspec.train.sampling import sample_ids
from rnnspec.train.tasks import BatchSource, TrainData, load_data, resolve_path, to_layout

Log = Callable[[str], None]
FORMAT = "rnnspec-checkpoint"


@dataclass
class RunResult:
    run_dir: Path
    steps: int
    train_loss: float
    val_loss: Optional[float]
    sample: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # last validation metrics
    timing: dict[str, float] = field(default_factory=dict)
    stopped: str = "done"  # done | early_stop | interrupted


# Summed statistics of a logging window (all-reduced across processes).
STAT_KEYS = ("loss_sum", "count", "correct", "n_acc", "abs", "bits_wrong", "n_seq", "tp", "fp", "fn", "seq_right")

# ---------------------------------------------------------------- helpers

def _mpos(spec: Spec, *path: Any) -> Optional[Pos]:
    return spec._where.value(path) if spec._where is not None else None


def with_train(spec: Spec, **updates: Any) -> Spec:
    """A copy of ``spec`` with ``train`` fields replaced (positions kept)."""
    assert spec.train is not None
    out = spec.model_copy(update={"train": spec.train.model_copy(update=updates)})
    out._where, out._library, out._file = spec._where, spec._library, spec._file
    return out


def resolved_spec(spec: Spec) -> Spec:
    """The spec as the run directory records it: data paths made absolute, so
    ``--resume``, ``eval`` and ``predict`` find the data from anywhere."""
    t = spec.train
    assert t is not None
    d = t.data
    upd: dict[str, Any] = {}
    for key in ("text", "csv", "npy", "npz", "folder", "targets"):
        v = getattr(d, key)
        if v is not None:
            upd[key] = str(resolve_path(spec, v).resolve())
    data = d.model_copy(update=upd)
    data.__pydantic_fields_set__ = set(d.model_fields_set)
    out = with_train(spec, data=data)
    if spec.include:
        # Inline the included cells: the run directory must not depend on files beside the spec.
        from rnnspec.spec.loader import standard_library

        std = standard_library()
        cells = dict(spec.cells)
        for name, cdef in (spec._library or {}).items():
            if name not in cells and std.get(name) is not cdef:
                cells[name] = cdef
        inlined = out.model_copy(update={"cells": cells, "include": []})
        inlined._where, inlined._library, inlined._file = out._where, out._library, out._file
        out = inlined
    return out


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    out = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(s: dict[str, Any]) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def map_state(fn: Any, state: Any) -> Any:
    """Apply ``fn`` to every tensor of a nested state (tuples, named tuples such
    as a memory block's, lists), keeping its structure."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return fn(state)
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(map_state(fn, s) for s in state))
    if isinstance(state, tuple):
        return tuple(map_state(fn, s) for s in state)
    if isinstance(state, list):
        return [map_state(fn, s) for s in state]
    return state


def detach(state: Any) -> Any:
    return map_state(lambda t: t.detach(), state)


def to_device(state: Any, device: torch.device) -> Any:
    return map_state(lambda t: t.to(device), state)


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision == "bf16":
        return True
    if precision == "auto":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    return False


def autocast(device: torch.device, enabled: bool) -> Any:
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def forward(net: nn.Module, obj: Objective, p: Prepared, state: Any, start: int, stop: int) -> tuple[torch.Tensor, Any]:
    """The network's output for steps ``start:stop`` of ``p`` (and its final state)."""
    if obj.name == "seq2seq":
        return net(p.x, p.lengths, p.y, p.extras["target_lengths"]), None
    whole = start == 0 and stop == p.steps
    x = p.x if whole else (p.x[:, start:stop] if p.batch_first else p.x[start:stop])
    lengths = p.lengths
    if lengths is not None and not whole:
        lengths = (lengths - start).clamp(0, stop - start)
    return net(x, state, lengths)


def chunks(steps: int, truncate: Optional[int]) -> list[tuple[int, int]]:
    if not truncate or truncate >= steps:
        return [(0, steps)]
    return [(s, min(s + truncate, steps)) for s in range(0, steps, truncate)]


def _add(acc: dict[str, Any], stats: dict[str, Any]) -> None:
    for k, v in stats.items():
        acc[k] = acc.get(k, 0.0) + v


def _floats(acc: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in acc.items()}


# ---------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(net: nn.Module, obj: Objective, data: TrainData, split: str, *, batch: int, batch_first: bool,
             device: torch.device, max_batches: Optional[int] = None, bf16: bool = False) -> Optional[dict[str, float]]:
    """Metrics of ``net`` on a split (None if the split is empty)."""
    items = data.split(split)
    if items is None:
        return None
    was = net.training
    net.eval()
    totals: dict[str, Any] = {}
    rows = max(1, min(batch, 8))
    if data.kind == "stream" and int(items.shape[0]) // rows < 2:
        rows = 1
    key = (split, batch, rows)
    source = data.cache.get(key)
    if source is None:
        source = data.cache[key] = BatchSource(data, split, batch, seed=0, shuffle=False, bucket=0, batch_first=True,
                                               stream_batch=rows)
    state = None
    for b in source.sequential(max_batches):
        p = to_layout(obj.to(obj.prepare(b, True), device), batch_first)
        with autocast(device, bf16):
            out, state = forward(net, obj, p, state if data.kind == "stream" else None, 0, p.steps)
        loss, stats = obj.score(out, p)
        _add(totals, {"loss_sum": float(loss), "count": p.count, **_floats(stats), **obj.eval_stats(out, p)})
    res = obj.summarize(totals)
    if obj.anomaly is not None:  # whole-split metrics: a threshold from the validation errors, ROC AUC
        from rnnspec.train.anomaly import anomaly_metrics

        res.update(anomaly_metrics(net, data, split, quantile=obj.anomaly.quantile, batch=batch,
                                   batch_first=batch_first, device=device))
    net.train(was)
    return res


# ---------------------------------------------------------------- training

class _Interrupt:
    """First Ctrl-C: finish the step, checkpoint, stop.  Second: stop now."""

    def __init__(self) -> None:
        self.flag = False
        self.prev: Any = None

    def __enter__(self) -> "_Interrupt":
        if threading.current_thread() is threading.main_thread():
            self.prev = signal.getsignal(signal.SIGINT)

            def handler(signum: int, frame: Any) -> None:
                if self.flag:
                    raise KeyboardInterrupt
                self.flag = True

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.prev is not None:
            signal.signal(signal.SIGINT, self.prev)


def train(
    spec: Spec,
    *,
    run_dir: Optional[Path] = None,
    resume: Optional[Path] = None,
    max_steps: Optional[int] = None,
    seed: Optional[int] = None,
    log: Log = print,
    checkpoint_every: Optional[int] = None,
    progress: Optional[bool] = None,
    deterministic: bool = False,
    threads: Optional[int] = None,
) -> RunResult:
    """Train ``spec``'s network on its ``train`` section (see the module doc).

    ``max_steps`` stops the run after that many steps in total (a resumed
    run counts the steps before it); it does not change the schedule, which
    is planned over the spec's ``max_steps``/``epochs``."""
    if spec.train is None:
        raise SpecError("this spec has no 'train' section", Pos(spec._file) if spec._file else None)
    if spec.memory is not None:
        from rnnspec.train.associative import train_memory

        return train_memory(spec, run_dir=run_dir, log=log)
    if spec.model is None:
        raise SpecError("this spec has no network to train", Pos(spec._file) if spec._file else None)
    if seed is not None and seed != spec.train.seed:
        spec = with_train(spec, seed=seed)
    t = spec.train
    check_optimizer(spec)
    if "ridge" in t.optimizer:  # the read-out fitted in closed form (echo-state networks), no gradient steps
        from rnnspec.train.ridge import train_ridge

        return train_ridge(spec, run_dir=run_dir, resume=resume, log=log, threads=threads)
    if t.track == "mlflow":
        import importlib.util

        if importlib.util.find_spec("mlflow") is None:
            raise SpecError("track: mlflow needs the mlflow package: pip install 'rnnspec[mlflow]'",
                            _mpos(spec, "train", "track"))
    if deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)

    payload = load_checkpoint(Path(resume) / "checkpoints" / "last.pt") if resume is not None else None
    if payload is not None and payload.get("format", FORMAT) != FORMAT:
        raise CheckpointError(f"{resume}: not an rnnspec training checkpoint")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)  # small recurrent steps run faster on few threads, much faster on a busy machine
    dist = D.setup(t.device)
    finished = False
    try:
        result = _train(spec, dist, payload, run_dir=run_dir, resume=resume, max_steps=max_steps, log=log,
                        checkpoint_every=checkpoint_every, live=progress)
        finished = True
        return result
    finally:
        D.cleanup(dist, finished=finished)
        torch.set_num_threads(before)


def _train(spec: Spec, dist: D.Dist, payload: Optional[dict[str, Any]], *, run_dir: Optional[Path],
           resume: Optional[Path], max_steps: Optional[int], log: Log, checkpoint_every: Optional[int],
           live: Optional[bool]) -> RunResult:
    t, m = spec.train, spec.model
    assert t is not None and m is not None
    say: Log = log if dist.main else (lambda s: None)
    device = dist.device
    seed_all(t.seed)

    # ---- data and objective
    vocab = Vocab.from_json(payload["vocab"]) if payload and payload.get("vocab") else None
    data = load_data(spec, vocab=vocab, classes=payload.get("classes") if payload else None)
    obj = data.objective
    if payload and payload.get("objective", obj.name) != obj.name:
        raise CheckpointError(f"{resume}: the checkpoint trained objective {payload['objective']!r}, the spec now gives {obj.name!r}")
    if dist.world > 1:
        if data.kind == "stream" and t.batch % dist.world:
            raise SpecError(f"batch {t.batch} does not split into {dist.world} processes' streams evenly",
                            _mpos(spec, "train", "batch"))
        if data.kind == "examples" and t.batch < dist.world:
            raise SpecError(f"batch {t.batch} is smaller than the {dist.world} processes", _mpos(spec, "train", "batch"))
    src = BatchSource(data, "train", t.batch, seed=t.seed, shuffle=t.data.shuffle, bucket=t.data.bucket,
                      batch_first=True, rank=dist.rank, world=dist.world)
    nb = len(src)
    if data.kind == "examples" and dist.world > 1 and any(len(b) < dist.world for b in src.it.batch_indices(0)):
        # a process would get an empty shard (batch sizes are the same every epoch)
        raise SpecError(f"a batch of an epoch has fewer examples than processes ({dist.world}); choose a batch size "
                        "that divides the training set, or fewer processes", _mpos(spec, "train", "batch"))
    monitor = t.monitor
    if monitor not in obj.metrics:
        raise SpecError(f"monitor {monitor!r} is not a metric of objective {obj.name!r} (metrics: {', '.join(obj.metrics)})",
                        _mpos(spec, "train", "monitor"))
    mode = Objective.mode(monitor)
    has_val = data.validation is not None
    (sched_name, _), = t.schedule.items()
    if not has_val and (t.early_stop is not None or sched_name == "plateau"):
        what = "early_stop" if t.early_stop is not None else "schedule"
        raise SpecError(f"{what} watches the validation split, but there is none (data.split is 1)",
                        _mpos(spec, "train", what))

    # ---- model, optimizer, schedule
    torch.manual_seed(t.seed)
    raw = build_model(spec, obj.name).to(device)
    net: nn.Module = raw
    if dist.enabled:
        # A learned initial state (initial_state: learned) takes part in a sequence's first chunk only: later
        # chunks and a carried stream leave it out of the graph, which DDP must be told.
        learned = any(isinstance(m, LayerGroup) and m.initial is not None for m in raw.modules())
        net = nn.parallel.DistributedDataParallel(raw, device_ids=[device] if device.type == "cuda" else None,
                                                  find_unused_parameters=learned)
    opt = make_optimizer(raw.parameters(), t)
    horizon = min(t.max_steps or 10**12, t.epochs * nb)
    sched = make_schedule(opt, t, horizon)
    stop = min(max_steps or t.max_steps or 10**12, t.epochs * nb)
    ckpt_every = checkpoint_every or t.checkpoint_every
    batch_first = bool(m.batch_first)
    bf16 = use_bf16(t.precision, device)

    step = 0
    carry: Any = None
    window: dict[str, Any] = {}
    best: dict[str, Any] = {}
    bad_evals = 0
    if payload:
        raw.load_state_dict(payload["model"])
        opt.load_state_dict(payload["optimizer"])
        if "schedule" in payload:
            sched.load_state_dict(payload["schedule"])
        step = int(payload["step"])
        saved = payload.get("data") or {}
        if saved.get("batches_per_epoch", nb) != nb or saved.get("num_examples", None) not in (None, len(data.train)):
            raise CheckpointError(
                f"{resume}: the training data changed since this checkpoint ({saved.get('num_examples')} examples in "
                f"{saved.get('batches_per_epoch')} batches then, {len(data.train)} in {nb} now); it cannot resume exactly")
        if "rng" in payload:
            set_rng_state(payload["rng"])
        else:
            torch.set_rng_state(payload["torch_rng"])
        carry = D.shard_rows(to_device(payload.get("carry"), device), dist)
        window = dict(payload.get("window") or {})
        best = dict(payload.get("best") or {})
        bad_evals = int((payload.get("early_stop") or {}).get("bad", 0))
        if dist.main and resume is not None:
            bj = Path(resume) / "checkpoints" / "best.json"
            if bj.is_file():
                try:
                    on_disk = json.loads(bj.read_text())
                    if not best or _better(on_disk["value"], best["value"], mode):
                        best = on_disk
                except (ValueError, KeyError):
                    pass
        best = D.broadcast_object(best, dist)

    # ---- run directory
    if resume is not None:
        run_dir = Path(resume)
    if run_dir is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = D.broadcast_object(Path("runs") / f"{spec.name or 'model'}-{stamp}", dist)
    run_dir = Path(run_dir)
    rspec = resolved_spec(spec)
    spec_text = dump_yaml(rspec)
    run = Run(run_dir, active=dist.main, log=say, resume_step=step if payload else None,
              tensorboard=True, mlflow=t.track == "mlflow",
              params={"name": spec.name, "objective": obj.name, "loss": obj.loss, **t.model_dump(mode="json", exclude_defaults=True)})
    if dist.main and not payload:
        atomic_write_text(run_dir / "spec.yaml", spec_text)
        if data.vocab is not None:
            atomic_write_text(run_dir / "vocab.json", json.dumps(data.vocab.to_json(), ensure_ascii=False))
        atomic_write_text(run_dir / "run.json", json.dumps({
            "name": spec.name, "objective": obj.name, "loss": obj.loss, "classes": data.classes,
            "world_size": dist.world, "device": str(device), "precision": "bf16" if bf16 else "fp32",
            "rnnspec": __version__, "torch": torch.__version__, "started": datetime.now().isoformat(timespec="seconds"),
        }, indent=1))

    n_params = sum(p.numel() for p in raw.parameters())
    unit = "tok" if data.kind == "stream" or obj.name == "lm" else "steps"
    what = (f"{int(data.train.shape[0]):,} training tokens" if data.kind == "stream"
            else f"{len(data.train):,} training examples")
    if payload:
        say(f"resumed {run_dir} at step {step} (epoch {step // nb + 1}, batch {step % nb})")
    say(f"training {spec.name or 'model'} ({obj.name}, {obj.loss}): {n_params:,} parameters, {what}, "
        f"{nb} batches/epoch of {t.batch}, steps {step}->{stop}"
        + (f" on {dist.world} processes" if dist.world > 1 else "") + f" -> {run_dir}")

    def payload_now() -> dict[str, Any]:
        full_carry = D.gather_rows(detach(carry), dist) if data.kind == "stream" else None
        return {
            "format": FORMAT, "version": 2, "model": raw.state_dict(), "optimizer": opt.state_dict(),
            "schedule": sched.state_dict(), "step": step, "epoch": step // nb, "index": step % nb,
            "data": src.state(step), "rng": rng_state(), "torch_rng": torch.get_rng_state(),
            "vocab": data.vocab.to_json() if data.vocab is not None else None, "classes": data.classes,
            "spec": spec_text, "objective": obj.name, "loss": obj.loss, "per_step": obj.per_step,
            "carry": to_device(full_carry, torch.device("cpu")), "window": _floats(window), "best": best,
            "early_stop": {"bad": bad_evals}, "world_size": dist.world,
        }

    def save(name: str = "last.pt") -> None:
        p = payload_now()  # collective in DDP (the carried state is gathered)
        if dist.main:
            save_checkpoint(run_dir / "checkpoints" / name, p)

    def run_eval(split: str, scheduled: bool) -> Optional[dict[str, float]]:
        nonlocal bad_evals, best
        res = evaluate(raw, obj, data, split, batch=t.batch, batch_first=batch_first, device=device,
                       max_batches=t.eval_batches if split == "validation" else None, bf16=bf16)
        if res is None:
            return None
        run.write({"step": step, "split": split, **res})
        prog.line(f"{split:>10} step {step:>6}  " + "  ".join(f"{k} {v:.4f}" for k, v in res.items()))
        if split != "validation":
            return res
        value = res[monitor]
        if scheduled:
            sched.observe(value, mode)
        improved = not best or _better(value, best["value"], mode, t.early_stop.min_delta if t.early_stop else 0.0)
        if improved:
            best = {"metric": monitor, "value": value, "step": step}
            save("best.pt")
            if dist.main:
                atomic_write_text(run_dir / "checkpoints" / "best.json", json.dumps(best))
            if scheduled:
                bad_evals = 0
        elif scheduled:
            bad_evals += 1
        return res

    prog = Progress(stop, log=say, live=live if dist.main else False, unit=unit)
    history = run.rows
    last_val: Optional[dict[str, float]] = None
    stopped = "done"
    timing = {"data": 0.0, "sync": 0.0, "compute": 0.0, "loop": 0.0, "steps": 0}
    tokens = 0
    t_start = time.perf_counter()
    start_step = step
    evaluated_at = -1
    interrupted = False
    try:
        with _Interrupt() as intr:
            net.train()
            while step < stop:
                t0 = time.perf_counter()
                if data.kind == "stream" and step % nb == 0:
                    carry = None
                p = to_layout(obj.to(obj.prepare(src.get(step), True), device), batch_first)
                lr = sched.apply(step)
                ts = time.perf_counter()
                total = torch.tensor([p.count, 1.0 if intr.flag else 0.0], dtype=torch.float64)
                D.all_reduce_sum(total, dist)  # the global batch's scored elements, and whether any rank was interrupted
                if total[1] > 0:
                    interrupted = True
                    break
                t1 = time.perf_counter()
                timing["sync"] += t1 - ts
                # ---- forward + backward + optimizer
                opt.zero_grad(set_to_none=True)
                scale = dist.world / max(float(total[0]), 1e-12)
                state = carry if data.kind == "stream" else None
                step_loss = 0.0
                parts = chunks(p.steps, t.bptt.truncate if data.kind == "examples" else None)
                for k, (s, e) in enumerate(parts):
                    sync = contextlib.nullcontext() if (not dist.enabled or k == len(parts) - 1) else net.no_sync()
                    with sync:
                        with autocast(device, bf16):
                            out, state = forward(net, obj, p, state, s, e)
                        loss, stats = obj.score(out, p, s, e)
                        aux = take_aux_loss(raw)  # e.g. a history compressor's next-input prediction loss
                        (loss * scale + (aux / len(parts) if aux is not None else 0.0)).backward()
                    state = detach(state)
                    _add(window, {"loss_sum": loss.detach(), **stats})
                    if aux is not None:
                        add_aux(window, aux, len(parts))
                    if prog.live:
                        step_loss += float(loss.detach())
                if data.kind == "stream":
                    carry = state
                if t.clip_grad_norm:
                    nn.utils.clip_grad_norm_(raw.parameters(), t.clip_grad_norm)
                if t.clip_grad_value:
                    nn.utils.clip_grad_value_(raw.parameters(), t.clip_grad_value)
                opt.step()
                step += 1
                t2 = time.perf_counter()
                window["count"] = window.get("count", 0.0) + p.count
                tokens += p.tokens
                # ---- bookkeeping
                elapsed = t2 - t_start
                rate = tokens * dist.world / max(elapsed, 1e-9) if unit == "tok" else (step - start_step) / max(elapsed, 1e-9)
                if prog.live:
                    prog.update(step, step_loss / max(p.count, 1e-12), rate, elapsed, start_step)
                if step % t.log_every == 0 or step == stop:
                    w = torch.tensor([float(window.get(k, 0.0)) for k in STAT_KEYS],
                                     dtype=torch.float64)
                    D.all_reduce_sum(w, dist)
                    totals = {k: float(v) for k, v in zip(STAT_KEYS, w)
                              if k in ("loss_sum", "count") or k in window}
                    res = {**obj.summarize(totals), **aux_metrics(window)}
                    if step % t.log_every == 0:
                        window = {}  # (a stop between log steps keeps its window, so a resumed run logs the same)
                    row = {"step": step, "split": "train", **res, "lr": lr, "epoch": step / nb,
                           ("tokens_per_s" if unit == "tok" else "steps_per_s"): rate}
                    run.write(row)
                    prog.line(f"step {step:>6}/{stop}  epoch {(step - 1) // nb + 1}  "
                              + "  ".join(f"{k} {v:.4f}" for k, v in res.items())
                              + f"  lr {lr:.2e}  {rate:,.0f} {unit}/s")
                timing["data"] += ts - t0
                timing["compute"] += t2 - t1
                timing["loop"] += time.perf_counter() - t0
                timing["steps"] += 1
                due = (step % t.eval_every == 0) if t.eval_every else (step % nb == 0)
                if has_val and due:
                    last_val = run_eval("validation", scheduled=True)
                    evaluated_at = step
                    if t.early_stop is not None and bad_evals >= t.early_stop.patience:
                        stopped = "early_stop"
                        prog.line(f"early stop at step {step}: validation {monitor} has not improved for "
                                  f"{bad_evals} evaluations (best {best.get('value', float('nan')):.4f} at step {best.get('step')})")
                        break
                if step % ckpt_every == 0:
                    save()
                    run.flush_csv()
    except KeyboardInterrupt:
        prog.close()
        run.close(plot=False)
        say(f"interrupted again: stopped without a checkpoint; the last one is in {run_dir / 'checkpoints'}")
        raise
    except BaseException:
        prog.close()
        run.close(plot=False)
        raise
    prog.close()
    save()
    if interrupted:
        run.close(plot=False)
        say(f"interrupted: checkpoint saved at step {step}; resume with  rnnspec train --resume {run_dir}")
        raise KeyboardInterrupt
    if has_val and evaluated_at != step:
        last_val = run_eval("validation", scheduled=False)
    if data.test is not None and (step >= stop or stopped == "early_stop"):
        run_eval("test", scheduled=False)
    loop_s = max(timing["loop"], 1e-12)
    timing_out = {
        "steps": timing["steps"], "step_ms": 1000 * loop_s / max(timing["steps"], 1),
        "compute_share": timing["compute"] / loop_s, "data_share": timing["data"] / loop_s,
        "sync_share": timing["sync"] / loop_s,
    }
    if timing["steps"]:
        other = 1 - timing_out["compute_share"] - timing_out["data_share"] - timing_out["sync_share"]
        say(f"time per step {timing_out['step_ms']:.1f} ms: forward+backward+optimizer "
            f"{100 * timing_out['compute_share']:.1f}%, data {100 * timing_out['data_share']:.1f}%"
            + (f", waiting for the other processes {100 * timing_out['sync_share']:.1f}%" if dist.enabled else "")
            + f", logging and bookkeeping {100 * other:.1f}%")
    train_rows = [r for r in history if r.get("split") == "train"]
    sample_text = ""
    if t.sample is not None and obj.name == "lm" and data.vocab is not None and dist.main:
        s = t.sample
        v = data.vocab
        prompt = v.encode(s.prompt) if s.prompt else torch.tensor([v.id("\n") if "\n" in v else 0])
        ids = sample_ids(raw, prompt.to(device), s.length, temperature=s.temperature, top_k=s.top_k,
                         generator=torch.Generator(device=device).manual_seed(t.seed))
        sample_text = s.prompt + v.decode(ids)
        say("sample:\n" + sample_text)
    if dist.main:
        info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
        info.update(finished=datetime.now().isoformat(timespec="seconds"), steps=step, stopped=stopped, timing=timing_out,
                    best=best or None)
        atomic_write_text(run_dir / "run.json", json.dumps(info, indent=1))
    run.close()
    return RunResult(run_dir, step, train_rows[-1]["loss"] if train_rows else float("nan"),
                     last_val["loss"] if last_val else None, sample_text, history, last_val or {}, timing_out, stopped)


def _better(a: float, b: float, mode: str, delta: float = 0.0) -> bool:
    return a < b - delta if mode == "min" else a > b + delta
