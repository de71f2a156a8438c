"""Differentiable Neural Computer (Graves et al. 2016, Nature 538:471-476).

Equation references are to the paper's Methods section. Per time step:

1. the controller sees ``[x_t, r_{t-1}]`` and emits the interface vector
   ``xi_t`` ("Interface parameters"), split into read keys/strengths, write
   key/strength, erase and write vectors, free gates, allocation and write
   gates and read modes;
2. **dynamic memory allocation**: the usage ``u_t`` is updated from the last
   write weighting and the free gates times the last read weightings
   (retention ``psi_t``); the allocation weighting ``a_t`` favours the least
   used slots, found by sorting the usage ("Dynamic memory allocation");
3. **write**: ``w^w_t = g^w [g^a a_t + (1 - g^a) c^w_t]`` with ``c^w_t`` the
   content weighting of the write key ("Write weighting"), then erase/add;
4. **temporal links**: the precedence ``p_t`` and link matrix ``L_t`` record
   the order in which slots were written ("Temporal memory linkage");
5. **read**: each read head mixes backward ``b = L^T w^r``, content ``c^r``
   and forward ``f = L w^r`` weightings with its read modes ``pi``
   ("Read weighting") and reads ``r = M^T w^r``;
6. output ``y_t = W_y [h_t, r_t]`` (the paper's ``v_t + W_r r_t``).

Content addressing, memory read/write, the controller and the time loop are
shared with the NTM through :mod:`rnnspec.blocks.addressing`.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnspec.blocks.addressing import (
    ControllerState,
    InterfaceLayout,
    MemoryNetwork,
    content_weighting,
    make_controller,
    oneplus,
    read_memory,
    write_memory,
)

__all__ = [
    "DNC",
    "DNCState",
    "update_usage",
    "allocation_weighting",
    "write_weighting",
    "update_precedence",
    "update_link",
    "directional_weightings",
    "read_weighting",
]

#: Floor on the usage inside the allocation weighting, as in DeepMind's
#: reference implementation: it keeps the cumulative product away from exact
#: zeros (whose gradient is ill-conditioned) and breaks ties deterministically.
ALLOCATION_EPS = 1e-6


class DNCState(NamedTuple):
    """Everything the DNC carries from one step to the next.

    Attributes:
        memory: ``[B, N, W]``.
        read_vectors: ``[B, R, W]`` last read vectors.
        read_weights: ``[B, R, N]`` last read weightings.
        write_weights: ``[B, 1, N]`` last write weighting.
        usage: ``[B, N]`` usage vector ``u`` in [0, 1].
        precedence: ``[B, N]`` precedence weighting ``p``.
        link: ``[B, N, N]`` temporal link matrix ``L`` (``L[i, j]``: slot ``i``
            was written right after slot ``j``).
        controller: the controller's own state.
    """

    memory: Tensor
    read_vectors: Tensor
    read_weights: Tensor
    write_weights: Tensor
    usage: Tensor
    precedence: Tensor
    link: Tensor
    controller: ControllerState


# ---------------------------------------------------------------------------
# Dynamic memory allocation
# ---------------------------------------------------------------------------


def update_usage(usage: Tensor, write_weights: Tensor, read_weights: Tensor, free_gates: Tensor) -> Tensor:
    """Usage ``u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} o w^w_{t-1}) o psi_t``.

    The retention ``psi_t = prod_i (1 - f^i w^{r,i}_{t-1})`` says how much of
    each slot the free gates leave in use after the last reads.

    Args:
        usage: ``[B, N]`` previous usage.
        write_weights: ``[B, 1, N]`` previous write weighting.
        read_weights: ``[B, R, N]`` previous read weightings.
        free_gates: ``[B, R]`` in (0, 1): may the slots just read be reused?
    """
    written = write_weights.squeeze(1)
    usage = usage + written - usage * written
    retention = (1.0 - free_gates.unsqueeze(-1) * read_weights).prod(dim=1)
    return usage * retention


def allocation_weighting(usage: Tensor, eps: float = ALLOCATION_EPS) -> Tensor:
    """``a_t[phi_j] = (1 - u_t[phi_j]) prod_{i<j} u_t[phi_i]`` with ``phi`` the slots sorted by ascending usage.

    The least used slot gets the most weight; a fully used memory (all
    ``u = 1``) allocates nothing. The sort is treated as a constant
    permutation when differentiating (the paper: "we ignore these
    discontinuities"), so gradients flow through the usage values only.

    Args:
        usage: ``[B, N]``.

    Returns:
        ``[B, N]`` weighting with sum ``1 - prod_i u[i] <= 1``.
    """
    usage = eps + (1.0 - eps) * usage
    sorted_usage, free_list = torch.sort(usage, dim=-1)
    ones = torch.ones_like(sorted_usage[:, :1])
    exclusive_prod = torch.cumprod(torch.cat([ones, sorted_usage[:, :-1]], dim=-1), dim=-1)
    sorted_allocation = (1.0 - sorted_usage) * exclusive_prod
    return torch.zeros_like(usage).scatter(-1, free_list, sorted_allocation)


def write_weighting(allocation: Tensor, content: Tensor, allocation_gate: Tensor, write_gate: Tensor) -> Tensor:
    """``w^w_t = g^w [g^a a_t + (1 - g^a) c^w_t]`` ("Write weighting").

    Args:
        allocation: ``[B, N]``.
        content: ``[B, 1, N]`` write content weighting.
        allocation_gate, write_gate: ``[B, 1]`` in (0, 1).

    Returns:
        ``[B, 1, N]``, summing to at most 1.
    """
    g_a = allocation_gate.unsqueeze(-1)
    mixed = g_a * allocation.unsqueeze(1) + (1.0 - g_a) * content
    return write_gate.unsqueeze(-1) * mixed


# ---------------------------------------------------------------------------
# Temporal memory linkage
# ---------------------------------------------------------------------------


def update_precedence(precedence: Tensor, write_weights: Tensor) -> Tensor:
    """``p_t = (1 - sum_i w^w_t[i]) p_{t-1} + w^w_t``: where was the last write?

    Args:
        precedence: ``[B, N]``, ``p_0 = 0``.
        write_weights: ``[B, 1, N]``.
    """
    written = write_weights.squeeze(1)
    return (1.0 - written.sum(dim=-1, keepdim=True)) * precedence + written


def update_link(link: Tensor, precedence: Tensor, write_weights: Tensor) -> Tensor:
    """``L_t[i, j] = (1 - w^w[i] - w^w[j]) L_{t-1}[i, j] + w^w[i] p_{t-1}[j]``, ``L_t[i, i] = 0``.

    Args:
        link: ``[B, N, N]`` previous link matrix.
        precedence: ``[B, N]`` the *previous* precedence ``p_{t-1}``.
        write_weights: ``[B, 1, N]`` current write weighting.
    """
    written = write_weights.squeeze(1)
    w_i = written.unsqueeze(-1)  # [B, N, 1]
    w_j = written.unsqueeze(-2)  # [B, 1, N]
    link = (1.0 - w_i - w_j) * link + w_i * precedence.unsqueeze(-2)
    off_diagonal = 1.0 - torch.eye(link.shape[-1], dtype=link.dtype, device=link.device)
    return link * off_diagonal


def directional_weightings(link: Tensor, read_weights: Tensor) -> tuple[Tensor, Tensor]:
    """Forward ``f^i_t = L_t w^{r,i}_{t-1}`` and backward ``b^i_t = L_t^T w^{r,i}_{t-1}``.

    Args:
        link: ``[B, N, N]``.
        read_weights: ``[B, R, N]`` previous read weightings.

    Returns:
        ``(forward, backward)``, both ``[B, R, N]``.
    """
    forward = torch.einsum("bij,brj->bri", link, read_weights)
    backward = torch.einsum("bji,brj->bri", link, read_weights)
    return forward, backward


def read_weighting(backward: Tensor, content: Tensor, forward: Tensor, modes: Tensor) -> Tensor:
    """``w^{r,i}_t = pi^i[1] b^i + pi^i[2] c^{r,i} + pi^i[3] f^i`` ("Read weighting").

    ``modes`` is ``[B, R, 3]`` (a softmax over backward, content, forward).
    """
    return modes[..., 0:1] * backward + modes[..., 1:2] * content + modes[..., 2:3] * forward


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------


class DNC(MemoryNetwork):
    """Differentiable Neural Computer as a sequence-to-sequence ``nn.Module``.

    Args:
        input_size: features of ``x_t``.
        output_size: features of ``y_t`` (raw logits/values).
        controller_hidden: width of the controller output.
        memory_slots: ``N``.
        memory_width: ``W``.
        read_heads: ``R`` (there is always one write head, as in the paper).
        controller: ``"lstm"`` (the paper's), ``"feedforward"``, or a module
            satisfying :class:`rnnspec.blocks.addressing.Controller`.
        batch_first: inputs/outputs as ``[B, T, F]`` instead of ``[T, B, F]``.

    The initial state is all zeros, as in the paper: empty memory, no usage,
    no links, no previous reads or writes.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        controller_hidden: int = 64,
        memory_slots: int = 16,
        memory_width: int = 16,
        read_heads: int = 4,
        controller: str | nn.Module = "lstm",
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        if min(input_size, output_size, controller_hidden, memory_slots, memory_width, read_heads) < 1:
            raise ValueError("sizes must be positive")
        self.input_size = input_size
        self.output_size = output_size
        self.memory_slots = memory_slots
        self.memory_width = memory_width
        self.read_heads = read_heads
        self.batch_first = batch_first

        self.controller = make_controller(controller, input_size + read_heads * memory_width, controller_hidden)
        hidden = self.controller.output_size
        r, w = read_heads, memory_width
        self.layout = InterfaceLayout(
            {
                "read_keys": r * w,
                "read_strengths": r,
                "write_key": w,
                "write_strength": 1,
                "erase": w,
                "write_vector": w,
                "free_gates": r,
                "allocation_gate": 1,
                "write_gate": 1,
                "read_modes": 3 * r,
            }
        )
        self.interface = nn.Linear(hidden, self.layout.size)
        self.output = nn.Linear(hidden + r * w, output_size)

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> DNCState:
        """All-zero state (Methods: ``u_0 = 0``, ``p_0 = 0``, ``L_0 = 0``, ``w_0 = 0``)."""
        device, dtype = self._resolve(device, dtype)
        b, n, w, r = batch_size, self.memory_slots, self.memory_width, self.read_heads

        def zeros(*shape: int) -> Tensor:
            return torch.zeros(*shape, device=device, dtype=dtype)

        return DNCState(
            memory=zeros(b, n, w),
            read_vectors=zeros(b, r, w),
            read_weights=zeros(b, r, n),
            write_weights=zeros(b, 1, n),
            usage=zeros(b, n),
            precedence=zeros(b, n),
            link=zeros(b, n, n),
            controller=self.controller.initial_state(b, device, dtype),
        )

    def _interface(self, hidden: Tensor) -> dict[str, Tensor]:
        """Split and squash ``xi_t`` into the interface parameters (Methods, "Interface parameters")."""
        b, r, w = hidden.shape[0], self.read_heads, self.memory_width
        raw = self.layout.split(self.interface(hidden))
        return {
            "read_keys": raw["read_keys"].view(b, r, w),
            "read_strengths": oneplus(raw["read_strengths"]),
            "write_key": raw["write_key"].view(b, 1, w),
            "write_strength": oneplus(raw["write_strength"]),
            "erase": torch.sigmoid(raw["erase"]).view(b, 1, w),
            "write_vector": raw["write_vector"].view(b, 1, w),
            "free_gates": torch.sigmoid(raw["free_gates"]),
            "allocation_gate": torch.sigmoid(raw["allocation_gate"]),
            "write_gate": torch.sigmoid(raw["write_gate"]),
            "read_modes": F.softmax(raw["read_modes"].view(b, r, 3), dim=-1),
        }

    def step(self, x: Tensor, state: DNCState) -> tuple[Tensor, DNCState]:
        """Advance one time step: ``x`` is ``[B, input_size]``."""
        batch = x.shape[0]
        controller_input = torch.cat([x, state.read_vectors.reshape(batch, -1)], dim=-1)
        hidden, controller_state = self.controller(controller_input, state.controller)
        xi = self._interface(hidden)

        # Dynamic memory allocation and write weighting.
        usage = update_usage(state.usage, state.write_weights, state.read_weights, xi["free_gates"])
        allocation = allocation_weighting(usage)
        write_content = content_weighting(state.memory, xi["write_key"], xi["write_strength"])
        write_weights = write_weighting(allocation, write_content, xi["allocation_gate"], xi["write_gate"])
        memory = write_memory(state.memory, write_weights, xi["erase"], xi["write_vector"])

        # Temporal links (the link update uses the previous precedence).
        link = update_link(state.link, state.precedence, write_weights)
        precedence = update_precedence(state.precedence, write_weights)

        # Read.
        forward, backward = directional_weightings(link, state.read_weights)
        read_content = content_weighting(memory, xi["read_keys"], xi["read_strengths"])
        read_weights = read_weighting(backward, read_content, forward, xi["read_modes"])
        read_vectors = read_memory(memory, read_weights)

        y = self.output(torch.cat([hidden, read_vectors.reshape(batch, -1)], dim=-1))
        new_state = DNCState(
            memory, read_vectors, read_weights, write_weights, usage, precedence, link, controller_state
        )
        return y, new_state
