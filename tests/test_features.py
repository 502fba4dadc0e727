"""The three feature kinds, their inverses, numpy/torch agreement."""

import numpy as np
import pytest
import torch

from conftest import harmonic, speechlike
from rtstyle.config import FeatureConfig, StftConfig
from rtstyle.dsp.features import features, features_to_magnitude, mel_basis
from rtstyle.dsp.stft import stft
from rtstyle.errors import ParameterError

STFT = StftConfig(sr=22050, n_fft=1024, hop_length=256)


@pytest.fixture(scope="module")
def S():
    y = np.concatenate([speechlike(duration=1.5), harmonic(duration=1.0, f0=196)])
    return np.abs(stft(y, n_fft=1024, hop_length=256))


def lsd(a, b):
    """Log-spectral distance in the log1p domain (RMS)."""
    return float(np.sqrt(np.mean((np.log1p(a) - np.log1p(b)) ** 2)))


@pytest.mark.parametrize("kind,channels", [("stft", 513), ("mel", 128), ("mfcc", 40)])
def test_shapes(S, kind, channels):
    X = features(S, stft=STFT, features=FeatureConfig(kind=kind))
    assert X.shape == (channels, S.shape[-1])
    back = features_to_magnitude(X, stft=STFT, features=FeatureConfig(kind=kind))
    assert back.shape == S.shape and (back >= 0).all()


def test_stft_feature_round_trip_is_exact(S):
    cfg = FeatureConfig(kind="stft")
    back = features_to_magnitude(features(S, stft=STFT, features=cfg), stft=STFT, features=cfg)
    assert np.allclose(back, S, rtol=1e-5, atol=1e-5)


def test_mel_inverse_keeps_the_mel_and_the_spectral_envelope(S):
    cfg = FeatureConfig(kind="mel")
    X = features(S, stft=STFT, features=cfg)
    for method in ("pinv", "nnls"):
        back = features_to_magnitude(X, stft=STFT, features=cfg, method=method)
        # 128 mel bands cannot hold 513 bins: the inverse is an estimate. Its log-spectral
        # distance to the truth stays well under the spread of log1p(S) itself (~1.5 here),
        # and re-filtering it gives back the mel features closely (the clip at 0 costs a little).
        assert lsd(back, S) < 0.5 * np.std(np.log1p(S))
        Xb = features(back, stft=STFT, features=cfg)
        assert np.sqrt(np.mean((Xb - X) ** 2)) < 0.1 * np.std(X)


def test_mfcc_with_all_coefficients_inverts_like_mel(S):
    mel = FeatureConfig(kind="mel", n_mels=64)
    full = FeatureConfig(kind="mfcc", n_mels=64, n_mfcc=64)
    a = features_to_magnitude(features(S, stft=STFT, features=mel), stft=STFT, features=mel)
    b = features_to_magnitude(features(S, stft=STFT, features=full), stft=STFT, features=full)
    assert np.allclose(a, b, rtol=1e-4, atol=1e-3)  # the DCT round trip in float32


def test_fewer_mfcc_lose_detail(S):
    def err(n):
        cfg = FeatureConfig(kind="mfcc", n_mfcc=n)
        return lsd(features_to_magnitude(features(S, stft=STFT, features=cfg), stft=STFT, features=cfg), S)

    assert err(13) > err(40) > err(128)


@pytest.mark.parametrize("kind", ["stft", "mel", "mfcc"])
def test_torch_equals_numpy_and_is_differentiable(S, kind):
    cfg = FeatureConfig(kind=kind)
    X = features(S, stft=STFT, features=cfg)
    St = torch.tensor(S, requires_grad=True)
    Xt = features(St, stft=STFT, features=cfg)
    assert np.allclose(Xt.detach().numpy(), X, rtol=1e-5, atol=1e-5)
    Xt.sum().backward()
    assert torch.isfinite(St.grad).all() and St.grad.abs().sum() > 0
    back = features_to_magnitude(torch.tensor(X), stft=STFT, features=cfg)
    assert np.allclose(back.numpy(), features_to_magnitude(X, stft=STFT, features=cfg, method="pinv"),
                       rtol=1e-4, atol=1e-4)


def test_mel_basis_is_unnormalised_triangles():
    M = mel_basis(stft=STFT, features=FeatureConfig(kind="mel"))
    assert M.shape == (128, 513)
    assert np.all(M.max(axis=1) <= 1 + 1e-9) and np.all(M.max(axis=1) > 0.3)


def test_errors(S):
    with pytest.raises(ParameterError, match="features='chroma'"):
        FeatureConfig(kind="chroma")
    with pytest.raises(ParameterError, match="n_mfcc=200 must be <= n_mels=128"):
        FeatureConfig(kind="mfcc", n_mfcc=200)
    with pytest.raises(ParameterError, match="bins"):
        features(S[:100], stft=STFT, features=FeatureConfig())
    with pytest.raises(ParameterError, match="channels"):
        features_to_magnitude(np.zeros((7, 3)), stft=STFT, features=FeatureConfig())
    with pytest.raises(ParameterError, match="n_mels=512 is too many"):
        features(S, stft=StftConfig(sr=22050, n_fft=1024, hop_length=256),
                 features=FeatureConfig(n_mels=512))
    with pytest.raises(ParameterError, match="method"):
        features_to_magnitude(np.zeros((128, 3)), stft=STFT, features=FeatureConfig(), method="magic")
