"""``optimizer: {ridge: {alpha, washout}}``: the read-out fitted in closed form.

An echo-state network (Jaeger 2001 §4; Jaeger & Haas 2004) trains only its
linear read-out, by linear regression of the targets on the reservoir
states.  Here the read-out is the spec's output layer ``y = W z + c`` (``z``:
the last layer's output), fitted by ridge regression (Tikhonov
regularisation; Lukoševičius 2012, "A practical guide to applying echo state
networks", eq. (9)) in one pass over the training split::

    [W c]^T = (Z^T Z + alpha * D)^(-1) Z^T Y        Z = [z, 1],  D = diag(1, ..., 1, 0)

(the bias ``c`` is not penalised).  ``Z^T Z`` and ``Z^T Y`` are summed over
every scored step of every training sequence in float64, leaving out each
sequence's first ``washout`` steps (the reservoir settling from rest) and
whatever the data's own loss mask leaves out.

Only the read-out is fitted, so every layer before it must be fixed: a
``block: reservoir`` layer (no parameters).  A layer with trainable weights,
a learned embedding, or a read-out that is not ``linear`` with no
activation is an error at the line that says so.  Options of the gradient
trainer (schedule, epochs, clipping, ...) are errors too, not ignored.

The run directory is a normal one (``spec.yaml``, ``run.json``,
``metrics.jsonl``, ``checkpoints/last.pt``), so ``rnnspec eval``, ``predict``
and :func:`rnnspec.train.inference.load_run` use it as any other.  Besides
the objective's metrics it logs ``nrmse``: the root of the MSE over the
variance of the scored targets (the figure Jaeger reports).
"""
from __future__ import annotations

import json
import math
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

from rnnspec import __version__
from rnnspec.errors import Pos, SpecError
from rnnspec.spec.blocks_model import BlockSpec
from rnnspec.spec.dump import dump_yaml
from rnnspec.spec.model import Spec
from rnnspec.train.checkpoint import CheckpointError, atomic_write_text, save_checkpoint
from rnnspec.train.losses import Objective, Prepared

Log = Callable[[str], None]

# The layer kinds with no trainable weight (their weights are fixed buffers).
FIXED_BLOCKS = ("reservoir",)
# Training options that only the gradient trainer reads.
GRADIENT_ONLY = ("schedule", "bptt", "epochs", "max_steps", "clip_grad_norm", "clip_grad_value", "early_stop",
                 "eval_every", "eval_batches", "checkpoint_every", "sample", "seq2seq")


def _value(spec: Spec, *path: Any) -> Optional[Pos]:
    return spec._where.value(path) if spec._where is not None else None


def _key(spec: Spec, *path: Any) -> Optional[Pos]:
    return spec._where.key(path) if spec._where is not None else None


def check_ridge(spec: Spec, obj: Objective) -> None:
    """Everything before the read-out is fixed, and the read-out is linear."""
    t, m = spec.train, spec.model
    assert t is not None and m is not None
    for key in GRADIENT_ONLY:
        if key in t.model_fields_set:
            raise SpecError(f"{key!r} does not apply to a ridge read-out (fitted in one pass, no gradient steps)",
                            _key(spec, "train", key))
    for i, layer in enumerate(m.layers):
        if not (isinstance(layer, BlockSpec) and layer.block in FIXED_BLOCKS):
            what = f"a {layer.block} block" if isinstance(layer, BlockSpec) else f"a {layer.cell} layer"
            raise SpecError(
                f"a ridge read-out fits the output layer only, but layer {i} is {what}, with trainable weights; "
                "use reservoir layers only, or a gradient optimizer (e.g. adam) to train the whole network",
                _value(spec, "model", "layers", i))
    if m.input.embed is not None:
        raise SpecError("a ridge read-out cannot train an input embedding; feed one-hot tokens (no 'embed') or vectors",
                        _key(spec, "model", "input", "embed"))
    if m.output is None or m.output.linear is None or m.output.activation is not None:
        raise SpecError("a ridge read-out is a linear output layer: output {linear: N} with no activation",
                        _value(spec, "model", "output") if m.output is not None else _value(spec, "model"))
    if obj.name != "regress" or obj.loss != "mse":
        raise SpecError(f"a ridge read-out minimises squared error: it needs objective regress with loss mse "
                        f"(this spec trains {obj.name} with {obj.loss})", _key(spec, "train", "optimizer", "ridge"))
    (_, args), = t.optimizer.items()
    if args.washout and not obj.per_step:
        raise SpecError("washout applies to per-step targets; this task has one target per sequence",
                        _value(spec, "train", "optimizer", "ridge", "washout"))


