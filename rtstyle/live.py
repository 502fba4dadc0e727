"""Live stylisation: a sound card in, the streaming engine, a sound card out (``rtstyle live``).

Threads (DESIGN.md, Live threading):

- PortAudio's thread runs :meth:`LiveCore.callback`: it copies the input block into the input
  :class:`SpscRing`, copies the output block out of the output ring and counts status flags.
  No locks, no buffer allocation, no I/O, no logging. Where the output ring has nothing for a
  sample, the callback plays the latency-aligned dry signal (or silence) and counts a dropout.
- The worker thread (:meth:`LiveCore._work`) takes whatever input has arrived, runs it through
  :class:`LiveEngine` (device rate → model rate → :class:`~rtstyle.stream.Streamer` → device
  rate: exactly ``rtstyle render --keep-latency``'s chain), and publishes the result at its
  place on the output timeline. It also writes the recordings.
- The main thread shows the panel, reads keys and watches the device.
- MIDI (``--midi``): rtmidi's thread only queues the raw messages, each stamped with the input
  ring's ``written`` at arrival (:class:`rtstyle.io.midi.MidiInput`, its ``clock``); the
  worker drains them before each chunk through :class:`rtstyle.control.Controller` (the
  mapping that ``render --midi`` uses too) and applies each event when its processing reaches
  the stamp: the chunk is cut there. So a MIDI control acts on the input timeline at the
  position of the audio it arrived with, however far the worker lags (never earlier; later
  only where the stamp lies in input a restart dropped). Keys (and a MIDI source without
  stamps) act where the worker is when it takes them, before its next chunk. The MIDI port opens before the audio stream
  starts and closes after it stops
  (python-rtmidi holds the GIL while its JACK client opens or closes: see
  :mod:`rtstyle.io.midi`).

Timing is fixed, not measured: output sample ``q`` always carries input sample
``q - delay`` where ``delay = engine latency + buffer``. ``buffer`` is the smallest prefill that
keeps an infinitely fast worker ahead of the callback (worked out by running the chain's sample
counts at start-up: block size, hop and resampler hold-back) plus ``margin_ms`` of slack for
the worker. A late worker never shifts that timeline: what it publishes late is dropped as stale
(the callback already played the dry signal there), and an input backlog larger than ``delay``
is dropped and the engine restarted, so the backlog can never grow. The end-to-end latency is
``delay`` plus the device latencies PortAudio reports (``latency_samples`` in the report).

Recordings (``--record``, ``--record-dry``) survive whatever ends the process. They are written
in place, not through a temp file (:class:`rtstyle.io.files.AudioWriter` with ``atomic=False``):
a recording cut short is still wanted. Ctrl-C, SIGTERM and SIGHUP (which the ``rtstyle``
command raises like Ctrl-C) stop the session normally and finish both files. Against SIGKILL or
a crash, where no code runs, the worker rewrites each file's header about once a second
(``sync_every``), so the file on disk is always a valid WAV (or AIFF, W64, RF64, CAF, AU)
holding the audio up to its last update: at most about a second is lost and nothing needs
recovering. (Chosen over an ``rtstyle recover`` command: nothing for the user to run or
know about; the cost is a 44-byte header write per second in the worker.)
"""

from __future__ import annotations

import collections
import gc
import json
import math
import os
import queue
import sys
import threading
import time

import numpy as np

from .errors import DeviceError, ParameterError, RtStyleError
from .render import DEFAULTS as _RENDER

__all__ = ["SpscRing", "LiveEngine", "LiveCore", "LiveSession", "latency_test", "DEFAULTS",
           "load_preset", "save_preset", "REPORT_KEYS"]

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
#: The keys DESIGN.md asks of ``live --report`` (there are more).
REPORT_KEYS = ("sr", "block_size", "engine_latency_samples", "latency_samples", "blocks",
               "dropouts", "xruns", "worker_p50_ms", "worker_p99_ms")
ON_DROPOUT = ("dry", "silence")
_XRUN_BITS = 1 | 2 | 4 | 8          # PortAudio: input under/overflow, output under/overflow
#: MIDI events kept for the report's ``midi.log`` (input position, name, value); more are counted.
MIDI_LOG_MAX = 10_000


# ----------------------------------------------------------------------------------------------
# the ring
# ----------------------------------------------------------------------------------------------


