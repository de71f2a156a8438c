"""Memory-network blocks: Hopfield, BAM, NTM and DNC as plain PyTorch modules.

Each class documents the paper it follows (with equation numbers) and is
described, with its spec fields and the paper figure its test reproduces, in
``docs/blocks/<name>.md``.

* :class:`HopfieldNetwork` — binary Hopfield network (Hopfield 1982).
* :class:`ModernHopfield` — trainable continuous Hopfield layer (Ramsauer et al. 2020).
* :class:`BAM` — bidirectional associative memory (Kosko 1988).
* :class:`NTM` — Neural Turing Machine (Graves, Wayne & Danihelka 2014).
* :class:`DNC` — Differentiable Neural Computer (Graves et al. 2016).
"""
from __future__ import annotations

from rnnspec.blocks.addressing import (
    Controller,
    FeedforwardController,
    LSTMController,
    MemoryNetwork,
    detach_state,
)
from rnnspec.blocks.bam import BAM, BAMResult
from rnnspec.blocks.dnc import DNC, DNCState
from rnnspec.blocks.hopfield import HopfieldNetwork, ModernHopfield, RecallResult
from rnnspec.blocks.ntm import NTM, NTMState

__all__ = [
    "BAM",
    "BAMResult",
    "Controller",
    "DNC",
    "DNCState",
    "FeedforwardController",
    "HopfieldNetwork",
    "LSTMController",
    "MemoryNetwork",
    "ModernHopfield",
    "NTM",
    "NTMState",
    "RecallResult",
    "detach_state",
]