def _features(net: nn.Module, p: Prepared) -> Tensor:
    """The read-out's input for a batch: ``[B, T, F]`` (per step) or ``[B, F]``."""
    seen: list[Tensor] = []
    hook = net.head.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    try:
        net(p.x, None, p.lengths)
    finally:
        hook.remove()
    z = seen[0]
    if z.dim() == 3:
        z = z.transpose(0, 1)  # the network runs time-major inside; targets and masks are batch-first
    return z


def _rows(z: Tensor, p: Prepared, washout: int) -> tuple[Tensor, Tensor]:
    """The scored (features, targets) rows of a batch, float64."""
    y = p.y
    assert y is not None
    if z.dim() == 3:
        mask = p.mask.clone() if p.mask is not None else torch.ones(z.shape[:2], dtype=torch.bool)
        mask[:, :washout] = False
        if y.dim() == 2:
            y = y.unsqueeze(-1)
        return z[mask].double(), y[mask].double()
    return z.double(), y.reshape(z.shape[0], -1).double()


def fit_readout(net: nn.Module, batches: Any, obj: Objective, *, alpha: float, washout: int,
                device: torch.device) -> dict[str, float]:
    """Fit ``net.head`` to the batches (in place); returns the fit's figures."""
    from rnnspec.train.tasks import to_layout

    batch_first = bool(getattr(net, "batch_first", False))
    zz: Optional[Tensor] = None
    zy: Optional[Tensor] = None
    rows = 0
    with torch.no_grad():
        for b in batches:
            p = to_layout(obj.to(obj.prepare(b, True), device), batch_first)
            z, y = _rows(_features(net, p), p, washout)
            z1 = torch.cat([z, torch.ones(z.shape[0], 1, dtype=z.dtype, device=z.device)], 1)
            zz = z1.T @ z1 if zz is None else zz + z1.T @ z1
            zy = z1.T @ y if zy is None else zy + z1.T @ y
            rows += int(z.shape[0])
        if zz is None or zy is None or rows == 0:
            raise ValueError("no scored step to fit the read-out to (is washout longer than the sequences?)")
        penalty = torch.full((zz.shape[0],), alpha, dtype=zz.dtype, device=zz.device)
        penalty[-1] = 0.0  # the bias is not penalised
        a = zz + torch.diag(penalty)
        try:
            w = torch.linalg.solve(a, zy)
        except RuntimeError:  # singular (alpha 0 and dependent features): the least-squares solution
            w = torch.linalg.lstsq(a, zy).solution
        head: nn.Linear = net.head
        head.weight.copy_(w[:-1].T.to(head.weight.dtype))
        head.bias.copy_(w[-1].to(head.bias.dtype))
    return {"rows": float(rows), "features": float(zz.shape[0] - 1)}


def target_variance(data: Any, split: str, obj: Objective, batch: int) -> Optional[float]:
    """The variance of a split's scored targets (per element, over all outputs)."""
    from rnnspec.train.tasks import BatchSource

    if data.split(split) is None:
        return None
    src = BatchSource(data, split, batch, seed=0, shuffle=False, bucket=0, batch_first=True)
    s = s2 = n = 0.0
    for b in src.sequential():
        p = obj.prepare(b, True)
        y = p.y.double()
        if p.mask is not None:
            y = (y if y.dim() == 3 else y.unsqueeze(-1))[p.mask]
        s += float(y.sum())
        s2 += float((y * y).sum())
        n += float(y.numel())
    if n == 0:
        return None
    mean = s / n
    return max(s2 / n - mean * mean, 0.0)


