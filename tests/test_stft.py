"""STFT/ISTFT in numpy and torch against librosa, round trips, bad sizes."""

import librosa
import numpy as np
import pytest
import torch

from rtstyle.dsp.stft import istft, istft_torch, n_frames, stft, stft_torch, window
from rtstyle.errors import ParameterError

SIZES = [(2048, 512, None), (1024, 256, 800), (512, 128, None), (256, 100, 200)]


@pytest.fixture
def audio(rng):
    return rng.standard_normal((2, 22050 + 37)).astype(np.float32)


@pytest.mark.parametrize("n_fft,hop,win", SIZES)
def test_numpy_and_torch_match_librosa(audio, n_fft, hop, win):
    ref = librosa.stft(audio, n_fft=n_fft, hop_length=hop, win_length=win)
    D = stft(audio, n_fft=n_fft, hop_length=hop, win_length=win)
    Dt = stft_torch(torch.from_numpy(audio), n_fft=n_fft, hop_length=hop, win_length=win).numpy()
    assert D.shape == ref.shape == (2, 1 + n_fft // 2, n_frames(audio.shape[-1], hop_length=hop))
    scale = np.abs(ref).max()
    # float32 FFTs of different libraries (pocketfft, MKL/pocketfft in torch) differ by rounding:
    # relative 1e-6 of the largest bin is a few ulps of the accumulated sums.
    assert np.abs(D - ref).max() < 1e-6 * scale
    assert np.abs(Dt - ref).max() < 1e-6 * scale


@pytest.mark.parametrize("n_fft,hop,win", SIZES)
def test_round_trip_numpy_and_torch(audio, n_fft, hop, win):
    n = audio.shape[-1]
    D = stft(audio, n_fft=n_fft, hop_length=hop, win_length=win)
    y = istft(D, n_fft=n_fft, hop_length=hop, win_length=win, length=n)
    yt = istft_torch(torch.from_numpy(D), n_fft=n_fft, hop_length=hop, win_length=win, length=n).numpy()
    ref = librosa.istft(D, n_fft=n_fft, hop_length=hop, win_length=win, length=n)
    # float32 overlap-add of unit-variance noise: errors of a few 1e-7 per sample.
    assert np.abs(y - audio).max() < 5e-6
    assert np.abs(yt - audio).max() < 5e-6
    assert np.abs(y - ref).max() < 5e-6


def test_float64_stays_float64(rng):
    y = rng.standard_normal(4000)
    D = stft(y, n_fft=512, hop_length=128)
    assert D.dtype == np.complex128
    assert np.abs(istft(D, n_fft=512, hop_length=128, length=4000) - y).max() < 1e-12


def test_istft_default_length_and_padding(rng):
    y = rng.standard_normal(5000).astype(np.float32)
    D = stft(y, n_fft=512, hop_length=128)
    assert istft(D, n_fft=512, hop_length=128).shape == (128 * (D.shape[-1] - 1),)
    longer = istft(D, n_fft=512, hop_length=128, length=6000)
    # The overlap-add reaches n_fft // 2 past the last frame centre (5248); zeros after that.
    assert longer.shape == (6000,) and np.all(longer[5248:] == 0)


def test_window_is_periodic_hann_centred():
    w = window(8, win_length=4)
    assert np.allclose(w, [0, 0, 0, 0.5, 1, 0.5, 0, 0])


@pytest.mark.parametrize("kwargs,match", [
    (dict(n_fft=0), "n_fft"),
    (dict(n_fft=512, hop_length=0), "hop_length"),
    (dict(n_fft=512, hop_length=600), "hop_length=600 must be <= win_length"),
    (dict(n_fft=512, win_length=1024), "win_length=1024 must be <= n_fft"),
    (dict(n_fft=512, hop_length=1.5), "hop_length"),
])
def test_bad_sizes(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        stft(np.zeros(4096, np.float32), **kwargs)


def test_istft_checks_bins():
    with pytest.raises(ParameterError, match="bins"):
        istft(np.zeros((100, 10), np.complex64), n_fft=512)
