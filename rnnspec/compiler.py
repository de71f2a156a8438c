"""Spec -> torch.nn.Module.

The spec's layers become :class:`~rnnspec.backends.runtime.LayerGroup`s of
:class:`~rnnspec.backends.torch_backend.Cell`s inside a
:class:`~rnnspec.backends.runtime.Network`: ordinary modules, so state_dict,
torch.save, torch.compile and torch.export work on them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

from torch import Tensor, nn

from rnnspec.backends.runtime import LayerGroup, Network, Recurrent, Runner
from rnnspec.backends.torch_backend import Cell, pick_runner
from rnnspec.errors import SpecError
from rnnspec.ir.cell import CellIR, parse_init_text
from rnnspec.spec.loader import cell_ir, compressor_irs, layer_irs, load
from rnnspec.spec.blocks_model import BLOCK_FIELDS, BlockSpec
from rnnspec.spec.model import LayerSpec, Spec

BACKENDS = ("auto", "torch", "triton")


def learned_init(spec: LayerSpec) -> tuple[str, tuple[float, ...]]:
    """The initializer of a learned initial state (``initial_init``, default zeros)."""
    if spec.initial_init is None:
        return ("zeros", ())
    init = parse_init_text(spec.initial_init, None)
    return (init.name, init.args)


class CompiledGroup(LayerGroup):
    """A layer group that picks its recurrence runner (Triton or torch) per call."""

    def __init__(self, spec: LayerSpec, irs: Sequence[CellIR], backend: str = "auto") -> None:
        dirs = 2 if spec.bidirectional else 1
        learned = [name for name, _ in irs[0].states] if spec.initial_state == "learned" else None
        super().__init__([[Cell(ir, heads=spec.heads) for _ in range(dirs)] for ir in irs], spec.merge, spec.dropout,
                         learned, learned_init(spec))
        self.spec = spec
        self.backend = backend

    def runner(self, x: Tensor) -> Runner:
        return pick_runner(self.backend, x)


def block_fields(block: BlockSpec) -> dict:
    """The keyword fields a MemoryLayer of the block's kind takes: the
    kind's own spec fields (controller cells arrive built, ``out`` as the
    layer's output size)."""
    kind_fields = BLOCK_FIELDS[block.block] - {"controller", "out", "automatizer", "chunker"}
    return block.model_dump(include=kind_fields)


def expand_irs(spec: Spec) -> list[list[CellIR]]:
    """Cell IRs per layer group and depth level: level 2+ of a group sees the
    previous level's output, so its input size may differ.  A memory block's
    entry holds its controller cell's IR, if it has one."""
    assert spec.model is not None
    firsts = layer_irs(spec)
    out: list[list[CellIR]] = []
    size = spec.model.input.size
    for layer, first in zip(spec.model.layers, firsts):
        if isinstance(layer, BlockSpec):
            if layer.block == "compressor":  # two cells: [automatizer, chunker] (checked by layer_irs)
                out.append(list(compressor_irs(spec, layer, (), size)))
                size = layer.output_size
                continue
            out.append([first] if first is not None else [])
            size = layer.output_size
            continue
        levels: list[CellIR] = []
        for level in range(layer.depth):
            ir = first if level == 0 else cell_ir(
                layer.cell, spec.cell(layer.cell), input_size=size, hidden=layer.hidden, args=layer.args, bias=layer.bias
            )
            levels.append(ir)
            size = ir.output_size * (2 if layer.bidirectional and layer.merge == "concat" else 1)
        out.append(levels)
    return out


def build(spec: Spec, backend: str = "auto") -> Network:
    if spec.memory is not None:
        from rnnspec.blocks.memory import build_memory

        return build_memory(spec)  # type: ignore[return-value]
    if spec.model is None:
        raise SpecError("this spec has no network to compile (it defines cells only)", None)
    model = spec.model
    groups: list[nn.Module] = []
    size = model.input.size
    for layer, irs in zip(model.layers, expand_irs(spec)):
        if isinstance(layer, BlockSpec):
            from rnnspec.blocks.layer import CellController, MemoryLayer

            controller = CellController(Cell(irs[0])) if irs else layer.controller
            fields = block_fields(layer)
            if layer.block == "compressor":
                fields.update(automatizer=controller, chunker=CellController(Cell(irs[1])))
            groups.append(MemoryLayer(layer.block, size, layer.output_size, controller, **fields))
        else:
            groups.append(CompiledGroup(layer, irs, backend))
        size = groups[-1].output_size
    out = model.output
    net = Network(
        Recurrent(groups, batch_first=False),
        tokens=model.input.tokens,
        embed=model.input.embed,
        output=out.size if out is not None else None,
        every_step=out.every_step if out is not None else True,
        activation=out.activation if out is not None else None,
        batch_first=model.batch_first,
    )
    net.spec = spec  # type: ignore[assignment]  # for rnnspec.to_torch, codegen and checkpoints
    net.backend = backend  # type: ignore[assignment]
    return net


def compile(spec_or_path: Union[Spec, str, Path], backend: str = "auto") -> Network:
    """Compile a spec (or a spec file) into a torch module.

    ``backend``: ``auto`` (Triton kernels on CUDA tensors when available, the
    torch backend otherwise), ``torch``, or ``triton``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    spec = spec_or_path if isinstance(spec_or_path, Spec) else load(spec_or_path)
    return build(spec, backend=backend)