def train_ridge(spec: Spec, *, run_dir: Optional[Path], resume: Optional[Path], log: Log = print,
                threads: Optional[int] = None) -> Any:
    """Fit the read-out of ``spec``'s network; write a run directory (see the module doc)."""
    from rnnspec.train.loop import FORMAT, RunResult, evaluate, resolved_spec, seed_all
    from rnnspec.train.models import build_model
    from rnnspec.train.runs import Run
    from rnnspec.train.tasks import BatchSource, load_data

    t, m = spec.train, spec.model
    assert t is not None and m is not None
    if resume is not None:
        raise CheckpointError(f"{resume}: a ridge read-out is fitted in one pass; there is nothing to resume "
                              "(train again: the same seed gives the same reservoir and read-out)")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        seed_all(t.seed)
        data = load_data(spec)
        obj = data.objective
        check_ridge(spec, obj)
        (_, args), = t.optimizer.items()
        alpha, washout = float(args.alpha if args.alpha is not None else 1e-8), int(args.washout)
        device = torch.device("cuda" if t.device == "cuda" or (t.device == "auto" and torch.cuda.is_available())
                              else "cpu")
        torch.manual_seed(t.seed)  # the reservoir's weights come from this generator
        net = build_model(spec, obj.name).to(device)
        net.eval()

        if run_dir is None:
            run_dir = Path("runs") / f"{spec.name or 'model'}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        run_dir = Path(run_dir)
        spec_text = dump_yaml(resolved_spec(spec))
        run = Run(run_dir, active=True, log=log, tensorboard=False,
                  params={"name": spec.name, "objective": obj.name, "loss": obj.loss})
        atomic_write_text(run_dir / "spec.yaml", spec_text)
        atomic_write_text(run_dir / "run.json", json.dumps({
            "name": spec.name, "objective": obj.name, "loss": obj.loss, "classes": data.classes, "world_size": 1,
            "device": str(device), "precision": "fp32", "rnnspec": __version__, "torch": torch.__version__,
            "started": datetime.now().isoformat(timespec="seconds"), "readout": "ridge",
        }, indent=1))
        n_fixed = sum(b.numel() for b in net.buffers())
        log(f"fitting the read-out of {spec.name or 'model'} by ridge regression (alpha {alpha:g}, washout {washout}): "
            f"{sum(p.numel() for p in net.head.parameters()):,} read-out weights, {n_fixed:,} fixed, "
            f"{len(data.train):,} training sequences -> {run_dir}")

        t0 = time.perf_counter()
        src = BatchSource(data, "train", t.batch, seed=t.seed, shuffle=False, bucket=0, batch_first=True)
        fit = fit_readout(net, src.sequential(), obj, alpha=alpha, washout=washout, device=device)
        fit_s = time.perf_counter() - t0

        history: list[dict[str, Any]] = []
        results: dict[str, dict[str, float]] = {}
        for split in ("train", "validation", "test"):
            res = evaluate(net, obj, data, split, batch=t.batch, batch_first=bool(m.batch_first), device=device)
            if res is None:
                continue
            var = target_variance(data, split, obj, t.batch)
            if var:
                res["nrmse"] = math.sqrt(max(res["loss"], 0.0) / var)
            row = {"step": 1, "split": split, **res}
            if split == "train":
                row.update(fit_s=fit_s, rows=fit["rows"])
            run.write(row)
            history.append(row)
            results[split] = res
            log(f"{split:>10}  " + "  ".join(f"{k} {v:.4g}" for k, v in res.items()))
        log(f"fitted {int(fit['rows']):,} steps x {int(fit['features'])} features in {fit_s:.2f} s")

        save_checkpoint(run_dir / "checkpoints" / "last.pt", {
            "format": FORMAT, "version": 2, "model": net.state_dict(), "step": 1, "epoch": 1, "index": 0,
            "spec": spec_text, "objective": obj.name, "loss": obj.loss, "per_step": obj.per_step,
            "vocab": data.vocab.to_json() if data.vocab is not None else None, "classes": data.classes,
            "ridge": {"alpha": alpha, "washout": washout, **fit},
        })
        info = json.loads((run_dir / "run.json").read_text())
        info.update(finished=datetime.now().isoformat(timespec="seconds"), steps=1, stopped="done",
                    timing={"fit_s": fit_s})
        atomic_write_text(run_dir / "run.json", json.dumps(info, indent=1))
        run.close(plot=False)
        train_res, val = results.get("train", {}), results.get("validation")
        return RunResult(run_dir, 1, train_res.get("loss", float("nan")), val["loss"] if val else None,
                         history=history, metrics=val or train_res, timing={"fit_s": fit_s})
    finally:
        torch.set_num_threads(before)
