"""Shared synthetic signals (one place, fixed seeds) and small helpers for the test suite."""

from __future__ import annotations

import numpy as np
import pytest

SR = 22050


def fade(y: np.ndarray, sr: int, ms: float = 10.0) -> np.ndarray:
    """Raised-cosine fade in and out, so synthetic signals carry no onset click."""
    n = min(int(sr * ms / 1000), y.shape[-1] // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))
        y = y.copy()
        y[..., :n] *= ramp
        y[..., -n:] *= ramp[::-1]
    return y


def sine(sr: int = SR, f0: float = 440.0, duration: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * duration)) / sr
    return fade(amp * np.sin(2 * np.pi * f0 * t), sr).astype(np.float32)


def chirp(sr: int = SR, fmin: float = 100.0, fmax: float = 4000.0, duration: float = 1.0,
          amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * duration)) / sr
    k = np.log(fmax / fmin) / duration
    phase = 2 * np.pi * fmin * (np.exp(k * t) - 1) / k
    return fade(amp * np.sin(phase), sr).astype(np.float32)


def harmonic(sr: int = SR, f0: float = 220.0, duration: float = 1.0, n_harmonics: int = 12,
             rolloff: float = 1.0, amp: float = 0.5) -> np.ndarray:
    """A harmonic tone with partial amplitudes ``1 / k**rolloff`` (an organ/brass-like timbre)."""
    t = np.arange(int(sr * duration)) / sr
    y = np.zeros_like(t)
    for k in range(1, n_harmonics + 1):
        if k * f0 < sr / 2:
            y += np.sin(2 * np.pi * k * f0 * t) / k**rolloff
    y *= amp / np.max(np.abs(y))
    return fade(y, sr).astype(np.float32)


def noise(sr: int = SR, duration: float = 1.0, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return fade(amp * rng.standard_normal(int(sr * duration)), sr).astype(np.float32)


def vowel(sr: int = SR, f0: float = 140.0, formants=(700.0, 1200.0, 2600.0), duration: float = 1.0,
          amp: float = 0.5) -> np.ndarray:
    """A formant 'vowel': a glottal-like pulse train shaped by resonances, with a slight vibrato."""
    n = int(sr * duration)
    t = np.arange(n) / sr
    f = f0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
    y = np.zeros(n)
    for k in range(1, int((sr / 2) // (f0 * 1.05))):
        fk = k * f0
        gain = sum(1.0 / (1 + ((fk - fm) / (0.08 * fm + 60)) ** 2) for fm in formants)
        y += gain / k**0.5 * np.sin(2 * np.pi * k * np.cumsum(f) / sr)
    y *= amp / np.max(np.abs(y))
    return fade(y, sr).astype(np.float32)


def speechlike(sr: int = SR, duration: float = 2.0, seed: int = 0) -> np.ndarray:
    """Alternating vowels and noise bursts ('syllables'), a stand-in for speech in tests."""
    rng = np.random.default_rng(seed)
    vowels = [(700, 1200, 2600), (300, 2300, 3000), (400, 800, 2600), (500, 1700, 2500)]
    parts, total = [], 0
    while total < int(sr * duration):
        if rng.random() < 0.25:
            part = noise(sr, duration=0.06, amp=0.15, seed=int(rng.integers(1 << 30)))
        else:
            part = vowel(sr, f0=float(rng.uniform(110, 180)), formants=vowels[rng.integers(4)],
                         duration=float(rng.uniform(0.12, 0.3)))
        parts.append(part)
        parts.append(np.zeros(int(sr * rng.uniform(0.01, 0.05)), np.float32))
        total += sum(p.size for p in parts[-2:])
    return np.concatenate(parts)[: int(sr * duration)].astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(seed=440)


@pytest.fixture
def signals():
    """The synthetic-signal helpers, for tests that want several of them."""
    import types

    return types.SimpleNamespace(sine=sine, chirp=chirp, harmonic=harmonic, noise=noise,
                                 vowel=vowel, speechlike=speechlike, fade=fade, SR=SR)


#: Tiny models for tests (test_models, test_stream_styles): a 64-point STFT at 16 kHz.
MODEL_N_FFT, MODEL_HOP, MODEL_SR = 64, 16, 16000
MODEL_BINS = 1 + MODEL_N_FFT // 2


def tiny_net(n_styles=1, lookahead=0, seed=0):
    """A small TransformNet with random (not identity) weights."""
    import torch

    from rtstyle.config import TransformConfig
    from rtstyle.nn.transform import TransformNet

    torch.manual_seed(seed)
    net = TransformNet(TransformConfig(bins=MODEL_BINS, hidden=8, layers=2, n_styles=n_styles,
                                       embed_dim=4, lookahead=lookahead))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.2)
    return net.eval()


def model_card(name, styles=("bright",), **over):
    """A complete model card for :func:`tiny_net` models."""
    from rtstyle.config import EncoderConfig, FeatureConfig

    c = {
        "name": name,
        "styles": [{"name": s, "references": [f"{s}.flac"]} for s in styles],
        "sr": MODEL_SR,
        "stft": {"n_fft": MODEL_N_FFT, "hop_length": MODEL_HOP},
        "features": FeatureConfig(kind="mel", n_mels=16, n_mfcc=8).to_dict(),
        "encoder": EncoderConfig(n_filters=32, kernel_size=3).to_dict(),
        "defaults": {"lookahead": 1, "phase_init": "input"},
        "training": {"corpus": "synthetic", "steps": 3},
        "quality": {"style_loss": 0.5},
        "licence": "CC0 (synthetic test signals)",
    }
    c.update(over)
    return c


def save_tiny_model(folder, name="m", styles=("bright",), lookahead=0, **over):
    """Save a tiny model as ``folder/name``; returns (net, path)."""
    from rtstyle.models import save_model

    net = tiny_net(n_styles=len(styles), lookahead=lookahead)
    path = save_model(net, model_card(name, styles, **over), folder / name)
    return net, path
