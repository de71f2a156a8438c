"""Spec models of the blocks that are not cells: memory layers inside a
network (NTM, DNC, a modern Hopfield layer) and associative memories that
are a whole model (classic Hopfield, BAM)."""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator

from rnnspec.spec.model_base import PositiveInt, Strict

# Which fields each block kind reads; giving another is an error, not ignored.
_BLOCK_FIELDS = {
    "ntm": {"hidden", "controller", "slots", "width", "read_heads", "write_heads", "shift_range", "out"},
    "dnc": {"hidden", "controller", "slots", "width", "read_heads", "out"},
    "hopfield": {"hidden", "stored", "beta", "learn_beta", "update_steps", "out"},
}


class BlockSpec(Strict):
    """A memory layer of a network (``block: ntm`` in place of ``cell:``).

    ``controller`` is ``lstm``, ``feedforward`` or the name of any cell in
    scope (library or custom), run one step at a time."""

    block: Literal["ntm", "dnc", "hopfield"]
    hidden: PositiveInt = 100
    controller: str = "lstm"
    slots: PositiveInt = 128
    width: PositiveInt = 20
    read_heads: PositiveInt = 1
    write_heads: PositiveInt = 1
    shift_range: Annotated[int, Field(ge=0)] = 1
    out: Optional[PositiveInt] = None
    stored: PositiveInt = 16
    beta: Optional[Annotated[float, Field(gt=0.0)]] = None
    learn_beta: bool = False
    update_steps: PositiveInt = 1

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> "BlockSpec":
        allowed = _BLOCK_FIELDS[self.block] | {"block"}
        extra = sorted(k for k in self.model_fields_set if k not in allowed)
        if extra:
            raise ValueError(
                f"{', '.join(repr(e) for e in extra)} do(es) not apply to a {self.block} block; "
                f"it takes {', '.join(sorted(_BLOCK_FIELDS[self.block]))}"
            )
        return self

    @property
    def output_size(self) -> int:
        return self.out if self.out is not None else self.hidden


class HopfieldMemorySpec(Strict):
    """Classic binary Hopfield network (Hopfield 1982)."""

    units: PositiveInt
    rule: Literal["hebbian", "pseudo_inverse"] = "hebbian"
    update: Literal["async", "sync"] = "async"
    max_steps: PositiveInt = 100


class BAMSpec(Strict):
    """Bidirectional associative memory (Kosko 1988) between n and p units."""

    n: PositiveInt
    p: PositiveInt
    max_steps: PositiveInt = 100


class MemorySpec(Strict):
    """A spec whose model is an associative memory: ``memory: {hopfield: {...}}``."""

    hopfield: Optional[HopfieldMemorySpec] = None
    bam: Optional[BAMSpec] = None

    @model_validator(mode="after")
    def _one(self) -> "MemorySpec":
        if (self.hopfield is None) == (self.bam is None):
            raise ValueError("memory takes exactly one of 'hopfield' or 'bam'")
        return self
