"""Spec -> torch.nn.Module.

:class:`Recurrent` is the stack of recurrent layers with torch.nn.LSTM's
calling convention; :class:`Network` adds the spec's input (embedding) and
output (read-out) around it.  Both are ordinary modules: state_dict,
torch.save, torch.compile and torch.export work on them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from rnnspec.backends.torch_backend import Cell, run_layer
from rnnspec.errors import SpecError
from rnnspec.ir.cell import CellIR
from rnnspec.spec.loader import layer_irs, load
from rnnspec.spec.model import LayerSpec, Spec

State = Union[Tensor, tuple[Tensor, ...]]

BACKENDS = ("auto", "torch", "triton")


class LayerGroup(nn.Module):
    """One LayerSpec: ``depth`` layers of one cell, each one or two directions.

    Its state has torch.nn's layout: one tensor [depth*dirs, B, size] per
    state variable; a cell with one state gives that tensor alone (as
    torch.nn.RNN/GRU), with several a tuple (as LSTM's (h, c))."""

    def __init__(self, spec: LayerSpec, irs: Sequence[CellIR]) -> None:
        super().__init__()
        self.spec = spec
        self.dirs = 2 if spec.bidirectional else 1
        self.layers = nn.ModuleList(
            nn.ModuleList(Cell(ir, heads=spec.heads) for _ in range(self.dirs)) for ir in irs
        )
        self.dropout = nn.Dropout(spec.dropout) if spec.dropout > 0 and spec.depth > 1 else None
        self.state_sizes = [size for _, size in irs[0].states]
        self.output_size = irs[-1].output_size * (2 if spec.bidirectional and spec.merge == "concat" else 1)

    def split_state(self, state: Optional[State], batch: int, like: Tensor) -> list[list[list[Tensor]]]:
        """torch layout -> [layer][direction][state variable] tensors [B, size]."""
        n = len(self.layers) * self.dirs
        if state is None:
            return [[[like.new_zeros(batch, s) for s in self.state_sizes] for _ in range(self.dirs)] for _ in self.layers]
        parts = (state,) if isinstance(state, Tensor) else tuple(state)
        if len(parts) != len(self.state_sizes):
            raise ValueError(f"expected {len(self.state_sizes)} state tensor(s), got {len(parts)}")
        for p, size in zip(parts, self.state_sizes):
            if p.shape != (n, batch, size):
                raise ValueError(f"state tensor has shape {tuple(p.shape)}, expected {(n, batch, size)}")
        return [[[p[i * self.dirs + d] for p in parts] for d in range(self.dirs)] for i in range(len(self.layers))]

    def join_state(self, states: list[list[list[Tensor]]]) -> State:
        stacked = tuple(
            torch.stack([states[i][d][k] for i in range(len(self.layers)) for d in range(self.dirs)], 0)
            for k in range(len(self.state_sizes))
        )
        return stacked[0] if len(stacked) == 1 else stacked

    def forward(self, x: Tensor, state: Optional[State], lengths: Optional[Tensor]) -> tuple[Tensor, State]:
        per_layer = self.split_state(state, x.shape[1], x)
        finals: list[list[list[Tensor]]] = []
        for i, cells in enumerate(self.layers):
            if i > 0 and self.dropout is not None:
                x = self.dropout(x)
            x, new = run_layer(list(cells), x, per_layer[i], lengths, self.spec.merge)
            finals.append(new)
        return x, self.join_state(finals)


class Recurrent(nn.Module):
    """The recurrent stack: ``output, state = m(x, state=None, lengths=None)``.

    ``x`` is [T, B, F] ([B, T, F] with ``batch_first``); ``lengths`` (one per
    sequence) keeps padding out of states and outputs.  With one layer group
    ``state`` is in torch.nn's layout; with several, a list of those."""

    def __init__(self, layers: Sequence[LayerSpec], irs: Sequence[CellIR], batch_first: bool = False) -> None:
        super().__init__()
        self.batch_first = batch_first
        groups = []
        k = 0
        for spec in layers:
            group_irs = irs[k : k + spec.depth]
            k += spec.depth
            groups.append(LayerGroup(spec, group_irs))
        self.groups = nn.ModuleList(groups)
        self.output_size = groups[-1].output_size

    def forward(
        self, x: Tensor, state: Optional[Any] = None, lengths: Optional[Tensor] = None
    ) -> tuple[Tensor, Any]:
        if self.batch_first:
            x = x.transpose(0, 1)
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
            if lengths.shape != (x.shape[1],):
                raise ValueError(f"lengths has shape {tuple(lengths.shape)}, expected ({x.shape[1]},)")
        states = [None] * len(self.groups) if state is None else ([state] if len(self.groups) == 1 else list(state))
        finals = []
        for group, s in zip(self.groups, states):
            x, new = group(x, s, lengths)
            finals.append(new)
        if self.batch_first:
            x = x.transpose(0, 1)
        return x, finals[0] if len(self.groups) == 1 else finals


class Network(nn.Module):
    """A compiled spec: input -> recurrent stack -> read-out."""

    def __init__(self, spec: Spec, backend: str = "auto") -> None:
        super().__init__()
        if spec.model is None:
            raise SpecError("this spec has no model (network) to compile", None)
        self.spec_name = spec.name or "model"
        model = spec.model
        self.batch_first = model.batch_first
        self.backend = backend
        irs = layer_irs(spec)
        # Each depth level gets its own IR: level 2+ sees the previous level's output.
        expanded: list[CellIR] = []
        from rnnspec.spec.loader import cell_ir

        size = model.input.size
        for layer, first in zip(model.layers, irs):
            for level in range(layer.depth):
                ir = first if level == 0 else cell_ir(
                    layer.cell, spec.cell(layer.cell), input_size=size, hidden=layer.hidden, args=layer.args, bias=layer.bias
                )
                expanded.append(ir)
                size = ir.output_size * (2 if layer.bidirectional and layer.merge == "concat" else 1)
        self.irs = expanded
        inp = model.input
        self.embedding = nn.Embedding(inp.tokens, inp.embed) if inp.tokens is not None and inp.embed is not None else None
        self.one_hot = inp.tokens if inp.tokens is not None and inp.embed is None else None
        self.rnn = Recurrent(model.layers, expanded, batch_first=False)
        out = model.output
        self.every_step = out.every_step if out is not None else True
        self.head = nn.Linear(self.rnn.output_size, out.size) if out is not None else None
        self.activation = out.activation if out is not None else None

    def forward(self, x: Tensor, state: Optional[Any] = None, lengths: Optional[Tensor] = None) -> tuple[Tensor, Any]:
        if self.batch_first:
            x = x.transpose(0, 1)
        if self.embedding is not None:
            x = self.embedding(x)
        elif self.one_hot is not None:
            x = torch.nn.functional.one_hot(x.long(), self.one_hot).to(torch.get_default_dtype())
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
        y, state = self.rnn(x, state, lengths)
        if not self.every_step:
            y = last_step(y, lengths)
        if self.head is not None:
            y = self.head(y)
        if self.activation is not None:
            y = _activate(y, self.activation)
        if self.batch_first and self.every_step:
            y = y.transpose(0, 1)
        return y, state


def last_step(y: Tensor, lengths: Optional[Tensor]) -> Tensor:
    """The output at each sequence's last valid step: [T, B, F] -> [B, F]."""
    if lengths is None:
        return y[-1]
    idx = (lengths.to(y.device) - 1).clamp(min=0).view(1, -1, 1).expand(1, y.shape[1], y.shape[2])
    return y.gather(0, idx).squeeze(0)


def _activate(y: Tensor, name: str) -> Tensor:
    if name == "softmax":
        return torch.softmax(y, -1)
    if name == "log_softmax":
        return torch.log_softmax(y, -1)
    return getattr(torch, name)(y)


def compile(spec_or_path: Union[Spec, str, Path], backend: str = "auto") -> Network:
    """Compile a spec (or a spec file) into a :class:`Network`.

    ``backend``: ``auto`` (Triton on CUDA tensors when available, the torch
    backend otherwise), ``torch``, or ``triton``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    spec = spec_or_path if isinstance(spec_or_path, Spec) else load(spec_or_path)
    return Network(spec, backend=backend)
