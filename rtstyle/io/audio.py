"""The sound-card boundary: the only module of rtstyle that imports ``sounddevice`` (PortAudio).

Nothing imports this module unless live audio is asked for (``rtstyle live``, ``devices``,
``latency-test``), so ``import rtstyle`` and ``import rtstyle.stream`` work without PortAudio.

- :func:`list_devices` / :func:`hostapis`: what PortAudio sees, with the standard rates each
  device accepts (probed with ``check_input_settings`` / ``check_output_settings``).
- :func:`preflight`: resolve ``--input`` / ``--output``, check channels and the rate *before*
  opening anything, and choose a rate when none is given. A raw PortAudio error such as
  "Invalid sample rate [-9997]" never reaches the user: they get a :class:`DeviceError` that
  names the device and the rates that work.
- :class:`DuplexStream`: one full-duplex callback stream. sounddevice's ``(frames, channels)``
  blocks are handed on as channel-first views ``(channels, frames)`` (the rest of rtstyle's
  layout) together with the status flags as an int; the callback given must obey the
  sounddevice rules (no allocation of note, no locks, no I/O).

On JACK the PortAudio client is named ``rtstyle`` (ports ``rtstyle:in_N`` / ``rtstyle:out_N``);
the server is ``$JACK_DEFAULT_SERVER`` (the default server when unset). A JACK server that goes
away while a stream opens or starts (issue 14: killed as ``live`` starts) is one
:class:`DeviceError` line: what PortAudio and libjack print on the process's stderr meanwhile is
held back (shown with ``-v``), and PortAudio is not terminated at exit, where its JACK backend
would fail an assertion and abort the process.
"""

from __future__ import annotations

import atexit
import ctypes
import re
import threading
from dataclasses import dataclass

import sounddevice as sd

from ..errors import DeviceError
from .held_stderr import held_stderr

__all__ = ["STANDARD_RATES", "FLAGS", "DeviceChoice", "DuplexStream",
           "hostapis", "list_devices", "preflight", "refresh", "resolve_device"]

#: Rates probed for ``rtstyle devices`` and offered when a rate is refused.
STANDARD_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)
#: PortAudio's callback status bits (paInputUnderflow ... paPrimingOutput).
FLAGS = {"input_underflow": 1, "input_overflow": 2, "output_underflow": 4,
         "output_overflow": 8, "priming_output": 16}

_JACK_CLIENT_NAME = ctypes.create_string_buffer(b"rtstyle")   # PortAudio keeps the pointer


def _name_jack_client() -> None:
    """Call the JACK client ``rtstyle`` instead of ``PortAudio`` (where PortAudio has JACK)."""
    try:
        lib = ctypes.CDLL(sd._libname)
        if lib.PaJack_SetClientName(_JACK_CLIENT_NAME) == 0:
            refresh()                         # the name is read when PortAudio initialises
    except (AttributeError, OSError, TypeError):  # no JACK in this PortAudio build
        pass


def refresh() -> None:
    """Re-initialise PortAudio, so devices that appeared since (a JACK server) are listed."""
    sd._terminate()
    sd._initialize()


def _forsake_portaudio() -> None:
    """Do not terminate PortAudio at exit: after a JACK server went away, its JACK backend's
    Pa_Terminate fails an assertion (``pa_jack.c: Terminate: Assertion `err == 0'``) and the
    process aborts (SIGABRT, exit 134). The OS frees what it holds."""
    atexit.unregister(sd._exit_handler)


def _clean(err: BaseException) -> str:
    """PortAudio's message without the '[PaErrorCode -9997]' noise."""
    text = str(err.args[0] if getattr(err, "args", None) else err)
    text = re.sub(r"\s*\[PaErrorCode -?\d+\]", "", text)
    return text.replace("\n", " ").strip().rstrip(":")


# ----------------------------------------------------------------------------------------------
# listing
# ----------------------------------------------------------------------------------------------


