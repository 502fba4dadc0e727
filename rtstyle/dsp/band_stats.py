"""Band statistics: match the input's running spectral statistics to a style's.

The levers of a spectral-envelope style (DESIGN.md, "Gain nets"; the research note's
"statistics conditioning", after RAVE's AdaIN): per mel band ``b``, the log band power
``L_b(t)`` of the input has a running mean ``μ_b`` and spread ``σ_b`` over the last few seconds;
the style's reference recording has its own ``μ*_b`` and ``σ*_b``. The gain (in nepers of power)

    G_b(t) = (μ*_b − μ_b) + (r_b − 1) · (L_b(t) − μ_b),   r_b = clip(σ*_b / σ_b, ¼, 2) ** spread

moves the input's long-term spectrum onto the style's (the mean) and scales how far each band
swings around it (the spread), while every frame keeps its own shape relative to the input's
mean: harmonics, formant movements and onsets stay (they are the deviations ``L − μ``, only
rescaled). The frames are weighted so that pauses and silence do not count, level-free, in one
of two ways (``TransformConfig.stats_weight``): by each frame's RMS (the first statistics
models; scaling the input scales every weight alike), or ``gated`` (the bundled models
now): every frame within 40 dB of its window's loudest and above −70 dBFS counts alike, so the
quiet frames of speech — consonants, the ends of syllables — are moved onto the style as well as
its vowels (a cello's timbre gain on speech rose from 0.01 to 0.22 with it, docs/quality.md).
A level moves ``L`` by a constant, which the per-frame energy match that follows removes.
With ``TransformConfig.stats_shape`` the statistics are those of ``L`` less its mean over the
bands, frame by frame (:func:`band_features`): the frame's shape, so a voice's loudness swings
(syllables, pauses) no longer count in every band's spread.

Shapes follow the nets: ``(..., bins, frames)`` magnitudes in, ``(..., bands, frames)`` out.
Everything here is plain torch arithmetic shared by training (whole chunks), offline use and
the streaming net (:class:`rtstyle.nn.transform.TransformNet`), so a stream equals the whole.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import STATS_WEIGHTINGS  # noqa: F401  (re-exported: the weightings' one home)

__all__ = ["band_power_basis", "band_log_power", "band_features", "stats_terms", "frame_level_db", "gated_weights",
           "gated_past", "frame_weights",
           "window_sums", "window_stats", "window_frames", "reference_stats", "match_gain",
           "SPREAD_RANGE", "SPREAD_FLOOR", "STATS_WEIGHTINGS", "GATE_DB", "GATE_FLOOR_DBFS"]

#: Floor of a band's log-power spread, in nepers of power (about ±2 dB): a band that barely
#: moves over the window (a steady tone, the first frames of a stream) is not stretched by the
#: style's whole spread.
SPREAD_FLOOR = 0.5
#: Bounds of the spread ratio ``σ*/σ``: a band swings at most twice as far, or a quarter as far,
#: as in the input (a quarter still keeps a formant's movement audible).
SPREAD_RANGE = (0.25, 2.0)
#: Added to the band power before the log (power of linear magnitudes; the STFT of full-scale
#: audio gives powers of order 1e2..1e4, digital silence exactly 0): keeps ``log`` finite.
_TINY = 1e-12
#: The relative gate: a frame counts when it is within this many dB of the running peak level.
GATE_DB = 40.0
#: The absolute gate: frames below this level (dB re a full-scale sine) never count, so room
#: noise or dither before the first note is not taken for the performer's spectrum (EBU R 128
#: gates its loudness the same two ways, at −70 LUFS and relative to the programme).
GATE_FLOOR_DBFS = -70.0


def band_power_basis(basis: torch.Tensor) -> torch.Tensor:
    """The gain bands as power weights: each band's column scaled to sum to 1.

    Parameters
    ----------
    basis : torch.Tensor [shape=(bins, bands)]
        :func:`rtstyle.dsp.gain.band_basis`.

    Returns
    -------
    weights : torch.Tensor [shape=(bins, bands)]
        ``weights.T @ |X|²`` is each band's mean power per bin.
    """
    return basis / basis.sum(dim=0, keepdim=True)


def band_log_power(S: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Log band power (nepers of power) of magnitudes ``S`` (..., bins, frames) → (..., bands,
    frames)."""
    return torch.log(torch.matmul(weights.transpose(0, 1), S.square()) + _TINY)


