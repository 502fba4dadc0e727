"""Numba kernels of the streaming phase reconstruction (private, allocation-free after warm-up).

Only the real-time phase-gradient heap integration (RTPGHI, Průša & Søndergaard, DAFx-16) lives
here: its max-heap walk over the bins of two frames is an inherently sequential loop. Everything
else in :mod:`rtstyle.dsp.phase_stream` is batched numpy FFTs.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["rtpghi_frame"]


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
def _heap_pop(keys, vals, size):
    """Remove the largest key; returns (value, new size)."""
    top = vals[0]
    size -= 1
    keys[0] = keys[size]
    vals[0] = vals[size]
    i = 0
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
        if have_prev:
            for m in range(M2):
                if logs_prev[c, m] >= logtol[c]:
                    size = _heap_push(keys, vals, size, logs_prev[c, m], m)
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


def workspace(bins: int):
    """Work arrays for :func:`rtpghi_frame` (allocate once, in ``reset``)."""
    return (np.zeros(bins, np.bool_), np.zeros(2 * bins, np.float64),
            np.zeros(2 * bins, np.int64))
