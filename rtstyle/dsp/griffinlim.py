"""Offline phase reconstruction: fast Griffin-Lim, and the seed's "no Griffin-Lim" inverse.

Fast Griffin-Lim (Perraudin, Balazs & Søndergaard 2013) is plain Griffin-Lim plus an inertial
step; the update is librosa's (``librosa.griffinlim``'s ``momentum``), so ``momentum=0`` is the
classic algorithm and ``momentum=0.99`` its fast variant. The loop runs in torch (batched FFTs,
all cores) on the numpy STFT's conventions (:mod:`rtstyle.dsp.stft`).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .._validate import nonnegative_float, nonnegative_int, one_of
from ..errors import ParameterError
from .stft import istft, istft_torch, resolve_stft, stft_torch

__all__ = ["griffinlim", "istft_with_phase", "random_angles", "GL_INITS"]

GL_INITS = ("random", "zeros")


def random_angles(shape, *, seed: int = 0) -> np.ndarray:
    """Unit-modulus complex phases, uniform on [-pi, pi), from a seeded generator.

    Parameters
    ----------
    shape : tuple
        ``(bins, frames)``; leading (channel) axes broadcast, so channels share the draws.
    """
    rng = np.random.default_rng(seed)
    return np.exp(1j * rng.uniform(-np.pi, np.pi, size=shape)).astype(np.complex64)


def griffinlim(S: np.ndarray, *, n_iter: int = 32, n_fft: int | None = None,
               hop_length: int | None = None, win_length: int | None = None,
               momentum: float = 0.99, init: str = "random", angles: np.ndarray | None = None,
               length: int | None = None, seed: int = 0, device: str = "cpu") -> np.ndarray:
    """Audio whose STFT magnitude approaches ``S``, by fast Griffin-Lim.

    Parameters
    ----------
    S : np.ndarray [shape=(..., 1 + n_fft // 2, frames)], >= 0
        Target linear magnitude.
    n_iter : int >= 0
        Projections. 0 returns ``istft(S * angles)``.
    momentum : float >= 0
        0 is classic Griffin-Lim; 0.99 (librosa's default) is fast Griffin-Lim. Above 1 it may
        diverge (a warning, as in librosa).
    init : {'random', 'zeros'}
        Initial phase when ``angles`` is not given: uniform random (seeded, shared by leading
        axes) or zero phase (librosa's ``init=None``).
    angles : np.ndarray [shape broadcastable to S], complex, optional
        A given initial phase (its modulus is ignored), e.g. the content's STFT phase.
    length : int, optional
        Output length in samples; default ``hop_length * (frames - 1)``.
    seed : int
        Seed of the random initial phase.
    device : str
        Torch device to iterate on.

    Returns
    -------
    y : np.ndarray [shape=(..., length), dtype=float32]
    """
    S = np.asarray(S)
    if S.ndim < 2:
        raise ParameterError(f"S must have shape (..., bins, frames), got S.shape={S.shape}")
    n_fft = 2 * (S.shape[-2] - 1) if n_fft is None else n_fft
    n_fft, hop_length, win_length = resolve_stft(n_fft, hop_length, win_length)
    if S.shape[-2] != 1 + n_fft // 2:
        raise ParameterError(f"S has {S.shape[-2]} bins, expected 1 + n_fft // 2 = {1 + n_fft // 2}")
    n_iter = nonnegative_int(n_iter, "n_iter")
    momentum = nonnegative_float(momentum, "momentum")
    if momentum > 1:
        warnings.warn(f"Griffin-Lim with momentum={momentum} > 1 can be unstable", stacklevel=2)
    one_of(init, GL_INITS, "init")
    if length is None:
        length = hop_length * (S.shape[-1] - 1)
    if angles is None:
        angles = random_angles(S.shape[-2:], seed=seed) if init == "random" else np.ones(S.shape[-2:], np.complex64)
    else:
        angles = np.asarray(angles)
        if not np.iscomplexobj(angles):
            raise ParameterError("angles must be complex (a phase), e.g. np.exp(1j * phi)")
        angles = angles / np.maximum(np.abs(angles), 1e-16)
    opts = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length)
    with torch.no_grad():
        mag = torch.as_tensor(S, dtype=torch.float32, device=device)
        ang = torch.tensor(np.broadcast_to(angles, S.shape), dtype=torch.complex64, device=device)
        prev = torch.zeros_like(ang)
        beta = momentum / (1 + momentum)
        for _ in range(n_iter):
            rebuilt = stft_torch(istft_torch(mag * ang, length=length, **opts), **opts)
            rebuilt = _fit_frames(rebuilt, S.shape[-1])
            ang = rebuilt - beta * prev
            ang = ang / (ang.abs() + 1e-16)
            prev = rebuilt
        y = istft_torch(mag * ang, length=length, **opts)
    return y.cpu().numpy().astype(np.float32)


def _fit_frames(D: torch.Tensor, frames: int) -> torch.Tensor:
    """Crop or zero-pad the frame axis (a ``length`` that is not ``hop * (frames - 1)``)."""
    if D.shape[-1] >= frames:
        return D[..., :frames]
    return torch.nn.functional.pad(D, (0, frames - D.shape[-1]))


def istft_with_phase(S: np.ndarray, phase: np.ndarray, *, n_fft: int | None = None,
                     hop_length: int | None = None, win_length: int | None = None,
                     length: int | None = None) -> np.ndarray:
    """The seed's "no Griffin-Lim" inverse: a magnitude with another signal's phase.

    Parameters
    ----------
    S : np.ndarray [shape=(..., bins, frames)], >= 0
        Target magnitude.
    phase : np.ndarray [shape=(..., bins, frames)], complex
        An STFT (e.g. the content's) whose phase is reused; its modulus is ignored.

    Returns
    -------
    y : np.ndarray [shape=(..., length), dtype=float32]
    """
    S = np.asarray(S)
    phase = np.asarray(phase)
    if not np.iscomplexobj(phase):
        raise ParameterError("phase must be a complex STFT")
    if phase.shape[-2:] != S.shape[-2:]:
        raise ParameterError(f"phase has shape {phase.shape[-2:]}, S has {S.shape[-2:]}: bins and frames must match")
    unit = phase / np.maximum(np.abs(phase), 1e-16)
    return istft(S * unit, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                 length=length).astype(np.float32)
