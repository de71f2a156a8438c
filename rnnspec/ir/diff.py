"""Symbolic reverse-mode differentiation of a cell's step, and the lowering
that makes a step differentiable piece by piece.

Two stages, both pure functions of expressions (no tensors), shared by the
Triton code generator (``rnnspec.kernels.codegen``) and its tests:

1. :func:`lower_step` turns a :class:`~rnnspec.ir.cell.CellIR` into a
   *lowered step*: single-target equations with no ``split`` (each split is
   pushed down to its leaves: row slices of parameter matrices, slices of
   bias vectors, column slices of the hoisted input products), every leaf
   named, every recurrent product written ``M @ v`` with ``M`` a (sliced)
   parameter matrix and ``v`` a variable, every call whose derivative
   reuses its value (sigmoid, tanh, exp, sqrt) given a name of its own, and
   every compound call argument (a pre-activation) named too, so that its
   adjoint is computed once.

2. :func:`differentiate` takes such equations, the adjoints flowing in (the
   *seeds*: gradients of the new states and of the output) and the names to
   differentiate with respect to, and returns the backward step: ordered
   assignments ``d[v] = expr`` for every temporary and every requested name,
   plus the products whose matrices receive gradients
   (``dM += d[mm]^T @ v``).  The expressions are simplified as they are
   built (constants folded, ``x * 1``, ``x + 0``, double negations ...).

Functions that appear only in derived equations (all elementwise except the
first):

``matmul_t(M, g)``  ``M^T`` applied to ``g`` (``g @ M`` for row vectors)
``_step(x)``        1 where x > 0, 1/2 where x == 0, 0 where x < 0
                    (torch.maximum / minimum split a tie's gradient in half)
``_pos(x)``         1 where x > 0 else 0 (relu's derivative, as torch)
``_sign(x)``        -1, 0 or 1
``_inside(x,lo,hi)`` 1 where lo < x < hi else 0 (hard_tanh, hard_sigmoid)

:func:`evaluate` gives all of them (and the user-facing functions) their
torch meaning; it is the reference the tests hold the symbolic gradients to.
"""
from __future__ import annotations

import math
import struct
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from rnnspec.ir.expr import BinOp, Call, Equation, Expr, Neg, Num, Var, names, to_source, walk

INTERNAL = ("matmul_t", "_step", "_pos", "_sign", "_inside")

# Calls whose derivative is written with the call's own value: the lowering
# gives each its own temporary, so the backward reuses the forward's result.
NAMED_CALLS = frozenset({"sigmoid", "tanh", "exp", "sqrt"})


class Unsupported(Exception):
    """The step cannot be lowered for the kernels; ``str(e)`` says why."""


# ---------------------------------------------------------------- simplification

ZERO, ONE = Num(0.0), Num(1.0)
ONE_SIXTH_F32 = struct.unpack("f", struct.pack("f", 1.0 / 6.0))[0]


def _is_num(e: Expr, v: float | None = None) -> bool:
    return isinstance(e, Num) and (v is None or e.value == v)


_FOLD: dict[str, Callable[..., float]] = {
    "sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x)),
    "tanh": math.tanh,
    "relu": lambda x: max(x, 0.0),
    "exp": math.exp,
    "abs": abs,
    "sin": math.sin,
    "cos": math.cos,
    "square": lambda x: x * x,
    "identity": lambda x: x,
    "min": min,
    "max": max,
    "clamp": lambda x, lo, hi: min(max(x, lo), hi),
    "_step": lambda x: 1.0 if x > 0 else (0.5 if x == 0 else 0.0),
    "_pos": lambda x: 1.0 if x > 0 else 0.0,
    "_sign": lambda x: float((x > 0) - (x < 0)),
    "_inside": lambda x, lo, hi: 1.0 if lo < x < hi else 0.0,
    "hard_tanh": lambda x: min(max(x, -1.0), 1.0),
    "hard_sigmoid": lambda x: min(max(x / 6.0 + 0.5, 0.0), 1.0),
}


def add(a: Expr, b: Expr) -> Expr:
    return simplify(BinOp("+", a, b))


def sub(a: Expr, b: Expr) -> Expr:
    return simplify(BinOp("-", a, b))


def mul(a: Expr, b: Expr) -> Expr:
    return simplify(BinOp("*", a, b))


