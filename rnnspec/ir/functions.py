"""The functions cell equations may call, in one table: arity and kind drive
the shape checker; the backends and the differentiator look names up here."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Fn:
    name: str
    arity: int  # -1: variadic
    kind: str  # "unary" | "binary" | "clamp" | "split" | "cat" | "outer"
    doc: str


FUNCTIONS: dict[str, Fn] = {
    f.name: f
    for f in [
        Fn("sigmoid", 1, "unary", "logistic 1/(1+e^-x)"),
        Fn("tanh", 1, "unary", "hyperbolic tangent"),
        Fn("relu", 1, "unary", "max(x, 0)"),
        Fn("exp", 1, "unary", "e^x"),
        Fn("log", 1, "unary", "natural logarithm"),
        Fn("softplus", 1, "unary", "log(1 + e^x)"),
        Fn("abs", 1, "unary", "|x|"),
        Fn("hard_sigmoid", 1, "unary", "clamp(x/6 + 1/2, 0, 1), as torch.nn.Hardsigmoid"),
        Fn("hard_tanh", 1, "unary", "clamp(x, -1, 1)"),
        Fn("sin", 1, "unary", "sine"),
        Fn("cos", 1, "unary", "cosine"),
        Fn("sqrt", 1, "unary", "square root"),
        Fn("square", 1, "unary", "x*x"),
        Fn("identity", 1, "unary", "x"),
        Fn("min", 2, "binary", "elementwise minimum"),
        Fn("max", 2, "binary", "elementwise maximum"),
        Fn("clamp", 3, "clamp", "clamp(x, lo, hi)"),
        Fn("split", 2, "split", "split(x, n): n equal parts, as gates"),
        Fn("cat", -1, "cat", "cat(a, b, ...): concatenation"),
        Fn("outer", 2, "outer", "outer(a, b): flattened outer product a⊗b (second-order cells)"),
    ]
}

ELEMENTWISE_UNARY = {n for n, f in FUNCTIONS.items() if f.kind == "unary"}