class SpscRing:
    """A single-producer single-consumer ring of float32 samples on an absolute timeline.

    Positions count samples since the start of the stream. The producer owns :attr:`written`
    (positions ``< written`` are published) and :attr:`start` (positions ``< start`` are not
    valid: a gap); the consumer owns :attr:`read_pos`. Each side only reads the other's
    index, and a plain Python int assignment is atomic, so no lock is needed: data is copied
    before the index that publishes it moves. Nothing here allocates an array.

    Parameters
    ----------
    capacity : int > 0
        Samples held (per channel).
    channels : int > 0
    """

    def __init__(self, capacity: int, channels: int = 1):
        self.capacity = int(capacity)
        self.channels = int(channels)
        self.buf = np.zeros((self.channels, self.capacity), np.float32)
        self.written = 0
        self.start = 0
        self.read_pos = 0

    # -- copying (with the wrap-around) ----------------------------------------------------
    def _put(self, pos, x, gain=None):
        cap, n = self.capacity, x.shape[-1]
        i = pos % cap
        k = min(n, cap - i)
        for dst, src in ((self.buf[:, i:i + k], x[:, :k]), (self.buf[:, :n - k], x[:, k:])):
            if src.shape[-1]:
                if gain is None:
                    np.copyto(dst, src)
                else:
                    np.multiply(src, gain, out=dst)

    def _get(self, pos, out):
        cap, n = self.capacity, out.shape[-1]
        i = pos % cap
        k = min(n, cap - i)
        np.copyto(out[:, :k], self.buf[:, i:i + k])
        if k < n:
            np.copyto(out[:, k:], self.buf[:, :n - k])

    def _2d(self, a):
        return a if a.ndim == 2 else a.reshape(1, -1)

    # -- producer ---------------------------------------------------------------------------
    def write(self, x, gain=None) -> None:
        """Append ``x`` ((n,) or (channels, n)), times ``gain`` if given, at :attr:`written`.

        Never blocks: the oldest samples are overwritten (a consumer that fell ``capacity``
        behind sees that in :meth:`read`).
        """
        x = self._2d(x)
        n = x.shape[-1]
        if n > self.capacity:                 # only the newest `capacity` samples can be kept
            self._put(self.written + n - self.capacity, x[:, n - self.capacity:], gain)
        else:
            self._put(self.written, x, gain)
        self.written += n

    def write_at(self, pos: int, x) -> int:
        """Publish ``x`` at positions ``pos .. pos + n``; returns how many samples were dropped.

        Samples the consumer has already passed are dropped (stale); a jump forward leaves a
        gap the consumer sees as missing; samples that would overrun unread data are dropped.
        """
        x = self._2d(x)
        n = x.shape[-1]
        w, r = self.written, self.read_pos
        end = pos + n
        if end <= max(w, r):
            return n
        lo = max(pos, w, r)
        if lo > w:
            self.start = lo                   # before publishing: [w, lo) is not valid
        hi = min(end, r + self.capacity)
        if hi > lo:
            self._put(lo, x[:, lo - pos:hi - pos])
        self.written = max(hi, lo)
        return n - max(hi - lo, 0)

    def peek(self, pos: int, out) -> None:
        """Copy published positions ``pos ..`` into ``out`` (the producer's own history; zeros
        before position 0)."""
        out = self._2d(out)
        n = out.shape[-1]
        if pos < 0:
            k = min(-pos, n)
            out[:, :k] = 0.0
            if k == n:
                return
            out, pos = out[:, k:], 0
        self._get(pos, out)

    # -- consumer ---------------------------------------------------------------------------
    def available(self) -> int:
        return self.written - self.read_pos

    def read_into(self, out) -> tuple[int, int]:
        """Consume the next ``n`` positions into ``out`` ((n,) or (channels, n)).

        Returns ``(a, b)``: ``out[..., a:b]`` holds published data; the rest of ``out`` is left
        as it was (the caller fills it). :attr:`read_pos` advances by ``n`` in any case.
        """
        out = self._2d(out)
        n, r = out.shape[-1], self.read_pos
        w = self.written                      # read `written` before `start` (see write_at)
        s = self.start
        a = min(max(s, r), r + n) - r
        b = min(w, r + n) - r
        if b > a:
            self._get(r + a, out[:, a:b])
        else:
            a = b = 0
        self.read_pos = r + n
        return a, b

    def read(self, n: int) -> tuple[np.ndarray, bool]:
        """Consume ``n`` positions into a new array; ``lost`` is True if the producer may have
        overwritten some of them meanwhile (the consumer fell ``capacity`` behind)."""
        out = np.empty((self.channels, n), np.float32)
        r = self.read_pos
        self._get(r, out)
        lost = self.written - self.capacity > r
        self.read_pos = r + n
        return out, lost

    def skip_to(self, pos: int) -> None:
        self.read_pos = pos


# ----------------------------------------------------------------------------------------------
# the engine chain
# ----------------------------------------------------------------------------------------------


def resolve(style=None, *, models_dir=None):
    """The style list → ``(resolved entries, model rate or None for identity only)``.

    As ``render`` does it (:func:`rtstyle.render._load_styles`): each model file loaded once
    however often the list names it, every style checked to share the first one's STFT and to
    be causal, the messages naming the styles.
    """
    from .render import _load_styles, style_list
    from .stream.streamer import resolve_styles

    styles = resolve_styles(_load_styles(style_list(style, models_dir=models_dir),
                                         models_dir=models_dir), models_dir=models_dir)
    return styles, next((m.sr for m, _ in styles if m is not None), None)


