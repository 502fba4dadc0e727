"""The output stage of every stream: wet/dry mix, bypass, output gain, then the limiter.

``out = limiter(gain · ((1 − bypass) · (mix · wet + (1 − mix) · dry) + bypass · dry))`` where
``dry`` is the input delayed by the engine latency (so it lines up with ``wet`` sample for
sample), ``mix`` is the wet share (0..1, DESIGN.md), ``gain`` comes from ``gain_db`` (−inf is
silence) and ``bypass`` is 0 or 1. Every change glides linearly over ``smooth_ms``
(:data:`GLIDE_MS`), so a control never clicks. The limiter's ceiling is ``ceiling_db``
(the Streamer passes :data:`~rtstyle.stream.CEILING_DBFS`). A change made while the input count is ``n`` takes effect at output
sample ``n + dry_delay``: control acts on the input's timeline, and what the listener hears
changes one engine latency later (DESIGN.md, Switching and morphing).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..dsp.limiter import CEILING_DBFS, StreamingLimiter
from ..errors import ParameterError

__all__ = ["OutputStage", "MIX_PARAMS", "GLIDE_MS"]

#: Parameters of the output stage with their defaults.
MIX_PARAMS = {"mix": 1.0, "gain_db": 0.0, "bypass": False}
#: Glide of a continuous control, ms: the output stage's (per sample) and the style bank's
#: ``strength`` / ``morph`` (rounded to whole hops).
GLIDE_MS = 20.0


def _check_param(name: str, value):
    if name not in MIX_PARAMS:
        raise ParameterError(f"unknown output parameter {name!r}; expected one of {sorted(MIX_PARAMS)}")
    if name == "bypass":
        if not isinstance(value, (bool, np.bool_)) and value not in (0, 1):
            raise ParameterError(f"bypass={value!r} must be True or False")
        return float(bool(value))
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ParameterError(f"{name}={value!r} must be a number")
    value = float(value)
    if name == "mix" and not 0.0 <= value <= 1.0:
        raise ParameterError(f"mix={value!r} must lie in 0..1 (the wet share)")
    if name == "gain_db":
        if value > 24.0:
            raise ParameterError(f"gain_db={value!r} must be at most +24 dB")
        return 0.0 if value == -math.inf else 10.0 ** (value / 20.0)
    return value


class OutputStage:
    """Mixer and limiter after the engine (streaming; ``latency`` = the limiter's look-ahead).

    Parameters
    ----------
    sr : int
    channels : int
    dry_delay : int >= 0
        Samples by which the dry (input) path is delayed to meet the wet path.
    smooth_ms : float
        Glide time of every parameter change.
    ceiling_db : float <= 0
        The limiter's ceiling.
    **params
        Initial ``mix``, ``gain_db``, ``bypass`` (see :data:`MIX_PARAMS`).
    """

    def __init__(self, *, sr: int, channels: int, dry_delay: int, smooth_ms: float = GLIDE_MS,
                 ceiling_db: float = CEILING_DBFS, **params):
        self.sr, self.channels, self.dry_delay = sr, channels, dry_delay
        self._limiter = StreamingLimiter(sr=sr, channels=channels, ceiling_db=ceiling_db)
        self._smooth = max(1, int(round(smooth_ms * sr / 1000)))
        self._initial = {k: _check_param(k, params.get(k, v)) for k, v in MIX_PARAMS.items()}
        for k in params:
            _check_param(k, params[k])
        self.reset()

    @property
    def latency(self) -> int:
        return self._limiter.latency

    @property
    def limited_samples(self) -> int:
        return self._limiter.limited_samples

    def reset(self, *, keep_count: bool = False) -> None:
        """Clear the delay lines and glides; parameters return to their initial values."""
        self._limiter.reset(keep_count=keep_count)
        self._dry = np.zeros((self.channels, self.dry_delay), np.float64)
        self._value = dict(self._initial)        # value at the current output sample
        self._target = dict(self._initial)
        self._rate = dict.fromkeys(self._initial, 0.0)
        self._events: list[tuple[int, str, float]] = []
        self._n_in = 0
        self._n_out = 0

    def set(self, name: str, value) -> None:
        """Change ``mix``, ``gain_db`` or ``bypass`` at the current input position."""
        self._events.append((self._n_in + self.dry_delay, name, _check_param(name, value)))

    def push_dry(self, x: np.ndarray) -> None:
        """Append input samples (channels, n) to the dry delay line."""
        self._dry = np.concatenate([self._dry, x], axis=1)
        self._n_in += x.shape[1]

    def feed(self, wet: np.ndarray) -> np.ndarray:
        """Mix ``wet`` (channels, m) with the next ``m`` dry samples; limit; float32 out."""
        m = wet.shape[1]
        dry, self._dry = self._dry[:, :m], self._dry[:, m:]
        if dry.shape[1] < m:                     # the stream's tail: the input ended
            dry = np.pad(dry, ((0, 0), (0, m - dry.shape[1])))
        return self._limiter.feed(self._mix(wet, dry))

    def flush(self) -> np.ndarray:
        """The limiter's look-ahead tail (silence pushed through); then reset (count kept)."""
        tail = self._limiter.flush()
        self.reset(keep_count=True)
        return tail

    # ------------------------------------------------------------------ internals
    def _mix(self, wet, dry):
        m = wet.shape[1]
        curves = {k: np.empty(m) for k in self._value}
        pos = 0
        while pos < m:
            due = [e for e in self._events if e[0] <= self._n_out + pos]
            for e in due:                         # events that start now
                self._events.remove(e)
                _, k, v = e
                self._target[k] = v
                self._rate[k] = (v - self._value[k]) / self._smooth
            nxt = min([e[0] - self._n_out for e in self._events] + [m])
            n = max(nxt - pos, 1) if nxt > pos else 1
            n = min(n, m - pos)
            for k, c in curves.items():
                c[pos:pos + n] = self._glide(k, n)
            pos += n
        self._n_out += m
        wet_share = curves["mix"] * (1.0 - curves["bypass"])
        return curves["gain_db"] * (wet_share * wet + (1.0 - wet_share) * dry)

    def _glide(self, k, n):
        v, t, r = self._value[k], self._target[k], self._rate[k]
        if r == 0.0 or v == t:
            self._value[k] = t
            return np.full(n, t)
        ramp = v + r * np.arange(1, n + 1)
        ramp = np.minimum(ramp, t) if r > 0 else np.maximum(ramp, t)
        self._value[k] = float(ramp[-1])
        if self._value[k] == t:
            self._rate[k] = 0.0
        return ramp