def div(a: Expr, b: Expr) -> Expr:
    return simplify(BinOp("/", a, b))


def neg(a: Expr) -> Expr:
    return simplify(Neg(a))


def simplify(e: Expr) -> Expr:
    """Bottom-up algebraic clean-up; never changes a value (except that
    ``0 * x`` is 0 even where x is infinite, as a derivative should be)."""
    if isinstance(e, (Num, Var)):
        return e
    if isinstance(e, Neg):
        a = simplify(e.arg)
        if isinstance(a, Num):
            return Num(-a.value)
        if isinstance(a, Neg):
            return a.arg
        if isinstance(a, BinOp) and a.op == "-":
            return BinOp("-", a.right, a.left)
        return Neg(a)
    if isinstance(e, Call):
        args = tuple(simplify(x) for x in e.args)
        if e.fn == "matmul_t" and _is_num(args[1], 0.0):
            return ZERO
        if e.fn in _FOLD and all(isinstance(x, Num) for x in args):
            try:
                return Num(float(_FOLD[e.fn](*(x.value for x in args))))  # type: ignore[union-attr]
            except (OverflowError, ValueError):
                pass
        return Call(e.fn, args)
    if isinstance(e, BinOp):
        a, b = simplify(e.left), simplify(e.right)
        op = e.op
        if op == "@":
            return BinOp("@", a, b)
        if isinstance(a, Num) and isinstance(b, Num) and not (op == "/" and b.value == 0):
            return Num({"+": a.value + b.value, "-": a.value - b.value, "*": a.value * b.value,
                        "/": a.value / b.value if b.value else 0.0}[op])
        if op == "+":
            if _is_num(a, 0.0):
                return b
            if _is_num(b, 0.0):
                return a
            if isinstance(b, Neg):
                return simplify(BinOp("-", a, b.arg))
            if isinstance(a, Neg):
                return simplify(BinOp("-", b, a.arg))
            return BinOp("+", a, b)
        if op == "-":
            if _is_num(b, 0.0):
                return a
            if _is_num(a, 0.0):
                return simplify(Neg(b))
            if isinstance(b, Neg):
                return simplify(BinOp("+", a, b.arg))
            if a == b:
                return ZERO
            return BinOp("-", a, b)
        if op == "*":
            if _is_num(a, 0.0) or _is_num(b, 0.0):
                return ZERO
            if _is_num(a, 1.0):
                return b
            if _is_num(b, 1.0):
                return a
            if _is_num(a, -1.0):
                return simplify(Neg(b))
            if _is_num(b, -1.0):
                return simplify(Neg(a))
            if isinstance(a, Neg) and isinstance(b, Neg):
                return simplify(BinOp("*", a.arg, b.arg))
            if isinstance(a, Neg):
                return Neg(simplify(BinOp("*", a.arg, b)))
            if isinstance(b, Neg):
                return Neg(simplify(BinOp("*", a, b.arg)))
            # numbers to the left, and fold number * (number * x)
            if isinstance(b, Num) and not isinstance(a, Num):
                a, b = b, a
            if isinstance(a, Num) and isinstance(b, BinOp) and b.op == "*" and isinstance(b.left, Num):
                return simplify(BinOp("*", Num(a.value * b.left.value), b.right))
            return BinOp("*", a, b)
        if op == "/":
            if _is_num(b, 1.0):
                return a
            if _is_num(a, 0.0):
                return ZERO
            if isinstance(b, Num) and b.value != 0:
                return simplify(BinOp("*", Num(1.0 / b.value), a)) if _exact_reciprocal(b.value) else BinOp("/", a, b)
            if isinstance(a, Neg):
                return Neg(simplify(BinOp("/", a.arg, b)))
            return BinOp("/", a, b)
    raise TypeError(f"not an expression: {e!r}")


def _exact_reciprocal(v: float) -> bool:
    """Whether x / v == x * (1/v) exactly (v a power of two)."""
    m, _ = math.frexp(abs(v))
    return m == 0.5


def total(terms: Sequence[Expr]) -> Expr:
    out: Expr = ZERO
    for t in terms:
        out = add(out, t)
    return out


# ---------------------------------------------------------------- differentiation

