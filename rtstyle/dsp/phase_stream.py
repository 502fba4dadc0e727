"""Streaming phase reconstruction: RTISI-LA with fast Griffin-Lim momentum, frames in, audio out.

:class:`StreamingPhase` turns target STFT magnitudes, arriving a few frames at a time, into audio
(Zhu, Beauregard & Wyse, "Real-time iterative spectrum inversion with look-ahead", ICME 2006,
with the inertial step of Perraudin et al. 2013 as in ``librosa.griffinlim``). A sliding block
holds the newest frames; every new frame gets an initial phase and then ``n_iter`` projections
refine the whole block against the fixed overlap of the frames already committed; the oldest
frame of the block is then committed and the samples no later frame can change are returned.

Conventions are those of :mod:`rtstyle.dsp.stft` (librosa's): periodic Hann window of
``n_fft``, centred frames (frame ``t`` is centred on input sample ``t * hop_length``), overlap-add
normalised by the summed squared window of the frames that exist. Before the first frame's
centre the signal is taken as zero (the centred STFT's padding), as offline Griffin-Lim does.

Latency (samples): ``latency = n_fft // 2 + lookahead * hop_length``. Output sample ``j`` (counted
from the first sample the object ever returned, across ``feed`` and ``flush``) belongs to
input time ``j - latency``, where frame ``t`` is centred at input time ``t * hop_length``.
So frames that are the exact STFT of ``y`` (with their true phase, ``init='input'``) give
``out[j] == y[j - latency]``; an impulse at sample ``n`` comes out at ``n + latency``. Every
frame fed returns exactly ``hop_length`` samples per channel (zeros while the look-ahead fills);
:meth:`StreamingPhase.flush` returns the last ``lookahead * hop_length + n_fft - hop_length``.
In a live chain add the STFT's own delay (a frame centred at ``t * hop`` is complete
``n_fft // 2`` samples later): end to end ``n_fft + (lookahead - 1) * hop_length`` samples.
"""

from __future__ import annotations


import numpy as np

from .._validate import nonnegative_float, nonnegative_int, one_of, positive_int
from ..errors import ParameterError
from . import _phase_kernels as _k
from .stft import resolve_stft, window

__all__ = ["StreamingPhase", "process", "stream_sizes", "PHASE_INITS", "MAX_LOOKAHEAD"]

PHASE_INITS = ("input", "rtpghi", "random")
MAX_LOOKAHEAD = 3

#: RTPGHI window constant for Hann: gamma = 0.25645 * L**2 (FluCoMa; phaseret uses 0.2562).
_HANN_GAMMA = 0.25645
#: RTPGHI: bins more than 100 dB below the louder of the two frames get a random phase.
_PGHI_TOL = 1e-5
_EPS = 1e-16
#: Overlap-add normaliser floor: only exact zeros of the window (its first sample) are skipped.
_TINY = 1e-30


def stream_sizes(n_fft: int, hop_length: int) -> tuple[int, int]:
    """Validate streaming STFT sizes: ``n_fft`` even, ``hop_length`` dividing it, redundancy >= 2."""
    n_fft, hop_length, _ = resolve_stft(n_fft, hop_length, None)
    if n_fft % 2:
        raise ParameterError(f"n_fft={n_fft} must be even")
    if n_fft % hop_length or n_fft // hop_length < 2:
        raise ParameterError(
            f"hop_length={hop_length} must divide n_fft={n_fft} with n_fft / hop_length >= 2")
    return n_fft, hop_length


