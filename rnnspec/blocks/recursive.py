"""Recursive (tree-structured) neural network read off a bracketed token
sequence by a batched shift-reduce machine.

A recursive network (Goller & Küchler 1996, "Learning task-dependent
distributed representations by backpropagation through structure"; Socher
et al. 2011) gives every node of a tree a vector computed from its
children's vectors by one shared composition function, leaves taking their
input's embedding.  The gradient flows back through the tree the way BPTT
flows back through time (Goller & Küchler's "backpropagation through
structure"); here autograd does it.

The equations, for a node with children ``c_1 .. c_k`` (leaf and node
vectors have ``hidden`` entries):

* leaf                      ``v = W_e x + b_e``           (an embedding when ``x`` is one-hot)
* ``compose: tanh``         ``p = tanh(W [c_1; ...; c_k] + b)``
  (Socher et al. 2011's composition ``p = f(W [c_1; c_2] + b)``, and the
  TreeRNN of Hupkes, Veldhoen & Zuidema 2018 on nested arithmetic, whose
  children are ``(left, operator, right)``: "project, sum, squash")
* ``compose: <cell>``       the cell reads ``c_1 .. c_k`` in order from its
  zero state; ``p`` is its output after the last child.  Any library or
  custom cell composes (``gru``, ``lstm``, ...), as a cell of a layer does
  over time.  Only the output goes up the tree: the rest of a cell's state
  (an LSTM's memory cell) starts at zero at every node, unlike a Tree-LSTM
  (Tai et al. 2015), which would pass it up.

How the operator of ``( left op right )`` enters (``operator``):

* ``child`` (default): the children are ``(l, o, r)``, the operator a child
  like the others (Hupkes et al. 2018);
* ``gate``: the children are ``(l, g ⊙ r)`` with ``g = tanh(W_g o + b_g)``:
  the operator scales the right operand per unit, so ``l - r`` and
  ``l + r`` differ by a sign rather than by an additive shift;
* ``none``: no operator token, the children are ``(l, r)`` (binary
  constituency trees, Socher et al. 2011).

Reading the tree (as SPINN, Bowman et al. 2016, does with given
transitions): the sequence is fully bracketed, ``( 5 + ( -3 - 2 ) )``.  A
token in the ``close`` feature column reduces: it pops the top ``k`` stack
entries (``k = 3``, or 2 with ``operator: none``) and pushes their
composition; a token in the ``open`` column does nothing; every other token
shifts (pushes its leaf vector).  All rows of a batch take their own action
at each step (selected with ``torch.where``, no Python branching per row),
so a batch of different trees runs in one lockstep loop through the
ordinary step interface ``step(x, state) -> (y, state)``; the output at each
step is the vector on top of the stack, the root's after the last token.

The stack has a fixed number of entries (``stack_size``), so a state is
``[B, stack_size, hidden]`` plus a depth per row.  A right-branching tree of
``n`` leaves needs ``2n - 1`` entries with an operator child, ``n`` without.
Pushing past the end or reducing an under-full stack is malformed input and
raises :class:`ValueError`: :meth:`Recursive.sequence` (what a network
layer runs) finds it from the bracket columns before the loop, with one
host sync per sequence; :meth:`Recursive.step` checks each step.

This module imports only torch, so ``rnnspec compile -o`` copies it into
generated modules.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

OPERATOR_MODES = ("child", "gate", "none")


class RecursiveState(NamedTuple):
    """The shift-reduce stack of every row.

    Attributes:
        stack: ``[B, S, H]`` entries; those at or above ``depth`` are stale.
        depth: ``[B]`` int64, how many entries each row holds.
    """

    stack: Tensor
    depth: Tensor


class Recursive(nn.Module):
    """A recursive network over bracketed sequences (see the module docstring).

    Args:
        input_size: features per step; columns ``close`` (and ``open``) mark
            the brackets (a value above 0.5), as one-hot tokens do.
        hidden_size: entries of every leaf and node vector.
        close: feature column of the closing bracket.
        open: feature column of the opening bracket, or None if the
            sequence has none (every non-closing token then shifts).
        compose: ``"tanh"`` or a module with ``initial_state(B, device,
            dtype)`` and ``forward(input, state) -> (y, state)`` that takes
            and returns ``hidden_size`` entries (a compiled cell wrapped as
            :class:`rnnspec.blocks.layer.CellController`).
        operator: ``child``, ``gate`` or ``none`` (see the module docstring).
        stack_size: stack entries per row.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        close: int,
        open: Optional[int] = None,
        compose: Union[str, nn.Module] = "tanh",
        operator: str = "child",
        stack_size: int = 32,
    ) -> None:
        super().__init__()
        if operator not in OPERATOR_MODES:
            raise ValueError(f"operator must be one of {', '.join(OPERATOR_MODES)}, got {operator!r}")
        for name, col in (("close", close), ("open", open)):
            if col is not None and not 0 <= col < input_size:
                raise ValueError(f"{name} column {col} is outside the {input_size} input features")
        if open is not None and open == close:
            raise ValueError("open and close must be different columns")
        if stack_size < 1:
            raise ValueError(f"stack_size must be positive, got {stack_size}")
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, hidden_size
        self.close, self.open, self.operator, self.stack_size = close, open, operator, stack_size
        self.arity = 2 if operator == "none" else 3
        inputs = 3 if operator == "child" else 2  # vectors the composition reads
        self.leaf = nn.Linear(input_size, hidden_size)
        self.gate = nn.Linear(hidden_size, hidden_size) if operator == "gate" else None
        if isinstance(compose, nn.Module):
            if getattr(compose, "output_size", hidden_size) != hidden_size:
                raise ValueError(f"the composing cell outputs {compose.output_size} entries; nodes have {hidden_size}")
            self.cell: Optional[nn.Module] = compose
            self.combine: Optional[nn.Linear] = None
        elif compose == "tanh":
            self.cell = None
            self.combine = nn.Linear(inputs * hidden_size, hidden_size)
        else:
            raise ValueError(f"compose must be 'tanh' or a cell module, got {compose!r}")

    def initial_state(self, batch_size: int, device: Optional[torch.device] = None,
                      dtype: Optional[torch.dtype] = None) -> RecursiveState:
        stack = torch.zeros(batch_size, self.stack_size, self.hidden_size, device=device, dtype=dtype)
        return RecursiveState(stack, torch.zeros(batch_size, dtype=torch.long, device=device))

    def compose(self, children: Tensor) -> Tensor:
        """Node vectors ``[B, H]`` from children ``[B, k, H]`` in reading order."""
        if self.gate is not None:
            left, op, right = children.unbind(1)
            children = torch.stack([left, torch.tanh(F.linear(op, self.gate.weight, self.gate.bias)) * right], 1)
        if self.combine is not None:
            return torch.tanh(F.linear(children.flatten(1), self.combine.weight, self.combine.bias))
        assert self.cell is not None
        state = self.cell.initial_state(children.shape[0], children.device, children.dtype)
        y = children[:, 0]
        for child in children.unbind(1):
            y, state = self.cell(child, state)
        return y

    def actions(self, x: Tensor, valid: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """Which rows reduce and which shift, from the bracket columns of ``x``
        ``[..., F]`` (an opening bracket or a padded step does neither)."""
        reduce = x[..., self.close] > 0.5
        shift = ~(reduce | (x[..., self.open] > 0.5)) if self.open is not None else ~reduce
        if valid is not None:
            reduce, shift = reduce & valid, shift & valid
        return reduce, shift

    def _check(self, depth: Tensor, reduce: Tensor, shift: Tensor) -> None:
        """Raise on a push past the stack's end or a reduce of too few entries
        (``depth`` before each action; any shape)."""
        bad = (shift & (depth >= self.stack_size)) | (reduce & (depth < self.arity))
        if bool(bad.any()):
            where = bad.nonzero()[0].tolist()
            what = ("stack overflow (raise stack_size)" if bool(shift[tuple(where)])
                    else f"a closing bracket with fewer than {self.arity} entries")
            at = f"step {where[0]}, row {where[1]}" if len(where) == 2 else f"row {where[0]}"
            raise ValueError(f"malformed bracketed input at {at}: {what}")

    def step(self, x: Tensor, state: RecursiveState) -> tuple[Tensor, RecursiveState]:
        """One token for every row: shift, reduce or (an opening bracket) nothing."""
        reduce, shift = self.actions(x)
        self._check(state.depth, reduce, shift)
        return self._advance(state, reduce, shift, F.linear(x, self.leaf.weight, self.leaf.bias))

    def sequence(self, x: Tensor, state: RecursiveState, valid: Optional[Tensor]) -> tuple[Tensor, RecursiveState]:
        """All steps of ``x`` ``[T, B, F]``, as :meth:`step` one by one would;
        steps where ``valid`` ``[T, B]`` is false leave the state alone and
        output zeros.  The leaf embeddings and the actions are computed once
        for the sequence, and malformed input is found before the loop (one
        host sync, not one per step)."""
        reduce, shift = self.actions(x, valid)
        delta = torch.where(reduce, 1 - self.arity, shift.long())
        self._check(state.depth[None, :] + delta.cumsum(0) - delta, reduce, shift)
        leaves = F.linear(x, self.leaf.weight, self.leaf.bias)
        outs = []
        for r, s, leaf in zip(reduce.unbind(0), shift.unbind(0), leaves.unbind(0)):
            y, state = self._advance(state, r, s, leaf)
            outs.append(y)
        y = torch.stack(outs, 0) if outs else x.new_zeros(0, x.shape[1], self.hidden_size)
        if valid is not None:
            y = torch.where(valid[:, :, None], y, torch.zeros((), dtype=y.dtype, device=y.device))
        return y, state

    def _advance(self, state: RecursiveState, reduce: Tensor, shift: Tensor, leaf: Tensor) -> tuple[Tensor, RecursiveState]:
        stack, depth = state
        B, S, H = stack.shape
        k = self.arity
        # The top k entries, bottom first (stale where a row does not reduce:
        # torch.where below keeps them out of values and gradients).  The last
        # is the old top of the stack.
        index = (depth[:, None] + torch.arange(-k, 0, device=depth.device)).clamp(min=0)
        children = stack.gather(1, index[:, :, None].expand(B, k, H))
        node = self.compose(children)
        value = torch.where(reduce[:, None], node, leaf)
        acts = shift | reduce
        where_to = torch.where(reduce, depth - k, depth)
        write = (torch.arange(S, device=depth.device) == where_to[:, None]) & acts[:, None]
        stack = torch.where(write[:, :, None], value[:, None, :], stack)
        depth = depth + torch.where(reduce, 1 - k, shift.long())
        top = torch.where(acts[:, None], value, children[:, -1])
        y = torch.where((depth > 0)[:, None], top, torch.zeros((), dtype=top.dtype, device=top.device))
        return y, RecursiveState(stack, depth)
