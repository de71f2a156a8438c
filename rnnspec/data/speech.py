"""Synthetic spoken digit strings, and speech features computed in torch.

Graves, Mohamed & Hinton, "Speech recognition with deep recurrent neural
networks" (ICASSP 2013) train deep bidirectional LSTMs end to end (CTC, and
a transducer) on TIMIT: 17.7% phone error rate for the best (Table 1); more
layers help more than wider ones.  TIMIT is
licensed and cannot be downloaded here, so the project synthesizes its own
"speech": each symbol (a digit) is a short sound with its own pattern in
time, and the network must read a string of them from filterbank features
without any alignment, as in the paper.

**Audio** (``render_utterance``).  A symbol is a voiced sound made with the
source-filter idea of speech production: a harmonic series of a pitch
``f0(t)`` (per-utterance speaker pitch, a per-symbol intonation slope and
per-sample jitter) whose harmonic amplitudes follow two formant resonances
(Gaussian bumps around ``F1(t)``, ``F2(t)``) gliding linearly from a start to
an end frequency, plus, for some symbols, a fricative or burst: band-limited
noise at the onset or the end (see :data:`SYMBOL_PATTERNS`).  Each
utterance has its own speaker (formants scaled by 0.9-1.1, like vocal tract
length), symbol durations, silences between symbols (often none), loudness
and background noise at a random signal-to-noise ratio.

**Features** (written here; torchaudio is not needed).  Frames of 25 ms every
10 ms, Hann window, power spectrum by ``torch.fft.rfft``; a triangular mel
filterbank on the HTK mel scale ``m = 2595 log10(1 + f / 700)``
(:func:`mel_filterbank`); ``log`` of the filter energies (log-mel, the
paper's "40 coefficient filter-bank" features at a smaller size); optionally
the MFCCs, the orthonormal DCT-II of the log-mel vector (:func:`mfcc`);
then mean/variance normalisation per channel over the utterance.  The paper
also appends energy and deltas; these are left out.

Labels are ``1..symbols`` (symbol ``k`` is label ``k + 1``): 0 is left for
the CTC blank, the trainer's default.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from .batch import Example, make_rng
from .errors import DataError

__all__ = [
    "SAMPLE_RATE",
    "HOP",
    "WINDOW",
    "N_FFT",
    "SPEECH_SYMBOLS",
    "SYMBOL_PATTERNS",
    "hz_to_mel",
    "mel_to_hz",
    "mel_filterbank",
    "mel_centers",
    "power_spectrogram",
    "log_mel",
    "dct_matrix",
    "mfcc",
    "normalize",
    "num_frames",
    "render_utterance",
    "utterance_features",
    "speech_labels",
    "speech_label_names",
    "save_npz",
    "make_speech_digits",
]

SAMPLE_RATE = 8000  # Hz (telephone band: formants and fricatives up to 4 kHz)
HOP = 80  # samples: 10 ms frame shift
WINDOW = 200  # samples: 25 ms analysis window
N_FFT = 256

SPEECH_SYMBOLS: tuple[str, ...] = tuple("0123456789")
"""The symbols spoken; symbol ``k`` is CTC label ``k + 1``."""

# Per symbol: F1 start/end, F2 start/end (Hz), and an optional noise part
# (centre Hz, bandwidth Hz, where: "onset" | "coda", fraction of the symbol).
# Loosely shaped after the vowels and consonants of the English digit names;
# what matters is that each is a distinct pattern in time, and that the
# glides and envelopes mark where one symbol ends and the next begins (so a
# repeated digit is two events, which CTC needs a blank to separate).
SYMBOL_PATTERNS: tuple[dict[str, Any], ...] = (
    {"f1": (420, 560), "f2": (2000, 1100), "noise": (3400, 900, "onset", 0.30)},  # zero
    {"f1": (320, 640), "f2": (750, 1200), "noise": None},                        # one
    {"f1": (300, 330), "f2": (1500, 850), "noise": (2900, 1200, "onset", 0.15)},  # two
    {"f1": (520, 300), "f2": (1400, 2300), "noise": (1700, 1800, "onset", 0.25)},  # three
    {"f1": (580, 470), "f2": (950, 780), "noise": (2200, 2400, "onset", 0.25)},   # four
    {"f1": (740, 380), "f2": (1150, 2100), "noise": (2200, 2400, "coda", 0.20)},  # five
    {"f1": (400, 400), "f2": (2100, 1950), "noise": (3500, 700, "coda", 0.35)},  # six
    {"f1": (620, 420), "f2": (1800, 1500), "noise": (3500, 700, "onset", 0.25)},  # seven
    {"f1": (560, 330), "f2": (1850, 2350), "noise": (3000, 1000, "coda", 0.15)},  # eight
    {"f1": (280, 700), "f2": (1000, 1650), "noise": None},                       # nine
)
"""Sound pattern of each symbol of :data:`SPEECH_SYMBOLS`."""

FORMANT_BANDWIDTH = (90.0, 130.0)  # Hz: the width of the F1 and F2 resonances (Gaussian sigma)


# --------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------


def hz_to_mel(f: Any) -> Any:
    """HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: Any) -> Any:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_centers(n_mels: int, sample_rate: int = SAMPLE_RATE, fmin: float = 0.0,
                fmax: Optional[float] = None) -> np.ndarray:
    """Centre frequencies (Hz) of the filters of :func:`mel_filterbank`."""
    fmax = sample_rate / 2.0 if fmax is None else fmax
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    return edges[1:-1]


