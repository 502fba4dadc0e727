"""MIDI ports: the only module of rtstyle that imports ``rtmidi`` (python-rtmidi).

Nothing imports this module unless MIDI ports are asked for (``rtstyle live --midi``,
``rtstyle midi-ports``), so ``import rtstyle`` works without python-rtmidi. It only moves bytes:
what they mean is :mod:`rtstyle.control`'s business (``Controller.handle``).

- :func:`list_ports` / :func:`probe_apis`: the MIDI input ports of each backend API, and why an
  API does not work (no ALSA sequencer, no JACK server).
- :func:`open_input`: open a port chosen by exact name, a unique part of a name, or index, or
  create a virtual port; returns a :class:`MidiInput`.
- :class:`MidiInput`: rtmidi's callback (rtmidi's thread; with JACK, the JACK process thread)
  only appends the ``(message, delta_time)`` tuple python-rtmidi already built, paired with its
  *stamp*, to a bounded ``collections.deque`` and counts what it drops: no parsing, no logging,
  no lock (``append`` and ``popleft`` are atomic). The stamp is the audio input position at
  arrival: the ``written`` counter (a plain int, read without a lock) of the object set as
  :attr:`MidiInput.clock` (live sets its input ring), or ``None`` without one. The audio worker
  calls :meth:`MidiInput.drain` (or :meth:`MidiInput.events`) and hands the messages to
  :meth:`rtstyle.control.Controller.handle`, where running status and junk are parsed; with the
  stamps it applies each event where the audio it arrived with is, however late it runs.

Floods: sysex, MIDI clock and active sensing are ignored inside rtmidi (never copied to Python);
a message longer than ``max_message_bytes`` that still arrives is dropped and counted; when the
queue is full the oldest message is dropped (the newest knob position wins) and counted. Memory
stays under about ``8 × queue_size × max_message_bytes`` bytes (4 MB by default: lists of small
ints), whatever arrives.

APIs: ``alsa``, ``jack``, ``coremidi``, ``winmm`` (``rtmidi.API_*``). Without ``api``, each
compiled API is tried in turn (rtmidi's order: ALSA before JACK on Linux): an API that cannot
start (no ALSA sequencer, no JACK server) or does not have the port asked for is skipped, and
the error names every API tried and why. With JACK, the client is named ``rtstyle-midi`` and the
server is ``$JACK_DEFAULT_SERVER`` (the default server when unset).

Threads and JACK (python-rtmidi 1.5): python-rtmidi holds the GIL while RtMidi opens, activates,
connects and closes its JACK client, and JACK waits for the current process cycle to end. So if
another JACK client of this process runs Python in its process callback at that moment (a
running sounddevice stream on JACK, a ``JACK-Client`` client, another callback-mode rtmidi
input receiving messages), that callback waits for the GIL, the cycle never ends, and the
process deadlocks (measured: within ~20 open/close cycles next to an active JACK-Client
client). Hence the rule: call :func:`open_input`, :func:`list_ports` / :func:`probe_apis` and
:meth:`MidiInput.close` only while no such callback runs: open MIDI before the audio stream
starts, close it after the stream stops. Our own callback is cancelled, and given
``_CLOSE_GRACE_S`` to finish, before :meth:`MidiInput.close` closes the port.

Known limit of RtMidi's JACK backend (python-rtmidi 1.5): after an event that starts a sysex
(``0xF0``) without ending it (``0xF7``), every following event is taken as the rest of that
sysex, and dropped, until an event that ends with ``0xF7``. Real devices always end their
sysex; junk may not.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import numbers
import os
import sys
import time

from ..errors import MidiError, ParameterError

__all__ = ["APIS", "MidiInput", "compiled_apis", "list_ports", "open_input", "probe_apis"]

log = logging.getLogger("rtstyle")

#: ``--midi-api`` names → the name of the ``rtmidi.API_*`` constant.
APIS = {"alsa": "API_LINUX_ALSA", "jack": "API_UNIX_JACK", "coremidi": "API_MACOSX_CORE",
        "winmm": "API_WINDOWS_MM"}

#: Name of rtstyle's MIDI client (JACK client, ALSA sequencer client).
CLIENT_NAME = "rtstyle-midi"
#: Seconds :meth:`MidiInput.close` lets an in-flight callback finish before closing the port.
_CLOSE_GRACE_S = 0.05

_rtmidi = None


def _rt():
    """The ``rtmidi`` module, imported on first use; a clear MidiError where it is missing."""
    global _rtmidi
    if _rtmidi is None:
        try:
            import rtmidi
        except ImportError as err:                      # missing, or its shared library is
            raise MidiError("MIDI ports need the 'python-rtmidi' package "
                            f"(pip install python-rtmidi): {err}") from None
        _rtmidi = rtmidi
    return _rtmidi


def _api_const(name: str) -> int:
    return getattr(_rt(), APIS[name])


def compiled_apis() -> list[str]:
    """The API names (keys of :data:`APIS`) compiled into python-rtmidi, in rtmidi's order."""
    rt = _rt()
    by_const = {getattr(rt, c): n for n, c in APIS.items() if hasattr(rt, c)}
    return [by_const[a] for a in rt.get_compiled_api() if a in by_const]


