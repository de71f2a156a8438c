"""rnnspec: a declarative spec-to-model compiler for recurrent neural networks.

Public API (documented in README.md)::

    spec  = rnnspec.load("specs/examples/char_lm.yaml")      # validated Spec
    model = rnnspec.compile(spec)                             # torch.nn.Module
    net   = rnnspec.from_torch(torch.nn.LSTM(32, 64))         # same weights, our cells
    lstm  = rnnspec.to_torch(net)                             # and back

Imports are lazy so that `import rnnspec` (and the CLI's `--help`) stays fast.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": ("rnnspec.spec.loader", "load"),
    "loads": ("rnnspec.spec.loader", "loads"),
    "compile": ("rnnspec.compiler", "compile"),
    "from_torch": ("rnnspec.interop", "from_torch"),
    "to_torch": ("rnnspec.interop", "to_torch"),
    "SpecError": ("rnnspec.errors", "SpecError"),
    "Spec": ("rnnspec.spec.model", "Spec"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'rnnspec' has no attribute {name!r}")
