"""Neural network pushdown automaton (NNPDA): a controller with a continuous stack.

Papers:

* Das, Giles & Sun (1992), "Learning context-free grammars: capabilities and
  limitations of a recurrent neural network with an external stack memory"
  (CogSci 1992), and Sun, Giles, Chen & Lee (1993), "The neural network
  pushdown automaton: model, stack and learning simulations" (UMIACS-TR-93-77):
  a recurrent controller reads the input symbol and the top of an external
  *continuous* stack and emits an analog action ``a_t in [-1, 1]``: ``a > 0``
  pushes an element of thickness ``a``, ``a < 0`` pops a total thickness
  ``|a|`` from the top (possibly part of one element, or several thin ones),
  and the reading is the top of the stack down to a depth of one, each element
  weighted by how much of its thickness lies within that unit.
* Grefenstette, Hermann, Suleyman & Blunsom (2015), "Learning to transduce
  with unbounded memory" (NIPS 2015), §3.1, formalise the same continuous
  stack with a push strength ``d_t`` and a pop strength ``u_t`` in (0, 1)
  that can both act in one step. Their update equations are what this
  module implements, with the stack stored top first:

  ``V_t[i] = V_{t-1}[i]`` for the old elements, ``V_t[t] = v_t``          (eq. 1)
  ``s_t[i] = max(0, s_{t-1}[i] - max(0, u_t - sum_{j above i} s_{t-1}[j]))``
  for the old elements, ``s_t[t] = d_t``                                  (eq. 2)
  ``r_t = sum_i min(s_t[i], max(0, 1 - sum_{j above i} s_t[j])) V_t[i]``  (eq. 3)

  i.e. pop first (eq. 2 eats ``u_t`` of thickness from the top down), then
  push ``v_t`` with thickness ``d_t`` (eqs. 1-2), then read the top unit
  (eq. 3).

Actions (the ``action`` field): ``push_pop`` (the default) is Grefenstette
et al.'s §3.2 pair ``d_t = sigmoid(W_d h_t + b_d)``, ``u_t = sigmoid(W_u h_t
+ b_u)``; ``signed`` is the NNPDA's single analog action ``a_t = tanh(w_a .
h_t + b_a)``, ``d_t = max(0, a_t)``, ``u_t = max(0, -a_t)`` (a push or a pop
per step, never both, as in Sun et al.). ``signed`` has no gradient towards
pushing wherever ``a_t < 0`` (and none towards popping where ``a_t > 0``):
a net that drifts to popping on every input cannot learn back (seen on
a^n b^n), which is why ``push_pop`` is the default. The pushed vector is
``v_t = tanh(W_v h_t + b_v)`` in both (the NNPDA pushes one of a few
discrete symbols; a learned vector subsumes that).

Wiring of one step (as the NNPDA: the controller sees the input and the
stack reading): ``h_t = controller([x_t, r_{t-1}])``; the actions and
``v_t`` come from ``h_t``; the stack is updated and read (eqs. 1-3); the
output is ``y_t = W_y [h_t, r_t]``, so the read-out sees the stack after the
step (whether it is empty, what is on top), which an accept/reject decision
at the end of a string needs (Grefenstette et al. emit the output from the
controller alone; the NTM and DNC blocks here read their memory this way
too). ``r_0 = 0`` (empty stack).

Bounded depth: the stack is a fixed array of ``stack_depth`` elements. Every
step adds one element (eq. 1 appends ``v_t`` even when ``d_t = 0``), so the
array holds the elements of the last ``stack_depth`` steps; at overflow the oldest,
bottom-most element falls off, and its remaining thickness is added to the
state's ``overflow`` counter. For a sequence of at most ``stack_depth`` steps (from
the initial state) nothing falls off and the result equals the unbounded
stack of the paper exactly; ``overflow > 0`` says where it did not.
"""
from __future__ import annotations

from typing import NamedTuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnspec.blocks.addressing import ControllerState, MemoryNetwork, make_controller

__all__ = ["NNPDA", "NNPDAState", "STACK_ACTIONS", "stack_pop", "stack_push", "stack_read", "stack_step"]

#: The action parameterisations: NNPDA's one signed action, or separate push and pop strengths.
STACK_ACTIONS = ("push_pop", "signed")


def _stack_above(strengths: Tensor) -> Tensor:
    """``sum_{j above i} s[j]`` for every element ``i`` (top first: an exclusive cumulative sum)."""
    return torch.cumsum(strengths, dim=-1) - strengths


def stack_pop(strengths: Tensor, pop: Tensor) -> Tensor:
    """Remove a total thickness ``pop`` from the top down (eq. 2, old elements).

    Args:
        strengths: ``[B, D]`` thickness of each element, index 0 the top.
        pop: ``[B]`` pop strength ``u_t >= 0``.
    """
    return F.relu(strengths - F.relu(pop.unsqueeze(-1) - _stack_above(strengths)))


