"""Memory blocks as layers of a compiled network.

A :class:`MemoryLayer` wraps an NTM, a DNC or a modern Hopfield layer so it
sits in a network's stack like a group of cell layers: ``forward(x [T, B, F],
state, lengths) -> (y, state)``, with padding kept out of the memory and the
state returned (and accepted back) for stateful, chunked training.  Any cell
of the library, or a custom one, can be an NTM/DNC controller
(:class:`CellController`).

This module imports only torch and the blocks, so ``rnnspec compile -o``
copies it (with the blocks) into generated modules.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

from rnnspec.blocks.clockwork import Clockwork
from rnnspec.blocks.compressor import Compressor
from rnnspec.blocks.dnc import DNC
from rnnspec.blocks.hopfield import ModernHopfield
from rnnspec.blocks.ntm import NTM
from rnnspec.blocks.recursive import Recursive
from rnnspec.blocks.reservoir import Reservoir
from rnnspec.blocks.stack import NNPDA


class CellController(nn.Module):
    """A compiled rnnspec cell run one step at a time, as a memory controller."""

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.cell = cell
        self.output_size = cell.output_size

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, ...]:
        return tuple(torch.zeros(batch_size, s, device=device, dtype=dtype) for s in self.cell.state_sizes)

    def forward(self, input: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        pre = self.cell.hoist(input.unsqueeze(0))[0]
        new, y = self.cell.advance(input, pre, list(state))
        return y, tuple(new)


def where_state(keep: Tensor, new: Any, old: Any) -> Any:
    """Per batch row, ``new`` where ``keep`` else ``old``, through nested state tuples."""
    if isinstance(new, Tensor):
        mask = keep.view(-1, *([1] * (new.dim() - 1)))
        return torch.where(mask, new, old)
    if isinstance(new, tuple) and hasattr(new, "_fields"):
        return type(new)(*(where_state(keep, n, o) for n, o in zip(new, old)))
    if isinstance(new, (tuple, list)):
        return type(new)(where_state(keep, n, o) for n, o in zip(new, old))
    return new


def _mean_over_steps(terms: list[tuple[Tensor, Tensor]], valid: Optional[Tensor]) -> Tensor:
    """The mean of per-step, per-row losses ``(loss [B], weight [B])`` over
    the weighted steps that are not padding."""
    loss = torch.stack([t[0] for t in terms])
    weight = torch.stack([t[1] for t in terms])
    if valid is not None:
        weight = weight * valid.to(weight.dtype)
        loss = torch.where(valid, loss, torch.zeros_like(loss))
    return (loss * weight).sum() / weight.sum().clamp_min(1.0)


# One builder per block kind, taking exactly that kind's spec fields
# (rnnspec.spec.blocks_model lists them; defaults as there).

def _ntm(i: int, o: int, controller: Any, *, hidden: int = 100, slots: int = 128, width: int = 20,
         read_heads: int = 1, write_heads: int = 1, shift_range: int = 1) -> nn.Module:
    return NTM(i, o, controller=controller, controller_hidden=hidden, memory_slots=slots, memory_width=width,
               read_heads=read_heads, write_heads=write_heads, shift_range=shift_range)


def _dnc(i: int, o: int, controller: Any, *, hidden: int = 100, slots: int = 128, width: int = 20,
         read_heads: int = 1) -> nn.Module:
    return DNC(i, o, controller_hidden=hidden, memory_slots=slots, memory_width=width, read_heads=read_heads,
               controller=controller)


def _hopfield(i: int, o: int, controller: Any, *, hidden: int = 100, stored: int = 16, beta: Optional[float] = None,
              learn_beta: bool = False, update_steps: int = 1) -> nn.Module:
    return ModernHopfield(i, hidden_size=hidden, output_size=o, num_stored=stored, beta=beta, learn_beta=learn_beta,
                          update_steps=update_steps)


def _compressor(i: int, o: int, controller: Any, *, automatizer: Any, chunker: Any, threshold: float = 0.5,
                surprise: str = "symbol", hidden: int = 100, chunker_hidden: Optional[int] = None) -> nn.Module:
    # hidden / chunker_hidden sized the two cells, which arrive built (CellController)
    return Compressor(i, o, automatizer, chunker, threshold=threshold, surprise=surprise)


def _pda(i: int, o: int, controller: Any, *, hidden: int = 100, stack_width: int = 8, stack_depth: int = 64,
         action: str = "push_pop") -> nn.Module:
    return NNPDA(i, o, controller=controller, controller_hidden=hidden, stack_width=stack_width,
                 stack_depth=stack_depth, action=action)


def _recursive(i: int, o: int, controller: Any, *, hidden: int = 100, close: Optional[int] = None,
               open: Optional[int] = None, compose: str = "tanh", operator: str = "child",
               stack_size: int = 32) -> nn.Module:
    composer = controller if isinstance(controller, nn.Module) else compose  # a composing cell comes built
    return Recursive(i, hidden, close=close if close is not None else -1, open=open, compose=composer,
                     operator=operator, stack_size=stack_size)


def _reservoir(i: int, o: int, controller: Any, *, hidden: int = 100, spectral_radius: float = 0.9,
               leak: float = 1.0, input_scale: float = 1.0, density: float = 0.1, bias_scale: float = 0.0) -> nn.Module:
    # fixed random weights (buffers); only the read-out learns
    return Reservoir(i, hidden, spectral_radius=spectral_radius, leak=leak, input_scale=input_scale, density=density,
                     bias_scale=bias_scale)


def _clockwork(i: int, o: int, controller: Any, *, hidden: int = 100, periods: Optional[list] = None) -> nn.Module:
    return Clockwork(i, hidden, periods or [1])


BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "ntm": _ntm, "dnc": _dnc, "hopfield": _hopfield, "compressor": _compressor, "pda": _pda,
    "recursive": _recursive, "reservoir": _reservoir, "clockwork": _clockwork,
}


class MemoryLayer(nn.Module):
    """A block of ``kind`` (a key of :data:`BUILDERS`) as a layer; ``fields``
    are that kind's spec fields (see rnnspec.spec.blocks_model)."""

    def __init__(self, kind: str, input_size: int, output_size: int, controller: Any = "lstm", **fields: Any) -> None:
        super().__init__()
        if kind not in BUILDERS:
            raise ValueError(f"unknown block {kind!r}; known: {', '.join(sorted(BUILDERS))}")
        self.kind = kind
        self.output_size = output_size
        self.aux_loss: Optional[Tensor] = None  # the compressor's prediction loss of the last forward (trainer hook)
        self.block: nn.Module = BUILDERS[kind](input_size, output_size, controller, **fields)

    def forward(self, x: Tensor, state: Any, lengths: Optional[Tensor]) -> tuple[Tensor, Any]:
        T, B = x.shape[0], x.shape[1]
        valid = None
        if lengths is not None:
            valid = torch.arange(T, device=x.device)[:, None] < lengths.to(x.device)[None, :]  # [T, B]
            x = torch.where(valid.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
        if isinstance(self.block, ModernHopfield):  # stateless: every step retrieves on its own
            y = self.block(x.transpose(0, 1)).transpose(0, 1)
            if valid is not None:
                y = torch.where(valid.unsqueeze(-1), y, torch.zeros_like(y))
            return y, ()
        if state is None:
            state = self.block.initial_state(B, device=x.device, dtype=x.dtype)
        whole = getattr(self.block, "sequence", None)
        if whole is not None:  # the block runs the whole sequence itself (input products hoisted out of the loop)
            return whole(x, state, valid)
        outs = []
        xs = x.unbind(0)  # once: x[t] per step makes backward quadratic in T
        keep = valid.unbind(0) if valid is not None else None
        predicted = getattr(self.block, "prediction_loss", None)
        terms: list[tuple[Tensor, Tensor]] = []
        for t in range(T):
            if predicted is not None:
                terms.append(predicted(xs[t], state))
            y, new = self.block.step(xs[t], state)
            if keep is not None:
                new = where_state(keep[t], new, state)
                y = torch.where(keep[t].unsqueeze(-1), y, torch.zeros_like(y))
            state = new
            outs.append(y)
        if predicted is not None:
            self.aux_loss = _mean_over_steps(terms, valid)
        return torch.stack(outs, 0), state
