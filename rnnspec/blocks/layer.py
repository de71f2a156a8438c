"""Memory blocks as layers of a compiled network.

A :class:`MemoryLayer` wraps an NTM, a DNC or a modern Hopfield layer so it
sits in a network's stack like a group of cell layers: ``forward(x [T, B, F],
state, lengths) -> (y, state)``, with padding kept out of the memory and the
state returned (and accepted back) for stateful, chunked training.  Any cell
of the library, or a custom one, can be an NTM/DNC controller
(:class:`CellController`).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

from rnnspec.blocks.dnc import DNC
from rnnspec.blocks.hopfield import ModernHopfield
from rnnspec.blocks.ntm import NTM
from rnnspec.spec.blocks_model import BlockSpec


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


class MemoryLayer(nn.Module):
    def __init__(self, spec: BlockSpec, input_size: int, controller: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.spec = spec
        self.output_size = spec.output_size
        kind = spec.block
        if kind == "ntm":
            self.block: nn.Module = NTM(
                input_size, spec.output_size, controller=controller or spec.controller, controller_hidden=spec.hidden,
                memory_slots=spec.slots, memory_width=spec.width, read_heads=spec.read_heads,
                write_heads=spec.write_heads, shift_range=spec.shift_range,
            )
        elif kind == "dnc":
            self.block = DNC(
                input_size, spec.output_size, controller_hidden=spec.hidden, memory_slots=spec.slots,
                memory_width=spec.width, read_heads=spec.read_heads, controller=controller or spec.controller,
            )
        else:
            self.block = ModernHopfield(
                input_size, hidden_size=spec.hidden, output_size=spec.output_size, num_stored=spec.stored,
                beta=spec.beta, learn_beta=spec.learn_beta, update_steps=spec.update_steps,
            )

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
        outs = []
        for t in range(T):
            y, new = self.block.step(x[t], state)
            if valid is not None:
                new = where_state(valid[t], new, state)
                y = torch.where(valid[t].unsqueeze(-1), y, torch.zeros_like(y))
            state = new
            outs.append(y)
        return torch.stack(outs, 0), state
