"""The engine's settings, written once: :class:`EngineSettings` (DESIGN.md, Engine settings).

Every parameter of the streaming engine (the style list, strength, morph, mix, gain, bypass,
crossfade, envelope, STFT sizes, look-ahead, phase init / iterations / momentum, resample
quality, device, threads) is one field here, with its default, its check (the one
``ParameterError`` message naming the value) and how the command line offers it (flag, metavar,
help, choices). :class:`~rtstyle.stream.Streamer`, :func:`rtstyle.render`, ``rtstyle live``
(:mod:`rtstyle.live.settings`), presets, reports and the flags of ``render`` and ``live``
(:func:`rtstyle.cli.common.add_engine_flags`) all walk these fields, so the two commands cannot
drift. Importing this module needs neither torch nor numba (``rtstyle --help`` stays fast).

Examples
--------
>>> from rtstyle.engine_settings import EngineSettings
>>> s = EngineSettings(style="instruments:organ,instruments:choir", morph=0.3)
>>> s.style, s.morph, s.resample_quality
(('instruments:organ', 'instruments:choir'), 0.3, 'HQ')
>>> s.replace(mix=2.0)
Traceback (most recent call last):
...
rtstyle.errors.ParameterError: mix=2.0 must be a number in 0..1
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

from . import _validate as v
from .constants import ENVELOPES, MAX_LOOKAHEAD, PHASE_INITS, RESAMPLE_QUALITIES
from .errors import ParameterError

__all__ = ["EngineSettings", "Param", "PARAMS", "DEFAULTS", "style_label", "with_engine_signature"]


@dataclass(frozen=True)
class Param:
    """How one engine setting is checked and offered on the command line.

    Attributes
    ----------
    check : callable(value, name) -> value
        Returns the value normalised, or raises ParameterError naming it.
    flag : str
        The option of ``render`` and ``live`` (``--gain`` for ``gain_db``).
    help : str
        The flag's help, without its default (each command states it).
    metavar : str, optional
    choices : tuple, optional
    parse : callable(str) -> value, optional
        The text of the flag → a value (then checked); None: a switch (``--bypass``).
    streamer : bool
        A keyword of :class:`~rtstyle.stream.Streamer` (False: set around it: the style
        list, the resamplers, the threads).
    """

    check: Callable[[Any, str], Any]
    flag: str
    help: str
    metavar: str | None = None
    choices: tuple | None = None
    parse: Callable[[str], Any] | None = None
    streamer: bool = True


def _setting(default, check, flag, help, **kw):
    return field(default=default, metadata={"param": Param(check, flag, help, **kw)})


# ------------------------------------------------------------------------------ checks
def _real(value, name: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ParameterError(f"{name}={value!r} must be {what}")
    return float(value)


def _unit(value, name: str) -> float:
    what = "a number in 0..1"
    out = _real(value, name, what)
    if not 0.0 <= out <= 1.0:
        raise ParameterError(f"{name}={value!r} must be {what}")
    return out


def _gain_db(value, name: str) -> float:
    what = "a number of dB, at most +24 (-inf: silence)"
    out = _real(value, name, what)
    if out > 24.0:
        raise ParameterError(f"{name}={value!r} must be {what}")
    return out


def _ms(value, name: str) -> float:
    what = "a number of ms in 0..10000"
    out = _real(value, name, what)
    if not 0.0 <= out <= 10_000.0:
        raise ParameterError(f"{name}={value!r} must be {what}")
    return out


def _momentum(value, name: str) -> float | None:
    if value is None:
        return None
    what = "a number in [0, 1)"
    out = _real(value, name, what)
    if not 0.0 <= out < 1.0:
        raise ParameterError(f"{name}={value!r} must be {what}")
    return out


def _switch(value, name: str) -> bool:
    if not isinstance(value, bool) and value not in (0, 1):
        raise ParameterError(f"{name}={value!r} must be True or False")
    return bool(value)


def _optional_size(value, name: str) -> int | None:
    return None if value is None else v.bounded_int(value, name)


def _lookahead(value, name: str) -> int:
    return v.bounded_int(value, name, 0, MAX_LOOKAHEAD)


def _choice(choices):
    def check(value, name):
        return v.one_of(value, choices, name)
    return check


def _resample_quality(value, name: str) -> str:
    from .io.resampling import resample_quality      # soxr: imported when a value is checked

    return resample_quality(value, name)


def _device(value, name: str) -> str:
    if not isinstance(value, str) or value.split(":", 1)[0] not in ("cpu", "cuda"):
        raise ParameterError(f"{name}={value!r} must be 'cpu', 'cuda' or 'cuda:N'")
    return value


def _style(value, name: str) -> tuple | None:
    """``'A,B'``, a list, or None (every listed style) → a tuple of entries (names, or loaded
    models as :class:`~rtstyle.stream.Streamer` takes them)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    items = items if isinstance(items, (list, tuple)) else [items]
    items = tuple(s.strip() if isinstance(s, str) else s for s in items)
    if not items or any(isinstance(s, str) and s == "" for s in items):
        raise ParameterError(f"{name}={value!r}: an empty name in the style list")
    return items


