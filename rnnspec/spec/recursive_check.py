"""Semantic checks of a ``block: recursive`` layer (rnnspec.blocks.recursive),
beyond its schema: the bracket columns must exist in what the block reads,
and a composing cell must exist and map node vectors to node vectors.

Kept apart from rnnspec.spec.loader (which calls it from ``check_block``) so
the recursive block's rules live in one place."""
from __future__ import annotations

from typing import Optional

from rnnspec.errors import SpecError, did_you_mean
from rnnspec.ir.cell import CellIR
from rnnspec.spec.blocks_model import BlockSpec
from rnnspec.spec.model import Spec


def check_recursive(spec: Spec, block: BlockSpec, path: tuple, input_size: int) -> Optional[CellIR]:
    """Raise a located SpecError if the block cannot read its brackets or its
    composition; return the composing cell's IR (None for ``tanh``)."""
    from rnnspec.spec.loader import cell_ir  # loader imports this module

    where = spec._where
    assert spec.model is not None
    if path[-1] != 0:
        raise SpecError(
            "a recursive block reads its brackets from the network's input, so it must be the first layer",
            where.value(path + ("block",)),
        )
    if spec.model.input.embed is not None:
        raise SpecError(
            "a recursive block finds the bracket tokens in its input, which 'embed' hides; "
            "leave 'embed' out (tokens arrive one-hot and the block embeds the leaves itself)",
            where.key(("model", "input", "embed")),
        )
    for name in ("close", "open"):
        column = getattr(block, name)
        if column is not None and column >= input_size:
            raise SpecError(
                f"{name} = {column} is not a token of this input: it has {input_size} (ids 0..{input_size - 1})",
                where.value(path + (name,)),
            )
    if block.compose == "tanh":
        return None
    library = spec._library or {}
    if block.compose not in library:
        choices = ["tanh", *library]
        raise SpecError(
            f"unknown composition {block.compose!r}{did_you_mean(block.compose, choices)}; "
            "expected tanh or a cell name (gru, lstm, a custom cell ...)",
            where.value(path + ("compose",)),
        )
    ir = cell_ir(block.compose, library[block.compose], input_size=block.hidden, hidden=block.hidden,
                 origin=where.value(path + ("compose",)))
    if ir.output_size != block.hidden:
        raise SpecError(
            f"cell {block.compose!r} outputs {ir.output_size} values at hidden={block.hidden}; "
            "a composing cell must output a node vector of 'hidden' entries",
            where.value(path + ("compose",)),
        )
    return ir