def _check_api(api) -> list[str]:
    """The APIs to try: ``[api]`` or every compiled one."""
    if api is not None and api not in APIS:
        raise ParameterError(f"api={api!r} must be one of {', '.join(APIS)}")
    compiled = compiled_apis()
    if api is None:
        if not compiled:
            raise MidiError("python-rtmidi was built without any MIDI API")
        return compiled
    if api not in compiled:
        raise MidiError(f"MIDI API {api!r} is not compiled into python-rtmidi here (compiled: "
                        f"{', '.join(compiled) or 'none'})")
    return [api]


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence what ALSA and libjack print on fd 2 while probing ("ALSA lib seq_hw.c ...",
    "Cannot connect to server socket ..."): rtstyle says it once, in one line. Kept at ``-v``."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _why(api: str, err: BaseException) -> str:
    """One line on why ``api`` cannot start, from rtmidi's error."""
    msg = " ".join(str(err).split())
    low = msg.lower()
    if api == "alsa" and "sequencer" in low:
        return ("no ALSA sequencer (/dev/snd/seq is missing: load the snd-seq module, or use "
                "another API)")
    if api == "jack" and ("server" in low or "jack" in low):
        server = os.environ.get("JACK_DEFAULT_SERVER")
        which = f"server {server!r} ($JACK_DEFAULT_SERVER)" if server else "the default server"
        return f"no JACK server running ({which})"
    return msg or type(err).__name__


def _new_midiin(api: str, *, client_name: str = CLIENT_NAME, queue_size: int = 1024):
    """``rtmidi.MidiIn`` on ``api``, or MidiError with :func:`_why`'s line."""
    rt = _rt()
    try:
        with _quiet_native_stderr():
            return rt.MidiIn(_api_const(api), name=client_name, queue_size_limit=queue_size)
    except Exception as err:                            # rtmidi.SystemError, DriverError, ...
        raise MidiError(f"{api}: {_why(api, err)}") from None


def _ports(midiin) -> list[str]:
    with _quiet_native_stderr():
        return list(midiin.get_ports())


def probe_apis(api: str | None = None, *, require: bool = False) -> list[dict]:
    """Which MIDI APIs work here, and their input ports.

    Parameters
    ----------
    api : {'alsa', 'jack', 'coremidi', 'winmm'} or None
        One API; ``None``: every compiled API, in rtmidi's order.
    require : bool
        Raise :class:`MidiError` (naming each API and why) when none works.

    Returns
    -------
    apis : list of dict
        ``{"api": name, "available": bool, "error": str or None, "ports": [port names]}``.
    """
    out = []
    for name in _check_api(api):
        try:
            m = _new_midiin(name, client_name=CLIENT_NAME + "-list")
        except MidiError as err:
            out.append({"api": name, "available": False,
                        "error": str(err).split(": ", 1)[-1], "ports": []})
            continue
        try:
            ports = _ports(m)
        finally:
            with _quiet_native_stderr():
                m.delete()
        out.append({"api": name, "available": True, "error": None, "ports": ports})
    if require and not any(a["available"] for a in out):
        raise MidiError("no MIDI API works here: "
                        + "; ".join(f"{a['api']}: {a['error']}" for a in out))
    return out


def list_ports(api: str | None = None) -> list[dict]:
    """The MIDI input ports of ``api`` (or of every compiled API that works).

    Returns
    -------
    ports : list of dict
        ``{"api": name, "index": i, "name": port name}``; ``index`` is what ``--midi`` takes
        (with ``--midi-api`` when several APIs list ports).

    Raises
    ------
    MidiError
        python-rtmidi is missing, ``api`` is not compiled in, or no API works (the message
        names each API and why: no ALSA sequencer, no JACK server).
    """
    probed = probe_apis(api, require=True)
    return [{"api": a["api"], "index": i, "name": n}
            for a in probed for i, n in enumerate(a["ports"])]


