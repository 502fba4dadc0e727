"""Spectral gains: smooth band bases for a gain curve, and per-frame energy matching.

A style net in ``gain`` mode (:class:`rtstyle.nn.transform.TransformNet`) does not write a
spectrum: it writes a smooth gain curve over frequency for every frame, ``log g = B @ c``, with
``B`` the raised-cosine bands of :func:`band_basis` and ``c`` a few coefficients per frame. The
input keeps its harmonics, onsets and phase; only its spectral envelope changes (learned
cross-synthesis). :func:`match_frame_energy` then gives each output frame the input frame's
energy, in training as in the live engine (``envelope='follow'``), so the level follows the
performer.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validate import positive_int
from ..errors import ParameterError

__all__ = ["band_basis", "match_frame_energy"]


def _hz_to_mel(f):
    """HTK mel scale (a pure function, so the basis needs no librosa import)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def band_basis(bins: int, n_bands: int, *, sr: int) -> np.ndarray:
    """Raised-cosine bands, evenly spaced on the mel scale from 0 Hz to Nyquist.

    Neighbouring bands overlap by half and the bands sum to 1 at every bin (a partition of
    unity), so a constant coefficient vector is a flat gain and any coefficient vector is a
    curve as smooth as the band spacing: about ``(mel(sr/2) / (n_bands - 1))`` mel.

    Parameters
    ----------
    bins : int
        Frequency bins, ``1 + n_fft // 2``.
    n_bands : int >= 2
    sr : int
        Sample rate (places the bands in Hz).

    Returns
    -------
    basis : np.ndarray [shape=(bins, n_bands), dtype=float32]
    """
    bins = positive_int(bins, "bins")
    n_bands = positive_int(n_bands, "bands")
    sr = positive_int(sr, "sr")
    if n_bands < 2:
        raise ParameterError(f"bands={n_bands} must be at least 2")
    mel = _hz_to_mel(np.linspace(0.0, sr / 2, bins))
    pos = mel / mel[-1] * (n_bands - 1)                    # band coordinate of each bin
    centres = np.arange(n_bands, dtype=np.float64)
    d = np.clip(np.abs(pos[:, None] - centres[None, :]), 0.0, 1.0)
    basis = 0.5 * (1.0 + np.cos(np.pi * d))                # 1 at its centre, 0 one band away
    return (basis / basis.sum(axis=1, keepdims=True)).astype(np.float32)


def match_frame_energy(reference: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """Scale each frame of ``S`` to the energy of the same frame of ``reference``.

    Frame energy is the sum of squared linear magnitudes over the bins. A silent frame of
    ``S`` stays silent (it cannot be scaled up to anything).

    Parameters
    ----------
    reference, S : torch.Tensor [shape=(..., bins, frames)]
        Linear magnitudes (>= 0).

    Returns
    -------
    S_scaled : torch.Tensor [shape=S.shape]
    """
    e_ref = reference.square().sum(dim=-2, keepdim=True)
    e = S.square().sum(dim=-2, keepdim=True)
    gain = torch.where(e > 0, torch.sqrt(e_ref / e.clamp_min(1e-30)), torch.zeros_like(e))
    return S * gain
