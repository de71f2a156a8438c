"""Specs whose model is an associative memory (``memory: {hopfield: ...}``)."""
from __future__ import annotations

from torch import nn

from rnnspec.blocks.bam import BAM
from rnnspec.blocks.hopfield import HopfieldNetwork
from rnnspec.spec.model import Spec


def build_memory(spec: Spec) -> nn.Module:
    mem = spec.memory
    assert mem is not None
    if mem.hopfield is not None:
        net: nn.Module = HopfieldNetwork(mem.hopfield.units, rule=mem.hopfield.rule)
    else:
        assert mem.bam is not None
        net = BAM(mem.bam.n, mem.bam.p)
    net.spec = spec  # type: ignore[assignment]
    return net