class LiveEngine:
    """Device rate → the models' rate → :class:`~rtstyle.stream.Streamer` → device rate.

    The same chain, built the same way, as :class:`~rtstyle.render.RenderSession` with
    ``keep_latency=True``: fed a signal in any pieces, its output equals ``rtstyle render
    --keep-latency`` of that signal (within float32 rounding). It follows the streaming protocol
    (:class:`rtstyle.stream.protocol.StreamingStage`; ``latency`` at the device rate). Not
    thread-safe: one thread (the worker) drives it.

    Parameters
    ----------
    styles : list
        From :func:`resolve`.
    sr : int
        The device rate.
    resample_quality : {'VHQ', 'HQ', 'MQ', 'LQ', 'QQ'}
        soxr's preset for both resamplers (device rate ↔ the models' rate), as
        ``render(resample_quality=...)``; it sets their hold-back, so :meth:`prefill` and the
        buffer. No effect when the rates are equal.
    **kw
        The Streamer's settings (n_fft, hop_length, lookahead, phase_iters, phase_init,
        momentum, strength, morph, crossfade_ms, mix, gain_db, bypass, device, envelope).
    """

    CONTROLS = ("mix", "gain_db", "bypass", "strength", "morph", "style")

    def __init__(self, styles, *, sr: int, n_fft=None, hop_length=None, lookahead=1,
                 phase_iters=None, phase_init="input", momentum=None, strength=1.0, morph=0.0,
                 crossfade_ms=50.0, mix=1.0, gain_db=0.0, bypass=False, device="cpu",
                 resample_quality="HQ", envelope="follow"):
        from .io.files import resample_quality as _quality
        from .stream import Streamer

        self.sr = int(sr)
        self.resample_quality = _quality(resample_quality, "resample_quality")
        self.model_sr = next((m.sr for m, _ in styles if m is not None), self.sr)
        self.streamer = Streamer(
            [None if m is None else (m, i) for m, i in styles], sr=self.model_sr, n_fft=n_fft,
            hop_length=hop_length, lookahead=lookahead, phase_iters=phase_iters,
            phase_init=phase_init, momentum=momentum, strength=strength, morph=morph,
            crossfade_ms=crossfade_ms, mix=mix, gain_db=gain_db, bypass=bypass, device=device,
            channels=1, envelope=envelope)
        self.initial = {"mix": mix, "gain_db": gain_db, "bypass": bool(bypass),
                        "strength": strength, "morph": morph, "style": 0}
        self.current = dict(self.initial)
        self._rs_in, self._rs_out = self._resamplers()

    @property
    def latency(self) -> int:
        """Engine latency at the device rate (as ``render`` counts it)."""
        return int(round(self.streamer.latency * self.sr / self.model_sr))

    @property
    def styles(self) -> list[str]:
        return self.streamer.styles

    def _resamplers(self):
        """Fresh (device → models', models' → device) streaming resamplers at the quality."""
        from .io.files import Resampler

        q = self.resample_quality
        return (Resampler(orig_sr=self.sr, target_sr=self.model_sr, channels=1, quality=q),
                Resampler(orig_sr=self.model_sr, target_sr=self.sr, channels=1, quality=q))

    def feed(self, x: np.ndarray) -> np.ndarray:
        """``(1, n)`` at the device rate → the ``(1, m)`` output that is ready."""
        m = self._rs_in.feed(x)
        y = self.streamer.feed(m) if m.shape[-1] else np.zeros((1, 0), np.float32)
        return self._rs_out.feed(y)

    def flush(self) -> np.ndarray:
        """The tail (the Streamer's latency and the resamplers' hold-back); then reset."""
        m = self._rs_in.flush()
        parts = [self.streamer.feed(m)] if m.shape[-1] else []
        parts.append(self.streamer.flush())
        tail = np.concatenate([self._rs_out.feed(np.concatenate(parts, axis=1)),
                               self._rs_out.flush()], axis=1)
        self.reset()
        return tail

    def set(self, name: str, value) -> None:
        """Change a control (validated by the Streamer; raises ParameterError)."""
        if name not in self.CONTROLS:
            raise ParameterError(f"unknown control {name!r}; expected one of {self.CONTROLS}")
        self.streamer.set(name, value)
        self.current[name] = value

    def reset(self) -> None:
        """Fresh stream state; the current controls are set again."""
        self.streamer.reset()
        self._rs_in.reset()
        self._rs_out.reset()
        for k, v in self.current.items():
            if v != self.initial[k]:
                self.streamer.set(k, v)

    def warm_up(self, seconds: float = 0.5) -> None:
        """Run the chain once (JIT kernels, allocations) so the first real block is on time."""
        rng = np.random.default_rng(0)
        x = (0.05 * rng.standard_normal((1, max(1, int(seconds * self.sr))))).astype(np.float32)
        for i in range(0, x.shape[1], 256):
            self.feed(x[:, i:i + 256])
        self.reset()

    def prefill(self, block: int) -> int:
        """The smallest buffer (device samples) that keeps the output fed, worker infinitely fast.

        Runs the chain's sample counts (an identity Streamer with the same STFT sizes, the same
        resamplers at the same ``resample_quality``) for ``block``-sized callbacks: at callback
        ``k`` the worker has had blocks ``0 .. k-1`` and the callback needs output up to
        ``(k + 1) * block``. The start-up transient (output that is silent anyway) is not
        counted. soxr's hold-back, and so this buffer, depends on the quality.
        """
        from .stream import Streamer

        st = self.streamer
        sim = Streamer(None, sr=self.model_sr, n_fft=st.n_fft, hop_length=st.hop_length,
                       lookahead=st.lookahead, phase_iters=0, channels=1)
        rs_in, rs_out = self._resamplers()
        hop = st.hop_length * self.sr / self.model_sr
        k0 = int(math.ceil((self.latency + 2 * hop + block) / block)) + 1
        z = np.zeros((1, block), np.float32)
        produced = worst = 0
        for k in range(k0 + max(64, int(math.ceil(1.0 * self.sr / block)))):
            if k >= k0:
                worst = max(worst, (k + 1) * block - produced)
            m = rs_in.feed(z)
            y = sim.feed(m) if m.shape[-1] else np.zeros((1, 0), np.float32)
            produced += rs_out.feed(y).shape[-1]
        return int(worst)


