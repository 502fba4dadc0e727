"""``rtstyle latency-test``: clicks played out and captured back through a loopback, the round
trip found by matched filtering (:func:`latency_test`, :func:`click_template`,
:func:`find_clicks`)."""

from __future__ import annotations

import time

import numpy as np

from ..errors import DeviceError, ParameterError
from .core import _XRUN_BITS
from .settings import check_latency

__all__ = ["latency_test", "click_template", "find_clicks"]


class _ClickLoop:
    """Callback of the latency test: play a prepared click train, capture the input."""

    def __init__(self, play: np.ndarray, channel: int):
        self.play = play
        self.captured = np.zeros_like(play)
        self.pos = 0
        self.channel = channel
        self.xruns = 0

    def callback(self, indata, outdata, frames, flags):
        if flags & _XRUN_BITS:
            self.xruns += 1
        p, n = self.pos, self.play.size
        k = max(0, min(frames, n - p))
        if k:
            outdata[:, :k] = self.play[p:p + k]
            self.captured[p:p + k] = indata[self.channel, :k]
        if k < frames:
            outdata[:, k:] = 0.0
        self.pos = p + frames


def click_template(sr: int) -> np.ndarray:
    """A 5 ms Hann-windowed noise burst at -6 dBFS peak (fixed seed): broadband, so a matched
    filter finds it to the sample even through a band-limited cable loop."""
    n = max(16, int(0.005 * sr))
    burst = np.random.default_rng(7).standard_normal(n) * np.hanning(n)
    return (0.5 * burst / np.max(np.abs(burst))).astype(np.float32)


def find_clicks(captured: np.ndarray, starts, template: np.ndarray, window: int) -> list[int]:
    """Round-trip lags (samples) of the clicks played at ``starts``, by matched filtering."""
    from scipy.signal import correlate

    energy = float(np.dot(template, template))
    lags = []
    for s in starts:
        seg = captured[s:s + window + template.size]
        if seg.size < template.size:
            break
        c = correlate(seg, template, mode="valid", method="fft")
        k = int(np.argmax(np.abs(c)))
        peak = abs(float(c[k]))
        floor = float(np.median(np.abs(c))) + 1e-12
        if peak >= 0.05 * energy and peak >= 8 * floor:
            lags.append(k)
    return lags


def latency_test(*, input=None, output=None, sr=None, block_size: int = 256, latency="low",
                 input_channel: int = 1, output_channels=None, duration: float = 4.0,
                 interval: float = 0.5, lead: float = 0.5) -> dict:
    """Play clicks out, capture them in (a loopback cable or routing), measure the round trip.

    Returns a dict: ``sr``, ``block_size``, ``clicks``, ``detected``, ``measured_samples``
    (median), ``measured_ms``, ``jitter_samples`` (max - min), ``jitter_std_samples``,
    ``lags``, ``device_latency_samples`` ([input, output], as PortAudio reports them),
    ``computed_samples`` (their sum: the figure rtstyle adds to ``live``'s latency), ``xruns``.
    """
    from .. import _validate as v
    from ..io import audio

    v.positive_int(block_size, "block_size")
    if not 0.5 <= duration <= 600:
        raise ParameterError(f"duration={duration!r} must be 0.5..600 seconds")
    if not 0.05 <= interval <= 5:
        raise ParameterError(f"interval={interval!r} must be 0.05..5 seconds")
    choice = audio.preflight(input, output, sr=sr, input_channels=input_channel,
                             output_channels=output_channels)
    sr = choice.sr
    tpl = click_template(sr)
    n = int(duration * sr)
    step = int(interval * sr)
    starts = list(range(int(lead * sr), n - step + 1, step))
    if not starts:
        raise ParameterError(f"duration={duration} s leaves no room for a click (lead {lead} s + "
                             f"interval {interval} s)")
    play = np.zeros(n, np.float32)
    for s in starts:
        play[s:s + tpl.size] = tpl
    loop = _ClickLoop(play, input_channel - 1)
    stream = audio.DuplexStream(choice, block_size=block_size, latency=check_latency(latency),
                                callback=loop.callback)
    dev = stream.latency
    try:
        stream.start()
        t_end = time.monotonic() + duration + 5
        while loop.pos < n and time.monotonic() < t_end:
            if not stream.active:
                raise DeviceError(f"the audio stream stopped: {choice.input_name!r} / "
                                  f"{choice.output_name!r} went away")
            time.sleep(0.05)
    finally:
        stream.close()
    lags = find_clicks(loop.captured, starts, tpl, step - tpl.size)
    out = {"sr": sr, "block_size": block_size, "clicks": len(starts), "detected": len(lags),
           "lags": lags, "measured_samples": None, "measured_ms": None, "jitter_samples": None,
           "jitter_std_samples": None, "device_latency_samples": list(dev),
           "computed_samples": int(sum(dev)), "computed_ms": 1000.0 * sum(dev) / sr,
           "xruns": loop.xruns, "input_device": choice.input_name,
           "output_device": choice.output_name}
    if lags:
        a = np.asarray(lags, float)
        med = int(round(float(np.median(a))))
        out.update(measured_samples=med, measured_ms=1000.0 * med / sr,
                   jitter_samples=int(a.max() - a.min()), jitter_std_samples=float(a.std()))
    return out
