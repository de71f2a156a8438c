"""The torch reference backend: a cell IR becomes parameters plus a step
function, and a layer runs it over time.

Lowering happens here: every product ``P @ e`` whose operand does not depend
on the state is *hoisted*: computed for all time steps in one matrix product
before the loop (products sharing an operand are fused into one GEMM).  The
loop then evaluates only the recurrence.  The step is compiled once into
closures over the IR, so no spec text is ever executed.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from rnnspec.backends import runtime
from rnnspec.backends import torch_ops as ops
from rnnspec.errors import SpecError
from rnnspec.ir.cell import CellIR, Param
from rnnspec.ir.expr import BinOp, Call, Equation, Expr, Neg, Num, Var
from rnnspec.ir.lower import lower

Env = dict  # variable name -> Tensor (or float for constants)
Fn = Callable[[Env], "Tensor | float"]


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
                self.register_buffer(buf, runtime.head_mask(rows, cols, heads), persistent=False)
                self.masked[m.param] = buf
        self.reset_parameters()
        self._groups = self._hoist_groups()
        self.lowered = lower(ir)
        self._step = _compile_step(self)
        self._pre = _compile_plan(self.lowered.pre, self)

    def __getstate__(self) -> dict:
        # The compiled step closes over this module: rebuild it on the copy
        # (deepcopy, pickle) so the copy computes with its own weights.
        state = self.__dict__.copy()
        state.pop("_step", None)
        state.pop("_pre", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._step = _compile_step(self)
        self._pre = _compile_plan(self.lowered.pre, self)

    def reset_parameters(self) -> None:
        hidden = self.ir.states[0][1] if self.ir.states else 1
        for p in self.ir.params:
            runtime.init_param(getattr(self, p.name), p.init.name, p.init.args, hidden)

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
        """All hoisted products ``P @ e`` for every time step, keyed by
        (P, e), one GEMM per operand: ``inputs`` hold [T, B, n].  (The
        Triton launcher streams these; the torch loop uses :meth:`hoist`.)"""
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
        """Evaluate the loop's equations on ``env`` (inputs, states, hoisted values)."""
        return self._step(env)

    # The runtime's cell protocol (see rnnspec.backends.runtime).
    @property
    def state_sizes(self) -> list[int]:
        return [size for _, size in self.ir.states]

    @property
    def output_size(self) -> int:
        return self.ir.output_size

    def transposed(self) -> dict[str, Tensor]:
        """Every matrix as used by ``v @ W.t()``, taken once per sequence."""
        return {p.name: self.weight(p.name).t() for p in self.ir.params if len(p.shape) == 2}

    def hoist(self, x: Tensor) -> runtime.PerStep:
        """Everything that does not depend on the state, for all steps at once."""
        wt = self.transposed()
        env = self._pre({self.ir.inputs[0][0]: x, "__wt__": wt})
        steps = runtime.PerStep({n: env[n] for n in self.lowered.pre_names})
        steps.shared = {"__wt__": wt}
        return steps

    def advance(self, x_t: Tensor, pre_t: dict, state: Sequence[Tensor]) -> tuple[list[Tensor], Tensor]:
        env: Env = {self.ir.inputs[0][0]: x_t, **pre_t}
        if "__wt__" not in env:
            env["__wt__"] = self.transposed()
        env.update(zip(self.ir.state_names, state))
        env = self._step(env)
        return [env[n + "'"] for n in self.ir.state_names], env[self.ir.output]

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
            g = _compile(e.right, cell, pre)
            # Transposed weights are taken once per sequence (Cell.hoist), not once per step.
            return lambda env: torch.matmul(g(env), env["__wt__"][pname])  # type: ignore[arg-type]
        if e.op == "+" and isinstance(e.right, BinOp) and e.right.op == "@":
            # a + W @ v as one fused addmm: one autograd node instead of two
            a = _compile(e.left, cell, pre)
            pname = e.right.left.name  # type: ignore[union-attr]
            v = _compile(e.right.right, cell, pre)

            def addmm(env: Env) -> Tensor:
                left, vec = a(env), v(env)
                if isinstance(left, Tensor) and vec.dim() == 2:  # type: ignore[union-attr]
                    return torch.addmm(left, vec, env["__wt__"][pname])  # type: ignore[arg-type]
                return left + torch.matmul(vec, env["__wt__"][pname])  # type: ignore[arg-type, operator]

            return addmm
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


def _compile_plan(equations: Sequence[Equation], cell: Cell) -> Callable[[Env], Env]:
    """Equations compiled in order into one function that adds their results to env."""
    plan: list[tuple[tuple[str, ...], Fn, int]] = []
    for eq in equations:
        expr = eq.expr
        if isinstance(expr, Call) and expr.fn == "split":
            plan.append((eq.targets, _compile(expr.args[0], cell, {}), len(eq.targets)))
        else:
            plan.append((eq.targets, _compile(expr, cell, {}), 0))

    def run(env: Env) -> Env:
        for targets, f, parts in plan:
            v = f(env)
            if parts:
                for t, piece in zip(targets, torch.chunk(v, parts, dim=-1)):  # type: ignore[arg-type]
                    env[t] = piece
            else:
                env[targets[0]] = v
        return env

    return run


def _compile_step(cell: Cell) -> Callable[[Env], Env]:
    """The step of the lowered cell (its hoisted part runs in :meth:`Cell.hoist`)."""
    return _compile_plan(cell.lowered.loop, cell)


def run_direction(cell: Cell, x: Tensor, state: Sequence[Tensor], lengths: Optional[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """The reference loop (see :func:`rnnspec.backends.runtime.run_direction`)."""
    return runtime.run_direction(cell, x, state, lengths)


Runner = runtime.Runner


def pick_runner(backend: str, x: Tensor) -> Runner:
    """``auto``: generated Triton kernels on CUDA tensors, this reference loop
    elsewhere; ``triton`` forces the kernels (on CPU: TRITON_INTERPRET=1)."""
    if backend == "torch" or (backend == "auto" and not x.is_cuda):
        return run_direction
    try:
        from rnnspec.kernels.launch import run_direction_triton
    except ImportError as e:
        if backend == "triton":
            raise RuntimeError(f"backend='triton' needs the triton package and rnnspec's kernels: {e}") from e
        return run_direction
    return run_direction_triton


reverse_padded = runtime.reverse_padded
