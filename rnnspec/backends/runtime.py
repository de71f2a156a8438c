"""Running cells over time: directions, lengths, layers, stacks, read-out.

This module imports nothing but torch, on purpose: ``rnnspec compile -o``
copies its source verbatim into every generated standalone module, so the
in-process network and the generated file share one implementation.

A *cell* here is any module with ``state_sizes`` (list of ints),
``output_size`` (int), ``hoist(x) -> pre`` (the hoisted products for all
steps of ``x`` [T, B, I], indexable by step) and
``advance(x_t, pre_t, state) -> (new_state, y)``.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import math

import torch
from torch import Tensor, nn

State = Union[Tensor, Tuple[Tensor, ...]]


def init_param(t: Tensor, name: str, args: Sequence[float], hidden: int) -> None:
    """Fill ``t`` by a spec initializer; ``default`` is torch.nn.RNN's
    uniform(±1/sqrt(hidden)), hidden being the cell's first state size."""
    bound = 1.0 / math.sqrt(max(hidden, 1))
    with torch.no_grad():
        if name == "default":
            t.uniform_(-bound, bound)
        elif name == "uniform":
            lo, hi = args if args else (-bound, bound)
            t.uniform_(lo, hi)
        elif name == "normal":
            mean, std = (0.0, args[0]) if len(args) == 1 else args
            t.normal_(mean, std)
        elif name == "orthogonal":
            if t.dim() == 2:  # orthogonal per square block, so stacked gates each are
                for r in range(0, t.shape[0], t.shape[1]):
                    nn.init.orthogonal_(t[r : r + t.shape[1]], gain=args[0] if args else 1.0)
            else:
                t.uniform_(-1.0, 1.0)
        elif name == "xavier":
            nn.init.xavier_uniform_(t) if t.dim() == 2 else t.zero_()
        elif name == "zeros":
            t.zero_()
        elif name == "ones":
            t.fill_(1.0)
        elif name == "constant":
            t.fill_(args[0])
        elif name == "chunks":
            if t.numel() % len(args):
                raise ValueError(f"chunks of {len(args)} values do not divide a parameter of {t.numel()}")
            parts = t.view(len(args), -1)
            for i, v in enumerate(args):
                parts[i].fill_(v)
        else:
            raise ValueError(f"unknown initializer {name!r}")


def head_mask(rows: int, cols: int, heads: int) -> Tensor:
    """Block-diagonal mask for a recurrent matrix split into ``heads`` heads.

    Rows are ``k`` stacked gate blocks of ``rows/k`` units (k = rows/cols when
    that divides, as in LSTM's [4H, H]); unit i of each gate belongs to head
    ``i // (units/heads)``, column j to head ``j // (cols/heads)``."""
    k = rows // cols if rows % cols == 0 else 1
    units = rows // k
    r = torch.arange(rows) % units // (units // heads)
    c = torch.arange(cols) // (cols // heads)
    return (r[:, None] == c[None, :]).float()


class PerStep:
    """Values computed once for all steps ([T, B, n] each), read one step at a
    time; ``shared`` values (the same at every step) ride along."""

    def __init__(self, values: dict) -> None:
        # unbind once: indexing v[t] every step would make each step's backward
        # fill a zero tensor of the whole sequence (quadratic in its length).
        self.values = {k: v.unbind(0) for k, v in values.items()}
        self.shared: dict = {}

    def __getitem__(self, t: int) -> dict:
        out = {k: v[t] for k, v in self.values.items()}
        out.update(self.shared)
        return out


def reverse_padded(x: Tensor, lengths: Optional[Tensor]) -> Tensor:
    """Reverse each sequence of ``x`` [T, B, ...] within its own length
    (padding stays where it is), so a backward pass starts at each end."""
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T, device=x.device)[:, None]
    L = lengths.to(x.device)[None, :]
    idx = torch.where(t < L, L - 1 - t, t)  # [T, B]
    idx = idx.reshape(T, -1, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, idx)