def mel_filterbank(n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE, fmin: float = 0.0,
                   fmax: Optional[float] = None) -> Tensor:
    """Triangular filters ``[n_mels, n_fft // 2 + 1]`` over the FFT bins.

    Filter ``i`` rises linearly from edge ``i`` to its centre ``i + 1`` and
    falls to edge ``i + 2``, the ``n_mels + 2`` edges evenly spaced in mel
    between ``fmin`` and ``fmax``.  The triangles are evaluated at the bin
    frequencies (not snapped to bins), so narrow low filters are not empty
    as long as they straddle a bin."""
    fmax = sample_rate / 2.0 if fmax is None else fmax
    if not 0.0 <= fmin < fmax <= sample_rate / 2.0:
        raise ValueError(f"need 0 <= fmin < fmax <= {sample_rate / 2}, got fmin={fmin}, fmax={fmax}")
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    bins = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bins[None, :] - lo) / (mid - lo)
    down = (hi - bins[None, :]) / (hi - mid)
    fb = np.clip(np.minimum(up, down), 0.0, None)
    return torch.from_numpy(fb.astype(np.float32))


def num_frames(samples: int, window: int = WINDOW, hop: int = HOP) -> int:
    """Frames of an utterance of ``samples`` samples (no padding at the ends)."""
    return 0 if samples < window else 1 + (samples - window) // hop


def power_spectrogram(audio: Tensor, n_fft: int = N_FFT, window: int = WINDOW, hop: int = HOP) -> Tensor:
    """``|STFT|^2`` frames ``[frames, n_fft // 2 + 1]`` of a 1-D signal: frame
    ``k`` is samples ``k hop .. k hop + window`` times a (periodic) Hann
    window, zero-padded at the end to ``n_fft`` (framing done here, so frame
    ``k`` starts at exactly ``k hop``: see :func:`num_frames`)."""
    if audio.dim() != 1:
        raise ValueError("audio must be 1-D samples")
    if audio.shape[0] < window:
        raise ValueError(f"audio of {audio.shape[0]} samples is shorter than one {window}-sample window")
    if n_fft < window:
        raise ValueError(f"n_fft ({n_fft}) must be at least the window ({window})")
    win = torch.hann_window(window, periodic=True, dtype=audio.dtype)
    frames = audio.unfold(0, window, hop) * win  # [frames, window]
    spec = torch.fft.rfft(frames, n=n_fft)
    return spec.real ** 2 + spec.imag ** 2


def log_mel(audio: Tensor, n_mels: int = 20, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT,
            window: int = WINDOW, hop: int = HOP, floor: float = 1e-10,
            filterbank: Optional[Tensor] = None) -> Tensor:
    """Log mel filterbank energies ``[frames, n_mels]`` of a 1-D signal."""
    fb = mel_filterbank(n_mels, n_fft, sample_rate) if filterbank is None else filterbank
    power = power_spectrogram(audio.float(), n_fft, window, hop)
    return torch.log(torch.clamp(power @ fb.t(), min=floor))


