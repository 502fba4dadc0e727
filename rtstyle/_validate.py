"""Argument gates shared by every public boundary (librosa's ``valid_audio`` pattern)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import ParameterError

__all__ = [
    "valid_audio",
    "positive_int",
    "nonnegative_int",
    "positive_float",
    "nonnegative_float",
    "unit_float",
    "one_of",
    "bounded_int",
    "sample_rate",
    "channel_first",
    "MIN_SR",
    "MAX_SR",
    "LIMITS",
]

#: Sample rates rtstyle accepts, for files, devices and models (Hz). Below 1 kHz a file is not
#: audio worth styling, and resampling it to a model's rate would multiply its length
#: thousands of times (a 2-kB WAV claiming 1 Hz became 2.3 GB); 768 kHz is the highest rate
#: audio interfaces and libsndfile's formats use.
MIN_SR, MAX_SR = 1000, 768000

#: Sane bounds of every size a user can set (a flag, a model card, an API argument), checked
#: before anything of that size is allocated: ``name: (lowest, highest)``. They are far beyond
#: any useful value (n_fft 65536 is 1.5 s at 44.1 kHz; the bundled nets have 256 hidden
#: channels), and far below what would exhaust memory (n_fft 2^30 asked for 8 GiB at once).
LIMITS = {
    "n_fft": (16, 65536),
    "hop_length": (1, 65536),
    "win_length": (1, 65536),
    "block_size": (1, 1 << 20),
    "phase_iters": (0, 1000),
    "lookahead": (0, 64),
    "filters": (1, 16384),
    "n_mels": (1, 1024),
    "n_mfcc": (1, 1024),
    "kernel_size": (1, 256),
    "pool_width": (1, 256),
    "hidden": (1, 8192),
    "layers": (1, 64),
    "bands": (2, 512),
    "embed_dim": (1, 4096),
    "n_styles": (1, 4096),
    "dilation": (1, 1 << 16),
    "steps": (0, 1 << 30),
    "iterations": (0, 1 << 20),
    "batch_size": (1, 1 << 16),
    "chunk_frames": (1, 1 << 16),
    "val_chunks": (0, 1 << 16),
    "threads": (1, 1024),
    "input_channel": (1, 1024),
    "output_channels": (1, 1024),
    "channels": (1, 1024),
}


def valid_audio(y, *, name: str = "y") -> np.ndarray:
    """Check an audio array and return it as C-contiguous float32.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
        Audio, mono or multi-channel (librosa's channel-first order).
    name : str
        How the array is called in error messages.

    Returns
    -------
    y : np.ndarray [shape=(n,) or (channels, n), dtype=float32]

    Raises
    ------
    ParameterError
        Not an array, not floating point, not 1-D or 2-D, empty, or not finite everywhere.
    """
    if not isinstance(y, np.ndarray):
        raise ParameterError(f"{name} must be a numpy.ndarray, got {type(y).__name__}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"{name} must be floating-point audio, got dtype={y.dtype}")
    if y.ndim not in (1, 2):
        raise ParameterError(
            f"{name} must have shape (n,) or (channels, n), got {name}.shape={y.shape}"
        )
    if y.shape[-1] == 0 or (y.ndim == 2 and y.shape[0] == 0):
        raise ParameterError(f"{name} is empty ({name}.shape={y.shape})")
    if not np.isfinite(y).all():
        raise ParameterError(f"{name} is not finite everywhere (it holds NaN or Inf samples)")
    return np.ascontiguousarray(y, dtype=np.float32)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(value, name: str) -> int:
    """Return ``value`` as int if it is an integer > 0, else raise ParameterError naming it."""
    if not _is_int(value) or value <= 0:
        raise ParameterError(f"{name}={value!r} must be a positive integer")
    return int(value)


def nonnegative_int(value, name: str) -> int:
    """Return ``value`` as int if it is an integer >= 0, else raise ParameterError naming it."""
    if not _is_int(value) or value < 0:
        raise ParameterError(f"{name}={value!r} must be a non-negative integer")
    return int(value)


def _finite_float(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name}={value!r} must be a number")
    value = float(value)
    if not np.isfinite(value):
        raise ParameterError(f"{name}={value!r} must be finite")
    return value


def positive_float(value, name: str) -> float:
    """Return ``value`` as float if it is finite and > 0."""
    out = _finite_float(value, name)
    if out <= 0:
        raise ParameterError(f"{name}={value!r} must be > 0")
    return out


def nonnegative_float(value, name: str) -> float:
    """Return ``value`` as float if it is finite and >= 0."""
    out = _finite_float(value, name)
    if out < 0:
        raise ParameterError(f"{name}={value!r} must be >= 0")
    return out


def unit_float(value, name: str, *, open_right: bool = False) -> float:
    """Return ``value`` as float if it lies in [0, 1] (or [0, 1) with ``open_right``)."""
    out = _finite_float(value, name)
    if out < 0 or out > 1 or (open_right and out == 1):
        rng = "[0, 1)" if open_right else "[0, 1]"
        raise ParameterError(f"{name}={value!r} must lie in {rng}")
    return out


def bounded_int(value, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``value`` as int if it is an integer in ``lo..hi`` (default: :data:`LIMITS`)."""
    if lo is None or hi is None:
        lo, hi = LIMITS[name]
    if not _is_int(value) or not lo <= value <= hi:
        raise ParameterError(f"{name}={value!r} must be an integer in {lo}..{hi}")
    return int(value)


def sample_rate(value, name: str = "sr") -> int:
    """Return ``value`` as int if it is a whole number of Hz in :data:`MIN_SR`..:data:`MAX_SR`
    (a float such as ``16e3`` or ``22050.0`` too, as librosa takes them)."""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        if not math.isfinite(value) or value != int(value):
            raise ParameterError(f"{name}={value!r} must be a whole number of Hz in "
                                 f"{MIN_SR}..{MAX_SR}")
        value = int(value)
    if not _is_int(value) or not MIN_SR <= value <= MAX_SR:
        raise ParameterError(f"{name}={value!r} must be a sample rate in {MIN_SR}..{MAX_SR} Hz")
    return int(value)


def channel_first(y: np.ndarray, name: str = "y") -> np.ndarray:
    """Refuse a 2-D array with more channels than samples: an ``(n, channels)`` array that
    should have been transposed (audio is channel-first, librosa's order)."""
    if isinstance(y, np.ndarray) and y.ndim == 2 and y.shape[0] > y.shape[1]:
        raise ParameterError(
            f"{name}.shape={y.shape} has more channels than samples; audio is channel-first "
            f"(channels, n): transpose an (n, channels) array with {name}.T"
        )
    return y


def one_of(value, choices, name: str):
    """Return ``value`` if it is one of ``choices``, else raise ParameterError listing them."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ParameterError(f"{name}={value!r} must be one of {listed}")
    return value
