"""Loudness matching and the offline peak limiter."""

import numpy as np

from conftest import sine, speechlike
from rtstyle.dsp.dynamics import match_loudness, peak_limit, rms

SR = 22050
CEIL = 10 ** (-1 / 20)


def test_limiter_is_transparent_below_the_ceiling():
    y = sine(SR, amp=0.5)
    assert np.array_equal(peak_limit(y, sr=SR), y)


def test_limiter_holds_the_ceiling_and_acts_locally():
    y = 0.3 * speechlike(SR, duration=1.0)
    y[11025] = 3.0  # one spike, 10 dB over full scale
    out = peak_limit(y, sr=SR, lookahead_ms=5)
    assert np.max(np.abs(out)) <= CEIL + 1e-7
    far = np.r_[0:11025 - 400, 11025 + 400:y.size]  # beyond 2 x 5 ms of the spike: untouched
    assert np.array_equal(out[far], y[far])
    # the gain moves smoothly: no sample-to-sample jump larger than the signal's own
    g = out[:11000] / np.where(np.abs(y[:11000]) > 1e-3, y[:11000], 1)
    assert np.max(np.abs(np.diff(g[np.abs(y[:11000]) > 1e-3]))) < 0.2


def test_match_loudness_per_channel():
    ref = np.stack([0.4 * speechlike(SR, seed=1), 0.1 * speechlike(SR, seed=2)])
    y = np.stack([0.05 * sine(SR), 0.05 * sine(SR, f0=300)])
    out = match_loudness(y, reference=ref, sr=SR)
    for c in range(2):
        assert abs(20 * np.log10(rms(out[c]) / rms(ref[c]))) < 0.01
    loud = match_loudness(0.01 * speechlike(SR), reference=np.ones(SR, np.float32), sr=SR)
    assert np.max(np.abs(loud)) <= CEIL + 1e-7  # matched to 0 dB RMS, so the limiter had to act