def dct_matrix(n_out: int, n_in: int) -> Tensor:
    """Orthonormal DCT-II ``[n_out, n_in]``: row ``k`` is
    ``s_k cos(pi k (2n + 1) / (2 n_in))`` with ``s_0 = sqrt(1/n_in)``, else ``sqrt(2/n_in)``."""
    if not 1 <= n_out <= n_in:
        raise ValueError(f"need 1 <= n_out <= n_in, got {n_out} and {n_in}")
    n = np.arange(n_in)
    k = np.arange(n_out)[:, None]
    m = np.cos(math.pi * k * (2 * n[None, :] + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    m[0] /= math.sqrt(2.0)
    return torch.from_numpy(m.astype(np.float32))


def mfcc(log_mel_frames: Tensor, n_mfcc: int = 13) -> Tensor:
    """Mel-frequency cepstral coefficients ``[frames, n_mfcc]``: the DCT-II of
    each log-mel frame, truncated (coefficient 0 is the log energy)."""
    return log_mel_frames @ dct_matrix(n_mfcc, int(log_mel_frames.shape[-1])).t()


def normalize(features: Tensor, eps: float = 1e-5) -> Tensor:
    """Zero mean, unit variance per channel over the utterance's frames
    (cepstral mean/variance normalisation: removes loudness and channel)."""
    mu = features.mean(0, keepdim=True)
    sd = features.std(0, unbiased=False, keepdim=True)
    return (features - mu) / (sd + eps)


# --------------------------------------------------------------------------
# audio
# --------------------------------------------------------------------------


def _band_noise(n: int, centre: float, width: float, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """White noise shaped in frequency by a Gaussian around ``centre`` (unit RMS)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spec *= np.exp(-0.5 * ((f - centre) / (width / 2.0)) ** 2)
    out = np.fft.irfft(spec, n)
    return out / (np.sqrt(np.mean(out ** 2)) + 1e-12)


def _envelope(n: int, ramp: int) -> np.ndarray:
    """Raised-cosine attack and decay of ``ramp`` samples."""
    env = np.ones(n)
    r = min(ramp, n // 2)
    if r > 0:
        w = 0.5 - 0.5 * np.cos(np.pi * np.arange(r) / r)
        env[:r] = w
        env[n - r :] = w[::-1]
    return env


def _render_symbol(sym: int, n: int, f0: float, scale: float, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """``n`` samples of symbol ``sym`` spoken at pitch ``f0`` by a speaker whose
    formants are ``scale`` times the table's."""
    pat = SYMBOL_PATTERNS[sym]
    t = np.arange(n) / n
    slope = rng.uniform(-0.15, 0.15)  # intonation across the symbol
    pitch = f0 * (1.0 + slope * (t - 0.5)) * (1.0 + 0.01 * rng.standard_normal(n))  # jitter
    phase = np.mod(2.0 * np.pi * np.cumsum(pitch) / sample_rate, 2.0 * np.pi).astype(np.float32)
    k = np.arange(1, int((sample_rate / 2 - 100) / (f0 * 1.1)) + 1, dtype=np.float32)[:, None]  # harmonics [K, 1]
    hk = k * pitch[None, :].astype(np.float32)  # harmonic frequencies [K, n]
    amp = np.zeros_like(hk)
    for (a, b), bw, gain in zip((pat["f1"], pat["f2"]), FORMANT_BANDWIDTH, (1.0, 0.6)):
        jit = rng.uniform(0.95, 1.05)
        fc = (scale * jit * (a + (b - a) * t)).astype(np.float32)
        amp += gain * np.exp(-0.5 * ((hk - fc[None, :]) / bw) ** 2)
    voiced = (amp * np.sin(k * phase[None, :])).sum(0)
    voiced /= np.sqrt(np.mean(voiced ** 2)) + 1e-12
    ramp = int(0.012 * sample_rate)
    out = voiced * _envelope(n, ramp)
    noise = pat["noise"]
    if noise is not None:
        centre, width, where, frac = noise
        m = max(ramp, int(round(frac * n)))
        burst = 0.8 * _band_noise(m, scale * centre, width, rng, sample_rate) * _envelope(m, max(1, ramp // 2))
        # the voiced part gives way to the noise where the noise is
        if where == "onset":
            out[:m] = out[:m] * np.linspace(0.1, 1.0, m) + burst
        else:
            out[n - m :] = out[n - m :] * np.linspace(1.0, 0.1, m) + burst
    return out


def render_utterance(symbols: Sequence[int], rng: np.random.Generator, sample_rate: int = SAMPLE_RATE,
                     snr_db: float = 20.0, min_ms: float = 70.0, max_ms: float = 140.0,
                     max_gap_ms: float = 60.0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Audio (float32 samples) of the symbol ids ``symbols`` (0-based), and
    each symbol's ``(start, stop)`` sample span.

    One speaker per utterance (pitch 90-220 Hz, formant scale 0.9-1.1); per
    symbol a duration uniform in ``[min_ms, max_ms]`` and a silence before
    it (none half the time, else up to ``max_gap_ms``); 30-100 ms of silence
    at each end; white noise at ``snr_db`` +- 5 dB below the speech power."""
    f0 = rng.uniform(90.0, 220.0)
    scale = rng.uniform(0.9, 1.1)
    ms = sample_rate / 1000.0
    parts: list[np.ndarray] = [np.zeros(int(rng.uniform(30, 100) * ms))]
    spans: list[tuple[int, int]] = []
    pos = parts[0].shape[0]
    for j, s in enumerate(symbols):
        if j > 0 and rng.random() < 0.5:
            gap = np.zeros(int(rng.uniform(10, max_gap_ms) * ms))
            parts.append(gap)
            pos += gap.shape[0]
        n = int(rng.uniform(min_ms, max_ms) * ms)
        parts.append(_render_symbol(int(s), n, f0 * rng.uniform(0.95, 1.05), scale, rng, sample_rate))
        spans.append((pos, pos + n))
        pos += n
    parts.append(np.zeros(int(rng.uniform(30, 100) * ms)))
    audio = np.concatenate(parts)
    speech_power = float(np.mean(np.concatenate([audio[a:b] for a, b in spans]) ** 2)) if spans else 1.0
    snr = snr_db + rng.uniform(-5.0, 5.0)
    audio = audio + rng.standard_normal(audio.shape[0]) * math.sqrt(speech_power / 10 ** (snr / 10.0))
    audio *= rng.uniform(0.05, 1.0)  # loudness
    return audio.astype(np.float32), spans


def utterance_features(audio: np.ndarray | Tensor, features: str = "logmel", n_mels: int = 20, n_mfcc: int = 13,
                       norm: bool = True, filterbank: Optional[Tensor] = None) -> Tensor:
    """The network's input frames ``[frames, F]`` for one utterance."""
    a = torch.as_tensor(audio, dtype=torch.float32)
    feats = log_mel(a, n_mels, filterbank=filterbank)
    if features == "mfcc":
        feats = mfcc(feats, n_mfcc)
    return normalize(feats) if norm else feats


def speech_labels(text: str) -> list[int]:
    """CTC labels (1-based) of a digit string."""
    return [SPEECH_SYMBOLS.index(c) + 1 for c in text]


def speech_label_names(symbols: int = 10, **_: Any) -> list[str]:
    """Name of each label id of :func:`make_speech_digits` (index 0, the
    blank, is not a label: ``""``), so predictions print as digit strings."""
    return [""] + list(SPEECH_SYMBOLS[:symbols])


def save_npz(path: Any, examples: Sequence[Example]) -> None:
    """Write utterances as an ``.npz`` archive the data layer reads back: ``x``
    (padded frames ``[N, T, F]``), ``lengths``, ``y`` (padded labels) and
    ``target_lengths`` -- input for ``rnnspec predict``, or a ``{npz: ...,
    keys: {target_lengths: target_lengths}, target: sequence}`` data source."""
    if not examples:
        raise DataError("no utterances to save")
    T = max(ex.length for ex in examples)
    U = max(int(ex.y.shape[0]) if ex.y is not None else 0 for ex in examples)
    x = np.zeros((len(examples), T, int(examples[0].x.shape[1])), np.float32)
    y = np.zeros((len(examples), max(U, 1)), np.int64)
    lengths = np.zeros(len(examples), np.int64)
    tl = np.zeros(len(examples), np.int64)
    for i, ex in enumerate(examples):
        x[i, : ex.length] = ex.x.numpy()
        lengths[i] = ex.length
        if ex.y is not None:
            y[i, : ex.y.shape[0]] = ex.y.numpy()
            tl[i] = ex.y.shape[0]
    np.savez(path, x=x, lengths=lengths, y=y, target_lengths=tl)


# --------------------------------------------------------------------------
# the synthetic task
# --------------------------------------------------------------------------


def _check_int(name: str, value: Any, lo: int, hi: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"parameter '{name}' must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise DataError(f"parameter '{name}' must be in {lo}..{hi if hi is not None else 'inf'}, got {value}")
    return int(value)


def make_speech_digits(n: int, *, seed: int, symbols: int = 10, min_len: int = 1, max_len: int = 5,
                       features: str = "logmel", n_mels: int = 20, n_mfcc: int = 13, snr_db: float = 20.0,
                       normalize: bool = True) -> list[Example]:
    """Spoken digit strings for CTC (Graves, Mohamed & Hinton 2013, at toy scale).

    Example ``i`` (its own random stream ``(seed, i)``) is a string of
    ``min_len..max_len`` digits drawn uniformly from the first ``symbols``
    of :data:`SPEECH_SYMBOLS`, rendered by :func:`render_utterance` and
    turned into frames by :func:`utterance_features`.

    * ``x``: ``[frames, n_mels]`` (or ``[frames, n_mfcc]`` with
      ``features: mfcc``) float32, 100 frames per second;
    * ``y``: ``[U]`` int64 labels ``1..symbols`` (0 is the CTC blank);
    * ``extras["text"]``: the digit string; ``extras["spans"]``: each
      digit's ``(first, last + 1)`` frame, a reference alignment the network
      never sees.

    Every digit lasts at least 70 ms (7 frames), so ``frames >= U +
    repeats``: a CTC path exists for every example."""
    n = _check_int("n", n, 0)
    symbols = _check_int("symbols", symbols, 1, len(SPEECH_SYMBOLS))
    lo = _check_int("min_len", min_len, 1)
    hi = _check_int("max_len", max_len, 1)
    if lo > hi:
        raise DataError(f"parameter 'min_len' ({lo}) must be <= 'max_len' ({hi})")
    if features not in ("logmel", "mfcc"):
        raise DataError(f"parameter 'features' must be 'logmel' or 'mfcc', got {features!r}")
    n_mels = _check_int("n_mels", n_mels, 4, 64)
    n_mfcc = _check_int("n_mfcc", n_mfcc, 1, n_mels if features == "mfcc" else None)
    if isinstance(snr_db, bool) or not isinstance(snr_db, (int, float)) or not -10.0 <= float(snr_db) <= 80.0:
        raise DataError(f"parameter 'snr_db' must be a number in [-10, 80], got {snr_db!r}")
    if not isinstance(normalize, bool):
        raise DataError(f"parameter 'normalize' must be true or false, got {normalize!r}")
    fb = mel_filterbank(n_mels)
    out = []
    for i in range(n):
        rng = make_rng(seed, i)
        length = int(rng.integers(lo, hi + 1))
        ids = rng.integers(0, symbols, size=length)
        audio, spans = render_utterance(ids.tolist(), rng, snr_db=float(snr_db))
        x = utterance_features(audio, features, n_mels, n_mfcc, normalize, filterbank=fb)
        text = "".join(SPEECH_SYMBOLS[k] for k in ids)
        frames = [(a // HOP, min(int(x.shape[0]), max(a // HOP + 1, (b - WINDOW) // HOP + 1))) for a, b in spans]
        out.append(Example(x, torch.as_tensor(ids + 1, dtype=torch.int64), {"text": text, "spans": frames},
                           per_step=False))
    return out
