"""Spec models of the blocks that are not cells: memory layers inside a
network (NTM, DNC, a modern Hopfield layer, the NNPDA's stack) and associative memories that
are a whole model (classic Hopfield, BAM)."""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field, field_validator, model_validator

from rnnspec.spec.model_base import PositiveInt, Strict

# Which fields each block kind reads; giving another is an error, not ignored.
BLOCK_FIELDS = {
    "ntm": {"hidden", "controller", "slots", "width", "read_heads", "write_heads", "shift_range", "out"},
    "dnc": {"hidden", "controller", "slots", "width", "read_heads", "out"},
    "hopfield": {"hidden", "stored", "beta", "learn_beta", "update_steps", "out"},
    "compressor": {"hidden", "automatizer", "chunker", "chunker_hidden", "threshold", "surprise", "out"},
    "pda": {"hidden", "controller", "stack_width", "stack_depth", "action", "out"},
    "recursive": {"hidden", "compose", "operator", "open", "close", "stack_size"},
    "reservoir": {"hidden", "spectral_radius", "leak", "input_scale", "density", "bias_scale"},
    "clockwork": {"hidden", "periods"},
}


class BlockSpec(Strict):
    """A memory layer of a network (``block: ntm`` in place of ``cell:``).

    ``controller`` is ``lstm``, ``feedforward`` or the name of any cell in
    scope (library or custom), run one step at a time."""

    block: Literal["ntm", "dnc", "hopfield", "pda", "recursive", "compressor", "reservoir", "clockwork"]
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
    # compressor (Schmidhuber 1992 history compressor, rnnspec.blocks.compressor): two cells in scope
    automatizer: str = "lstm"
    chunker: str = "lstm"
    chunker_hidden: Optional[PositiveInt] = None  # default: hidden
    threshold: Annotated[float, Field(gt=0.0)] = 0.5
    surprise: Literal["symbol", "error"] = "symbol"
    # pda (the NNPDA's continuous stack, rnnspec.blocks.stack)
    stack_width: PositiveInt = 8
    stack_depth: PositiveInt = 64
    action: Literal["push_pop", "signed"] = "push_pop"
    # recursive (tree network over bracketed input, rnnspec.blocks.recursive)
    compose: str = "tanh"
    operator: Literal["child", "gate", "none"] = "child"
    open: Optional[Annotated[int, Field(ge=0)]] = None
    close: Optional[Annotated[int, Field(ge=0)]] = None
    stack_size: PositiveInt = 32
    # reservoir (echo-state network, rnnspec.blocks.reservoir): fixed random weights
    spectral_radius: Annotated[float, Field(gt=0.0)] = 0.9
    leak: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    input_scale: Annotated[float, Field(ge=0.0)] = 1.0
    density: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    bias_scale: Annotated[float, Field(ge=0.0)] = 0.0
    # clockwork (Koutnik et al. 2014, rnnspec.blocks.clockwork): one period per module, fastest first
    periods: Optional[Annotated[list[PositiveInt], Field(min_length=1)]] = None

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> "BlockSpec":
        allowed = BLOCK_FIELDS[self.block] | {"block"}
        extra = sorted(k for k in self.model_fields_set if k not in allowed)
        if extra:
            raise ValueError(
                f"{', '.join(repr(e) for e in extra)} do(es) not apply to a {self.block} block; "
                f"it takes {', '.join(sorted(BLOCK_FIELDS[self.block]))}"
            )
        return self

    @model_validator(mode="after")
    def _recursive_brackets(self) -> "BlockSpec":
        if self.block == "recursive":
            if self.close is None:
                raise ValueError("a recursive block needs 'close': the input column (token id) of the closing bracket")
            if self.open is not None and self.open == self.close:
                raise ValueError(f"'open' and 'close' are both {self.close}; they must be different tokens")
        return self

    @model_validator(mode="after")
    def _compressor_threshold(self) -> "BlockSpec":
        if self.block == "compressor" and self.surprise == "symbol" and self.threshold > 1.0:
            raise ValueError(f"threshold {self.threshold} is a probability with surprise: symbol; it must be <= 1")
        return self

    @field_validator("periods")
    @classmethod
    def _periods_increase(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        if v is not None and any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"periods must increase (one per module, the fastest first), got {v}")
        return v

    @model_validator(mode="after")
    def _clockwork_modules(self) -> "BlockSpec":
        if self.block == "clockwork":
            if self.periods is None:
                raise ValueError("a clockwork block needs 'periods' (one per module, e.g. [1, 2, 4, 8])")
            if self.hidden % len(self.periods):
                raise ValueError(f"hidden ({self.hidden}) must split into {len(self.periods)} equal modules, "
                                 "one per period")
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