@dataclass
class Backward:
    """A backward step.  ``assignments`` run in order; ``grads`` maps every
    requested name to its adjoint (a variable of the assignments, or 0);
    ``matmuls`` lists ``(M, v, g)``: matrix ``M`` receives ``g^T @ v``
    (summed over the batch), ``g`` a variable of the assignments."""

    assignments: list[tuple[str, Expr]]
    grads: dict[str, Expr]
    matmuls: list[tuple[str, Expr, str]]

    def source(self) -> str:
        lines = [f"{t} = {to_source(e)}" for t, e in self.assignments]
        lines += [f"d{m} += {g}^T @ {to_source(v)}" for m, v, g in self.matmuls]
        return "\n".join(lines)


def adjoint_name(v: str) -> str:
    return f"d[{v}]"


def _local_derivative(fn: str, args: tuple[Expr, ...], out: Expr, g: Expr) -> list[Expr]:
    """The adjoint each argument of ``fn(args) = out`` receives from ``g``."""
    (a, *rest) = args
    if fn == "sigmoid":
        return [mul(g, mul(out, sub(ONE, out)))]
    if fn == "tanh":
        return [mul(g, sub(ONE, mul(out, out)))]
    if fn == "relu":
        return [mul(g, Call("_pos", (a,)))]
    if fn == "exp":
        return [mul(g, out)]
    if fn == "log":
        return [div(g, a)]
    if fn == "softplus":
        return [mul(g, Call("sigmoid", (a,)))]
    if fn == "abs":
        return [mul(g, Call("_sign", (a,)))]
    if fn == "hard_sigmoid":
        # torch's hardsigmoid_backward uses the float32 constant 1.0f / 6.0f even in float64
        return [mul(Num(ONE_SIXTH_F32), mul(g, Call("_inside", (a, Num(-3.0), Num(3.0)))))]
    if fn == "hard_tanh":
        return [mul(g, Call("_inside", (a, Num(-1.0), Num(1.0))))]
    if fn == "sin":
        return [mul(g, Call("cos", (a,)))]
    if fn == "cos":
        return [neg(mul(g, Call("sin", (a,))))]
    if fn == "sqrt":
        return [div(g, mul(Num(2.0), out))]
    if fn == "square":
        return [mul(Num(2.0), mul(g, a))]
    if fn == "identity":
        return [g]
    if fn in ("max", "min"):
        b = rest[0]
        first, second = (sub(a, b), sub(b, a)) if fn == "max" else (sub(b, a), sub(a, b))
        return [mul(g, Call("_step", (first,))), mul(g, Call("_step", (second,)))]
    raise Unsupported(f"no derivative for {fn}(...)")


