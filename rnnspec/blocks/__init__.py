"""Memory-network blocks: Hopfield, BAM, NTM and DNC as plain PyTorch modules.

Each class documents the paper it follows (with equation numbers) and is
described, with its spec fields and the paper figure its test reproduces, in
``docs/blocks/<name>.md``.

* :class:`HopfieldNetwork` — binary Hopfield network (Hopfield 1982).
* :class:`ModernHopfield` — trainable continuous Hopfield layer (Ramsauer et al. 2020).
* :class:`BAM` — bidirectional associative memory (Kosko 1988).
* :class:`NTM` — Neural Turing Machine (Graves, Wayne & Danihelka 2014).
* :class:`DNC` — Differentiable Neural Computer (Graves et al. 2016).
* :class:`Compressor` — neural history compressor (Schmidhuber 1992).
* :class:`NNPDA` — neural network pushdown automaton (Sun, Giles et al. 1993).
* :class:`Reservoir` — echo-state reservoir, fixed random weights (Jaeger 2001).
* :class:`Clockwork` — Clockwork RNN, modules clocked at different rates (Koutník et al. 2014).
* :class:`Recursive` — recursive tree network over bracketed input (Goller & Küchler 1996; Socher et al. 2011).
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
from rnnspec.blocks.clockwork import Clockwork, ClockworkState
from rnnspec.blocks.compressor import Compressor, CompressorState
from rnnspec.blocks.dnc import DNC, DNCState
from rnnspec.blocks.hopfield import HopfieldNetwork, ModernHopfield, RecallResult
from rnnspec.blocks.ntm import NTM, NTMState
from rnnspec.blocks.recursive import Recursive, RecursiveState
from rnnspec.blocks.reservoir import Reservoir
from rnnspec.blocks.stack import NNPDA, NNPDAState

__all__ = [
    "BAM",
    "BAMResult",
    "Clockwork",
    "ClockworkState",
    "Compressor",
    "CompressorState",
    "Controller",
    "DNC",
    "DNCState",
    "FeedforwardController",
    "HopfieldNetwork",
    "LSTMController",
    "MemoryNetwork",
    "ModernHopfield",
    "NNPDA",
    "NNPDAState",
    "NTM",
    "NTMState",
    "RecallResult",
    "Recursive",
    "RecursiveState",
    "Reservoir",
    "detach_state",
]