def live_buffering(style, *, sr: int, block_size: int, margin_ms: float = DEFAULTS["margin_ms"],
                   models_dir=None, **engine_kw) -> tuple[int, int]:
    """``(engine latency, buffer)`` in samples at ``sr`` that ``live`` would run with.

    ``engine_kw`` are :class:`LiveEngine`'s (``resample_quality``, ``lookahead``, ...).
    """
    styles, _ = resolve(style, models_dir=models_dir)
    eng = LiveEngine(styles, sr=sr, **engine_kw)
    return eng.latency, eng.prefill(block_size) + int(round(margin_ms * sr / 1000))


# ----------------------------------------------------------------------------------------------
# the callback and the worker
# ----------------------------------------------------------------------------------------------


#: Niceness asked for the worker thread: CPU time ahead of ordinary processes on a busy machine.
WORKER_NICE = -10


def raise_thread_priority(nice: int = WORKER_NICE) -> str:
    """Lower the calling thread's niceness to ``nice`` if the OS allows it; say what it got.

    Linux schedules threads individually, so this moves the worker (not the whole process)
    ahead of ordinary processes that compete for the cores. Without the permission
    (``CAP_SYS_NICE``, or an ``RLIMIT_NICE`` that allows it) the thread keeps its priority:
    the run goes on, and the report says ``'normal'``. Not real-time scheduling: a
    ``SCHED_FIFO`` thread that waits for Python's GIL held by an ordinary thread would invert
    priorities.
    """
    get_id = getattr(threading, "get_native_id", None)
    if get_id is None or not hasattr(os, "setpriority"):
        return "normal (not supported here)"
    try:
        tid = get_id()
        if os.getpriority(os.PRIO_PROCESS, tid) <= nice:
            return f"nice {os.getpriority(os.PRIO_PROCESS, tid)}"
        os.setpriority(os.PRIO_PROCESS, tid, nice)
        return f"nice {os.getpriority(os.PRIO_PROCESS, tid)}"
    except OSError:
        return "normal (no permission to raise it)"


