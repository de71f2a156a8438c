"""``rnnspec train`` for associative memories (``memory: {hopfield | bam}``).

Their learning is one-shot: the patterns are stored (Hebbian or
pseudo-inverse outer products), then recalled from noisy probes.  The run
reports what the papers report: the fraction of patterns recalled exactly
(Hopfield 1982; Kosko 1988), the mean overlap with the stored pattern, the
update rounds to converge, and whether the energy ever rose (it must not,
for asynchronous Hopfield updates).
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from rnnspec.data.errors import DataError
from rnnspec.data.synthetic import associative_patterns
from rnnspec.errors import SpecError
from rnnspec.spec.dump import dump_yaml
from rnnspec.spec.model import Spec
from rnnspec.train.checkpoint import atomic_write_text, save_checkpoint


def _probes(keys: torch.Tensor, noise: float, seed: int, repeats: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each stored key ``repeats`` times with ``round(noise * N)`` signs flipped."""
    g = torch.Generator().manual_seed(seed)
    P, N = keys.shape
    flips = round(noise * N)
    index = torch.arange(P).repeat(repeats)
    probes = keys[index].clone()
    for row in range(probes.shape[0]):
        where = torch.randperm(N, generator=g)[:flips]
        probes[row, where] *= -1
    return probes, index


def train_memory(spec: Spec, *, run_dir: Optional[Path], log: Callable[[str], None] = print) -> Any:
    from rnnspec.blocks.memory import build_memory
    from rnnspec.train.loop import RunResult

    assert spec.memory is not None and spec.train is not None
    t = spec.train
    data = t.data
    where = spec._where.value(("train", "data")) if spec._where is not None else None
    if data.task != "associative_pairs":
        raise SpecError("an associative memory is trained on data: {task: associative_pairs, params: {...}}", where)
    params = dict(data.params)
    known = {"num_patterns", "size", "value_size", "noise", "repeats"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise SpecError(f"unknown associative_pairs parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", where)
    net = build_memory(spec)
    mem = spec.memory
    size = mem.hopfield.units if mem.hopfield is not None else mem.bam.n  # type: ignore[union-attr]
    value_size = None if mem.hopfield is not None else mem.bam.p  # type: ignore[union-attr]
    if params.get("size", size) != size or (value_size is not None and params.get("value_size", value_size) != value_size):
        raise SpecError(f"the patterns' sizes must match the memory's ({size}" + (f", {value_size}" if value_size else "") + ")", where)
    try:
        keys, values = associative_patterns(int(params.get("num_patterns", 5)), size, seed=t.seed, value_size=value_size)
    except DataError as e:
        raise SpecError(str(e), where) from None
    noise = float(params.get("noise", 0.1))
    repeats = int(params.get("repeats", 4))
    if run_dir is None:
        run_dir = Path("runs") / f"{spec.name or 'memory'}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "spec.yaml", dump_yaml(spec))

    probes, index = _probes(keys, noise, t.seed + 1, repeats)
    g = torch.Generator().manual_seed(t.seed + 2)
    if mem.hopfield is not None:
        net.store(keys)
        result = net.recall(probes, mode=mem.hopfield.update, max_steps=mem.hopfield.max_steps, generator=g)
        recalled, target = result.state, keys[index]
        energies = result.energies
        rose = bool((energies[:, 1:] > energies[:, :-1] + 1e-6).any()) if mem.hopfield.update == "async" else None
    else:
        net.store(keys, values)
        result = net.recall_y(probes, max_steps=mem.bam.max_steps)  # type: ignore[union-attr]
        recalled, target = result.y, values[index]
        rose = None
    exact = (recalled == target).all(-1).float()
    metrics = {
        "recall": float(exact.mean()),
        "overlap": float((recalled * target).mean()),
        "steps": float(result.steps.float().mean()),
        "converged": float(result.converged.float().mean()),
        "patterns": float(keys.shape[0]),
    }
    if rose is not None:
        metrics["energy_rose"] = float(rose)
    kind = "hopfield" if mem.hopfield is not None else "bam"
    log(f"{spec.name}: stored {keys.shape[0]} pattern(s) in a {kind} memory of {size}"
        + (f"x{value_size}" if value_size else "") + f" units; probes with {noise:.0%} of bits flipped")
    log(f"recall {metrics['recall']:.3f}  overlap {metrics['overlap']:.3f}  rounds {metrics['steps']:.1f}  "
        f"converged {metrics['converged']:.2f}" + (f"  energy rose: {'yes' if rose else 'no'}" if rose is not None else ""))
    row = {"step": 1, "split": "validation", "loss": 1.0 - metrics["recall"], **metrics}
    (run_dir / "metrics.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    save_checkpoint(run_dir / "checkpoints" / "last.pt", {"model": net.state_dict(), "spec": dump_yaml(spec), "format": "memory"})
    return RunResult(run_dir, 1, 1.0 - metrics["recall"], 1.0 - metrics["recall"], history=[row], metrics=metrics)
