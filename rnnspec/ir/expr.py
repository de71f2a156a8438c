"""Cell-equation expressions: a tiny immutable AST shared by the parser, the
shape checker, the torch backend, the code generators and the differentiator.

Positions ride along (``pos``) but never take part in equality, so the same
equation read from YAML or from the DSL is the same value.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Union

from rnnspec.errors import Pos

NOPOS = Pos("<expr>")


@dataclass(frozen=True)
class Num:
    value: float
    pos: Pos = field(default=NOPOS, compare=False, repr=False)


@dataclass(frozen=True)
class Var:
    name: str
    pos: Pos = field(default=NOPOS, compare=False, repr=False)


@dataclass(frozen=True)
class Neg:
    arg: "Expr"
    pos: Pos = field(default=NOPOS, compare=False, repr=False)


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / @
    left: "Expr"
    right: "Expr"
    pos: Pos = field(default=NOPOS, compare=False, repr=False)


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple["Expr", ...]
    pos: Pos = field(default=NOPOS, compare=False, repr=False)


Expr = Union[Num, Var, Neg, BinOp, Call]


@dataclass(frozen=True)
class Equation:
    """``targets = expr``; several targets only for ``split``."""

    targets: tuple[str, ...]
    expr: Expr
    pos: Pos = field(default=NOPOS, compare=False, repr=False)
    target_pos: tuple[Pos, ...] = field(default=(), compare=False, repr=False)


# Precedence for printing: higher binds tighter (mirrors grammar/rnnspec.lark).
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 3}


def fmt_num(v: float) -> str:
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(float(v))


def to_source(e: Expr, parent_prec: int = 0, right_side: bool = False) -> str:
    """Canonical text of an expression, with only the parentheses it needs."""
    if isinstance(e, Num):
        return fmt_num(e.value)
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Call):
        return f"{e.fn}(" + ", ".join(to_source(a) for a in e.args) + ")"
    if isinstance(e, Neg):
        inner = to_source(e.arg, 4)
        text = f"-{inner}"
        return f"({text})" if parent_prec >= 4 else text
    if isinstance(e, BinOp):
        p = _PREC[e.op]
        text = f"{to_source(e.left, p)} {e.op} {to_source(e.right, p, True)}"
        need = p < parent_prec or (p == parent_prec and right_side)
        return f"({text})" if need else text
    raise TypeError(f"not an expression: {e!r}")


def equation_source(eq: Equation) -> str:
    return f"{', '.join(eq.targets)} = {to_source(eq.expr)}"


def walk(e: Expr) -> Iterator[Expr]:
    """Every node of ``e``, parents before children."""
    yield e
    if isinstance(e, Neg):
        yield from walk(e.arg)
    elif isinstance(e, BinOp):
        yield from walk(e.left)
        yield from walk(e.right)
    elif isinstance(e, Call):
        for a in e.args:
            yield from walk(a)


def names(e: Expr) -> set[str]:
    return {n.name for n in walk(e) if isinstance(n, Var)}
