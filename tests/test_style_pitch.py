"""Every bundled style keeps the pitch of what it is given: a harmonic glide comes out on the
same pitch (the issue's promise "keeps what it plays"), and it does change the timbre."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from conftest import fade

from rtstyle.models import list_styles, load_model
from rtstyle.stream import process

BUNDLED = [r["name"] for r in list_styles() if r["bundled"]]


def glide(sr: int, *, f_start=110.0, f_end=440.0, duration=3.0, n_harmonics=20) -> np.ndarray:
    """A harmonic tone gliding exponentially over two octaves (partials 1/k, below Nyquist)."""
    t = np.arange(int(sr * duration)) / sr
    k = np.log(f_end / f_start) / duration
    phase = 2 * np.pi * f_start * (np.exp(k * t) - 1) / k          # instantaneous f0 f_start e^kt
    f0 = f_start * np.exp(k * t)
    y = np.zeros_like(t)
    for h in range(1, n_harmonics + 1):
        y += np.where(h * f0 < 0.45 * sr, np.sin(h * phase) / h, 0.0)
    return fade(0.5 * y / np.max(np.abs(y)), sr).astype(np.float32)


def f0_track(y: np.ndarray, sr: int) -> np.ndarray:
    """YIN f0 (librosa), 2048-sample frames scaled to the rate (~93 ms at 22.05 kHz)."""
    n = 2048 if sr <= 24000 else 4096
    return librosa.yin(y, fmin=70, fmax=1000, sr=sr, frame_length=n, hop_length=n // 8)


@pytest.mark.parametrize("style", BUNDLED)
def test_a_style_keeps_a_glides_pitch(style):
    sr = load_model(style.split(":")[0]).sr
    # A3 to A5, a range every bundled instrument plays. Below ~160 Hz the flute and brass
    # styles take the fundamental and the first partials away (their instruments have no
    # energy there), and YIN, which takes the first deep dip of its difference function, then
    # reads the 5th partial: at 110-440 Hz they keep 55-61 % of the frames (no octave errors,
    # the rest 5x f0). CREPE on the held-out recordings still finds the pitch on 81-99 % of
    # voiced frames (README, the judges).
    y = glide(sr, f_start=220.0, f_end=880.0)
    out = process(y, sr=sr, model=style)
    f_in, f_out = f0_track(y, sr), f0_track(out, sr)
    inner = slice(len(f_in) // 10, -len(f_in) // 10)      # skip the fades at both ends
    cents = 1200 * np.log2(f_out[inner] / f_in[inner])
    within = float(np.mean(np.abs(cents) < 50))
    assert within >= 0.8, f"{style}: pitch kept on {within:.0%} of frames (need 80 %)"
    # and it is a style, not the identity: the spectrum moved (log-mel distance of 1 dB at least)
    S_in = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_mels=40))
    S_out = librosa.power_to_db(librosa.feature.melspectrogram(y=out, sr=sr, n_mels=40))
    moved = float(np.mean(np.abs(S_out.mean(axis=1) - S_in.mean(axis=1))))
    assert moved > 1.0, f"{style}: the long-term spectrum moved only {moved:.2f} dB"
