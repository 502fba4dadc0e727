"""Short-time Fourier transform and its inverse, in numpy and in torch.

Both back ends use the same conventions as ``librosa.stft`` / ``librosa.istft`` (periodic Hann
window of ``win_length`` zero-padded to ``n_fft`` in the centre, ``center=True`` with zero
padding of ``n_fft // 2`` on both sides, frames ``1 + n // hop_length``), so a spectrogram made
by one can be inverted by the other and compared with librosa.

Spectrograms are ``(..., 1 + n_fft // 2, frames)``; audio is ``(..., n)``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .._validate import positive_int
from ..errors import ParameterError

__all__ = ["window", "stft", "istft", "stft_torch", "istft_torch", "n_frames", "resolve_stft"]


def resolve_stft(n_fft: int, hop_length: int | None, win_length: int | None) -> tuple[int, int, int]:
    """Validate STFT sizes and fill librosa's defaults.

    Returns
    -------
    n_fft, hop_length, win_length : int
        ``win_length`` defaults to ``n_fft`` and ``hop_length`` to ``win_length // 4``.
    """
    n_fft = positive_int(n_fft, "n_fft")
    win_length = n_fft if win_length is None else positive_int(win_length, "win_length")
    if win_length > n_fft:
        raise ParameterError(f"win_length={win_length} must be <= n_fft={n_fft}")
    hop_length = max(win_length // 4, 1) if hop_length is None else positive_int(hop_length, "hop_length")
    if hop_length > win_length:
        raise ParameterError(f"hop_length={hop_length} must be <= win_length={win_length}")
    return n_fft, hop_length, win_length


@functools.lru_cache(maxsize=32)
def _window(n_fft: int, win_length: int) -> np.ndarray:
    # Periodic Hann (scipy.signal.get_window('hann', N, fftbins=True)), centred in n_fft.
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_length) / win_length)
    out = np.zeros(n_fft)
    start = (n_fft - win_length) // 2
    out[start : start + win_length] = w
    out.setflags(write=False)
    return out


def window(n_fft: int, *, win_length: int | None = None, dtype=np.float32) -> np.ndarray:
    """The analysis/synthesis window: periodic Hann of ``win_length`` centred in ``n_fft``.

    Returns
    -------
    w : np.ndarray [shape=(n_fft,)]
    """
    n_fft, _, win_length = resolve_stft(n_fft, None, win_length)
    return _window(n_fft, win_length).astype(dtype)


def n_frames(n: int, *, hop_length: int) -> int:
    """Frames of a centred STFT of ``n`` samples: ``1 + n // hop_length``."""
    return 1 + n // hop_length


