"""Torch implementations of the equation functions (the reference semantics).

The generated standalone module emits the same calls by name, so this table
is the one place that says what ``softplus`` or ``hard_sigmoid`` means.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

# name -> (callable, source text used by the code generator)
UNARY: dict[str, tuple[Callable[[Tensor], Tensor], str]] = {
    "sigmoid": (torch.sigmoid, "torch.sigmoid"),
    "tanh": (torch.tanh, "torch.tanh"),
    "relu": (torch.relu, "torch.relu"),
    "exp": (torch.exp, "torch.exp"),
    "log": (torch.log, "torch.log"),
    "softplus": (F.softplus, "F.softplus"),
    "abs": (torch.abs, "torch.abs"),
    "hard_sigmoid": (F.hardsigmoid, "F.hardsigmoid"),
    "hard_tanh": (F.hardtanh, "F.hardtanh"),
    "sin": (torch.sin, "torch.sin"),
    "cos": (torch.cos, "torch.cos"),
    "sqrt": (torch.sqrt, "torch.sqrt"),
    "square": (torch.square, "torch.square"),
    "identity": (lambda t: t, ""),
}


def as_tensor_like(v: Tensor | float, like: Tensor) -> Tensor:
    return v if isinstance(v, Tensor) else torch.as_tensor(v, dtype=like.dtype, device=like.device)


def emin(a: Tensor | float, b: Tensor | float) -> Tensor | float:
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        return min(a, b)
    ref = a if isinstance(a, Tensor) else b
    return torch.minimum(as_tensor_like(a, ref), as_tensor_like(b, ref))  # type: ignore[arg-type]


def emax(a: Tensor | float, b: Tensor | float) -> Tensor | float:
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        return max(a, b)
    ref = a if isinstance(a, Tensor) else b
    return torch.maximum(as_tensor_like(a, ref), as_tensor_like(b, ref))  # type: ignore[arg-type]


def clamp(x: Tensor, lo: Tensor | float, hi: Tensor | float) -> Tensor:
    return emin(emax(x, lo), hi)  # type: ignore[return-value]


def outer(a: Tensor, b: Tensor) -> Tensor:
    """Flattened outer product per batch row: [B, m] x [B, n] -> [B, m*n]."""
    return (a.unsqueeze(-1) * b.unsqueeze(-2)).flatten(-2)
