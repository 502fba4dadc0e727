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

__all__ = ["render", "style_list", "STYLES", "PHASE_INITS", "DEFAULTS"]

#: Built-in styles. ``identity`` is the permanent pass-through transform (tests, bypass).
STYLES = ("identity",)
#: Equal to ``rtstyle.dsp.phase_stream.PHASE_INITS`` (a test checks); repeated here so the CLI
#: parser can offer the choices without importing the engine.
PHASE_INITS = ("input", "rtpghi", "random")
#: :func:`render`'s defaults, for the CLI (``None``: the models' own, see :func:`render`).
DEFAULTS = {"style": None, "block_size": 512, "n_fft": None, "hop_length": None,
            "lookahead": 1, "phase_iters": 16, "phase_init": "input", "momentum": None,
            "strength": 1.0, "morph": 0.0, "crossfade_ms": 50.0, "mix": 1.0, "gain_db": 0.0}


def style_list(style=None, *, models_dir=None) -> list[str]:
    """The style list of ``render``/``live``: ``'A,B,C'`` or a list; ``None``: every listed style.

    Without a style the list is ``rtstyle styles`` in its order (bundled first, then user
    models; broken entries skipped), or ``['identity']`` when no model is installed.
    """
    if style is None:
        from .models import list_styles

        names = [e["name"] for e in list_styles(models_dir) if not e.get("error")]
        return names or ["identity"]
    if isinstance(style, str):
        style = style.split(",")
    items = [s.strip() if isinstance(s, str) else s for s in style]
    if not items or any(s == "" for s in items):
        raise ParameterError(f"style={style!r}: an empty name in the style list")
    return items


def render(y: np.ndarray, *, sr: int, style=None, block_size: int = 512,
           n_fft: int | None = None, hop_length: int | None = None, lookahead: int = 1,
           phase_iters: int = 16, phase_init: str = "input", momentum: float | None = None,
           strength: float = 1.0, morph: float = 0.0, crossfade_ms: float = 50.0,
           mix: float = 1.0, gain_db: float = 0.0, device: str = "cpu", models_dir=None,
           keep_latency: bool = False) -> tuple[np.ndarray, dict]:
    """Run ``y`` through the streaming engine, ``block_size`` samples at a time, then flush.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)], floating point, finite
    sr : int > 0
        Rate of ``y``. The engine runs at the models' rate (``y`` is resampled to it and back,
        soxr HQ), or at ``sr`` for ``identity``.
    style : str or list of str, optional
        The style list: ``'identity'``, ``MODEL`` or ``MODEL:STYLE``, comma-separated or a list;
        the first is heard. Default: every style ``rtstyle styles`` lists (the first heard), or
        ``identity`` when no model is installed.
    block_size : int > 0
        Samples per :meth:`~rtstyle.stream.Streamer.feed` call, as a live callback would deliver
        them. The output does not depend on it (within float32 rounding).
    n_fft, hop_length : int, optional
        Default: the models' (1024 and 256 for ``identity``).
    lookahead, phase_iters, phase_init, momentum, strength, morph, crossfade_ms, mix, gain_db, device
        The :class:`~rtstyle.stream.Streamer`'s parameters.
    models_dir : path, optional
        User model folder for resolving names.
    keep_latency : bool
        ``False``: output aligned with ``y`` and of its length. ``True``: what live would play,
        ``n + latency`` samples with ``y[t]`` at ``out[t + latency]``.

    Returns
    -------
    out : np.ndarray [shape=(channels, m) or (m,), dtype=float32]
        Same layout and rate as ``y``; ``m = n`` or ``n + latency``.
    info : dict
        ``latency_samples`` and ``latency_ms`` (at ``sr``), ``rtf`` (processing seconds /
        duration), ``sc_db`` (spectral convergence of the aligned output against the magnitudes
        the engine asked for: ``|STFT(y)|`` for identity, the styled targets otherwise; ``None``
        for a silent input), ``duration_s``, ``peak_dbfs`` (``None`` when silent),
        ``model_sr``, ``n_fft``, ``hop_length``, ``styles`` (the list's labels).

    Raises
    ------
    ParameterError
        Invalid audio or an invalid engine parameter (naming the value).
    ModelError
        A style that cannot be found or loaded.

    Examples
    --------
    >>> import numpy as np, rtstyle
    >>> y = 0.5 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    >>> out, info = rtstyle.render(y, sr=22050, style="identity")
    >>> out.shape, info["latency_samples"]
    ((22050,), 1057)
    """
    from .dsp.metrics import spectral_convergence
    from .dsp.stft import stft
    from .io.files import resample
    from .stream import Streamer
    from .stream.streamer import resolve_styles

    y = v.valid_audio(y)
    sr = v.positive_int(sr, "sr")
    block_size = v.positive_int(block_size, "block_size")
    if not isinstance(keep_latency, bool):
        raise ParameterError(f"keep_latency={keep_latency!r} must be True or False")
    styles = resolve_styles(style_list(style, models_dir=models_dir), device="cpu",
                            models_dir=models_dir)
    model_sr = next((m.sr for m, _ in styles if m is not None), sr)

    n = y.shape[-1]
    x = y if model_sr == sr else resample(y, orig_sr=sr, target_sr=model_sr)
    st = Streamer([m if m is None else (m, i) for m, i in styles], sr=model_sr, n_fft=n_fft,
                  hop_length=hop_length, lookahead=lookahead, phase_iters=phase_iters,
                  phase_init=phase_init, momentum=momentum, strength=strength, morph=morph,
                  crossfade_ms=crossfade_ms, mix=mix, gain_db=gain_db, device=device,
                  channels=1 if y.ndim == 1 else y.shape[0])
    st.record_targets = True
    t0 = time.perf_counter()
    m = x.shape[-1]
    parts = [st.feed(x[..., i: i + block_size]) for i in range(0, m, block_size)]
    parts.append(st.flush())
    elapsed_engine = time.perf_counter() - t0
    played = np.concatenate(parts, axis=-1)  # m + latency samples: what live would play
    aligned = played[..., st.latency: st.latency + m]

    sc_db = None
    if np.any(x):
        S = st.recorded_targets()
        S = S[..., : 1 + m // st.hop_length]    # the frames of the centred STFT of x
        if S.shape[-1] and S.any():
            sc_db = float(spectral_convergence(aligned, S[0] if aligned.ndim == 1 else S,
                                               n_fft=st.n_fft, hop_length=st.hop_length))
    t1 = time.perf_counter()
    if model_sr != sr:
        aligned = _fit(resample(aligned, orig_sr=model_sr, target_sr=sr), n)
    latency = int(round(st.latency * sr / model_sr))
    out = aligned
    if keep_latency:
        pad = [(0, 0)] * (aligned.ndim - 1) + [(latency, 0)]
        out = np.pad(aligned, pad)
    elapsed = elapsed_engine + time.perf_counter() - t1
    out = out.astype(np.float32, copy=False)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    duration_s = n / sr
    info = {
        "latency_samples": latency,
        "latency_ms": 1000.0 * latency / sr,
        "rtf": elapsed / duration_s,
        "sc_db": sc_db,
        "duration_s": duration_s,
        "peak_dbfs": float(20 * np.log10(peak)) if peak > 0 else None,
        "model_sr": int(model_sr),
        "n_fft": int(st.n_fft),
        "hop_length": int(st.hop_length),
        "styles": st.styles,
        "limited_samples": int(st.limited_samples),
    }
    return out, info


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad the last axis to ``n`` samples (resampling rounds lengths)."""
    if y.shape[-1] >= n:
        return y[..., :n]
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, n - y.shape[-1])])
