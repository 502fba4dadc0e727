"""Level: loudness matching and an offline look-ahead peak limiter."""

from __future__ import annotations

import numpy as np
import scipy.ndimage

from .._validate import positive_float, positive_int

__all__ = ["rms", "peak_limit", "match_loudness"]


def rms(y: np.ndarray) -> float:
    """Root-mean-square level over all channels and samples."""
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))


def peak_limit(y: np.ndarray, *, sr: int, ceiling_db: float = -1.0, lookahead_ms: float = 5.0) -> np.ndarray:
    """Keep every sample's magnitude at or below ``ceiling_db`` dBFS, transparently below it.

    The gain curve is the sample-wise gain needed, min-filtered over ±``lookahead_ms`` and then
    smoothed by a moving average of the same width: it never exceeds the needed gain (so the
    ceiling holds exactly), it is 1 wherever no peak is near, and it moves over ~``lookahead_ms``
    rather than in one sample (no click). All channels share one gain (the stereo image stays).

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
    sr : int
    ceiling_db : float
        The ceiling in dBFS.
    lookahead_ms : float
        Attack/release width.

    Returns
    -------
    y : np.ndarray, same shape and dtype
    """
    sr = positive_int(sr, "sr")
    width = max(1, int(positive_float(lookahead_ms, "lookahead_ms") * sr / 1000))
    ceiling = 10 ** (ceiling_db / 20)
    peak = np.max(np.abs(np.atleast_2d(y)), axis=0).astype(np.float64)
    if peak.size == 0 or peak.max() <= ceiling:
        return y
    need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-30))
    gain = scipy.ndimage.minimum_filter1d(need, size=2 * width + 1, mode="nearest")
    gain = scipy.ndimage.uniform_filter1d(gain, size=width, mode="nearest")
    gain = np.minimum(gain, need)  # the moving average of the min-filtered curve is <= need; rounding aside
    return (y * gain).astype(y.dtype, copy=False)


def match_loudness(y: np.ndarray, *, reference: np.ndarray, sr: int, ceiling_db: float = -1.0) -> np.ndarray:
    """Scale ``y`` to the RMS level of ``reference``, then limit its peaks at ``ceiling_db``.

    Channel by channel when both are ``(channels, n)`` with the same channels (the balance of
    the reference is kept). A silent channel on either side is left unscaled (then limited).

    Parameters
    ----------
    y, reference : np.ndarray [shape=(n,) or (channels, n)]
        Lengths may differ.
    """
    out = np.array(y, copy=True)
    pairs = zip(out, reference) if out.ndim == 2 and np.shape(reference)[:1] == out.shape[:1] else [(out, reference)]
    for chan, ref in pairs:
        level, target = rms(chan), rms(ref)
        if level > 0 and target > 0:
            chan *= target / level
    return peak_limit(out, sr=sr, ceiling_db=ceiling_db)
