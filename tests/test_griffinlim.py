"""Offline fast Griffin-Lim and the content-phase inverse."""

import librosa
import numpy as np
import pytest

from conftest import harmonic, speechlike
from rtstyle.dsp.griffinlim import griffinlim, istft_with_phase
from rtstyle.dsp.metrics import spectral_convergence
from rtstyle.dsp.stft import stft
from rtstyle.errors import ParameterError

OPTS = dict(n_fft=1024, hop_length=256)


@pytest.fixture(scope="module")
def signal():
    return np.concatenate([speechlike(duration=1.5, seed=3), harmonic(duration=1.0)])


def sc(y, S):
    return spectral_convergence(y, S, **OPTS)


def test_same_update_as_librosa(signal):
    S = np.abs(stft(signal, **OPTS))
    n = signal.size
    ours = griffinlim(S, n_iter=3, init="zeros", length=n, **OPTS)
    ref = librosa.griffinlim(S, n_iter=3, init=None, length=n, **OPTS)
    # Same algorithm and start; float32 FFTs of two libraries drift apart by rounding only.
    assert np.abs(ours - ref).max() < 1e-3 * np.abs(ref).max()


def test_fast_beats_plain_and_more_iterations_help(signal):
    S = np.abs(stft(signal, **OPTS))
    n = signal.size
    plain = sc(griffinlim(S, n_iter=32, momentum=0.0, length=n, **OPTS), S)
    fast = sc(griffinlim(S, n_iter=32, momentum=0.99, length=n, **OPTS), S)
    fast100 = sc(griffinlim(S, n_iter=100, momentum=0.99, length=n, **OPTS), S)
    assert fast < plain - 2  # dB: the inertial step is worth several dB at 32 iterations
    assert fast100 < fast - 2


def test_given_true_phase_reconstructs(signal):
    D = stft(signal, **OPTS)
    y = griffinlim(np.abs(D), n_iter=0, angles=D, length=signal.size, **OPTS)
    assert np.abs(y - signal).max() < 1e-4
    y2 = istft_with_phase(np.abs(D), D, length=signal.size, **OPTS)
    assert np.abs(y2 - signal).max() < 1e-4


def test_seeded_and_channels_share_draws(signal):
    S = np.abs(stft(np.stack([signal, signal]), **OPTS))
    a = griffinlim(S, n_iter=5, seed=1, **OPTS)
    b = griffinlim(S, n_iter=5, seed=1, **OPTS)
    c = griffinlim(S, n_iter=5, seed=2, **OPTS)
    assert a.shape[0] == 2 and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.allclose(a[0], a[1], atol=1e-6)  # identical channels stay identical


def test_errors():
    S = np.ones((513, 10), np.float32)
    with pytest.raises(ParameterError, match="n_iter"):
        griffinlim(S, n_iter=-1)
    with pytest.raises(ParameterError, match="momentum"):
        griffinlim(S, momentum=-0.5)
    with pytest.raises(ParameterError, match="init"):
        griffinlim(S, init="noise")
    with pytest.raises(ParameterError, match="bins"):
        griffinlim(S, n_fft=2048)
    with pytest.warns(UserWarning, match="momentum=1.5"):
        griffinlim(S, momentum=1.5, n_iter=1)
    with pytest.raises(ParameterError, match="complex"):
        istft_with_phase(S, S)
