"""The real-time part of ``rtstyle live``: :class:`LiveCore` (the rings, PortAudio's callback and
the worker thread around a :class:`~rtstyle.live.engine.LiveEngine`, MIDI applied at its stamps)
and the worker's priority. The rules it keeps are :mod:`rtstyle.live`'s (Threads, Timing)."""

from __future__ import annotations

import collections
import math
import os
import queue
import threading
import time

import numpy as np

from ..errors import ParameterError
from .ring import SpscRing
from .settings import ON_DROPOUT

__all__ = ["LiveCore", "raise_thread_priority", "WORKER_NICE", "MIDI_LOG_MAX"]

_XRUN_BITS = 1 | 2 | 4 | 8          # PortAudio: input under/overflow, output under/overflow
#: MIDI events kept for the report's ``midi.log`` (input position, name, value); more are counted.
MIDI_LOG_MAX = 10_000

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
        from ..control import LEARNED

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

