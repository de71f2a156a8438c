"""A multi-frequency signal to generate with no input, for multi-rate networks.

Koutník, Greff, Gomez & Schmidhuber, "A Clockwork RNN" (ICML 2014), §4.1
(sequence generation): the network gets no input and must produce a target
sequence of 320 samples from its own dynamics; the paper's targets are
stretches of music, whose slow and fast components suit modules clocked at
different rates.  This generator makes such a target from sines of several
periods (synthetic, so no download)::

    s(t) = sum_k  2^-k sin(2 pi (t + 1) / P_k + phi_k),    t = 0 .. length-1

scaled so ``max |s| = amplitude``.  The phases ``phi_k`` come from ``seed``
(uniform in [0, 2 pi)); with no input there is nothing to tell examples
apart, so every example of a dataset is the same sequence and the split only
sets copies aside.  ``x``: ``[length, 1]`` zeros; ``y``: ``[length, 1]``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .batch import Example, make_rng
from .errors import DataError


def multi_frequency_signal(length: int, periods: Sequence[float], *, seed: int, amplitude: float = 0.8) -> np.ndarray:
    """The target sequence ``s(0..length-1)`` (float32), see the module doc."""
    t = np.arange(length, dtype=np.float64) + 1.0
    rng = make_rng(seed, 0x3C1C)
    phases = rng.uniform(0.0, 2.0 * math.pi, size=len(periods))
    s = sum((0.5 ** k) * np.sin(2.0 * math.pi * t / p + phi) for k, (p, phi) in enumerate(zip(periods, phases)))
    peak = float(np.abs(s).max())
    return (amplitude * s / peak if peak > 0 else s).astype(np.float32)


def make_multi_frequency(
    n: int,
    *,
    seed: int,
    length: int = 320,
    periods: Sequence[float] = (10.0, 40.0, 160.0),
    amplitude: float = 0.8,
) -> list[Example]:
    """``n`` copies of one multi-frequency sequence to generate from zero input."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DataError(f"parameter 'n' must be an integer >= 0, got {n!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise DataError(f"parameter 'length' must be an integer >= 1, got {length!r}")
    if not isinstance(periods, (list, tuple)) or not periods:
        raise DataError(f"parameter 'periods' must be a non-empty list of numbers, got {periods!r}")
    for p in periods:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
            raise DataError(f"parameter 'periods' must hold positive numbers, got {p!r}")
    if isinstance(amplitude, bool) or not isinstance(amplitude, (int, float)) or not amplitude > 0:
        raise DataError(f"parameter 'amplitude' must be a positive number, got {amplitude!r}")
    y = torch.from_numpy(multi_frequency_signal(length, [float(p) for p in periods], seed=seed,
                                                amplitude=float(amplitude)))[:, None]
    x = torch.zeros(length, 1)
    return [Example(x, y, per_step=True) for _ in range(n)]
