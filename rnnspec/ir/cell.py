"""The cell IR: a cell's equations instantiated at concrete sizes, checked.

Building a :class:`CellIR` is where equations are type-checked: undefined
names, unknown functions, shape mismatches in products and sums, parameters
used with two shapes, states never updated.  Sizes are solved by unification
(union-find over dimension variables plus the few arithmetic constraints that
``split``, ``cat`` and ``outer`` add), so parameter shapes need not be
written when their use determines them.

Naming rule for implicit parameters (documented in docs/cells.md): a name
that is not an input, state, constant or earlier result is a parameter if it
is declared with ``param``, is the left operand of ``@``, or is a bias
(``b`` or ``b_...``).  Anything else is an undefined variable: that is what
catches typos like ``hh`` for ``h``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from rnnspec.errors import Pos, SpecError, did_you_mean
from rnnspec.ir.expr import BinOp, Call, Equation, Expr, Neg, Num, Var, names, walk
from rnnspec.ir.functions import FUNCTIONS

INITS: dict[str, tuple[int, ...]] = {
    # name: accepted argument counts
    "default": (0,),  # uniform(±1/sqrt(rows of the cell's state)), torch.nn.RNN's choice
    "orthogonal": (0, 1),  # optional gain
    "uniform": (0, 2),  # (lo, hi); no args: the default bound
    "normal": (1, 2),  # (std) or (mean, std)
    "xavier": (0,),
    "zeros": (0,),
    "ones": (0,),
    "constant": (1,),
    "chunks": (-1,),  # chunks(v0, v1, ...): equal parts, each a constant (LSTM forget-gate bias 1)
}

_BIAS_NAME = re.compile(r"^b(_\w*|\d*)$")


@dataclass(frozen=True)
class Init:
    name: str = "default"
    args: tuple[float, ...] = ()

    def __str__(self) -> str:
        if not self.args and self.name != "constant":
            return self.name
        return f"{self.name}(" + ", ".join(_num(a) for a in self.args) + ")"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def parse_init_text(text: str, pos: Pos) -> Init:
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*", text)
    if not m:
        raise SpecError(f"bad initializer {text!r}; expected e.g. orthogonal or uniform(-0.1, 0.1)", pos)
    name, args_text = m.group(1), m.group(2)
    if name not in INITS:
        raise SpecError(f"unknown initializer {name!r}{did_you_mean(name, INITS)}; expected one of {', '.join(INITS)}", pos)
    args = tuple(float(a) for a in args_text.split(",")) if args_text and args_text.strip() else ()
    if -1 not in INITS[name] and len(args) not in INITS[name]:
        want = " or ".join(str(n) for n in INITS[name])
        raise SpecError(f"initializer {name} takes {want} argument(s), got {len(args)}", pos)
    return Init(name, args)


@dataclass(frozen=True)
class Param:
    name: str
    shape: tuple[int, ...]
    init: Init
    pos: Pos = field(compare=False, repr=False, default=Pos("<cell>"))


@dataclass(frozen=True)
class MatMul:
    """One ``P @ e`` product; ``hoisted`` when ``e`` does not depend on the state
    (then it is computed for all time steps at once, outside the loop)."""

    param: str
    operand: Expr
    hoisted: bool


@dataclass(frozen=True)
class CellIR:
    name: str
    inputs: tuple[tuple[str, int], ...]
    states: tuple[tuple[str, int], ...]
    params: tuple[Param, ...]
    equations: tuple[Equation, ...]
    output: str  # name of the variable that is the cell's output at each step
    sizes: Mapping[str, int]  # size of every variable (0: scalar)
    matmuls: tuple[MatMul, ...]

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.states)

    @property
    def output_size(self) -> int:
        return self.sizes[self.output]

    @property
    def recurrent_params(self) -> frozenset[str]:
        return frozenset(m.param for m in self.matmuls if not m.hoisted)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


# ---------------------------------------------------------------- dimension solver

class _Dims:
    """Union-find over dimension variables with known values and
    ``result = k * part``, ``result = sum(parts)``, ``result = a * b`` facts."""

    def __init__(self, render: "callable[[int], str]") -> None:  # type: ignore[valid-type]
        self.parent: list[int] = []
        self.value: list[int | None] = []
        self.facts: list[tuple[str, int, tuple[int, ...], int, Pos]] = []
        self.render = render

    def new(self, value: int | None = None) -> int:
        self.parent.append(len(self.parent))
        self.value.append(value)
        return len(self.parent) - 1

    def find(self, d: int) -> int:
        while self.parent[d] != d:
            self.parent[d] = self.parent[self.parent[d]]
            d = self.parent[d]
        return d

    def get(self, d: int) -> int | None:
        return self.value[self.find(d)]

    def unify(self, a: int, b: int, pos: Pos, what: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        va, vb = self.value[ra], self.value[rb]
        if va is not None and vb is not None and va != vb:
            raise SpecError(f"shape mismatch in {what}: {self.render(va)} vs {self.render(vb)}", pos)
        self.parent[rb] = ra
        self.value[ra] = va if va is not None else vb

    def set(self, d: int, v: int, pos: Pos, what: str) -> None:
        self.unify(d, self.new(v), pos, what)

    def solve(self) -> None:
        changed = True
        while changed:
            changed = False
            for kind, res, parts, k, pos in self.facts:
                vr = self.get(res)
                vs = [self.get(p) for p in parts]
                if kind == "scale":  # res = k * part
                    if vr is None and vs[0] is not None:
                        self.set(res, k * vs[0], pos, "split")
                        changed = True
                    elif vr is not None and vs[0] is None:
                        if vr % k:
                            raise SpecError(f"split: size {self.render(vr)} does not divide into {k} equal parts", pos)
                        self.set(parts[0], vr // k, pos, "split")
                        changed = True
                    elif vr is not None and vs[0] is not None and vr != k * vs[0]:
                        raise SpecError(f"split: {self.render(vr)} is not {k} x {self.render(vs[0])}", pos)
                elif kind == "sum":
                    if vr is None and all(v is not None for v in vs):
                        self.set(res, sum(vs), pos, "cat")  # type: ignore[arg-type]
                        changed = True
                    elif vr is not None and sum(v is None for v in vs) == 1:
                        missing = vs.index(None)
                        rest = vr - sum(v for v in vs if v is not None)
                        if rest <= 0:
                            raise SpecError("cat: the parts are larger than the whole", pos)
                        self.set(parts[missing], rest, pos, "cat")
                        changed = True
                elif kind == "prod":
                    if vr is None and all(v is not None for v in vs):
                        self.set(res, vs[0] * vs[1], pos, "outer")  # type: ignore[operator]
                        changed = True


# ---------------------------------------------------------------- building

SCALAR = -1  # dimension id of scalar expressions


def build_cell(
    name: str,
    inputs: Iterable[str],
    state: Mapping[str, int | str],
    equations: Iterable[Equation],
    *,
    consts: Mapping[str, int | float | str] | None = None,
    params: Mapping[str, tuple[list[int | str] | None, str | None, Pos]] | None = None,
    output: str | None = None,
    input_sizes: Mapping[str, int],
    sizes: Mapping[str, int],
    drop_bias: bool = False,
    origin: Pos | None = None,
) -> CellIR:
    """Instantiate and check a cell at concrete sizes.

    ``params`` maps declared parameter names to (shape, init text, position);
    ``sizes`` gives the named sizes (``hidden`` and friends); ``drop_bias``
    removes every bias term (``bias: false`` in a layer, torch's ``bias=False``).
    """
    origin = origin or Pos("<cell>")
    consts = dict(consts or {})
    params = dict(params or {})
    equations = list(equations)
    names_of_size = {v: k for k, v in sizes.items()}

    def render(v: int) -> str:
        if v in names_of_size:
            return f"[{names_of_size[v]}={v}]"
        for n, s in sizes.items():
            if s and v % s == 0 and v // s > 1:
                return f"[{v // s}*{n}={v}]"
        return f"[{v}]"

    dims = _Dims(render)

    def size_of(spec: int | str, pos: Pos) -> int:
        if isinstance(spec, int):
            return spec
        m = re.fullmatch(r"(?:(\d+)\*)?([A-Za-z_]\w*)", spec.replace(" ", ""))
        if not m:
            raise SpecError(f"bad size {spec!r}; expected a number, a name like hidden, or 4*hidden", pos)
        k, n = int(m.group(1) or 1), m.group(2)
        if n not in sizes:
            raise SpecError(
                f"size {n!r} is not given{did_you_mean(n, sizes)}; the layer must set it (sizes in scope: {', '.join(sorted(sizes)) or 'none'})",
                pos,
            )
        return k * sizes[n]

    inputs = list(inputs)
    env: dict[str, int] = {}  # variable -> dim id
    kind_of: dict[str, str] = {}
    for x in inputs:
        if x not in input_sizes:
            raise SpecError(f"no size for input {x!r}", origin)
        env[x] = dims.new(input_sizes[x])
        kind_of[x] = "input"
    state_sizes: dict[str, int] = {}
    for s, spec in state.items():
        if s in env:
            raise SpecError(f"{s!r} is both an input and a state", origin)
        state_sizes[s] = size_of(spec, origin)
        env[s] = dims.new(state_sizes[s])
        kind_of[s] = "state"
    const_values: dict[str, float | str] = {}
    for c, v in consts.items():
        if c in env:
            raise SpecError(f"constant {c!r} clashes with an input or state", origin)
        const_values[c] = v
        kind_of[c] = "const"

    # Parameters: dims are created on first use, shapes checked against declarations.
    p_shape: dict[str, tuple[int, ...]] = {}  # dim ids
    p_pos: dict[str, Pos] = {}
    p_used_as: dict[str, str] = {}

    def param_dims(pname: str, ndim: int, pos: Pos) -> tuple[int, ...]:
        if pname in p_shape:
            if len(p_shape[pname]) != ndim:
                was = "a matrix (left of @)" if len(p_shape[pname]) == 2 else "a vector (elementwise)"
                raise SpecError(
                    f"parameter {pname!r} is used with two shapes: as {was} at line {p_pos[pname].line}, "
                    f"and here as {'a matrix' if ndim == 2 else 'a vector'}",
                    pos,
                )
            return p_shape[pname]
        declared = params.get(pname)
        ids = tuple(dims.new() for _ in range(ndim))
        if declared and declared[0] is not None:
            shape_spec, _, dpos = declared
            if len(shape_spec) != ndim:
                raise SpecError(
                    f"parameter {pname!r} is declared with {len(shape_spec)} dimension(s) but used as "
                    f"{'a matrix' if ndim == 2 else 'a vector'}",
                    pos,
                )
            for d, spec in zip(ids, shape_spec):
                dims.set(d, size_of(spec, dpos), pos, f"parameter {pname!r} (declared shape)")
        p_shape[pname] = ids
        p_pos[pname] = pos
        return ids

    def substitute(e: Expr) -> Expr:
        """Constants become numbers; function-valued constants rename calls."""
        if isinstance(e, Var) and e.name in const_values:
            v = const_values[e.name]
            if isinstance(v, str):
                raise SpecError(f"constant {e.name!r} is the function {v!r}; call it as {e.name}(...)", e.pos)
            return Num(float(v), e.pos)
        if isinstance(e, Neg):
            return Neg(substitute(e.arg), e.pos)
        if isinstance(e, BinOp):
            return BinOp(e.op, substitute(e.left), substitute(e.right), e.pos)
        if isinstance(e, Call):
            fn = e.fn
            if fn in const_values:
                v = const_values[fn]
                if not isinstance(v, str):
                    raise SpecError(f"{fn!r} is the number {v}, not a function", e.pos)
                fn = v
            return Call(fn, tuple(substitute(a) for a in e.args), e.pos)
        return e

    # Names used left of `@` anywhere are matrices, so using one elementwise
    # elsewhere is "two shapes", not "undefined".
    matrices = {
        node.left.name
        for eq in equations
        for node in walk(eq.expr)
        if isinstance(node, BinOp) and node.op == "@" and isinstance(node.left, Var)
    }

    def is_param_name(n: str, as_matrix: bool) -> bool:
        return n in params or as_matrix or n in matrices or _BIAS_NAME.match(n) is not None

    def undefined(v: Var) -> SpecError:
        known = [k for k in env] + [k for k in const_values]
        later = [eq for eq in equations if v.name in eq.targets]
        if later:
            return SpecError(f"{v.name!r} is used before it is computed (at line {later[0].pos.line})", v.pos)
        return SpecError(
            f"undefined variable {v.name!r}{did_you_mean(v.name, known)}; inputs and states are "
            f"{', '.join(list(inputs) + list(state))}; a parameter must be declared (param {v.name}: ...) "
            f"unless it is a matrix (left of @) or a bias (b_...)",
            v.pos,
        )

    def dim(e: Expr) -> int:
        if isinstance(e, Num):
            return SCALAR
        if isinstance(e, Var):
            if e.name in env:
                return env[e.name]
            if e.name.endswith("'") and e.name[:-1] in state_sizes:
                raise SpecError(f"{e.name!r} is used before its equation", e.pos)
            if not is_param_name(e.name, False):
                raise undefined(e)
            if e.name in kind_of:
                raise SpecError(f"{e.name!r} is a {kind_of[e.name]}, not a parameter", e.pos)
            return param_dims(e.name, 1, e.pos)[0]
        if isinstance(e, Neg):
            return dim(e.arg)
        if isinstance(e, BinOp):
            if e.op == "@":
                if not isinstance(e.left, Var):
                    raise SpecError("the left side of @ must be a parameter matrix, e.g. W @ x", e.left.pos)
                lname = e.left.name
                if lname in env or lname in const_values:
                    raise SpecError(f"{lname!r} is a variable; the left side of @ must be a parameter matrix", e.left.pos)
                rows, cols = param_dims(lname, 2, e.left.pos)
                rd = dim(e.right)
                if rd == SCALAR:
                    raise SpecError("the right side of @ must be a vector, not a number", e.right.pos)
                dims.unify(cols, rd, e.pos, f"{lname} @ ...: columns of {lname} vs the vector's size")
                return rows
            a, b = dim(e.left), dim(e.right)
            if a == SCALAR:
                return b
            if b == SCALAR:
                return a
            dims.unify(a, b, e.pos, f"'{e.op}' (both sides must have the same size)")
            return a
        if isinstance(e, Call):
            fn = FUNCTIONS.get(e.fn)
            if fn is None:
                raise SpecError(f"unknown function {e.fn!r}{did_you_mean(e.fn, FUNCTIONS)}; known: {', '.join(sorted(FUNCTIONS))}", e.pos)
            if fn.kind == "split":
                raise SpecError("split(...) gives several results: write  a, b = split(x, 2)", e.pos)
            if fn.arity >= 0 and len(e.args) != fn.arity:
                raise SpecError(f"{e.fn} takes {fn.arity} argument(s), got {len(e.args)}", e.pos)
            if fn.kind == "cat":
                if len(e.args) < 2:
                    raise SpecError("cat takes two or more vectors", e.pos)
                parts = [dim(a) for a in e.args]
                if SCALAR in parts:
                    raise SpecError("cat joins vectors, not numbers", e.pos)
                res = dims.new()
                dims.facts.append(("sum", res, tuple(parts), 0, e.pos))
                return res
            if fn.kind == "outer":
                parts = [dim(a) for a in e.args]
                if SCALAR in parts:
                    raise SpecError("outer takes two vectors", e.pos)
                res = dims.new()
                dims.facts.append(("prod", res, tuple(parts), 0, e.pos))
                return res
            out = SCALAR
            for a in e.args:
                d = dim(a)
                if d == SCALAR:
                    continue
                if out == SCALAR:
                    out = d
                else:
                    dims.unify(out, d, e.pos, f"{e.fn}(...) arguments")
            return out
        raise SpecError(f"unexpected expression {e!r}", origin)

    # First pass: which names are matrices (left of @), for the bias rule.
    out_eqs: list[Equation] = []
    defined_at: dict[str, Pos] = {}
    for eq in equations:
        expr = substitute(eq.expr)
        tpos = eq.target_pos or tuple(eq.pos for _ in eq.targets)
        for t, tp in zip(eq.targets, tpos):
            if t.endswith("'"):
                if t[:-1] not in state_sizes:
                    raise SpecError(
                        f"{t!r} updates {t[:-1]!r}, which is not a state{did_you_mean(t[:-1], state_sizes)}; "
                        f"states are {', '.join(state_sizes) or 'none'}",
                        tp,
                    )
            elif t in kind_of or t in state_sizes:
                raise SpecError(f"cannot assign to {kind_of.get(t, 'state')} {t!r}; write {t}' for its new value", tp)
            if t in defined_at:
                raise SpecError(f"{t!r} is assigned twice (first at line {defined_at[t].line})", tp)
            if t in params:
                raise SpecError(f"{t!r} is a declared parameter and cannot be assigned", tp)
        if isinstance(expr, Call) and expr.fn == "split":
            if len(expr.args) != 2 or not isinstance(expr.args[1], Num) or not float(expr.args[1].value).is_integer():
                raise SpecError("split takes a vector and a whole number of parts: split(x, 4)", expr.pos)
            n = int(expr.args[1].value)
            if n != len(eq.targets):
                raise SpecError(f"split into {n} parts but {len(eq.targets)} name(s) on the left", eq.pos)
            whole = dim(expr.args[0])
            if whole == SCALAR:
                raise SpecError("split takes a vector", expr.pos)
            part = dims.new()
            dims.facts.append(("scale", whole, (part,), n, expr.pos))
            for t in eq.targets:
                env[t] = dims.new()
                dims.unify(env[t], part, eq.pos, "split")
        else:
            if len(eq.targets) != 1:
                raise SpecError("several names on the left need split(...) on the right", eq.pos)
            d = dim(expr)
            t = eq.targets[0]
            if d == SCALAR:
                d = dims.new()  # a scalar broadcast to a vector is fine only if sized elsewhere
            env[t] = d
            if t.endswith("'"):
                dims.unify(d, env[t[:-1]], eq.pos, f"the new value of state {t[:-1]!r}")
        for t, tp in zip(eq.targets, tpos):
            defined_at[t] = tp
            kind_of[t] = "result"
        out_eqs.append(Equation(eq.targets, expr, eq.pos, eq.target_pos))

    for s in state_sizes:
        if s + "'" not in env:
            raise SpecError(f"state {s!r} is never updated; add an equation  {s}' = ...", origin)
    for pname in params:
        if pname not in p_shape:
            raise SpecError(f"parameter {pname!r} is declared but never used", params[pname][2])
    out_name = output if output is not None else next(iter(state_sizes), None)
    if out_name is None:
        raise SpecError("a cell needs at least one state", origin)
    if out_name in state_sizes:
        out_name = out_name + "'"
    if out_name not in env:
        raise SpecError(f"output {out_name!r} is not computed by the cell", origin)

    dims.solve()
    plist: list[Param] = []
    for pname, ids in p_shape.items():
        shape = []
        for d in ids:
            v = dims.get(d)
            if v is None:
                raise SpecError(
                    f"cannot infer the size of parameter {pname!r}; declare it, e.g. param {pname}[hidden]",
                    p_pos[pname],
                )
            shape.append(v)
        decl = params.get(pname)
        init = parse_init_text(decl[1], decl[2]) if decl and decl[1] else Init()
        plist.append(Param(pname, tuple(shape), init, p_pos[pname]))
    var_sizes: dict[str, int] = {}
    for v, d in env.items():
        val = dims.get(d)
        if val is None:
            raise SpecError(f"cannot infer the size of {v!r}", defined_at.get(v, origin))
        var_sizes[v] = val

    if drop_bias:
        out_eqs, plist = _without_bias(out_eqs, plist)

    state_dependent = set(state_sizes)
    matmuls: list[MatMul] = []
    for eq in out_eqs:
        for node in walk(eq.expr):
            if isinstance(node, BinOp) and node.op == "@":
                hoisted = not (names(node.right) & state_dependent)
                matmuls.append(MatMul(node.left.name, node.right, hoisted))  # type: ignore[union-attr]
        if names(eq.expr) & state_dependent:
            state_dependent.update(eq.targets)

    return CellIR(
        name=name,
        inputs=tuple((x, input_sizes[x]) for x in inputs),
        states=tuple(state_sizes.items()),
        params=tuple(plist),
        equations=tuple(out_eqs),
        output=out_name,
        sizes=var_sizes,
        matmuls=tuple(matmuls),
    )


def _without_bias(eqs: list[Equation], plist: list[Param]) -> tuple[list[Equation], list[Param]]:
    """Drop biases: vector parameters that only ever appear as summands
    (``a + b`` becomes ``a``).  Vector parameters used any other way
    (IndRNN's ``u * h``, a time constant) stay."""
    vectors = {p.name for p in plist if len(p.shape) == 1}
    other_use: set[str] = set()

    def scan(e: Expr, in_sum: bool) -> None:
        """Record vector parameters used other than as a term of a sum."""
        if isinstance(e, Var):
            if not in_sum:
                other_use.add(e.name)
        elif isinstance(e, BinOp):
            scan(e.left, e.op in "+-")
            scan(e.right, e.op in "+-")
        elif isinstance(e, Neg):
            scan(e.arg, in_sum)
        elif isinstance(e, Call):
            for a in e.args:
                scan(a, False)

    for eq in eqs:
        scan(eq.expr, False)
    biases = vectors - other_use

    def summands(e: Expr) -> Expr | None:
        if isinstance(e, Var) and e.name in biases:
            return None
        if isinstance(e, BinOp) and e.op in "+-":
            left, right = summands(e.left), summands(e.right)
            if right is None:
                return left
            if left is None:
                return right if e.op == "+" else Neg(right, e.pos)
            return BinOp(e.op, left, right, e.pos)
        if isinstance(e, BinOp):
            return BinOp(e.op, e.left, e.right, e.pos)
        if isinstance(e, Call):
            return Call(e.fn, tuple(summands(a) or Num(0.0, a.pos) for a in e.args), e.pos)
        return e

    new_eqs = [Equation(eq.targets, summands(eq.expr) or Num(0.0, eq.pos), eq.pos, eq.target_pos) for eq in eqs]
    return new_eqs, [p for p in plist if p.name not in biases]


def fan_bound(p: Param, states: tuple[tuple[str, int], ...]) -> float:
    """torch.nn.RNN's default bound: 1/sqrt(hidden), hidden = the first state's size."""
    hidden = states[0][1] if states else p.shape[0]
    return 1.0 / math.sqrt(max(hidden, 1))
