"""The copy task of Graves et al. 2014 (§4.1), used to check that NTM/DNC learn.

Kept deliberately small and self-contained (``rnnspec.data.synthetic`` is the
general-purpose generator); this module is what the block tests and the
block docs use.

Layout of one sequence of length ``L`` with ``bits`` bits per vector
(time-major, ``bits + 1`` input channels, the last one is the delimiter)::

    t:        0 .. L-1       L            L+1 .. 2L
    input:    random bits    delimiter    zeros
    target:   -              -            the L input vectors, in order

Sequences in a batch may have different lengths; they are padded to
``2 * max(L) + 1`` steps and ``mask`` marks the steps that are scored.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CopyBatch",
    "copy_batch",
    "bit_errors",
    "copy_loss",
    "CopyReport",
    "train_copy",
    "evaluate_copy",
    "torch_threads",
]


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(count)``, restoring the old value after.

    Memory networks run one small op after another; intra-op threads only add
    synchronisation there, and on a loaded machine (other processes on the
    same cores) two spinning threads made training ~4x slower in our
    measurements. One thread is as fast when idle and robust when not.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class CopyBatch:
    """One batch of the copy task (time-major).

    Attributes:
        inputs: ``[T, B, bits + 1]``.
        targets: ``[T, B, bits]`` (zero outside the output phase).
        mask: ``[T, B]`` 1.0 on the steps whose output is scored.
        lengths: ``[B]`` sequence lengths ``L``.
    """

    inputs: Tensor
    targets: Tensor
    mask: Tensor
    lengths: Tensor


def copy_batch(
    batch_size: int,
    min_length: int,
    max_length: int,
    bits: int = 8,
    generator: torch.Generator | None = None,
) -> CopyBatch:
    """Random copy-task batch with lengths drawn uniformly from ``[min_length, max_length]``."""
    if not 1 <= min_length <= max_length:
        raise ValueError("need 1 <= min_length <= max_length")
    lengths = torch.randint(min_length, max_length + 1, (batch_size,), generator=generator)
    steps = 2 * int(lengths.max()) + 1
    data = torch.randint(0, 2, (int(lengths.max()), batch_size, bits), generator=generator).float()
    inputs = torch.zeros(steps, batch_size, bits + 1)
    targets = torch.zeros(steps, batch_size, bits)
    mask = torch.zeros(steps, batch_size)
    for b, length in enumerate(lengths.tolist()):
        inputs[:length, b, :bits] = data[:length, b]
        inputs[length, b, bits] = 1.0
        targets[length + 1 : 2 * length + 1, b] = data[:length, b]
        mask[length + 1 : 2 * length + 1, b] = 1.0
    return CopyBatch(inputs, targets, mask, lengths)


def copy_loss(logits: Tensor, batch: CopyBatch) -> Tensor:
    """Binary cross-entropy on the scored steps, averaged per scored bit."""
    per_bit = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="none")
    weights = batch.mask.unsqueeze(-1).expand_as(per_bit)
    return (per_bit * weights).sum() / weights.sum()


def bit_errors(logits: Tensor, batch: CopyBatch) -> Tensor:
    """Wrong bits per sequence ``[B]`` after thresholding the outputs at 0.5 (the paper's metric)."""
    wrong = ((logits > 0).float() != batch.targets).float() * batch.mask.unsqueeze(-1)
    return wrong.sum(dim=(0, 2))


@dataclass
class CopyReport:
    """What :func:`train_copy` did.

    Attributes:
        steps: optimisation steps taken.
        sequences: training sequences seen.
        seconds: wall-clock training time.
        cpu_seconds: CPU time of this process during training (robust to other load).
        final_loss: loss of the last batch.
        history: ``(step, mean bit errors per sequence)`` of each evaluation.
    """

    steps: int
    sequences: int
    seconds: float
    cpu_seconds: float
    final_loss: float
    history: list[tuple[int, float]] = field(default_factory=list)


@torch.no_grad()
def evaluate_copy(
    model: nn.Module, length: int, batch_size: int = 64, bits: int = 8, generator: torch.Generator | None = None
) -> tuple[float, float]:
    """``(mean bit errors per sequence, bit error rate per bit)`` at a fixed ``length``."""
    batch = copy_batch(batch_size, length, length, bits, generator)
    logits, _ = model(batch.inputs)
    errors = bit_errors(logits, batch)
    return float(errors.mean()), float(errors.sum() / (batch_size * length * bits))


def train_copy(
    model: nn.Module,
    *,
    steps: int,
    batch_size: int = 16,
    min_length: int = 1,
    max_length: int = 10,
    bits: int = 8,
    lr: float = 1e-3,
    fine_tune_lr: float | None = None,
    fine_tune_below: float = 1.0,
    clip: float = 10.0,
    eval_every: int = 100,
    eval_batch: int = 128,
    target_errors: float | None = None,
    patience: int = 2,
    time_limit: float | None = None,
    generator: torch.Generator | None = None,
) -> CopyReport:
    """Train ``model`` (``model(x[T,B,I]) -> (logits[T,B,O], state)``) on the copy task with Adam.

    Every ``eval_every`` steps the mean bit errors per sequence on a fresh
    batch of ``eval_batch`` sequences of lengths ``min_length..max_length``
    are recorded; training stops early once ``patience`` evaluations in a row
    are at or below ``target_errors`` (when given), or once ``time_limit``
    seconds have passed. Gradients are clipped to norm ``clip``, as is
    customary for memory-augmented networks (rare large gradients through
    sharp addressing otherwise derail training).

    Once an evaluation first shows at most ``fine_tune_below`` errors the
    learning rate drops to ``fine_tune_lr`` (when given): near the solution
    Adam at the initial rate keeps kicking the heads' sharp addressing out of
    place, and the error then oscillates instead of settling at zero.
    """
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    history: list[tuple[int, float]] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    loss = torch.tensor(float("nan"))
    step = 0
    for step in range(1, steps + 1):
        batch = copy_batch(batch_size, min_length, max_length, bits, generator)
        logits, _ = model(batch.inputs)
        loss = copy_loss(logits, batch)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimiser.step()
        if step % eval_every == 0:
            check = copy_batch(eval_batch, min_length, max_length, bits, generator)
            with torch.no_grad():
                errors = float(bit_errors(model(check.inputs)[0], check).mean())
            history.append((step, errors))
            if fine_tune_lr is not None and errors <= fine_tune_below:
                for group in optimiser.param_groups:
                    group["lr"] = fine_tune_lr
            recent = [e for _, e in history[-patience:]]
            if target_errors is not None and len(recent) == patience and max(recent) <= target_errors:
                break
            if time_limit is not None and time.perf_counter() - start > time_limit:
                break
    return CopyReport(
        steps=step,
        sequences=step * batch_size,
        seconds=time.perf_counter() - start,
        cpu_seconds=time.process_time() - cpu_start,
        final_loss=float(loss.detach()),
        history=history,
    )