def hostapis() -> list[dict]:
    """Host APIs: ``name``, ``devices`` (indices), ``default_input``, ``default_output``."""
    return [{"index": i, "name": h["name"], "devices": list(h["devices"]),
             "default_input": h["default_input_device"],
             "default_output": h["default_output_device"]}
            for i, h in enumerate(sd.query_hostapis())]


def _rates(index: int, kind: str, channels: int) -> list[int]:
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    ok = []
    for r in STANDARD_RATES:
        try:
            check(device=index, channels=channels, samplerate=r, dtype="float32")
        except Exception:                      # noqa: BLE001 - PortAudioError or ValueError
            continue
        ok.append(r)
    return ok


def list_devices(*, probe: bool = True) -> list[dict]:
    """Every device: ``index``, ``name``, ``hostapi``, ``max_input_channels``,
    ``max_output_channels``, ``default_samplerate``, ``default_input`` / ``default_output``
    (bool), and with ``probe`` the standard rates it accepts, ``input_rates`` /
    ``output_rates``."""
    apis = sd.query_hostapis()
    d_in, d_out = _defaults()
    rows = []
    for dev in sd.query_devices():
        i = dev["index"]
        row = {"index": i, "name": dev["name"], "hostapi": apis[dev["hostapi"]]["name"],
               "max_input_channels": dev["max_input_channels"],
               "max_output_channels": dev["max_output_channels"],
               "default_samplerate": int(round(dev["default_samplerate"])),
               "default_input": i == d_in, "default_output": i == d_out}
        if probe:
            row["input_rates"] = (_rates(i, "input", 1) if dev["max_input_channels"] else [])
            row["output_rates"] = (_rates(i, "output", 1) if dev["max_output_channels"] else [])
        rows.append(row)
    return rows


def _defaults() -> tuple[int, int]:
    d = sd.default.device
    try:
        d_in, d_out = d[0], d[1]
    except (TypeError, IndexError, KeyError):
        d_in = d_out = d
    ids = []
    for kind, v in (("input", d_in), ("output", d_out)):
        if v is None or v == -1:
            try:
                v = sd.query_devices(kind=kind)["index"]
            except Exception:                  # noqa: BLE001 - no device of that kind
                v = -1
        ids.append(int(v))
    return ids[0], ids[1]


# ----------------------------------------------------------------------------------------------
# choosing and checking
# ----------------------------------------------------------------------------------------------


def resolve_device(spec, kind: str) -> int:
    """``--input`` / ``--output`` → a device index.

    ``None``: PortAudio's default. An integer (or a string of digits): that index. Otherwise a
    case-insensitive part of the name (or of ``"name, host API"``); it must match one device
    that has channels of ``kind``.
    """
    devs = sd.query_devices()
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    flag = "--input" if kind == "input" else "--output"
    if spec is None:
        idx = _defaults()[0 if kind == "input" else 1]
        if idx < 0:
            raise DeviceError(f"no audio {kind} device: PortAudio lists none (is a sound card "
                              "or a JACK server there? see 'rtstyle devices')")
        return idx
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        idx = int(spec)
        if not 0 <= idx < len(devs):
            raise DeviceError(f"{flag} {spec}: no device with that number (see 'rtstyle devices')")
        if devs[idx][key] < 1:
            raise DeviceError(f"{flag} {spec}: device {devs[idx]['name']!r} has no {kind} channels")
        return idx
    apis = sd.query_hostapis()
    want = str(spec).lower()
    hits = [d for d in devs if d[key] > 0 and (
        want in d["name"].lower() or want in f"{d['name']}, {apis[d['hostapi']]['name']}".lower())]
    exact = [d for d in hits if d["name"].lower() == want]
    hits = exact or hits
    if not hits:
        raise DeviceError(f"{flag} {spec!r}: no {kind} device matches (see 'rtstyle devices')")
    if len(hits) > 1:
        names = "; ".join(f"{d['index']}: {d['name']}" for d in hits[:6])
        raise DeviceError(f"{flag} {spec!r}: matches {len(hits)} devices ({names}); "
                          "give the number")
    return hits[0]["index"]