def stack_push(values: Tensor, strengths: Tensor, vector: Tensor, push: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Put ``vector`` on top with thickness ``push`` (eqs. 1-2, new element).

    The array keeps its size: everything moves one place down and the bottom
    element falls off.

    Returns:
        ``(values [B, D, W], strengths [B, D], dropped [B])``, ``dropped`` the
        thickness of the element that fell off (0 while the stack has room).
    """
    values = torch.cat([vector.unsqueeze(1), values[:, :-1]], dim=1)
    dropped = strengths[:, -1]
    strengths = torch.cat([push.unsqueeze(-1), strengths[:, :-1]], dim=1)
    return values, strengths, dropped


def stack_read(values: Tensor, strengths: Tensor) -> Tensor:
    """The top unit of thickness, each element weighted by its share of it (eq. 3).

    Returns ``[B, W]``; an empty stack reads 0.
    """
    weights = torch.minimum(strengths, F.relu(1.0 - _stack_above(strengths)))
    return torch.einsum("bd,bdw->bw", weights, values)


def stack_step(
    values: Tensor, strengths: Tensor, push: Tensor, pop: Tensor, vector: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One stack update: pop, then push, then read (eqs. 1-3).

    Returns ``(values, strengths, read, dropped)``.
    """
    strengths = stack_pop(strengths, pop)
    values, strengths, dropped = stack_push(values, strengths, vector, push)
    return values, strengths, stack_read(values, strengths), dropped


class NNPDAState(NamedTuple):
    """What the NNPDA carries from one step to the next.

    Attributes:
        values: ``[B, D, W]`` stack elements, index 0 the top.
        strengths: ``[B, D]`` their thicknesses.
        read: ``[B, W]`` the last stack reading ``r_{t-1}`` (fed to the controller).
        overflow: ``[B]`` total thickness that fell off the bottom (0 when the depth sufficed).
        controller: the controller's own state.
    """

    values: Tensor
    strengths: Tensor
    read: Tensor
    overflow: Tensor
    controller: ControllerState


class NNPDA(MemoryNetwork):
    """A controller with a continuous stack, as a sequence-to-sequence module.

    Args:
        input_size: features of ``x_t``.
        output_size: features of ``y_t`` (raw).
        controller: ``"lstm"``, ``"feedforward"`` or a module satisfying
            :class:`rnnspec.blocks.addressing.Controller` (its input is
            ``input_size + stack_width`` wide).
        controller_hidden: width of the controller output ``h_t``.
        stack_width: ``W``, width of a stack element.
        stack_depth: ``D``, how many elements the stack array holds (see the
            module doc: exact for sequences of up to ``D`` steps).
        action: ``"signed"`` (NNPDA) or ``"push_pop"`` (Grefenstette et al.).
        batch_first: ``[B, T, F]`` instead of ``[T, B, F]``.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        controller: Union[str, nn.Module] = "lstm",
        controller_hidden: int = 32,
        stack_width: int = 8,
        stack_depth: int = 64,
        action: str = "push_pop",
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        if min(input_size, output_size, controller_hidden, stack_width, stack_depth) < 1:
            raise ValueError("sizes must be positive")
        if action not in STACK_ACTIONS:
            raise ValueError(f"action must be one of {', '.join(STACK_ACTIONS)}, got {action!r}")
        self.input_size = input_size
        self.output_size = output_size
        self.stack_width = stack_width
        self.stack_depth = stack_depth
        self.action = action
        self.batch_first = batch_first
        self.controller = make_controller(controller, input_size + stack_width, controller_hidden)
        hidden = self.controller.output_size
        self.actions = nn.Linear(hidden, 1 if action == "signed" else 2)
        self.push_vector = nn.Linear(hidden, stack_width)
        self.output = nn.Linear(hidden + stack_width, output_size)

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> NNPDAState:
        """An empty stack (every thickness 0) and the controller's initial state."""
        device, dtype = self._resolve(device, dtype)
        return NNPDAState(
            values=torch.zeros(batch_size, self.stack_depth, self.stack_width, device=device, dtype=dtype),
            strengths=torch.zeros(batch_size, self.stack_depth, device=device, dtype=dtype),
            read=torch.zeros(batch_size, self.stack_width, device=device, dtype=dtype),
            overflow=torch.zeros(batch_size, device=device, dtype=dtype),
            controller=self.controller.initial_state(batch_size, device, dtype),
        )

    def push_pop(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """The push and pop strengths ``(d_t, u_t)``, each ``[B]``, from the controller output."""
        raw = self.actions(hidden)
        if self.action == "signed":
            a = torch.tanh(raw[:, 0])
            return F.relu(a), F.relu(-a)
        return torch.sigmoid(raw[:, 0]), torch.sigmoid(raw[:, 1])

    def step(self, x: Tensor, state: NNPDAState) -> tuple[Tensor, NNPDAState]:
        """Advance one time step: ``x`` is ``[B, input_size]``."""
        hidden, controller_state = self.controller(torch.cat([x, state.read], dim=-1), state.controller)
        push, pop = self.push_pop(hidden)
        vector = torch.tanh(self.push_vector(hidden))
        values, strengths, read, dropped = stack_step(state.values, state.strengths, push, pop, vector)
        y = self.output(torch.cat([hidden, read], dim=-1))
        return y, NNPDAState(values, strengths, read, state.overflow + dropped, controller_state)
