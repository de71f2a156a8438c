"""Shared machinery of the memory-augmented networks (NTM and DNC).

Both the Neural Turing Machine (Graves, Wayne & Danihelka 2014) and the
Differentiable Neural Computer (Graves et al. 2016) are a controller network
wired to an external memory matrix ``M`` of shape ``[N slots, W width]``
through *heads* that produce soft weightings over the slots. Everything the
two models have in common lives here, so that :mod:`rnnspec.blocks.ntm` and
:mod:`rnnspec.blocks.dnc` only hold what is specific to each paper:

* content-based addressing (NTM eqs. 5-6, DNC "content-based addressing",
  function ``C(M, k, beta)``),
* the ``oneplus`` non-linearity for strengths/sharpening (DNC Methods; NTM's
  gamma >= 1),
* memory read ``r = M^T w`` (NTM eq. 2, DNC "read vectors") and the
  erase-then-add write (NTM eqs. 3-4, DNC "memory write"),
* the controller interface (a tiny protocol so that the lead can swap the
  ``torch.nn.LSTMCell`` for rnnspec cells later),
* the interface-vector splitter and the time-unrolling base class, so that
  statefulness across truncated-BPTT chunks is implemented once.

Shape conventions: ``B`` batch, ``H`` heads, ``N`` memory slots, ``W`` memory
width (the NTM paper calls it ``M``). Weightings are ``[B, H, N]``, memories
``[B, N, W]``, keys ``[B, H, W]``, per-head scalars ``[B, H]``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Default epsilon of the norms and normalisations. Small enough not to bias
#: the weightings visibly, large enough that ``1/eps`` stays far from float32
#: overflow and that gradients of norms at the zero vector stay finite.
EPS = 1e-6

__all__ = [
    "EPS",
    "oneplus",
    "cosine_similarity",
    "content_weighting",
    "read_memory",
    "write_memory",
    "InterfaceLayout",
    "ControllerState",
    "Controller",
    "LSTMController",
    "FeedforwardController",
    "make_controller",
    "detach_state",
    "MemoryNetwork",
]


# ---------------------------------------------------------------------------
# Addressing primitives
# ---------------------------------------------------------------------------


def oneplus(x: Tensor) -> Tensor:
    """``1 + softplus(x)``: maps R onto [1, inf).

    DNC Methods ("oneplus") uses it for key strengths; the NTM needs the same
    range for its sharpening exponent gamma >= 1 (NTM eq. 9). Softplus instead
    of ``exp`` keeps the gradient bounded for large activations.
    """
    return 1.0 + F.softplus(x)


def _safe_norm(x: Tensor, eps: float) -> Tensor:
    """Euclidean norm over the last dim whose gradient is finite at 0.

    ``torch.linalg.vector_norm`` has an undefined derivative at the zero vector
    (memories start at, or are erased to, zero), so we use
    ``sqrt(|x|^2 + eps^2)``, which is smooth everywhere.
    """
    return torch.sqrt((x * x).sum(dim=-1) + eps * eps)


def cosine_similarity(keys: Tensor, memory: Tensor, eps: float = EPS) -> Tensor:
    """Cosine similarity ``K[u, v]`` of every key with every memory row (NTM eq. 6).

    Args:
        keys: ``[B, H, W]`` one key per head.
        memory: ``[B, N, W]``.
        eps: stabiliser of both norms; a zero key or zero row gives similarity 0
            (not NaN).

    Returns:
        ``[B, H, N]`` similarities in [-1, 1].
    """
    dot = torch.einsum("bhw,bnw->bhn", keys, memory)
    key_norm = _safe_norm(keys, eps)  # [B, H]
    mem_norm = _safe_norm(memory, eps)  # [B, N]
    return dot / (key_norm.unsqueeze(-1) * mem_norm.unsqueeze(-2))


def content_weighting(memory: Tensor, keys: Tensor, strengths: Tensor, eps: float = EPS) -> Tensor:
    """Content-based weighting ``softmax_i(beta * K[k, M_i])`` (NTM eq. 5; DNC ``C(M, k, beta)``).

    Args:
        memory: ``[B, N, W]``.
        keys: ``[B, H, W]``.
        strengths: ``[B, H]`` key strengths beta >= 0 (larger = sharper focus).

    Returns:
        ``[B, H, N]`` weightings; each row sums to 1. ``softmax`` subtracts the
        maximum internally, so large strengths cannot overflow.
    """
    similarity = cosine_similarity(keys, memory, eps)
    return torch.softmax(strengths.unsqueeze(-1) * similarity, dim=-1)


def read_memory(memory: Tensor, weights: Tensor) -> Tensor:
    """Read vectors ``r = sum_i w(i) M(i)`` (NTM eq. 2; DNC ``r = M^T w``).

    Args:
        memory: ``[B, N, W]``.
        weights: ``[B, H, N]`` one weighting per read head.

    Returns:
        ``[B, H, W]``.
    """
    return torch.einsum("bhn,bnw->bhw", weights, memory)


def write_memory(memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """Erase then add (NTM eqs. 3-4; DNC ``M = M o (E - w e^T) + w v^T``).

    With several write heads the erasures are multiplicative and the additions
    additive, so the order of the heads does not matter (NTM §3.2); we apply
    all heads at once.

    Args:
        memory: ``[B, N, W]``.
        weights: ``[B, H, N]`` write weightings.
        erase: ``[B, H, W]`` erase vectors in (0, 1).
        add: ``[B, H, W]`` add (write) vectors.

    Returns:
        The new memory ``[B, N, W]``.
    """
    keep = 1.0 - weights.unsqueeze(-1) * erase.unsqueeze(-2)  # [B, H, N, W]
    memory = memory * keep.prod(dim=1)
    return memory + torch.einsum("bhn,bhw->bnw", weights, add)


# ---------------------------------------------------------------------------
# Interface vector
# ---------------------------------------------------------------------------


class InterfaceLayout:
    """Named slices of a flat interface vector (DNC's xi_t; the NTM's head outputs).

    Both papers emit every head parameter from one linear map of the
    controller output, then cut the vector into named pieces. This class does
    the bookkeeping once::

        layout = InterfaceLayout({"key": 16, "strength": 1})
        parts = layout.split(vector)  # {"key": [..., 16], "strength": [..., 1]}
    """

    def __init__(self, sizes: Mapping[str, int]) -> None:
        if any(size <= 0 for size in sizes.values()):
            raise ValueError(f"interface sizes must be positive, got {dict(sizes)}")
        self.sizes: dict[str, int] = dict(sizes)

    @property
    def size(self) -> int:
        """Total width of the flat vector."""
        return sum(self.sizes.values())

    def split(self, vector: Tensor) -> dict[str, Tensor]:
        """Cut ``vector[..., size]`` into the named pieces, in declaration order."""
        if vector.shape[-1] != self.size:
            raise ValueError(f"interface vector has width {vector.shape[-1]}, expected {self.size}")
        pieces = torch.split(vector, list(self.sizes.values()), dim=-1)
        return dict(zip(self.sizes, pieces))


# ---------------------------------------------------------------------------
# Controllers
# ---------------------------------------------------------------------------

#: A controller's recurrent state: a (possibly empty) tuple of tensors.
ControllerState = tuple[Tensor, ...]


@runtime_checkable
class Controller(Protocol):
    """What NTM/DNC need from a controller: ``controller(input, state) -> (output, state)``.

    Any ``nn.Module`` with these three members can be plugged in (this is the
    seam where rnnspec cells will replace ``torch.nn.LSTMCell``).
    """

    output_size: int

    def __call__(self, input: Tensor, state: ControllerState) -> tuple[Tensor, ControllerState]: ...

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> ControllerState: ...


class LSTMController(nn.Module):
    """Recurrent controller: one ``torch.nn.LSTMCell`` (NTM §4 "LSTM controller")."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(input_size, hidden_size)
        self.output_size = hidden_size

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> ControllerState:
        zeros = torch.zeros(batch_size, self.output_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def forward(self, input: Tensor, state: ControllerState) -> tuple[Tensor, ControllerState]:
        h, c = self.cell(input, (state[0], state[1]))
        return h, (h, c)


class FeedforwardController(nn.Module):
    """Memoryless controller ``tanh(W x + b)`` (NTM §4 "feedforward controller").

    All recurrence then has to go through the memory, which makes the
    network's behaviour easier to read (NTM §3.4) and its state empty.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, hidden_size)
        self.output_size = hidden_size

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> ControllerState:
        return ()

    def forward(self, input: Tensor, state: ControllerState) -> tuple[Tensor, ControllerState]:
        return torch.tanh(self.linear(input)), ()


def make_controller(kind: str | nn.Module, input_size: int, hidden_size: int) -> nn.Module:
    """Build the controller named by ``kind`` (``"lstm"`` or ``"feedforward"``).

    A ready-made module satisfying :class:`Controller` is returned unchanged,
    which is how custom (e.g. rnnspec-compiled) cells are plugged in; its
    ``output_size`` then replaces ``hidden_size``.
    """
    if isinstance(kind, nn.Module):
        if not isinstance(kind, Controller):
            raise TypeError("a controller module needs output_size, initial_state() and forward(input, state)")
        return kind
    if kind == "lstm":
        return LSTMController(input_size, hidden_size)
    if kind == "feedforward":
        return FeedforwardController(input_size, hidden_size)
    raise ValueError(f"unknown controller {kind!r}; expected 'lstm' or 'feedforward'")


# ---------------------------------------------------------------------------
# State handling and time unrolling
# ---------------------------------------------------------------------------

StateT = TypeVar("StateT")


def detach_state(state: StateT) -> StateT:
    """Detach every tensor of a (nested) state tuple, keeping its type.

    This is what truncated BPTT needs between chunks: the values carry over,
    the graph does not.
    """
    if isinstance(state, Tensor):
        return state.detach()  # type: ignore[return-value]
    if isinstance(state, tuple):
        items = [detach_state(item) for item in state]
        if hasattr(state, "_fields"):  # NamedTuple
            return type(state)(*items)  # type: ignore[return-value]
        return tuple(items)  # type: ignore[return-value]
    return state


class MemoryNetwork(nn.Module):
    """Base class: unrolls a per-step ``step(x_t, state) -> (y_t, state)`` over time.

    Subclasses (NTM, DNC) implement :meth:`step` and :meth:`initial_state`.
    :meth:`forward` accepts time-major ``[T, B, I]`` (or batch-major when
    ``batch_first``) input and an optional state; it returns the outputs and
    the final state, which can be fed back in to continue the sequence, so
    running a sequence in chunks equals running it whole.
    """

    input_size: int
    output_size: int
    batch_first: bool

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> Any:
        raise NotImplementedError

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise NotImplementedError

    def _param_like(self) -> Tensor:
        return next(self.parameters())

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Run the whole sequence.

        Args:
            x: ``[T, B, input_size]`` (``[B, T, input_size]`` if ``batch_first``).
            state: the state returned by a previous call, or ``None`` for the
                initial state.

        Returns:
            ``(y, state)`` with ``y`` shaped like ``x`` but with ``output_size``
            features.
        """
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"expected a 3-d input with {self.input_size} features, got shape {tuple(x.shape)}")
        if self.batch_first:
            x = x.transpose(0, 1)
        if state is None:
            state = self.initial_state(x.shape[1], device=x.device, dtype=x.dtype)
        outputs = []
        for x_t in x.unbind(0):
            y_t, state = self.step(x_t, state)
            outputs.append(y_t)
        y = torch.stack(outputs, dim=0)
        if self.batch_first:
            y = y.transpose(0, 1)
        return y, state

    def _resolve(self, device: torch.device | None, dtype: torch.dtype | None) -> tuple[torch.device, torch.dtype]:
        reference = self._param_like()
        return (device or reference.device, dtype or reference.dtype)

