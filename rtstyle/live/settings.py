"""The settings of ``rtstyle live`` and of its presets: :data:`DEFAULTS` (every key, with its
default), their checks, and the choices they take."""

from __future__ import annotations

from ..engine_settings import DEFAULTS as ENGINE_DEFAULTS
from ..engine_settings import EngineSettings
from ..errors import ParameterError

__all__ = ["DEFAULTS", "ON_DROPOUT", "check_settings", "check_latency", "engine_settings"]

#: Settings a preset holds (``--preset`` / ``--save-preset``) with their defaults: every engine
#: setting (:class:`~rtstyle.engine_settings.EngineSettings`, as ``render`` has them, so live
#: sounds as render does; ``None``: the models' own ``n_fft`` / ``hop_length``, the engine's
#: ``phase_iters`` / ``momentum`` for the phase init, every style ``rtstyle styles`` lists), then
#: the run's own: the style heard first (``active``), the input gain, the device's block size,
#: the buffer's margin, what a dropout plays, and MIDI.
DEFAULTS = {
    "style": None, "active": 0,
    **{k: val for k, val in ENGINE_DEFAULTS.items() if k != "style"},
    "input_gain_db": 0.0, "block_size": 256, "margin_ms": 5.0, "on_dropout": "dry",
    # MIDI (off unless midi or midi_virtual): midi is a port name, part of one, an index, or
    # True (the first port); midi_map a TOML mapping file; midi_channel 1..16 (omni: None)
    "midi": None, "midi_virtual": None, "midi_api": None, "midi_channel": None,
    "midi_map": None,
}
ON_DROPOUT = ("dry", "silence")


def check_settings(settings: dict | None) -> dict:
    """``settings`` over :data:`DEFAULTS` (a key set to None keeps its default), checked and
    normalised (the engine's keys by :class:`~rtstyle.engine_settings.EngineSettings`:
    ``resample_quality`` upper-case, the style list a list); a new dict.

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
    engine = engine_settings(s)
    s.update({k: getattr(engine, k) for k in ENGINE_DEFAULTS})
    s["style"] = None if engine.style is None else list(engine.style)
    ig = s["input_gain_db"]
    if isinstance(ig, bool) or not isinstance(ig, (int, float)) or not -60 <= ig <= 40:
        raise ParameterError(f"input_gain_db={ig!r} must be a number of dB in -60..40")
    return s


def engine_settings(settings: dict) -> EngineSettings:
    """The engine's part of a live settings dict, checked."""
    return EngineSettings.from_dict(settings)


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
