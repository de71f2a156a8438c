"""Triton source for a cell's recurrence, generated from its IR.

For a :class:`~rnnspec.ir.cell.CellIR` this module writes one Python file
with two ``@triton.jit`` kernels:

``forward_kernel``
    The whole sequence in ONE launch: the time loop runs inside the kernel.
    Each program owns a tile of ``BB`` sequences and the whole state; the
    recurrent weights are loaded once, before the loop, and stay on chip.
    Per step it streams the hoisted input products ``pre[t]`` (computed by
    one GEMM over all steps before the launch), evaluates every equation
    fused, freezes the state and zeroes the output past each sequence's
    length, and writes the output and the new state.

``backward_kernel``
    Backpropagation through time in ONE launch: the reverse time loop runs
    inside the kernel with the state gradient carried on chip.  Per step it
    recomputes the step from the saved states, applies the symbolic
    derivative (:mod:`rnnspec.ir.diff`) and writes the gradient of the
    hoisted pre-activations (the input-weight gradients are then one GEMM in
    torch).  Recurrent-weight and elementwise-parameter gradients are summed
    over time either on chip (``ON_CHIP``: one partial per program) or, by
    default, as GEMMs over all steps at once from the per-step adjoints the
    kernel writes (no accumulators on chip: measured with kernels/aot.py,
    the on-chip accumulators are what makes the backward spill).

What the forward saves for backward: the states before and after every
step, ``hs[T+1, B, S]`` (S = all states side by side), nothing else; the
backward recomputes gates from them (one extra recurrent product per step,
``S`` floats per step and sequence of memory instead of every gate).

When one program cannot hold a cell (large hidden sizes), a second file
(:func:`generate_split`) splits the units of every vector over ``P``
programs per batch tile, exchanging the previous state and the products'
adjoints through global memory behind a grid barrier; see
:class:`SplitPlan`.  Under the interpreter, launch boundaries take the
barrier's place and the same step code runs.

Generated files are cached under ``$RNNSPEC_CACHE`` (default
``~/.cache/rnnspec/kernels``), named by a hash of the IR (and of this
generator), and imported from there: Triton's ``@triton.jit`` needs real
source files.

Layout the kernels assume (the launcher provides it):

- ``pre``  [T, B, P] contiguous: the per-step streams side by side
  (hoisted products, then raw inputs used elementwise), any float dtype;
- ``lens`` [B] int32; ``s0`` [B, S]; ``hs`` [T+1, B, S] float32;
  ``out`` [T, B, O]; parameters contiguous, any float dtype.

Everything is computed in float32 inside the kernels (16-bit weights may
stay 16-bit on chip on a GPU: ``KEEP_WDT``).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from rnnspec.ir.cell import CellIR
from rnnspec.ir.diff import (
    Backward,
    Leaf,
    LoweredStep,
    Unsupported,
    backward_of,
    lower_step,
)
from rnnspec.ir.expr import BinOp, Call, Expr, Neg, Num, Var, equation_source, names, to_source

VERSION = "1"  # bump when the generated code changes shape
MIN_TILE = 16  # tl.dot needs every dimension >= 16 on a GPU
BLOCK_B = 16  # sequences per program (the launcher's batch tile)
K_CHUNK = 32  # reduction chunk of the streamed products (split kernels, STREAM)


def padded(n: int) -> int:
    """The power-of-two tile width that holds ``n`` lanes (at least 16)."""
    p = MIN_TILE
    while p < n:
        p *= 2
    return p


# ---------------------------------------------------------------- the plan

@dataclass
class KernelPlan:
    """Everything the generator and the launcher agree on for one cell."""

    ir: CellIR
    step: LoweredStep
    backward: Backward
    state_offsets: list[tuple[str, int, int]]  # (state, size, column in s0/hs)
    S: int
    streams: list[tuple[object, int, int]]  # (source, size, first column in pre)
    P: int
    O: int
    matrices: list[str]  # distinct matrix parameters, in kernel-argument order
    vectors: list[str]  # distinct vector parameters, in kernel-argument order
    matrix_leaves: list[tuple[str, Leaf]] = field(default_factory=list)
    vector_leaves: list[tuple[str, Leaf]] = field(default_factory=list)
    stream_leaves: list[tuple[str, Leaf]] = field(default_factory=list)
    # Parameter gradients as GEMMs after the kernel (ON_CHIP=False): where
    # each adjoint and operand is found per step ("dpre", "dadj", "ops" or
    # "hs" = the state before the step), and the terms that use them.
    where: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # var -> (buffer, column, size)
    A: int = 0  # columns of dadj [T, B, A]: adjoints written for the parameter GEMMs
    C: int = 0  # columns of ops [T, B, C]: product operands that are not states
    matrix_terms: list[tuple[str, str, str]] = field(default_factory=list)  # (matrix leaf, adjoint var, operand var)
    vector_terms: list[tuple[str, str]] = field(default_factory=list)  # (vector leaf, adjoint var)

    def stream_col(self, leaf: Leaf) -> int:
        for src, _, col in self.streams:
            if src == leaf.source:
                return col + leaf.offset
        raise KeyError(leaf.source)

    @property
    def key(self) -> str:
        return ir_hash(self.ir)

    @property
    def num_warps(self) -> int:
        """Warps per program: 8 once a tile is 64 wide (measured with
        kernels/aot.py: 4 warps spill there), else 4."""
        widest = max([padded(n) for n in self.step.sizes.values() if n] + [padded(lf.cols) for _, lf in self.matrix_leaves])
        return 8 if widest >= 64 else 4

    @property
    def weight_floats(self) -> int:
        """Floats of recurrent weights one program holds on chip (padded tiles)."""
        return sum(padded(lf.size) * padded(lf.cols) for _, lf in self.matrix_leaves)


def _generator_fingerprint() -> str:
    """A hash of the generator's own source, so a changed generator never
    reuses a stale cached kernel file."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        from rnnspec.ir import diff

        h = hashlib.sha256(VERSION.encode())
        for mod_file in (__file__, diff.__file__):
            try:
                h.update(Path(mod_file).read_bytes())
            except OSError:  # pragma: no cover - zipped install
                pass
        _FINGERPRINT = h.hexdigest()[:12]
    return _FINGERPRINT


_FINGERPRINT: str | None = None


_HASHES: dict[int, tuple[CellIR, str]] = {}


def ir_hash(ir: CellIR) -> str:
    """A stable hash of everything in ``ir`` the kernels depend on (and of
    the generator that writes them)."""
    hit = _HASHES.get(id(ir))
    if hit is not None and hit[0] is ir:
        return hit[1]
    if len(_HASHES) > 4096:
        _HASHES.clear()
    h = _ir_hash(ir)
    _HASHES[id(ir)] = (ir, h)
    return h


