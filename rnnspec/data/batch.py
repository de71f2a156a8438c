"""Examples, padded batches, and a resumable, seeded batch iterator.

Every data source in :mod:`rnnspec.data` produces :class:`Example` objects —
one variable-length sequence each — and the training loop consumes
:class:`Batch` objects made by :func:`collate`.  Keeping the two apart means a
data source never has to know the batch size, padding or layout the model
wants, and the collation rules (what gets padded, what gets stacked, which
lengths are recorded) live in exactly one place.

:class:`BatchIterator` decides *which* examples go together.  Its order is a
pure function of ``(seed, epoch)``, so a run that saves
:meth:`BatchIterator.state_dict` next to its weights resumes on exactly the
batch it would have seen next, mid-epoch included.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from .errors import DataError

__all__ = [
    "Example",
    "Batch",
    "collate",
    "bucket_by_length",
    "BatchIterator",
    "make_rng",
]


def make_rng(seed: int, *salt: int) -> np.random.Generator:
    """A NumPy generator for ``(seed, *salt)``.

    Everything random in the data layer goes through here so that results are
    reproducible across platforms and independent of global RNG state.  Salts
    give independent streams (e.g. one per example, one per epoch) from one
    user seed.  Negative seeds are mapped to their 64-bit two's complement so
    that every int is accepted without collisions in the 64-bit range.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise DataError(f"seed must be an integer, got {seed!r}")
    words = [int(s) & 0xFFFF_FFFF_FFFF_FFFF for s in (seed, *salt)]
    return np.random.default_rng(np.random.SeedSequence(words))


