"""Time series with injected anomalies and their ground-truth labels, for
prediction-error anomaly detection (Malhotra, Vig, Shroff & Agarwal 2015,
"Long Short Term Memory Networks for Anomaly Detection in Time Series",
ESANN; their Section 2: a stacked LSTM is trained on normal data to predict
the next ``l`` values; the prediction errors of a point are its anomaly score).

The normal signal is a noisy periodic wave whose period and amplitude differ
from series to series, so the predictor has to read them from the context:

    s_t = a (sin(phi_t) + 0.3 sin(2 phi_t + psi)) + noise,
    phi_t = phi_0 + sum_{u<t} 2 pi / period_u.

Three kinds of anomaly are injected (each in its own window, after a warm-up):

* ``spike``: one point jumps by ``+-(2..3) a``;
* ``level_shift``: a window of 8..16 points is offset by ``+-(1..1.5) a``;
* ``frequency``: for 16..28 points the period is divided or multiplied by 2.5
  (out of the normal range of 12..20; the phase stays continuous, so the wave
  bends rather than jumps).

``x`` is ``[T, 1]`` (the series), ``y`` is ``[T, horizon]``: at step ``t``
the next ``horizon`` values ``s_{t+1..t+horizon}``.  ``extras``:

* ``anomaly`` ``[T]`` bool: point ``x_t`` lies in an injected window;
* ``scored`` ``[T]`` bool: points past the warm-up (the predictor has context);
* ``loss_mask`` ``[T]`` bool: the steps the predictor is fitted on: past the
  warm-up, no anomaly among its targets nor among the last ``guard`` inputs.
  The paper trains on normal series only; here every split mixes normal and
  anomalous series and the anomalous stretches are masked out of the loss,
  which keeps the predictor a model of normal behaviour;
* ``events``: ``(kind, start, stop)`` for each injected window.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from .batch import Example, make_rng
from .errors import DataError, did_you_mean

ANOMALY_KINDS = ("spike", "level_shift", "frequency")

_WIDTH = {"spike": (1, 1), "level_shift": (8, 16), "frequency": (16, 28)}


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(f"parameter '{name}' must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_float(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
        raise DataError(f"parameter '{name}' must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def _place(kinds: Sequence[str], length: int, warmup: int, rng: np.random.Generator) -> list[tuple[str, int, int]]:
    """Non-overlapping windows (at least 6 points apart) after the warm-up."""
    events: list[tuple[str, int, int]] = []
    for kind in kinds:
        lo, hi = _WIDTH[kind]
        width = int(rng.integers(lo, hi + 1))
        for _ in range(50):
            start = int(rng.integers(warmup, length - width + 1))
            stop = start + width
            if all(stop + 6 <= a or start >= b + 6 for _, a, b in events):
                events.append((kind, start, stop))
                break
    return sorted(events, key=lambda e: e[1])


def anomalous_series(length: int, rng: np.random.Generator, events: Sequence[tuple[str, int, int]],
                     noise: float = 0.05) -> np.ndarray:
    """One series of ``length`` points (float64) with the given windows injected.

    The normal wave and its noise are drawn before the anomalies, so the same
    generator state with no ``events`` gives the clean series."""
    period = float(rng.uniform(12.0, 20.0))
    amp = float(rng.uniform(0.5, 1.0))
    phi0, psi = rng.uniform(0.0, 2 * math.pi, size=2)
    jitter = noise * rng.standard_normal(length)
    omega = np.full(length, 2 * math.pi / period)
    offset = np.zeros(length)
    for kind, a, b in events:
        if kind == "frequency":
            omega[a:b] *= 2.5 if rng.random() < 0.5 else 0.4
        elif kind == "level_shift":
            offset[a:b] = rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 1.5) * amp
        else:
            offset[a] = rng.choice([-1.0, 1.0]) * rng.uniform(2.0, 3.0) * amp
    # phi_t = phi_0 + sum of the angular steps before t (continuous through a frequency change)
    phi = phi0 + np.concatenate([[0.0], np.cumsum(omega[:-1])])
    wave = amp * (np.sin(phi) + 0.3 * np.sin(2 * phi + psi))
    return wave + offset + jitter


def make_anomaly(
    n: int,
    *,
    seed: int,
    length: int = 160,
    horizon: int = 1,
    anomalous: float = 0.5,
    anomalies: int = 2,
    kinds: Sequence[str] = ANOMALY_KINDS,
    noise: float = 0.05,
    warmup: int = 16,
    guard: int = 8,
) -> list[Example]:
    """``n`` series (see the module doc); a share ``anomalous`` of them (every
    other one for 0.5) holds ``1..anomalies`` windows of the ``kinds`` given."""
    n = _check_int("n", n, 0)
    length = _check_int("length", length, 8)
    horizon = _check_int("horizon", horizon, 1)
    anomalies = _check_int("anomalies", anomalies, 1)
    warmup = _check_int("warmup", warmup, 0)
    guard = _check_int("guard", guard, 0)
    anomalous = _check_float("anomalous", anomalous, 0.0, 1.0)
    noise = _check_float("noise", noise, 0.0, 10.0)
    if isinstance(kinds, str):
        kinds = [kinds]
    kinds = list(kinds)
    for k in kinds:
        if k not in ANOMALY_KINDS:
            raise DataError(f"parameter 'kinds': unknown anomaly kind {k!r}{did_you_mean(str(k), ANOMALY_KINDS)}; "
                            f"the kinds are {', '.join(ANOMALY_KINDS)}")
    if not kinds:
        raise DataError("parameter 'kinds' must name at least one anomaly kind")
    if warmup + 28 + 6 * anomalies > length:
        raise DataError(f"parameter 'length' ({length}) is too short for a warm-up of {warmup} and {anomalies} anomalies")
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        # exact share of anomalous series: example i is anomalous when floor((i+1) a) > floor(i a)
        bad = math.floor((i + 1) * anomalous + 1e-9) > math.floor(i * anomalous + 1e-9)
        events: list[tuple[str, int, int]] = []
        if bad:
            count = int(rng.integers(1, anomalies + 1))
            events = _place([kinds[int(rng.integers(len(kinds)))] for _ in range(count)], length, warmup, rng)
        s = anomalous_series(length + horizon, rng, events, noise)
        label = np.zeros(length + horizon, dtype=bool)
        for _, a, b in events:
            label[a:b] = True
        x = s[:length, None].astype(np.float32)
        y = np.stack([s[1 + j : length + 1 + j] for j in range(horizon)], 1).astype(np.float32)
        t = np.arange(length)
        # a step is fitted when no anomaly is among its targets (t+1..t+horizon) or its last `guard` inputs
        near = np.array([label[max(0, u - guard) : u + horizon + 1].any() for u in t])
        mask = (t >= warmup) & ~near
        extras = {
            "anomaly": torch.from_numpy(label[:length].copy()),
            "scored": torch.from_numpy(t >= warmup),
            "loss_mask": torch.from_numpy(mask),
            "events": events,
        }
        out.append(Example(torch.from_numpy(x), torch.from_numpy(y), extras, per_step=True))
    return out
