"""Offline render through the live engine: :func:`render` feeds a signal to a
:class:`~rtstyle.stream.Streamer` block by block, exactly as live audio would arrive.

DESIGN.md, "Render is live, aligned": by default the output is aligned with the input and of its
length (the engine latency removed); with ``keep_latency=True`` it is exactly what live would
play: input length + latency samples, input sample ``t`` at output sample ``t + latency``.

This module stays light (numpy only): ``import rtstyle`` binds ``rtstyle.render`` to this
module's function eagerly (a lazy attribute would be replaced by the submodule the first time
anything imports ``rtstyle.render``), so the engine and the metrics are imported inside
:func:`render`.
"""

from __future__ import annotations

import time

import numpy as np

from . import _validate as v
from .errors import ParameterError

__all__ = ["render", "STYLES", "PHASE_INITS", "DEFAULTS"]

#: Built-in styles. ``identity`` is the permanent pass-through transform (tests, bypass).
STYLES = ("identity",)
#: Equal to ``rtstyle.dsp.phase_stream.PHASE_INITS`` (a test checks); repeated here so the CLI
#: parser can offer the choices without importing the engine.
PHASE_INITS = ("input", "rtpghi", "random")
#: :func:`render`'s defaults, for the CLI.
DEFAULTS = {"style": "identity", "block_size": 512, "n_fft": 1024, "hop_length": 256,
            "lookahead": 1, "phase_iters": 16, "phase_init": "input", "momentum": None}


def render(y: np.ndarray, *, sr: int, style: str = "identity", block_size: int = 512,
           n_fft: int = 1024, hop_length: int = 256, lookahead: int = 1, phase_iters: int = 16,
           phase_init: str = "input", momentum: float | None = None,
           keep_latency: bool = False) -> tuple[np.ndarray, dict]:
    """Run ``y`` through the streaming engine, ``block_size`` samples at a time, then flush.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)], floating point, finite
    sr : int > 0
        Rate of ``y``; the engine runs at it.
    style : str
        ``'identity'`` (trained styles come with a later release).
    block_size : int > 0
        Samples per :meth:`~rtstyle.stream.Streamer.feed` call, as a live callback would deliver
        them. The output does not depend on it (within float32 rounding).
    n_fft, hop_length, lookahead, phase_iters, phase_init, momentum
        The :class:`~rtstyle.stream.Streamer`'s parameters.
    keep_latency : bool
        ``False``: output aligned with ``y`` and of its length. ``True``: what live would play,
        ``n + latency`` samples with ``y[t]`` at ``out[t + latency]``.

    Returns
    -------
    out : np.ndarray [shape=(channels, m) or (m,), dtype=float32]
        Same layout as ``y``; ``m = n`` or ``n + latency``.
    info : dict
        ``latency_samples``, ``latency_ms``, ``rtf`` (processing seconds / duration),
        ``sc_db`` (spectral convergence of the aligned output against ``|STFT(y)|``, same
        ``n_fft`` and ``hop_length``; ``None`` for a silent input), ``duration_s``,
        ``peak_dbfs`` (of ``out``; ``None`` when it is silent).

    Raises
    ------
    ParameterError
        Invalid audio, an unknown style, or an invalid engine parameter (naming the value).

    Examples
    --------
    >>> import numpy as np, rtstyle
    >>> y = 0.5 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    >>> out, info = rtstyle.render(y, sr=22050)
    >>> out.shape, info["latency_samples"]
    ((22050,), 1024)
    """
    from .dsp.metrics import spectral_convergence
    from .dsp.stft import stft
    from .stream import Streamer

    y = v.valid_audio(y)
    sr = v.positive_int(sr, "sr")
    if style not in STYLES:
        raise ParameterError(
            f"style={style!r}: only the built-in 'identity' style exists in this release; "
            "trained styles come with a later release")
    block_size = v.positive_int(block_size, "block_size")
    if not isinstance(keep_latency, bool):
        raise ParameterError(f"keep_latency={keep_latency!r} must be True or False")

    n = y.shape[-1]
    st = Streamer(sr=sr, n_fft=n_fft, hop_length=hop_length, lookahead=lookahead,
                  phase_iters=phase_iters, phase_init=phase_init, momentum=momentum,
                  channels=1 if y.ndim == 1 else y.shape[0])
    t0 = time.perf_counter()
    parts = [st.feed(y[..., i: i + block_size]) for i in range(0, n, block_size)]
    parts.append(st.flush())
    elapsed = time.perf_counter() - t0
    played = np.concatenate(parts, axis=-1)  # n + latency samples: what live would play
    aligned = played[..., st.latency: st.latency + n]
    out = played if keep_latency else aligned

    sc_db = None
    if np.any(y):
        S = np.abs(stft(y, n_fft=st.n_fft, hop_length=st.hop_length))
        sc_db = float(spectral_convergence(aligned, S, n_fft=st.n_fft, hop_length=st.hop_length))
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    duration_s = n / sr
    info = {
        "latency_samples": int(st.latency),
        "latency_ms": float(st.latency_ms),
        "rtf": elapsed / duration_s,
        "sc_db": sc_db,
        "duration_s": duration_s,
        "peak_dbfs": float(20 * np.log10(peak)) if peak > 0 else None,
    }
    return out, info
