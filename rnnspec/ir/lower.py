"""Lowering for the loop backends: move everything that does not depend on
the state out of the time loop.

* An equation whose right side has no state in it runs once over all steps
  (GRU's ``xr, xz, xn = split(W @ x + b_i, 3)``: one GEMM and one add).
* In a sum that mixes both, the terms that depend on the input (plus the
  parameter-only terms beside them) are summed once over all steps, so LSTM's
  ``W @ x + b_i + U @ h + b_h`` leaves only ``_p0 + U @ h`` in the loop.
* Any other product ``W @ e`` with ``e`` built from inputs is hoisted alone.

The torch backend and the standalone generator both run this form; the
Triton generator reads the same IR its own way (kernels/).
"""
from __future__ import annotations

from dataclasses import dataclass

from rnnspec.ir.cell import CellIR
from rnnspec.ir.expr import BinOp, Call, Equation, Expr, Neg, Num, Var, names


@dataclass(frozen=True)
class Lowered:
    pre: tuple[Equation, ...]  # evaluated once over [T, B, ...]; targets are per-step values in the loop
    loop: tuple[Equation, ...]  # the step

    @property
    def pre_names(self) -> tuple[str, ...]:
        return tuple(t for eq in self.pre for t in eq.targets)


def lower(ir: CellIR) -> Lowered:
    inputs = {n for n, _ in ir.inputs}
    state_dep = set(ir.state_names)
    per_step = set(inputs)  # names with a value per step outside the loop
    pre: list[Equation] = []
    loop: list[Equation] = []
    counter = [0]

    def fresh() -> str:
        counter[0] += 1
        return f"_p{counter[0] - 1}"

    def hoist(e: Expr) -> Var:
        name = fresh()
        pre.append(Equation((name,), e, getattr(e, "pos", None) or Equation((), e).pos))
        per_step.add(name)
        return Var(name)

    def depends_on_step(e: Expr) -> bool:
        return bool(names(e) & per_step)

    def rewrite(e: Expr) -> Expr:
        if isinstance(e, BinOp) and e.op in "+-":
            terms = _flatten(e)
            indep = [(s, t) for s, t in terms if not (names(t) & state_dep)]
            dep = [(s, t) for s, t in terms if names(t) & state_dep]
            lone_value = len(indep) == 1 and isinstance(indep[0][1], Var) and indep[0][0] == "+"
            if dep and indep and not lone_value and any(depends_on_step(t) for _, t in indep):
                head = hoist(_build(indep))
                return _build([("+", head)] + [(s, rewrite(t)) for s, t in dep])
            return _build([(s, rewrite(t)) for s, t in terms])
        if isinstance(e, BinOp) and e.op == "@":
            if not (names(e.right) & state_dep) and depends_on_step(e.right):
                return hoist(e)
            return BinOp("@", e.left, rewrite(e.right), e.pos)
        if isinstance(e, BinOp):
            return BinOp(e.op, rewrite(e.left), rewrite(e.right), e.pos)
        if isinstance(e, Neg):
            return Neg(rewrite(e.arg), e.pos)
        if isinstance(e, Call):
            return Call(e.fn, tuple(rewrite(a) for a in e.args), e.pos)
        return e

    for eq in ir.equations:
        if not (names(eq.expr) & state_dep):
            pre.append(eq)
            per_step.update(eq.targets)
            continue
        loop.append(Equation(eq.targets, rewrite(eq.expr), eq.pos, eq.target_pos))
        state_dep.update(eq.targets)
    return Lowered(tuple(pre), tuple(loop))


def _flatten(e: Expr) -> list[tuple[str, Expr]]:
    """``a + b - c`` -> [(+, a), (+, b), (-, c)] (left-associated chains only)."""
    if isinstance(e, BinOp) and e.op in "+-":
        return _flatten(e.left) + [(e.op, e.right)]
    return [("+", e)]


def _build(terms: list[tuple[str, Expr]]) -> Expr:
    sign, first = terms[0]
    acc: Expr = Neg(first) if sign == "-" else first
    for s, t in terms[1:]:
        acc = BinOp(s, acc, t)
    return acc


__all__ = ["Lowered", "lower", "Num"]