# ---------------------------------------------------------------------------------- ports
def _listing(api: str, names) -> str:
    return f"{api}: " + (", ".join(f"[{i}] {n}" for i, n in enumerate(names)) or "no ports")


def _match(port, names: list[str], api: str):
    """Index of ``port`` in ``names``, ``None`` if nothing matches; MidiError if ambiguous."""
    if isinstance(port, numbers.Integral):
        return int(port) if 0 <= port < len(names) else None
    if port in names:                                   # exact name
        return names.index(port)
    if port.strip().isdigit():                          # an index given as text
        i = int(port)
        return i if i < len(names) else None
    low = port.lower()
    exact = [i for i, n in enumerate(names) if n.lower() == low]
    if len(exact) == 1:
        return exact[0]
    hits = [i for i, n in enumerate(names) if low in n.lower()]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise MidiError(f"MIDI port {port!r} matches {len(hits)} {api} input ports: "
                        + ", ".join(f"[{i}] {names[i]}" for i in hits)
                        + "; give more of the name, or the index")
    return None


def _check_port(port):
    if port is None or isinstance(port, str) and port.strip():
        return port
    if isinstance(port, numbers.Integral) and not isinstance(port, bool):
        if port < 0:
            raise ParameterError(f"port={port}: a MIDI port index is 0 or more")
        return int(port)
    raise ParameterError(f"port={port!r} must be a port name, a part of one, or an index")


def open_input(port=None, *, api: str | None = None, virtual: str | None = None,
               channel: int | None = None, queue_size: int = 1024,
               max_message_bytes: int = 512, ignore_sysex: bool = True,
               client_name: str = CLIENT_NAME) -> "MidiInput":
    """Open a MIDI input port (or create a virtual one) and start queueing its messages.

    Parameters
    ----------
    port : str or int, optional
        An exact port name, a part of one (case-insensitive; it must match one port), or an
        index (an int or a string of digits) as :func:`list_ports` shows. ``None`` (and no
        ``virtual``): the first port of the first API that lists one.
    api : {'alsa', 'jack', 'coremidi', 'winmm'}, optional
        Without it each compiled API is tried in turn: one that cannot start or lacks the
        port is skipped. An index then counts in the first API that lists ports.
    virtual : str, optional
        Create a virtual input port of this name instead (not with WinMM); other programs
        connect to it (with JACK: ``rtstyle-midi:NAME``).
    channel : int in 1..16, optional
        Keep only this channel's messages (and system messages); default omni.
    queue_size : int > 0
        Messages held between two :meth:`MidiInput.drain` calls; beyond it the oldest are
        dropped (counted in :attr:`MidiInput.overflow`).
    max_message_bytes : int > 0
        Longer messages (a sysex that got through) are dropped on arrival (counted in
        :attr:`MidiInput.oversized`).
    ignore_sysex : bool
        Let rtmidi drop sysex before Python sees it (default). Clock and active sensing are
        always dropped there.
    client_name : str
        The MIDI client's name (JACK client, ALSA sequencer client).

    Returns
    -------
    MidiInput
        Open and queueing; close it (or use it as a context manager).

    Raises
    ------
    MidiError
        python-rtmidi is missing; no API works (each API's reason in the message); no port
        matches (the ports are listed); a part of a name matches several ports (they are
        listed); the port cannot be opened.
    ParameterError
        A bad ``api``, ``channel``, ``port``, ``queue_size`` or ``max_message_bytes``.
    """
    port = _check_port(port)
    if virtual is not None and (not isinstance(virtual, str) or not virtual.strip()):
        raise ParameterError(f"virtual={virtual!r} must be a non-empty port name")
    if virtual is not None and port is not None:
        raise ParameterError("give a port to open or a virtual port to create, not both")
    if channel is not None and (isinstance(channel, bool)
                                or not isinstance(channel, numbers.Integral)
                                or not 1 <= channel <= 16):
        raise ParameterError(f"channel={channel!r} must be 1..16 (None: omni)")
    for value, name in ((queue_size, "queue_size"), (max_message_bytes, "max_message_bytes")):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ParameterError(f"{name}={value!r} must be a positive integer")
    apis = _check_api(api)
    if virtual is not None and api is None and "winmm" in apis and len(apis) > 1:
        apis = [a for a in apis if a != "winmm"]       # WinMM has no virtual ports
    is_index = isinstance(port, int) or (isinstance(port, str) and port.strip().isdigit())
    tried, listings = [], []
    for name in apis:
        try:
            m = _new_midiin(name, client_name=client_name, queue_size=queue_size)
        except MidiError as err:
            tried.append(str(err))
            continue
        opts = dict(channel=channel, queue_size=queue_size, max_message_bytes=max_message_bytes,
                    ignore_sysex=ignore_sysex, client_name=client_name)
        try:
            if virtual is not None:
                return MidiInput(m, name, None, virtual=virtual, **opts)
            names = _ports(m)
            if port is None:
                index = 0 if names else None
            else:
                index = _match(port, names, name)
            if index is not None:
                return MidiInput(m, name, index, port_name=names[index], **opts)
        except BaseException:
            with _quiet_native_stderr():
                m.delete()
            raise
        listings.append(_listing(name, names))
        with _quiet_native_stderr():
            m.delete()
        if is_index and names:
            break                                       # an index counts in the first API
    if not listings:
        raise MidiError("no MIDI API works here: " + "; ".join(tried))
    where = "; ".join(listings + tried)
    if port is None:
        raise MidiError(f"no MIDI input ports ({where}); connect a controller, or create a "
                        "port with --midi-virtual NAME")
    raise MidiError(f"no MIDI input port matches {port!r} ({where})")