def _ir_hash(ir: CellIR) -> str:
    text = "\n".join(
        [
            f"v{VERSION} {_generator_fingerprint()} cell {ir.name}",
            "inputs " + repr(tuple(ir.inputs)),
            "states " + repr(tuple(ir.states)),
            "params " + repr(tuple((p.name, p.shape) for p in ir.params)),
            "output " + ir.output,
            *(equation_source(eq) for eq in ir.equations),
            "hoisted " + repr(sorted((m.param, to_source(m.operand)) for m in ir.matmuls if m.hoisted)),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:20]


_PLANS: dict[int, tuple[CellIR, object]] = {}  # id(ir) -> (ir, KernelPlan or Unsupported): IRs are immutable


def plan(ir: CellIR) -> KernelPlan:
    """Lower, differentiate and lay out ``ir``; raises :class:`Unsupported`.
    (Memoized per IR object: a layer asks on every call.)"""
    hit = _PLANS.get(id(ir))
    if hit is None or hit[0] is not ir:
        try:
            result: object = _plan(ir)
        except Unsupported as e:
            result = e
        if len(_PLANS) > 4096:
            _PLANS.clear()
        _PLANS[id(ir)] = hit = (ir, result)
    if isinstance(hit[1], Unsupported):
        raise hit[1]
    return hit[1]  # type: ignore[return-value]


def _plan(ir: CellIR) -> KernelPlan:
    step = lower_step(ir)
    bwd = backward_of(step)
    offs, s = [], 0
    for name, n in step.states:
        offs.append((name, n, s))
        s += n
    streams, p = [], 0
    for src, n in step.streams:
        streams.append((src, n, p))
        p += n
    mats: list[str] = []
    vecs: list[str] = []
    ml, vl, sl = [], [], []
    for lname, lf in step.leaves.items():
        if lf.kind == "matrix":
            ml.append((lname, lf))
            if lf.param not in mats:
                mats.append(lf.param)
        elif lf.kind == "vector":
            vl.append((lname, lf))
            if lf.param not in vecs:
                vecs.append(lf.param)
        else:
            sl.append((lname, lf))
    # Stream gradients are stored, not accumulated: two leaves on the same
    # columns would overwrite each other.
    for i, (n1, a) in enumerate(sl):
        for n2, b in sl[i + 1 :]:
            if a.source == b.source and a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                raise Unsupported(f"the input {n1} is used both whole and in parts ({n2}); "
                                  "the kernels need each part of an input used one way")
    out_size = step.sizes[step.output]
    kp = KernelPlan(ir, step, bwd, offs, s, streams, p, out_size, mats, vecs, ml, vl, sl)
    _layout_param_grads(kp)
    return kp


def _layout_param_grads(kp: KernelPlan) -> None:
    """Where the per-step adjoints and operands of the parameter gradients
    live when those gradients are GEMMs after the kernel."""
    bwd = kp.backward
    alias: dict[str, str] = {t: e.name for t, e in bwd.assignments if isinstance(e, Var)}

    def resolve(v: str) -> str:
        while v in alias:
            v = alias[v]
        return v

    sizes = dict(kp.step.sizes)
    for t, _ in bwd.assignments:
        m = re.fullmatch(r"d\[(.*)\]", t)
        if m and m.group(1) in sizes:
            sizes[t] = sizes[m.group(1)]
    for mname, _, g in bwd.matmuls:
        sizes.setdefault(g, kp.step.leaves[mname].size)
    where = kp.where
    for lname, lf in kp.stream_leaves:
        g = bwd.grads[lname]
        if isinstance(g, Var):
            where.setdefault(resolve(g.name), ("dpre", kp.stream_col(lf), lf.size))
    for s, n, off in kp.state_offsets:
        where[s] = ("hs", off, n)
    a = c = 0
    for mname, operand, g in bwd.matmuls:
        g = resolve(g)
        if g not in where:
            n = kp.step.leaves[mname].size
            where[g] = ("dadj", a, n)
            a += n
        assert isinstance(operand, Var)
        v = operand.name
        if v not in where:
            n = kp.step.leaves[mname].cols
            where[v] = ("ops", c, n)
            c += n
        kp.matrix_terms.append((mname, g, v))
    for lname, lf in kp.vector_leaves:
        g = bwd.grads[lname]
        if not isinstance(g, Var):
            continue
        gname = resolve(g.name)
        if gname not in where:
            where[gname] = ("dadj", a, lf.size)
            a += lf.size
        kp.vector_terms.append((lname, gname))
    kp.A, kp.C = a, c


def explain(ir: CellIR) -> list[str]:
    """Why the generated kernels cannot run ``ir``; empty when they can."""
    try:
        plan(ir)
    except Unsupported as e:
        return [f"cell {ir.name!r}: {e}"]
    return []


# ---------------------------------------------------------------- names

_RESERVED = {
    "tl", "triton", "pid", "rows", "rmask", "rm", "L", "live", "t", "tt", "T", "B", "BB", "PREC",
    "pre_t", "hs_t", "out_t", "dout_t", "dpre_t", "dout", "pre_ptr", "len_ptr", "s0_ptr", "hs_ptr",
    "out_ptr", "dout_ptr", "dsT_ptr", "dpre_ptr", "ds0_ptr",
}


class Names:
    """Python identifiers for the IR's names (``h'`` -> ``v_h_n``), unique."""

    def __init__(self) -> None:
        self.map: dict[str, str] = {"dout": "dout"}
        self.taken = set(_RESERVED)

    def __call__(self, name: str) -> str:
        if name in self.map:
            return self.map[name]
        m = re.fullmatch(r"(d|dnext)\[(.*)\]", name)
        prefix, inner = ("d_" if m.group(1) == "d" else "dn_", m.group(2)) if m else ("v_", name)
        body = inner.replace("'", "_n").replace("@", "at").replace(":", "_")
        body = re.sub(r"\W+", "_", body).strip("_") or "v"
        ident = prefix + body
        k = 2
        while ident in self.taken:
            ident = f"{prefix}{body}_{k}"
            k += 1
        self.taken.add(ident)
        self.map[name] = ident
        return ident


# ---------------------------------------------------------------- emission

class _Emitter:
    def __init__(self, kp: KernelPlan) -> None:
        self.kp = kp
        self.step = kp.step
        self.n = Names()
        self.sizes: dict[str, int] = dict(kp.step.sizes)
        for s, n in kp.step.states:
            self.sizes[f"dnext[{s}]"] = n
        self.sizes["dout"] = kp.O
        self.batched: set[str] = {s for s, _ in kp.step.states} | {n for n, _ in kp.stream_leaves}
        self.batched |= {f"dnext[{s}]" for s, _ in kp.step.states} | {"dout"}
        self.widths: set[int] = set()
        self.lane_sizes: set[int] = set()
        self.tile_names: dict[str, tuple[str, str]] = {}
        for lname, _ in kp.matrix_leaves:
            base = self.n(lname)[2:]
            self.tile_names[lname] = ("wt_" + base, "w_" + base)

    # sizes -------------------------------------------------------
    def size(self, e: Expr) -> int:
        if isinstance(e, Num):
            return 0
        if isinstance(e, Var):
            return self.sizes[e.name]
        if isinstance(e, Neg):
            return self.size(e.arg)
        if isinstance(e, BinOp):
            if e.op == "@":
                return self.step.leaves[e.left.name].size  # type: ignore[union-attr]
            return max(self.size(e.left), self.size(e.right))
        if isinstance(e, Call):
            if e.fn == "matmul_t":
                return self.step.leaves[e.args[0].name].cols  # type: ignore[union-attr]
            return max(self.size(a) for a in e.args)
        raise TypeError(e)

    def is_batched(self, e: Expr) -> bool:
        return bool(names(e) & self.batched) or any(isinstance(x, BinOp) and x.op == "@" for x in _walk(e))

    def lane(self, n: int) -> str:
        self.lane_sizes.add(n)
        self.widths.add(padded(n))
        return f"ln{n}"

    def ar(self, n: int) -> str:
        self.widths.add(padded(n))
        return f"ar{padded(n)}"

    # expressions -------------------------------------------------
    def expr(self, e: Expr) -> str:
        if isinstance(e, Num):
            return repr(float(e.value))
        if isinstance(e, Var):
            return self.n(e.name)
        if isinstance(e, Neg):
            return f"(-{self.expr(e.arg)})"
        if isinstance(e, BinOp):
            if e.op == "@":
                lname = e.left.name  # type: ignore[union-attr]
                lf = self.step.leaves[lname]
                wt = self.tile_names[lname][0]
                return (f"tl.dot(tl.where({self.lane(lf.cols)}, {self.expr(e.right)}, 0.0).to({wt}.dtype), "
                        f"{wt}, input_precision=PREC)")
            return f"({self.expr(e.left)} {e.op} {self.expr(e.right)})"
        if isinstance(e, Call):
            a = [self.expr(x) for x in e.args]
            f = e.fn
            if f == "matmul_t":
                lname = e.args[0].name  # type: ignore[union-attr]
                lf = self.step.leaves[lname]
                w = self.tile_names[lname][1]
                return (f"tl.dot(tl.where({self.lane(lf.size)}, {a[1]}, 0.0).to({w}.dtype), "
                        f"{w}, input_precision=PREC)")
            # numbers first in min/max would be python floats: put tensors first
            if f in ("min", "max", "clamp") and isinstance(e.args[0], Num) and f != "clamp":
                a = [a[1], a[0]]
            table = {
                "sigmoid": "tl.sigmoid({0})",
                "tanh": "_tanh({0})",
                "relu": "tl.maximum({0}, 0.0)",
                "exp": "tl.exp({0})",
                "log": "tl.log({0})",
                "softplus": "_softplus({0})",
                "abs": "tl.abs({0})",
                "hard_sigmoid": "tl.minimum(tl.maximum({0} / 6.0 + 0.5, 0.0), 1.0)",
                "hard_tanh": "tl.minimum(tl.maximum({0}, -1.0), 1.0)",
                "sin": "tl.sin({0})",
                "cos": "tl.cos({0})",
                "sqrt": "tl.sqrt({0})",
                "square": "({0} * {0})",
                "identity": "{0}",
                "min": "tl.minimum({0}, {1})",
                "max": "tl.maximum({0}, {1})",
                "clamp": "tl.minimum(tl.maximum({0}, {1}), {2})",
                "_step": "_step({0})",
                "_pos": "tl.where({0} > 0, 1.0, 0.0)",
                "_sign": "tl.where({0} > 0, 1.0, tl.where({0} < 0, -1.0, 0.0))",
                "_inside": "tl.where(({0} > {1}) & ({0} < {2}), 1.0, 0.0)",
            }
            if f not in table:
                raise Unsupported(f"function {f}(...) has no kernel form")
            return table[f].format(*a)
        raise TypeError(e)

    def width(self, n: int) -> int:
        """Tile width of a vector of size ``n``."""
        return padded(n)

    def target_name(self, target: str) -> str:
        return self.n(target)

    def assign(self, target: str, e: Expr, out: list[str], indent: str) -> None:
        code = self.expr(e)
        n = self.sizes.get(target) or self.size(e)
        self.sizes[target] = n
        if self.is_batched(e):
            self.batched.add(target)
        elif n:
            # a value that does not depend on the batch row: broadcast it
            code = f"{code} + tl.zeros([BB, {self.width(n)}], dtype=tl.float32)"
            self.batched.add(target)
        out.append(f"{indent}{self.target_name(target)} = {code}")


def _walk(e: Expr) -> Iterator[Expr]:
    yield e
    if isinstance(e, Neg):
        yield from _walk(e.arg)
    elif isinstance(e, BinOp):
        yield from _walk(e.left)
        yield from _walk(e.right)
    elif isinstance(e, Call):
        for a in e.args:
            yield from _walk(a)


HELPERS = '''
@triton.jit
def _tanh(x):
    # sign(x) (1 - e^-2|x|) / (1 + e^-2|x|): no overflow, no NaN
    e = tl.exp(-2.0 * tl.abs(x))
    r = (1.0 - e) / (1.0 + e)
    return tl.where(x < 0, -r, r)


@triton.jit
def _softplus(x):
    # as torch.nn.functional.softplus (threshold 20)
    return tl.where(x > 20.0, x, tl.log(1.0 + tl.exp(tl.minimum(x, 20.0))))


@triton.jit
def _step(x):
    # torch.maximum / minimum share a tie's gradient
    return tl.where(x > 0, 1.0, tl.where(x == 0, 0.5, 0.0))
'''


def generate(ir: CellIR) -> str:
    """The Triton source for ``ir`` (raises :class:`Unsupported`)."""
    return _generate(plan(ir))


def _generate(kp: KernelPlan) -> str:
    em = _Emitter(kp)
    step, bwd = kp.step, kp.backward
    n = em.n

    # ---- shared prologue pieces
    def setup(lines: list[str], backward: bool) -> None:
        lines.append("    pid = tl.program_id(0)")
        lines.append("    rows = pid * BB + tl.arange(0, BB)")
        lines.append("    rmask = rows < B")
        lines.append("    rm = rmask[:, None]")
        lines.append("    L = tl.load(len_ptr + rows, mask=rmask, other=0)[:, None]")
        lines.append("    @@LANES@@")
        if kp.matrix_leaves:
            lines.append("    # recurrent weights, loaded once; KEEP_WDT keeps 16-bit weights 16-bit (half the space,")
            lines.append("    # 16-bit dots, float32 accumulation): wt_* = M^T [cols, rows] for the forward products"
                         + (", w_* = M for the backward ones" if backward else ""))
        for lname, lf in kp.matrix_leaves:
            ptr = n(f"{lf.param}") + "_ptr"
            wt, w = em.tile_names[lname]
            rows_ar, cols_ar = em.ar(lf.size), em.ar(lf.cols)
            mask = f"({rows_ar} < {lf.size})[None, :] & ({cols_ar} < {lf.cols})[:, None]"
            lines.append(f"    {wt} = tl.load({ptr} + ({lf.offset} + {rows_ar})[None, :] * {lf.cols} + {cols_ar}[:, None],"
                         f" mask={mask}, other=0.0)  # {lname}^T")
            lines.append(f"    if not KEEP_WDT:")
            lines.append(f"        {wt} = {wt}.to(tl.float32)")
            if backward:
                mask2 = f"({rows_ar} < {lf.size})[:, None] & ({cols_ar} < {lf.cols})[None, :]"
                lines.append(f"    {w} = tl.load({ptr} + ({lf.offset} + {rows_ar})[:, None] * {lf.cols} + {cols_ar}[None, :],"
                             f" mask={mask2}, other=0.0)  # {lname}")
                lines.append(f"    if not KEEP_WDT:")
                lines.append(f"        {w} = {w}.to(tl.float32)")
        if kp.vector_leaves:
            lines.append("    # elementwise parameters")
        for lname, lf in kp.vector_leaves:
            ptr = n(f"{lf.param}") + "_ptr"
            a = em.ar(lf.size)
            lines.append(f"    {n(lname)} = tl.load({ptr} + {lf.offset} + {a}, mask={a} < {lf.size}, other=0.0)"
                         f".to(tl.float32)[None, :]")

    def load_states(lines: list[str], ptr: str, indent: str, prefix: str = "v") -> None:
        for s, size, off in kp.state_offsets:
            a = em.ar(size)
            target = n(s) if prefix == "v" else n(f"dnext[{s}]")
            lines.append(f"{indent}{target} = tl.load({ptr} + rows[:, None] * {kp.S} + {off} + {a}[None, :], "
                         f"mask=rm & {em.lane(size)}, other=0.0).to(tl.float32)")

    def store_states(lines: list[str], ptr: str, indent: str, prefix: str = "v") -> None:
        for s, size, off in kp.state_offsets:
            a = em.ar(size)
            src = n(s) if prefix == "v" else n(f"dnext[{s}]")
            lines.append(f"{indent}tl.store({ptr} + rows[:, None] * {kp.S} + {off} + {a}[None, :], {src}, "
                         f"mask=rm & {em.lane(size)})")

    def load_streams(lines: list[str], indent: str) -> None:
        for lname, lf in kp.stream_leaves:
            a = em.ar(lf.size)
            col = kp.stream_col(lf)
            lines.append(f"{indent}{n(lname)} = tl.load(pre_t + rows[:, None] * {kp.P} + {col} + {a}[None, :], "
                         f"mask=rm & {em.lane(lf.size)}, other=0.0).to(tl.float32)")

    def step_code(lines: list[str], indent: str) -> None:
        for eq in step.equations:
            lines.append(f"{indent}# {eq.targets[0]} = {to_source(eq.expr)}")
            em.assign(eq.targets[0], eq.expr, lines, indent)

    mat_ptrs = [n(m) + "_ptr" for m in kp.matrices]
    vec_ptrs = [n(v) + "_ptr" for v in kp.vectors]

    # ---- forward
    fwd: list[str] = []
    args = ["pre_ptr", "len_ptr", "s0_ptr", "hs_ptr", "out_ptr", *mat_ptrs, *vec_ptrs, "T", "B",
            "BB: tl.constexpr", "PREC: tl.constexpr", "KEEP_WDT: tl.constexpr"]
    fwd.append("@triton.jit")
    fwd.append(f"def forward_kernel({', '.join(args)}):")
    setup(fwd, backward=False)
    fwd.append("    # initial state; hs[0] = it")
    load_states(fwd, "s0_ptr", "    ")
    store_states(fwd, "hs_ptr", "    ")
    fwd.append(f"    pre_t = pre_ptr")
    fwd.append(f"    out_t = out_ptr")
    fwd.append(f"    hs_t = hs_ptr + B * {kp.S}")
    fwd.append("    for t in range(0, T):")
    fwd.append("        live = rm & (t < L)  # rows whose sequence is still running")
    load_streams(fwd, "        ")
    step_code(fwd, "        ")
    fwd.append("        # past a sequence's end: state frozen, output zero")
    for s, size, _ in kp.state_offsets:
        fwd.append(f"        {n(s)} = tl.where(live, {n(s + chr(39))}, {n(s)})")
    oa = em.ar(kp.O)
    fwd.append(f"        tl.store(out_t + rows[:, None] * {kp.O} + {oa}[None, :], tl.where(live, {n(step.output)}, 0.0), "
               f"mask=rm & {em.lane(kp.O)})")
    store_states(fwd, "hs_t", "        ")
    fwd.append(f"        pre_t += B * {kp.P}")
    fwd.append(f"        out_t += B * {kp.O}")
    fwd.append(f"        hs_t += B * {kp.S}")

    # ---- backward
    em_b = _Emitter(kp)  # fresh sizes/batched sets, same names
    em_b.n = em.n
    em_b.tile_names = em.tile_names
    em_b.widths, em_b.lane_sizes = em.widths, em.lane_sizes
    em_save = em
    em = em_b
    bw: list[str] = []
    dmat_ptrs = ["dp_" + n(lname)[2:] + "_ptr" for lname, _ in kp.matrix_leaves]
    dvec_ptrs = ["dp_" + n(lname)[2:] + "_ptr" for lname, _ in kp.vector_leaves]
    args = ["pre_ptr", "len_ptr", "hs_ptr", "dout_ptr", "dsT_ptr", "dpre_ptr", "ds0_ptr", "dadj_ptr", "ops_ptr",
            *mat_ptrs, *vec_ptrs, *dmat_ptrs, *dvec_ptrs, "T", "B", "BB: tl.constexpr", "PREC: tl.constexpr",
            "KEEP_WDT: tl.constexpr", "ON_CHIP: tl.constexpr"]
    bw.append("@triton.jit")
    bw.append(f"def backward_kernel({', '.join(args)}):")
    bw.append("    # ON_CHIP: parameter gradients accumulate in this program over all steps (one partial per")
    bw.append("    # program); otherwise each step writes its adjoints (dadj) and product operands (ops) and")
    bw.append("    # the launcher forms the gradients as GEMMs over all steps and sequences at once.")
    setup(bw, backward=True)
    if kp.matrix_leaves or kp.vector_leaves:
        bw.append("    if ON_CHIP:")
        bw.append("        # gradient accumulators, on chip for the whole sequence")
        for lname, lf in kp.matrix_leaves:
            bw.append(f"        acc_{n(lname)[2:]} = tl.zeros([{padded(lf.cols)}, {padded(lf.size)}], dtype=tl.float32)"
                      f"  # d{lname}^T")
        for lname, lf in kp.vector_leaves:
            bw.append(f"        acc_{n(lname)[2:]} = tl.zeros([{padded(lf.size)}], dtype=tl.float32)  # d{lname}")
    bw.append("    # gradient of the final state, carried backwards")
    load_states(bw, "dsT_ptr", "    ", prefix="d")
    bw.append(f"    pre_t = pre_ptr + (T - 1) * B * {kp.P}")
    bw.append(f"    dpre_t = dpre_ptr + (T - 1) * B * {kp.P}")
    bw.append(f"    dout_t = dout_ptr + (T - 1) * B * {kp.O}")
    bw.append(f"    hs_t = hs_ptr + (T - 1) * B * {kp.S}  # the state before step t")
    bw.append(f"    dadj_t = dadj_ptr + (T - 1) * B * {kp.A}")
    bw.append(f"    ops_t = ops_ptr + (T - 1) * B * {kp.C}")
    bw.append("    for tt in range(0, T):")
    bw.append("        t = T - 1 - tt")
    bw.append("        live = rm & (t < L)")
    load_states(bw, "hs_t", "        ")
    load_streams(bw, "        ")
    bw.append("        # recompute the step")
    step_code(bw, "        ")
    bw.append("        # adjoints")
    bw.append(f"        dout = tl.where(live, tl.load(dout_t + rows[:, None] * {kp.O} + {oa}[None, :], "
              f"mask=rm & {em.lane(kp.O)}, other=0.0).to(tl.float32), 0.0)")
    for target, e in bwd.assignments:
        bw.append(f"        # {target} = {to_source(e)}")
        em.assign(target, e, bw, "        ")
    bw.append("        # gradients out: hoisted pre-activations")
    for lname, lf in kp.stream_leaves:
        g = bwd.grads[lname]
        if isinstance(g, Num):
            continue  # dpre starts at zero
        a = em.ar(lf.size)
        bw.append(f"        tl.store(dpre_t + rows[:, None] * {kp.P} + {kp.stream_col(lf)} + {a}[None, :], "
                  f"tl.where(live, {em.expr(g)}, 0.0), mask=rm & {em.lane(lf.size)})")
    if kp.matrix_leaves or kp.vector_leaves:
        bw.append("        # parameters")
        bw.append("        if ON_CHIP:")
        for lname, lf in kp.vector_leaves:
            g = bwd.grads[lname]
            if isinstance(g, Num):
                continue
            bw.append(f"            acc_{n(lname)[2:]} += tl.sum(tl.where(live, {em.expr(g)}, 0.0), axis=0)")
        for mname, operand, gname in bwd.matmuls:
            lf = kp.step.leaves[mname]
            bw.append(f"            acc_{n(mname)[2:]} += tl.dot(tl.trans(tl.where(live & {em.lane(lf.cols)}, "
                      f"{em.expr(operand)}, 0.0)), tl.where(live & {em.lane(lf.size)}, {n(gname)}, 0.0), "
                      "input_precision=PREC)")
        bw.append("        else:")
        stored = False
        for var, (buf, col, size) in kp.where.items():
            if buf not in ("dadj", "ops"):
                continue
            stored = True
            a = em.ar(size)
            ptr, width = ("dadj_t", kp.A) if buf == "dadj" else ("ops_t", kp.C)
            bw.append(f"            tl.store({ptr} + rows[:, None] * {width} + {col} + {a}[None, :], "
                      f"tl.where(live, {n(var)}, 0.0), mask=rm & {em.lane(size)})  # {var}")
        if not stored:
            bw.append("            pass  # the launcher finds every adjoint and operand in dpre and hs")
    bw.append("        # carried state gradient (unchanged past a sequence's end)")
    for s, size, _ in kp.state_offsets:
        g = bwd.grads[s]
        bw.append(f"        {n(f'dnext[{s}]')} = tl.where(live, {em.expr(g)}, {n(f'dnext[{s}]')})")
    bw.append(f"        pre_t -= B * {kp.P}")
    bw.append(f"        dpre_t -= B * {kp.P}")
    bw.append(f"        dout_t -= B * {kp.O}")
    bw.append(f"        hs_t -= B * {kp.S}")
    bw.append(f"        dadj_t -= B * {kp.A}")
    bw.append(f"        ops_t -= B * {kp.C}")
    bw.append("    # gradient of the initial state")
    store_states(bw, "ds0_ptr", "    ", prefix="d")
    if kp.matrix_leaves or kp.vector_leaves:
        bw.append("    if ON_CHIP:")
        bw.append("        # this program's parameter-gradient partials")
        for (lname, lf), p in zip(kp.matrix_leaves, dmat_ptrs):
            ra, ca = em.ar(lf.size), em.ar(lf.cols)
            bw.append(f"        tl.store({p} + pid * {lf.size * lf.cols} + {ra}[None, :] * {lf.cols} + {ca}[:, None], "
                      f"acc_{n(lname)[2:]}, mask=({ra} < {lf.size})[None, :] & ({ca} < {lf.cols})[:, None])")
        for (lname, lf), p in zip(kp.vector_leaves, dvec_ptrs):
            a = em.ar(lf.size)
            bw.append(f"        tl.store({p} + pid * {lf.size} + {a}, acc_{n(lname)[2:]}, mask={a} < {lf.size})")
    em = em_save

    lanes = [f"ar{w} = tl.arange(0, {w})" for w in sorted(em.widths)]
    lanes += [f"ln{s} = (ar{padded(s)} < {s})[None, :]" for s in sorted(em.lane_sizes)]
    lane_text = "\n    ".join(lanes) if lanes else "pass"
    body = "\n".join(fwd) + "\n\n\n" + "\n".join(bw) + "\n"
    body = body.replace("@@LANES@@", lane_text)
    return _header(kp) + HELPERS + "\n\n" + body


def _header(kp: KernelPlan) -> str:
    ir = kp.ir
    eqs = "\n".join("    " + equation_source(e) for e in ir.equations)
    lowered = "\n".join("    " + line for line in kp.step.source().splitlines())
    back = "\n".join("    " + line for line in kp.backward.source().splitlines())
    streams = "\n".join(
        f"    pre[:, :, {col}:{col + size}] = "
        + (src if isinstance(src, str) else f"{src[0]} @ {to_source(src[1])}")  # type: ignore[index]
        for src, size, col in kp.streams
    ) or "    (none)"
    states = ", ".join(f"{s}[{off}:{off + size}]" for s, size, off in kp.state_offsets)
    return f'''"""Generated by rnnspec.kernels.codegen (v{VERSION}) -- do not edit; regenerated from the IR.

cell {ir.name}: inputs {", ".join(f"{x}[{n}]" for x, n in ir.inputs)}; states {", ".join(f"{s}[{n}]" for s, n in ir.states)}; output {ir.output}[{kp.O}]

equations:
{eqs}

streamed per step (hoisted out of the loop, one GEMM over all steps):
{streams}
state columns in s0/hs: {states}

lowered step (splits pushed to their leaves; `M @ v` runs on chip):
{lowered}

backward step (symbolic reverse mode, rnnspec.ir.diff):
{back}

Saved for backward: the states before/after every step, hs[T+1, B, {kp.S}] (float32);
the backward recomputes the step (gates, products) from them.
"""
import triton
import triton.language as tl

'''


# ---------------------------------------------------------------- multi-program split

@dataclass
class SplitPlan:
    """The recurrence split over ``P`` programs per batch tile (for hidden
    sizes one program cannot hold): program ``u`` owns units
    ``[u*c, (u+1)*c)`` (``c = ceil(n/P)``) of every vector of size ``n``, the
    matching rows of every recurrent matrix (forward) and columns (backward).

    Per step the programs exchange what a product needs whole: in the
    forward, the previous state (through ``hs``, which they write anyway);
    in the backward, the adjoints of the products' outputs (through
    ``xbuf``).  A grid barrier separates writer and readers on a GPU; under
    the interpreter, where programs run one after another, a launch boundary
    takes the barrier's place (one launch per step, two per backward step:
    phase A publishes, phase B consumes), running the very same step code.

    Supported when every product's operand is a function of the previous
    state alone (LSTM, GRU, Elman, CTRNN, MTRNN, ... but not Jordan's
    ``V @ h'`` or RMLP's ``W2 @ h1'``, which would need a second exchange
    inside the step)."""

    kp: KernelPlan
    P: int
    chain: list[str]  # variables computed whole for the products (in step order)
    full_states: list[str]  # states the products read whole
    phase_b: set[str]  # backward assignments that read exchanged adjoints
    exch: list[tuple[str, int, int]]  # (adjoint variable, size, column in xbuf)
    R: int

    def chunk(self, n: int) -> int:
        return -(-n // self.P)

    def width(self, n: int) -> int:
        return padded(self.chunk(n))

    @property
    def weight_floats(self) -> int:
        """Floats of recurrent weights one program holds in the backward
        (its rows, transposed, and its columns)."""
        return sum(padded(lf.cols) * self.width(lf.size) + padded(lf.size) * self.width(lf.cols)
                   for _, lf in self.kp.matrix_leaves)


def _split_analysis(kp: KernelPlan) -> tuple[list[str], list[str], list[str], set[str], list[tuple[str, int, int]]]:
    cached = getattr(kp, "_split_cache", None)
    if cached is None:
        cached = _split_analysis_uncached(kp)
        kp._split_cache = cached  # type: ignore[attr-defined]
    return cached


def _split_analysis_uncached(kp: KernelPlan) -> tuple[list[str], list[str], list[str], set[str], list[tuple[str, int, int]]]:
    step, bwd = kp.step, kp.backward
    defs = {eq.targets[0]: eq for eq in step.equations}
    states = {s for s, _ in step.states}
    reasons: list[str] = []
    chain: set[str] = set()
    full_states: set[str] = set()
    for eq in step.equations:
        for node in _walk(eq.expr):
            if not (isinstance(node, BinOp) and node.op == "@"):
                continue
            product = f"{node.left.name} @ {to_source(node.right)}"  # type: ignore[union-attr]
            stack = [node.right.name]  # type: ignore[union-attr]
            while stack:
                v = stack.pop()
                if v in states:
                    full_states.add(v)
                    continue
                if v in chain:
                    continue
                if v in step.leaves or v not in defs:
                    reasons.append(f"the product {product} reads {v}, not only the previous state")
                    continue
                sub = defs[v].expr
                if v.endswith("'") or any(isinstance(x, BinOp) and x.op == "@" for x in _walk(sub)):
                    reasons.append(f"the product {product} reads {v}, computed within the step "
                                   "(the split kernels exchange only the previous state)")
                    continue
                chain.add(v)
                stack.extend(names(sub))
    phase_b: set[str] = set()
    exch: list[tuple[str, int, int]] = []
    col = 0
    operand_problem = bool(reasons)
    for t, e in bwd.assignments:
        calls = [x for x in _walk(e) if isinstance(x, Call) and x.fn == "matmul_t"]
        if calls or names(e) & phase_b:
            phase_b.add(t)
        for c in calls:
            g = c.args[1].name  # type: ignore[union-attr]
            if g in phase_b and not operand_problem:
                reasons.append(f"the adjoint {g} of a product depends on another product's adjoint")
            if g not in [x for x, _, _ in exch]:
                n = kp.step.leaves[c.args[0].name].size  # type: ignore[union-attr]
                exch.append((g, n, col))
                col += n
    order = [eq.targets[0] for eq in step.equations if eq.targets[0] in chain]
    return list(dict.fromkeys(reasons)), order, sorted(full_states), phase_b, exch


def split_reasons(ir: CellIR) -> list[str]:
    """Why the multi-program kernels cannot run ``ir`` (empty: they can)."""
    try:
        kp = plan(ir)
    except Unsupported as e:
        return [f"cell {ir.name!r}: {e}"]
    return [f"cell {ir.name!r}: {r}" for r in _split_analysis(kp)[0]]


def split_plan(ir: CellIR, P: int) -> SplitPlan:
    kp = plan(ir)
    reasons, chain, full_states, phase_b, exch = _split_analysis(kp)
    if reasons:
        raise Unsupported("; ".join(reasons))
    if P < 1:
        raise ValueError(f"P must be >= 1, got {P}")
    return SplitPlan(kp, P, chain, full_states, phase_b, exch, sum(n for _, n, _ in exch))


class _SplitEmitter(_Emitter):
    """Emits slice code: vectors are this program's units; products read
    their operand whole (``*__f``) and ``matmul_t`` the exchanged adjoint
    whole (``*__x``)."""

    def __init__(self, sp: SplitPlan, names_: Names) -> None:
        super().__init__(sp.kp)
        self.sp = sp
        self.n = names_
        self.full = False
        self.slice_sizes: set[int] = set()
        self.tile_names = {}
        for lname, _ in sp.kp.matrix_leaves:
            base = self.n(lname)[2:]
            self.tile_names[lname] = ("wt_" + base, "wc_" + base)
        self.temps: dict[str, str] = {}  # product source -> the temporary that holds it
        self.chunk: dict[str, str] | None = None  # while emitting a K-chunk: variable -> its chunk

    def width(self, n: int) -> int:
        return padded(n) if self.full else self.sp.width(n)

    def target_name(self, target: str) -> str:
        return self.n(target) + "__f" if self.full else self.n(target)

    def sl(self, n: int) -> str:
        self.slice_sizes.add(n)
        return f"sl{n}"

    def g(self, n: int) -> str:
        self.slice_sizes.add(n)
        return f"g{n}"

    def expr(self, e: Expr) -> str:
        if self.chunk is not None and isinstance(e, Var):
            if e.name not in self.chunk:
                raise Unsupported(f"{e.name} in a streamed product's operand")
            return self.chunk[e.name]
        if isinstance(e, Var) and self.full:
            return self.n(e.name) + "__f"
        key = to_source(e) if isinstance(e, BinOp) and e.op == "@" or isinstance(e, Call) and e.fn == "matmul_t" else ""
        if key in self.temps:
            return self.temps[key]
        if isinstance(e, BinOp) and e.op == "@":
            lname = e.left.name  # type: ignore[union-attr]
            lf = self.step.leaves[lname]
            wt = self.tile_names[lname][0]
            operand = self.n(e.right.name) + "__f"  # type: ignore[union-attr]
            return (f"tl.dot(tl.where({self.lane(lf.cols)}, {operand}, 0.0).to({wt}.dtype), {wt}, "
                    "input_precision=PREC)")
        if isinstance(e, Call) and e.fn == "matmul_t":
            lname = e.args[0].name  # type: ignore[union-attr]
            lf = self.step.leaves[lname]
            wc = self.tile_names[lname][1]
            g = self.n(e.args[1].name) + "__x"  # type: ignore[union-attr]
            return f"tl.dot(tl.where({self.lane(lf.size)}, {g}, 0.0).to({wc}.dtype), {wc}, input_precision=PREC)"
        return super().expr(e)


BARRIER_CODE = """\
{i}# grid barrier among the {P} programs of this batch tile (all resident: the launcher checks)
{i}tl.debug_barrier()
{i}tl.atomic_add(bar_ptr + pid_b, 1, sem="release", scope="gpu")
{i}arrived = tl.atomic_add(bar_ptr + pid_b, 0, sem="acquire", scope="gpu")
{i}while arrived < (k + 1) * {P}:
{i}    arrived = tl.atomic_add(bar_ptr + pid_b, 0, sem="acquire", scope="gpu")
{i}tl.debug_barrier()"""


def _generate_split(sp: SplitPlan) -> str:
    kp, step, bwd, P = sp.kp, sp.kp.step, sp.kp.backward, sp.P
    names_ = Names()
    em = _SplitEmitter(sp, names_)
    n = names_
    mat_ptrs = [n(m) + "_ptr" for m in kp.matrices]
    vec_ptrs = [n(v) + "_ptr" for v in kp.vectors]
    I1, I2, I3 = "    ", "        ", "            "

    def setup(lines: list[str], backward: bool) -> None:
        lines.append(f"{I1}pid_b = tl.program_id(0)  # batch tile")
        lines.append(f"{I1}pid_u = tl.program_id(1)  # unit slice: [pid_u * c, (pid_u + 1) * c) of every vector")
        lines.append(f"{I1}rows = pid_b * BB + tl.arange(0, BB)")
        lines.append(f"{I1}rmask = rows < B")
        lines.append(f"{I1}rm = rmask[:, None]")
        lines.append(f"{I1}L = tl.load(len_ptr + rows, mask=rmask, other=0)[:, None]")
        lines.append(f"{I1}@@LANES@@")
        lines.append(f"{I1}# recurrent weights: wt_* = rows of M this program computes, transposed [cols, slice]"
                     + (", wc_* = columns of M it owns [rows, slice] (for M^T d)" if backward else ""))
        if kp.matrix_leaves:
            lines.append(f"{I1}if not STREAM:  # on chip for the whole sequence (STREAM: read in K-chunks every step)")
        for lname, lf in kp.matrix_leaves:
            ptr = n(lf.param) + "_ptr"
            wt, wc = em.tile_names[lname]
            gr, ca = em.g(lf.size), em.ar(lf.cols)
            lines.append(f"{I2}{wt} = tl.load({ptr} + ({lf.offset} + {gr})[None, :] * {lf.cols} + {ca}[:, None], "
                         f"mask=slm{lf.size}[None, :] & ({ca} < {lf.cols})[:, None], other=0.0)  # {lname}^T, slice")
            lines.append(f"{I2}if not KEEP_WDT:")
            lines.append(f"{I3}{wt} = {wt}.to(tl.float32)")
            if backward:
                ra, gc = em.ar(lf.size), em.g(lf.cols)
                lines.append(f"{I2}{wc} = tl.load({ptr} + ({lf.offset} + {ra})[:, None] * {lf.cols} + {gc}[None, :], "
                             f"mask=({ra} < {lf.size})[:, None] & slm{lf.cols}[None, :], other=0.0)  # {lname}, columns")
                lines.append(f"{I2}if not KEEP_WDT:")
                lines.append(f"{I3}{wc} = {wc}.to(tl.float32)")
        for lname, lf in kp.vector_leaves:
            ptr = n(lf.param) + "_ptr"
            gv = em.g(lf.size)
            lines.append(f"{I1}{n(lname)} = tl.load({ptr} + {lf.offset} + {gv}, mask=slm{lf.size}, other=0.0)"
                         f".to(tl.float32)[None, :]")

    defs = {eq.targets[0]: eq.expr for eq in step.equations}
    vectors = dict(kp.vector_leaves)
    K = K_CHUNK

    def operand_chunk(v: str, lines: list[str], indent: str) -> str:
        """Load (or compute from loads) lanes kk of the whole operand ``v``:
        a state from ``hs``, or a value computed from states elementwise."""
        chunk: dict[str, str] = {}
        need: list[str] = []
        stack = [v]
        while stack:  # what v needs, deepest last
            x = stack.pop()
            if x in need:
                continue
            need.append(x)
            if x in defs and x in sp.chain:
                stack.extend(sorted(names(defs[x])))
        for s, size, off in kp.state_offsets:
            if s in need:
                chunk[s] = f"ck_{n(s)}"
                lines.append(f"{indent}ck_{n(s)} = tl.load(hs_t + rows[:, None] * {kp.S} + {off} + kk[None, :], "
                             f"mask=rm & km[None, :], other=0.0, cache_modifier=\".cg\")")
        for x in need:
            if x in vectors:
                lf = vectors[x]
                ptr = n(lf.param) + "_ptr"
                chunk[x] = f"ck_{n(x)}"
                if lf.size == 1:
                    lines.append(f"{indent}ck_{n(x)} = tl.load({ptr} + {lf.offset}).to(tl.float32)")
                else:
                    lines.append(f"{indent}ck_{n(x)} = tl.load({ptr} + {lf.offset} + kk, mask=km, other=0.0)"
                                 f".to(tl.float32)[None, :]")
        em.chunk = chunk
        try:
            for x in [c for c in sp.chain if c in need]:  # step order
                chunk[x] = f"({em.expr(defs[x])})"
            return chunk[v]
        finally:
            em.chunk = None

    def products(e: Expr, lines: list[str]) -> None:
        """The recurrent products ``e`` reads, each into a temporary just
        before its first use (so as few are live at once as when inline):
        from the on-chip weight tiles, or (STREAM) accumulated over K-chunks
        of the operand and of the weights read from global memory (L2)."""
        for x in _walk(e):
            if not (isinstance(x, BinOp) and x.op == "@") or to_source(x) in em.temps:
                continue
            t = f"mm{len(em.temps)}"
            lf = step.leaves[x.left.name]  # type: ignore[union-attr]
            ptr = n(lf.param) + "_ptr"
            I4 = I3 + "    "
            lines.append(f"{I2}if STREAM:  # {t} = {to_source(x)}")
            lines.append(f"{I3}{t} = tl.zeros([BB, {sp.width(lf.size)}], dtype=tl.float32)")
            lines.append(f"{I3}for k0 in range(0, {lf.cols}, {K}):")
            lines.append(f"{I4}kk = k0 + kc")
            lines.append(f"{I4}km = kk < {lf.cols}")
            opk = operand_chunk(x.right.name, lines, I4)  # type: ignore[union-attr]
            lines.append(f"{I4}wk = tl.load({ptr} + ({lf.offset} + {em.g(lf.size)})[None, :] * {lf.cols} + kk[:, None], "
                         f"mask=slm{lf.size}[None, :] & km[:, None], other=0.0)")
            lines.append(f"{I4}if not KEEP_WDT:")
            lines.append(f"{I4}    wk = wk.to(tl.float32)")
            lines.append(f"{I4}{t} += tl.dot(tl.where(km[None, :], {opk}, 0.0).to(wk.dtype), wk, input_precision=PREC)")
            lines.append(f"{I2}else:")
            lines.append(f"{I3}{t} = {em.expr(x)}")
            em.temps[to_source(x)] = t
            em.batched.add(t)
            em.sizes[t] = lf.size

    def step_code(lines: list[str]) -> None:
        if sp.full_states:
            lines.append(f"{I2}if not STREAM:")
            lines.append(f"{I3}# the previous state whole, for the products (every program wrote its part)")
        for s, size, off in kp.state_offsets:
            if s in sp.full_states:
                a = em.ar(size)
                lines.append(f"{I3}{n(s)}__f = tl.load(hs_t + rows[:, None] * {kp.S} + {off} + {a}[None, :], "
                             f"mask=rm & {em.lane(size)}, other=0.0, cache_modifier=\".cg\")")
        em.full = True
        for eq in step.equations:
            if eq.targets[0] in sp.chain:
                lines.append(f"{I3}# {eq.targets[0]} = {to_source(eq.expr)}  (whole)")
                em.assign(eq.targets[0], eq.expr, lines, I3)
        em.full = False
        em.temps.clear()
        lines.append(f"{I2}# this program's units")
        for s, size, off in kp.state_offsets:
            lines.append(f"{I2}{n(s)} = tl.load(hs_t + rows[:, None] * {kp.S} + {off} + {em.g(size)}[None, :], "
                         f"mask=rm & {em.sl(size)}, other=0.0, cache_modifier=\".cg\")")
        for lname, lf in kp.stream_leaves:
            lines.append(f"{I2}{n(lname)} = tl.load(pre_t + rows[:, None] * {kp.P} + {kp.stream_col(lf)} + "
                         f"{em.g(lf.size)}[None, :], mask=rm & {em.sl(lf.size)}, other=0.0).to(tl.float32)")
        for eq in step.equations:
            lines.append(f"{I2}# {eq.targets[0]} = {to_source(eq.expr)}")
            products(eq.expr, lines)
            em.assign(eq.targets[0], eq.expr, lines, I2)

    def pointers(lines: list[str]) -> None:
        lines.append(f"{I2}pre_t = pre_ptr + t * (B * {kp.P})")
        lines.append(f"{I2}hs_t = hs_ptr + t * (B * {kp.S})  # the state before step t")

    # ---- forward
    fwd: list[str] = ["@triton.jit"]
    args = ["pre_ptr", "len_ptr", "hs_ptr", "out_ptr", "bar_ptr", *mat_ptrs, *vec_ptrs, "T0", "T1", "B",
            "BB: tl.constexpr", "PREC: tl.constexpr", "KEEP_WDT: tl.constexpr", "BARRIER: tl.constexpr",
            "STREAM: tl.constexpr"]
    fwd.append(f"def forward_split_kernel({', '.join(args)}):")
    fwd.append(f"{I1}# steps T0..T1-1; hs[0] holds the initial state.  BARRIER: one persistent launch (GPU);")
    fwd.append(f"{I1}# otherwise one launch per step (the interpreter runs programs one after another)")
    setup(fwd, backward=False)
    fwd.append(f"{I1}for k in range(0, T1 - T0):")
    fwd.append(f"{I2}t = T0 + k")
    fwd.append(f"{I2}live = rm & (t < L)")
    pointers(fwd)
    fwd.append(f"{I2}out_t = out_ptr + t * (B * {kp.O})")
    step_code(fwd)
    fwd.append(f"{I2}# past a sequence's end: state frozen, output zero")
    fwd.append(f"{I2}tl.store(out_t + rows[:, None] * {kp.O} + {em.g(kp.O)}[None, :], tl.where(live, {n(step.output)}, 0.0), "
               f"mask=rm & {em.sl(kp.O)})")
    for s, size, off in kp.state_offsets:
        fwd.append(f"{I2}tl.store(hs_t + B * {kp.S} + rows[:, None] * {kp.S} + {off} + {em.g(size)}[None, :], "
                   f"tl.where(live, {n(s + chr(39))}, {n(s)}), mask=rm & {em.sl(size)})")
    fwd.append(f"{I2}if BARRIER:")
    fwd.append(BARRIER_CODE.format(i=I3, P=P))

    # ---- backward
    em.sizes = dict(kp.step.sizes)
    for s, size in kp.step.states:
        em.sizes[f"dnext[{s}]"] = size
    em.sizes["dout"] = kp.O
    bw: list[str] = ["@triton.jit"]
    args = ["pre_ptr", "len_ptr", "hs_ptr", "dout_ptr", "dcarry_ptr", "dpre_ptr", "dadj_ptr", "ops_ptr", "xbuf_ptr",
            "bar_ptr", *mat_ptrs, *vec_ptrs, "T0", "T1", "B", "BB: tl.constexpr", "PREC: tl.constexpr",
            "KEEP_WDT: tl.constexpr", "PHASE: tl.constexpr", "STREAM: tl.constexpr"]
    bw.append(f"def backward_split_kernel({', '.join(args)}):")
    bw.append(f"{I1}# steps T1-1 down to T0.  dcarry [B, S]: the carried state gradient (in: of the state after")
    bw.append(f"{I1}# step T1-1; out: before step T0).  PHASE 0: one persistent launch with a barrier between")
    bw.append(f"{I1}# publishing the products' adjoints (xbuf) and reading them whole; PHASE 1 / 2: the two halves")
    bw.append(f"{I1}# as separate launches (interpreter), phase 2 recomputing phase 1's values")
    setup(bw, backward=True)
    bw.append(f"{I1}for k in range(0, T1 - T0):")
    bw.append(f"{I2}t = T1 - 1 - k")
    bw.append(f"{I2}live = rm & (t < L)")
    pointers(bw)
    bw.append(f"{I2}dout_t = dout_ptr + t * (B * {kp.O})")
    bw.append(f"{I2}xb = xbuf_ptr + (t % 2) * (B * {max(sp.R, 1)})  # two buffers: a step never overwrites what "
              "a slower program may still read")
    for s, size, off in kp.state_offsets:
        bw.append(f"{I2}{n(f'dnext[{s}]')} = tl.load(dcarry_ptr + rows[:, None] * {kp.S} + {off} + {em.g(size)}[None, :], "
                  f"mask=rm & {em.sl(size)}, other=0.0, cache_modifier=\".cg\")")
    bw.append(f"{I2}# recompute the step")
    step_code(bw)
    bw.append(f"{I2}dout = tl.where(live, tl.load(dout_t + rows[:, None] * {kp.O} + {em.g(kp.O)}[None, :], "
              f"mask=rm & {em.sl(kp.O)}, other=0.0).to(tl.float32), 0.0)")
    bw.append(f"{I2}# adjoints, phase A (this program's units)")
    for target, e in bwd.assignments:
        if target not in sp.phase_b:
            bw.append(f"{I2}# {target} = {to_source(e)}")
            em.assign(target, e, bw, I2)
    if sp.exch:
        bw.append(f"{I2}if PHASE != 2:  # publish the products' adjoints")
        for var, size, col in sp.exch:
            bw.append(f"{I3}tl.store(xb + rows[:, None] * {sp.R} + {col} + {em.g(size)}[None, :], "
                      f"tl.where(live, {n(var)}, 0.0), mask=rm & {em.sl(size)})")
        bw.append(f"{I2}if PHASE == 0:")
        bw.append(BARRIER_CODE.format(i=I3, P=P))
    bw.append(f"{I2}if PHASE != 1:")
    em.temps.clear()
    exch_col = {var: (size, col) for var, size, col in sp.exch}
    I4, I5 = I3 + "    ", I3 + "        "
    if sp.exch:
        bw.append(f"{I3}if not STREAM:  # the products' adjoints whole, for M^T d on chip")
    for var, size, col in sp.exch:
        a = em.ar(size)
        bw.append(f"{I4}{n(var)}__x = tl.load(xb + rows[:, None] * {sp.R} + {col} + {a}[None, :], "
                  f"mask=rm & {em.lane(size)}, other=0.0, cache_modifier=\".cg\")  # whole")

    def adjoint_products(target: str, e: Expr) -> None:
        """An assignment that reads M^T d (for this program's columns): on
        chip, inline as the other kernels have it (separate temporaries
        there kept every product live at once: 32 KB more shared memory,
        LSTM H=256 in 16 programs); STREAM: each product accumulated over
        K-chunks of the exchanged adjoint and of M read from global memory,
        then the assignment."""
        calls = [c for c in _walk(e) if isinstance(c, Call) and c.fn == "matmul_t"]
        if not calls:
            em.assign(target, e, bw, I3)
            return
        bw.append(f"{I3}if STREAM:")
        for c in calls:
            if to_source(c) in em.temps:
                continue
            t = f"mt{len(em.temps)}"
            lf = step.leaves[c.args[0].name]  # type: ignore[union-attr]
            size, col = exch_col[c.args[1].name]  # type: ignore[union-attr]
            ptr = n(lf.param) + "_ptr"
            bw.append(f"{I4}{t} = tl.zeros([BB, {sp.width(lf.cols)}], dtype=tl.float32)  # {to_source(c)}")
            bw.append(f"{I4}for k0 in range(0, {lf.size}, {K_CHUNK}):")
            bw.append(f"{I5}kk = k0 + kc")
            bw.append(f"{I5}km = kk < {lf.size}")
            bw.append(f"{I5}gk = tl.load(xb + rows[:, None] * {sp.R} + {col} + kk[None, :], mask=rm & km[None, :], "
                      "other=0.0, cache_modifier=\".cg\")")
            bw.append(f"{I5}wk = tl.load({ptr} + ({lf.offset} + kk)[:, None] * {lf.cols} + {em.g(lf.cols)}[None, :], "
                      f"mask=km[:, None] & slm{lf.cols}[None, :], other=0.0)")
            bw.append(f"{I5}if not KEEP_WDT:")
            bw.append(f"{I5}    wk = wk.to(tl.float32)")
            bw.append(f"{I5}{t} += tl.dot(gk.to(wk.dtype), wk, input_precision=PREC)")
            em.temps[to_source(c)] = t
            em.batched.add(t)
        em.assign(target, e, bw, I4)
        bw.append(f"{I3}else:")
        saved = dict(em.temps)
        em.temps.clear()
        em.assign(target, e, bw, I4)
        em.temps.update(saved)

    bw.append(f"{I3}# adjoints, phase B (through the products)")
    for target, e in bwd.assignments:
        if target in sp.phase_b:
            bw.append(f"{I3}# {target} = {to_source(e)}")
            adjoint_products(target, e)
    bw.append(f"{I3}# gradients out: hoisted pre-activations; adjoints and operands for the parameter GEMMs")
    for lname, lf in kp.stream_leaves:
        g = bwd.grads[lname]
        if isinstance(g, Num):
            continue
        bw.append(f"{I3}tl.store(dpre_ptr + t * (B * {kp.P}) + rows[:, None] * {kp.P} + {kp.stream_col(lf)} + "
                  f"{em.g(lf.size)}[None, :], tl.where(live, {em.expr(g)}, 0.0), mask=rm & {em.sl(lf.size)})")
    for var, (buf, col, size) in kp.where.items():
        if buf not in ("dadj", "ops"):
            continue
        ptr, width = ("dadj_ptr", kp.A) if buf == "dadj" else ("ops_ptr", kp.C)
        bw.append(f"{I3}tl.store({ptr} + t * (B * {width}) + rows[:, None] * {width} + {col} + {em.g(size)}[None, :], "
                  f"tl.where(live, {n(var)}, 0.0), mask=rm & {em.sl(size)})  # {var}")
    bw.append(f"{I3}# carried state gradient (unchanged past a sequence's end)")
    for s, size, off in kp.state_offsets:
        g = bwd.grads[s]
        bw.append(f"{I3}tl.store(dcarry_ptr + rows[:, None] * {kp.S} + {off} + {em.g(size)}[None, :], "
                  f"tl.where(live, {em.expr(g)}, {n(f'dnext[{s}]')}), mask=rm & {em.sl(size)})")
    bw.append(f"{I3}tl.debug_barrier()  # this program reads its own dcarry next step")

    lanes = [f"ar{w} = tl.arange(0, {w})" for w in sorted(em.widths | {sp.width(x) for x in em.slice_sizes})]
    lanes.append(f"kc = tl.arange(0, {K_CHUNK})  # a K-chunk (STREAM)")
    lanes += [f"ln{x} = (ar{padded(x)} < {x})[None, :]" for x in sorted(em.lane_sizes)]
    for x in sorted(em.slice_sizes):
        c, w = sp.chunk(x), sp.width(x)
        lanes.append(f"g{x} = pid_u * {c} + ar{w}  # this program's units of a size-{x} vector")
        lanes.append(f"slm{x} = (ar{w} < {c}) & (g{x} < {x})")
        lanes.append(f"sl{x} = slm{x}[None, :]")
    body = "\n".join(fwd) + "\n\n\n" + "\n".join(bw) + "\n"
    body = body.replace("@@LANES@@", ("\n" + I1).join(lanes))
    head = _header(kp).replace('"""\nimport triton', f"Split over P = {P} programs per batch tile (SplitPlan): exchanged "
                               f"whole each step: the previous state ({', '.join(sp.full_states) or 'none'}) and the "
                               f"products' adjoints ({', '.join(v for v, _, _ in sp.exch) or 'none'}).\n\"\"\"\nimport triton", 1)
    return head + HELPERS + "\n\n" + body


def generate_split(ir: CellIR, P: int) -> str:
    return _generate_split(split_plan(ir, P))


def split_source_path(ir: CellIR, P: int) -> Path:
    key = ir_hash(ir)
    safe = re.sub(r"\W+", "_", ir.name)
    path = cache_dir() / f"{safe}_{key}_p{P}.py"
    if not path.exists():
        _write(path, generate_split(ir, P))
    return path


@dataclass
class SplitKernels:
    plan: SplitPlan
    path: Path
    forward: object
    backward: object
    interpreted: bool


def load_split(ir: CellIR, P: int, *, interpret: bool | None = None) -> SplitKernels:
    """The multi-program kernels of ``ir`` for ``P`` programs per batch tile."""
    if interpret is None:
        interpret = interpreting()
    with _LOCK:
        path = split_source_path(ir, P)
        key = (str(path), interpret)
        if key in _LOADED:
            return _LOADED[key]  # type: ignore[return-value]
        sp = split_plan(ir, P)
        module = _import(path, interpret)
        k = SplitKernels(sp, path, module.forward_split_kernel, module.backward_split_kernel, interpret)
        _LOADED[key] = k  # type: ignore[assignment]
        return k


# ---------------------------------------------------------------- cache and import

def cache_dir() -> Path:
    root = os.environ.get("RNNSPEC_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "rnnspec" / "kernels"


@dataclass
class Kernels:
    plan: KernelPlan
    path: Path
    forward: object  # the @triton.jit forward_kernel
    backward: object
    interpreted: bool


_LOADED: dict[tuple[str, bool], Kernels] = {}  # (source path, interpreted) -> kernels
_LOCK = threading.Lock()


def interpreting() -> bool:
    try:
        from triton import knobs

        return bool(knobs.runtime.interpret)
    except Exception:  # pragma: no cover - older triton
        return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@contextmanager
def _interpret(flag: bool) -> Iterator[None]:
    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1" if flag else "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = old


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # atomic: concurrent writers of the same file race harmlessly


def _import(path: Path, interpret: bool):  # noqa: ANN202 - a module
    modname = f"rnnspec_kernels_{path.stem}_{'i' if interpret else 'c'}"
    spec = importlib.util.spec_from_file_location(modname, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with _interpret(interpret):
        sys.modules[modname] = module
        spec.loader.exec_module(module)
    return module


def source_path(ir: CellIR) -> Path:
    """Write (if needed) the generated source of ``ir`` and return its path."""
    key = ir_hash(ir)
    safe = re.sub(r"\W+", "_", ir.name)
    path = cache_dir() / f"{safe}_{key}.py"
    if not path.exists():
        _write(path, generate(ir))
    return path


def load(ir: CellIR, *, interpret: bool | None = None) -> Kernels:
    """The kernels of ``ir``, generated into the cache and imported from
    there (``interpret``: as Triton interpreter functions; default: as
    TRITON_INTERPRET says)."""
    if interpret is None:
        interpret = interpreting()
    with _LOCK:
        path = source_path(ir)
        key = (str(path), interpret)
        if key in _LOADED:
            return _LOADED[key]
        kp = plan(ir)
        module = _import(path, interpret)
        k = Kernels(kp, path, module.forward_kernel, module.backward_kernel, interpret)
        _LOADED[key] = k
        return k


generate_source = generate  # the name `rnnspec compile --emit-kernels` uses