class LiveCore:
    """The rings, the audio callback and the worker thread around a :class:`LiveEngine`.

    Device-free: a :class:`~rtstyle.io.audio.DuplexStream` (or a test's fake clock) calls
    :meth:`callback` once per block.

    Parameters
    ----------
    engine : LiveEngine
        Or any object with ``sr``, ``set``, ``current``, ``prefill(block)`` and the streaming
        protocol (:class:`rtstyle.stream.protocol.StreamingStage`: ``feed``, ``flush``,
        ``reset``, ``latency``).
    block_size : int
        Frames per callback.
    input_channel : int
        Index (from 0) of the input channel processed.
    margin : int
        Samples of buffering beyond the computed minimum (slack for the worker).
    on_dropout : 'dry' or 'silence'
        What a missing output sample becomes.
    input_gain_db : float
    recorders : (wet, dry) writers or None
        Objects with ``write((1, n))``, written from the worker.
    """

    def __init__(self, engine, *, block_size: int, input_channel: int = 0, margin: int = 0,
                 on_dropout: str = "dry", input_gain_db: float = 0.0, recorders=(None, None)):
        if on_dropout not in ON_DROPOUT:
            raise ParameterError(f"on_dropout={on_dropout!r} must be one of {ON_DROPOUT}")
        self.engine = engine
        self.sr = engine.sr
        self.block_size = int(block_size)
        self.input_channel = int(input_channel)
        self.minimum_buffer = engine.prefill(self.block_size)
        self.buffer = self.minimum_buffer + int(margin)
        self.delay = engine.latency + self.buffer
        cap = 1 << int(math.ceil(math.log2(4 * (self.delay + 4 * self.block_size) + self.sr)))
        self.in_ring = SpscRing(cap)
        self.out_ring = SpscRing(cap)
        self.max_backlog = self.delay
        self.dry_fallback = on_dropout == "dry"
        self.in_gain = float(10 ** (input_gain_db / 20.0))
        self.fallback_gain = self._gain(engine.current)
        self.rec_wet, self.rec_dry = recorders
        self.poll = min(0.002, max(0.0005, self.block_size / self.sr / 8))
        # counters (the callback's are written by PortAudio's thread only)
        self.blocks = self.xruns = self.dropouts = self.dropout_samples = 0
        self.callback_errors = 0
        self.callback_error: BaseException | None = None
        self.input_dropped = self.resets = self.stale_samples = self.lost_input = 0
        self.nonfinite = 0
        self.worker_error: BaseException | None = None
        self.worker_priority = "not started"
        self.times_ms: list[float] = []
        self.level_in = self.level_out = 0.0
        self.fed = 0                     # input samples the engine has taken
        self.wet_frames = 0
        self._controls: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._out_base = self.buffer     # output position of the engine's next sample
        self._produced = 0
        self._trim = 0
        # MIDI (attach_midi): drained by the worker only
        self.midi = self.controller = None
        self.on_midi = None
        self.midi_events = self.midi_errors = 0
        self.midi_log: list[tuple[int, str, object]] = []
        self._stamped = False            # the source stamps its events (MidiInput.clock)
        self._midi_due: collections.deque = collections.deque()   # (stamp, name, value)
        self.midi_learned: list[tuple[int, str]] = []

    @staticmethod
    def _gain(current) -> float:
        g = current.get("gain_db", 0.0)
        return 0.0 if g == -math.inf else float(10 ** (g / 20.0))

    # ------------------------------------------------------------------ PortAudio's thread
    def callback(self, indata, outdata, frames, flags) -> None:
        """Copy ``indata[input_channel]`` in, fill ``outdata`` (channel-first views)."""
        try:
            self.blocks += 1
            if flags & _XRUN_BITS:
                self.xruns += 1
            self.in_ring.write(indata[self.input_channel], self.in_gain)
            out0 = outdata[0]
            q = self.out_ring.read_pos
            a, b = self.out_ring.read_into(out0)
            if a > 0 or b < frames:
                missing = self._fallback(out0, q, 0, a) + self._fallback(out0, q, b, frames)
                if missing:
                    self.dropouts += 1
                    self.dropout_samples += missing
            for c in range(1, outdata.shape[0]):
                outdata[c] = out0
        except Exception as err:            # noqa: BLE001 - the stream must go on
            outdata.fill(0.0)
            self.callback_errors += 1
            if self.callback_error is None:
                self.callback_error = err

    def _fallback(self, out0, q, i, j) -> int:
        """Fill ``out0[i:j]`` (positions ``q+i .. q+j``) with the aligned dry signal or silence;
        returns how many of them were audible (after the stream's silent start)."""
        if j <= i:
            return 0
        seg = out0[i:j]
        if self.dry_fallback:
            self.in_ring.peek(q + i - self.delay, seg)
            np.multiply(seg, self.fallback_gain, out=seg)
            np.fmax(seg, -1.0, out=seg)           # NaN/Inf never reach the device
            np.fmin(seg, 1.0, out=seg)
        else:
            seg.fill(0.0)
        return max(0, j - max(i, self.delay - q))

    # ------------------------------------------------------------------ the worker
    def control(self, name: str, value) -> None:
        """Queue a control change (any thread); the worker applies it before its next chunk."""
        self._controls.put((name, value))

    def attach_midi(self, midi, controller, on_event=None) -> None:
        """Drain ``midi`` (a :class:`rtstyle.io.midi.MidiInput`, or anything with
        ``events(controller)``) before each chunk, through ``controller``
        (:class:`rtstyle.control.Controller`); each event goes to ``on_event(name, value)``
        (default :meth:`control`) and is applied at once.

        A source with a ``clock`` attribute (MidiInput) gets the input ring as its clock: it
        stamps each message with the input position at arrival, and the event is applied
        when the worker's processing reaches that position (the chunk is cut there), however
        late the worker runs. Call before :meth:`start`."""
        self.midi, self.controller, self.on_midi = midi, controller, on_event
        self._stamped = hasattr(midi, "clock")
        if self._stamped:
            midi.clock = self.in_ring

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="rtstyle-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> np.ndarray | None:
        """Stop the worker; returns the engine's tail (also written to the wet recorder)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return None
        self._apply_midi_due(None)            # stamped past the last input taken: at its end
        try:
            tail = self.engine.flush()
        except Exception as err:             # noqa: BLE001 - keep what was recorded
            self.worker_error = self.worker_error or err
            return None
        tail = _finite(tail)
        if self.rec_wet is not None:
            if self.resets == 0:              # wet = render --keep-latency(dry): same length
                want = self.fed + self.engine.latency - self.wet_frames
                if tail.shape[1] >= want:
                    tail = tail[:, :max(want, 0)]
                else:
                    tail = np.concatenate([tail, np.zeros((1, want - tail.shape[1]),
                                                          np.float32)], axis=1)
            self.rec_wet.write(tail)
            self.wet_frames += tail.shape[1]
        return tail

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _work(self) -> None:
        self.worker_priority = raise_thread_priority()
        try:
            ring = self.in_ring
            while not self._stop.is_set():
                # `written` before draining MIDI: an event stamped at or before w was queued
                # by then, so it is drained now and applied inside this chunk, at its stamp
                w = ring.written
                if self.midi is not None:
                    self._poll_midi()
                self._apply_midi_due(ring.read_pos)
                self._apply_controls()
                backlog = w - ring.read_pos
                if backlog > self.max_backlog:
                    self._skip(w)
                    continue
                if backlog <= 0:
                    time.sleep(self.poll)
                    continue
                self._chunk(backlog)
        except BaseException as err:         # noqa: BLE001 - reported by the session
            self.worker_error = err

    def _chunk(self, n: int) -> None:
        r0 = self.in_ring.read_pos
        x, lost = self.in_ring.read(n)
        if lost:
            self.lost_input += n
        t0 = time.perf_counter()
        y = self._feed(x, r0)
        self.times_ms.append(1000.0 * (time.perf_counter() - t0))
        y = _finite(y, self)
        self.fed += n
        pos = self._out_base + self._produced
        self._produced += y.shape[1]
        pub = y
        if self._trim:                        # after a restart: the engine's pre-roll
            k = min(self._trim, y.shape[1])
            self._trim -= k
            pub, pos = y[:, k:], pos + k
        if pub.shape[1]:
            self.stale_samples += self.out_ring.write_at(pos, pub)
        self.level_in = max(self.level_in, float(np.max(np.abs(x))) if x.size else 0.0)
        if y.size:
            self.level_out = max(self.level_out, float(np.max(np.abs(y))))
        if self.rec_dry is not None:
            self.rec_dry.write(x)
        if self.rec_wet is not None and y.shape[1]:
            self.rec_wet.write(y)
            self.wet_frames += y.shape[1]

    def _feed(self, x: np.ndarray, r0: int) -> np.ndarray:
        """``engine.feed(x)`` (``x`` holds input positions ``r0 ..``), cut at the stamps of the
        MIDI events due inside it, each applied there."""
        due, n = self._midi_due, x.shape[1]
        if not due or due[0][0] >= r0 + n:
            return self.engine.feed(x)
        parts, i = [], 0
        while due and due[0][0] < r0 + n:
            cut = due[0][0] - r0
            if cut > i:
                parts.append(self.engine.feed(x[:, i:cut]))
                i = cut
            self._apply_midi_due(r0 + i, fed=self.fed + i)
        parts.append(self.engine.feed(x[:, i:]))
        return np.concatenate(parts, axis=1)

    def _skip(self, w: int) -> None:
        """Backlog too old to be heard in time: drop it and restart the engine at the present."""
        p0 = max(w - self.block_size, self.in_ring.read_pos)
        self.input_dropped += p0 - self.in_ring.read_pos
        self.in_ring.skip_to(p0)
        self.engine.reset()
        self.resets += 1
        self._out_base = p0 + self.buffer
        self._produced = 0
        self._trim = self.engine.latency

    def _poll_midi(self) -> None:
        """MIDI that arrived since the last chunk → controls (MIDI never stops the engine)."""
        from .control import LEARNED

        try:
            if self._stamped:
                events = self.midi.events(self.controller, stamped=True)
            else:
                events = [(None, *e) for e in self.midi.events(self.controller)]
        except Exception:                    # noqa: BLE001 - MidiInput.events does not raise
            self.midi_errors += 1
            return
        for stamp, name, value in events:
            if name == LEARNED:               # (cc, param): Controller has logged it
                self.midi_learned.append(value)
            elif stamp is None:               # no stamp: now, at the worker's position
                self._midi_event(self.fed, name, value)
            else:                             # at its stamp (_apply_midi_due)
                self._midi_due.append((stamp, name, value))

    def _apply_midi_due(self, upto: int | None, fed: int | None = None) -> None:
        """Apply the stamped MIDI events due at input position ``upto`` (stamped at or
        before it; ``None``: all), logged at ``fed`` (default :attr:`fed`), then the
        controls they queued."""
        due = self._midi_due
        if not due:
            return
        while due and (upto is None or due[0][0] <= upto):
            _, name, value = due.popleft()
            self._midi_event(self.fed if fed is None else fed, name, value)
        self._apply_controls()

    def _midi_event(self, pos: int, name: str, value) -> None:
        """A MIDI event applied at ``pos`` (input samples taken): logged, then passed on."""
        self.midi_events += 1
        if len(self.midi_log) < MIDI_LOG_MAX:
            self.midi_log.append((pos, name, value))
        try:
            (self.on_midi or self.control)(name, value)
        except Exception:                    # noqa: BLE001
            self.midi_errors += 1

    def _apply_controls(self) -> None:
        while True:
            try:
                name, value = self._controls.get_nowait()
            except queue.Empty:
                return
            try:
                self.engine.set(name, value)
            except ParameterError:
                continue
            if name == "gain_db":
                self.fallback_gain = self._gain(self.engine.current)

    # ------------------------------------------------------------------ numbers
    def worker_percentiles(self, last: int | None = None) -> tuple[float | None, float | None]:
        t = self.times_ms[-last:] if last else self.times_ms
        if not t:
            return None, None
        a = np.asarray(t)
        return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def _finite(y: np.ndarray, core=None) -> np.ndarray:
    """Guard: NaN/Inf → 0, then clip to ±1 (the Streamer's limiter already keeps it finite)."""
    if not np.isfinite(y).all():
        if core is not None:
            core.nonfinite += int((~np.isfinite(y)).sum())
        y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(y, -1.0, 1.0).astype(np.float32, copy=False)


# ----------------------------------------------------------------------------------------------
# presets
# ----------------------------------------------------------------------------------------------


def _toml_loads(text: str) -> dict:
    try:
        import tomllib                                  # Python >= 3.11
    except ModuleNotFoundError:                         # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def load_preset(path) -> dict:
    """Read a preset (TOML) → the settings it holds (a subset of :data:`DEFAULTS`).

    Raises ParameterError for a missing or malformed file, or an unknown key.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise ParameterError(f"--preset {path}: cannot read it ({err.strerror or err})") from None
    try:
        data = _toml_loads(text)
    except Exception as err:                   # noqa: BLE001 - tomllib.TOMLDecodeError
        raise ParameterError(f"--preset {path}: not valid TOML ({err})") from None
    unknown = sorted(set(data) - set(DEFAULTS) - {"format"})
    if unknown:
        raise ParameterError(f"--preset {path}: unknown setting(s) {', '.join(unknown)}; a preset "
                             f"holds {', '.join(DEFAULTS)}")
    data.pop("format", None)
    if isinstance(data.get("style"), str):
        data["style"] = [s.strip() for s in data["style"].split(",")]
    return data


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, float):
        if math.isinf(v):
            return "-inf" if v < 0 else "inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))


def preset_text(settings: dict) -> str:
    lines = ["# rtstyle live preset (rtstyle live --preset THIS.toml)", "format = 1"]
    for k in DEFAULTS:
        v = settings.get(k)
        if v is None:
            lines.append(f"# {k}: default")
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def save_preset(path, settings: dict, *, overwrite: bool = False) -> None:
    """Write the :data:`DEFAULTS` keys of ``settings`` as TOML, atomically."""
    from .io.files import atomic_output

    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(preset_text(settings), encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# the session
# ----------------------------------------------------------------------------------------------


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
        place with a header kept valid about every second (module docstring: Recordings).
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
        from . import _validate as v

        unknown = sorted(set(settings or {}) - set(DEFAULTS))
        if unknown:
            raise ParameterError(f"unknown live setting(s) {', '.join(unknown)}")
        s = dict(DEFAULTS)
        s.update({k: val for k, val in (settings or {}).items() if val is not None})
        self.settings = s
        v.positive_int(s["block_size"], "block_size")
        if not isinstance(s["margin_ms"], (int, float)) or not 0 <= s["margin_ms"] <= 1000:
            raise ParameterError(f"margin_ms={s['margin_ms']!r} must be a number of ms in 0..1000")
        if s["on_dropout"] not in ON_DROPOUT:
            raise ParameterError(f"on_dropout={s['on_dropout']!r} must be one of "
                                 f"{', '.join(ON_DROPOUT)}")
        from .io.files import resample_quality

        s["resample_quality"] = resample_quality(s["resample_quality"], "resample_quality")
        s["threads"] = v.bounded_int(s["threads"], "threads")
        from .render import ENVELOPES

        s["envelope"] = v.one_of(s["envelope"], ENVELOPES, "envelope")
        ig = s["input_gain_db"]
        if isinstance(ig, bool) or not isinstance(ig, (int, float)) or not -60 <= ig <= 40:
            raise ParameterError(f"input_gain_db={ig!r} must be a number of dB in -60..40")
        self.input_channel = v.positive_int(input_channel, "input_channel")
        if output_channels is not None:
            v.positive_int(output_channels, "output_channels")
        if sr is not None:
            v.positive_int(sr, "sr")
        self._dev_args = dict(input=input, output=output, sr=sr,
                              input_channels=self.input_channel, output_channels=output_channels)
        self.latency_setting = _check_latency(latency)
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

        from .control import CC_PARAMS, Mapping
        from .io.midi import APIS

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
        """The controller, and the port (before the audio stream starts: module docstring)."""
        from .control import Controller

        s = self.settings
        self.controller = Controller(self.mapping, n_styles=len(self.engine.styles))
        if self.midi_learn is not None:
            self.controller.learn(self.midi_learn)
        if not self.midi_enabled:
            return
        from .io import midi

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
        from .io import audio

        s = self.settings
        for path in (self.record, self.record_dry):
            if path is not None:
                from .io.files import check_output_path

                check_output_path(path, overwrite=self.overwrite)
        styles, model_sr = resolve(s["style"], models_dir=self.models_dir)
        self.choice = audio.preflight(prefer=(model_sr,) if model_sr else (), **self._dev_args)
        self.engine = LiveEngine(
            styles, sr=self.choice.sr, n_fft=s["n_fft"], hop_length=s["hop_length"],
            lookahead=s["lookahead"], phase_iters=s["phase_iters"], phase_init=s["phase_init"],
            momentum=s["momentum"], strength=s["strength"], morph=s["morph"],
            crossfade_ms=s["crossfade_ms"], mix=s["mix"], gain_db=s["gain_db"],
            bypass=s["bypass"], device=s["device"], resample_quality=s["resample_quality"],
            envelope=s["envelope"])
        from .stream.threads import use_threads

        # the thread policy, once the styles are loaded (torch imported), before the warm-up
        self._restore_threads = use_threads(s["threads"])
        if s["active"]:
            self.engine.set("style", s["active"])     # warm_up's reset sets it again
        self.engine.warm_up()
        self.core = LiveCore(self.engine, block_size=s["block_size"],
                             input_channel=self.input_channel - 1,
                             margin=int(round(s["margin_ms"] * self.choice.sr / 1000)),
                             on_dropout=s["on_dropout"], input_gain_db=s["input_gain_db"])
        self._open_midi()                     # before the stream: module docstring
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
        from .io.files import AudioWriter, format_and_subtype

        subtype = self.record_subtype
        if subtype is None:
            import soundfile as sf

            fmt, _ = format_and_subtype(str(path), None, None)
            subtype = "PCM_24" if sf.check_format(fmt, "PCM_24") else None
        # in place, header rewritten every second: a SIGKILL leaves a valid file (see above)
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
                self._close_midi()            # after the stream: module docstring
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
        from . import __version__

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


def _check_latency(latency):
    if latency in ("low", "high"):
        return latency
    try:
        value = float(latency)
    except (TypeError, ValueError):
        raise ParameterError(f"latency={latency!r} must be 'low', 'high' or seconds") from None
    if not 0 < value <= 2:
        raise ParameterError(f"latency={latency!r} must be 'low', 'high' or seconds in (0, 2]")
    return value


# ----------------------------------------------------------------------------------------------
# panel and keys
# ----------------------------------------------------------------------------------------------


class Panel:
    """One refreshing line on a terminal; a plain line every ``every`` s otherwise."""

    def __init__(self, stream=None, *, every: float = 5.0, refresh: float = 0.2):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = refresh if self.tty else every
        self._next = 0.0
        self._shown = False

    def update(self, session) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        line = session.status_line()
        if self.tty:
            import shutil

            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + line[:width].ljust(width))
            self._shown = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


class KeyReader:
    """Single keys from a terminal (cbreak mode, restored on exit); None where unavailable."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdin
        self._old = None

    @classmethod
    def open(cls):
        try:
            import termios  # noqa: F401
            import tty      # noqa: F401
        except ImportError:
            return None
        if not (hasattr(sys.stdin, "isatty") and sys.stdin.isatty()):
            return None
        return cls()

    def __enter__(self):
        import termios
        import tty

        fd = self.stream.fileno()
        self._old = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        return self

    def __exit__(self, *exc):
        import termios

        if self._old is not None:
            termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._old)
            self._old = None
        return False

    def read(self, timeout: float) -> list[str]:
        import select

        fd = self.stream.fileno()
        keys = []
        ready, _, _ = select.select([fd], [], [], timeout)
        while ready:
            ch = os.read(fd, 1).decode("utf-8", "replace")
            if not ch:
                break
            keys.append(ch)
            ready, _, _ = select.select([fd], [], [], 0)
        return keys


