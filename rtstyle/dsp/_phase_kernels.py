"""Numba kernels of the streaming phase reconstruction (private, allocation-free after warm-up).

The real-time phase-gradient heap integration (RTPGHI, Průša & Søndergaard, DAFx-16), whose
max-heap walk over the bins of two frames is an inherently sequential loop, and the element-wise
steps of a Griffin-Lim projection fused into single passes over preallocated buffers (overlap-add
with normalisation and re-windowing; the momentum update with the magnitude projection). The
FFTs stay numpy's (pocketfft, written into preallocated ``out=`` arrays).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["rtpghi_frame", "overlap_add", "project", "unit_phase", "shift_left", "all_finite",
           "inverse_envelope"]


@numba.njit(cache=True, nogil=True)
def _heap_push(keys, vals, size, key, val):
    i = size
    keys[i] = key
    vals[i] = val
    while i > 0:
        parent = (i - 1) // 2
        if keys[parent] >= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        vals[parent], vals[i] = vals[i], vals[parent]
        i = parent
    return size + 1


@numba.njit(cache=True, nogil=True)
def _sift_down(keys, vals, size, i):
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        big = left
        if left + 1 < size and keys[left + 1] > keys[left]:
            big = left + 1
        if keys[i] >= keys[big]:
            break
        keys[i], keys[big] = keys[big], keys[i]
        vals[i], vals[big] = vals[big], vals[i]
        i = big


@numba.njit(cache=True, nogil=True)
def _heap_pop(keys, vals, size):
    """Remove the largest key; returns (value, new size)."""
    top = vals[0]
    size -= 1
    keys[0] = keys[size]
    vals[0] = vals[size]
    _sift_down(keys, vals, size, 0)
    return top, size


@numba.njit(cache=True, nogil=True)
def rtpghi_frame(logs_prev, logs_cur, phase_prev, tgrad_prev, tgrad_cur, fgrad_cur, logtol,
                 have_prev, rand_phase, out, done, keys, vals):
    """Phase of one new frame by heap integration from the previous frame, for every channel.

    Parameters
    ----------
    logs_prev, logs_cur : float64 (channels, bins)
        Log-magnitudes of the previous and the new frame.
    phase_prev : float64 (channels, bins)
        Phase of the previous frame (its current estimate).
    tgrad_prev, tgrad_cur : float64 (channels, bins)
        Phase advance per hop of both frames (radians).
    fgrad_cur : float64 (channels, bins)
        Phase change per bin of the new frame (radians).
    logtol : float64 (channels,)
        Log-magnitude below which a bin is "silent" and gets ``rand_phase``.
    have_prev : bool
        False for the very first frame: integrate from the new frame's loudest bin (phase 0).
    rand_phase : float64 (bins,)
        Random phases for silent bins (shared by the channels).
    out : float64 (channels, bins)
        The new frame's phase (written).
    done : bool (bins,); keys : float64 (2 * bins,); vals : int64 (2 * bins,)
        Work space.
    """
    C, M2 = logs_cur.shape
    for c in range(C):
        remaining = 0
        for m in range(M2):
            if logs_cur[c, m] < logtol[c]:
                out[c, m] = rand_phase[m]
                done[m] = True
            else:
                done[m] = False
                remaining += 1
        size = 0
        if have_prev:   # every loud bin of the previous frame, heapified in O(bins)
            for m in range(M2):
                if logs_prev[c, m] >= logtol[c]:
                    keys[size] = logs_prev[c, m]
                    vals[size] = m
                    size += 1
            for i in range(size // 2 - 1, -1, -1):
                _sift_down(keys, vals, size, i)
        while remaining > 0:
            if size == 0:
                # Nothing to integrate from: start at the loudest undone bin with phase 0.
                best = -1
                for m in range(M2):
                    if not done[m] and (best < 0 or logs_cur[c, m] > logs_cur[c, best]):
                        best = m
                out[c, best] = 0.0
                done[best] = True
                remaining -= 1
                size = _heap_push(keys, vals, size, logs_cur[c, best], best + M2)
                continue
            v, size = _heap_pop(keys, vals, size)
            if v < M2:  # a bin of the previous frame: step forward in time (trapezoid)
                m = v
                if not done[m]:
                    out[c, m] = phase_prev[c, m] + 0.5 * (tgrad_prev[c, m] + tgrad_cur[c, m])
                    done[m] = True
                    remaining -= 1
                    size = _heap_push(keys, vals, size, logs_cur[c, m], m + M2)
            else:  # a bin of the new frame: step up and down in frequency
                m = v - M2
                if m + 1 < M2 and not done[m + 1]:
                    out[c, m + 1] = out[c, m] + 0.5 * (fgrad_cur[c, m] + fgrad_cur[c, m + 1])
                    done[m + 1] = True
                    remaining -= 1
                    size = _heap_push(keys, vals, size, logs_cur[c, m + 1], m + 1 + M2)
                if m - 1 >= 0 and not done[m - 1]:
                    out[c, m - 1] = out[c, m] - 0.5 * (fgrad_cur[c, m] + fgrad_cur[c, m - 1])
                    done[m - 1] = True
                    remaining -= 1
                    size = _heap_push(keys, vals, size, logs_cur[c, m - 1], m - 1 + M2)
    return out


@numba.njit(cache=True, nogil=True)
def overlap_add(fr, w, ola, inv, hop, nb, y, fw):
    """Overlap-add ``nb`` frames onto the committed OLA, normalise, and re-window them.

    ``fr`` (channels, block, n_fft): unwindowed inverse FFTs of the block; ``ola`` (channels, >=
    span): committed frames' overlap-add; ``inv`` (>= span,): inverse summed squared window;
    writes ``y`` (channels, >= span), the signal estimate, and ``fw`` (channels, block, n_fft),
    its windowed analysis frames.
    """
    C, _, N = fr.shape
    span = (nb - 1) * hop + N
    for c in range(C):
        for i in range(span):
            y[c, i] = ola[c, i]
        for b in range(nb):
            o = b * hop
            for n in range(N):
                y[c, o + n] += fr[c, b, n] * w[n]
        for i in range(span):
            y[c, i] *= inv[i]
        for b in range(nb):
            o = b * hop
            for n in range(N):
                fw[c, b, n] = y[c, o + n] * w[n]


@numba.njit(cache=True, nogil=True)
def project(R, P, S, X, beta, nb):
    """Fast Griffin-Lim step on the block's first ``nb`` frames, in place.

    ``A = R - beta * P; P = R; X = S * A / |A|`` (librosa's momentum form), with ``X = 0`` where
    ``|A|`` is 0. All (channels, block, bins); ``R`` is the analysis of the current estimate.
    """
    C, _, K = R.shape
    for c in range(C):
        for b in range(nb):
            for k in range(K):
                r = R[c, b, k]
                a = r - beta * P[c, b, k]
                P[c, b, k] = r
                m2 = a.real * a.real + a.imag * a.imag
                if m2 > 0.0:
                    X[c, b, k] = a * (S[c, b, k] / np.sqrt(m2))
                else:
                    X[c, b, k] = 0.0


@numba.njit(cache=True, nogil=True)
def unit_phase(s, d, out):
    """``out = s * d / |d|`` (``s`` where ``d`` is 0): magnitudes with the phase of ``d``."""
    C, K = s.shape
    for c in range(C):
        for k in range(K):
            m = abs(d[c, k])
            if m > 0.0:
                out[c, k] = d[c, k] * (s[c, k] / m)
            else:
                out[c, k] = s[c, k]


@numba.njit(cache=True, nogil=True)
def shift_left(a, n):
    """Shift the last axis of a 2-D array left by ``n`` in place, zero-filling the end."""
    C, L = a.shape
    for c in range(C):
        for i in range(L - n):
            a[c, i] = a[c, i + n]
        for i in range(L - n, L):
            a[c, i] = 0.0


@numba.njit(cache=True, nogil=True)
def all_finite(x, ok):
    """``ok[c] = all(isfinite(x[c]))`` for a (channels, bins) array; returns ``all(ok)``."""
    C, K = x.shape
    every = True
    for c in range(C):
        good = True
        for k in range(K):
            v = x[c, k]
            if not (np.isfinite(v.real) and np.isfinite(v.imag)):
                good = False
                break
        ok[c] = good
        every = every and good
    return every


@numba.njit(cache=True, nogil=True)
def inverse_envelope(envc, w2, nb, hop, first, out):
    """``out[:span] = 1 / (envc + sum of nb windows² at b * hop)``; 0 where the sum is 0.

    ``first``: buffer index of the signal's first sample (absolute ``n_fft // 2``, the centre
    of frame 0); positions before it are zeroed (the centred STFT's padding). ``nb = 0`` inverts
    ``envc`` alone over ``out``'s length.
    """
    N = w2.shape[0]
    span = (nb - 1) * hop + N if nb > 0 else out.shape[0]
    for i in range(span):
        out[i] = envc[i]
    for b in range(nb):
        o = b * hop
        for n in range(N):
            out[o + n] += w2[n]
    for i in range(span):
        if i < first or out[i] <= 1e-30:
            out[i] = 0.0
        else:
            out[i] = 1.0 / out[i]


def workspace(bins: int):
    """Work arrays for :func:`rtpghi_frame` (allocate once, in ``reset``)."""
    return (np.zeros(bins, np.bool_), np.zeros(2 * bins, np.float64),
            np.zeros(2 * bins, np.int64))