class StreamingPhase:
    """Streaming magnitude-to-audio by RTISI-LA + fast Griffin-Lim (frames in, samples out).

    Parameters
    ----------
    n_fft : int > 0, even
        FFT and window size (periodic Hann of ``n_fft``).
    hop_length : int > 0
        Hop; must divide ``n_fft`` with ``n_fft // hop_length >= 2`` (redundancy).
    lookahead : int in 0..3
        Frames that wait (and keep being refined) before a frame is committed; each costs one hop
        of latency. With ``init='rtpghi'`` and ``lookahead >= 1``, one of them is spent on
        RTPGHI's centred frequency gradient (phaseret's ``gsrtisilapghi``), so the projected block
        is ``lookahead`` frames; otherwise it is ``lookahead + 1``.
    n_iter : int >= 0
        Projections over the block per new frame (0: the initial phase as is).
    momentum : float >= 0
        Fast Griffin-Lim inertia, librosa's update (0 is classic Griffin-Lim).
    init : {'input', 'rtpghi', 'random'}
        Initial phase of each new frame: the phase of ``D_in`` (the input's own STFT), real-time
        phase-gradient heap integration from the log-magnitudes, or uniform random phases
        (seeded, shared by the channels).
    channels : int > 0
        Independent channels processed side by side.
    seed : int >= 0
        Seed of the random phases (``random`` init; silent bins of ``rtpghi``).

    Notes
    -----
    ``latency`` (samples) is ``n_fft // 2 + lookahead * hop_length``; see the module docstring.
    Frames holding NaN or Inf (in ``S`` or ``D_in``) are replaced by silent frames for that
    channel and counted in :attr:`nonfinite_frames`; they never raise and never reach the output.
    Negative magnitudes raise :class:`ParameterError`.
    """

    def __init__(self, *, n_fft: int, hop_length: int, lookahead: int = 1, n_iter: int = 4,
                 momentum: float = 0.99, init: str = "input", channels: int = 1, seed: int = 0):
        n_fft, hop_length = stream_sizes(n_fft, hop_length)
        lookahead = nonnegative_int(lookahead, "lookahead")
        if lookahead > MAX_LOOKAHEAD:
            raise ParameterError(f"lookahead={lookahead} must lie in 0..{MAX_LOOKAHEAD}")
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.lookahead = lookahead
        self.n_iter = nonnegative_int(n_iter, "n_iter")
        self.momentum = nonnegative_float(momentum, "momentum")
        if self.momentum >= 1:
            raise ParameterError(f"momentum={momentum!r} must be < 1 (>= 1 diverges in a stream)")
        self.init = one_of(init, PHASE_INITS, "init")
        self.channels = positive_int(channels, "channels")
        self.seed = nonnegative_int(seed, "seed")
        self.bins = 1 + n_fft // 2
        # RTPGHI with look-ahead waits one frame for its centred frequency gradient.
        self._delay = 1 if (self.init == "rtpghi" and lookahead >= 1) else 0
        self._block = lookahead + 1 - self._delay
        self._w = window(n_fft, dtype=np.float64)
        self._w2 = self._w * self._w
        self._pim = np.pi * np.arange(self.bins)
        self.reset()

    # ------------------------------------------------------------------ protocol
    @property
    def latency(self) -> int:
        """Samples from an input time to the output sample that carries it (see module doc)."""
        return self.n_fft // 2 + self.lookahead * self.hop_length

    def reset(self) -> None:
        """Clear the stream state (keep the parameters); allocates every buffer."""
        C, B, K, N, a = self.channels, self._block, self.bins, self.n_fft, self.hop_length
        self._X = np.zeros((C, B, K), np.complex128)   # block: current estimates
        self._S = np.zeros((C, B, K), np.float64)      # block: target magnitudes
        self._P = np.zeros((C, B, K), np.complex128)   # block: previous rebuilt (momentum)
        self._nb = 0                                    # frames in the block
        span = (B - 1) * a + N
        self._span = span
        size = max(span, N) + a
        self._ola = np.zeros((C, size), np.float64)    # committed frames' overlap-add
        self._envc = np.zeros(size, np.float64)        # their summed squared window
        self._y = np.zeros((C, span), np.float64)
        # The block's analysis frames as a strided view of _y (frame b starts at b * hop).
        self._frames = np.lib.stride_tricks.as_strided(
            self._y, (C, B, N), (self._y.strides[0], a * self._y.strides[1], self._y.strides[1]),
            writeable=False)
        self._inv_env = np.zeros(span, np.float64)
        self._fed = 0                                   # frames fed
        self._entered = 0                               # frames that entered the block
        self._committed = 0
        self._emitted = 0                               # samples returned
        self._last = np.zeros((C, K), np.complex128)   # newest block frame after its iterations
        self._rng = np.random.default_rng(self.seed)
        self._rand = np.zeros(K, np.float64)
        self.nonfinite_frames = 0
        # RTPGHI history: log-magnitudes of frames entered-2, entered-1 and the pending one.
        self._logs = np.zeros((3, C, K), np.float64)
        self._pend_S = np.zeros((C, K), np.float64)
        self._pend_D = np.zeros((C, K), np.complex128)
        self._phase_new = np.zeros((C, K), np.float64)
        self._ws = _k.workspace(K)

    def feed(self, S: np.ndarray, D_in: np.ndarray | None = None) -> np.ndarray:
        """Take ``k >= 0`` new frames; return the ``k * hop_length`` samples that are final.

        Parameters
        ----------
        S : np.ndarray [shape=(channels, 1 + n_fft // 2, k)], real, >= 0
            Target magnitudes of the new frames.
        D_in : np.ndarray [shape=(channels, 1 + n_fft // 2, k)], complex, optional
            The input's own STFT frames; required for ``init='input'`` (its phase is used).

        Returns
        -------
        y : np.ndarray [shape=(channels, k * hop_length), dtype=float32]
        """
        S, D_in = self._check(S, D_in)
        k = S.shape[-1]
        out = np.zeros((self.channels, k * self.hop_length), np.float32)
        for t in range(k):
            s = S[:, :, t].astype(np.float64)
            d = None if D_in is None else D_in[:, :, t].astype(np.complex128)
            bad = ~np.isfinite(s).all(axis=1)
            if d is not None:
                bad |= ~np.isfinite(d).all(axis=1)
            if bad.any():
                self.nonfinite_frames += int(bad.sum())
                s[bad] = 0.0
                if d is not None:
                    d[bad] = 0.0
            out[:, t * self.hop_length:(t + 1) * self.hop_length] = self._step(s, d)
        return out

    def flush(self) -> np.ndarray:
        """Commit the frames still waiting (as if the stream ended) and return the tail.

        The tail is ``lookahead * hop_length + n_fft - hop_length`` samples per channel (none if
        no frame was fed). Frames still in the block keep being refined, ``n_iter`` projections
        per commit, over the shrinking block. The object is reset afterwards.
        """
        a, N, C = self.hop_length, self.n_fft, self.channels
        if self._fed == 0:
            self.reset()
            return np.zeros((C, 0), np.float32)
        owed = max(self.lookahead - self._fed, 0) * a   # look-ahead never filled
        if self._delay and self._fed > self._entered:
            self._enter(self._pend_S, self._pend_D, has_next=False)
            self._iterate()
        parts = [np.zeros((C, owed))]
        while self._nb:
            self._commit_oldest(parts)
            if self._nb:
                self._iterate()
        parts.append(self._ola[:, : N - a] * self._safe_inv(self._envc[: N - a], self._committed * a))
        out = np.concatenate(parts, axis=1).astype(np.float32)
        self.reset()
        return out

    # ------------------------------------------------------------------ internals
    def _check(self, S, D_in):
        C, K = self.channels, self.bins
        if not isinstance(S, np.ndarray):
            raise ParameterError(f"S must be a numpy.ndarray, got {type(S).__name__}")
        if S.ndim != 3 or S.shape[:2] != (C, K):
            raise ParameterError(
                f"S.shape={S.shape} must be (channels={C}, bins={K}, frames)")
        if np.iscomplexobj(S) or not (np.issubdtype(S.dtype, np.floating)
                                      or np.issubdtype(S.dtype, np.integer)):
            raise ParameterError(f"S must be real magnitudes, got dtype={S.dtype}")
        if (S < 0).any():
            raise ParameterError("S must be non-negative magnitudes (np.abs of an STFT)")
        if self.init == "input":
            if D_in is None:
                raise ParameterError("init='input' needs D_in, the input's complex STFT frames")
        if D_in is not None:
            if not isinstance(D_in, np.ndarray) or not np.iscomplexobj(D_in):
                raise ParameterError("D_in must be a complex numpy.ndarray (an STFT)")
            if D_in.shape != S.shape:
                raise ParameterError(f"D_in.shape={D_in.shape} must equal S.shape={S.shape}")
        return S, D_in

    def _step(self, s, d):
        """One frame in, one hop out."""
        a = self.hop_length
        self._fed += 1
        if self._delay:
            if self._fed > 1:
                self._enter(self._pend_S, self._pend_D, has_next=True, next_S=s)
                self._iterate()
            self._pend_S[:] = s
            if d is not None:
                self._pend_D[:] = d
        else:
            self._enter(s, d, has_next=False)
            self._iterate()
        self._emitted += a
        if self._fed > self.lookahead:       # frame fed - 1 - lookahead is final now
            parts = []
            self._commit_oldest(parts)
            return parts[0]
        return 0.0

    def _enter(self, s, d, *, has_next, next_S=None):
        """Append a frame to the block with its initial phase."""
        nb = self._nb
        if self.init == "input":
            mag = np.abs(d)
            unit = np.where(mag > 0, d / np.maximum(mag, _EPS), 1.0)
        elif self.init == "random":
            self._rng.random(out=self._rand)
            unit = np.exp(1j * (2 * np.pi * self._rand - np.pi))[None, :]
        else:
            unit = np.exp(1j * self._pghi(s, has_next, next_S))
        self._X[:, nb] = s * unit
        self._S[:, nb] = s
        self._P[:, nb] = 0.0
        self._nb += 1
        self._entered += 1

    def _pghi(self, s, has_next, next_S):
        """RTPGHI phase of the frame entering now (its predecessor is ``self._last``)."""
        a, M = self.hop_length, self.n_fft
        gamma = _HANN_GAMMA * M * M
        logs = self._logs                      # [0]: entered-2, [1]: entered-1
        cur = np.log(np.maximum(s, _EPS))
        n = self._entered                      # index of this frame
        if has_next:                           # centred difference, one frame of look-ahead
            nxt = np.log(np.maximum(next_S, _EPS))
            if n >= 1:
                dlog = 0.5 * (nxt - logs[1])
            else:
                dlog = nxt - cur
        elif n >= 2:                           # causal second-order backward difference
            dlog = 0.5 * (3 * cur - 4 * logs[1] + logs[0])
        elif n == 1:
            dlog = cur - logs[1]
        else:
            dlog = np.zeros_like(cur)
        fgrad = -gamma / (a * M) * dlog
        tgrad_cur = self._tgrad(cur, gamma)
        tgrad_prev = self._tgrad(logs[1], gamma)
        # PGHI's formulas hold for window-centred (zero-phase) frames; librosa's frames are
        # referenced to their first sample: centred phase = librosa phase + pi * m.
        prev_phase = np.angle(self._last) + self._pim
        mx = np.maximum(cur.max(axis=1), logs[1].max(axis=1) if n >= 1 else -np.inf)
        logtol = mx + np.log(_PGHI_TOL)
        self._rng.random(out=self._rand)
        rand = 2 * np.pi * self._rand - np.pi
        _k.rtpghi_frame(logs[1], cur, prev_phase, tgrad_prev, tgrad_cur, fgrad, logtol,
                        n >= 1, rand, self._phase_new, *self._ws)
        logs[0] = logs[1]
        logs[1] = cur
        return self._phase_new - self._pim

    def _tgrad(self, logs, gamma):
        a, M = self.hop_length, self.n_fft
        d = np.zeros_like(logs)
        d[:, 1:-1] = logs[:, 2:] - logs[:, :-2]
        return (a * M / (2 * gamma)) * d + (2 * np.pi * a / M) * np.arange(logs.shape[-1])

    def _safe_inv(self, env, p0):
        """1 / env where env > 0, and 0 before the signal starts (absolute p < n_fft // 2)."""
        inv = np.where(env > _TINY, 1.0 / np.maximum(env, _TINY), 0.0)
        first = self.n_fft // 2 - p0          # buffer index of absolute p = n_fft // 2
        if first > 0:
            inv[: min(first, inv.size)] = 0.0
        return inv

    def _iterate(self):
        """``n_iter`` fast Griffin-Lim projections over the block against the committed OLA."""
        nb, a, N = self._nb, self.hop_length, self.n_fft
        if self.n_iter == 0 or nb == 0:
            self._last[:] = self._X[:, nb - 1] if nb else 0.0
            return
        span = (nb - 1) * a + N
        env = self._envc[:span].copy()
        for b in range(nb):
            env[b * a: b * a + N] += self._w2
        inv = self._safe_inv(env, self._committed * a)
        y = self._y[:, :span]
        beta = self.momentum / (1 + self.momentum)
        X, S, P = self._X[:, :nb], self._S[:, :nb], self._P[:, :nb]
        for _ in range(self.n_iter):
            fr = np.fft.irfft(X, n=N, axis=-1)
            fr *= self._w
            y[:] = self._ola[:, :span]
            for b in range(nb):
                y[:, b * a: b * a + N] += fr[:, b]
            y *= inv
            R = np.fft.rfft(self._frames[:, :nb] * self._w, axis=-1)
            A = R - beta * P if beta else R
            P[:] = R
            X[:] = S * A / (np.abs(A) + _EPS)
        self._last[:] = X[:, nb - 1]

    def _commit_oldest(self, parts):
        """Move the block's oldest frame into the OLA and emit its first hop."""
        a, N = self.hop_length, self.n_fft
        fr = np.fft.irfft(self._X[:, 0], n=N, axis=-1) * self._w
        self._ola[:, :N] += fr
        self._envc[:N] += self._w2
        inv = self._safe_inv(self._envc[:a], self._committed * a)
        parts.append(self._ola[:, :a] * inv)
        self._ola[:, :-a] = self._ola[:, a:].copy()
        self._ola[:, -a:] = 0.0
        self._envc[:-a] = self._envc[a:].copy()
        self._envc[-a:] = 0.0
        self._committed += 1
        for arr in (self._X, self._S, self._P):
            arr[:, :-1] = arr[:, 1:].copy()
            arr[:, -1] = 0.0
        self._nb -= 1