def differentiate(
    equations: Sequence[Equation],
    seeds: Mapping[str, Expr],
    wrt: Sequence[str],
    *,
    name: Callable[[str], str] = adjoint_name,
) -> Backward:
    """Reverse-mode derivative of single-target ``equations``.

    ``seeds``: adjoints flowing into targets (new states, the output);
    ``wrt``: names (not targets) whose adjoints are wanted.  A target's
    adjoint is the sum of its seed and of what every later use sends it."""
    contrib: dict[str, list[Expr]] = defaultdict(list)
    for v, g in seeds.items():
        contrib[v].append(g)
    assigns: list[tuple[str, Expr]] = []
    matmuls: list[tuple[str, Expr, str]] = []
    counter = [0]

    def fresh(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    def back(e: Expr, g: Expr, out: Expr | None = None) -> None:
        """Send adjoint ``g`` into expression ``e`` (whose value is ``out``
        when known by name)."""
        if _is_num(g, 0.0):
            return
        if isinstance(e, Num):
            return
        if isinstance(e, Var):
            contrib[e.name].append(g)
            return
        if isinstance(e, Neg):
            back(e.arg, neg(g))
            return
        if isinstance(e, BinOp):
            a, b = e.left, e.right
            if e.op == "+":
                back(a, g)
                back(b, g)
            elif e.op == "-":
                back(a, g)
                back(b, neg(g))
            elif e.op == "*":
                back(a, mul(g, b))
                back(b, mul(g, a))
            elif e.op == "/":
                back(a, div(g, b))
                if not isinstance(b, Num):
                    back(b, neg(div(mul(g, out if out is not None else e), b)))
            elif e.op == "@":
                if not isinstance(a, Var):
                    raise Unsupported("the left side of @ must be a parameter matrix")
                if not isinstance(g, Var):
                    gname = name(fresh("mm"))
                    assigns.append((gname, g))
                    g = Var(gname)
                matmuls.append((a.name, b, g.name))
                back(b, Call("matmul_t", (a, g)))
            else:  # pragma: no cover
                raise Unsupported(f"operator {e.op!r}")
            return
        if isinstance(e, Call):
            if e.fn == "clamp":
                x, lo, hi = e.args
                back(Call("min", (Call("max", (x, lo)), hi)), g, out)
                return
            value = out if out is not None else e
            for arg, ga in zip(e.args, _local_derivative(e.fn, e.args, value, g)):
                back(arg, ga)
            return
        raise TypeError(f"not an expression: {e!r}")

    for eq in reversed(equations):
        if len(eq.targets) != 1:
            raise Unsupported("differentiate takes single-target equations (lower splits first)")
        t = eq.targets[0]
        g = total(contrib.pop(t, []))
        if _is_num(g, 0.0):
            continue
        dname = name(t)
        assigns.append((dname, g))
        back(eq.expr, Var(dname), Var(t))
    grads: dict[str, Expr] = {}
    for w in wrt:
        g = total(contrib.pop(w, []))
        if _is_num(g, 0.0):
            grads[w] = ZERO
            continue
        dname = name(w)
        assigns.append((dname, g))
        grads[w] = Var(dname)
    return Backward(assigns, grads, matmuls)


# ---------------------------------------------------------------- lowering

@dataclass(frozen=True)
class Leaf:
    """A named input of the lowered step.

    ``kind``: ``stream`` (a per-step input: a hoisted product ``source`` =
    (param, operand) or a raw cell input ``source`` = name), ``vector``
    (a slice of a vector parameter), ``matrix`` (a row slice of a matrix
    parameter, ``cols`` wide)."""

    kind: str
    source: object
    offset: int
    size: int
    cols: int = 0

    @property
    def param(self) -> str:
        if self.kind == "stream":
            return self.source[0] if isinstance(self.source, tuple) else ""  # type: ignore[index]
        return str(self.source)


@dataclass
class LoweredStep:
    """One step, ready for code generation and differentiation."""

    cell: str
    equations: list[Equation]  # single targets, in order
    states: list[tuple[str, int]]
    output: str
    leaves: dict[str, Leaf]
    sizes: dict[str, int]  # every variable and leaf (0: scalar)
    streams: list[tuple[object, int]] = field(default_factory=list)  # (source, size) in column order

    def leaf_names(self, kind: str) -> list[str]:
        return [n for n, lf in self.leaves.items() if lf.kind == kind]

    @property
    def new_states(self) -> list[str]:
        return [s + "'" for s, _ in self.states]

    def source(self) -> str:
        return "\n".join(f"{eq.targets[0]} = {to_source(eq.expr)}" for eq in self.equations)


def reasons(ir: "CellIR") -> list[str]:  # noqa: F821
    """Why the kernels cannot run ``ir`` (empty: they can)."""
    try:
        lower_step(ir)
    except Unsupported as e:
        return [str(e)]
    return []


def lower_step(ir: "CellIR") -> LoweredStep:  # noqa: F821
    """Lower ``ir`` (see the module doc); raises :class:`Unsupported`."""
    from rnnspec.ir.cell import CellIR  # noqa: F401  (type only)

    problems: list[str] = []
    for eq in ir.equations:
        for node in walk(eq.expr):
            if isinstance(node, Call) and node.fn in ("outer", "cat"):
                what = "outer products (second-order cells)" if node.fn == "outer" else "concatenation (cat)"
                problems.append(f"equation '{', '.join(eq.targets)} = ...' uses {node.fn}(...): {what} have no kernel "
                                "form yet (the kernels keep every vector in registers as one tile)")
    if len(ir.inputs) != 1:
        problems.append(f"the kernels take exactly one input; cell {ir.name!r} has {len(ir.inputs)}")
    if problems:
        raise Unsupported("; ".join(dict.fromkeys(problems)))

    inputs = {n for n, _ in ir.inputs}
    states = {n for n, _ in ir.states}
    pshape = {p.name: p.shape for p in ir.params}
    hoisted = {(m.param, m.operand) for m in ir.matmuls if m.hoisted}
    for (p, operand) in hoisted:
        extra = names(operand) - inputs
        if extra:
            raise Unsupported(f"the hoisted product {p} @ {to_source(operand)} reads {', '.join(sorted(extra))}, "
                              "which is not a cell input")

    orig: dict[str, Expr] = {}  # target -> expression with splits pushed down

    def size_of(e: Expr) -> int:
        if isinstance(e, Num):
            return 0
        if isinstance(e, Var):
            if e.name in pshape:
                return pshape[e.name][0]
            return ir.sizes[e.name]
        if isinstance(e, Neg):
            return size_of(e.arg)
        if isinstance(e, BinOp):
            if e.op == "@":
                return pshape[e.left.name][0]  # type: ignore[union-attr]
            return max(size_of(e.left), size_of(e.right))
        if isinstance(e, Call):
            if e.fn == "__slice":
                return int(e.args[2].value)  # type: ignore[union-attr]
            return max(size_of(a) for a in e.args)
        raise TypeError(e)

    def piece(e: Expr, j: int, k: int, where: str) -> Expr:
        """Part ``j`` of ``k`` equal parts of vector expression ``e``."""
        if isinstance(e, Num):
            return e
        n = size_of(e)
        if n == 0:
            return e
        if n % k:
            raise Unsupported(f"{where}: size {n} does not split into {k} parts")
        m = n // k
        if isinstance(e, Var):
            if e.name in pshape:
                return Call("__slice", (e, Num(j * m), Num(m)))
            if e.name in inputs:
                return Call("__slice", (e, Num(j * m), Num(m)))
            if e.name in orig:
                return piece(orig[e.name], j, k, where)
            if e.name in states:
                raise Unsupported(f"{where}: splitting the state {e.name!r} itself has no kernel form yet "
                                  "(split the product that feeds it, or use separate states)")
            raise Unsupported(f"{where}: cannot split {e.name!r}")
        if isinstance(e, Call) and e.fn == "__slice":
            inner, off, _ = e.args
            return Call("__slice", (inner, Num(off.value + j * m), Num(m)))  # type: ignore[union-attr]
        if isinstance(e, BinOp) and e.op == "@":
            return Call("__slice", (e, Num(j * m), Num(m)))
        if isinstance(e, BinOp):
            return BinOp(e.op, piece(e.left, j, k, where), piece(e.right, j, k, where))
        if isinstance(e, Neg):
            return Neg(piece(e.arg, j, k, where))
        if isinstance(e, Call):
            return Call(e.fn, tuple(piece(a, j, k, where) for a in e.args))
        raise TypeError(e)

    ordered: list[str] = []
    for eq in ir.equations:
        expr = eq.expr
        if isinstance(expr, Call) and expr.fn == "split":
            k = len(eq.targets)
            where = f"split in '{', '.join(eq.targets)} = ...'"
            for j, t in enumerate(eq.targets):
                orig[t] = piece(expr.args[0], j, k, where)
                ordered.append(t)
        else:
            orig[eq.targets[0]] = expr
            ordered.append(eq.targets[0])

    # Leaves and recurrent products.
    leaves: dict[str, Leaf] = {}
    leaf_by_key: dict[tuple, str] = {}
    out_eqs: list[Equation] = []
    sizes: dict[str, int] = {}
    operand_var: dict[Expr, str] = {}
    stream_cols: dict[object, int] = {}
    counter = [0]

    def stream_source(src: object, n: int) -> None:
        if src not in stream_cols:
            stream_cols[src] = n

    def leaf(kind: str, source: object, off: int, n: int, cols: int = 0) -> Var:
        key = (kind, source, off, n)
        if key in leaf_by_key:
            return Var(leaf_by_key[key])
        if kind == "stream":
            full = source if isinstance(source, str) else f"({source[0]} @ {to_source(source[1])})"  # type: ignore[index]
            whole = ir.sizes[source] if isinstance(source, str) else pshape[source[0]][0]  # type: ignore[index]
        else:
            full, whole = str(source), pshape[str(source)][0]
        name = full if (off == 0 and n == whole) else f"{full}[{off}:{off + n}]"
        leaves[name] = Leaf(kind, source, off, n, cols)
        leaf_by_key[key] = name
        sizes[name] = n
        return Var(name)

    def product(pname: str, operand: Expr, off: int, n: int) -> Expr:
        if (pname, operand) in hoisted:
            stream_source((pname, operand), pshape[pname][0])
            return leaf("stream", (pname, operand), off, n)
        v = leafify(operand)
        if not isinstance(v, Var) or v.name in leaves:
            if v not in operand_var:
                counter[0] += 1
                tname = f"_op{counter[0]}"
                operand_var[v] = tname
                out_eqs.append(Equation((tname,), v))
                sizes[tname] = sized(v)
            v = Var(operand_var[v])
        if (sizes.get(v.name) or ir.sizes.get(v.name, 0)) == 0:
            raise Unsupported(f"the product {pname} @ {to_source(operand)} multiplies a number, not a vector")
        rows, cols = pshape[pname]
        return BinOp("@", leaf("matrix", pname, off, n, cols), v)

    def leafify(e: Expr) -> Expr:
        if isinstance(e, Num):
            return e
        if isinstance(e, Var):
            if e.name in pshape:
                if len(pshape[e.name]) != 1:
                    raise Unsupported(f"matrix {e.name!r} used outside a product")
                return leaf("vector", e.name, 0, pshape[e.name][0])
            if e.name in inputs:
                stream_source(e.name, ir.sizes[e.name])
                return leaf("stream", e.name, 0, ir.sizes[e.name])
            return e
        if isinstance(e, Call) and e.fn == "__slice":
            inner, off, n = e.args
            off_i, n_i = int(off.value), int(n.value)  # type: ignore[union-attr]
            if isinstance(inner, Var) and inner.name in pshape:
                return leaf("vector", inner.name, off_i, n_i)
            if isinstance(inner, Var) and inner.name in inputs:
                stream_source(inner.name, ir.sizes[inner.name])
                return leaf("stream", inner.name, off_i, n_i)
            if isinstance(inner, BinOp) and inner.op == "@":
                return product(inner.left.name, inner.right, off_i, n_i)  # type: ignore[union-attr]
            raise Unsupported(f"cannot slice {to_source(inner)}")
        if isinstance(e, BinOp) and e.op == "@":
            pname = e.left.name  # type: ignore[union-attr]
            return product(pname, e.right, 0, pshape[pname][0])
        if isinstance(e, BinOp):
            return BinOp(e.op, leafify(e.left), leafify(e.right))
        if isinstance(e, Neg):
            return Neg(leafify(e.arg))
        if isinstance(e, Call):
            if e.fn not in _KNOWN:
                raise Unsupported(f"function {e.fn}(...) has no kernel form")
            return Call(e.fn, tuple(leafify(a) for a in e.args))
        raise TypeError(e)

    def sized(e: Expr) -> int:
        if isinstance(e, Num):
            return 0
        if isinstance(e, Var):
            return sizes[e.name] if e.name in sizes else ir.sizes[e.name]
        if isinstance(e, Neg):
            return sized(e.arg)
        if isinstance(e, BinOp):
            if e.op == "@":
                return leaves[e.left.name].size  # type: ignore[union-attr]
            return max(sized(e.left), sized(e.right))
        if isinstance(e, Call):
            return max(sized(a) for a in e.args)
        raise TypeError(e)

    def name_calls(e: Expr, top: bool) -> Expr:
        """Give every NAMED_CALLS call below the top its own temporary."""
        if isinstance(e, (Num, Var)):
            return e
        if isinstance(e, Neg):
            return Neg(name_calls(e.arg, False))
        if isinstance(e, BinOp):
            return BinOp(e.op, name_calls(e.left, False), name_calls(e.right, False))
        if isinstance(e, Call):
            c = Call(e.fn, tuple(named_arg(name_calls(a, False)) for a in e.args))
            if top or e.fn not in NAMED_CALLS:
                return c
            if c not in call_var:
                counter[0] += 1
                tname = f"_{e.fn}{counter[0]}"
                call_var[c] = tname
                out_eqs.append(Equation((tname,), c))
                sizes[tname] = sized(c)
            return Var(call_var[c])
        raise TypeError(e)

    def named_arg(a: Expr) -> Expr:
        """A call's compound argument (a pre-activation) gets a name, so its
        adjoint is computed once and shared by everything inside it."""
        if isinstance(a, (Num, Var)) or sized(a) == 0:
            return a
        if a not in call_var:
            counter[0] += 1
            tname = f"_z{counter[0]}"
            call_var[a] = tname
            out_eqs.append(Equation((tname,), a))
            sizes[tname] = sized(a)
        return Var(call_var[a])

    call_var: dict[Expr, str] = {}
    for t in ordered:
        e = name_calls(leafify(orig[t]), True)
        out_eqs.append(Equation((t,), e))
        sizes[t] = ir.sizes[t]
    for s, n in ir.states:
        sizes[s] = n

    # Keep what the new states and the output need.
    needed = {s + "'" for s in states} | {ir.output}
    kept: list[Equation] = []
    for eq in reversed(out_eqs):
        if eq.targets[0] in needed:
            kept.append(eq)
            needed |= names(eq.expr)
    kept.reverse()
    used = set().union(*(names(eq.expr) for eq in kept)) if kept else set()
    for lname in [n for n in leaves if n not in used]:
        del leaves[lname]
    streams = list(stream_cols.items())
    live_sources = {lf.source for lf in leaves.values() if lf.kind == "stream"}
    streams = [(s, n) for s, n in streams if s in live_sources]
    return LoweredStep(ir.name, kept, list(ir.states), ir.output, leaves, sizes, streams)


_KNOWN = frozenset(
    ["sigmoid", "tanh", "relu", "exp", "log", "softplus", "abs", "hard_sigmoid", "hard_tanh", "sin", "cos",
     "sqrt", "square", "identity", "min", "max", "clamp"]
)


def backward_of(step: LoweredStep, *, name: Callable[[str], str] = adjoint_name) -> Backward:
    """The backward step of a lowered step: seeds ``dnext[s]`` for each new
    state ``s'`` and ``dout`` for the output; adjoints of the old states,
    of every stream and vector leaf, and the matrix products."""
    seeds: dict[str, Expr] = {s + "'": Var(f"dnext[{s}]") for s, _ in step.states}
    seeds[step.output] = add(seeds[step.output], Var("dout")) if step.output in seeds else Var("dout")
    wrt = [s for s, _ in step.states] + step.leaf_names("stream") + step.leaf_names("vector")
    return differentiate(step.equations, seeds, wrt, name=name)


# ---------------------------------------------------------------- torch meaning

def evaluate(e: Expr, env: Mapping[str, object]):  # noqa: ANN201 - torch.Tensor | float
    """Value of ``e`` with torch, variables from ``env`` (matrices [rows, cols],
    vectors [n] or [B, n]); the reference semantics of every function here."""
    import torch

    from rnnspec.backends import torch_ops as ops

    def ev(x: Expr):  # noqa: ANN202
        if isinstance(x, Num):
            return float(x.value)
        if isinstance(x, Var):
            return env[x.name]
        if isinstance(x, Neg):
            return -ev(x.arg)
        if isinstance(x, BinOp):
            if x.op == "@":
                return torch.matmul(ev(x.right), ev(x.left).t())
            a, b = ev(x.left), ev(x.right)
            return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b}[x.op]()
        if isinstance(x, Call):
            args = [ev(a) for a in x.args]
            if x.fn == "matmul_t":
                return torch.matmul(args[1], args[0])
            ts = [a if isinstance(a, torch.Tensor) else torch.tensor(a, dtype=torch.float64) for a in args]
            if x.fn == "_step":
                return torch.where(ts[0] > 0, 1.0, torch.where(ts[0] == 0, 0.5, 0.0)).to(ts[0].dtype)
            if x.fn == "_pos":
                return (ts[0] > 0).to(ts[0].dtype)
            if x.fn == "_sign":
                return torch.sign(ts[0])
            if x.fn == "_inside":
                return ((ts[0] > ts[1]) & (ts[0] < ts[2])).to(ts[0].dtype)
            if x.fn in ops.UNARY:
                return ops.UNARY[x.fn][0](ts[0])
            if x.fn == "min":
                return ops.emin(args[0], args[1])
            if x.fn == "max":
                return ops.emax(args[0], args[1])
            if x.fn == "clamp":
                return ops.clamp(*args)  # type: ignore[arg-type]
            raise KeyError(x.fn)
        raise TypeError(x)

    return ev(e)
