"""The standalone module's kernel launcher (copied into the file that
``rnnspec compile -o`` writes, like :mod:`rnnspec.backends.runtime`).

A cell class that carries a kernel has three class attributes written by
:mod:`rnnspec.codegen.standalone_kernels`: ``kernel_source`` (the text
``rnnspec.kernels.codegen.generate`` writes: ``forward_kernel`` and
``backward_kernel``, one program per batch tile), ``kernel_plan`` (the
layout those kernels assume, as plain literals) and ``kernel_targets``
(the GPU architectures on which one program per tile was the dispatcher's
choice when the file was written), and a ``kernel_streams(x)`` method that
computes the hoisted input products the kernels stream.

The module still needs only torch: triton is imported on first use.  A cell
runs on its kernel when triton imports and the input is a CUDA tensor of a
listed architecture (or ``TRITON_INTERPRET=1`` is set: Triton's interpreter
on the CPU, for tests); otherwise the torch loop runs, with a one-time
warning where a GPU is present but the kernel cannot run.  The autograd
function and the parameter-gradient GEMMs are copied verbatim from
:mod:`rnnspec.kernels.launch`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from rnnspec.backends.runtime import LayerGroup, run_direction
from rnnspec.kernels.codegen import interpreting
from rnnspec.kernels.launch import _Recurrence, dot_precision, kernel_inputs


class KernelLeaf:
    """A slice of a parameter the kernels use (rows ``offset:offset+size``)."""

    def __init__(self, param: str, offset: int, size: int, cols: int) -> None:
        self.param, self.offset, self.size, self.cols = param, offset, size, cols


class KernelPlanData:
    """The parts of ``rnnspec.kernels.codegen.KernelPlan`` the launcher reads,
    rebuilt from the literal dict a cell class carries."""

    def __init__(self, d: Dict[str, Any]) -> None:
        self.S, self.P, self.O, self.A, self.C = d["S"], d["P"], d["O"], d["A"], d["C"]
        self.num_warps = d["num_warps"]
        self.matrices, self.vectors = list(d["matrices"]), list(d["vectors"])
        leaves = {n: KernelLeaf(*v) for n, v in d["leaves"].items()}
        self.step = _Leaves(leaves)
        self.matrix_leaves = [(n, leaves[n]) for n in d["matrix_leaves"]]
        self.vector_leaves = [(n, leaves[n]) for n in d["vector_leaves"]]
        self.where = dict(d["where"])
        self.matrix_terms = [tuple(t) for t in d["matrix_terms"]]
        self.vector_terms = [tuple(t) for t in d["vector_terms"]]


class _Leaves:
    def __init__(self, leaves: Dict[str, KernelLeaf]) -> None:
        self.leaves = leaves


class EmbeddedKernels:
    """What ``_Recurrence`` reads: the plan, the two kernels, interpreted or not."""

    def __init__(self, plan: KernelPlanData, forward: Any, backward: Any, interpreted: bool) -> None:
        self.plan, self.forward, self.backward, self.interpreted = plan, forward, backward, interpreted


_KERNELS: Dict[Tuple[str, bool], EmbeddedKernels] = {}
_WARNED: set = set()


def kernel_cache_dir() -> Path:
    """Where kernel sources are written for import (``@triton.jit`` needs a
    real file): ``$RNNSPEC_CACHE`` or a folder in the system's temp dir."""
    root = os.environ.get("RNNSPEC_CACHE")
    return Path(root) if root else Path(tempfile.gettempdir()) / "rnnspec_kernels"


def load_kernels(cls: type) -> EmbeddedKernels:
    """Import ``cls.kernel_source`` from a cache file named by its hash."""
    text = cls.kernel_source
    interpret = interpreting()
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    hit = _KERNELS.get((digest, interpret))
    if hit is not None:
        return hit
    path = kernel_cache_dir() / f"standalone_{re.sub(r'[^0-9A-Za-z_]', '_', cls.__name__)}_{digest}.py"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)  # atomic: concurrent writers race harmlessly
    modname = f"rnnspec_standalone_kernels_{digest}_{'i' if interpret else 'c'}"
    spec = importlib.util.spec_from_file_location(modname, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    k = EmbeddedKernels(KernelPlanData(cls.kernel_plan), module.forward_kernel, module.backward_kernel, interpret)
    _KERNELS[(digest, interpret)] = k
    return k


def kernel_why_not(cell: nn.Module, x: Tensor) -> Optional[str]:
    """Why ``cell`` runs the torch loop on ``x`` (None: it runs its kernel).
    A reason worth a warning starts with ``!``."""
    if getattr(cell, "kernel_source", None) is None:
        return "the cell carries no kernel"
    if x.shape[0] == 0 or x.shape[1] == 0:
        return "empty input"
    if not x.is_cuda and os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("", "0", "false"):
        return "CPU input without TRITON_INTERPRET=1"  # decided without importing triton
    try:
        import triton  # noqa: F401
    except ImportError:
        return "triton is not importable"
    if not x.is_cuda:
        return None if interpreting() else "CPU input without TRITON_INTERPRET=1"
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return f"!input dtype {x.dtype} (the kernels take float32, float16 or bfloat16)"
    major, minor = torch.cuda.get_device_capability(x.device)
    arch = f"sm_{major}{minor}"
    if arch not in cell.kernel_targets:
        return (f"!the GPU is {arch}; this file checked the single-program kernel of {type(cell).__name__} "
                f"only for {', '.join(cell.kernel_targets)} (the rnnspec package's Triton backend picks "
                "kernels for any GPU)")
    return None


def run_cell(cell: nn.Module, x: Tensor, state: Sequence[Tensor], lengths: Optional[Tensor]) -> Tuple[Tensor, List[Tensor]]:
    """``run_direction``'s contract: the cell's kernel where it can run, else the torch loop."""
    why = kernel_why_not(cell, x)
    if why is not None:
        if why.startswith("!") and (type(cell).__name__, why) not in _WARNED:
            _WARNED.add((type(cell).__name__, why))
            warnings.warn(f"{type(cell).__name__} runs the torch loop: {why[1:]}", RuntimeWarning, stacklevel=2)
        return run_direction(cell, x, state, lengths)
    kern = load_kernels(type(cell))
    kp = kern.plan
    pre = cell.kernel_streams(x)
    lens, mats, vecs, s0 = kernel_inputs(cell, kp, x, state, lengths)
    out, final = _Recurrence.apply(kern, dot_precision(x), False, pre, lens, len(mats), len(vecs), *mats, *vecs, s0)
    if out.dtype != x.dtype:
        out = out.to(x.dtype)
    sizes = list(cell.state_sizes)
    new_state = list(torch.split(final, sizes, -1)) if len(sizes) > 1 else [final]
    return out, new_state


class KernelLayerGroup(LayerGroup):
    """A :class:`LayerGroup` whose cells run their kernels where they can."""

    def runner(self, x: Tensor) -> Any:
        return run_cell
