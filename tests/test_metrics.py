"""rtstyle.dsp.metrics: Fréchet distance, log-mel features, spectral convergence."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from rtstyle.dsp.metrics import (
    frechet_distance,
    logmel_frames,
    logmel_frechet,
    spectral_convergence,
)
from rtstyle.errors import ParameterError

SR = 22050


def gaussian_frames(rng, n: int, mu, sigma) -> np.ndarray:
    """Frames whose *sample* mean is exactly ``mu`` and sample covariance exactly diag(sigma²).

    Centred random columns, orthonormalised by QR (the columns stay orthogonal to the ones
    vector, so their mean stays 0), then scaled by sqrt(n - 1)·sigma (np.cov uses ddof=1).
    """
    mu, sigma = np.atleast_1d(mu).astype(float), np.atleast_1d(sigma).astype(float)
    x = rng.standard_normal((n, mu.size))
    q, _ = np.linalg.qr(x - x.mean(axis=0))
    return q * np.sqrt(n - 1) * sigma + mu


# ------------------------------------------------------------------ frechet_distance


def test_frechet_zero_for_identical_sets(rng):
    a = rng.standard_normal((500, 8)) @ rng.standard_normal((8, 8))  # full covariance
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, a.copy()) >= 0.0


def test_frechet_symmetric(rng):
    a = rng.standard_normal((400, 6)) @ rng.standard_normal((6, 6)) + 1.0
    b = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6))
    # sqrtm(ΣaΣb) and sqrtm(ΣbΣa) are different matrices with the same trace; Schur rounding.
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)
    assert frechet_distance(a, b) > 0


def test_frechet_1d_closed_form_exact(rng):
    a = gaussian_frames(rng, 1000, 1.5, 2.0)
    b = gaussian_frames(rng, 700, -0.5, 0.5)
    assert frechet_distance(a, b) == pytest.approx((1.5 + 0.5) ** 2 + (2.0 - 0.5) ** 2, rel=1e-9)


def test_frechet_1d_closed_form_sampled(rng):
    # Plain random draws: the formula holds for the sample mean and (ddof=1) std.
    a = rng.normal(3.0, 1.0, size=(5000, 1))
    b = rng.normal(0.0, 4.0, size=(3000, 1))
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_frechet_diagonal_closed_form(rng):
    mu_a, sd_a = np.array([0.0, 1.0, -2.0, 5.0]), np.array([1.0, 0.5, 3.0, 2.0])
    mu_b, sd_b = np.array([1.0, 1.0, 0.0, 4.0]), np.array([2.0, 0.5, 1.0, 0.1])
    a = gaussian_frames(rng, 800, mu_a, sd_a)
    b = gaussian_frames(rng, 600, mu_b, sd_b)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((sd_a - sd_b) ** 2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_frechet_singular_covariance_is_finite(rng):
    # Fewer frames than dimensions and a constant dimension: both covariances are singular.
    a = rng.standard_normal((5, 16))
    b = rng.standard_normal((7, 16))
    a[:, 3] = b[:, 3] = 2.0
    d = frechet_distance(a, b)
    assert np.isfinite(d) and d > 0


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (np.zeros((10, 3)), np.zeros((10, 4)), "same number of dimensions"),
        (np.zeros(10), np.zeros((10, 1)), r"shape \(frames, dims\)"),
        (np.zeros((1, 3)), np.zeros((10, 3)), "at least 2 frames"),
        (np.full((10, 3), np.nan), np.zeros((10, 3)), "not finite"),
        ([[0.0, 1.0], [1.0, 0.0]], np.zeros((10, 2)), "numpy.ndarray"),
    ],
)
def test_frechet_errors(a, b, match):
    with pytest.raises(ParameterError, match=match):
        frechet_distance(a, b)


# ------------------------------------------------------------------ log-mel features


def test_logmel_frames_shape_and_floor(signals):
    y = signals.sine(SR, 440.0, duration=1.0)
    f = logmel_frames(y, sr=SR)
    assert f.shape == (1 + y.size // 512, 64) and f.dtype == np.float32
    silent = logmel_frames(np.zeros(4096, np.float32), sr=SR, n_mels=32)
    assert silent.shape == (9, 32)
    np.testing.assert_allclose(silent, -60.0)  # amin=1e-6, ref=1.0


def test_logmel_frames_channels_concatenate(signals):
    a = signals.sine(SR, 440.0, duration=0.5)
    b = signals.noise(SR, duration=0.5)
    stereo = np.stack([a, b])
    f = logmel_frames(stereo, sr=SR)
    np.testing.assert_allclose(f, np.concatenate([logmel_frames(a, sr=SR),
                                                  logmel_frames(b, sr=SR)]), atol=1e-4)


def test_logmel_frechet_orders_sine_detune_noise(signals):
    sine = signals.sine(SR, 440.0, duration=2.0)
    detuned = signals.sine(SR, 446.0, duration=2.0)  # ~24 cents
    noise = signals.noise(SR, duration=2.0, amp=0.3)
    assert logmel_frechet(sine, sine, sr=SR) == pytest.approx(0.0, abs=1e-6)
    d_detuned = logmel_frechet(sine, detuned, sr=SR)
    d_noise = logmel_frechet(sine, noise, sr=SR)
    assert d_detuned > 0
    assert d_noise > 20 * d_detuned, (d_detuned, d_noise)


def test_logmel_frechet_ignores_loudness(signals):
    y = signals.vowel(SR, duration=1.0)
    assert logmel_frechet(y, 0.1 * y, sr=SR) < 1e-6
    # without the level match, 20 dB of gain costs ~20² dB² per band
    assert logmel_frechet(y, 0.1 * y, sr=SR, level_db=None) > 64 * 100


def test_logmel_errors():
    with pytest.raises(ParameterError, match="n_mels"):
        logmel_frames(np.zeros(2048, np.float32), sr=SR, n_mels=0)
    with pytest.raises(ParameterError, match="floating-point"):
        logmel_frechet(np.zeros(2048, np.int16), np.zeros(2048, np.float32), sr=SR)


# ------------------------------------------------------------------ spectral convergence


@pytest.mark.parametrize("win_length", [None, 768])
def test_sc_of_own_stft_is_very_low(signals, win_length):
    y = signals.chirp(SR, duration=1.0)
    S = np.abs(librosa.stft(y, n_fft=1024, hop_length=256, win_length=win_length))
    sc = spectral_convergence(y, S, n_fft=1024, hop_length=256, win_length=win_length)
    assert sc < -60, sc


def test_sc_of_unrelated_noise_is_about_zero_or_more(signals):
    y = signals.harmonic(SR, 220.0, duration=1.0)
    S = np.abs(librosa.stft(y, n_fft=1024, hop_length=256))
    noise = signals.noise(SR, duration=1.0, amp=0.3, seed=7)
    assert spectral_convergence(noise, S, n_fft=1024, hop_length=256) > -1.0


def test_sc_multichannel_and_length_mismatch(signals):
    y = np.stack([signals.sine(SR, 330.0), signals.vowel(SR)])
    S = np.abs(librosa.stft(y, n_fft=512, hop_length=128))
    assert spectral_convergence(y, S, n_fft=512, hop_length=128) < -60
    # Longer y: extra frames are cropped, so a matching prefix stays near-perfect except at
    # the last frames' window tails.
    longer = np.concatenate([y, np.zeros((2, 1000), np.float32)], axis=-1)
    assert spectral_convergence(longer, S, n_fft=512, hop_length=128) < -30
    # Shorter y: missing frames count as zeros, so the error grows.
    assert spectral_convergence(y[:, : y.shape[-1] // 2], S, n_fft=512, hop_length=128) > -6


def test_sc_errors(signals):
    y = signals.sine(SR, 440.0, duration=0.2)
    S = np.abs(librosa.stft(y, n_fft=512, hop_length=128))
    with pytest.raises(ParameterError, match="does not fit"):
        spectral_convergence(y, S, n_fft=1024, hop_length=128)
    with pytest.raises(ParameterError, match="non-negative"):
        spectral_convergence(y, -S, n_fft=512, hop_length=128)
    with pytest.raises(ParameterError, match="all zeros"):
        spectral_convergence(y, np.zeros_like(S), n_fft=512, hop_length=128)
    with pytest.raises(ParameterError, match="real magnitudes"):
        spectral_convergence(y, S.astype(np.complex64), n_fft=512, hop_length=128)
    with pytest.raises(ParameterError, match="hop_length"):
        spectral_convergence(y, S, n_fft=512, hop_length=0)
