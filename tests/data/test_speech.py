"""Synthetic speech (rnnspec/data/speech.py): the features against independent
computations (numpy FFT, the mel formula, the DCT definition), and the
generator's promises (seeded, labels that fit CTC, symbols where it says)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnnspec.data import DataError, collate
from rnnspec.data import speech as SP
from rnnspec.data import synthetic as S


# ---------------------------------------------------------------- features

def test_mel_scale_round_trips_and_matches_htk_values() -> None:
    assert SP.hz_to_mel(0.0) == 0.0
    assert SP.hz_to_mel(700.0) == pytest.approx(2595.0 * math.log10(2.0))
    assert SP.hz_to_mel(1000.0) == pytest.approx(999.99, abs=0.05)  # the scale's anchor: 1000 Hz ~ 1000 mel
    f = np.array([50.0, 440.0, 3999.0])
    assert np.allclose(SP.mel_to_hz(SP.hz_to_mel(f)), f)


def test_mel_filterbank_triangles() -> None:
    fb = SP.mel_filterbank(20)
    assert fb.shape == (20, SP.N_FFT // 2 + 1)
    assert (fb >= 0).all() and (fb <= 1).all()
    assert (fb.sum(1) > 0).all()  # no empty filter
    centres = SP.mel_centers(20)
    bins = np.linspace(0, SP.SAMPLE_RATE / 2, SP.N_FFT // 2 + 1)
    # each filter peaks at the bin nearest its centre, and is zero beyond its neighbours' centres
    for i in range(20):
        assert int(fb[i].argmax()) == int(np.abs(bins - centres[i]).argmin())
        lo = centres[i - 1] if i > 0 else 0.0
        hi = centres[i + 1] if i < 19 else SP.SAMPLE_RATE / 2
        outside = (bins <= lo) | (bins >= hi)
        assert float(fb[i][torch.from_numpy(outside)].abs().max()) == 0.0
    # centres evenly spaced in mel
    assert np.allclose(np.diff(SP.hz_to_mel(centres)), SP.hz_to_mel(4000.0) / 21)


def test_power_spectrogram_matches_a_numpy_fft_of_one_frame() -> None:
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(1000).astype(np.float32)
    P = SP.power_spectrogram(torch.from_numpy(audio))
    assert P.shape == (SP.num_frames(1000), SP.N_FFT // 2 + 1) == (1 + (1000 - 200) // 80, 129)
    k = 4
    frame = audio[k * SP.HOP : k * SP.HOP + SP.WINDOW].astype(np.float64)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(SP.WINDOW) / SP.WINDOW)  # periodic Hann
    ref = np.abs(np.fft.rfft(frame * hann, SP.N_FFT)) ** 2
    assert np.allclose(P[k].numpy(), ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("n_mels", [20, 40])
def test_log_mel_of_a_pure_tone_peaks_in_the_filter_centred_on_it(n_mels: int) -> None:
    centres = SP.mel_centers(n_mels)
    t = np.arange(4000) / SP.SAMPLE_RATE
    for i in range(4, n_mels, 5):
        tone = torch.from_numpy(np.sin(2 * np.pi * centres[i] * t).astype(np.float32))
        lm = SP.log_mel(tone, n_mels)
        assert lm.shape == (SP.num_frames(4000), n_mels)
        assert int(lm.mean(0).argmax()) == i
        # a tone between two centres (nearer to the upper one) lands in the upper filter
        f = centres[i - 1] + 0.7 * (centres[i] - centres[i - 1])
        tone = torch.from_numpy(np.sin(2 * np.pi * f * t).astype(np.float32))
        assert int(SP.log_mel(tone, n_mels).mean(0).argmax()) == i


def test_dct_is_orthonormal_and_mfcc_of_a_flat_spectrum_is_its_level() -> None:
    D = SP.dct_matrix(20, 20)
    assert torch.allclose(D @ D.t(), torch.eye(20), atol=1e-5)
    n = np.arange(20)
    assert np.allclose(D[3].numpy(), math.sqrt(2 / 20) * np.cos(math.pi * 3 * (2 * n + 1) / 40), atol=1e-6)
    flat = torch.full((5, 20), 2.0)
    c = SP.mfcc(flat, 13)
    assert c.shape == (5, 13)
    assert torch.allclose(c[:, 0], torch.full((5,), 2.0 * math.sqrt(20)))
    assert c[:, 1:].abs().max() < 1e-5


def test_normalize_gives_zero_mean_unit_variance_per_channel() -> None:
    x = torch.randn(50, 6) * torch.arange(1, 7) + 3.0
    z = SP.normalize(x)
    assert torch.allclose(z.mean(0), torch.zeros(6), atol=1e-5)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(6), atol=1e-3)


# ---------------------------------------------------------------- the generator

def test_speech_digits_is_seeded_and_grows_without_changing_its_first_examples() -> None:
    a = SP.make_speech_digits(5, seed=3)
    b = SP.make_speech_digits(8, seed=3)
    c = SP.make_speech_digits(5, seed=4)
    for u, v in zip(a, b):
        assert torch.equal(u.x, v.x) and torch.equal(u.y, v.y) and u.extras == v.extras
    assert not all(u.x.shape == v.x.shape and torch.equal(u.x, v.x) for u, v in zip(a, c))
    assert S.make_task("speech_digits", 5, seed=3)[2].extras == a[2].extras  # registered as a task


def test_labels_fit_the_frames_for_ctc_and_spell_the_text() -> None:
    exs = SP.make_speech_digits(120, seed=0, min_len=1, max_len=8, symbols=4)
    for ex in exs:
        y = ex.y.tolist()
        text = ex.extras["text"]
        assert 1 <= len(y) <= 8 and len(text) == len(y)
        assert y == SP.speech_labels(text) and all(1 <= k <= 4 for k in y)
        repeats = sum(p == q for p, q in zip(y, y[1:]))
        assert ex.length >= len(y) + repeats  # a CTC path exists (a blank between doubled labels)
        spans = ex.extras["spans"]
        assert len(spans) == len(y)
        assert all(0 <= s < e <= ex.length for s, e in spans)
        assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:]))  # in order, not overlapping
        assert ex.x.shape[1] == 20 and ex.x.dtype == torch.float32 and not ex.y_is_per_step()
    assert {k for ex in exs for k in ex.y.tolist()} == {1, 2, 3, 4}
    batch = collate(exs[:16])
    assert batch.y.shape[0] == 16


def test_digits_are_loud_where_the_spans_say_and_quiet_between() -> None:
    exs = SP.make_speech_digits(40, seed=1, normalize=False, snr_db=40)
    inside, outside = [], []
    for ex in exs:
        energy = ex.x.exp().sum(1).log()  # log of the total mel energy per frame
        mask = torch.zeros(ex.length, dtype=torch.bool)
        for s, e in ex.extras["spans"]:
            mask[s:e] = True
        inside.append(float(energy[mask].median()))
        outside.append(float(energy[0]))  # the first 25 ms: silence (every utterance starts with 30-100 ms of it)
    # 40 dB SNR: the speech frames are far above the leading silence (natural log: 30 dB ~ 6.9)
    assert min(i - o for i, o in zip(inside, outside)) > 6.9


def test_features_options_and_label_names() -> None:
    (ex,) = SP.make_speech_digits(1, seed=2, features="mfcc", n_mels=24, n_mfcc=10)
    assert ex.x.shape[1] == 10
    (raw,) = SP.make_speech_digits(1, seed=2, n_mels=24, normalize=False)
    (norm,) = SP.make_speech_digits(1, seed=2, n_mels=24)
    assert torch.allclose(norm.x, SP.normalize(raw.x))
    assert torch.allclose(ex.x, SP.normalize(SP.mfcc(raw.x, 10)), atol=1e-4)
    assert S.task_label_names("speech_digits", symbols=3, n_mels=24) == ["", "0", "1", "2"]
    assert S.task_label_names("copy") is None


@pytest.mark.parametrize(
    "params, match",
    [
        ({"symbols": 11}, "'symbols' must be in 1..10"),
        ({"min_len": 4, "max_len": 2}, "'min_len' \\(4\\) must be <= 'max_len' \\(2\\)"),
        ({"features": "mel"}, "'features' must be 'logmel' or 'mfcc'"),
        ({"features": "mfcc", "n_mfcc": 30}, "'n_mfcc' must be in 1..20"),
        ({"snr_db": "loud"}, "'snr_db' must be a number"),
        ({"normalize": 1}, "'normalize' must be true or false"),
    ],
)
def test_bad_parameters_name_the_parameter(params: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        S.make_task("speech_digits", 2, seed=0, **params)
