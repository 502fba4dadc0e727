"""The input and output rings of ``rtstyle live``: :class:`SpscRing`, lock-free, on an absolute
timeline of samples (the callback writes one, the worker the other)."""

from __future__ import annotations

import numpy as np

__all__ = ["SpscRing"]


class SpscRing:
    """A single-producer single-consumer ring of float32 samples on an absolute timeline.

    Positions count samples since the start of the stream. The producer owns :attr:`written`
    (positions ``< written`` are published) and :attr:`start` (positions ``< start`` are not
    valid: a gap); the consumer owns :attr:`read_pos`. Each side only reads the other's
    index, and a plain Python int assignment is atomic, so no lock is needed: data is copied
    before the index that publishes it moves. Nothing here allocates an array.

    Parameters
    ----------
    capacity : int > 0
        Samples held (per channel).
    channels : int > 0
    """

    def __init__(self, capacity: int, channels: int = 1):
        self.capacity = int(capacity)
        self.channels = int(channels)
        self.buf = np.zeros((self.channels, self.capacity), np.float32)
        self.written = 0
        self.start = 0
        self.read_pos = 0

    # -- copying (with the wrap-around) ----------------------------------------------------
    def _put(self, pos, x, gain=None):
        cap, n = self.capacity, x.shape[-1]
        i = pos % cap
        k = min(n, cap - i)
        for dst, src in ((self.buf[:, i:i + k], x[:, :k]), (self.buf[:, :n - k], x[:, k:])):
            if src.shape[-1]:
                if gain is None:
                    np.copyto(dst, src)
                else:
                    np.multiply(src, gain, out=dst)

    def _get(self, pos, out):
        cap, n = self.capacity, out.shape[-1]
        i = pos % cap
        k = min(n, cap - i)
        np.copyto(out[:, :k], self.buf[:, i:i + k])
        if k < n:
            np.copyto(out[:, k:], self.buf[:, :n - k])

    def _2d(self, a):
        return a if a.ndim == 2 else a.reshape(1, -1)

    # -- producer ---------------------------------------------------------------------------
    def write(self, x, gain=None) -> None:
        """Append ``x`` ((n,) or (channels, n)), times ``gain`` if given, at :attr:`written`.

        Never blocks: the oldest samples are overwritten (a consumer that fell ``capacity``
        behind sees that in :meth:`read`).
        """
        x = self._2d(x)
        n = x.shape[-1]
        if n > self.capacity:                 # only the newest `capacity` samples can be kept
            self._put(self.written + n - self.capacity, x[:, n - self.capacity:], gain)
        else:
            self._put(self.written, x, gain)
        self.written += n

    def write_at(self, pos: int, x) -> int:
        """Publish ``x`` at positions ``pos .. pos + n``; returns how many samples were dropped.

        Samples the consumer has already passed are dropped (stale); a jump forward leaves a
        gap the consumer sees as missing; samples that would overrun unread data are dropped.
        """
        x = self._2d(x)
        n = x.shape[-1]
        w, r = self.written, self.read_pos
        end = pos + n
        if end <= max(w, r):
            return n
        lo = max(pos, w, r)
        if lo > w:
            self.start = lo                   # before publishing: [w, lo) is not valid
        hi = min(end, r + self.capacity)
        if hi > lo:
            self._put(lo, x[:, lo - pos:hi - pos])
        self.written = max(hi, lo)
        return n - max(hi - lo, 0)

    def peek(self, pos: int, out) -> None:
        """Copy published positions ``pos ..`` into ``out`` (the producer's own history; zeros
        before position 0)."""
        out = self._2d(out)
        n = out.shape[-1]
        if pos < 0:
            k = min(-pos, n)
            out[:, :k] = 0.0
            if k == n:
                return
            out, pos = out[:, k:], 0
        self._get(pos, out)

    # -- consumer ---------------------------------------------------------------------------
    def available(self) -> int:
        return self.written - self.read_pos

    def read_into(self, out) -> tuple[int, int]:
        """Consume the next ``n`` positions into ``out`` ((n,) or (channels, n)).

        Returns ``(a, b)``: ``out[..., a:b]`` holds published data; the rest of ``out`` is left
        as it was (the caller fills it). :attr:`read_pos` advances by ``n`` in any case.
        """
        out = self._2d(out)
        n, r = out.shape[-1], self.read_pos
        w = self.written                      # read `written` before `start` (see write_at)
        s = self.start
        a = min(max(s, r), r + n) - r
        b = min(w, r + n) - r
        if b > a:
            self._get(r + a, out[:, a:b])
        else:
            a = b = 0
        self.read_pos = r + n
        return a, b

    def read(self, n: int) -> tuple[np.ndarray, bool]:
        """Consume ``n`` positions into a new array; ``lost`` is True if the producer may have
        overwritten some of them meanwhile (the consumer fell ``capacity`` behind)."""
        out = np.empty((self.channels, n), np.float32)
        r = self.read_pos
        self._get(r, out)
        lost = self.written - self.capacity > r
        self.read_pos = r + n
        return out, lost

    def skip_to(self, pos: int) -> None:
        self.read_pos = pos