@dataclass(frozen=True)
class DeviceChoice:
    """What :func:`preflight` settled on."""

    input: int
    output: int
    sr: int
    input_channels: int
    output_channels: int
    input_name: str
    output_name: str
    hostapi: str


def _supports(index: int, kind: str, channels: int, sr: int) -> str | None:
    """``None`` if ``index`` accepts ``channels`` at ``sr``; else PortAudio's reason."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=index, channels=channels, samplerate=sr, dtype="float32")
    except (sd.PortAudioError, ValueError) as err:
        return _clean(err)
    return None


def preflight(input=None, output=None, *, sr: int | None = None, input_channels: int = 1,
              output_channels: int | None = None, prefer: tuple[int, ...] = ()) -> DeviceChoice:
    """Resolve and check the devices before any stream opens.

    Parameters
    ----------
    input, output : int or str, optional
        See :func:`resolve_device`.
    sr : int, optional
        The device rate asked for (``--sr``); refused with the rates that work if either
        device cannot run at it. ``None``: the first of ``prefer`` (e.g. the model's rate, to
        avoid resampling), the input's default rate, the output's, or a standard rate, that
        both devices accept.
    input_channels : int
        Channels to open on the input (``--input-channel N`` needs ``N``).
    output_channels : int, optional
        Default: 2 where the output has two, else 1.

    Raises
    ------
    DeviceError
        One line naming the device and what to do.
    """
    i_in = resolve_device(input, "input")
    i_out = resolve_device(output, "output")
    d_in, d_out = sd.query_devices(i_in), sd.query_devices(i_out)
    if input_channels > d_in["max_input_channels"]:
        raise DeviceError(f"--input-channel {input_channels}: input device {d_in['name']!r} has "
                          f"{d_in['max_input_channels']} input channel(s)")
    if output_channels is None:
        output_channels = min(2, d_out["max_output_channels"])
    if not 1 <= output_channels <= d_out["max_output_channels"]:
        raise DeviceError(f"--output-channels {output_channels}: output device {d_out['name']!r} "
                          f"has {d_out['max_output_channels']} output channel(s)")

    def works(rate):
        return (_supports(i_in, "input", input_channels, rate) is None
                and _supports(i_out, "output", output_channels, rate) is None)

    if sr is not None:
        for idx, kind, ch, dev in ((i_in, "input", input_channels, d_in),
                                   (i_out, "output", output_channels, d_out)):
            reason = _supports(idx, kind, ch, sr)
            if reason is not None:
                good = [r for r in STANDARD_RATES if works(r)]
                hint = (f"rates that work: {', '.join(map(str, good))}" if good else
                        "no standard rate works for this input/output pair")
                raise DeviceError(f"--sr {sr}: the {kind} device {dev['name']!r} refuses it "
                                  f"({reason.lower()}); {hint} (omit --sr to pick one and "
                                  "resample)")
        rate = sr
    else:
        candidates = [*prefer, int(round(d_in["default_samplerate"])),
                      int(round(d_out["default_samplerate"])), *STANDARD_RATES[::-1]]
        rate = next((r for r in candidates if r and works(r)), None)
        if rate is None:
            raise DeviceError(f"input {d_in['name']!r} and output {d_out['name']!r} share no "
                              "sample rate; choose devices of one host API (see 'rtstyle devices')")
    apis = sd.query_hostapis()
    return DeviceChoice(i_in, i_out, int(rate), input_channels, output_channels, d_in["name"],
                        d_out["name"], apis[d_in["hostapi"]]["name"])


# ----------------------------------------------------------------------------------------------
# the stream
# ----------------------------------------------------------------------------------------------


class DuplexStream:
    """A full-duplex float32 callback stream on a :class:`DeviceChoice`.

    ``callback(indata, outdata, frames, flags)`` gets channel-first views (``indata``:
    ``(input_channels, frames)``, ``outdata``: ``(output_channels, frames)``, to be filled
    completely) and the PortAudio status bits as an int (see :data:`FLAGS`). It runs on
    PortAudio's thread: it must not block, allocate buffers, lock or log.

    Parameters
    ----------
    choice : DeviceChoice
    block_size : int > 0
        Frames per callback (PortAudio may add one block of buffering to hold it fixed; that
        shows in :attr:`latency`).
    latency : 'low', 'high' or float seconds
        PortAudio's suggested latency.
    """

    def __init__(self, choice: DeviceChoice, *, block_size: int, latency="low", callback):
        self.choice = choice
        self.block_size = block_size
        self.finished = False
        self.abandoned = False
        self._closed = False
        flags_of = _flags

        def _cb(indata, outdata, frames, time, status):
            callback(indata.T, outdata.T, frames, flags_of(status))

        try:
            with held_stderr("PortAudio"):
                self._stream = sd.Stream(
                    device=(choice.input, choice.output), samplerate=choice.sr,
                    blocksize=block_size,
                    channels=(choice.input_channels, choice.output_channels),
                    dtype="float32", latency=latency, callback=_cb,
                    finished_callback=self._on_finished)
        except (sd.PortAudioError, ValueError) as err:
            raise self._failed("open", f"at {choice.sr} Hz, block {block_size}", err) from None

    def _on_finished(self):
        self.finished = True

    def _failed(self, what: str, detail: str, err: BaseException) -> DeviceError:
        """The one line for a stream that could not open or start; on JACK, where the usual
        cause is a server that went away (PortAudio then says "Insufficient memory"), say so
        and leave PortAudio unterminated at exit (:func:`_forsake_portaudio`)."""
        c = self.choice
        where = f"{c.input_name!r} / {c.output_name!r}" + (f" {detail}" if detail else "")
        if "JACK" in str(c.hostapi).upper():
            _forsake_portaudio()
            return DeviceError(f"cannot {what} {where}: the JACK server went away or refused "
                               f"the stream (PortAudio: {_clean(err)})")
        return DeviceError(f"cannot {what} {where}: {_clean(err)}")

    @property
    def latency(self) -> tuple[int, int]:
        """(input, output) latency in samples, as PortAudio reports them."""
        lat_in, lat_out = self._stream.latency
        return int(round(lat_in * self.choice.sr)), int(round(lat_out * self.choice.sr))

    @property
    def cpu_load(self) -> float:
        try:
            return float(self._stream.cpu_load)
        except Exception:                      # noqa: BLE001 - a stream that went away
            return 0.0

    @property
    def active(self) -> bool:
        try:
            return bool(self._stream.active) and not self.finished
        except Exception:                      # noqa: BLE001
            return False

    def start(self) -> None:
        try:
            with held_stderr("PortAudio"):
                self._stream.start()
        except sd.PortAudioError as err:
            error = self._failed("start", "", err)
            if self.abandoned is False and "JACK" in str(self.choice.hostapi).upper():
                self.abandon()        # closing it would fail PortAudio's CleanUpStream assertion
            raise error from None

    def close(self, timeout: float = 3.0) -> bool:
        """Abort and close; never raises. Returns False if PortAudio did not answer within
        ``timeout`` s (a device that went away: PortAudio's JACK backend then waits minutes):
        the stream is abandoned, and PortAudio is not terminated at exit (that would wait too).
        """
        if self._closed:
            return not self.abandoned

        def shut():
            for op in (self._stream.abort, self._stream.close):
                try:
                    op()
                except Exception:              # noqa: BLE001 - closing what may be gone
                    pass

        self._closed = True
        t = threading.Thread(target=shut, name="rtstyle-close", daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            self.abandon()
            return False
        return True

    def abandon(self) -> None:
        """Leave a stream whose device went away untouched (closing it can hang or abort in
        PortAudio's JACK backend), and skip PortAudio's termination at exit."""
        self._closed = self.abandoned = True
        _forsake_portaudio()


def _flags(status) -> int:
    return getattr(status, "_flags", 0)


_name_jack_client()
