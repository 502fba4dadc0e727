"""Device-free control: MIDI messages → parameter events for a :class:`~rtstyle.stream.Streamer`.

``render --midi FILE.mid`` (MIDI files, through :func:`midi_file_events`) and ``live`` (MIDI
ports, whose bytes reach :meth:`Controller.handle`) share this module, so a performance rendered
offline equals what live produced. Nothing here opens a device: no sounddevice, no rtmidi; ``mido``
is imported only to read MIDI files.

Default mapping (DESIGN.md, MIDI; ``v`` is the 7-bit value 0..127):

============================  ==============  =====================================================
message                       parameter       value
============================  ==============  =====================================================
program change ``n``          ``style``       style-list entry ``n`` (from 0); beyond the list:
                                              ignored, one warning line per program number
CC1 (modulation)              ``morph``       ``v / 127``
CC2 (breath)                  ``strength``    ``v / 127``
CC7 (volume)                  ``gain_db``     ``40 · log10(v / 127)`` dB: 127 → 0 dB,
                                              64 → −11.9 dB, 0 → ``-inf`` (silence)
CC11 (expression)             ``mix``         ``v / 127`` (0: dry … 127: wet)
CC64 (sustain pedal)          ``bypass``      ``v >= 64`` (dry, delay-aligned)
============================  ==============  =====================================================

Channel: omni (every channel) unless :attr:`Mapping.channel` is 1..16. Notes, pitch bend,
aftertouch, sysex, clock and every other message are ignored.

Smoothing: the controller emits *target* values. Continuous controls glide inside the
:class:`~rtstyle.stream.Streamer` (output stage: linear over 20 ms; ``strength`` and ``morph``:
over ~20 ms of frames; a style switch: the crossfade), so a moving knob makes no zipper noise and
the same events give the same sound in render and in live.

A mapping is a TOML file (:meth:`Mapping.load`, :meth:`Mapping.save`)::

    channel = "omni"          # or 1..16
    program = "style"         # or "off"

    [cc]
    1 = "morph"
    2 = "strength"
    7 = "gain_db"
    11 = "mix"
    64 = "bypass"
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from ._validate import positive_int
from .errors import MidiError, ParameterError

if TYPE_CHECKING:                                       # names only (layer rule)
    from .stream import Streamer

__all__ = [
    "Mapping",
    "Controller",
    "apply",
    "midi_file_events",
    "cc_value",
    "CC_PARAMS",
    "DEFAULT_CC",
    "LEARNED",
]

log = logging.getLogger("rtstyle")

#: Parameters a CC can drive, with how a 7-bit value maps onto each (see :func:`cc_value`).
CC_PARAMS = {
    "morph": "v/127",
    "strength": "v/127",
    "gain_db": "40*log10(v/127) dB (0: -inf, silence)",
    "mix": "v/127 (0 dry .. 127 wet)",
    "bypass": "v >= 64",
}

#: The default CC numbers (DESIGN.md, MIDI).
DEFAULT_CC = {1: "morph", 2: "strength", 7: "gain_db", 11: "mix", 64: "bypass"}

#: Name of the informational event :meth:`Controller.handle` returns when MIDI learn binds a
#: control; its value is ``(cc_number, parameter)``. :func:`apply` skips it.
LEARNED = "learned"

_PROGRAM_TARGETS = ("style", None)          # TOML: "style" or "off"
_TOML_KEYS = ("channel", "program", "cc")


def cc_value(param: str, v: int):
    """Convert a 7-bit controller value to the value of ``param``.

    Parameters
    ----------
    param : str
        One of :data:`CC_PARAMS`.
    v : int in 0..127

    Returns
    -------
    value : float or bool
        ``v / 127`` for ``morph``, ``strength``, ``mix``; ``40 · log10(v / 127)`` dB for
        ``gain_db`` (``-inf`` at 0); ``v >= 64`` for ``bypass``.
    """
    if param not in CC_PARAMS:
        raise ParameterError(f"param={param!r} must be one of {', '.join(CC_PARAMS)}")
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= v <= 127:
        raise ParameterError(f"v={v!r} must be a 7-bit controller value in 0..127")
    v = int(v)
    if param == "bypass":
        return v >= 64
    if param == "gain_db":
        return -math.inf if v == 0 else 40.0 * math.log10(v / 127.0)
    return v / 127.0


# ---------------------------------------------------------------------------------- mapping
def _check_mapping(cc, channel, program, where: str):
    """Validated ``(cc, channel, program)``; errors name ``where`` and the key, one line."""
    if not isinstance(cc, dict):
        raise ParameterError(f"{where}: cc must be a table of CC number = parameter name")
    out = {}
    for key, param in cc.items():
        num = key
        if isinstance(key, str) and key.strip().isdigit():
            num = int(key.strip())
        if isinstance(num, bool) or not isinstance(num, numbers.Integral) or not 0 <= num <= 127:
            raise ParameterError(f"{where}: cc.{key}: the CC number must be an integer in 0..127")
        if param not in CC_PARAMS:
            raise ParameterError(f"{where}: cc.{key} = {param!r}: unknown parameter; expected "
                                 f"one of {', '.join(CC_PARAMS)}")
        out[int(num)] = param
    if channel is not None and (isinstance(channel, bool)
                                or not isinstance(channel, numbers.Integral)
                                or not 1 <= channel <= 16):
        raise ParameterError(f"{where}: channel = {channel!r}: must be 1..16 or omni")
    if program not in _PROGRAM_TARGETS:
        raise ParameterError(f"{where}: program = {program!r}: must be 'style' or off")
    return dict(sorted(out.items())), None if channel is None else int(channel), program


def _toml_loads(text: str):
    try:
        import tomllib                                  # Python >= 3.11
    except ModuleNotFoundError:                         # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ParameterError("reading a TOML mapping needs Python >= 3.11 or the 'tomli' "
                                 "package (pip install tomli)") from None
    return tomllib.loads(text)


@dataclass
class Mapping:
    """Which MIDI message drives which :class:`~rtstyle.stream.Streamer` parameter.

    The defaults are DESIGN.md's (module docstring). A :class:`Controller` changes ``cc`` in
    place when MIDI learn binds a control.

    Parameters
    ----------
    cc : dict[int, str]
        Controller number (0..127) → parameter (one of :data:`CC_PARAMS`). Several numbers may
        drive one parameter.
    channel : int in 1..16 or None
        Listen on this MIDI channel only (1-based, as printed on controllers); ``None``: omni.
    program : {'style', None}
        ``'style'``: program change ``n`` selects style-list entry ``n``; ``None``: ignored.

    Raises
    ------
    ParameterError
        A CC number out of 0..127, an unknown parameter, a channel out of 1..16.
    """

    cc: dict = field(default_factory=lambda: dict(DEFAULT_CC))
    channel: int | None = None
    program: str | None = "style"

    def __post_init__(self):
        self.cc, self.channel, self.program = _check_mapping(self.cc, self.channel, self.program,
                                                             "Mapping")

    # ------------------------------------------------------------------ editing
    def bind(self, cc: int, param: str) -> None:
        """Make controller ``cc`` drive ``param``, and only it (other CCs on ``param`` unbound).

        This is what MIDI learn does: afterwards the moved control, and no other, drives the
        parameter.
        """
        new = {k: v for k, v in self.cc.items() if v != param}
        new[cc] = param
        self.cc, _, _ = _check_mapping(new, None, "style", "Mapping.bind")

    # ------------------------------------------------------------------ TOML
    @classmethod
    def load(cls, path) -> "Mapping":
        """Read a mapping from a TOML file (format: module docstring).

        Missing keys take their defaults; a ``[cc]`` table replaces the default CC table whole.

        Raises
        ------
        ParameterError
            The file cannot be read, is not TOML, or holds an unknown key or parameter, a CC
            number out of 0..127 or a channel out of 1..16 (one line naming the file and key).
        """
        name = os.fspath(path)
        try:
            with open(name, "rb") as f:
                raw = f.read()
            text = raw.decode("utf-8")
        except OSError as err:
            raise ParameterError(f"{name}: cannot read the MIDI mapping "
                                 f"({err.strerror or err})") from None
        except UnicodeDecodeError:
            raise ParameterError(f"{name}: not a TOML MIDI mapping (not UTF-8 text)") from None
        try:
            data = _toml_loads(text)
        except ParameterError:
            raise
        except Exception as err:                        # tomllib.TOMLDecodeError
            msg = " ".join(str(err).split())
            raise ParameterError(f"{name}: invalid TOML: {msg}") from None
        for key in data:
            if key not in _TOML_KEYS:
                raise ParameterError(f"{name}: unknown key {key!r}; expected "
                                     f"{', '.join(_TOML_KEYS)}")
        channel = data.get("channel", "omni")
        if isinstance(channel, str) and channel.strip().lower() == "omni":
            channel = None
        program = data.get("program", "style")
        if isinstance(program, str) and program.strip().lower() in ("off", "none"):
            program = None
        cc = data.get("cc", DEFAULT_CC)
        cc, channel, program = _check_mapping(cc, channel, program, name)
        return cls(cc=cc, channel=channel, program=program)

    def to_toml(self) -> str:
        """The mapping as TOML text (what :meth:`save` writes and :meth:`load` reads)."""
        ch = '"omni"' if self.channel is None else str(self.channel)
        prog = '"style"' if self.program == "style" else '"off"'
        lines = [
            "# rtstyle MIDI mapping (rtstyle.control.Mapping)",
            '# channel: 1..16 or "omni"; program: "style" (program change n -> style n)'
            ' or "off"',
            "# [cc]: controller number = " + " | ".join(f'"{p}"' for p in CC_PARAMS),
            f"channel = {ch}",
            f"program = {prog}",
            "",
            "[cc]",
        ]
        lines += [f'{k} = "{v}"' for k, v in sorted(self.cc.items())]
        return "\n".join(lines) + "\n"

    def save(self, path, *, overwrite: bool = False) -> None:
        """Write the mapping as TOML, atomically (a temp file in the same folder, then a rename).

        Raises
        ------
        AudioFileError
            ``path`` exists and ``overwrite`` is False, or its folder is missing or not writable
            (the rules of :func:`rtstyle.io.files.atomic_output`).
        """
        from .io.files import atomic_output

        with atomic_output(path, overwrite=overwrite) as tmp:
            tmp.write_text(self.to_toml(), encoding="utf-8")

    def describe(self) -> str:
        """Human-readable lines, e.g. for ``live`` to print the active mapping at start."""
        lines = [f"MIDI channel: {'omni' if self.channel is None else self.channel}",
                 "program change n -> style n" if self.program == "style"
                 else "program change: ignored"]
        lines += [f"CC{k} -> {v} ({CC_PARAMS[v]})" for k, v in sorted(self.cc.items())]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------- parsing
# Data bytes after a status byte (channel messages by high nibble; system common by status).
_CHANNEL_DATA = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_SYSTEM_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF4: 0, 0xF5: 0, 0xF6: 0}


def _messages(data: Iterable[int]):
    """Complete ``(status, data_bytes)`` messages in a byte sequence.

    Handles several messages in one sequence, running status, real-time bytes (0xF8..0xFF)
    interleaved anywhere, and sysex (skipped); an incomplete trailing message is dropped.
    """
    running, need, buf, sysex = None, 0, [], False
    for b in data:
        if b >= 0xF8:                                   # real-time: no effect on running status
            continue
        if b == 0xF0:
            sysex, running = True, None
            continue
        if b == 0xF7:
            sysex = False
            continue
        if b < 0x80:
            if sysex or running is None:
                continue
            buf.append(b)
            if len(buf) == need:
                yield running, buf
                buf = []
                if running >= 0xF0:
                    running = None
            continue
        sysex, buf = False, []                          # a status byte ends a sysex too
        if b >= 0xF0:                                   # system common cancels running status
            need = _SYSTEM_DATA.get(b, 0)
            running = b if need else None
        else:
            running, need = b, _CHANNEL_DATA[b & 0xF0]


def _as_bytes(msg) -> list[int]:
    if isinstance(msg, (bytes, bytearray)):
        return list(msg)
    to_bytes = getattr(msg, "bytes", None)
    if callable(to_bytes):                              # a mido Message / MetaMessage
        data = to_bytes()
    elif isinstance(msg, (list, tuple)) or (hasattr(msg, "__len__") and hasattr(msg, "__iter__")
                                            and not isinstance(msg, str)):
        data = msg
    else:
        raise ParameterError(f"msg must be a mido.Message or a sequence of MIDI bytes, got "
                             f"{type(msg).__name__}")
    out = []
    for b in data:
        if isinstance(b, bool) or not isinstance(b, numbers.Integral) or not 0 <= b <= 255:
            raise ParameterError(f"msg holds {b!r}; MIDI bytes are integers in 0..255")
        out.append(int(b))
    return out


# ---------------------------------------------------------------------------------- controller
class Controller:
    """Turn MIDI messages into ``(parameter, value)`` events for :meth:`Streamer.set`.

    Parameters
    ----------
    mapping : Mapping, optional
        Default: :class:`Mapping` ``()`` (DESIGN.md's). MIDI learn changes it in place.
    n_styles : int > 0
        Length of the style list; a program change at or beyond it is ignored with one warning
        line per program number (logger ``"rtstyle"``).

    Notes
    -----
    No locks, no I/O except the warning line; :meth:`handle` is cheap enough for a MIDI callback
    flooded with sysex. Not thread-safe: use one controller per thread.
    """

    def __init__(self, mapping: Mapping | None = None, *, n_styles: int):
        if mapping is None:
            mapping = Mapping()
        if not isinstance(mapping, Mapping):
            raise ParameterError(f"mapping must be a rtstyle.control.Mapping, got "
                                 f"{type(mapping).__name__}")
        self.mapping = mapping
        self.n_styles = positive_int(n_styles, "n_styles")
        self.learning: str | None = None
        self._warned: set[int] = set()

    def learn(self, param: str | None) -> None:
        """Arm MIDI learn: the next CC (on the mapping's channel) binds its number to ``param``.

        :meth:`handle` then returns ``(LEARNED, (cc, param))`` followed by the parameter's event for
        the moved control's value, and disarms. ``None`` disarms without binding.
        """
        if param is not None and param not in CC_PARAMS:
            raise ParameterError(f"learn: param={param!r} must be one of {', '.join(CC_PARAMS)}")
        self.learning = param

    def handle(self, msg) -> list[tuple[str, object]]:
        """Events for one MIDI message.

        Parameters
        ----------
        msg : mido.Message, or bytes / a sequence of ints (raw MIDI, e.g. python-rtmidi's)
            Raw bytes go through the same parser as mido messages (whose ``bytes()`` is used);
            a sequence may hold several messages and use running status.

        Returns
        -------
        events : list of (name, value)
            ``('style', n)``, ``('morph', float)``, ``('strength', float)``, ``('gain_db', float)``,
            ``('mix', float)``, ``('bypass', bool)``, and ``(LEARNED, (cc, param))`` when MIDI learn
            binds. Empty for ignored messages (other channels, notes, sysex, programs beyond the
            style list, unmapped CCs, incomplete bytes).

        Raises
        ------
        ParameterError
            ``msg`` is neither a message nor a sequence of integers in 0..255.
        """
        events: list[tuple[str, object]] = []
        m = self.mapping
        for status, data in _messages(_as_bytes(msg)):
            if status >= 0xF0:
                continue
            kind, channel = status & 0xF0, (status & 0x0F) + 1
            if m.channel is not None and channel != m.channel:
                continue
            if kind == 0xB0:
                cc, v = data
                if self.learning is not None:
                    param, self.learning = self.learning, None
                    m.bind(cc, param)
                    events.append((LEARNED, (cc, param)))
                    log.info("MIDI learn: CC%d -> %s", cc, param)
                param = m.cc.get(cc)
                if param is not None:
                    events.append((param, cc_value(param, v)))
            elif kind == 0xC0 and m.program == "style":
                n = data[0]
                if n < self.n_styles:
                    events.append(("style", n))
                elif n not in self._warned:
                    self._warned.add(n)
                    log.warning("MIDI program change %d ignored: the style list has %d "
                                "entr%s (0..%d)", n, self.n_styles,
                                "y" if self.n_styles == 1 else "ies", self.n_styles - 1)
        return events

    def describe(self) -> str:
        """The mapping's lines plus the style list length and the glide (the Streamer's: the
        controller emits target values, so render and live glide alike)."""
        from .stream.mixer import GLIDE_MS

        return (self.mapping.describe()
                + f"\nstyles: {self.n_styles} (program 0..{self.n_styles - 1})"
                + f"\ncontinuous controls glide over {GLIDE_MS:g} ms (in the Streamer)")


def apply(streamer: "Streamer", events, *, strict: bool = True) -> None:
    """Call ``streamer.set(name, value)`` for each ``(name, value)`` event, in order.

    :data:`LEARNED` events are skipped (they only inform). Events act from the streamer's current
    input position (DESIGN.md: control acts on the input timeline).

    Parameters
    ----------
    streamer : rtstyle.stream.Streamer
    events : iterable of (name, value)
        As :meth:`Controller.handle` returns them.
    strict : bool
        True: a value the streamer refuses raises its :class:`ParameterError`. False (live: a
        knob must never stop the engine): it is skipped with one warning line per parameter.
    """
    warned = set()
    for name, value in events:
        if name == LEARNED:
            continue
        try:
            streamer.set(name, value)
        except ParameterError as err:
            if strict:
                raise
            if name not in warned:
                warned.add(name)
                log.warning("MIDI control %s=%r ignored: %s", name, value, err)


# ---------------------------------------------------------------------------------- MIDI files
def midi_file_events(path, *, sr: int, mapping: Mapping | None = None,
                     n_styles: int) -> list[tuple[int, str, object]]:
    """The automation of a standard MIDI file, as events at input sample indices.

    Every track is merged and read with mido, which turns ticks into seconds honouring every
    tempo change; each message goes through a :class:`Controller` (so exactly the live mapping
    applies) and its events are placed at ``round(seconds * sr)``.

    Parameters
    ----------
    path : str or os.PathLike
        A type 0 or type 1 standard MIDI file.
    sr : int > 0
        The sample rate of the stream the events are for.
    mapping : Mapping, optional
        Default: DESIGN.md's.
    n_styles : int > 0
        Length of the style list (programs beyond it are ignored, one warning each).

    Returns
    -------
    events : list of (sample_index, name, value)
        Sorted by sample index (file order among equal indices). Apply each with
        ``streamer.set(name, value)`` once ``sample_index`` input samples have been fed.

    Raises
    ------
    MidiError
        The file is missing, unreadable, not a MIDI file, truncated, or of type 2.
    """
    sr = positive_int(sr, "sr")
    name = os.fspath(path)
    ctl = Controller(mapping, n_styles=n_styles)
    try:
        import mido
    except ModuleNotFoundError:
        raise MidiError(f"{name}: reading MIDI files needs the 'mido' package "
                        "(pip install mido)") from None
    try:
        mf = mido.MidiFile(name)
        messages = list(mf)                              # .time: seconds since the previous one
    except FileNotFoundError:
        raise MidiError(f"{name}: no such MIDI file") from None
    except Exception as err:                             # noqa: BLE001 - any corrupt-file error
        msg = " ".join(str(getattr(err, "strerror", None) or err).split())
        if isinstance(err, EOFError):
            msg = "truncated" + (f": {msg}" if msg else "")
        msg = msg or type(err).__name__
        raise MidiError(f"{name}: cannot read MIDI file ({msg})") from None
    out = []
    t = 0.0
    for msg in messages:
        t += msg.time
        if msg.is_meta:
            continue
        for pname, value in ctl.handle(msg):
            out.append((int(round(t * sr)), pname, value))
    out.sort(key=lambda e: e[0])                         # stable: file order kept within a sample
    return out
