"""The settings of ``rtstyle live`` and of its presets: :data:`DEFAULTS` (every key, with its
default), their checks, and the choices they take."""

from __future__ import annotations

from ..errors import ParameterError
from ..render import DEFAULTS as _RENDER

__all__ = ["DEFAULTS", "ON_DROPOUT", "check_settings", "check_latency"]

#: Settings a preset holds (``--preset`` / ``--save-preset``) with their defaults: the engine's
#: are ``render``'s (so live sounds as render does). ``None``: the models' own (``n_fft``,
#: ``hop_length``), the engine's (``phase_iters``, ``momentum``: per phase init) or every style
#: ``rtstyle styles`` lists (``style``).
DEFAULTS = {
    "style": None, "active": 0,
    **{k: _RENDER[k] for k in ("strength", "morph", "mix", "gain_db")},
    "bypass": False, "crossfade_ms": _RENDER["crossfade_ms"], "envelope": _RENDER["envelope"],
    "input_gain_db": 0.0,
    **{k: _RENDER[k] for k in ("n_fft", "hop_length", "lookahead", "phase_iters", "phase_init",
                               "momentum", "resample_quality")},
    "block_size": 256, "margin_ms": 5.0, "on_dropout": "dry", "device": "cpu",
    "threads": _RENDER["threads"],
    # MIDI (off unless midi or midi_virtual): midi is a port name, part of one, an index, or
    # True (the first port); midi_map a TOML mapping file; midi_channel 1..16 (omni: None)
    "midi": None, "midi_virtual": None, "midi_api": None, "midi_channel": None,
    "midi_map": None,
}
ON_DROPOUT = ("dry", "silence")


def check_settings(settings: dict | None) -> dict:
    """``settings`` over :data:`DEFAULTS` (a key set to None keeps its default), checked and
    normalised (``resample_quality`` upper-case, ``threads`` an int); a new dict.

    Raises ParameterError naming the first bad value, or the unknown keys.
    """
    from .. import _validate as v

    unknown = sorted(set(settings or {}) - set(DEFAULTS))
    if unknown:
        raise ParameterError(f"unknown live setting(s) {', '.join(unknown)}")
    s = dict(DEFAULTS)
    s.update({k: val for k, val in (settings or {}).items() if val is not None})
    v.positive_int(s["block_size"], "block_size")
    if not isinstance(s["margin_ms"], (int, float)) or not 0 <= s["margin_ms"] <= 1000:
        raise ParameterError(f"margin_ms={s['margin_ms']!r} must be a number of ms in 0..1000")
    if s["on_dropout"] not in ON_DROPOUT:
        raise ParameterError(f"on_dropout={s['on_dropout']!r} must be one of "
                             f"{', '.join(ON_DROPOUT)}")
    from ..io.resampling import resample_quality

    s["resample_quality"] = resample_quality(s["resample_quality"], "resample_quality")
    s["threads"] = v.bounded_int(s["threads"], "threads")
    from ..render import ENVELOPES

    s["envelope"] = v.one_of(s["envelope"], ENVELOPES, "envelope")
    ig = s["input_gain_db"]
    if isinstance(ig, bool) or not isinstance(ig, (int, float)) or not -60 <= ig <= 40:
        raise ParameterError(f"input_gain_db={ig!r} must be a number of dB in -60..40")
    return s


def check_latency(latency):
    """PortAudio's suggested latency, checked: ``'low'``, ``'high'`` or seconds in (0, 2]."""
    if latency in ("low", "high"):
        return latency
    try:
        value = float(latency)
    except (TypeError, ValueError):
        raise ParameterError(f"latency={latency!r} must be 'low', 'high' or seconds") from None
    if not 0 < value <= 2:
        raise ParameterError(f"latency={latency!r} must be 'low', 'high' or seconds in (0, 2]")
    return value
