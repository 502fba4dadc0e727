"""A run of ``rtstyle live``: :class:`LiveSession` (settings checked, devices, engine, MIDI,
recordings, the loop, keys, the report and the panel's line)."""

from __future__ import annotations

import gc
import math
import os
import sys
import threading
import time

from ..errors import DeviceError, ParameterError, RtStyleError
from .core import LiveCore
from ..render import resolve_engine_styles
from .engine import LiveEngine
from .settings import DEFAULTS, check_latency, check_settings, engine_settings

__all__ = ["LiveSession", "REPORT_KEYS"]

#: The keys DESIGN.md asks of ``live --report`` (there are more).
REPORT_KEYS = ("sr", "block_size", "engine_latency_samples", "latency_samples", "blocks",
               "dropouts", "xruns", "worker_p50_ms", "worker_p99_ms")


class LiveSession:
    """A live run: devices checked, engine warmed up, stream open, worker running.

    Use as a context manager (``with LiveSession(...) as s: report = s.run()``); leaving it
    stops the stream and finishes the recordings (kept also on Ctrl-C or a device failure).

    Parameters
    ----------
    settings : dict
        :data:`DEFAULTS` keys (missing ones take the defaults).
    input, output : int or str, optional
        Devices (see :func:`rtstyle.io.audio.resolve_device`).
    input_channel : int
        From 1.
    output_channels : int, optional
        Default 2 where the output has two, else 1 (the same signal on each).
    sr : int, optional
        The device rate (default: the models' if the devices accept it, else theirs).
    latency : 'low', 'high' or float seconds
        PortAudio's suggested latency.
    record, record_dry : path, optional
        Wet (engine output) and dry (input as taken) recordings at the device rate, written in
        place with a header kept valid about every second (:mod:`rtstyle.live`: Recordings).
    record_subtype : str, optional
        Default PCM_24 where the format has it.
    models_dir : path, optional
    midi_mapping : rtstyle.control.Mapping, optional
        The MIDI mapping (default: ``settings['midi_map']`` loaded, else DESIGN.md's);
        ``settings['midi_channel']`` overrides its channel. MIDI learn changes it in place
        (:attr:`controller` ``.mapping`` at exit holds the learned bindings).
    midi_learn : str, optional
        Arm MIDI learn for this parameter (one of :data:`rtstyle.control.CC_PARAMS`): the
        next controller moved drives it.

    MIDI is on when ``settings`` has ``midi`` (a port name, a part of one, an index, or True
    for the first port) or ``midi_virtual`` (a port to create), with ``midi_api`` (else each
    API in turn) and ``midi_channel``; see :func:`rtstyle.io.midi.open_input`.
    """

    def __init__(self, settings: dict | None = None, *, input=None, output=None,
                 input_channel: int = 1, output_channels: int | None = None,
                 sr: int | None = None, latency="low", record=None, record_dry=None,
                 record_subtype=None, overwrite: bool = False, models_dir=None,
                 midi_mapping=None, midi_learn: str | None = None):
        from .. import _validate as v

        self.settings = s = check_settings(settings)
        self.input_channel = v.positive_int(input_channel, "input_channel")
        if output_channels is not None:
            v.positive_int(output_channels, "output_channels")
        if sr is not None:
            v.positive_int(sr, "sr")
        self._dev_args = dict(input=input, output=output, sr=sr,
                              input_channels=self.input_channel, output_channels=output_channels)
        self.latency_setting = check_latency(latency)
        self.record, self.record_dry = record, record_dry
        self.record_subtype, self.overwrite = record_subtype, overwrite
        self.models_dir = models_dir
        self.mapping, self.midi_learn = self._check_midi(s, midi_mapping, midi_learn)
        self.midi = self.controller = None
        self.core = self.stream = self.engine = self.choice = None
        self._writers: list = []
        self._restore_threads = None
        self._started = False
        self.stopped_by = None
        self._t0 = None
        self._switch = None

    @property
    def midi_enabled(self) -> bool:
        return self.settings["midi"] is not None or self.settings["midi_virtual"] is not None

    def _check_midi(self, s, mapping, learn):
        """Validate the MIDI settings (before any device opens); the mapping to use."""
        import numbers

        from ..control import CC_PARAMS, Mapping
        from ..io.midi import APIS

        port, virtual = s["midi"], s["midi_virtual"]
        if port is not None and virtual is not None:
            raise ParameterError("give a MIDI port to open (midi) or one to create "
                                 "(midi_virtual), not both")
        if port is not None and port is not True and not (
                isinstance(port, str) and port.strip()
                or isinstance(port, numbers.Integral) and not isinstance(port, bool)
                and port >= 0):
            raise ParameterError(f"midi={port!r} must be a port name, a part of one, an index "
                                 "or true (the first port)")
        if virtual is not None and not (isinstance(virtual, str) and virtual.strip()):
            raise ParameterError(f"midi_virtual={virtual!r} must be a non-empty port name")
        if s["midi_api"] is not None and s["midi_api"] not in APIS:
            raise ParameterError(f"midi_api={s['midi_api']!r} must be one of {', '.join(APIS)}")
        ch = s["midi_channel"]
        if ch is not None and (isinstance(ch, bool) or not isinstance(ch, numbers.Integral)
                               or not 1 <= ch <= 16):
            raise ParameterError(f"midi_channel={ch!r} must be 1..16 (omni: unset)")
        if learn is not None and learn not in CC_PARAMS:
            raise ParameterError(f"midi_learn={learn!r} must be one of {', '.join(CC_PARAMS)}")
        if mapping is not None and not isinstance(mapping, Mapping):
            raise ParameterError(f"midi_mapping must be a rtstyle.control.Mapping, got "
                                 f"{type(mapping).__name__}")
        if mapping is None:
            mapping = Mapping.load(s["midi_map"]) if s["midi_map"] is not None else Mapping()
        if ch is not None:
            mapping.channel = int(ch)
        if learn is not None and not self.midi_enabled:
            raise ParameterError("MIDI learn needs a MIDI port (midi or midi_virtual)")
        return mapping, learn

    def _open_midi(self) -> None:
        """The controller, and the port (before the audio stream starts: :mod:`rtstyle.live`)."""
        from ..control import Controller

        s = self.settings
        self.controller = Controller(self.mapping, n_styles=len(self.engine.styles))
        if self.midi_learn is not None:
            self.controller.learn(self.midi_learn)
        if not self.midi_enabled:
            return
        from ..io import midi

        port = None if s["midi"] is True else s["midi"]
        self.midi = midi.open_input(port, api=s["midi_api"], virtual=s["midi_virtual"],
                                    channel=self.mapping.channel)
        self.core.attach_midi(self.midi, self.controller, self.control)

    def _close_midi(self) -> None:
        m, self.midi = self.midi, None
        if m is None:
            return
        if self.stream is not None and getattr(self.stream, "abandoned", False):
            # The audio stream could not be closed (its device went away): closing the MIDI
            # client now could wait on JACK forever. Stop our callback; leave the port.
            inner = getattr(m, "_midiin", None)
            if inner is not None:
                try:
                    inner.cancel_callback()
                except Exception:             # noqa: BLE001
                    pass
                m._midiin = None
            return
        m.close()

    def describe_midi(self) -> str | None:
        """The MIDI port and the active mapping (what ``live`` prints at start); None: off."""
        if self.midi is None:
            return None
        lines = [self.midi.describe(), self.controller.describe()]
        if self.controller.learning is not None:
            lines.append(f"MIDI learn: move a control to bind it to {self.controller.learning}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ open / close
    def __enter__(self):
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def open(self) -> None:
        """Resolve styles, check devices, build and warm up the engine, open and start."""
        from ..io import audio

        s = self.settings
        for path in (self.record, self.record_dry):
            if path is not None:
                from ..io.atomic import check_output_path

                check_output_path(path, overwrite=self.overwrite)
        engine = engine_settings(s)
        styles, model_sr = resolve_engine_styles(engine, models_dir=self.models_dir)
        self.choice = audio.preflight(prefer=(model_sr,) if model_sr else (), **self._dev_args)
        self.engine = LiveEngine(styles, sr=self.choice.sr, settings=engine)
        from ..stream.threads import use_threads

        # the thread policy, once the styles are loaded (torch imported), before the warm-up
        self._restore_threads = use_threads(s["threads"])
        if s["active"]:
            self.engine.set("style", s["active"])     # warm_up's reset sets it again
        self.engine.warm_up()
        self.core = LiveCore(self.engine, block_size=s["block_size"],
                             input_channel=self.input_channel - 1,
                             margin=int(round(s["margin_ms"] * self.choice.sr / 1000)),
                             on_dropout=s["on_dropout"], input_gain_db=s["input_gain_db"])
        self._open_midi()                     # before the stream: rtstyle.live, Threads
        self.stream = audio.DuplexStream(self.choice, block_size=s["block_size"],
                                         latency=self.latency_setting,
                                         callback=self.core.callback)
        self.device_latency = self.stream.latency
        # the recordings once the stream is open (a device that cannot open leaves none behind;
        # one that cannot start, or goes before any audio came, has them removed by close())
        self.core.rec_wet = self._writer(self.record)
        self.core.rec_dry = self._writer(self.record_dry)
        gc.collect()
        gc.freeze()                           # no long collector pauses mid-stream
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(0.001)          # the callback waits less for the GIL
        self.core.start()
        self._t0 = time.monotonic()
        self.stream.start()
        self._started = True

    def _writer(self, path):
        if path is None:
            return None
        from ..io.writing import AudioWriter, format_and_subtype

        subtype = self.record_subtype
        if subtype is None:
            import soundfile as sf

            fmt, _ = format_and_subtype(str(path), None, None)
            subtype = "PCM_24" if sf.check_format(fmt, "PCM_24") else None
        # in place, header rewritten every second: a SIGKILL leaves a valid file (rtstyle.live)
        w = AudioWriter(path, sr=self.choice.sr, channels=1, subtype=subtype,
                        overwrite=self.overwrite, atomic=False, sync_every=self.choice.sr)
        w.__enter__()
        self._writers.append((w, path))
        return w

    @property
    def recordings_empty(self) -> bool:
        """No input ever reached the recordings: the stream never started, or its device went
        away before the first block came (they would hold only the engine's silent tail)."""
        return not self._started or (self.stopped_by == "device"
                                     and (self.core is None or self.core.fed == 0))

    def close(self) -> None:
        """Stop everything; the recordings are finished and kept (removed when no audio ever
        reached them: :attr:`recordings_empty`). Safe to call twice."""
        import signal

        old = {}
        if threading.current_thread() is threading.main_thread():
            # a 2nd Ctrl-C (or a SIGTERM / SIGHUP after one) must not cut this
            for name in ("SIGINT", "SIGTERM", "SIGHUP"):
                sig = getattr(signal, name, None)
                if sig is not None:
                    old[sig] = signal.signal(sig, signal.SIG_IGN)
        try:
            if self.stream is not None:
                if self.stopped_by == "device":
                    self.stream.abandon()
                else:
                    self.stream.close()
            if self.core is not None:
                self.core.stop()
            errors = []
            try:
                self._close_midi()            # after the stream: rtstyle.live, Threads
            except Exception as err:          # noqa: BLE001
                errors.append(err)
            discard = self.recordings_empty
            for w, path in self._writers:
                try:
                    w.__exit__(None, None, None)
                except Exception as err:      # noqa: BLE001
                    errors.append(err)
                if discard:                   # nothing was recorded: no file that looks like
                    try:                      # a recording (issue 14: a 1057-sample silence)
                        os.unlink(path)
                    except OSError:
                        pass
            self._writers = []
            if self._switch is not None:
                sys.setswitchinterval(self._switch)
                self._switch = None
                gc.unfreeze()
            if self._restore_threads is not None:
                self._restore_threads()
                self._restore_threads = None
            if errors:
                raise errors[0]
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)

    # ------------------------------------------------------------------ running
    def control(self, name: str, value) -> None:
        """Change ``mix``, ``gain_db``, ``bypass``, ``strength``, ``morph`` or ``style``."""
        if name in LiveEngine.CONTROLS:
            self.settings["active" if name == "style" else name] = value
        self.core.control(name, value)

    def run(self, duration: float | None = None, *, panel=None, keys=None,
            stop: threading.Event | None = None) -> dict:
        """Run until ``duration`` seconds of audio, ``stop``, the q key or Ctrl-C.

        Returns the report. A device that stops mid-run raises DeviceError after the report
        is complete (the caller still closes, which keeps the recordings).
        """
        core, sr = self.core, self.choice.sr
        last_blocks, last_change = -1, time.monotonic()
        stall = max(2.0, 20 * self.settings["block_size"] / sr)
        try:
            while True:
                for ch in (keys.read(0.05) if keys is not None else ()):
                    if self.key(ch) == "quit":
                        self.stopped_by = "key"
                if keys is None:
                    time.sleep(0.05)
                now = time.monotonic()
                if self.stopped_by:
                    break
                if stop is not None and stop.is_set():
                    self.stopped_by = "stop"
                    break
                if duration is not None and (core.blocks * self.settings["block_size"]
                                             >= duration * sr or now - self._t0 > duration + 10):
                    self.stopped_by = "duration"
                    break
                if core.blocks != last_blocks:
                    last_blocks, last_change = core.blocks, now
                if not self.stream.active or now - last_change > stall:
                    self.stopped_by = "device"
                    break
                if core.worker_error is not None:
                    self.stopped_by = "error"
                    break
                if panel is not None:
                    panel.update(self)
        except KeyboardInterrupt as err:
            # Ctrl-C, or SIGTERM / SIGHUP as the rtstyle command raises them ('sigterm', ...)
            self.stopped_by = getattr(err, "stopped_by", "interrupt")
        if panel is not None:
            panel.close()
        if self.stopped_by == "device":
            kept = ("no audio came, so nothing was recorded" if self.recordings_empty
                    else "recordings kept")
            raise DeviceError(f"the audio stream stopped: {self.choice.input_name!r} / "
                              f"{self.choice.output_name!r} went away (unplugged, or the JACK "
                              f"server quit); {kept}")
        if self.stopped_by == "error":
            raise RtStyleError(f"the engine failed: {core.worker_error!r}; recordings kept")
        return self.report()

    def key(self, ch: str):
        """A key of the panel: 1–9 style, space bypass, +/- mix, [/] gain, q quit."""
        if len(ch) == 1 and ch in "123456789":
            i = int(ch) - 1
            if i < len(self.engine.styles):
                self.control("style", i)
        elif ch == " ":
            self.control("bypass", not self.settings["bypass"])
        elif ch in "+=-_":
            step = 0.1 if ch in "+=" else -0.1
            self.control("mix", round(min(1.0, max(0.0, self.settings["mix"] + step)), 3))
        elif ch in "[]":
            g = self.settings["gain_db"]
            g = -60.0 if g == -math.inf else g
            self.control("gain_db", float(min(24.0, max(-60.0, g + (1 if ch == "]" else -1)))))
        elif ch in "qQ":
            return "quit"
        return None

    def report(self) -> dict:
        """The ``live --report`` object (DESIGN.md keys and more)."""
        from .. import __version__

        core, eng, sr = self.core, self.engine, self.choice.sr
        p50, p99 = core.worker_percentiles()
        dev_in, dev_out = self.device_latency
        latency = core.delay + dev_in + dev_out
        return {
            "sr": sr, "block_size": self.settings["block_size"],
            "engine_latency_samples": eng.latency, "latency_samples": latency,
            "blocks": core.blocks, "dropouts": core.dropouts, "xruns": core.xruns,
            "worker_p50_ms": p50, "worker_p99_ms": p99,
            "latency_ms": 1000.0 * latency / sr,
            "buffer_samples": core.buffer, "minimum_buffer_samples": core.minimum_buffer,
            "device_latency_samples": [dev_in, dev_out],
            "deadline_ms": 1000.0 * self.settings["block_size"] / sr,
            "model_sr": eng.model_sr, "n_fft": eng.streamer.n_fft,
            "hop_length": eng.streamer.hop_length, "styles": eng.styles,
            "resample_quality": eng.resample_quality, "threads": self.settings["threads"],
            "envelope": eng.streamer.envelope,
            "input_device": self.choice.input_name, "output_device": self.choice.output_name,
            "hostapi": self.choice.hostapi,
            "duration_s": core.blocks * self.settings["block_size"] / sr,
            "dropout_samples": core.dropout_samples, "input_dropped_samples": core.input_dropped,
            "worker_priority": core.worker_priority,
            "stale_samples": core.stale_samples, "resets": core.resets,
            "nonfinite_samples": core.nonfinite, "callback_errors": core.callback_errors,
            "cpu_load": self.stream.cpu_load if self.stream is not None else None,
            "record": None if self.record is None else str(self.record),
            "record_dry": None if self.record_dry is None else str(self.record_dry),
            "stopped_by": self.stopped_by,
            "midi": self.midi_report(),
            "settings": {k: self.settings[k] for k in DEFAULTS},
            "rtstyle_version": __version__,
        }

    def midi_report(self) -> dict | None:
        """The report's ``midi`` object (None when MIDI is off): the port's counters
        (``received``, ``overflow``, ``oversized``, ``errors``, ``pending``), ``events``
        applied, ``learned`` bindings, the ``mapping`` at the end, and ``log``: each event as
        ``[input sample, name, value]`` (the position in ``--record-dry``; the first
        :data:`MIDI_LOG_MAX`), so ``render`` can replay the performance."""
        core, mi = self.core, self.midi
        if core is None or core.controller is None or (mi is None and core.midi is None):
            return None
        mi = mi or core.midi
        stats = mi.stats() if hasattr(mi, "stats") else {}
        stats["errors"] = stats.get("errors", 0) + core.midi_errors
        m = self.mapping
        return {
            **stats, "port": mi.describe() if hasattr(mi, "describe") else repr(mi),
            "events": core.midi_events, "learned": [list(x) for x in core.midi_learned],
            "mapping": {"channel": m.channel, "program": m.program,
                        "cc": {str(k): v for k, v in m.cc.items()}},
            "log": [list(e) for e in core.midi_log],
        }

    # ------------------------------------------------------------------ the panel's view
    def status_line(self) -> str:
        core, eng, s = self.core, self.engine, self.settings
        sr = self.choice.sr
        li, lo = core.level_in, core.level_out
        core.level_in = core.level_out = 0.0
        p50, p99 = core.worker_percentiles(last=200)
        names = eng.styles
        act = int(s["active"]) if isinstance(s["active"], int) else 0
        lat = 1000.0 * (core.delay + sum(self.device_latency)) / sr
        gain = s["gain_db"]
        gain = "-inf" if gain == -math.inf else f"{gain:+.0f}"
        work = "-" if p50 is None else f"{p50:.1f}/{p99:.1f}"
        name = names[act] if act < len(names) else "?"
        return (f"in {_db(li)} out {_db(lo)} dB | {act + 1}:{name}"
                f"{' BYPASS' if s['bypass'] else ''} | drop {core.dropouts} xrun {core.xruns} |"
                f" mix {s['mix']:.2f} gain {gain} dB str {s['strength']:.2f} morph"
                f" {s['morph']:.2f} | {lat:.1f} ms | worker {work} of"
                f" {1000.0 * s['block_size'] / sr:.1f} ms | cpu {100 * self.stream.cpu_load:.0f}%")


def _db(x: float) -> str:
    return " -inf" if x <= 1e-5 else f"{20 * math.log10(x):5.1f}"