def run_direction(cell: nn.Module, x: Tensor, state: Sequence[Tensor], lengths: Optional[Tensor]) -> Tuple[Tensor, List[Tensor]]:
    """Run ``cell`` over ``x`` [T, B, I] from ``state``; steps past a
    sequence's length leave its state unchanged and its output zero."""
    T = x.shape[0]
    valid = None
    if lengths is not None:
        valid = (torch.arange(T, device=x.device)[:, None] < lengths.to(x.device)[None, :]).unsqueeze(-1)
        # Padding never enters the computation (a NaN there would poison gradients).
        x = torch.where(valid.view(T, -1, *([1] * (x.dim() - 2))), x, torch.zeros((), dtype=x.dtype, device=x.device))
    pre = cell.hoist(x)
    state = list(state)
    outs: List[Tensor] = []
    xs = x.unbind(0)  # once, not x[t] per step (see PerStep)
    steps_valid = valid.unbind(0) if valid is not None else None
    for t in range(T):
        new, y = cell.advance(xs[t], pre[t], state)
        if steps_valid is not None:
            m = steps_valid[t]
            new = [torch.where(m, n, s) for n, s in zip(new, state)]
            y = torch.where(m, y, torch.zeros_like(y))
        state = list(new)
        outs.append(y)
    if not outs:
        return x.new_zeros(0, x.shape[1], cell.output_size), state
    return torch.stack(outs, 0), state


Runner = Callable[[nn.Module, Tensor, Sequence[Tensor], Optional[Tensor]], Tuple[Tensor, List[Tensor]]]


def run_layer(
    cells: Sequence[nn.Module],
    x: Tensor,
    states: Sequence[Sequence[Tensor]],
    lengths: Optional[Tensor],
    merge: str,
    run: Runner = run_direction,
) -> Tuple[Tensor, List[List[Tensor]]]:
    """One layer, one or two directions; merged outputs and per-direction states."""
    fwd, new_f = run(cells[0], x, states[0], lengths)
    if len(cells) == 1:
        return fwd, [new_f]
    rev, new_b = run(cells[1], reverse_padded(x, lengths), states[1], lengths)
    bwd = reverse_padded(rev, lengths)
    out = torch.cat([fwd, bwd], -1) if merge == "concat" else fwd + bwd
    return out, [new_f, new_b]


def last_step(y: Tensor, lengths: Optional[Tensor]) -> Tensor:
    """The output at each sequence's last valid step: [T, B, F] -> [B, F]."""
    if lengths is None:
        return y[-1]
    idx = (lengths.to(y.device) - 1).clamp(min=0).view(1, -1, 1).expand(1, y.shape[1], y.shape[2])
    return y.gather(0, idx).squeeze(0)


def activate(y: Tensor, name: Optional[str]) -> Tensor:
    if name is None:
        return y
    if name == "softmax":
        return torch.softmax(y, -1)
    if name == "log_softmax":
        return torch.log_softmax(y, -1)
    return getattr(torch, name)(y)


class LayerGroup(nn.Module):
    """``depth`` layers of one cell, each one or two directions.

    Its state has torch.nn's layout: one tensor [depth*dirs, B, size] per
    state variable; a cell with one state gives that tensor alone (as
    torch.nn.RNN/GRU), with several a tuple (as LSTM's (h, c)).

    ``learned`` names the state variables (in the cells' order) whose initial
    value is trained (``initial_state: learned``): parameter
    ``initial.<name>`` [depth*dirs, size], row ``layer*dirs + direction``,
    broadcast over the batch where the caller gives no state (a given state
    overrides it), filled first by ``learned_init`` (an initializer name and
    its arguments, see :func:`init_param`).  Without it a sequence starts
    from zeros, as torch.nn's."""

    def __init__(self, layers: Sequence[Sequence[nn.Module]], merge: str = "concat", dropout: float = 0.0,
                 learned: Optional[Sequence[str]] = None, learned_init: Tuple[str, Sequence[float]] = ("zeros", ())) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.ModuleList(cells) for cells in layers)
        self.dirs = len(layers[0])
        self.merge = merge
        self.dropout = nn.Dropout(dropout) if dropout > 0 and len(layers) > 1 else None
        self.state_sizes = list(layers[0][0].state_sizes)
        last = layers[-1][0].output_size
        self.output_size = last * (2 if self.dirs == 2 and merge == "concat" else 1)
        self.initial: Optional[nn.ParameterDict] = None
        if learned is not None:
            if len(learned) != len(self.state_sizes):
                raise ValueError(f"learned names {len(learned)} state(s), the cell has {len(self.state_sizes)}")
            rows = len(layers) * self.dirs
            self.initial = nn.ParameterDict(
                {name: nn.Parameter(torch.zeros(rows, size)) for name, size in zip(learned, self.state_sizes)}
            )
            for p in self.initial.values():
                init_param(p, learned_init[0], learned_init[1], self.state_sizes[0])

    def runner(self, x: Tensor) -> Runner:
        return run_direction

    def start_state(self, batch: int, like: Tensor) -> List[List[List[Tensor]]]:
        """Where no state is given: zeros, or the learned initial state
        broadcast over the batch ([layer][direction][state variable])."""
        if self.initial is None:
            return [[[like.new_zeros(batch, s) for s in self.state_sizes] for _ in range(self.dirs)] for _ in self.layers]
        params = [p.to(dtype=like.dtype, device=like.device) for p in self.initial.values()]
        return [
            [[p[i * self.dirs + d].unsqueeze(0).expand(batch, -1) for p in params] for d in range(self.dirs)]
            for i in range(len(self.layers))
        ]

    def split_state(self, state: Optional[State], batch: int, like: Tensor) -> List[List[List[Tensor]]]:
        """torch layout -> [layer][direction][state variable] tensors [B, size]."""
        n = len(self.layers) * self.dirs
        if state is None:
            return self.start_state(batch, like)
        parts = (state,) if isinstance(state, Tensor) else tuple(state)
        if len(parts) != len(self.state_sizes):
            raise ValueError(f"expected {len(self.state_sizes)} state tensor(s), got {len(parts)}")
        for p, size in zip(parts, self.state_sizes):
            if tuple(p.shape) != (n, batch, size):
                raise ValueError(f"state tensor has shape {tuple(p.shape)}, expected {(n, batch, size)}")
        return [[[p[i * self.dirs + d] for p in parts] for d in range(self.dirs)] for i in range(len(self.layers))]

    def join_state(self, states: List[List[List[Tensor]]]) -> State:
        stacked = tuple(
            torch.stack([states[i][d][k] for i in range(len(self.layers)) for d in range(self.dirs)], 0)
            for k in range(len(self.state_sizes))
        )
        return stacked[0] if len(stacked) == 1 else stacked

    def forward(self, x: Tensor, state: Optional[State], lengths: Optional[Tensor]) -> Tuple[Tensor, State]:
        per_layer = self.split_state(state, x.shape[1], x)
        run = self.runner(x)
        finals: List[List[List[Tensor]]] = []
        for i, cells in enumerate(self.layers):
            if i > 0 and self.dropout is not None:
                x = self.dropout(x)
            x, new = run_layer(list(cells), x, per_layer[i], lengths, self.merge, run)
            finals.append(new)
        return x, self.join_state(finals)


