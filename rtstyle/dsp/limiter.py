"""Streaming look-ahead peak limiter: the last stage of every output (ceiling −0.1 dBFS).

Per sample ``n`` the gain needed is ``need[n] = min(1, ceiling / max_c |x[c, n]|)`` (all channels
share one gain, so the stereo image stays). The applied gain, for the sample delayed by the
look-ahead ``L``, is

1. ``h[n]``: the minimum of ``need`` over the last ``L + 1`` samples (the peak is seen coming);
2. ``box[n]``: the mean of ``h`` over the last ``L`` samples (a linear-ish attack over ``L``
   samples instead of a step; every term is ``<= need[n - L]``, so the mean is too);
3. ``g[n] = min(box[n], g[n - 1] + 1 / release, need[n - L])``: a linear release back to 1 over
   ``release_ms``, never above the gain the delayed sample needs.

So the ceiling holds exactly, and below it the limiter is bit-transparent (every gain is exactly
1 and the output is the input delayed by ``L`` samples). The per-sample recursion is a numba
kernel with its state in preallocated rings, so any block split gives the same output.
"""

from __future__ import annotations

import numba
import numpy as np

from .._validate import positive_float, positive_int
from ..config import LIMITER_LOOKAHEAD_MS
from ..errors import ParameterError

__all__ = ["StreamingLimiter", "CEILING_DBFS"]

#: Output ceiling of every output stage (DESIGN.md, Units): the Streamer's
#: :class:`~rtstyle.stream.mixer.OutputStage` builds its limiter with it.
CEILING_DBFS = -0.1


@numba.njit(cache=True, nogil=True)
def _limit(x, out, ceiling, step, ring_x, ring_need, ring_h, state):
    """Limit ``x`` (channels, n) into ``out``; rings and ``state`` = [pos, g, limited] persist."""
    C, n = x.shape
    L = ring_h.shape[0]
    W = ring_need.shape[0]          # L + 1
    pos = np.int64(state[0])
    g = state[1]
    limited = np.int64(state[2])
    for i in range(n):
        peak = 0.0
        for c in range(C):
            v = abs(x[c, i])
            if v > peak:
                peak = v
        need = 1.0 if peak <= ceiling else ceiling / peak
        ring_need[pos % W] = need
        h = 1.0
        for j in range(W):
            if ring_need[j] < h:
                h = ring_need[j]
        ring_h[pos % L] = h
        total = 0.0
        for j in range(L):
            total += ring_h[j]
        box = total / L
        oldest = ring_need[(pos + 1) % W]     # need of the sample leaving the delay now
        g = min(box, g + step, oldest, 1.0)
        if g < 1.0:
            limited += 1
        k = pos % L
        for c in range(C):
            out[c, i] = ring_x[c, k] * g
            ring_x[c, k] = x[c, i]
        pos += 1
    state[0] = pos
    state[1] = g
    state[2] = limited


class StreamingLimiter:
    """Look-ahead peak limiter with the streaming protocol (``latency`` = look-ahead samples).

    Parameters
    ----------
    sr : int > 0
    channels : int > 0
    ceiling_db : float <= 0
        No output sample exceeds ``10 ** (ceiling_db / 20)`` in magnitude.
    lookahead_ms : float > 0
        Look-ahead (the attack time); the latency is ``max(1, round(lookahead_ms * sr / 1000))``.
    release_ms : float > 0
        Time for the gain to return from 0 to 1 (linear).

    Attributes
    ----------
    limited_samples : int
        Output samples that had a gain below 1 since the last :meth:`reset`.
    """

    def __init__(self, *, sr: int, channels: int = 1, ceiling_db: float = CEILING_DBFS,
                 lookahead_ms: float = LIMITER_LOOKAHEAD_MS, release_ms: float = 50.0):
        self.sr = positive_int(sr, "sr")
        self.channels = positive_int(channels, "channels")
        if not np.isfinite(ceiling_db) or ceiling_db > 0:
            raise ParameterError(f"ceiling_db={ceiling_db!r} must be a finite number <= 0")
        self.ceiling_db = float(ceiling_db)
        # The largest float32 at or below the ceiling: float32 output never rounds above it.
        c = np.float32(10.0 ** (self.ceiling_db / 20.0))
        if float(c) > 10.0 ** (self.ceiling_db / 20.0):
            c = np.nextafter(c, np.float32(0))
        self._ceiling = float(c)
        self.latency = max(1, int(round(positive_float(lookahead_ms, "lookahead_ms") * sr / 1000)))
        release = max(1.0, positive_float(release_ms, "release_ms") * sr / 1000)
        self._step = 1.0 / release
        self._state = np.zeros(3)
        self.reset()

    def reset(self, *, keep_count: bool = False) -> None:
        """Clear the delay line and the gain (allocates the rings); the counter unless told."""
        limited = self._state[2] if keep_count else 0.0
        L, C = self.latency, self.channels
        self._ring_x = np.zeros((C, L), np.float64)
        self._ring_need = np.ones(L + 1, np.float64)
        self._ring_h = np.ones(L, np.float64)
        self._state = np.array([0.0, 1.0, limited])

    @property
    def limited_samples(self) -> int:
        return int(self._state[2])

    def feed(self, x: np.ndarray) -> np.ndarray:
        """``x`` (channels, n) float → (channels, n) float32, delayed by :attr:`latency`."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.channels:
            raise ParameterError(f"x.shape={x.shape} must be (channels={self.channels}, n)")
        out = np.empty(x.shape, np.float64)
        _limit(x, out, self._ceiling, self._step, self._ring_x, self._ring_need, self._ring_h,
               self._state)
        return out.astype(np.float32)

    def flush(self) -> np.ndarray:
        """The last :attr:`latency` samples (the delay line pushed out by silence); then reset
        (the counter is kept)."""
        out = self.feed(np.zeros((self.channels, self.latency)))
        self.reset(keep_count=True)
        return out
