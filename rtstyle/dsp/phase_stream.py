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
from ..constants import MAX_LOOKAHEAD, PHASE_INITS
from ..errors import ParameterError
from . import _phase_kernels as _k
from .stft import resolve_stft, window

__all__ = ["StreamingPhase", "process", "stream_sizes", "PHASE_INITS", "MAX_LOOKAHEAD",
           "DEFAULT_ITERS", "DEFAULT_MOMENTUM"]

#: Default projections per hop and momentum per initial phase (momentum with look-ahead; 0
#: without), chosen by ``tools/bench.py phase``. From the input's phase 4 projections do what 16
#: do (modified magnitudes: -38.8/-34.2 dB against -39.6/-34.0 on speech/melody) at a quarter of
#: the cost, and momentum 0.9 over 16 projections lets rounding grow in the newest frame's
#: unconstrained tail (melody -24.3 dB at 0.9 against -34.0 at 0.5); from RTPGHI, 16 projections
#: at 0.9 are best (-26.7 dB on speech at look-ahead 1; -25.1 at 0.5, -23.8 with 4).
DEFAULT_ITERS = {"input": 4, "rtpghi": 16, "random": 16}
DEFAULT_MOMENTUM = {"input": 0.5, "rtpghi": 0.9, "random": 0.9}

#: RTPGHI window constant for Hann: gamma = 0.25645 * L**2 (FluCoMa; phaseret uses 0.2562).
_HANN_GAMMA = 0.25645
#: RTPGHI: bins more than 100 dB below the louder of the two frames get a random phase.
_PGHI_TOL = 1e-5
_EPS = 1e-16


try:    # numpy >= 2: the ufuncs behind np.fft.irfft/rfft, called straight into preallocated
    # buffers (saves ~25 % of an iteration at n_fft 1024); tests check they equal np.fft.
    from numpy.fft import _pocketfft_umath as _pfu

    _AXES = [(-1,), (), (-1,)]

    def _irfft(X, n, out):
        _pfu.irfft(X, 1.0 / n, axes=_AXES, out=out)

    def _rfft(x, out):
        _pfu.rfft_n_even(x, 1.0, axes=_AXES, out=out)
