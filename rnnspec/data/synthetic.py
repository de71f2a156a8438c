"""Seeded generators for the classic synthetic benchmarks of recurrent nets.

Each ``make_<task>(n, *, seed, **params)`` returns ``n`` :class:`Example`\\ s
and is a pure function of its arguments.  Example ``i`` is drawn from its own
random stream ``(seed, i)``, so the first ``k`` examples of a bigger set equal
a set of ``k`` (a data set can grow without changing what is already there)
and classes that must be balanced are balanced exactly by alternating labels.

Conventions shared by all tasks:

* symbolic inputs are int64 token ids ``[T]`` over a task vocabulary exposed
  as a module constant (``REBER_SYMBOLS``...), or one-hot ``[T, V]`` floats
  with ``one_hot=True``; real-valued inputs are ``[T, F]`` float32;
* ``extras["loss_mask"]`` (``[T]`` bool) marks the steps where a per-step
  target is defined or predictable; steps outside it should not be scored;
* sequence classification targets are scalar int64 class ids, regression
  targets are float32 vectors ``[k]``, per-step next-symbol sets are
  multi-hot float32 ``[T, V]``.

Bad parameters raise :class:`~rnnspec.data.errors.DataError` naming the
parameter, since they come from a spec file.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Iterable, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from .batch import Example, make_rng
from .errors import DataError, did_you_mean, listing
from .speech import make_speech_digits, speech_label_names  # spoken digit strings for CTC (audio and features)
from .anomaly import make_anomaly  # series with injected anomalies (Malhotra et al. 2015)
from .captions import CAPTION_WORDS, make_captions  # scenes and their captions (Vinyals et al. 2015)
from .translation import make_translation, source_vocab, target_names  # numbers in words <-> digits (Sutskever et al. 2014)
from .video import VIDEO_TAGS, make_video  # clips of moving shapes, multi-label tags
from .multirate import make_multi_frequency  # a multi-frequency signal to generate with no input (Koutnik et al. 2014)

__all__ = [
    "REBER_SYMBOLS",
    "TOMITA_SYMBOLS",
    "PAREN_SYMBOLS",
    "PAREN_TARGETS",
    "ANBN_SYMBOLS",
    "TEMPORAL_ORDER_SYMBOLS",
    "ARITHMETIC_VOCAB",
    "arithmetic_vocab",
    "Tree",
    "make_copy",
    "make_repeat_copy",
    "make_adding",
    "make_temporal_xor",
    "make_reber",
    "make_embedded_reber",
    "reber_legal_next",
    "mackey_glass",
    "series_windows",
    "make_mackey_glass",
    "tomita_accepts",
    "make_tomita",
    "make_parentheses",
    "make_anbn",
    "random_tree",
    "tree_tokens",
    "evaluate_tree",
    "make_arithmetic",
    "associative_patterns",
    "make_associative_pairs",
    "make_delayed_recall",
    "make_temporal_order",
    "make_context_sum",
    "make_sine",
    "narendra_plant",
    "make_narendra_plant",
    "jordan_sequences",
    "make_jordan_plans",
    "PRIMITIVE_NAMES",
    "primitive_shapes",
    "primitive_orders",
    "make_primitive_sequences",
    "TASKS",
    "LABEL_NAMES",
    "task_label_names",
    "SOURCE_VOCABS",
    "task_vocab",
    "make_task",
]

# --------------------------------------------------------------------------
# parameter checks
# --------------------------------------------------------------------------


def _int(name: str, value: Any, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"parameter '{name}' must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise DataError(f"parameter '{name}' must be >= {minimum}, got {value}")
    return int(value)


def _float(name: str, value: Any, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"parameter '{name}' must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        bounds = f"in [{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        raise DataError(f"parameter '{name}' must be a finite number {bounds}, got {value!r}")
    return v


def _range(lo_name: str, lo: Any, hi_name: str, hi: Any, minimum: int) -> tuple[int, int]:
    a, b = _int(lo_name, lo, minimum), _int(hi_name, hi, minimum)
    if a > b:
        raise DataError(f"parameter '{lo_name}' ({a}) must be <= '{hi_name}' ({b})")
    return a, b


def _n(n: Any) -> int:
    return _int("n", n, 0)


def _tokens(ids: Sequence[int] | np.ndarray, vocab_size: int, one_hot: bool) -> Tensor:
    t = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    if one_hot:
        return torch.nn.functional.one_hot(t, vocab_size).to(torch.float32)
    return t


def _multi_hot(sets: Sequence[Iterable[int]], vocab_size: int) -> Tensor:
    out = torch.zeros(len(sets), vocab_size, dtype=torch.float32)
    for t, legal in enumerate(sets):
        for s in legal:
            out[t, s] = 1.0
    return out


# --------------------------------------------------------------------------
# copy and repeat copy (Graves et al. 2014)
# --------------------------------------------------------------------------


def make_copy(n: int, *, seed: int, bits: int = 8, min_len: int = 1, max_len: int = 20) -> list[Example]:
    """Copy task of Graves, Wayne & Danihelka, "Neural Turing Machines" (2014), §4.1.

    The input is a sequence of ``L`` random ``bits``-bit vectors (each bit
    Bernoulli(0.5), ``L`` uniform in ``min_len..max_len``), then one step with
    only the delimiter channel set, then ``L`` blank steps during which the
    net must reproduce the sequence.

    * ``x``: ``[2L+1, bits+1]`` float (channel ``bits`` is the delimiter);
    * ``y``: ``[2L+1, bits]`` float, zero except the copy in the last ``L`` steps;
    * ``extras["loss_mask"]``: True on the last ``L`` steps (the output phase).
    """
    n = _n(n)
    bits = _int("bits", bits, 1)
    lo, hi = _range("min_len", min_len, "max_len", max_len, 1)
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        length = int(rng.integers(lo, hi + 1))
        seq = rng.integers(0, 2, size=(length, bits)).astype(np.float32)
        total = 2 * length + 1
        x = np.zeros((total, bits + 1), dtype=np.float32)
        x[:length, :bits] = seq
        x[length, bits] = 1.0
        y = np.zeros((total, bits), dtype=np.float32)
        y[length + 1 :] = seq
        mask = np.zeros(total, dtype=bool)
        mask[length + 1 :] = True
        out.append(Example(torch.from_numpy(x), torch.from_numpy(y), {"loss_mask": torch.from_numpy(mask)}, per_step=True))
    return out


def make_repeat_copy(
    n: int,
    *,
    seed: int,
    bits: int = 8,
    min_len: int = 1,
    max_len: int = 10,
    min_repeats: int = 1,
    max_repeats: int = 10,
) -> list[Example]:
    """Repeat-copy task of Graves et al., "Neural Turing Machines" (2014), §4.2.

    A random ``L``-step binary sequence is followed by one marker step whose
    delimiter channel is 1 and whose count channel holds the number of
    repeats ``R`` (uniform in ``min_repeats..max_repeats``), normalised to
    mean 0 / variance 1 over that uniform range as in the paper (0 when the
    range is a single value).  The net must then output the sequence ``R``
    times followed by an end marker on an extra output channel.

    * ``x``: ``[L + 1 + L*R + 1, bits+2]`` (channels: bits, delimiter, count);
    * ``y``: same length, ``bits+1`` channels (bits, end marker);
    * ``extras``: ``loss_mask`` (the output phase, after the marker step) and
      ``repeats`` (the integer ``R``).
    """
    n = _n(n)
    bits = _int("bits", bits, 1)
    lo, hi = _range("min_len", min_len, "max_len", max_len, 1)
    rlo, rhi = _range("min_repeats", min_repeats, "max_repeats", max_repeats, 1)
    mean = (rlo + rhi) / 2.0
    std = math.sqrt(((rhi - rlo + 1) ** 2 - 1) / 12.0)
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        length = int(rng.integers(lo, hi + 1))
        repeats = int(rng.integers(rlo, rhi + 1))
        seq = rng.integers(0, 2, size=(length, bits)).astype(np.float32)
        total = length + 1 + length * repeats + 1
        x = np.zeros((total, bits + 2), dtype=np.float32)
        x[:length, :bits] = seq
        x[length, bits] = 1.0
        x[length, bits + 1] = (repeats - mean) / std if std > 0 else 0.0
        y = np.zeros((total, bits + 1), dtype=np.float32)
        start = length + 1
        y[start : start + length * repeats, :bits] = np.tile(seq, (repeats, 1))
        y[total - 1, bits] = 1.0
        mask = np.zeros(total, dtype=bool)
        mask[start:] = True
        extras = {"loss_mask": torch.from_numpy(mask), "repeats": repeats}
        out.append(Example(torch.from_numpy(x), torch.from_numpy(y), extras, per_step=True))
    return out


# --------------------------------------------------------------------------
# adding problem
# --------------------------------------------------------------------------


def make_adding(n: int, *, seed: int, length: int = 100, variant: str = "modern") -> list[Example]:
    """The adding problem, in two variants.

    ``variant="hochreiter1997"`` — Hochreiter & Schmidhuber, "Long Short-Term
    Memory" (1997), Experiment 4.  Each step is a pair (value, marker): the
    value is uniform in [-1, 1]; the marker is 1 on exactly two steps, -1 on
    the first and last step (unless marked) and 0 elsewhere.  The first marked
    step is one of the first 10 (of the first ``length/2 - 1`` for lengths
    under 22), the second one of the first ``length/2 - 1`` still-unmarked steps; a marked first step has its value set to 0, as in
    the paper.  Sequence lengths are uniform in ``length .. length + length//10``.
    Target: ``0.5 + (X1 + X2) / 4`` (the sum scaled into [0, 1]).

    ``variant="modern"`` — the form used by Le, Jaitly & Hinton (2015, IRNN)
    and Arjovsky, Shah & Bengio (2016, uRNN): fixed length, values uniform in
    [0, 1], marker 1 at one step of the first half and one of the second half,
    0 elsewhere.  Target: the plain sum of the two marked values.

    ``x``: ``[T, 2]`` float (value, marker); ``y``: ``[1]`` float.
    """
    n = _n(n)
    if variant not in ("modern", "hochreiter1997"):
        raise DataError(
            f"unknown adding-problem variant {variant!r}; expected 'modern' or 'hochreiter1997'"
            + did_you_mean(str(variant), ["modern", "hochreiter1997"])
        )
    length = _int("length", length, 2 if variant == "modern" else 6)
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        if variant == "modern":
            values = rng.random(length)
            markers = np.zeros(length)
            half = length // 2
            p1 = int(rng.integers(0, half))
            p2 = int(rng.integers(half, length))
            markers[[p1, p2]] = 1.0
            target = values[p1] + values[p2]
        else:
            t = int(rng.integers(length, length + length // 10 + 1))
            values = rng.uniform(-1.0, 1.0, size=t)
            markers = np.zeros(t)
            markers[0] = markers[t - 1] = -1.0
            p1 = int(rng.integers(0, min(10, length // 2 - 1)))
            candidates = [p for p in range(length // 2 - 1) if p != p1]
            p2 = int(candidates[int(rng.integers(0, len(candidates)))])
            markers[[p1, p2]] = 1.0
            if p1 == 0 or p2 == 0:
                values[0] = 0.0
            target = 0.5 + (values[p1] + values[p2]) / 4.0
        x = np.stack([values, markers], axis=1).astype(np.float32)
        y = np.array([target], dtype=np.float32)
        out.append(Example(torch.from_numpy(x), torch.from_numpy(y), per_step=False))
    return out


# --------------------------------------------------------------------------
# temporal XOR (Elman 1990)
# --------------------------------------------------------------------------


def make_temporal_xor(n: int, *, seed: int, length: int = 300) -> list[Example]:
    """Temporal XOR of Elman, "Finding Structure in Time" (1990).

    A stream of ``length`` bits made of triples ``a, b, a XOR b`` with ``a, b``
    random; the net reads one bit per step and predicts the next.  Only every
    third bit is predictable, which ``extras["loss_mask"]`` marks: step ``t``
    is predictable when the bit it predicts, stream position ``t + 1``, is the
    third of its triple (``(t + 1) % 3 == 2``).

    ``x``: ``[length-1, 1]`` float bits; ``y``: ``[length-1, 1]`` float bits
    (``y[t] = x[t+1]``).
    """
    n = _n(n)
    length = _int("length", length, 3)
    out: list[Example] = []
    t_idx = np.arange(length - 1)
    mask = (t_idx + 1) % 3 == 2
    for i in range(n):
        rng = make_rng(seed, i)
        triples = -(-length // 3)
        ab = rng.integers(0, 2, size=(triples, 2))
        stream = np.concatenate([ab, (ab[:, :1] ^ ab[:, 1:])], axis=1).reshape(-1)[:length]
        stream = stream.astype(np.float32)
        x = torch.from_numpy(stream[:-1].copy()).unsqueeze(1)
        y = torch.from_numpy(stream[1:].copy()).unsqueeze(1)
        out.append(Example(x, y, {"loss_mask": torch.from_numpy(mask.copy())}, per_step=True))
    return out


# --------------------------------------------------------------------------
# Reber grammars (Reber 1967; Cleeremans et al. 1989; Hochreiter & Schmidhuber 1997)
# --------------------------------------------------------------------------

REBER_SYMBOLS: tuple[str, ...] = ("B", "T", "P", "S", "X", "V", "E")
"""Symbol order used for token ids and multi-hot targets of the Reber tasks."""

# state -> list of (symbol, next state); state 7 is "accepted".
_REBER: dict[int, list[tuple[str, int]]] = {
    0: [("B", 1)],
    1: [("T", 2), ("P", 3)],
    2: [("S", 2), ("X", 4)],
    3: [("T", 3), ("V", 5)],
    4: [("X", 3), ("S", 6)],
    5: [("P", 4), ("V", 6)],
    6: [("E", 7)],
    7: [],
}


def _sample_reber(rng: np.random.Generator) -> str:
    state, chars = 0, []
    while state != 7:
        edges = _REBER[state]
        sym, state = edges[int(rng.integers(0, len(edges)))]
        chars.append(sym)
    return "".join(chars)


def reber_legal_next(string: str, embedded: bool = False) -> list[set[str]]:
    """For each prefix ``string[:t+1]``, the set of symbols that may follow.

    Raises :class:`DataError` if ``string`` leaves the grammar.
    """
    out: list[set[str]] = []
    # embedded automaton state: ("pre", k) before the inner string, ("in", branch, s), ("post", branch), ("end",)
    state: tuple[Any, ...] = ("pre", 0) if embedded else ("in", "", 0)
    for pos, ch in enumerate(string):
        kind = state[0]
        nxt: tuple[Any, ...] | None = None
        if kind == "pre":
            if state[1] == 0 and ch == "B":
                nxt = ("pre", 1)
            elif state[1] == 1 and ch in "TP":
                nxt = ("in", ch, 0)
        elif kind == "in":
            for sym, s2 in _REBER[state[2]]:
                if sym == ch:
                    nxt = ("in", state[1], s2)
            if nxt is not None and nxt[2] == 7:
                nxt = ("post", state[1]) if embedded else ("end",)
        elif kind == "post" and ch == state[1]:
            nxt = ("last",)
        elif kind == "last" and ch == "E":
            nxt = ("end",)
        if nxt is None:
            raise DataError(f"{string!r} is not in the {'embedded ' if embedded else ''}Reber grammar (position {pos})")
        state = nxt
        if state[0] == "pre":
            out.append({"B"} if state[1] == 0 else {"T", "P"})
        elif state[0] == "in":
            out.append({sym for sym, _ in _REBER[state[2]]})
        elif state[0] == "post":
            out.append({state[1]})
        elif state[0] == "last":
            out.append({"E"})
        else:
            out.append(set())
    return out


def _reber_examples(n: int, seed: int, embedded: bool, one_hot: bool, max_len: int | None) -> list[Example]:
    n = _n(n)
    shortest = 9 if embedded else 5
    if max_len is not None:
        max_len = _int("max_len", max_len, shortest)
    index = {s: k for k, s in enumerate(REBER_SYMBOLS)}
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        while True:
            inner = _sample_reber(rng)
            if embedded:
                branch = "TP"[int(rng.integers(0, 2))]
                string = "B" + branch + inner + branch + "E"
            else:
                string = inner
            if max_len is None or len(string) <= max_len:
                break
        legal = reber_legal_next(string, embedded)[:-1]
        ids = [index[c] for c in string]
        x = _tokens(ids[:-1], len(REBER_SYMBOLS), one_hot)
        y = _multi_hot([[index[c] for c in s] for s in legal], len(REBER_SYMBOLS))
        extras = {"next_symbol": torch.tensor(ids[1:], dtype=torch.int64), "string": string}
        out.append(Example(x, y, extras, per_step=True))
    return out


def make_reber(n: int, *, seed: int, one_hot: bool = False, max_len: int | None = None) -> list[Example]:
    """Reber grammar next-symbol prediction (Reber 1967; Cleeremans, Servan-Schreiber
    & McClelland 1989).

    Strings are random walks through the Reber automaton (each branch with
    probability 1/2), e.g. ``BTSSXXTVVE``; ``max_len`` rejects longer ones.
    The net reads ``string[:-1]`` and at each step predicts the *set* of legal
    next symbols (the grammar is non-deterministic, so the set, not the actual
    symbol, is the target).

    * ``x``: ``[T]`` ids over :data:`REBER_SYMBOLS` (or one-hot ``[T, 7]``);
    * ``y``: ``[T, 7]`` multi-hot legal-next sets;
    * ``extras``: ``next_symbol`` (``[T]`` actual next ids) and ``string``.
    """
    return _reber_examples(n, seed, False, one_hot, max_len)


def make_embedded_reber(n: int, *, seed: int, one_hot: bool = False, max_len: int | None = None) -> list[Example]:
    """Embedded Reber grammar (Cleeremans et al. 1989; Hochreiter & Schmidhuber 1997, Exp. 1).

    ``B, T|P, <Reber string>, same T|P, E``: the symbol after the inner
    string's ``E`` is determined by the second symbol of the whole string, a
    long-range dependency.  Same tensors as :func:`make_reber`.
    """
    return _reber_examples(n, seed, True, one_hot, max_len)


# --------------------------------------------------------------------------
# Mackey-Glass (Mackey & Glass 1977)
# --------------------------------------------------------------------------


def mackey_glass(
    length: int,
    *,
    seed: int,
    tau: float = 17.0,
    beta: float = 0.2,
    gamma: float = 0.1,
    exponent: float = 10.0,
    dt: float = 0.1,
    sample_step: float = 1.0,
    x0: float = 1.2,
    washout: float = 500.0,
    history: float | None = None,
) -> Tensor:
    """The Mackey-Glass series (Mackey & Glass, Science 1977), float32 ``[length]``.

    Integrates ``dx/dt = beta * x(t-tau) / (1 + x(t-tau)^exponent) - gamma * x(t)``
    with classical RK4 at step ``dt`` over a history buffer; the delayed terms
    at half steps are linearly interpolated between stored points (so
    ``tau/dt`` must be an integer).  The initial history on ``[-tau, 0]`` is
    ``x0 + 0.2 * (u - 0.5)`` with ``u`` uniform from ``seed`` — the seed picks
    the trajectory, the dynamics are deterministic — or the constant
    ``history`` when given (the textbook ``x(t) = 1.2`` for ``t <= 0``, which
    makes ``seed`` irrelevant).  The first ``washout``
    time units are discarded, then one value every ``sample_step`` is kept.
    With ``tau=17`` the series is chaotic and stays within about [0.2, 1.4].
    """
    length = _int("length", length, 1)
    tau = _float("tau", tau, lo=0.0)
    dt = _float("dt", dt, lo=1e-6)
    sample_step = _float("sample_step", sample_step, lo=dt)
    washout = _float("washout", washout, lo=0.0)
    beta, gamma = _float("beta", beta), _float("gamma", gamma)
    exponent, x0 = _float("exponent", exponent), _float("x0", x0)
    delay = round(tau / dt)
    sub = round(sample_step / dt)
    if abs(delay * dt - tau) > 1e-6 * max(1.0, tau) or delay < 1:
        raise DataError(f"parameter 'tau' ({tau:g}) must be a positive multiple of 'dt' ({dt:g})")
    if abs(sub * dt - sample_step) > 1e-6 * sample_step:
        raise DataError(f"parameter 'sample_step' ({sample_step:g}) must be a multiple of 'dt' ({dt:g})")
    skip = round(washout / dt)
    steps = skip + (length - 1) * sub
    rng = make_rng(seed, 0x3AC6)
    # a Python list: scalar arithmetic on floats is several times faster than on NumPy scalars
    if history is not None:
        buf: list[float] = [_float("history", history)] * (delay + 1)
    else:
        buf = (x0 + 0.2 * (rng.random(delay + 1) - 0.5)).tolist()
    buf.extend([0.0] * steps)

    def f(x: float, xd: float) -> float:
        return beta * xd / (1.0 + xd**exponent) - gamma * x

    h = dt
    for k in range(steps):
        i = delay + k
        x = buf[i]
        d0, d1 = buf[i - delay], buf[i - delay + 1]
        dm = 0.5 * (d0 + d1)
        k1 = f(x, d0)
        k2 = f(x + 0.5 * h * k1, dm)
        k3 = f(x + 0.5 * h * k2, dm)
        k4 = f(x + h * k3, d1)
        buf[i + 1] = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    series = np.asarray(buf[delay + skip :: sub][:length], dtype=np.float32)
    return torch.from_numpy(series)


def series_windows(series: Tensor, window: int, *, horizon: int = 1, stride: int | None = None) -> list[Example]:
    """Cut a series into input/target windows for next-value prediction.

    Window ``k`` starts at ``s = k * stride`` (default ``stride = window``):
    ``x = series[s : s+window]`` and ``y = series[s+horizon : s+horizon+window]``
    (per step, ``y[t] = series[s + t + horizon]``).  A 1-D series gets a
    feature axis, so ``x``/``y`` are ``[window, F]``.  The windows are views
    into ``series``; nothing is copied.
    """
    if not isinstance(series, Tensor):
        series = torch.as_tensor(np.asarray(series))
    if series.dim() == 1:
        series = series.unsqueeze(1)
    if series.dim() != 2:
        raise DataError(f"series must be [N] or [N, features], got shape {tuple(series.shape)}")
    window = _int("window", window, 1)
    horizon = _int("horizon", horizon, 1)
    stride = window if stride is None else _int("stride", stride, 1)
    total = int(series.shape[0])
    if total < window + horizon:
        raise DataError(
            f"series of length {total} is too short for window {window} + horizon {horizon}"
        )
    count = (total - window - horizon) // stride + 1
    return [
        Example(series[s : s + window], series[s + horizon : s + horizon + window], per_step=True)
        for s in range(0, count * stride, stride)
    ]


def make_mackey_glass(
    n: int,
    *,
    seed: int,
    window: int = 100,
    horizon: int = 1,
    stride: int | None = None,
    tau: float = 17.0,
    warmup: int = 0,
    **params: Any,
) -> list[Example]:
    """``n`` consecutive windows of one Mackey-Glass series (see :func:`mackey_glass`
    and :func:`series_windows`); ``params`` go to :func:`mackey_glass`.

    The standard benchmark (e.g. Jaeger & Haas 2004) predicts ``horizon``
    steps ahead; ``x``/``y`` are ``[window, 1]`` float32.  ``warmup > 0``
    leaves the first ``warmup`` steps of every window out of the loss
    (``extras["loss_mask"]``): a network started from rest needs them to
    settle (an echo-state network's washout).
    """
    n = _n(n)
    window = _int("window", window, 1)
    horizon = _int("horizon", horizon, 1)
    stride = window if stride is None else _int("stride", stride, 1)
    if n == 0:
        return []
    allowed = set(inspect.signature(mackey_glass).parameters) - {"length", "seed", "tau"}
    for key in params:
        if key not in allowed:
            raise DataError(
                f"unknown Mackey-Glass parameter {key!r}{did_you_mean(key, allowed)}; "
                f"expected one of {listing(sorted(allowed))}"
            )
    warmup = _int("warmup", warmup, 0)
    if warmup >= window:
        raise DataError(f"parameter 'warmup' ({warmup}) must be < 'window' ({window}) so every window has a target")
    series = mackey_glass((n - 1) * stride + window + horizon, seed=seed, tau=tau, **params)
    out = series_windows(series, window, horizon=horizon, stride=stride)[:n]
    if warmup:
        mask = torch.arange(window) >= warmup
        for ex in out:
            ex.extras["loss_mask"] = mask
    return out


# --------------------------------------------------------------------------
# Tomita grammars (Tomita 1982)
# --------------------------------------------------------------------------

TOMITA_SYMBOLS: tuple[str, ...] = ("0", "1")

# grammar -> (transitions[state] = (next on '0', next on '1'), accepting states); start state 0.
_TOMITA: dict[int, tuple[list[tuple[int, int]], set[int]]] = {
    # 1: 1*
    1: ([(1, 0), (1, 1)], {0}),
    # 2: (10)*
    2: ([(2, 1), (0, 2), (2, 2)], {0}),
    # 3: no odd-length run of 1s immediately followed by an odd-length run of 0s.
    # 0: free (start, after an even 1-run or an allowed 0-run), 1: odd 1-run,
    # 2: odd 0-run after odd 1-run, 3: even 0-run after odd 1-run, 4: dead.
    3: ([(0, 1), (2, 0), (3, 4), (2, 1), (4, 4)], {0, 1, 3}),
    # 4: no three consecutive 0s (state = trailing zeros)
    4: ([(1, 0), (2, 0), (3, 0), (3, 3)], {0, 1, 2}),
    # 5: even number of 0s and even number of 1s (state = 2*parity0 + parity1)
    5: ([(2, 1), (3, 0), (0, 3), (1, 2)], {0}),
    # 6: (#0 - #1) divisible by 3
    6: ([(1, 2), (2, 0), (0, 1)], {0}),
    # 7: 0*1*0*1*
    7: ([(0, 1), (2, 1), (2, 3), (4, 3), (4, 4)], {0, 1, 2, 3}),
}


def _tomita_grammar(grammar: Any) -> tuple[list[tuple[int, int]], set[int]]:
    g = _int("grammar", grammar)
    if g not in _TOMITA:
        raise DataError(f"Tomita grammar must be 1..7, got {g}")
    return _TOMITA[g]


def tomita_accepts(grammar: int, string: str) -> bool:
    """Whether the binary ``string`` (of '0'/'1') is in Tomita language ``grammar``."""
    delta, accept = _tomita_grammar(grammar)
    state = 0
    for ch in string:
        if ch not in "01":
            raise DataError(f"Tomita strings are over '0' and '1', got {ch!r}")
        state = delta[state][int(ch)]
    return state in accept


def _count_table(delta: list[tuple[int, int]], final: set[int], max_len: int) -> list[list[int]]:
    """``table[r][s]``: number of length-``r`` strings leading from ``s`` into ``final``."""
    table = [[1 if s in final else 0 for s in range(len(delta))]]
    for _ in range(max_len):
        prev = table[-1]
        table.append([prev[a] + prev[b] for a, b in delta])
    return table


def _sample_dfa(delta: list[tuple[int, int]], table: list[list[int]], length: int, rng: np.random.Generator) -> str:
    """A uniformly random length-``length`` string from state 0 into the final set."""
    state, chars = 0, []
    for r in range(length, 0, -1):
        a, b = delta[state]
        ca, cb = table[r - 1][a], table[r - 1][b]
        bit = 0 if rng.random() * (ca + cb) < ca else 1
        chars.append(str(bit))
        state = (a, b)[bit]
    return "".join(chars)


def make_tomita(
    n: int,
    *,
    seed: int,
    grammar: int,
    min_len: int = 1,
    max_len: int = 20,
    one_hot: bool = False,
) -> list[Example]:
    """Tomita grammars 1–7 (Tomita 1982; Giles et al. 1992; Watrous & Kuhn 1992).

    1. ``1*``;  2. ``(10)*``;  3. no odd-length run of 1s immediately followed
    by an odd-length run of 0s;  4. no ``000``;  5. even number of 0s and even
    number of 1s;  6. ``#0 - #1`` divisible by 3;  7. ``0*1*0*1*``.

    Classes are balanced exactly: even-indexed examples are accepted (label
    1), odd-indexed rejected (label 0).  For each, a length is drawn
    uniformly among ``min_len..max_len`` lengths that have a string of that
    class, then a string uniformly among those (counting paths of the DFA),
    so rare positives (grammar 1 has one per length) are still produced.

    ``x``: ``[T]`` ids over :data:`TOMITA_SYMBOLS` (or one-hot ``[T, 2]``);
    ``y``: scalar int64 label; ``extras["string"]``.
    """
    n = _n(n)
    delta, accept = _tomita_grammar(grammar)
    lo, hi = _range("min_len", min_len, "max_len", max_len, 1)
    reject = set(range(len(delta))) - accept
    tables = {1: _count_table(delta, accept, hi), 0: _count_table(delta, reject, hi)}
    lengths = {lab: [L for L in range(lo, hi + 1) if tab[L][0] > 0] for lab, tab in tables.items()}
    for lab, name, needed in ((1, "accepted", n >= 1), (0, "rejected", n >= 2)):
        if needed and not lengths[lab]:
            raise DataError(f"Tomita grammar {grammar} has no {name} strings of length {lo}..{hi}")
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        label = 1 if i % 2 == 0 else 0
        choices = lengths[label]
        length = choices[int(rng.integers(0, len(choices)))]
        string = _sample_dfa(delta, tables[label], length, rng)
        x = _tokens([int(c) for c in string], 2, one_hot)
        out.append(Example(x, torch.tensor(label, dtype=torch.int64), {"string": string}, per_step=False))
    return out


# --------------------------------------------------------------------------
# balanced parentheses (Dyck-1) and a^n b^n
# --------------------------------------------------------------------------

PAREN_SYMBOLS: tuple[str, ...] = ("(", ")")
PAREN_TARGETS: tuple[str, ...] = ("(", ")", "<end>")
"""Channels of the next-symbol targets: may open, may close, may end here."""


def _dyck_completions(max_len: int) -> list[list[int]]:
    """``c[r][d]``: balanced completions of length ``r`` from depth ``d``."""
    c = [[0] * (max_len + 2) for _ in range(max_len + 1)]
    c[0][0] = 1
    for r in range(1, max_len + 1):
        for d in range(0, max_len + 1):
            c[r][d] = c[r - 1][d + 1] + (c[r - 1][d - 1] if d > 0 else 0)
    return c


def _sample_dyck(length: int, table: list[list[int]], rng: np.random.Generator) -> str:
    depth, chars = 0, []
    for r in range(length, 0, -1):
        up = table[r - 1][depth + 1]
        down = table[r - 1][depth - 1] if depth > 0 else 0
        if rng.random() * (up + down) < up:
            chars.append("(")
            depth += 1
        else:
            chars.append(")")
            depth -= 1
    return "".join(chars)


def _balanced(string: str, open_: str = "(", close: str = ")") -> bool:
    depth = 0
    for ch in string:
        depth += 1 if ch == open_ else -1
        if depth < 0:
            return False
    return depth == 0


def _check_task(task: str) -> str:
    if task not in ("classify", "next_symbol"):
        raise DataError(
            f"unknown task {task!r}; expected 'classify' or 'next_symbol'"
            + did_you_mean(str(task), ["classify", "next_symbol"])
        )
    return task


def make_parentheses(
    n: int,
    *,
    seed: int,
    min_len: int = 2,
    max_len: int = 20,
    task: str = "classify",
    one_hot: bool = False,
) -> list[Example]:
    """Balanced parentheses (the Dyck-1 language), e.g. Suzgun et al. (2019),
    "LSTM networks can perform dynamic counting".

    ``task="classify"``: balanced classes (even index: balanced, label 1).
    Every string has even length (uniform over the even lengths in
    ``min_len..max_len``) so parity is no cue.  Balanced strings are uniform
    over Dyck words of that length; unbalanced ones are, half the time, a
    random string, half the time a balanced word with one ``(``/``)`` pair
    swapped (equal counts, so counting alone is no cue either).  ``y`` is a
    scalar int64 label.

    ``task="next_symbol"``: balanced strings only; at each step ``y`` is the
    multi-hot set over :data:`PAREN_TARGETS` of what may come next: ``(``
    always, ``)`` when depth > 0, ``<end>`` when depth is 0.

    ``x``: ``[T]`` ids over :data:`PAREN_SYMBOLS` (or one-hot ``[T, 2]``).
    """
    n = _n(n)
    task = _check_task(task)
    lo, hi = _range("min_len", min_len, "max_len", max_len, 1)
    halves = list(range(max(1, -(-lo // 2)), hi // 2 + 1))
    if not halves:
        raise DataError(f"no even length >= 2 in min_len..max_len ({lo}..{hi}); balanced strings need one")
    table = _dyck_completions(2 * halves[-1])
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        length = 2 * halves[int(rng.integers(0, len(halves)))]
        label = 1 if (task == "next_symbol" or i % 2 == 0) else 0
        if label:
            string = _sample_dyck(length, table, rng)
        elif rng.random() < 0.5:
            while True:
                string = "".join("()"[b] for b in rng.integers(0, 2, size=length))
                if not _balanced(string):
                    break
        else:
            while True:
                chars = list(_sample_dyck(length, table, rng))
                opens = [k for k, c in enumerate(chars) if c == "("]
                closes = [k for k, c in enumerate(chars) if c == ")"]
                a = opens[int(rng.integers(0, len(opens)))]
                b = closes[int(rng.integers(0, len(closes)))]
                chars[a], chars[b] = chars[b], chars[a]
                string = "".join(chars)
                if not _balanced(string):
                    break
        ids = [PAREN_SYMBOLS.index(c) for c in string]
        x = _tokens(ids, 2, one_hot)
        if task == "classify":
            out.append(Example(x, torch.tensor(label, dtype=torch.int64), {"string": string}, per_step=False))
        else:
            legal: list[list[int]] = []
            depth = 0
            for c in string:
                depth += 1 if c == "(" else -1
                legal.append([0] + ([1] if depth > 0 else [2]))
            out.append(Example(x, _multi_hot(legal, 3), {"string": string}, per_step=True))
    return out


ANBN_SYMBOLS: tuple[str, ...] = ("S", "a", "b", "T")
"""Start marker, ``a``, ``b``, termination marker (Gers & Schmidhuber 2001)."""


def make_anbn(
    n: int,
    *,
    seed: int,
    min_n: int = 1,
    max_n: int = 10,
    task: str = "classify",
    one_hot: bool = False,
) -> list[Example]:
    """The context-free language ``a^n b^n`` (Gers & Schmidhuber 2001, "LSTM recurrent
    networks learn simple context-free and context-sensitive languages").

    ``task="next_symbol"`` (the paper's setting): the input is ``S a^n b^n``
    (``n`` uniform in ``min_n..max_n``); ``y`` is the multi-hot set over
    :data:`ANBN_SYMBOLS` of legal next symbols: ``{a}`` after ``S``,
    ``{a, b}`` while reading ``a``\\ s, ``{b}`` until the ``b``\\ s match, then
    ``{T}``.  From the first ``b`` on, the continuation is deterministic: a
    net that has learned to count predicts it exactly.

    ``task="classify"``: balanced labels (even index: ``a^n b^n``, label 1).
    Negatives have the same even length ``2m``: half are ``a^(m+d) b^(m-d)``
    with ``d != 0`` (wrong counts), half are a shuffle of ``a^m b^m`` other
    than the sorted one (right counts, wrong order).  ``x`` has no ``S``/``T``.
    """
    n = _n(n)
    task = _check_task(task)
    lo, hi = _range("min_n", min_n, "max_n", max_n, 1)
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        m = int(rng.integers(lo, hi + 1))
        if task == "next_symbol":
            string = "S" + "a" * m + "b" * m
            legal = [[1]] + [[1, 2]] * m + [[2]] * (m - 1) + [[3]]
            ids = [ANBN_SYMBOLS.index(c) for c in string]
            extras = {"string": string}
            out.append(Example(_tokens(ids, 4, one_hot), _multi_hot(legal, 4), extras, per_step=True))
            continue
        label = 1 if i % 2 == 0 else 0
        if label:
            string = "a" * m + "b" * m
        elif rng.random() < 0.5:
            d = int(rng.integers(1, m + 1)) * (1 if rng.random() < 0.5 else -1)
            string = "a" * (m + d) + "b" * (m - d)
        else:
            if m == 1:
                string = "ba"
            else:
                while True:
                    chars = np.array(list("a" * m + "b" * m))
                    string = "".join(rng.permutation(chars))
                    if string != "a" * m + "b" * m:
                        break
        ids = [ANBN_SYMBOLS.index(c) for c in string]
        out.append(Example(_tokens(ids, 4, one_hot), torch.tensor(label, dtype=torch.int64), {"string": string}, per_step=False))
    return out


# --------------------------------------------------------------------------
# nested arithmetic (Hupkes, Veldhoen & Zuidema 2018)
# --------------------------------------------------------------------------

Tree = Union[int, tuple["Tree", str, "Tree"]]
"""An arithmetic tree: an int leaf, or ``(left, op, right)`` with op ``'+'``/``'-'``."""



def arithmetic_vocab(min_int: int = -10, max_int: int = 10) -> tuple[str, ...]:
    """Token vocabulary of :func:`make_arithmetic`: brackets, the two operators,
    then the integers ``min_int..max_int`` as words (token id = position)."""
    return ("(", ")", "+", "-", *(str(v) for v in range(min_int, max_int + 1)))


ARITHMETIC_VOCAB: tuple[str, ...] = arithmetic_vocab()
"""The vocabulary for the paper's integer range -10..10."""


def random_tree(num_ints: int, rng: np.random.Generator, min_int: int = -10, max_int: int = 10) -> Tree:
    """A random expression with ``num_ints`` leaves: the split point between the
    two subtrees and each operator are uniform."""
    if num_ints == 1:
        return int(rng.integers(min_int, max_int + 1))
    k = int(rng.integers(1, num_ints))
    left = random_tree(k, rng, min_int, max_int)
    op = "+" if rng.random() < 0.5 else "-"
    right = random_tree(num_ints - k, rng, min_int, max_int)
    return (left, op, right)


def tree_tokens(tree: Tree) -> list[str]:
    """Fully bracketed token sequence, e.g. ``['(', '5', '-', '-3', ')']``."""
    if isinstance(tree, int):
        return [str(tree)]
    left, op, right = tree
    return ["(", *tree_tokens(left), op, *tree_tokens(right), ")"]


def evaluate_tree(tree: Tree) -> int:
    """The integer value of an arithmetic tree."""
    if isinstance(tree, int):
        return tree
    left, op, right = tree
    if op == "+":
        return evaluate_tree(left) + evaluate_tree(right)
    if op == "-":
        return evaluate_tree(left) - evaluate_tree(right)
    raise DataError(f"unknown operator {op!r} in arithmetic tree; expected '+' or '-'")


def make_arithmetic(
    n: int,
    *,
    seed: int,
    lengths: int | Sequence[int] = (1, 2, 3, 4, 5, 6, 7, 8, 9),
    min_int: int = -10,
    max_int: int = 10,
) -> list[Example]:
    """Nested arithmetic expressions of Hupkes, Veldhoen & Zuidema (2018),
    "Visualisation and 'diagnostic classifiers' reveal how recurrent and
    recursive neural networks process hierarchical structure".

    Expressions combine integers in ``min_int..max_int`` with ``+`` and ``-``
    into random binary trees; the *length* (the paper's L1..L9) is the number
    of integers, drawn uniformly from ``lengths``.  Each example carries the
    tree for recursive nets and its bracketed token sequence for recurrent
    ones; the target is the value.

    * ``x``: ``[T]`` ids over ``arithmetic_vocab(min_int, max_int)``
      (:data:`ARITHMETIC_VOCAB` for the defaults);
    * ``y``: ``[1]`` float32 value;
    * ``extras``: ``tree`` (nested tuples, see :data:`Tree`), ``tokens``,
      ``value`` (int).
    """
    n = _n(n)
    lens = [lengths] if isinstance(lengths, (int, np.integer)) else list(lengths)
    if not lens:
        raise DataError("parameter 'lengths' must list at least one expression length")
    lens = [_int("lengths", v, 1) for v in lens]
    lo, hi = _range("min_int", min_int, "max_int", max_int, -(10**9))
    vocab = arithmetic_vocab(lo, hi)
    index = {tok: k for k, tok in enumerate(vocab)}
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        length = lens[int(rng.integers(0, len(lens)))]
        tree = random_tree(length, rng, lo, hi)
        tokens = tree_tokens(tree)
        value = evaluate_tree(tree)
        x = torch.tensor([index[t] for t in tokens], dtype=torch.int64)
        extras = {"tree": tree, "tokens": tuple(tokens), "value": value}
        out.append(Example(x, torch.tensor([float(value)]), extras, per_step=False))
    return out


# --------------------------------------------------------------------------
# associative memory (Hopfield 1982; Kosko 1988)
# --------------------------------------------------------------------------


def associative_patterns(
    num_patterns: int, size: int, *, seed: int, value_size: int | None = None
) -> tuple[Tensor, Tensor]:
    """The stored patterns: bipolar (+1/-1) ``keys [P, size]`` and ``values [P, M]``.

    ``value_size=None`` is auto-association (Hopfield): ``values`` is ``keys``.
    Otherwise the values are independent random patterns (hetero-association,
    Kosko's BAM).  Same ``seed`` as :func:`make_associative_pairs` gives the
    patterns its probes are made from.
    """
    p = _int("num_patterns", num_patterns, 1)
    size = _int("size", size, 1)
    rng = make_rng(seed, 0xA550C)
    keys = torch.from_numpy(rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(p, size)))
    if value_size is None:
        return keys, keys.clone()
    m = _int("value_size", value_size, 1)
    values = torch.from_numpy(rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=(p, m)))
    return keys, values


def make_associative_pairs(
    n: int,
    *,
    seed: int,
    num_patterns: int = 5,
    size: int = 64,
    value_size: int | None = None,
    noise: float = 0.1,
) -> list[Example]:
    """Noisy recall probes for Hopfield nets (Hopfield 1982) and BAMs (Kosko 1988).

    Probe ``i`` is stored key ``i % num_patterns`` (every pattern probed
    equally often) with exactly ``round(noise * size)`` randomly chosen signs
    flipped; the target is the stored value for that key.

    * ``x``: ``[1, size]`` float probe (one "step": the net's initial state);
    * ``y``: ``[M]`` float clean value;
    * ``extras``: ``key`` (the clean key) and ``index`` (pattern number).
    """
    n = _n(n)
    noise = _float("noise", noise, 0.0, 1.0)
    keys, values = associative_patterns(num_patterns, size, seed=seed, value_size=value_size)
    flips = round(noise * keys.shape[1])
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        k = i % keys.shape[0]
        probe = keys[k].clone()
        where = rng.choice(keys.shape[1], size=flips, replace=False)
        probe[torch.from_numpy(where.astype(np.int64))] *= -1
        out.append(Example(probe.unsqueeze(0), values[k].clone(), {"key": keys[k].clone(), "index": k}, per_step=False))
    return out


# --------------------------------------------------------------------------
# delayed recall and temporal order
# --------------------------------------------------------------------------


def make_delayed_recall(
    n: int,
    *,
    seed: int,
    lag: int = 5,
    min_len: int = 10,
    max_len: int = 30,
    symbols: int = 8,
    one_hot: bool = False,
) -> list[Example]:
    """Delayed recall: output the input from ``lag`` steps ago.

    A plain test of memory span (the "time lag" experiments of Hochreiter &
    Schmidhuber 1997 in their simplest form; also Mozer 1992's delayed
    recall).  Inputs are uniform random symbols ``0..symbols-1``.

    * ``x``: ``[T]`` ids (or one-hot ``[T, symbols]``), ``T`` in ``min_len..max_len``;
    * ``y``: ``[T]`` int64, ``y[t] = x[t - lag]`` (0 for ``t < lag``);
    * ``extras["loss_mask"]``: True for ``t >= lag``.
    """
    n = _n(n)
    lag = _int("lag", lag, 0)
    lo, hi = _range("min_len", min_len, "max_len", max_len, 1)
    if lo <= lag:
        raise DataError(f"parameter 'min_len' ({lo}) must exceed 'lag' ({lag}) so every sequence has a target")
    symbols = _int("symbols", symbols, 2)
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        length = int(rng.integers(lo, hi + 1))
        ids = rng.integers(0, symbols, size=length)
        y = np.zeros(length, dtype=np.int64)
        y[lag:] = ids[: length - lag]
        mask = np.arange(length) >= lag
        out.append(
            Example(_tokens(ids, symbols, one_hot), torch.from_numpy(y), {"loss_mask": torch.from_numpy(mask)}, per_step=True)
        )
    return out


TEMPORAL_ORDER_SYMBOLS: tuple[str, ...] = ("a", "b", "c", "d", "B", "E", "X", "Y")


def make_temporal_order(
    n: int,
    *,
    seed: int,
    min_len: int = 100,
    max_len: int = 110,
    first: tuple[int, int] = (10, 20),
    second: tuple[int, int] = (50, 60),
    one_hot: bool = False,
) -> list[Example]:
    """Temporal order problem, Hochreiter & Schmidhuber (1997), Experiment 6a.

    A sequence ``B ... E`` of random distractors ``a b c d`` hides two
    relevant symbols, each ``X`` or ``Y``, at positions drawn from ``first``
    and ``second`` (inclusive, 0-based).  The class is their order:
    ``XX``=0, ``XY``=1, ``YX``=2, ``YY``=3.

    ``x``: ``[T]`` ids over :data:`TEMPORAL_ORDER_SYMBOLS`; ``y``: scalar int64.
    """
    n = _n(n)
    lo, hi = _range("min_len", min_len, "max_len", max_len, 3)
    f0, f1 = _range("first[0]", first[0], "first[1]", first[1], 1)
    s0, s1 = _range("second[0]", second[0], "second[1]", second[1], 1)
    if f1 >= s0 or s1 >= lo - 1:
        raise DataError(
            f"temporal-order positions must satisfy 1 <= first < second < min_len - 1; got first={first}, "
            f"second={second}, min_len={lo}"
        )
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        length = int(rng.integers(lo, hi + 1))
        ids = rng.integers(0, 4, size=length)
        ids[0], ids[-1] = 4, 5
        p1, p2 = int(rng.integers(f0, f1 + 1)), int(rng.integers(s0, s1 + 1))
        a, b = int(rng.integers(0, 2)), int(rng.integers(0, 2))
        ids[p1], ids[p2] = 6 + a, 6 + b
        out.append(Example(_tokens(ids, 8, one_hot), torch.tensor(2 * a + b, dtype=torch.int64), per_step=False))
    return out


# --------------------------------------------------------------------------
# context sum (Schuster & Paliwal 1997)
# --------------------------------------------------------------------------


def make_context_sum(
    n: int,
    *,
    seed: int,
    length: int = 20,
    offset: int = 3,
    classes: int = 10,
    one_hot: bool = False,
) -> list[Example]:
    """Per-step targets that need past *and* future input, after Schuster &
    Paliwal, "Bidirectional recurrent neural networks" (1997).

    Inputs are uniform random symbols ``0..classes-1``; the target at step
    ``t`` is ``(x[t - offset] + x[t + offset]) mod classes``, defined for
    ``offset <= t < length - offset`` (``extras["loss_mask"]``; 0 elsewhere).
    A forward-only net has not seen ``x[t + offset]`` at step ``t``, and that
    symbol is independent of everything before it, so it is at chance
    (``1/classes``); a bidirectional one can be exact.

    * ``x``: ``[length]`` ids (or one-hot ``[length, classes]``);
    * ``y``: ``[length]`` int64 class ids.
    """
    n = _n(n)
    offset = _int("offset", offset, 1)
    length = _int("length", length, 1)
    if length <= 2 * offset:
        raise DataError(f"parameter 'length' ({length}) must exceed 2 * 'offset' ({2 * offset}) so every sequence has a target")
    classes = _int("classes", classes, 2)
    t = np.arange(length)
    mask = (t >= offset) & (t < length - offset)
    out: list[Example] = []
    for i in range(n):
        rng = make_rng(seed, i)
        ids = rng.integers(0, classes, size=length)
        y = np.zeros(length, dtype=np.int64)
        y[offset : length - offset] = (ids[: length - 2 * offset] + ids[2 * offset :]) % classes
        out.append(
            Example(_tokens(ids, classes, one_hot), torch.from_numpy(y), {"loss_mask": torch.from_numpy(mask.copy())}, per_step=True)
        )
    return out


# --------------------------------------------------------------------------
# sine waves (oscillators: Pearlmutter 1989; Beer 1995)
# --------------------------------------------------------------------------


def make_sine(
    n: int,
    *,
    seed: int,
    length: int = 100,
    period: float = 20.0,
    amplitude: float = 1.0,
    mode: str = "predict",
    warmup: int = 1,
) -> list[Example]:
    """Sine waves ``a * sin(2 pi (t + 1) / period + phi)``, one per example, for
    oscillator and pattern-generation tasks (Pearlmutter 1989; Beer 1995).

    ``mode="predict"``: each example has its own phase ``phi`` (uniform in
    [0, 2 pi)); the input at step ``t`` is the current value
    ``a sin(2 pi t / period + phi)`` and the target the next one.  One value
    does not tell a rising from a falling wave, so ``extras["loss_mask"]``
    leaves out the first ``warmup`` steps (from step 1 on, the last two
    values determine the next exactly).

    ``mode="generate"``: the net must produce the wave on its own: the input is
    0 at every step and the phase is 0 for every example (with no input there
    is nothing to tell phases apart), so all examples are the same sequence
    and ``seed`` is not used.

    ``x``: ``[length, 1]`` float32; ``y``: ``[length, 1]`` float32.
    """
    n = _n(n)
    length = _int("length", length, 2)
    period = _float("period", period, lo=1e-6)
    amplitude = _float("amplitude", amplitude)
    warmup = _int("warmup", warmup, 0)
    if mode not in ("predict", "generate"):
        raise DataError(
            f"parameter 'mode' must be 'predict' or 'generate', got {mode!r}" + did_you_mean(str(mode), ["predict", "generate"])
        )
    if warmup >= length:
        raise DataError(f"parameter 'warmup' ({warmup}) must be < 'length' ({length}) so every sequence has a target")
    omega = 2.0 * math.pi / period
    t = np.arange(length + 1)
    mask = np.arange(length) >= warmup
    out: list[Example] = []
    for i in range(n):
        phi = float(make_rng(seed, i).uniform(0.0, 2.0 * math.pi)) if mode == "predict" else 0.0
        wave = (amplitude * np.sin(omega * t + phi)).astype(np.float32)
        x = wave[:-1, None].copy() if mode == "predict" else np.zeros((length, 1), dtype=np.float32)
        y = wave[1:, None].copy()
        out.append(Example(torch.from_numpy(x), torch.from_numpy(y), {"loss_mask": torch.from_numpy(mask.copy())}, per_step=True))
    return out


# --------------------------------------------------------------------------
# nonlinear plant identification (Narendra & Parthasarathy 1990)
# --------------------------------------------------------------------------


def narendra_plant(u: Sequence[float] | np.ndarray) -> np.ndarray:
    """The plant of Narendra & Parthasarathy (1990), Example 2, from rest
    (``y_0 = y_{-1} = 0``): ``y_{k+1} = y_k y_{k-1} (y_k + 2.5) / (1 + y_k^2 +
    y_{k-1}^2) + u_k``.  Returns ``y_1 .. y_K`` for inputs ``u_0 .. u_{K-1}``."""
    u = np.asarray(u, dtype=np.float64)
    y = np.zeros(len(u) + 1)
    prev = 0.0
    for k in range(len(u)):
        cur = y[k]
        y[k + 1] = cur * prev * (cur + 2.5) / (1.0 + cur * cur + prev * prev) + u[k]
        prev = cur
    return y[1:]


def make_narendra_plant(
    n: int,
    *,
    seed: int,
    length: int = 100,
    signal: str = "uniform",
    u_max: float = 2.0,
    period: float = 25.0,
) -> list[Example]:
    """Identification of a nonlinear plant (Narendra & Parthasarathy 1990,
    Example 2; Puskorius & Feldkamp 1994): the net reads the plant's input
    ``u_k`` and outputs the plant's response ``y_{k+1}`` (see
    :func:`narendra_plant`), so it must run a model of the plant in its state
    (a "parallel" model: the plant's own output is never an input).

    ``signal="uniform"``: ``u_k`` i.i.d. uniform in ``[-u_max, u_max]`` (the
    papers' training signal); ``signal="sine"``: ``u_k = sin(2 pi k / period)``
    (their test signal, the same for every example).

    ``x``: ``[length, 1]`` float32 ``u``; ``y``: ``[length, 1]`` float32 ``y_{k+1}``.
    """
    n = _n(n)
    length = _int("length", length, 1)
    u_max = _float("u_max", u_max, lo=0.0)
    period = _float("period", period, lo=1e-6)
    if signal not in ("uniform", "sine"):
        raise DataError(
            f"parameter 'signal' must be 'uniform' or 'sine', got {signal!r}" + did_you_mean(str(signal), ["uniform", "sine"])
        )
    out: list[Example] = []
    for i in range(n):
        if signal == "uniform":
            u = make_rng(seed, i).uniform(-u_max, u_max, size=length)
        else:
            u = np.sin(2.0 * math.pi * np.arange(length) / period)
        y = narendra_plant(u)
        x = torch.from_numpy(u.astype(np.float32)[:, None].copy())
        out.append(Example(x, torch.from_numpy(y.astype(np.float32)[:, None].copy()), per_step=True))
    return out


# --------------------------------------------------------------------------
# plans and sequences (Jordan 1986)
# --------------------------------------------------------------------------


def jordan_sequences(*, seed: int, plans: int = 4, steps: int = 8, bits: int = 6) -> Tensor:
    """The target sequences of :func:`make_jordan_plans`: ``[plans, steps, bits]``
    float32 0/1 vectors, a fixed function of ``seed``.  Within a plan the
    ``steps`` vectors are distinct and none is all zeros: a net whose state
    is its own previous output (zeros before the first step) can only
    continue differently from different outputs."""
    plans = _int("plans", plans, 1)
    steps = _int("steps", steps, 1)
    bits = _int("bits", bits, 1)
    if steps > 2**bits - 1:
        raise DataError(
            f"parameter 'steps' ({steps}) must be <= 2 ** 'bits' - 1 ({2**bits - 1}): "
            "the vectors of a plan are distinct and not all zeros"
        )
    rng = make_rng(seed, 0x70D4)
    codes = np.stack([1 + rng.choice(2**bits - 1, size=steps, replace=False) for _ in range(plans)])
    vectors = (codes[..., None] >> np.arange(bits - 1, -1, -1)) & 1
    return torch.from_numpy(vectors.astype(np.float32))


def make_jordan_plans(n: int, *, seed: int, plans: int = 4, steps: int = 8, bits: int = 6) -> list[Example]:
    """Plans and the sequences they produce, after Jordan, "Serial order: a
    parallel distributed processing approach" (1986).

    A fixed set of ``plans`` target sequences (:func:`jordan_sequences`), each
    ``steps`` random ``bits``-bit vectors; example ``i`` is plan
    ``i % plans``: the input is that plan's one-hot code at every step, the
    target its sequence.  The set is a fixed, seeded choice, so the examples
    repeat it (``n`` is how often the net sees each plan per epoch).

    * ``x``: ``[steps, plans]`` float32 one-hot plan; ``y``: ``[steps, bits]`` float32;
    * ``extras["plan"]``: the plan number.
    """
    n = _n(n)
    seqs = jordan_sequences(seed=seed, plans=plans, steps=steps, bits=bits)
    p, t, _ = seqs.shape
    out: list[Example] = []
    for i in range(n):
        k = i % p
        x = torch.zeros(t, p)
        x[:, k] = 1.0
        out.append(Example(x, seqs[k].clone(), {"plan": k}, per_step=True))
    return out


# --------------------------------------------------------------------------
# sequences of shared primitives (Yamashita & Tani 2008)
# --------------------------------------------------------------------------

PRIMITIVE_NAMES: tuple[str, ...] = ("circle", "up_down", "left_right", "figure_eight")
"""The movement primitives of :func:`make_primitive_sequences`, in id order."""


def primitive_shapes(length: int = 12, amplitude: float = 0.8) -> Tensor:
    """The primitives, ``[4, length, 2]`` float32: closed 2-D paths that leave
    the origin and come back to it at their last step, so that any of them
    can follow any other (see :data:`PRIMITIVE_NAMES`)."""
    length = _int("primitive_len", length, 2)
    amplitude = _float("amplitude", amplitude)
    th = 2.0 * math.pi * np.arange(1, length + 1) / length
    shapes = np.stack(
        [
            np.stack([np.sin(th), np.cos(th) - 1.0], 1),  # circle
            np.stack([np.zeros_like(th), np.sin(th)], 1),  # up and down
            np.stack([np.sin(th), np.zeros_like(th)], 1),  # left and right
            np.stack([np.sin(th), 0.5 * np.sin(2.0 * th)], 1),  # figure eight
        ]
    )
    shapes[:, -1] = 0.0  # exactly back home
    return torch.from_numpy((amplitude * shapes).astype(np.float32))


def primitive_orders(*, seed: int, sequences: int = 3, primitives: int = 3, per_sequence: int = 4) -> list[tuple[int, ...]]:
    """Which primitives make up each sequence: ``sequences`` distinct tuples of
    ``per_sequence`` primitive ids (below ``primitives``), a fixed function of
    ``seed``, with no primitive repeated back to back, and every sequence
    starting with a different primitive when there are enough of them."""
    sequences = _int("sequences", sequences, 1)
    primitives = _int("primitives", primitives, 2)
    per_sequence = _int("per_sequence", per_sequence, 1)
    if primitives > len(PRIMITIVE_NAMES):
        raise DataError(f"parameter 'primitives' must be <= {len(PRIMITIVE_NAMES)}, got {primitives}")
    possible = primitives * (primitives - 1) ** (per_sequence - 1)
    if sequences > possible:
        raise DataError(
            f"parameter 'sequences' ({sequences}) exceeds the {possible} distinct orders of "
            f"{per_sequence} of {primitives} primitives"
        )
    rng = make_rng(seed, 0x9417)
    orders: list[tuple[int, ...]] = []
    while len(orders) < sequences:
        k = len(orders)
        first = k % primitives if sequences <= primitives else int(rng.integers(0, primitives))
        order = [first]
        while len(order) < per_sequence:
            nxt = int(rng.integers(0, primitives - 1))
            order.append(nxt if nxt < order[-1] else nxt + 1)
        if tuple(order) not in orders:
            orders.append(tuple(order))
    return orders


def make_primitive_sequences(
    n: int,
    *,
    seed: int,
    sequences: int = 3,
    primitives: int = 3,
    per_sequence: int = 4,
    primitive_len: int = 12,
    amplitude: float = 0.8,
    noise: float = 0.0,
) -> list[Example]:
    """Sequences built from shared movement primitives, after Yamashita & Tani,
    "Emergence of functional hierarchy in a multiple timescale neural network
    model" (2008).

    ``sequences`` fixed 2-D paths, each ``per_sequence`` primitives
    (:func:`primitive_shapes`, :func:`primitive_orders`) of ``primitive_len``
    steps; example ``i`` is sequence ``i % sequences``.  Every primitive
    starts and ends at the origin, so at each junction only the sequence
    (held for the whole run) tells which primitive comes next.  The net
    predicts the next point from the current one; which sequence to run is
    cued once, at step 0, so that it can later generate the whole sequence
    closed loop (its own output fed back as the next input).

    * ``x``: ``[T, 2 + sequences]`` float32: the current point (the origin at
      step 0; plus Gaussian ``noise`` if set), then the one-hot cue at step 0
      (zeros after);
    * ``y``: ``[T, 2]`` float32, the next point; ``T = per_sequence * primitive_len``;
    * ``extras``: ``sequence`` (its number) and ``primitives`` (its order).
    """
    n = _n(n)
    noise = _float("noise", noise, lo=0.0)
    shapes = primitive_shapes(primitive_len, amplitude).numpy()
    orders = primitive_orders(seed=seed, sequences=sequences, primitives=primitives, per_sequence=per_sequence)
    paths = [np.concatenate([shapes[j] for j in order]) for order in orders]
    k_seq = len(orders)
    out: list[Example] = []
    for i in range(n):
        k = i % k_seq
        path = paths[k]
        T = path.shape[0]
        x = np.zeros((T, 2 + k_seq), dtype=np.float32)
        x[1:, :2] = path[:-1]
        if noise > 0:
            x[:, :2] += make_rng(seed, i).normal(0.0, noise, size=(T, 2)).astype(np.float32)
        x[0, 2 + k] = 1.0
        extras = {"sequence": k, "primitives": orders[k]}
        out.append(Example(torch.from_numpy(x), torch.from_numpy(path.copy()), extras, per_step=True))
    return out


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------

def make_history_compression(n: int, *, seed: int, length: int = 20, one_hot: bool = False) -> list[Example]:
    """The experiment of Schmidhuber, "Learning complex, extended sequences
    using the principle of history compression" (Neural Computation 1992):
    ``length + 2`` symbols ``a, x, b1..b_length``; every sequence is
    ``a b1 ... b_length`` or ``x b1 ... b_length``, the first symbol drawn at
    random, and the class, 0 for ``a`` and 1 for ``x``, is due at the end:
    the only information needed is ``length`` steps back, and everything
    after the first symbol is predictable.

    ``x``: ``[length + 1]`` ids (``a``=0, ``x``=1, ``b_k``=k+1), or one-hot;
    ``y``: scalar int64.
    """
    n = _n(n)
    length = _int("length", length, 1)
    body = np.arange(2, length + 2)
    out: list[Example] = []
    for i in range(n):
        first = int(make_rng(seed, i).integers(0, 2))
        ids = np.concatenate([[first], body])
        out.append(Example(_tokens(ids, length + 2, one_hot), torch.tensor(first), per_step=False))
    return out


TASKS: dict[str, Callable[..., list[Example]]] = {
    "history_compression": make_history_compression,
    "copy": make_copy,
    "repeat_copy": make_repeat_copy,
    "adding": make_adding,
    "temporal_xor": make_temporal_xor,
    "reber": make_reber,
    "embedded_reber": make_embedded_reber,
    "mackey_glass": make_mackey_glass,
    "tomita": make_tomita,
    "parentheses": make_parentheses,
    "anbn": make_anbn,
    "arithmetic": make_arithmetic,
    "associative_pairs": make_associative_pairs,
    "delayed_recall": make_delayed_recall,
    "temporal_order": make_temporal_order,
    "context_sum": make_context_sum,
    "sine": make_sine,
    "narendra_plant": make_narendra_plant,
    "jordan_plans": make_jordan_plans,
    "primitive_sequences": make_primitive_sequences,
    "multi_frequency": make_multi_frequency,
    "speech_digits": make_speech_digits,
    "anomaly": make_anomaly,
    "video": make_video,
    "captions": make_captions,
    "translation": make_translation,
}
"""Task name (as written in a spec) -> generator."""


LABEL_NAMES: dict[str, Callable[..., list[str]]] = {
    "speech_digits": speech_label_names,
    "video": lambda **_: list(VIDEO_TAGS),  # tag id -> tag
    "captions": lambda **_: list(CAPTION_WORDS),  # word id -> word
    "translation": target_names,  # target token id -> word or digit
}
"""Tasks whose integer labels have names (label id -> name), from their parameters."""


def task_label_names(name: str, **params: Any) -> list[str] | None:
    """The names of task ``name``'s labels (indexed by label id), or None when
    its labels are plain numbers.  A run keeps them (as its ``classes``) so
    that ``predict`` can print label strings."""
    fn = LABEL_NAMES.get(name)
    return fn(**params) if fn is not None else None


SOURCE_VOCABS: dict[str, Callable[..., Any]] = {
    "translation": lambda direction="words_to_digits", **_: source_vocab(direction),
}
"""Tasks whose token inputs have names (a :class:`~rnnspec.data.text.Vocab`), from their parameters."""


def task_vocab(name: str, **params: Any) -> Any:
    """The vocabulary of task ``name``'s token inputs, or None.  A run keeps it
    so that ``predict`` can read input text (e.g. "forty two") as ids."""
    fn = SOURCE_VOCABS.get(name)
    return fn(**params) if fn is not None else None


def make_task(name: str, n: int, *, seed: int, **params: Any) -> list[Example]:
    """Generate task ``name`` by its spec name, checking parameter names first
    so a typo gets a did-you-mean instead of a Python ``TypeError``."""
    fn = TASKS.get(name)
    if fn is None:
        raise DataError(
            f"unknown synthetic task {name!r}{did_you_mean(name, TASKS)}; known tasks: {listing(sorted(TASKS))}"
        )
    sig = inspect.signature(fn)
    allowed = [p for p in sig.parameters if p not in ("n", "seed", "params")]
    if fn is make_mackey_glass:
        allowed += [p for p in inspect.signature(mackey_glass).parameters if p not in ("length", "seed", "tau")]
    for key in params:
        if key not in allowed:
            raise DataError(
                f"task {name!r} has no parameter {key!r}{did_you_mean(key, allowed)}; "
                f"its parameters are {listing(allowed)}"
            )
    missing = [
        p.name
        for p in sig.parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind is inspect.Parameter.KEYWORD_ONLY
        and p.name not in params
        and p.name != "seed"
    ]
    if missing:
        raise DataError(f"task {name!r} needs parameter(s) {listing(missing)}")
    return fn(n, seed=seed, **params)