def stft(y: np.ndarray, *, n_fft: int = 2048, hop_length: int | None = None,
         win_length: int | None = None) -> np.ndarray:
    """Centred STFT in numpy (librosa's conventions, zero padding).

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], real
    n_fft, hop_length, win_length : int
        As in ``librosa.stft``; ``hop_length`` defaults to ``win_length // 4``.

    Returns
    -------
    D : np.ndarray [shape=(..., 1 + n_fft // 2, 1 + n // hop_length), dtype=complex64]
    """
    n_fft, hop_length, win_length = resolve_stft(n_fft, hop_length, win_length)
    y = np.asarray(y)
    dtype = np.complex128 if y.dtype == np.float64 else np.complex64
    pad = [(0, 0)] * (y.ndim - 1) + [(n_fft // 2, n_fft // 2)]
    yp = np.pad(y, pad)
    frames = np.lib.stride_tricks.sliding_window_view(yp, n_fft, axis=-1)[..., ::hop_length, :]
    w = _window(n_fft, win_length).astype(y.dtype if y.dtype == np.float64 else np.float32)
    D = np.fft.rfft(frames * w, axis=-1)
    return np.swapaxes(D, -1, -2).astype(dtype, copy=False)


def istft(D: np.ndarray, *, hop_length: int | None = None, win_length: int | None = None,
          n_fft: int | None = None, length: int | None = None) -> np.ndarray:
    """Inverse of :func:`stft` by weighted overlap-add (librosa's ``istft``).

    Parameters
    ----------
    D : np.ndarray [shape=(..., 1 + n_fft // 2, frames)], complex
    length : int or None
        Trim or zero-pad the output to exactly this many samples.

    Returns
    -------
    y : np.ndarray [shape=(..., n)], float32 (float64 for complex128 input)
    """
    D = np.asarray(D)
    n_fft = 2 * (D.shape[-2] - 1) if n_fft is None else n_fft
    n_fft, hop_length, win_length = resolve_stft(n_fft, hop_length, win_length)
    if D.shape[-2] != 1 + n_fft // 2:
        raise ParameterError(f"D has {D.shape[-2]} bins, expected 1 + n_fft // 2 = {1 + n_fft // 2}")
    real = np.float64 if D.dtype == np.complex128 else np.float32
    w = _window(n_fft, win_length).astype(real)
    frames = np.fft.irfft(np.swapaxes(D, -1, -2), n=n_fft, axis=-1).astype(real) * w
    n_fr = D.shape[-1]
    total = n_fft + hop_length * (n_fr - 1)
    y = np.zeros(D.shape[:-2] + (total,), dtype=real)
    env = np.zeros(total, dtype=real)
    w2 = w * w
    for t in range(n_fr):
        s = t * hop_length
        y[..., s : s + n_fft] += frames[..., t, :]
        env[s : s + n_fft] += w2
    nz = env > np.finfo(real).tiny
    y[..., nz] /= env[nz]
    y = y[..., n_fft // 2 :]
    if length is None:
        return y[..., : hop_length * (n_fr - 1)]
    if y.shape[-1] >= length:
        return y[..., :length]
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, length - y.shape[-1])])


def _torch_window(n_fft: int, win_length: int, like: torch.Tensor) -> torch.Tensor:
    real = torch.float64 if like.dtype in (torch.float64, torch.complex128) else torch.float32
    return torch.tensor(_window(n_fft, win_length), dtype=real, device=like.device)


def stft_torch(y: torch.Tensor, *, n_fft: int = 2048, hop_length: int | None = None,
               win_length: int | None = None) -> torch.Tensor:
    """Centred STFT in torch, differentiable, same conventions as :func:`stft`.

    Parameters
    ----------
    y : torch.Tensor [shape=(..., n)], real

    Returns
    -------
    D : torch.Tensor [shape=(..., 1 + n_fft // 2, frames)], complex
    """
    n_fft, hop_length, win_length = resolve_stft(n_fft, hop_length, win_length)
    lead = y.shape[:-1]
    D = torch.stft(y.reshape(-1, y.shape[-1]), n_fft, hop_length=hop_length, win_length=n_fft,
                   window=_torch_window(n_fft, win_length, y), center=True, pad_mode="constant",
                   return_complex=True)
    return D.reshape(*lead, *D.shape[-2:])


def istft_torch(D: torch.Tensor, *, hop_length: int | None = None, win_length: int | None = None,
                n_fft: int | None = None, length: int | None = None) -> torch.Tensor:
    """Inverse of :func:`stft_torch`, differentiable.

    Parameters
    ----------
    D : torch.Tensor [shape=(..., 1 + n_fft // 2, frames)], complex

    Returns
    -------
    y : torch.Tensor [shape=(..., n)]
    """
    n_fft = 2 * (D.shape[-2] - 1) if n_fft is None else n_fft
    n_fft, hop_length, win_length = resolve_stft(n_fft, hop_length, win_length)
    lead = D.shape[:-2]
    Df = D.reshape(-1, *D.shape[-2:])
    if length is None:
        length = hop_length * (D.shape[-1] - 1)
    y = torch.istft(Df, n_fft, hop_length=hop_length, win_length=n_fft,
                    window=_torch_window(n_fft, win_length, D), center=True, length=length)
    return y.reshape(*lead, y.shape[-1])