except (ImportError, AttributeError):   # pragma: no cover - older numpy
    def _irfft(X, n, out):
        out[...] = np.fft.irfft(X, n=n, axis=-1)

    def _rfft(x, out):
        out[...] = np.fft.rfft(x, axis=-1)


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
        of latency. The projected block is ``lookahead + 1`` frames (``lookahead`` with
        ``pghi_lookahead=1``).
    n_iter : int >= 0
        Projections over the block per new frame (0: the initial phase as is). Default
        :data:`DEFAULT_ITERS` of the ``init``: 4 for ``input``, 16 otherwise (chosen by
        ``tools/bench.py phase``, docs/benchmarks.md).
    momentum : float in [0, 1), optional
        Fast Griffin-Lim inertia, librosa's update (0 is classic Griffin-Lim). Default
        :data:`DEFAULT_MOMENTUM` of the ``init`` (0.5 for ``input``, 0.9 otherwise) with
        look-ahead, 0 without: with no look-ahead the tail of the newest frame is constrained by
        no other frame, and momentum amplifies rounding there without bound (identity with the
        input's phase drifts by 0.3 of full scale after 16 iterations at 0.9; by 2e-15 at 0).
    init : {'input', 'rtpghi', 'random'}
        Initial phase of each new frame: the phase of ``D_in`` (the input's own STFT), real-time
        phase-gradient heap integration from the log-magnitudes, or uniform random phases
        (seeded, shared by the channels).
    channels : int > 0
        Independent channels processed side by side.
    seed : int >= 0
        Seed of the random phases (``random`` init; silent bins of ``rtpghi``).
    pghi_lookahead : {0, 1}
        ``init='rtpghi'`` only: 1 spends one of the ``lookahead`` frames on RTPGHI's centred
        frequency gradient (phaseret's ``gsrtisilapghi``) instead of a causal backward one; the
        block projected by Griffin-Lim is then one frame shorter. Needs ``lookahead >= 1``.
        The benchmark finds it better only at look-ahead 3 with 8 iterations.

    Notes
    -----
    ``latency`` (samples) is ``n_fft // 2 + lookahead * hop_length``; see the module docstring.
    Frames holding NaN or Inf (in ``S`` or ``D_in``) are replaced by silent frames for that
    channel and counted in :attr:`nonfinite_frames`; they never raise and never reach the output.
    Negative magnitudes raise :class:`ParameterError`.
    """

    def __init__(self, *, n_fft: int, hop_length: int, lookahead: int = 1, n_iter: int | None = None,
                 momentum: float | None = None, init: str = "input", channels: int = 1, seed: int = 0,
                 pghi_lookahead: int = 0):
        n_fft, hop_length = stream_sizes(n_fft, hop_length)
        lookahead = nonnegative_int(lookahead, "lookahead")
        if lookahead > MAX_LOOKAHEAD:
            raise ParameterError(f"lookahead={lookahead} must lie in 0..{MAX_LOOKAHEAD}")
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.lookahead = lookahead
        self.init = one_of(init, PHASE_INITS, "init")
        self.n_iter = nonnegative_int(DEFAULT_ITERS[self.init] if n_iter is None else n_iter,
                                      "n_iter")
        if momentum is None:
            momentum = DEFAULT_MOMENTUM[self.init] if lookahead else 0.0
        self.momentum = nonnegative_float(momentum, "momentum")
        if self.momentum >= 1:
            raise ParameterError(f"momentum={momentum!r} must be < 1 (>= 1 diverges in a stream)")
        self.channels = positive_int(channels, "channels")
        self.seed = nonnegative_int(seed, "seed")
        self.bins = 1 + n_fft // 2
        self.pghi_lookahead = nonnegative_int(pghi_lookahead, "pghi_lookahead")
        if self.pghi_lookahead not in (0, 1) or self.pghi_lookahead > lookahead:
            raise ParameterError(f"pghi_lookahead={pghi_lookahead!r} must be 0 or 1, and at most "
                                 f"lookahead={lookahead}")
        # RTPGHI with pghi_lookahead waits one frame for its centred frequency gradient.
        self._delay = 1 if (self.init == "rtpghi" and self.pghi_lookahead) else 0
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
        self._R = np.zeros((C, B, K), np.complex128)   # block: analysis of the estimate
        self._fr = np.zeros((C, B, N), np.float64)     # block: inverse FFTs
        self._fw = np.zeros((C, B, N), np.float64)     # block: windowed analysis frames
        self._nb = 0                                    # frames in the block
        span = (B - 1) * a + N
        self._span = span
        size = max(span, N) + a
        self._ola = np.zeros((C, size), np.float64)    # committed frames' overlap-add
        self._envc = np.zeros((1, size), np.float64)   # their summed squared window
        self._y = np.zeros((C, span), np.float64)
        self._inv = np.zeros(span, np.float64)
        self._inv_hop = np.zeros(a, np.float64)
        self._fed = 0                                   # frames fed
        self._entered = 0                               # frames that entered the block
        self._committed = 0
        self._emitted = 0                               # samples returned
        self._last = np.zeros((C, K), np.complex128)   # newest block frame after its iterations
        self._rng = np.random.default_rng(self.seed)
        self._rand = np.zeros(K, np.float64)
        self.nonfinite_frames = 0
        # Per-frame inputs, copied in (no allocation per hop).
        self._s_in = np.zeros((C, K), np.float64)
        self._d_in = np.zeros((C, K), np.complex128)
        self._ok = np.zeros(C, np.bool_)
        # RTPGHI: log-magnitudes of frames entered-2, entered-1; time gradient of entered-1.
        self._logs = np.zeros((3, C, K), np.float64)
        self._tgrad_prev = np.zeros((C, K), np.float64)
        self._pend_S = np.zeros((C, K), np.float64)
        self._logtol = np.zeros(C, np.float64)
        self._logmax = np.zeros(C, np.float64)
        self._phase_new = np.zeros((C, K), np.float64)
        self._work = np.zeros((4, C, K), np.float64)   # cur/next logs, gradients, cos/sin
        self._ramp = (2 * np.pi * a / N) * np.arange(K)
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
        k, a = S.shape[-1], self.hop_length
        out = np.zeros((self.channels, k * a), np.float32)
        s, d = self._s_in, (None if D_in is None else self._d_in)
        for t in range(k):
            np.copyto(s, S[:, :, t])
            if d is not None:
                np.copyto(d, D_in[:, :, t])
            fine = _k.all_finite(s, self._ok)
            if d is not None:
                fine = _k.all_finite(d, self._ok) and fine
            if not fine:
                self._silence_bad(s, d)
            self._step(s, d, out[:, t * a:(t + 1) * a])
        return out

    def _silence_bad(self, s, d):
        """Frames holding NaN/Inf in ``S`` or ``D_in`` become silent for that channel (rare path)."""
        bad = ~np.isfinite(s).all(axis=1)
        if d is not None:
            bad |= ~np.isfinite(d).all(axis=1)
        self.nonfinite_frames += int(bad.sum())
        s[bad] = 0.0
        if d is not None:
            d[bad] = 0.0

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
            self._enter(self._pend_S, None, has_next=False)
            self._iterate()
        out = np.zeros((C, owed + self._nb * a + N - a), np.float32)
        pos = owed
        while self._nb:
            self._commit_oldest(out[:, pos:pos + a])
            pos += a
            if self._nb:
                self._iterate()
        inv = self._inv[: N - a]
        _k.inverse_envelope(self._envc[0], self._w2, 0, a, self._first(), inv)
        np.multiply(self._ola[:, : N - a], inv, out=out[:, pos:])
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

    def _first(self):
        """Buffer index of absolute sample ``n_fft // 2`` (the signal's start; before it: 0)."""
        return max(self.n_fft // 2 - self._committed * self.hop_length, 0)

    def _step(self, s, d, dest):
        """One frame in, one hop out (written into ``dest``, zeros while the look-ahead fills)."""
        self._fed += 1
        if self._delay:
            if self._fed > 1:
                self._enter(self._pend_S, None, has_next=True, next_S=s)
                self._iterate()
            self._pend_S[:] = s
        else:
            self._enter(s, d, has_next=False)
            self._iterate()
        self._emitted += self.hop_length
        if self._fed > self.lookahead:       # frame fed - 1 - lookahead is final now
            self._commit_oldest(dest)

    def _enter(self, s, d, *, has_next, next_S=None):
        """Append a frame to the block with its initial phase."""
        nb = self._nb
        x = self._X[:, nb]
        if self.init == "input":
            _k.unit_phase(s, d, x)
        else:
            if self.init == "random":
                ph = self._work[0, 0]
                self._rng.random(out=ph)
                ph *= 2 * np.pi
                ph -= np.pi
            else:
                ph = self._pghi(s, has_next, next_S)
            c, si = self._work[2], self._work[3]
            np.cos(ph, out=c)
            np.sin(ph, out=si)
            np.multiply(s, c, out=x.real)
            np.multiply(s, si, out=x.imag)
        self._S[:, nb] = s
        self._P[:, nb] = 0.0
        self._nb += 1
        self._entered += 1

    def _pghi(self, s, has_next, next_S):
        """RTPGHI phase of the frame entering now (its predecessor is ``self._last``)."""
        a, M = self.hop_length, self.n_fft
        gamma = _HANN_GAMMA * M * M
        logs = self._logs                      # [0]: entered-2, [1]: entered-1, [2]: this one
        cur, dlog = logs[2], self._work[0]
        np.log(np.maximum(s, _EPS, out=cur), out=cur)
        n = self._entered                      # index of this frame
        if has_next:                           # centred difference, one frame of look-ahead
            nxt = self._work[1]
            np.log(np.maximum(next_S, _EPS, out=nxt), out=nxt)
            np.subtract(nxt, logs[1] if n >= 1 else cur, out=dlog)
            if n >= 1:
                dlog *= 0.5
        elif n >= 2:                           # causal second-order backward difference
            np.multiply(cur, 1.5, out=dlog)
            dlog -= 2 * logs[1]
            dlog += 0.5 * logs[0]
        elif n == 1:
            np.subtract(cur, logs[1], out=dlog)
        else:
            dlog[:] = 0.0
        dlog *= -gamma / (a * M)               # frequency gradient (radians per bin)
        tgrad_cur = self._work[1]
        self._tgrad(cur, gamma, tgrad_cur)
        # PGHI's formulas hold for window-centred (zero-phase) frames; librosa's frames are
        # referenced to their first sample: centred phase = librosa phase + pi * m.
        prev_phase = self._work[2]
        np.arctan2(self._last.imag, self._last.real, out=prev_phase)
        prev_phase += self._pim
        logtol = self._logtol
        np.max(cur, axis=1, out=logtol)
        if n >= 1:
            np.maximum(logtol, np.max(logs[1], axis=1, out=self._logmax), out=logtol)
        logtol += np.log(_PGHI_TOL)
        rand = self._rand
        self._rng.random(out=rand)
        rand *= 2 * np.pi
        rand -= np.pi
        _k.rtpghi_frame(logs[1], cur, prev_phase, self._tgrad_prev, tgrad_cur, dlog, logtol,
                        n >= 1, rand, self._phase_new, *self._ws[:3])
        logs[0] = logs[1]
        logs[1] = cur
        self._tgrad_prev[:] = tgrad_cur
        self._phase_new -= self._pim
        return self._phase_new

    def _tgrad(self, logs, gamma, out):
        """RTPGHI time gradient (radians per hop) from one frame's log-magnitudes."""
        a, M = self.hop_length, self.n_fft
        np.subtract(logs[:, 2:], logs[:, :-2], out=out[:, 1:-1])
        out[:, 0] = 0.0
        out[:, -1] = 0.0
        out *= a * M / (2 * gamma)
        out += self._ramp

    def _iterate(self):
        """``n_iter`` fast Griffin-Lim projections over the block against the committed OLA."""
        nb, a, N = self._nb, self.hop_length, self.n_fft
        if self.n_iter == 0 or nb == 0:
            self._last[:] = self._X[:, nb - 1] if nb else 0.0
            return
        _k.inverse_envelope(self._envc[0], self._w2, nb, a, self._first(), self._inv)
        beta = self.momentum / (1 + self.momentum)
        X, R, fr, fw = self._X[:, :nb], self._R[:, :nb], self._fr[:, :nb], self._fw[:, :nb]
        for _ in range(self.n_iter):
            _irfft(X, N, fr)
            _k.overlap_add(self._fr, self._w, self._ola, self._inv, a, nb, self._y, self._fw)
            _rfft(fw, R)
            _k.project(self._R, self._P, self._S, self._X, beta, nb)
        self._last[:] = self._X[:, nb - 1]

    def _commit_oldest(self, dest):
        """Move the block's oldest frame into the OLA and write its first hop into ``dest``."""
        a, N, C, K = self.hop_length, self.n_fft, self.channels, self.bins
        fr = self._fr[:, 0]
        _irfft(self._X[:, 0], N, fr)
        fr *= self._w
        self._ola[:, :N] += fr
        self._envc[0, :N] += self._w2
        inv = self._inv_hop
        _k.inverse_envelope(self._envc[0], self._w2, 0, a, self._first(), inv)
        np.multiply(self._ola[:, :a], inv, out=dest)
        _k.shift_left(self._ola, a)
        _k.shift_left(self._envc, a)
        self._committed += 1
        B = self._block
        for arr in (self._X, self._S, self._P):
            _k.shift_left(arr.reshape(C, B * K), K)
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
