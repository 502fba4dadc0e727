"""Streaming analysis: audio samples in, centred STFT frames out (librosa's conventions).

:class:`StreamingSTFT` keeps, per channel, the samples not yet consumed by a complete frame.
Frame ``t`` is centred on input sample ``t * hop_length`` and windowed by the periodic Hann of
:func:`rtstyle.dsp.stft.window`; before the first sample the signal is zero (the centred STFT's
``n_fft // 2`` of padding, pre-filled at :meth:`reset`). Frame ``t`` is therefore complete, and
returned, once input sample ``t * hop_length + n_fft // 2 - 1`` has arrived: the analysis delay,
:attr:`StreamingSTFT.latency`, is ``n_fft // 2`` samples. Fed with ``y`` and then flushed (which
feeds ``n_fft // 2`` zeros), the frames equal ``rtstyle.dsp.stft.stft(y)``
(``1 + n // hop_length`` of them), whatever the block sizes. It follows the streaming protocol
(:class:`rtstyle.stream.protocol.StreamingStage`), with frames out.
"""

from __future__ import annotations

import numpy as np

from ..dsp.stft import window

__all__ = ["StreamingSTFT"]


class StreamingSTFT:
    """Centred, windowed rfft frames of a multi-channel sample stream.

    Parameters
    ----------
    n_fft, hop_length : int
        Already validated by the caller (``hop_length`` divides ``n_fft``).
    channels : int
    """

    def __init__(self, *, n_fft: int, hop_length: int, channels: int):
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.channels = channels
        self.bins = 1 + n_fft // 2
        self._w = window(n_fft, dtype=np.float64)
        self.reset()

    @property
    def latency(self) -> int:
        """Samples from a frame's centre to the arrival that completes it: ``n_fft // 2``."""
        return self.n_fft // 2

    def reset(self) -> None:
        """Clear the stream: the pending samples are the centred STFT's ``n_fft // 2`` zeros."""
        self._buf = np.zeros((self.channels, self.n_fft), np.float64)
        self._fill = self.n_fft // 2

    def feed(self, x: np.ndarray) -> np.ndarray:
        """Take samples ``x`` of shape ``(channels, n)`` (finite); return the complete frames.

        Returns
        -------
        D : np.ndarray [shape=(channels, 1 + n_fft // 2, k), dtype=complex128]
        """
        N, a = self.n_fft, self.hop_length
        total = self._fill + x.shape[1]
        k = 0 if total < N else (total - N) // a + 1
        if k == 0:
            self._buf[:, self._fill:total] = x
            self._fill = total
            return np.zeros((self.channels, self.bins, 0), np.complex128)
        data = np.concatenate([self._buf[:, :self._fill], x.astype(np.float64)], axis=1)
        frames = np.lib.stride_tricks.sliding_window_view(data, N, axis=1)[:, ::a][:, :k]
        D = np.fft.rfft(frames * self._w, axis=-1)           # (channels, k, bins)
        rest = data[:, k * a:]
        self._buf[:, :rest.shape[1]] = rest
        self._fill = rest.shape[1]
        return np.ascontiguousarray(D.transpose(0, 2, 1))

    def flush(self) -> np.ndarray:
        """End the stream: feed the centred STFT's ``n_fft // 2`` zeros of padding; then reset.

        Returns
        -------
        D : np.ndarray [shape=(channels, 1 + n_fft // 2, k), dtype=complex128]
            The frames left: with those :meth:`feed` returned, ``1 + n // hop_length`` frames for
            ``n`` samples fed since the last reset (as ``stft`` of ``n`` samples: one for none).
        """
        D = self.feed(np.zeros((self.channels, self.n_fft // 2)))
        self.reset()
        return D