# ---------------------------------------------------------------------------------- input
class MidiInput:
    """An open MIDI input: a bounded queue filled by rtmidi's callback, drained by the worker.

    Made by :func:`open_input`. Attributes: ``api`` (``'jack'``...), ``port_name`` (the source
    port, or the virtual port's name: with JACK others see ``client_name:port_name``, unless
    JACK renamed a second client of the same name), ``virtual`` (bool), ``channel`` (1..16 or None),
    ``queue_size``, and the counters ``received``, ``overflow`` (dropped: queue full, oldest
    first) and ``oversized`` (dropped: longer than ``max_message_bytes``). The callback writes
    the counters; reading them from another thread is fine (ints, the GIL).

    ``clock``: ``None``, or an object whose int attribute ``written`` is the audio input
    position (samples taken so far; live's input ring, :class:`rtstyle.live.SpscRing`). Each
    message is stamped on arrival with ``clock.written`` (``None`` without a clock):
    ``drain(stamped=True)``, ``events(controller, stamped=True)``.

    Threads: the rtmidi callback is the single producer; one consumer thread calls
    :meth:`drain` / :meth:`events`. :meth:`close` from the consumer's side.
    """

    def __init__(self, midiin, api: str, index, *, port_name: str | None = None,
                 virtual: str | None = None, channel: int | None = None,
                 queue_size: int = 1024, max_message_bytes: int = 512,
                 ignore_sysex: bool = True, client_name: str = CLIENT_NAME):
        self.api = api
        self.client_name = client_name
        self.virtual = virtual is not None
        self.port_name = virtual if virtual is not None else port_name
        self.index = index
        self.channel = channel
        self.queue_size = int(queue_size)
        self.max_message_bytes = int(max_message_bytes)
        self.received = self.overflow = self.oversized = self.errors = 0
        self.clock = None                               # stamps: see the class docstring
        self._queue = collections.deque(maxlen=self.queue_size)
        self._midiin = None                             # set once open: the caller deletes
        try:
            with _quiet_native_stderr():
                midiin.ignore_types(sysex=bool(ignore_sysex), timing=True, active_sense=True)
                midiin.set_callback(self._callback)     # before the port opens: nothing queued
                if virtual is not None:                 # inside rtmidi meanwhile
                    midiin.open_virtual_port(virtual)
                else:
                    midiin.open_port(index, name="in")
        except Exception as err:                        # noqa: BLE001 - rtmidi's own errors
            what = f"create the virtual MIDI port {virtual!r}" if virtual is not None else \
                f"open the MIDI port {port_name!r}"
            raise MidiError(f"{api}: cannot {what}: {' '.join(str(err).split())}") from None
        self._midiin = midiin

    # ------------------------------------------------------------------ rtmidi's thread
    def _callback(self, event, _data=None):
        # Runs on rtmidi's thread (with JACK: inside the JACK process callback). Only an
        # append of the tuple python-rtmidi made with its stamp (the audio input position: an
        # int attribute read, no lock): no parsing, no logging.
        if len(event[0]) > self.max_message_bytes:
            self.oversized += 1
            return
        if len(self._queue) >= self.queue_size:
            self.overflow += 1                          # append drops the oldest
        clock = self.clock
        self._queue.append((event, None if clock is None else clock.written))
        self.received += 1

    # ------------------------------------------------------------------ the worker
    @property
    def pending(self) -> int:
        """Messages waiting in the queue."""
        return len(self._queue)

    @property
    def dropped(self) -> int:
        """``overflow + oversized``."""
        return self.overflow + self.oversized

    @property
    def closed(self) -> bool:
        return self._midiin is None

    def drain(self, *, timed: bool = False, stamped: bool = False) -> list:
        """Take every queued message (oldest first).

        Call it from one thread (the audio worker) and pass each message to
        :meth:`rtstyle.control.Controller.handle` (or use :meth:`events`).

        Parameters
        ----------
        timed : bool
            Also return rtmidi's delta time (seconds since the previous message it received).
        stamped : bool
            Also return each message's stamp: :attr:`clock`'s ``written`` when it arrived
            (``None`` if there was no clock then).

        Returns
        -------
        messages : list of list[int]
            Raw bytes, as rtmidi delivered them (one complete message, or several with running
            status). With ``timed``: a list of ``(message, delta_seconds)``; with ``stamped``:
            ``(message, stamp)``; with both: ``(message, delta_seconds, stamp)``. With a
            ``channel``, other channels' messages are left out.
        """
        q = self._queue
        if not q:
            return []
        out = []
        try:
            while True:
                (msg, dt), stamp = q.popleft()
                out.append((msg, (dt, stamp)))
        except IndexError:
            pass
        if self.channel is not None:
            out = _keep_channel(out, self.channel - 1)
        if timed and stamped:
            return [(msg, dt, stamp) for msg, (dt, stamp) in out]
        if timed or stamped:
            return [(msg, extra[1 if stamped else 0]) for msg, extra in out]
        return [msg for msg, _ in out]

    def events(self, controller, *, stamped: bool = False) -> list:
        """:meth:`drain`, each message through ``controller.handle``: the ``(name, value)``
        events to apply now (e.g. ``control.apply(streamer, events, strict=False)``); with
        ``stamped``, ``(stamp, name, value)``, the stamp of the message each came from.

        A message the controller refuses is skipped (counted in ``errors``): MIDI never stops
        the engine. Call it from the thread that owns ``controller`` (it is not thread-safe).
        """
        events = []
        for msg, stamp in self.drain(stamped=True):
            try:
                got = controller.handle(msg)
            except Exception:                           # noqa: BLE001 - never stop the engine
                self.errors += 1
                continue
            if stamped:
                events.extend((stamp, *e) for e in got)
            else:
                events.extend(got)
        return events

    def stats(self) -> dict:
        """``received``, ``overflow``, ``oversized``, ``errors``, ``pending`` (for reports)."""
        return {"received": self.received, "overflow": self.overflow,
                "oversized": self.oversized, "errors": self.errors, "pending": self.pending}

    def describe(self) -> str:
        kind = "virtual port" if self.virtual else "port"
        ch = "omni" if self.channel is None else f"channel {self.channel}"
        return f"MIDI {kind} {self.port_name!r} ({self.api}, {ch})"

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<MidiInput {self.api}:{self.port_name!r} {state}>"

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Stop the callback and close the port (idempotent)."""
        m, self._midiin = self._midiin, None
        if m is None:
            return
        try:
            m.cancel_callback()
        except Exception:                               # noqa: BLE001
            pass
        # A callback already waiting for the GIL on JACK's thread must finish before the
        # JACK client closes (close waits for the process cycle: see the module's notes).
        time.sleep(_CLOSE_GRACE_S)
        with _quiet_native_stderr():
            try:
                m.close_port()
            finally:
                m.delete()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:                               # noqa: BLE001
            pass


def _keep_channel(timed: list, ch: int) -> list:
    """``(message, extra)`` pairs with only channel ``ch`` (0-based) and system messages left.

    Channel messages of other channels are removed from inside a message too (running status
    resolved by :mod:`rtstyle.control`'s parser); a message left empty is dropped.
    """
    from ..control import _messages

    out = []
    for msg, dt in timed:
        kept = []
        for status, data in _messages(msg):
            if status >= 0xF0 or (status & 0x0F) == ch:
                kept.append(status)
                kept.extend(data)
        if kept:
            out.append((kept, dt))
    return out