# ------------------------------------------------------------------------------ the settings
@dataclass(frozen=True)
class EngineSettings:
    """Every parameter of the engine, checked once (frozen; :meth:`replace` makes a new one).

    Each field's metadata holds its :class:`Param`: check, flag, help. A value that fails its
    check raises ParameterError naming it (``momentum=1.0 must be a number in [0, 1)``);
    values are normalised (``style`` a tuple, ``resample_quality`` upper-case, numbers float).

    Parameters
    ----------
    style : str, list or None
        The style list: ``'identity'``, ``MODEL`` or ``MODEL:STYLE``, comma-separated or a list
        (loaded models too); the first is heard. None: every style ``rtstyle styles`` lists
        that shares the first one's STFT.
    strength, morph : float in 0..1
        Blend of the input's and the style's log-magnitudes; of the active style toward the
        next one of the list.
    mix : float in 0..1
        Wet share (the dry part is the input, delay-aligned).
    gain_db : float <= 24
        Output gain in dB (``-inf``: silence), before the -0.1 dBFS limiter.
    bypass : bool
        Start bypassed (the dry input, delay-aligned).
    crossfade_ms : float in 0..10000
        Crossfade of a style switch.
    envelope : {'follow', 'free'}
        ``follow``: each frame keeps the input frame's energy; ``free``: the nets' own levels.
    n_fft, hop_length : int, optional
        STFT sizes; default the models' (1024 and 256 for identity).
    lookahead : int in 0..3
        Frames of phase look-ahead (one hop of latency each).
    phase_init : {'input', 'rtpghi', 'random'}
        Initial phase of each new frame.
    phase_iters : int >= 0, optional
        Fast Griffin-Lim projections per hop (default 4 for ``input``, 16 otherwise).
    momentum : float in [0, 1), optional
        Fast Griffin-Lim momentum (default with look-ahead 0.5 for ``input``, 0.9 otherwise).
    resample_quality : {'VHQ', 'HQ', 'MQ', 'LQ', 'QQ'}
        soxr's preset between the file's or device's rate and the models' (any case).
    device : str
        Where the style nets run: ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
    threads : int > 0
        Threads of the engine's torch and BLAS (:mod:`rtstyle.stream.threads`).
    """

    style: tuple | None = _setting(
        None, _style, "--style", "style list: 'identity', MODEL or MODEL:STYLE, comma-separated; "
        "the first is heard (default: the styles of 'rtstyle styles' that share the first one's "
        "STFT)", metavar="A[,B...]", parse=str, streamer=False)
    strength: float = _setting(
        1.0, _unit, "--strength", "0..1: blend of the input's and the style's spectra",
        metavar="X", parse=float)
    morph: float = _setting(
        0.0, _unit, "--morph", "0..1: blend of the heard style toward the next one of the list",
        metavar="X", parse=float)
    mix: float = _setting(
        1.0, _unit, "--mix", "0..1 wet share (the dry part is the input, delay-aligned)",
        metavar="X", parse=float)
    gain_db: float = _setting(
        0.0, _gain_db, "--gain", "output gain in dB, at most +24 (a limiter at -0.1 dBFS "
        "follows)", metavar="DB", parse=float)
    bypass: bool = _setting(
        False, _switch, "--bypass", "start bypassed: the dry input, delay-aligned (live: space "
        "toggles)")
    crossfade_ms: float = _setting(
        50.0, _ms, "--crossfade", "style switch crossfade in ms, 0..10000", metavar="MS",
        parse=float)
    envelope: str = _setting(
        "follow", _choice(ENVELOPES), "--envelope", "follow: keep the input's frame energy "
        "(dynamics, silences); free: the style's own levels", choices=ENVELOPES, parse=str)
    n_fft: int | None = _setting(
        None, _optional_size, "--n-fft", "FFT size (periodic Hann window; default the "
        "models', 1024 for identity)", metavar="N", parse=int)
    hop_length: int | None = _setting(
        None, _optional_size, "--hop-length", "STFT hop in samples; divides --n-fft (default "
        "the models', 256 for identity)", metavar="N", parse=int)
    lookahead: int = _setting(
        1, _lookahead, "--lookahead", f"phase look-ahead in frames, 0..{MAX_LOOKAHEAD} (one hop "
        "of latency each)", metavar="N", parse=int)
    phase_init: str = _setting(
        "input", _choice(PHASE_INITS), "--phase-init", "initial phase of each new frame",
        choices=PHASE_INITS, parse=str)
    phase_iters: int | None = _setting(
        None, _optional_size, "--phase-iters", "fast Griffin-Lim projections per hop "
        "(default 4 for input phase, 16 otherwise)", metavar="N", parse=int)
    momentum: float | None = _setting(
        None, _momentum, "--momentum", "fast Griffin-Lim momentum, in [0, 1) (default with "
        "look-ahead: 0.5 for input phase, 0.9 otherwise; 0 without)", metavar="X", parse=float)
    resample_quality: str = _setting(
        "HQ", _resample_quality, "--resample-quality", "resampler when the device's or file's "
        "rate differs from the models': LQ or QQ cut the delay (QQ aliases)",
        choices=RESAMPLE_QUALITIES, parse=str.upper, streamer=False)
    device: str = _setting(
        "cpu", _device, "--device", "where the style nets run (CUDA absent: the CPU, with a "
        "warning)", metavar="cpu|cuda", parse=str)
    threads: int = _setting(
        1, v.bounded_int, "--threads", "threads of the engine's torch and BLAS (1: the fast "
        "choice, and the one that holds up when other programs keep the cores busy)",
        metavar="N", parse=int, streamer=False)

    def __post_init__(self):
        for name, param in PARAMS.items():
            object.__setattr__(self, name, param.check(getattr(self, name), name))

    @classmethod
    def of(cls, settings: EngineSettings | None = None, /, **changes) -> EngineSettings:
        """``settings`` (default: the defaults) with ``changes``, checked.

        Raises ParameterError for an unknown name (listing the known ones) or a bad value.
        """
        if settings is not None and not isinstance(settings, cls):
            raise ParameterError(f"settings must be an EngineSettings, got "
                                 f"{type(settings).__name__}")
        unknown = sorted(set(changes) - set(PARAMS))
        if unknown:
            raise ParameterError(f"unknown engine setting(s) {', '.join(unknown)}; expected "
                                 f"{', '.join(PARAMS)}")
        base = cls() if settings is None else settings
        return dataclasses.replace(base, **changes) if changes else base

    @classmethod
    def from_dict(cls, values: dict) -> EngineSettings:
        """The engine's keys of ``values`` (a live settings dict, a preset); others ignored."""
        return cls(**{k: values[k] for k in PARAMS if k in values})

    def replace(self, **changes) -> EngineSettings:
        """A copy with ``changes`` (checked)."""
        return self.of(self, **changes)

    def to_dict(self) -> dict:
        """Every field by name, as reports and presets hold them (the style list as a list of
        labels, None for the default list)."""
        out = {k: getattr(self, k) for k in PARAMS}
        if out["style"] is not None:
            out["style"] = [style_label(s) for s in out["style"]]
        return out

    def streamer_kwargs(self) -> dict:
        """The :class:`~rtstyle.stream.Streamer`'s keywords among the fields."""
        return {k: getattr(self, k) for k, p in PARAMS.items() if p.streamer}


#: Each field's :class:`Param`, in the fields' order.
PARAMS: dict[str, Param] = {f.name: f.metadata["param"]
                            for f in dataclasses.fields(EngineSettings)}
#: Each field's default.
DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(EngineSettings)}


def style_label(item) -> str:
    """A style list entry as its user wrote it (a name), never a Python object's repr."""
    if isinstance(item, tuple) and item:
        item = item[0]
    name = getattr(item, "name", None)
    return item if isinstance(item, str) else name if isinstance(name, str) else str(item)


def with_engine_signature(func=None, *, streamer: bool = False):
    """Give ``func(..., **engine)`` a signature that names every engine setting as a
    keyword-only parameter with its default (``help()``, ``inspect.signature``), the
    :class:`~rtstyle.stream.Streamer`'s only with ``streamer=True``."""
    def wrap(f):
        sig = inspect.signature(f)
        own = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
        names = {p.name for p in own}
        extra = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=DEFAULTS[k])
                 for k, p in PARAMS.items() if k not in names and (p.streamer or not streamer)]
        f.__signature__ = sig.replace(parameters=own + extra)
        return f
    return wrap if func is None else wrap(func)