def band_features(S: torch.Tensor, weights: torch.Tensor, *, shape: bool = False) -> torch.Tensor:
    """What the statistics are taken of: :func:`band_log_power` of magnitudes ``S`` (..., bins,
    frames) → (..., bands, frames); with ``shape``, less its mean over the bands in each frame
    (the frame's spectral shape, free of its level)."""
    L = band_log_power(S, weights)
    return L - L.mean(dim=-2, keepdim=True) if shape else L


def stats_terms(S: torch.Tensor, L: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """Per frame the weighted moments summed by the window: ``[w, w·L, w·L²]``.

    ``S`` (..., bins, frames) magnitudes, ``L`` their :func:`band_log_power`; returns
    (..., 1 + 2·bands, frames). ``w`` (..., 1, frames): the frames' weights; ``None``: each
    frame's RMS magnitude.
    """
    if w is None:
        w = S.square().mean(dim=-2, keepdim=True).sqrt()
    return torch.cat((w, w * L, w * L.square()), dim=-2)


def frame_level_db(S: torch.Tensor) -> torch.Tensor:
    """Each frame's level in dB re a full-scale sine, float64: (..., bins, frames) magnitudes of
    an ``n_fft = 2 (bins − 1)`` unnormalised Hann STFT → (..., 1, frames)."""
    bins = S.shape[-2]
    n_fft = 2 * (bins - 1)
    # a full-scale sine's mean power per bin: the one-sided half of Parseval's N·Σ(x·w)², with
    # Σ(x·w)² = ½·Σw² = ½·3N/8 for the Hann window
    full = 3.0 * n_fft * n_fft / (32.0 * bins)
    p = S.to(torch.float64).square().mean(dim=-2, keepdim=True)
    return 10.0 * torch.log10(p.clamp_min(1e-30) / full)


#: The level of a frame before the stream began (silence), in :func:`frame_level_db`'s units.
_BEFORE = -1e9


def gated_past(batch: int, window: int, *, device=None) -> torch.Tensor:
    """The level gate's memory at the start of a stream: (batch, 1, window − 1) of silence."""
    return torch.full((batch, 1, window - 1), _BEFORE, dtype=torch.float64, device=device)


def gated_weights(level: torch.Tensor, past: torch.Tensor | None, window: int) -> torch.Tensor:
    """Equal weights for the frames a two-way level gate lets through, 0 for the rest.

    A frame counts when its level is within :data:`GATE_DB` of the loudest frame of the
    statistics window that ends with it (itself and the ``window − 1`` before), and above
    :data:`GATE_FLOOR_DBFS`. Each frame is decided when it arrives, from the past only, so
    running sums of the weighted terms stay exact and a stream equals the whole. Against RMS
    weights, the quiet frames of speech (consonants, the ends of syllables) count as much as
    its vowels, so their spectra move onto the style's too.

    Parameters
    ----------
    level : torch.Tensor [shape=(..., 1, frames)], float64
        :func:`frame_level_db` of the frames to weigh.
    past : torch.Tensor [shape=(..., 1, window − 1)] or None
        The levels of the frames before them (``None``: silence before the first).
    window : int >= 1
        The statistics window in frames.

    Returns
    -------
    w : torch.Tensor [shape=(..., 1, frames)], float64
        1.0 or 0.0 per frame.
    """
    return _gate(level, past, window)[0]


def _gate(level: torch.Tensor, past: torch.Tensor | None, window: int):
    """:func:`gated_weights`, and the levels ``past`` + ``level`` it looked at."""
    if past is None:
        past = level.new_full((*level.shape[:-1], window - 1), _BEFORE)
    past = past.expand(*level.shape[:-1], window - 1)
    full = torch.cat((past, level), dim=-1)
    peak = full.unfold(-1, window, 1).amax(dim=-1)                 # (..., 1, frames)
    w = (level > peak - GATE_DB) & (level > GATE_FLOOR_DBFS)
    return w.to(level.dtype), full


def frame_weights(S: torch.Tensor, *, weighting: str, window: int,
                  past: torch.Tensor | None = None):
    """The frames' weights for :func:`stats_terms` under ``weighting``, and the gate's memory.

    ``rms``: ``(None, past)`` (:func:`stats_terms` weighs by RMS itself). ``gated``:
    :func:`gated_weights` of the frames of ``S`` (..., bins, frames) in ``S``'s dtype, and the
    levels of the last ``window − 1`` frames, ``past`` included, for the next call.
    """
    if weighting != "gated":
        return None, past
    w, full = _gate(frame_level_db(S), past, window)
    return w.to(S.dtype), full[..., full.shape[-1] - (window - 1):]


def window_sums(full: torch.Tensor, n: int) -> torch.Tensor:
    """Sums over every run of ``n`` consecutive frames: (batch, C, n − 1 + k) → (batch, C, k).

    Offline, ``full`` is the terms with ``n − 1`` zero frames before them; streaming, the last
    ``n − 1`` frames of terms (a cache) before the new ones: the same sums either way.
    """
    C = full.shape[-2]
    ones = full.new_ones(C, 1, n)
    return F.conv1d(full, ones, groups=C)


def window_stats(sums: torch.Tensor, bands: int) -> tuple[torch.Tensor, torch.Tensor,
                                                          torch.Tensor]:
    """The weighted mean and spread of the log band power from :func:`window_sums`.

    Returns
    -------
    mean, spread : torch.Tensor [shape=(batch, bands, k)]
        ``spread`` includes :data:`SPREAD_FLOOR` (``sqrt(var + floor²)``).
    heard : torch.Tensor [shape=(batch, 1, k)], bool
        False where the whole window was silent (no statistics: no gain).
    """
    s0 = sums[:, :1]
    heard = s0 > 0
    d = s0.clamp_min(1e-30)
    mean = sums[:, 1:1 + bands] / d
    var = (sums[:, 1 + bands:] / d - mean.square()).clamp_min(0.0)
    return mean, torch.sqrt(var + SPREAD_FLOOR ** 2), heard


def window_frames(seconds: float, *, sr: int, hop_length: int) -> int:
    """The statistics window of ``seconds`` in frames of ``hop_length`` (at least 2)."""
    return max(2, round(float(seconds) * sr / hop_length))


def reference_stats(S, weights: torch.Tensor, *, weighting: str = "rms",
                    stats_frames: int = 172,
                    shape: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A style reference's own statistics over all its frames.

    Parameters
    ----------
    S : array or torch.Tensor [shape=(..., bins, frames)], or a sequence of them
        Magnitudes of the reference; every frame of every channel (and of every reference of a
        sequence) is pooled.
    weights : torch.Tensor [shape=(bins, bands)]
        :func:`band_power_basis`; the statistics are computed in its dtype and device.
    weighting : {'rms', 'gated'}
        How the frames are weighted, as the net weights its input's (:data:`STATS_WEIGHTINGS`).
    stats_frames : int
        The net's window, over which the gate finds the peak (``gated`` only).
    shape : bool
        Statistics of the frames' shape, as the net takes its input's (:func:`band_features`).

    Returns
    -------
    mean, spread : torch.Tensor [shape=(bands,)]
        Weighted as the input's (:func:`window_stats`, spread floor included).
    """
    parts = [torch.as_tensor(p, dtype=weights.dtype, device=weights.device)
             for p in (S if isinstance(S, (list, tuple)) else [S])]
    S = torch.cat([p.movedim(-2, 0).reshape(p.shape[-2], -1) for p in parts], dim=-1)
    L = band_features(S, weights, shape=shape)
    w, _ = frame_weights(S, weighting=weighting, window=stats_frames)
    sums = stats_terms(S, L, w).sum(dim=-1, keepdim=True)[None]
    mean, spread, heard = window_stats(sums, weights.shape[1])
    if not bool(heard.all()):
        raise ValueError("the style reference is silent")
    return mean[0, :, 0], spread[0, :, 0]


def match_gain(L: torch.Tensor, mean: torch.Tensor, spread: torch.Tensor, heard: torch.Tensor,
               style_mean: torch.Tensor, style_spread: torch.Tensor,
               exponent: float) -> torch.Tensor:
    """The gain that moves the input's statistics onto the style's (module docstring).

    Parameters
    ----------
    L, mean, spread : torch.Tensor [shape=(batch, bands, k)]
        The frames' log band power and the window's statistics (:func:`window_stats`).
    heard : torch.Tensor [shape=(batch, 1, k)], bool
    style_mean, style_spread : torch.Tensor [shape=(batch, bands, 1)]
    exponent : float >= 0
        How far the spread is matched: 0 moves the mean only, 1 matches the spread too.

    Returns
    -------
    G : torch.Tensor [shape=(batch, bands, k)]
        Log power gain per band (nepers of power; halve it for magnitudes), its mean over the
        bands removed (a level); 0 where not heard.
    """
    G = style_mean - mean
    if exponent:
        r = (style_spread / spread).clamp(*SPREAD_RANGE) ** exponent
        G = G + (r - 1.0) * (L - mean)
    # a gain equal in every band is a level, which the frame energy match takes back: remove
    # it, so the bound on the gain is spent on the shape (a reference 20 dB louder than the
    # input would otherwise use 20 dB of it)
    G = G - G.mean(dim=-2, keepdim=True)
    return torch.where(heard, G, torch.zeros_like(G))
