"""The torch reference backend: a cell IR becomes parameters plus a step
function, and a layer runs it over time.

Lowering happens here: every product ``P @ e`` whose operand does not depend
on the state is *hoisted*: computed for all time steps in one matrix product
before the loop (products sharing an operand are fused into one GEMM).  The
loop then evaluates only the recurrence.  The step is compiled once into
closures over the IR, so no spec text is ever executed.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from rnnspec.backends import torch_ops as ops
from rnnspec.errors import SpecError
from rnnspec.ir.cell import CellIR, Param
from rnnspec.ir.expr import BinOp, Call, Expr, Neg, Num, Var

Env = dict  # variable name -> Tensor (or float for constants)
Fn = Callable[[Env], "Tensor | float"]


def init_param(t: Tensor, p: Param, ir: CellIR) -> None:
    """Fill ``t`` by ``p``'s initializer; ``default`` is torch.nn.RNN's
    uniform(±1/sqrt(hidden)), hidden being the first state's size."""
    name, args = p.init.name, p.init.args
    hidden = ir.states[0][1] if ir.states else t.shape[0]
    with torch.no_grad():
        if name == "default":
            bound = 1.0 / math.sqrt(max(hidden, 1))
            t.uniform_(-bound, bound)
        elif name == "uniform":
            lo, hi = args if args else (-1.0 / math.sqrt(max(hidden, 1)), 1.0 / math.sqrt(max(hidden, 1)))
            t.uniform_(lo, hi)
        elif name == "normal":
            mean, std = (0.0, args[0]) if len(args) == 1 else args
            t.normal_(mean, std)
        elif name == "orthogonal":
            if t.dim() == 2:
                # Orthogonal per square block, so stacked gates are each orthogonal.
                rows, cols = t.shape
                for r in range(0, rows, cols):
                    nn.init.orthogonal_(t[r : r + cols], gain=args[0] if args else 1.0)
            else:
                t.uniform_(-1.0, 1.0)
        elif name == "xavier":
            if t.dim() == 2:
                nn.init.xavier_uniform_(t)
            else:
                t.zero_()
        elif name == "zeros":
            t.zero_()
        elif name == "ones":
            t.fill_(1.0)
        elif name == "constant":
            t.fill_(args[0])
        elif name == "chunks":
            parts = t.reshape(len(args), -1) if t.numel() % len(args) == 0 else None
            if parts is None:
                raise SpecError(f"chunks({len(args)} values) does not divide parameter {p.name!r} of {t.numel()}", p.pos)
            for i, v in enumerate(args):
                parts[i].fill_(v)
        else:  # pragma: no cover - the IR builder rejects unknown names
            raise SpecError(f"unknown initializer {name!r}", p.pos)


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