KEY_HELP = "keys: 1-9 style, space bypass, +/- mix, [/] gain, q quit"


# ----------------------------------------------------------------------------------------------
# latency test
# ----------------------------------------------------------------------------------------------


class _ClickLoop:
    """Callback of the latency test: play a prepared click train, capture the input."""

    def __init__(self, play: np.ndarray, channel: int):
        self.play = play
        self.captured = np.zeros_like(play)
        self.pos = 0
        self.channel = channel
        self.xruns = 0

    def callback(self, indata, outdata, frames, flags):
        if flags & _XRUN_BITS:
            self.xruns += 1
        p, n = self.pos, self.play.size
        k = max(0, min(frames, n - p))
        if k:
            outdata[:, :k] = self.play[p:p + k]
            self.captured[p:p + k] = indata[self.channel, :k]
        if k < frames:
            outdata[:, k:] = 0.0
        self.pos = p + frames


def click_template(sr: int) -> np.ndarray:
    """A 5 ms Hann-windowed noise burst at -6 dBFS peak (fixed seed): broadband, so a matched
    filter finds it to the sample even through a band-limited cable loop."""
    n = max(16, int(0.005 * sr))
    burst = np.random.default_rng(7).standard_normal(n) * np.hanning(n)
    return (0.5 * burst / np.max(np.abs(burst))).astype(np.float32)


