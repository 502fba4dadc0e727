"""Spectrogram figures (matplotlib, no screen needed): content, style and result side by side."""

from __future__ import annotations

import numpy as np

__all__ = ["spectrogram_figure", "save_figure"]


def spectrogram_figure(panels, *, sr: int, hop_length: int, fmax: float | None = None):
    """A row of log-magnitude spectrograms with time in seconds and frequency in Hz.

    Parameters
    ----------
    panels : sequence of (str, np.ndarray [shape=(bins, frames)])
        Titles and linear magnitudes (one STFT: same ``sr`` and ``hop_length``).
    sr, hop_length : int
    fmax : float, optional
        Top of the frequency axis; default ``sr / 2``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fmax = sr / 2 if fmax is None else fmax
    ref = max(float(np.max(S)) for _, S in panels) or 1.0
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), sharey=True,
                             constrained_layout=True)
    axes = np.atleast_1d(axes)
    for ax, (title, S) in zip(axes, panels):
        db = 20 * np.log10(np.maximum(S, 1e-5 * ref) / ref)
        bins, frames = S.shape
        extent = (0, frames * hop_length / sr, 0, sr / 2)
        im = ax.imshow(db, origin="lower", aspect="auto", extent=extent, cmap="magma",
                       vmin=-80, vmax=0, interpolation="nearest")
        ax.set_ylim(0, fmax)
        ax.set_title(title)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (Hz)")
    fig.colorbar(im, ax=list(axes), label="dB (re the loudest panel)")
    return fig


def save_figure(fig, path, *, overwrite: bool = False, protect=()) -> None:
    """Write a figure atomically (format from the extension), then close it."""
    import matplotlib.pyplot as plt

    from .io.files import atomic_output

    fmt = str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else "png"
    try:
        with atomic_output(path, overwrite=overwrite, protect=protect) as tmp:
            fig.savefig(tmp, format=fmt, dpi=110)
    finally:
        plt.close(fig)