class Recurrent(nn.Module):
    """The recurrent stack: ``output, state = m(x, state=None, lengths=None)``.

    ``x`` is [T, B, F] ([B, T, F] with ``batch_first``); ``lengths`` (one per
    sequence) keeps padding out of states and outputs.  With one layer group
    ``state`` is in torch.nn's layout; with several, a list of those."""

    def __init__(self, groups: Sequence[LayerGroup], batch_first: bool = False) -> None:
        super().__init__()
        self.groups = nn.ModuleList(groups)
        self.batch_first = batch_first
        self.output_size = groups[-1].output_size

    def forward(self, x: Tensor, state: Optional[Any] = None, lengths: Optional[Tensor] = None) -> Tuple[Tensor, Any]:
        if self.batch_first:
            x = x.transpose(0, 1)
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
            if tuple(lengths.shape) != (x.shape[1],):
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
    """Input (embedding / one-hot / vectors) -> recurrent stack -> read-out."""

    def __init__(
        self,
        rnn: Recurrent,
        *,
        tokens: Optional[int] = None,
        embed: Optional[int] = None,
        output: Optional[int] = None,
        every_step: bool = True,
        activation: Optional[str] = None,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(tokens, embed) if tokens is not None and embed is not None else None
        self.one_hot = tokens if tokens is not None and embed is None else None
        self.rnn = rnn
        self.head = nn.Linear(rnn.output_size, output) if output is not None else None
        self.every_step = every_step
        self.activation = activation
        self.batch_first = batch_first

    def forward(self, x: Tensor, state: Optional[Any] = None, lengths: Optional[Tensor] = None) -> Tuple[Tensor, Any]:
        if self.batch_first:
            x = x.transpose(0, 1)
        if self.embedding is not None:
            x = self.embedding(x)
        elif self.one_hot is not None:
            x = torch.nn.functional.one_hot(x.long(), self.one_hot).to(next(self.rnn.parameters()).dtype)
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=x.device)
        y, state = self.rnn(x, state, lengths)
        if not self.every_step:
            y = last_step(y, lengths)
        if self.head is not None:
            y = self.head(y)
        y = activate(y, self.activation)
        if self.every_step and lengths is not None and self.head is not None:
            valid = torch.arange(y.shape[0], device=y.device)[:, None] < lengths.to(y.device)[None, :]
            y = torch.where(valid.unsqueeze(-1), y, torch.zeros_like(y))  # the read-out's bias stays off padding
        if self.batch_first and self.every_step:
            y = y.transpose(0, 1)
        return y, state
