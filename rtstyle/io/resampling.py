"""Resampling with soxr, the one resampler of rtstyle: :func:`resample` (whole signals),
:class:`Resampler` (streams, equal to the whole) and the quality presets they take."""

from __future__ import annotations

import numpy as np
import soxr

from .._validate import positive_int
from ..constants import RESAMPLE_QUALITIES
from ..errors import ParameterError

__all__ = ["resample", "Resampler", "RESAMPLE_QUALITIES", "RESAMPLE_QUALITY", "resample_quality"]

#: The default quality of every resampling: 'HQ' is 20-bit precise, fast enough for long files.
RESAMPLE_QUALITY = "HQ"


def resample_quality(quality, name: str = "quality") -> str:
    """Check a soxr quality name (case-insensitive) and return it upper-case.

    The presets trade the filter's length (its delay, and the hold-back of a stream) against
    its precision. Measured for 48000 → 22050 Hz (output Nyquist 11025 Hz):

    ========  ====================================================================
    ``VHQ``   28-bit precise, linear phase: the longest filter, the longest delay.
    ``HQ``    20-bit precise (stop band ≥ 100 dB down), linear phase: the default;
              -3 dB at ~0.95 of the output Nyquist.
    ``MQ``    16-bit precise (≥ 80 dB down), the same bandwidth as HQ; its stream holds
              back about as much as HQ's, so it does not shorten live's latency.
    ``LQ``    16-bit precise with a wide roll-off (-3 dB at ~0.8 of the output
              Nyquist: duller highs); the shortest filter of the four.
    ``QQ``    cubic interpolation, no anti-alias filter worth the name: the lowest
              delay (almost none), audible aliasing of content above the lower rate's
              Nyquist and some treble loss.
    ========  ====================================================================

    Parameters
    ----------
    quality : str
        One of :data:`RESAMPLE_QUALITIES`, in any case.
    name : str
        How the value is called in the error message (``resample_quality`` for the engine).

    Returns
    -------
    quality : str
        Upper-case, one of :data:`RESAMPLE_QUALITIES`.

    Raises
    ------
    ParameterError
        Anything else (one line naming the value and the choices).
    """
    q = quality.upper() if isinstance(quality, str) else quality
    if q not in RESAMPLE_QUALITIES:
        raise ParameterError(f"{name}={quality!r} must be one of "
                             f"{', '.join(RESAMPLE_QUALITIES)} (soxr's quality presets)")
    return q


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int,
             quality: str = RESAMPLE_QUALITY) -> np.ndarray:
    """Resample channel-first audio with soxr (the one resampler of rtstyle).

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
    orig_sr, target_sr : int > 0
    quality : str
        soxr's preset: ``'VHQ'``, ``'HQ'`` (default), ``'MQ'``, ``'LQ'`` or ``'QQ'``,
        case-insensitive; see :func:`resample_quality` for what each trades.

    Returns
    -------
    y : np.ndarray [shape=(m,) or (channels, m)], same dtype, ``m ~ n * target_sr / orig_sr``
        ``y`` itself when the rates are equal.

    Raises
    ------
    ParameterError
        A rate that is not a positive integer, or an unknown ``quality``.
    """
    orig_sr = positive_int(orig_sr, "orig_sr")
    target_sr = positive_int(target_sr, "target_sr")
    quality = resample_quality(quality)
    if orig_sr == target_sr:
        return y
    out = soxr.resample(np.asarray(y).T, orig_sr, target_sr, quality=quality).T
    return np.ascontiguousarray(out, dtype=y.dtype)


class Resampler:
    """Streaming soxr resampler (channel-first blocks), equal to :func:`resample` of the whole.

    It follows the streaming protocol (:class:`rtstyle.stream.protocol.StreamingStage`).
    soxr's stream is delay-compensated (:attr:`latency` is 0): the concatenated outputs of
    :meth:`feed` and :meth:`flush` equal the one-shot result at the same ``quality`` (tested for
    each), so a file resampled block by block is the same file. The stream holds samples back
    until its filter has seen enough input, and how many depends on ``quality``: live adds
    that hold-back to its buffer (:meth:`rtstyle.live.LiveEngine.prefill`). With equal rates it
    passes blocks through (``quality`` is checked, and has no effect).

    Parameters
    ----------
    orig_sr, target_sr : int > 0
    channels : int > 0
    quality : str
        ``'VHQ'``, ``'HQ'`` (default), ``'MQ'``, ``'LQ'`` or ``'QQ'``, case-insensitive; see
        :func:`resample_quality`. Hold-back measured with 64-sample chunks (the largest
        shortfall of output against ``input * target_sr / orig_sr`` once the stream runs,
        in samples at the output rate; soxr emits in bursts, so it swings below that):
        48000 → 22050 Hz: VHQ 1746, HQ 841, MQ 858, LQ 443, QQ 1;
        22050 → 48000 Hz: VHQ 1935, HQ 2011, MQ 2044, LQ 46, QQ 4.

    Attributes
    ----------
    latency : int
        0: output sample ``j`` is at time ``j / target_sr``, as input sample ``i`` is at
        ``i / orig_sr`` (the hold-back delays when output is returned, not where it lies).

    Raises
    ------
    ParameterError
        A rate or channel count that is not a positive integer, or an unknown ``quality``.
    """

    latency = 0

    def __init__(self, *, orig_sr: int, target_sr: int, channels: int,
                 quality: str = RESAMPLE_QUALITY):
        self.orig_sr = positive_int(orig_sr, "orig_sr")
        self.target_sr = positive_int(target_sr, "target_sr")
        self.channels = positive_int(channels, "channels")
        self.quality = resample_quality(quality)
        self._rs = None
        if self.orig_sr != self.target_sr:
            self._rs = soxr.ResampleStream(self.orig_sr, self.target_sr, self.channels,
                                           dtype="float32", quality=self.quality)

    def feed(self, x: np.ndarray) -> np.ndarray:
        """``x`` (channels, n) at ``orig_sr`` → the (channels, m) float32 ready at ``target_sr``."""
        return self._chunk(x, last=False)

    def flush(self) -> np.ndarray:
        """End the stream: its tail, (channels, m) float32; then :meth:`reset`."""
        out = self._chunk(np.zeros((self.channels, 0), np.float32), last=True)
        self.reset()
        return out

    def reset(self) -> None:
        """Forget the stream (soxr's ``clear``): the next :meth:`feed` starts a new one."""
        if self._rs is not None:
            self._rs.clear()

    def _chunk(self, x: np.ndarray, *, last: bool) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self._rs is None:
            return x
        out = self._rs.resample_chunk(np.ascontiguousarray(x.T), last=last)
        return np.ascontiguousarray(out.reshape(-1, self.channels).T)