class Cell(nn.Module):
    """One cell's parameters and its compiled step."""

    def __init__(self, ir: CellIR, heads: int = 1) -> None:
        super().__init__()
        self.ir = ir
        self.heads = heads
        for p in ir.params:
            if hasattr(nn.Module, p.name) or p.name in ("ir", "heads"):
                raise SpecError(f"parameter name {p.name!r} is reserved; rename it", p.pos)
            self.register_parameter(p.name, nn.Parameter(torch.empty(p.shape)))
        self.masked: dict[str, str] = {}
        if heads > 1:
            for m in ir.matmuls:
                if m.hoisted or m.param in self.masked:
                    continue
                rows, cols = ir.param(m.param).shape
                if cols % heads or (rows // (rows // cols if rows % cols == 0 else 1)) % heads:
                    raise SpecError(f"heads={heads} does not divide the recurrent matrix {m.param!r} {list((rows, cols))}")
                buf = f"_mask_{m.param}"
                self.register_buffer(buf, head_mask(rows, cols, heads), persistent=False)
                self.masked[m.param] = buf
        self.reset_parameters()
        self._groups = self._hoist_groups()
        self._step = _compile_step(self)

    def reset_parameters(self) -> None:
        for p in self.ir.params:
            init_param(getattr(self, p.name), p, self.ir)

    def weight(self, name: str) -> Tensor:
        w = getattr(self, name)
        if name in self.masked:
            w = w * getattr(self, self.masked[name])
        return w

    def _hoist_groups(self) -> list[tuple[Expr, list[str]]]:
        """Hoisted products grouped by operand: each group is one GEMM."""
        groups: dict[Expr, list[str]] = {}
        for m in self.ir.matmuls:
            if m.hoisted and m.param not in groups.setdefault(m.operand, []):
                groups[m.operand].append(m.param)
        return list(groups.items())

    def precompute(self, inputs: Env) -> dict[tuple[str, Expr], Tensor]:
        """All hoisted products for every time step: ``inputs`` hold [T, B, n]."""
        out: dict[tuple[str, Expr], Tensor] = {}
        for operand, names in self._groups:
            value = _compile(operand, self, {})(inputs)
            weights = [self.weight(n) for n in names]
            w = weights[0] if len(weights) == 1 else torch.cat(weights, 0)
            y = torch.matmul(value, w.t())  # type: ignore[arg-type]
            for n, part in zip(names, torch.split(y, [wt.shape[0] for wt in weights], dim=-1)):
                out[(n, operand)] = part
        return out

    def step(self, env: Env) -> Env:
        return self._step(env)

    def initial_state(self, batch: int, like: Tensor) -> list[Tensor]:
        return [like.new_zeros(batch, size) for _, size in self.ir.states]


def _compile(e: Expr, cell: Cell, pre: dict) -> Fn:
    """An expression as a closure over the step's environment."""
    if isinstance(e, Num):
        v = float(e.value)
        return lambda env: v
    if isinstance(e, Var):
        name = e.name
        if name in cell._parameters:
            return lambda env: cell.weight(name)
        return lambda env: env[name]
    if isinstance(e, Neg):
        f = _compile(e.arg, cell, pre)
        return lambda env: -f(env)  # type: ignore[operator]
    if isinstance(e, BinOp):
        if e.op == "@":
            pname = e.left.name  # type: ignore[union-attr]
            key = (pname, e.right)
            if pre.get("hoisted") and key in pre["hoisted"]:
                return lambda env: env["__pre__"][key]
            g = _compile(e.right, cell, pre)
            return lambda env: torch.matmul(g(env), cell.weight(pname).t())  # type: ignore[arg-type]
        a, b = _compile(e.left, cell, pre), _compile(e.right, cell, pre)
        if e.op == "+":
            return lambda env: a(env) + b(env)  # type: ignore[operator]
        if e.op == "-":
            return lambda env: a(env) - b(env)  # type: ignore[operator]
        if e.op == "*":
            return lambda env: a(env) * b(env)  # type: ignore[operator]
        if e.op == "/":
            return lambda env: a(env) / b(env)  # type: ignore[operator]
    if isinstance(e, Call):
        args = [_compile(a, cell, pre) for a in e.args]
        if e.fn in ops.UNARY:
            f = ops.UNARY[e.fn][0]
            (x,) = args

            def unary(env: Env) -> Tensor | float:
                v = x(env)
                return f(v) if isinstance(v, Tensor) else float(f(torch.tensor(v)))  # type: ignore[arg-type]

            return unary
        if e.fn == "min":
            return lambda env: ops.emin(args[0](env), args[1](env))
        if e.fn == "max":
            return lambda env: ops.emax(args[0](env), args[1](env))
        if e.fn == "clamp":
            return lambda env: ops.clamp(args[0](env), args[1](env), args[2](env))  # type: ignore[arg-type]
        if e.fn == "cat":
            return lambda env: torch.cat([a(env) for a in args], -1)  # type: ignore[misc]
        if e.fn == "outer":
            return lambda env: ops.outer(args[0](env), args[1](env))  # type: ignore[arg-type]
    raise SpecError(f"the torch backend cannot evaluate {e!r}", getattr(e, "pos", None))


def _compile_step(cell: Cell) -> Callable[[Env], Env]:
    """The whole step: runs the equations in order, adding results to env."""
    ir = cell.ir
    hoisted = {(m.param, m.operand) for m in ir.matmuls if m.hoisted}
    plan: list[tuple[tuple[str, ...], Fn, int]] = []
    for eq in ir.equations:
        expr = eq.expr
        if isinstance(expr, Call) and expr.fn == "split":
            plan.append((eq.targets, _compile(expr.args[0], cell, {"hoisted": hoisted}), len(eq.targets)))
        else:
            plan.append((eq.targets, _compile(expr, cell, {"hoisted": hoisted}), 0))

    def step(env: Env) -> Env:
        for targets, f, parts in plan:
            v = f(env)
            if parts:
                for t, piece in zip(targets, torch.chunk(v, parts, dim=-1)):  # type: ignore[arg-type]
                    env[t] = piece
            else:
                env[targets[0]] = v
        return env

    return step


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


def run_direction(
    cell: Cell, x: Tensor, state: Sequence[Tensor], lengths: Optional[Tensor]
) -> tuple[Tensor, list[Tensor]]:
    """Run ``cell`` over ``x`` [T, B, I] from ``state``; steps past a
    sequence's length leave its state unchanged and its output zero."""
    ir = cell.ir
    T = x.shape[0]
    in_name = ir.inputs[0][0]
    pre = cell.precompute({in_name: x})
    names = ir.state_names
    state = list(state)
    outs: list[Tensor] = []
    valid = None
    if lengths is not None:
        valid = torch.arange(T, device=x.device)[:, None] < lengths.to(x.device)[None, :]  # [T, B]
        valid = valid.unsqueeze(-1)
    for t in range(T):
        env: Env = {in_name: x[t], "__pre__": {k: v[t] for k, v in pre.items()}}
        env.update(zip(names, state))
        env = cell.step(env)
        new = [env[n + "'"] for n in names]
        y = env[ir.output]
        if valid is not None:
            m = valid[t]
            new = [torch.where(m, n, s) for n, s in zip(new, state)]
            y = torch.where(m, y, torch.zeros_like(y))
        state = new
        outs.append(y)
    if not outs:
        return x.new_zeros(0, x.shape[1], ir.output_size), state
    return torch.stack(outs, 0), state


def run_layer(
    cells: Sequence[Cell], x: Tensor, states: Sequence[Sequence[Tensor]], lengths: Optional[Tensor], merge: str
) -> tuple[Tensor, list[list[Tensor]]]:
    """One layer, one or two directions; returns merged outputs and per-direction states."""
    fwd, new_f = run_direction(cells[0], x, states[0], lengths)
    if len(cells) == 1:
        return fwd, [new_f]
    rev, new_b = run_direction(cells[1], reverse_padded(x, lengths), states[1], lengths)
    bwd = reverse_padded(rev, lengths)
    out = torch.cat([fwd, bwd], -1) if merge == "concat" else fwd + bwd
    return out, [new_f, new_b]
