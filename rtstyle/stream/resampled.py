"""The resampled engine: outer rate → the models' rate → :class:`~rtstyle.stream.Streamer` →
outer rate. The one chain ``render`` (:class:`rtstyle.render.RenderSession`) and ``live``
(:class:`rtstyle.live.LiveEngine`) run, so ``live`` equals ``render --keep-latency``."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..io.resampling import RESAMPLE_QUALITY, Resampler, resample_quality

__all__ = ["ResampledStreamer"]


class ResampledStreamer:
    """Resample → ``streamer`` → resample, following the streaming protocol
    (:class:`rtstyle.stream.protocol.StreamingStage`; :attr:`latency` at the output rate).

    Parameters
    ----------
    streamer : Streamer
        Runs at ``streamer.sr`` (the models' rate).
    sr : int > 0
        The input's rate.
    sr_out : int > 0, optional
        The output's rate; default ``sr``.
    quality : {'VHQ', 'HQ', 'MQ', 'LQ', 'QQ'}
        soxr's preset for both resamplers (see :func:`rtstyle.io.resampling.resample_quality`);
        no effect where a rate equals the models'.
    inner : callable, optional
        ``inner(x, last) -> y``: what runs at the models' rate, ``x`` (channels, n) in, the
        output ready out; with ``last`` it must also flush the Streamer. Default: the
        Streamer's ``feed`` (then ``flush``). ``render`` passes one that splits blocks at
        control events and measures the output on its way.
    """

    def __init__(self, streamer, *, sr: int, sr_out: int | None = None,
                 quality: str = RESAMPLE_QUALITY,
                 inner: Callable[[np.ndarray, bool], np.ndarray] | None = None):
        self.streamer = streamer
        self.sr = int(sr)
        self.sr_out = self.sr if sr_out is None else int(sr_out)
        self.model_sr = int(streamer.sr)
        self.quality = resample_quality(quality, "resample_quality")
        self.channels = int(streamer.channels)
        self._inner = self._streamer_inner if inner is None else inner
        self._rs_in = Resampler(orig_sr=self.sr, target_sr=self.model_sr,
                                channels=self.channels, quality=self.quality)
        self._rs_out = Resampler(orig_sr=self.model_sr, target_sr=self.sr_out,
                                 channels=self.channels, quality=self.quality)

    def _streamer_inner(self, x: np.ndarray, last: bool) -> np.ndarray:
        parts = [self.streamer.feed(x)] if x.shape[-1] else []
        if last:
            parts.append(self.streamer.flush())
        if not parts:
            return np.zeros((self.channels, 0), np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    @property
    def latency(self) -> int:
        """The Streamer's latency at the output rate (soxr's streams add none)."""
        return int(round(self.streamer.latency * self.sr_out / self.model_sr))

    def feed(self, x: np.ndarray) -> np.ndarray:
        """``(channels, n)`` at ``sr`` → the ``(channels, m)`` output ready at ``sr_out``."""
        return self._rs_out.feed(self._inner(self._rs_in.feed(x), False))

    def flush(self) -> np.ndarray:
        """The tail (the Streamer's latency, the resamplers' hold-back). The resamplers and
        the Streamer start a new stream after it (the Streamer keeps its counters, e.g.
        ``limited_samples``, until :meth:`reset`)."""
        y = self._inner(self._rs_in.flush(), True)
        return np.concatenate([self._rs_out.feed(y), self._rs_out.flush()], axis=1)

    def reset(self) -> None:
        """Fresh stream state: the Streamer (its initial settings) and both resamplers."""
        self.streamer.reset()
        self._rs_in.reset()
        self._rs_out.reset()