def find_clicks(captured: np.ndarray, starts, template: np.ndarray, window: int) -> list[int]:
    """Round-trip lags (samples) of the clicks played at ``starts``, by matched filtering."""
    from scipy.signal import correlate

    energy = float(np.dot(template, template))
    lags = []
    for s in starts:
        seg = captured[s:s + window + template.size]
        if seg.size < template.size:
            break
        c = correlate(seg, template, mode="valid", method="fft")
        k = int(np.argmax(np.abs(c)))
        peak = abs(float(c[k]))
        floor = float(np.median(np.abs(c))) + 1e-12
        if peak >= 0.05 * energy and peak >= 8 * floor:
            lags.append(k)
    return lags


def latency_test(*, input=None, output=None, sr=None, block_size: int = 256, latency="low",
                 input_channel: int = 1, output_channels=None, duration: float = 4.0,
                 interval: float = 0.5, lead: float = 0.5) -> dict:
    """Play clicks out, capture them in (a loopback cable or routing), measure the round trip.

    Returns a dict: ``sr``, ``block_size``, ``clicks``, ``detected``, ``measured_samples``
    (median), ``measured_ms``, ``jitter_samples`` (max - min), ``jitter_std_samples``,
    ``lags``, ``device_latency_samples`` ([input, output], as PortAudio reports them),
    ``computed_samples`` (their sum: the figure rtstyle adds to ``live``'s latency), ``xruns``.
    """
    from . import _validate as v
    from .io import audio

    v.positive_int(block_size, "block_size")
    if not 0.5 <= duration <= 600:
        raise ParameterError(f"duration={duration!r} must be 0.5..600 seconds")
    if not 0.05 <= interval <= 5:
        raise ParameterError(f"interval={interval!r} must be 0.05..5 seconds")
    choice = audio.preflight(input, output, sr=sr, input_channels=input_channel,
                             output_channels=output_channels)
    sr = choice.sr
    tpl = click_template(sr)
    n = int(duration * sr)
    step = int(interval * sr)
    starts = list(range(int(lead * sr), n - step + 1, step))
    if not starts:
        raise ParameterError(f"duration={duration} s leaves no room for a click (lead {lead} s + "
                             f"interval {interval} s)")
    play = np.zeros(n, np.float32)
    for s in starts:
        play[s:s + tpl.size] = tpl
    loop = _ClickLoop(play, input_channel - 1)
    stream = audio.DuplexStream(choice, block_size=block_size, latency=_check_latency(latency),
                                callback=loop.callback)
    dev = stream.latency
    try:
        stream.start()
        t_end = time.monotonic() + duration + 5
        while loop.pos < n and time.monotonic() < t_end:
            if not stream.active:
                raise DeviceError(f"the audio stream stopped: {choice.input_name!r} / "
                                  f"{choice.output_name!r} went away")
            time.sleep(0.05)
    finally:
        stream.close()
    lags = find_clicks(loop.captured, starts, tpl, step - tpl.size)
    out = {"sr": sr, "block_size": block_size, "clicks": len(starts), "detected": len(lags),
           "lags": lags, "measured_samples": None, "measured_ms": None, "jitter_samples": None,
           "jitter_std_samples": None, "device_latency_samples": list(dev),
           "computed_samples": int(sum(dev)), "computed_ms": 1000.0 * sum(dev) / sr,
           "xruns": loop.xruns, "input_device": choice.input_name,
           "output_device": choice.output_name}
    if lags:
        a = np.asarray(lags, float)
        med = int(round(float(np.median(a))))
        out.update(measured_samples=med, measured_ms=1000.0 * med / sr,
                   jitter_samples=int(a.max() - a.min()), jitter_std_samples=float(a.std()))
    return out