def process(S: np.ndarray, *, n_fft: int, hop_length: int, D_in: np.ndarray | None = None,
            **kw) -> np.ndarray:
    """Whole-file :class:`StreamingPhase`: all frames fed at once, flushed, latency removed.

    Parameters
    ----------
    S : np.ndarray [shape=(1 + n_fft // 2, frames) or (channels, 1 + n_fft // 2, frames)]
        Target magnitudes.
    D_in : np.ndarray, complex, optional
        The input's STFT, same shape (``init='input'``).
    **kw
        ``lookahead``, ``n_iter``, ``momentum``, ``init``, ``seed`` of :class:`StreamingPhase`.

    Returns
    -------
    y : np.ndarray [shape=(hop_length * (frames - 1),) or (channels, ...), dtype=float32]
        Aligned with the signal whose centred STFT ``S`` is (the stream's output shifted by
        ``latency``).
    """
    if not isinstance(S, np.ndarray) or S.ndim not in (2, 3):
        raise ParameterError("S must be a numpy.ndarray of shape (bins, frames) or "
                             "(channels, bins, frames)")
    mono = S.ndim == 2
    if mono:
        S = S[None]
        D_in = None if D_in is None else np.asarray(D_in)[None]
    if "channels" in kw:
        raise ParameterError("process() takes the channels from S.shape; do not pass channels")
    sp = StreamingPhase(n_fft=n_fft, hop_length=hop_length, channels=S.shape[0], **kw)
    y = np.concatenate([sp.feed(S, D_in), sp.flush()], axis=1)
    n = hop_length * (S.shape[-1] - 1)
    y = y[:, sp.latency: sp.latency + n]
    return y[0] if mono else y