def _as_tensor(value: Any, what: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise DataError(f"{what} is a NumPy object array; expected a numeric array")
        return torch.from_numpy(value)
    if isinstance(value, bool):
        return torch.tensor(value)
    if isinstance(value, int):
        return torch.tensor(value, dtype=torch.int64)
    if isinstance(value, float):
        return torch.tensor(value, dtype=torch.float32)
    raise DataError(f"{what} must be a tensor, array or number, got {type(value).__name__}")


@dataclass
class Example:
    """One variable-length sequence and its target.

    ``x``
        ``[T, features]`` float, or ``[T]`` int64 token ids.  ``T`` may differ
        between examples; :func:`collate` pads it.
    ``y``
        Either per-step targets ``[T, ...]`` aligned with ``x``, or one target
        for the whole sequence (a scalar class id, a ``[k]`` regression vector,
        or a variable-length label sequence such as CTC targets).  ``None`` for
        unlabeled data.
    ``extras``
        Anything else the model or loss needs: ``loss_mask`` (``[T]`` bool,
        positions where the target is defined), ``target_lengths``, ``tree``
        (nested tuples for recursive nets), ``tokens``...  Tensors whose first
        dimension is ``T`` are padded like ``x``; other tensors and numbers are
        stacked; anything else is collected into a list.
    ``per_step``
        Whether ``y`` is per-step.  ``None`` infers it: per-step iff ``y`` has
        a first dimension equal to ``T``.  Generators set it explicitly so a
        per-sequence vector that happens to have length ``T`` is not mistaken.
    """

    x: Tensor
    y: Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    per_step: bool | None = None

    def __post_init__(self) -> None:
        self.x = _as_tensor(self.x, "Example.x")
        if self.x.dim() < 1:
            raise DataError("Example.x must have a time dimension ([T] tokens or [T, features])")
        if self.y is not None:
            self.y = _as_tensor(self.y, "Example.y")

    @property
    def length(self) -> int:
        """Number of time steps ``T``."""
        return int(self.x.shape[0])

    def y_is_per_step(self) -> bool:
        """Whether ``y`` is aligned with the time axis of ``x``."""
        if self.y is None:
            return False
        if self.per_step is not None:
            return self.per_step
        return self.y.dim() >= 1 and int(self.y.shape[0]) == self.length


@dataclass
class Batch:
    """Padded tensors for a group of examples.

    ``x`` is ``[B, T_max, ...]`` (``batch_first``) or ``[T_max, B, ...]``;
    ``lengths`` is an int64 CPU tensor ``[B]`` with each example's true ``T``
    (CPU because :func:`torch.nn.utils.rnn.pack_padded_sequence` requires it).
    ``y`` follows ``x``'s layout when ``per_step`` is true, else it is
    ``[B, ...]``.  ``extras`` holds the collated extras (see :class:`Example`).
    """

    x: Tensor
    y: Tensor | None
    lengths: Tensor
    extras: dict[str, Any] = field(default_factory=dict)
    batch_first: bool = True
    per_step: bool = False

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def size(self) -> int:
        """The batch size ``B``."""
        return len(self)

    @property
    def max_length(self) -> int:
        """``T_max``, the padded length."""
        return int(self.x.shape[1] if self.batch_first else self.x.shape[0])

    @property
    def step_mask(self) -> Tensor:
        """Bool mask, True at real (non-padding) steps; ``[B, T]`` or ``[T, B]``.

        Built on ``x``'s device so it can be multiplied into a per-step loss.
        """
        steps = torch.arange(self.max_length, device=self.x.device)
        lengths = self.lengths.to(self.x.device)
        mask = steps.unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
        return mask if self.batch_first else mask.t()

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        """A copy with every tensor on ``device`` except ``lengths`` (stays on CPU)."""

        def move(v: Any) -> Any:
            return v.to(device, non_blocking=non_blocking) if isinstance(v, Tensor) else v

        return replace(
            self,
            x=move(self.x),
            y=move(self.y),
            extras={k: move(v) for k, v in self.extras.items()},
        )


def _pad(seqs: Sequence[Tensor], batch_first: bool, value: float, what: str) -> Tensor:
    """Pad ``[T_i, ...]`` tensors into ``[B, T_max, ...]`` / ``[T_max, B, ...]``."""
    first = seqs[0]
    for i, s in enumerate(seqs):
        if s.dtype != first.dtype:
            raise DataError(f"{what}: example {i} has dtype {s.dtype}, example 0 has {first.dtype}")
        if s.shape[1:] != first.shape[1:]:
            raise DataError(
                f"{what}: example {i} has per-step shape {tuple(s.shape[1:])}, "
                f"example 0 has {tuple(first.shape[1:])}"
            )
    t_max = max(int(s.shape[0]) for s in seqs)
    shape = (len(seqs), t_max, *first.shape[1:]) if batch_first else (t_max, len(seqs), *first.shape[1:])
    try:
        out = torch.full(shape, value, dtype=first.dtype, device=first.device)
    except (RuntimeError, TypeError) as err:
        raise DataError(f"{what}: padding value {value!r} does not fit dtype {first.dtype}") from err
    for i, s in enumerate(seqs):
        if batch_first:
            out[i, : s.shape[0]] = s
        else:
            out[: s.shape[0], i] = s
    return out


def _stack_or_pad(values: Sequence[Tensor], value: float, what: str) -> tuple[Tensor, Tensor | None]:
    """Stack equal-shaped tensors; pad variable-length ones along dim 0.

    Returns the batch tensor and, when padding was needed, the int64 lengths.
    """
    first = values[0]
    if all(v.shape == first.shape for v in values) and all(v.dtype == first.dtype for v in values):
        return torch.stack(list(values)), None
    if first.dim() == 0 or any(v.dim() != first.dim() for v in values):
        shapes = sorted({tuple(v.shape) for v in values})
        raise DataError(f"{what}: examples have incompatible shapes {shapes}")
    lengths = torch.tensor([int(v.shape[0]) for v in values], dtype=torch.int64)
    return _pad(values, True, value, what), lengths


def collate(
    examples: Sequence[Example],
    batch_first: bool = True,
    pad_value: float = 0,
    *,
    y_pad_value: float | None = None,
) -> Batch:
    """Pad a list of examples into one :class:`Batch` with ``lengths``.

    ``pad_value`` fills padded steps of ``x`` (0 is the ``<pad>`` id of a
    :class:`rnnspec.data.text.Vocab`); ``y_pad_value`` (default: ``pad_value``)
    fills padded per-step targets — pass e.g. ``-100`` to match
    ``CrossEntropyLoss(ignore_index=-100)``.  Per-sequence targets of varying
    length (CTC label sequences) are padded along their own axis and, unless
    the examples carry ``target_lengths`` already, their lengths are recorded
    in ``extras["target_lengths"]``.
    """
    if len(examples) == 0:
        raise DataError("cannot collate an empty list of examples")
    for i, ex in enumerate(examples):
        if not isinstance(ex, Example):
            raise DataError(f"collate expects Example objects; item {i} is a {type(ex).__name__}")
    y_pad = pad_value if y_pad_value is None else y_pad_value
    lengths = torch.tensor([ex.length for ex in examples], dtype=torch.int64)
    x = _pad([ex.x for ex in examples], batch_first, pad_value, "x")

    extras: dict[str, Any] = {}
    has_y = [ex.y is not None for ex in examples]
    per_step = False
    y: Tensor | None = None
    if any(has_y):
        if not all(has_y):
            missing = has_y.index(False)
            raise DataError(f"example {missing} has no target y but example {has_y.index(True)} has one")
        declared = {ex.per_step for ex in examples if ex.per_step is not None}
        if len(declared) > 1:
            raise DataError("examples disagree on whether y is per-step (Example.per_step)")
        if declared:
            per_step = declared.pop()
        else:
            per_step = all(ex.y_is_per_step() for ex in examples)
        ys = [ex.y for ex in examples]  # type: ignore[misc]
        if per_step:
            for i, ex in enumerate(examples):
                if ex.y.dim() < 1 or int(ex.y.shape[0]) != ex.length:  # type: ignore[union-attr]
                    raise DataError(
                        f"example {i}: per-step y has {tuple(ex.y.shape)} but x has {ex.length} steps"  # type: ignore[union-attr]
                    )
            y = _pad(ys, batch_first, y_pad, "y")  # type: ignore[arg-type]
        else:
            y, y_lengths = _stack_or_pad(ys, y_pad, "y")  # type: ignore[arg-type]
            if y_lengths is not None and not any("target_lengths" in ex.extras for ex in examples):
                extras["target_lengths"] = y_lengths

    keys = list(examples[0].extras)
    for i, ex in enumerate(examples):
        if set(ex.extras) != set(keys):
            diff = sorted(set(keys) ^ set(ex.extras))
            raise DataError(f"example {i} has different extras than example 0 (differ in {diff})")
    for key in keys:
        values = [ex.extras[key] for ex in examples]
        extras[key] = _collate_extra(key, values, examples, batch_first)
    return Batch(x=x, y=y, lengths=lengths, extras=extras, batch_first=batch_first, per_step=per_step)


def _collate_extra(key: str, values: list[Any], examples: Sequence[Example], batch_first: bool) -> Any:
    if all(isinstance(v, (bool, int, float, np.integer, np.floating)) for v in values):
        return torch.as_tensor(np.asarray(values))
    if all(isinstance(v, (Tensor, np.ndarray)) for v in values):
        tensors = [_as_tensor(v, f"extras[{key!r}]") for v in values]
        if all(t.dim() >= 1 and int(t.shape[0]) == ex.length for t, ex in zip(tensors, examples)):
            return _pad(tensors, batch_first, 0, f"extras[{key!r}]")
        return _stack_or_pad(tensors, 0, f"extras[{key!r}]")[0]
    return list(values)


def bucket_by_length(
    lengths: Sequence[int],
    batch_size: int,
    *,
    seed: int,
    pool: int = 50,
    shuffle: bool = True,
    drop_last: bool = False,
) -> list[list[int]]:
    """Group indices into batches of similar length (less padding, same randomness).

    Indices are shuffled, cut into pools of ``pool * batch_size``, each pool is
    sorted by length and cut into batches, and the batch order is shuffled.
    The pool bounds how sorted the batches are, so batches still mix examples
    from across the data set.  With ``shuffle=False`` nothing is shuffled
    (deterministic sorted batches within consecutive pools).
    """
    return _bucket(lengths, batch_size, make_rng(seed, 0xB0C4E7), pool, shuffle, drop_last)


def _bucket(
    lengths: Sequence[int],
    batch_size: int,
    rng: np.random.Generator,
    pool: int,
    shuffle: bool,
    drop_last: bool,
) -> list[list[int]]:
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    if pool < 1:
        raise DataError(f"bucket pool must be >= 1 batch, got {pool}")
    n = len(lengths)
    order = rng.permutation(n) if shuffle else np.arange(n)
    lens = np.asarray(lengths, dtype=np.int64)
    batches: list[list[int]] = []
    span = pool * batch_size
    for start in range(0, n, span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(lens[chunk], kind="stable")]
        for b in range(0, len(chunk), batch_size):
            batches.append([int(i) for i in chunk[b : b + batch_size]])
    if drop_last:
        batches = [b for b in batches if len(b) == batch_size]
    if shuffle:
        perm = rng.permutation(len(batches))
        batches = [batches[i] for i in perm]
    return batches


class BatchIterator:
    """Seeded, resumable batches over a sequence of examples.

    ``for batch in it`` yields the *rest of the current epoch* and then moves
    to the next epoch, so ``for epoch in ...: for batch in it: ...`` is the
    usual loop.  The order of epoch ``e`` depends only on ``(seed, e)``.

    The position counts batches handed out: after receiving batch ``k`` of an
    epoch, :meth:`state_dict` says the next one is ``k + 1``.  Save it with the
    model after the optimizer step, and :meth:`load_state_dict` on a fresh
    iterator (same data, batch size and seed) continues with the same batch
    the original run would have produced next.  :attr:`position` is the same
    thing as one integer (``epoch * len(self) + batch``), see :meth:`seek`.

    ``dataset`` is anything with ``__len__`` and ``__getitem__`` returning
    :class:`Example` (a list, a :class:`rnnspec.data.splits.Subset`, lazy
    language-model chunks...); examples are fetched only when their batch is
    built.  ``bucket`` > 0 groups examples of similar length using pools of
    ``bucket`` batches (see :func:`bucket_by_length`); it reads every example's
    length once.
    """

    def __init__(
        self,
        dataset: Sequence[Example],
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        bucket: int = 0,
        batch_first: bool = True,
        pad_value: float = 0,
        y_pad_value: float | None = None,
        collate_fn: Callable[[list[Example]], Batch] | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
        if bucket < 0:
            raise DataError(f"bucket must be >= 0 (0 disables bucketing), got {bucket}")
        make_rng(seed)  # validates the seed
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = int(seed)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.bucket = bucket
        self.batch_first = batch_first
        self.pad_value = pad_value
        self.y_pad_value = y_pad_value
        self.collate_fn = collate_fn
        n = len(dataset)
        if n == 0:
            raise DataError("the data set is empty; nothing to iterate over")
        self._num_examples = n
        self._num_batches = n // batch_size if drop_last else math.ceil(n / batch_size)
        if self._num_batches == 0:
            raise DataError(
                f"the data set has {n} examples, fewer than batch_size {batch_size}, "
                "and drop_last is set: no batch would ever be produced"
            )
        self._lengths: list[int] | None = None
        self._plan_epoch = -1
        self._plan: list[list[int]] = []
        self._epoch = 0
        self._batch = 0

    # ---- the plan -------------------------------------------------------------
    def __len__(self) -> int:
        """Batches per epoch."""
        return self._num_batches

    def batch_indices(self, epoch: int) -> list[list[int]]:
        """The example indices of every batch of ``epoch``, in order."""
        if epoch == self._plan_epoch:
            return self._plan
        n = self._num_examples
        if self.bucket:
            if self._lengths is None:
                self._lengths = [int(self.dataset[i].length) for i in range(n)]
            plan = _bucket(
                self._lengths,
                self.batch_size,
                make_rng(self.seed, epoch, 0xB0C4E7),
                self.bucket,
                self.shuffle,
                self.drop_last,
            )
        else:
            order = make_rng(self.seed, epoch).permutation(n) if self.shuffle else np.arange(n)
            plan = [[int(i) for i in order[s : s + self.batch_size]] for s in range(0, n, self.batch_size)]
            if self.drop_last:
                plan = [b for b in plan if len(b) == self.batch_size]
        self._plan_epoch, self._plan = epoch, plan
        return plan

    # ---- position ---------------------------------------------------------------
    def _normalize(self) -> None:
        if self._batch >= self._num_batches:
            self._epoch += self._batch // self._num_batches
            self._batch %= self._num_batches

    @property
    def epoch(self) -> int:
        """The epoch the next batch belongs to (0-based)."""
        self._normalize()
        return self._epoch

    @property
    def batch_index(self) -> int:
        """Index within :attr:`epoch` of the next batch."""
        self._normalize()
        return self._batch

    @property
    def position(self) -> int:
        """Batches handed out since epoch 0 began: ``epoch * len(self) + batch``."""
        return self._epoch * self._num_batches + self._batch

    def seek(self, position: int) -> None:
        """Make the next batch the one at global index ``position``."""
        if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or position < 0:
            raise DataError(f"iterator position must be a non-negative integer, got {position!r}")
        self._epoch, self._batch = divmod(int(position), self._num_batches)

    def state_dict(self) -> dict[str, int]:
        """A small JSON-able dict that :meth:`load_state_dict` restores exactly."""
        self._normalize()
        return {
            "epoch": self._epoch,
            "batch": self._batch,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "num_examples": self._num_examples,
        }

    def load_state_dict(self, state: Mapping[str, int] | int) -> None:
        """Restore a position from :meth:`state_dict` (or an integer :attr:`position`).

        Refuses a state saved for a different seed, batch size or data size,
        since resuming it would silently give different batches.
        """
        if not isinstance(state, Mapping):
            self.seek(state)  # type: ignore[arg-type]
            return
        for key, mine in (("seed", self.seed), ("batch_size", self.batch_size), ("num_examples", self._num_examples)):
            if key in state and int(state[key]) != mine:
                raise DataError(
                    f"cannot resume: the saved iterator state has {key}={state[key]} but this iterator has "
                    f"{key}={mine}; the batches would differ from the original run"
                )
        try:
            epoch, batch = int(state["epoch"]), int(state["batch"])
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"iterator state must have integer 'epoch' and 'batch' entries, got {dict(state)!r}") from err
        if epoch < 0 or batch < 0:
            raise DataError(f"iterator state has negative epoch/batch: {dict(state)!r}")
        self._epoch, self._batch = epoch, batch
        self._normalize()

    # ---- iteration ---------------------------------------------------------------
    def _make_batch(self, indices: list[int]) -> Batch:
        examples = [self.dataset[i] for i in indices]
        if self.collate_fn is not None:
            return self.collate_fn(examples)
        return collate(examples, self.batch_first, self.pad_value, y_pad_value=self.y_pad_value)

    def __iter__(self) -> Iterator[Batch]:
        self._normalize()
        epoch = self._epoch
        plan = self.batch_indices(epoch)
        while self._epoch == epoch and self._batch < len(plan):
            batch = self._make_batch(plan[self._batch])
            self._batch += 1
            yield batch
        if self._epoch == epoch and self._batch >= len(plan):
            self._epoch, self._batch = epoch + 1, 0
