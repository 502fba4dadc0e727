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

The package, a module per part:

- :mod:`~rtstyle.live.settings`: :data:`DEFAULTS` (every setting of a run and a preset) and
  their checks.
- :mod:`~rtstyle.live.ring`: :class:`SpscRing`, the lock-free rings on the sample timeline.
- :mod:`~rtstyle.live.engine`: :class:`LiveEngine` (resample → Streamer → resample),
  :func:`resolve`, :func:`live_buffering`.
- :mod:`~rtstyle.live.core`: :class:`LiveCore`, the callback and the worker thread.
- :mod:`~rtstyle.live.session`: :class:`LiveSession`, a run from devices to report.
- :mod:`~rtstyle.live.presets`: :func:`load_preset`, :func:`save_preset` (TOML).
- :mod:`~rtstyle.live.panel`: the status line and the keys of a terminal.
- :mod:`~rtstyle.live.latency`: :func:`latency_test` (``rtstyle latency-test``).
"""

from __future__ import annotations

from .core import MIDI_LOG_MAX, WORKER_NICE, LiveCore, raise_thread_priority
from .engine import LiveEngine, live_buffering, resolve
from .latency import click_template, find_clicks, latency_test
from .panel import KEY_HELP, KeyReader, Panel
from .presets import load_preset, preset_text, save_preset
from .ring import SpscRing
from .session import REPORT_KEYS, LiveSession
from .settings import DEFAULTS, ON_DROPOUT

__all__ = ["SpscRing", "LiveEngine", "LiveCore", "LiveSession", "latency_test", "DEFAULTS",
           "load_preset", "save_preset", "REPORT_KEYS",
           # used by the CLI, the tests and tools/bench.py too
           "ON_DROPOUT", "MIDI_LOG_MAX", "WORKER_NICE", "raise_thread_priority", "resolve",
           "live_buffering", "click_template", "find_clicks", "KEY_HELP", "KeyReader", "Panel",
           "preset_text"]
