"""Neural Turing Machine (Graves, Wayne & Danihelka 2014, arXiv:1410.5401).

A controller (LSTM or feedforward) reads from and writes to an ``N x M``
memory matrix through read and write heads. Each head computes its weighting
over the slots in four differentiable stages (NTM §3.3, Figure 2):

1. content addressing ``w^c = softmax(beta * cos(k, M_i))``      (eqs. 5-6)
2. interpolation with the previous weighting via the gate ``g``   (eq. 7)
3. circular convolution with the shift distribution ``s``         (eq. 8)
4. sharpening ``w ∝ w~^gamma`` with ``gamma >= 1``                (eq. 9)

Write heads then erase and add (eqs. 3-4), read heads return ``M^T w``
(eq. 2). The shared pieces (content addressing, read/write, controllers,
unrolling over time) are in :mod:`rnnspec.blocks.addressing`; this module
only holds what is particular to the NTM: location-based addressing and the
per-step wiring.

Order of operations within one step (the paper leaves it open): the
controller sees ``[x_t, r_{t-1}]``; the write heads write; the read heads
then read the updated memory; the output is ``W_y [h_t, r_t]``. This is the
order the DNC paper fixes, so both blocks behave alike.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnspec.blocks.addressing import (
    EPS,
    ControllerState,
    InterfaceLayout,
    MemoryNetwork,
    content_weighting,
    make_controller,
    oneplus,
    read_memory,
    write_memory,
)

__all__ = ["NTM", "NTMState", "interpolate", "circular_shift", "sharpen", "ntm_addressing"]


class NTMState(NamedTuple):
    """Everything the NTM carries from one step to the next.

    Attributes:
        memory: ``[B, N, M]`` memory matrix.
        read_vectors: ``[B, R, M]`` last read vectors (fed to the controller).
        read_weights: ``[B, R, N]`` last read-head weightings (for eq. 7).
        write_weights: ``[B, W, N]`` last write-head weightings (for eq. 7).
        controller: the controller's own state (``(h, c)`` for an LSTM, ``()``
            for a feedforward controller).
    """

    memory: Tensor
    read_vectors: Tensor
    read_weights: Tensor
    write_weights: Tensor
    controller: ControllerState


# ---------------------------------------------------------------------------
# Location-based addressing (NTM §3.3.2)
# ---------------------------------------------------------------------------


def interpolate(content: Tensor, previous: Tensor, gate: Tensor) -> Tensor:
    """Interpolation gate: ``w^g = g w^c + (1 - g) w_{t-1}`` (eq. 7).

    ``gate`` is ``[B, H]`` in (0, 1); g -> 0 ignores the content entirely and
    keeps the previous focus, which is what lets a head iterate.
    """
    g = gate.unsqueeze(-1)
    return g * content + (1.0 - g) * previous


def circular_shift(weights: Tensor, shift: Tensor) -> Tensor:
    """Circular convolution ``w~(i) = sum_j w(j) s(i - j)`` (eq. 8).

    Args:
        weights: ``[B, H, N]``.
        shift: ``[B, H, 2S+1]`` a distribution over the offsets ``-S..S``
            (index ``k`` is offset ``k - S``).
    """
    span = shift.shape[-1] // 2
    rolled = torch.stack([torch.roll(weights, offset, dims=-1) for offset in range(-span, span + 1)], dim=-1)
    return (rolled * shift.unsqueeze(-2)).sum(dim=-1)


def sharpen(weights: Tensor, gamma: Tensor, eps: float = EPS) -> Tensor:
    """Sharpening ``w(i) = w~(i)^gamma / sum_j w~(j)^gamma`` (eq. 9).

    Computed as ``softmax(gamma * log(w~ + eps))``, which is the same quantity
    but cannot underflow to ``0/0`` for large gamma, and whose gradient
    w.r.t. gamma stays finite where ``w~`` is 0 (the naive ``w~**gamma`` gives
    ``0 * log 0 = NaN`` there). This is the usual source of NaNs in NTMs.
    """
    return torch.softmax(gamma.unsqueeze(-1) * torch.log(weights + eps), dim=-1)


def ntm_addressing(
    memory: Tensor,
    previous: Tensor,
    key: Tensor,
    strength: Tensor,
    gate: Tensor,
    shift: Tensor,
    gamma: Tensor,
    eps: float = EPS,
) -> Tensor:
    """The full addressing pipeline of NTM Figure 2 (eqs. 5-9) for ``H`` heads at once.

    Args are already squashed into their ranges: ``strength >= 0``,
    ``gate`` in (0, 1), ``shift`` a distribution, ``gamma >= 1``.
    """
    content = content_weighting(memory, key, strength, eps)
    gated = interpolate(content, previous, gate)
    shifted = circular_shift(gated, shift)
    return sharpen(shifted, gamma, eps)


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------


class NTM(MemoryNetwork):
    """Neural Turing Machine as a sequence-to-sequence ``nn.Module``.

    Args:
        input_size: features of ``x_t``.
        output_size: features of ``y_t`` (raw; apply your own sigmoid/softmax).
        controller: ``"lstm"``, ``"feedforward"`` or a module satisfying
            :class:`rnnspec.blocks.addressing.Controller`.
        controller_hidden: width of the controller output.
        memory_slots: ``N``, number of memory rows.
        memory_width: ``M``, width of a memory row.
        read_heads: number of read heads ``R``.
        write_heads: number of write heads.
        shift_range: ``S``; heads can move by ``-S..S`` slots per step (eq. 8).
        memory_init: constant initial value of every memory cell. A small
            constant rather than zeros or noise converges fastest (Collier &
            Beel 2018) and keeps the initial content weighting uniform.
        batch_first: inputs/outputs as ``[B, T, F]`` instead of ``[T, B, F]``.

    All heads start focused on slot 0, which breaks the symmetry that a
    uniform weighting would otherwise keep under shifting.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        controller: str | nn.Module = "lstm",
        controller_hidden: int = 100,
        memory_slots: int = 128,
        memory_width: int = 20,
        read_heads: int = 1,
        write_heads: int = 1,
        shift_range: int = 1,
        memory_init: float = 1e-6,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        if min(input_size, output_size, controller_hidden, memory_slots, memory_width) < 1:
            raise ValueError("sizes must be positive")
        if read_heads < 1 or write_heads < 1 or shift_range < 0:
            raise ValueError("need read_heads >= 1, write_heads >= 1 and shift_range >= 0")
        self.input_size = input_size
        self.output_size = output_size
        self.memory_slots = memory_slots
        self.memory_width = memory_width
        self.read_heads = read_heads
        self.write_heads = write_heads
        self.shift_range = shift_range
        self.memory_init = memory_init
        self.batch_first = batch_first

        self.controller = make_controller(controller, input_size + read_heads * memory_width, controller_hidden)
        hidden = self.controller.output_size
        shifts = 2 * shift_range + 1
        addressing = {"key": memory_width, "strength": 1, "gate": 1, "shift": shifts, "gamma": 1}
        self.read_layout = InterfaceLayout(addressing)
        self.write_layout = InterfaceLayout({**addressing, "erase": memory_width, "add": memory_width})
        self.read_interface = nn.Linear(hidden, read_heads * self.read_layout.size)
        self.write_interface = nn.Linear(hidden, write_heads * self.write_layout.size)
        self.output = nn.Linear(hidden + read_heads * memory_width, output_size)

    # -- state ---------------------------------------------------------------

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> NTMState:
        """Memory filled with ``memory_init``, every head focused on slot 0."""
        device, dtype = self._resolve(device, dtype)
        n, m = self.memory_slots, self.memory_width
        memory = torch.full((batch_size, n, m), self.memory_init, device=device, dtype=dtype)
        focus = torch.zeros(n, device=device, dtype=dtype)
        focus[0] = 1.0
        read_weights = focus.expand(batch_size, self.read_heads, n).clone()
        write_weights = focus.expand(batch_size, self.write_heads, n).clone()
        return NTMState(
            memory=memory,
            read_vectors=read_memory(memory, read_weights),
            read_weights=read_weights,
            write_weights=write_weights,
            controller=self.controller.initial_state(batch_size, device, dtype),
        )

    # -- one step ------------------------------------------------------------

    @staticmethod
    def _squash(raw: dict[str, Tensor]) -> dict[str, Tensor]:
        """Map raw head outputs into their ranges (NTM §3.3)."""
        out = {
            "key": torch.tanh(raw["key"]),
            "strength": F.softplus(raw["strength"].squeeze(-1)),  # beta >= 0
            "gate": torch.sigmoid(raw["gate"].squeeze(-1)),  # g in (0, 1)
            "shift": torch.softmax(raw["shift"], dim=-1),  # distribution over offsets
            "gamma": oneplus(raw["gamma"].squeeze(-1)),  # gamma >= 1
        }
        if "erase" in raw:
            out["erase"] = torch.sigmoid(raw["erase"])  # e in (0, 1)
            out["add"] = torch.tanh(raw["add"])
        return out

    def _heads(self, interface: nn.Linear, layout: InterfaceLayout, hidden: Tensor, heads: int) -> dict[str, Tensor]:
        raw = interface(hidden).view(hidden.shape[0], heads, layout.size)
        return self._squash(layout.split(raw))

    def _address(self, memory: Tensor, previous: Tensor, p: dict[str, Tensor]) -> Tensor:
        return ntm_addressing(memory, previous, p["key"], p["strength"], p["gate"], p["shift"], p["gamma"])

    def step(self, x: Tensor, state: NTMState) -> tuple[Tensor, NTMState]:
        """Advance one time step: ``x`` is ``[B, input_size]``."""
        batch = x.shape[0]
        controller_input = torch.cat([x, state.read_vectors.reshape(batch, -1)], dim=-1)
        hidden, controller_state = self.controller(controller_input, state.controller)

        w = self._heads(self.write_interface, self.write_layout, hidden, self.write_heads)
        write_weights = self._address(state.memory, state.write_weights, w)
        memory = write_memory(state.memory, write_weights, w["erase"], w["add"])

        r = self._heads(self.read_interface, self.read_layout, hidden, self.read_heads)
        read_weights = self._address(memory, state.read_weights, r)
        read_vectors = read_memory(memory, read_weights)

        y = self.output(torch.cat([hidden, read_vectors.reshape(batch, -1)], dim=-1))
        return y, NTMState(memory, read_vectors, read_weights, write_weights, controller_state)
