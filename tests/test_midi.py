"""MIDI ports (rtstyle.io.midi) through a real JACK server, and ``rtstyle midi-ports``.

The rig (DESIGN.md, "Test rig with no sound card"): a module fixture starts ``jackd -n NAME
--no-realtime -d dummy`` under a name of its own (``tests/jack_rig.JackServer``) and points this
process at it with ``JACK_DEFAULT_SERVER``. rtstyle's input opens with python-rtmidi's JACK API;
the other side is python-rtmidi's ``MidiOut`` (well-formed messages) or a ``JACK-Client`` MIDI
port that writes raw events, any bytes, as many per cycle as fit (running status, junk, 4-KB
sysex floods). Connections are made with ``jack`` (synchronous) or by rtmidi's ``open_port``;
every wait polls with a timeout of a few seconds. Skips where jackd, JACK-Client or
python-rtmidi is missing, fails instead under ``CI=true``.

Order matters (rtstyle/io/midi.py, "Threads and JACK"): a JACK-Client sender runs Python in its
process callback, so it is created after rtstyle's input is open and closed before that input
closes; the sources that ports are chosen among are rtmidi ``MidiOut`` ports (no Python on
JACK's thread), deleted only once their messages have arrived.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import time

import numpy as np
import pytest
from jack_rig import MidiOutClient

from rtstyle import cli
from rtstyle.control import Controller, cc_value
from rtstyle.errors import MidiError, ParameterError
from rtstyle.io import midi

TIMEOUT = 5.0


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


def wait_for(pred, timeout: float = TIMEOUT, what: str = "condition"):
    t_end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > t_end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


# ------------------------------------------------------------------------------ the rig
@pytest.fixture(scope="module")
def server():
    try:
        import rtmidi  # noqa: F401
    except ImportError as err:
        _unavailable(f"python-rtmidi is not installed ({err})")
    if shutil.which("jackd") is None:
        _unavailable("jackd is not installed (apt-get install jackd2)")
    from jack_rig import JackServer

    reason = JackServer.available()
    if reason:
        _unavailable(reason)
    srv = JackServer(f"rtmidi_test_{os.getpid()}", sr=22050, period=256)
    srv.start()
    old = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = srv.name
    try:
        yield srv
    finally:
        if old is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = old
        srv.stop()


class RawSender(MidiOutClient):
    """A JACK client with one MIDI output that writes queued raw events, in order, as many per
    cycle as the port buffer holds (so a flood takes as long as JACK needs, nothing is lost)."""

    def _setup(self):
        self.pending: collections.deque = collections.deque()
        self.sent = 0

    def _process(self, frames):
        self.port.clear_buffer()
        if not self.port.number_of_connections:      # not yet in this cycle's graph
            return
        while self.pending and len(self.pending[0]) <= self.port.max_event_size:
            self.port.write_midi_event(0, self.pending.popleft())
            self.sent += 1

    def send(self, *events) -> None:
        for ev in events:
            self.pending.append(bytes(ev))

    def flush(self, timeout: float = TIMEOUT) -> None:
        wait_for(lambda: not self.pending, timeout, "the sender to write its events")

    def connect(self, dest: str) -> None:
        self.client.connect(self.port, dest)
        assert self.port.is_connected_to(dest)


@pytest.fixture
def vport(server, request):
    """rtstyle's virtual input port (JACK), named after the test."""
    name = request.node.name.replace("[", "_").replace("]", "")[:24]
    with midi.open_input(virtual=name, api="jack") as mi:
        yield mi


@contextlib.contextmanager
def raw_sender(mi, name: str = "raw-sender"):
    """A :class:`RawSender` connected to ``mi``, made after it opened, closed before it closes."""
    s = RawSender(name)
    try:
        s.connect(_dest(mi))
        yield s
    finally:
        s.close()


@pytest.fixture
def sender(vport):
    with raw_sender(vport) as s:
        yield s


def _dest(mi) -> str:
    return f"{mi.client_name}:{mi.port_name}"


def wait_until(pred, timeout: float) -> bool:
    t_end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > t_end:
            return False
        time.sleep(0.005)
    return True


def deliver(send, mi, expected: list, *, tries: int = 3, wait: float = 1.5) -> list:
    """``send()``, then drain ``mi`` until the last messages are ``expected``; returns every
    message drained.

    On a busy machine the non-realtime server has xruns, and a cycle's events may be lost (so
    may those of the cycle in which a connection is made): after ``wait`` seconds without
    ``expected``, ``send()`` again, ``tries`` times at most. Callers check what else arrived.
    """
    got: list = []
    n = len(expected)
    for _ in range(tries):
        send()
        t_end = time.monotonic() + wait
        while time.monotonic() < t_end:
            assert mi.pending <= mi.queue_size
            got.extend(mi.drain())
            if got[-n:] == expected:
                return got
            time.sleep(0.005)
    raise AssertionError(f"{expected} did not arrive in {tries} tries of {wait} s; got {got}")


def only(got: list, expected: list) -> bool:
    """``got`` ends with ``expected`` and holds nothing else (repeats of lost tries allowed)."""
    return got[-len(expected):] == expected and all(m in expected for m in got)


# ------------------------------------------------------------------------------ through JACK
def test_rtmidi_out_to_virtual_port_gives_controller_events(server, vport):
    import rtmidi

    sent = [[0xC0, 2], [0xB0, 1, 64], [0xB0, 7, 64]]
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="test-out")
    try:
        out.open_port(out.get_ports().index(_dest(vport)))   # rtmidi connects it
        got = deliver(lambda: [out.send_message(m) for m in sent], vport, sent)
    finally:
        out.delete()                                          # after its messages arrived
    assert only(got, sent)
    events = [e for m in got[-3:] for e in Controller(n_styles=4).handle(m)]
    assert events == [("style", 2), ("morph", 64 / 127), ("gain_db", cc_value("gain_db", 64))]
    assert vport.received >= len(got) and vport.dropped == 0


def test_running_status_and_events_helper(vport, sender):
    # One event with running status (CC1=16, CC7=127, CC11=32), then a program change.
    sent = [[0xB0, 1, 16, 7, 127, 11, 32], [0xC0, 1]]
    assert only(deliver(lambda: sender.send(*sent), vport, sent), sent)
    for _ in range(3):                              # again, now for MidiInput.events
        sender.send(*sent)
        if wait_until(lambda: vport.pending >= 2, 1.5):
            break
    time.sleep(0.02)
    events = vport.events(Controller(n_styles=3))
    want = [("morph", 16 / 127), ("gain_db", 0.0), ("mix", 32 / 127), ("style", 1)]
    assert events and events == want * (len(events) // 4)


def test_channel_filter(server):
    with midi.open_input(virtual="ch2", api="jack", channel=2) as mi, raw_sender(mi) as sender:
        sent = [[0xB0, 7, 10], [0xB1, 7, 20], [0xC1, 3], [0xB0, 1, 5, 0xB1, 1, 6], [0xC2, 1],
                [0xB1, 11, 99]]
        kept = [[0xB1, 7, 20], [0xC1, 3], [0xB1, 1, 6], [0xB1, 11, 99]]
        assert only(deliver(lambda: sender.send(*sent), mi, kept), kept)


def test_junk_and_sysex_flood_leave_the_reader_alive(vport, sender):
    rng = np.random.default_rng(7)
    junk = [rng.integers(0, 256, size=int(rng.integers(1, 9))).tolist() for _ in range(300)]
    sysex = [0xF0, 0x7D] + [0x55] * 4093 + [0xF7]                   # 4096 bytes
    n_flood = 1000                                                   # 4 MB, ~2 s of JACK
    sender.send(*junk, *([sysex] * n_flood))
    msgs: list = []
    high = 0

    def written():
        nonlocal high
        high = max(high, vport.pending)
        msgs.extend(vport.drain())
        return not sender.pending

    wait_for(written, 30.0, "the flood to be written")
    final = [[0xB0, 7, 100], [0xC0, 1]]
    msgs += deliver(lambda: sender.send(*final), vport, final)
    assert sender.sent >= len(junk) + n_flood + 2
    assert high <= vport.queue_size
    events = [e for m in msgs for e in Controller(n_styles=2).handle(m)]  # junk: any or none
    assert events[-2:] == [("gain_db", cc_value("gain_db", 100)), ("style", 1)]
    # sysex is dropped inside rtmidi: none of the 4 MB reached Python. No message is longer
    # than the longest junk event (8 bytes), and the count stays near the junk's: how rtmidi
    # parses random bytes (a stray 0xF0 swallows what follows; retries of `final` add up to 6)
    # moves it by a few, the 1000 sysex messages would move it by hundreds.
    assert vport.oversized == 0 and all(len(m) <= 8 for m in msgs)
    assert len(msgs) <= vport.received <= len(junk) + 50


def test_sysex_that_reaches_python_is_dropped_and_queue_stays_bounded(server):
    with midi.open_input(virtual="sx", api="jack", ignore_sysex=False, queue_size=32,
                         max_message_bytes=256) as mi, raw_sender(mi) as sender:
        sysex = [0xF0, 0x7D] + [0x11] * 4093 + [0xF7]
        sender.send(*([sysex] * 300))
        sender.flush(20.0)
        wait_until(lambda: mi.oversized == 300, 2.0)
        # each one dropped on arrival, none queued; a cycle lost to an xrun holds 7 at most
        assert 300 - 8 * sender.xruns <= mi.oversized <= 300 and mi.pending == 0

        batch = [[0xB0, 1, v] for v in range(100)]                  # nobody drains: overflow
        base = mi.received
        for _ in range(3):
            sender.send(*batch)
            if wait_until(lambda: mi.received - base >= 100, 1.5):
                break
        n = mi.received - base
        assert n >= 100 and mi.pending == 32 and mi.overflow == n - 32
        assert mi.drain() == batch[-32:]                              # the newest are kept
        assert only(deliver(lambda: sender.send([0xB0, 7, 127]), mi, [[0xB0, 7, 127]]),
                    [[0xB0, 7, 127]])


def test_unterminated_sysex_ends_at_the_next_f7(vport, sender):
    # RtMidi's JACK reader takes the events after an unterminated 0xF0 as the rest of that
    # sysex until one ends with 0xF7 (module docstring); a complete sysex ends it.
    sent = [[0xF0, 1, 2], [0xB0, 7, 10], [0xF0, 0x7D, 0xF7], [0xB0, 7, 20]]
    got = deliver(lambda: sender.send(*sent), vport, [[0xB0, 7, 20]])
    assert all(m in sent for m in got)


# ------------------------------------------------------------------------------ choosing ports
@pytest.fixture
def sources(server):
    """Three JACK MIDI outputs made by rtmidi: 'src-alpha:knobs', 'src-beta:knobs',
    'src-gamma:pads' (rtmidi's JACK clients run no Python on JACK's thread)."""
    import rtmidi

    outs = {}
    for client, port in (("src-alpha", "knobs"), ("src-beta", "knobs"), ("src-gamma", "pads")):
        o = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client)
        o.open_virtual_port(port)
        outs[f"{client}:{port}"] = o
    yield outs
    for o in outs.values():
        o.delete()


def test_list_ports_and_open_by_name_part_or_index(sources):
    ports = midi.list_ports()                                 # ALSA tried first, then JACK
    jack_ports = [p for p in ports if p["api"] == "jack"]
    names = [p["name"] for p in jack_ports]
    assert set(sources) <= set(names)
    assert [p["index"] for p in jack_ports] == list(range(len(names)))

    with midi.open_input("beta:KNO") as mi:                  # a unique part, any case
        assert (mi.api, mi.port_name, mi.virtual) == ("jack", "src-beta:knobs", False)
        out, msg = sources["src-beta:knobs"], [[0xB0, 2, 127]]
        assert only(deliver(lambda: out.send_message(msg[0]), mi, msg), msg)

    i = names.index("src-gamma:pads")
    for port in (i, str(i), "src-gamma:pads", "PADS"):       # index, as text, exact, a part
        with midi.open_input(port, api="jack") as mi:
            assert mi.port_name == "src-gamma:pads" and mi.index == i
            out, msg = sources["src-gamma:pads"], [[0xC0, 5]]
            assert only(deliver(lambda: out.send_message(msg[0]), mi, msg), msg)


def test_port_errors_name_the_candidates(sources):
    with pytest.raises(MidiError, match=r"'knobs' matches 2 jack input ports: .*src-alpha:knobs"
                                        r".*src-beta:knobs.*give more of the name"):
        midi.open_input("knobs")
    with pytest.raises(MidiError, match=r"no MIDI input port matches 'nosuch' \(.*src-beta:knobs"):
        midi.open_input("nosuch")
    with pytest.raises(MidiError, match=r"no MIDI input port matches 999"):
        midi.open_input(999, api="jack")
    with pytest.raises(ParameterError, match="channel"):
        midi.open_input("src-beta", channel=17)


def test_no_jack_server_is_one_clear_line(server, monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "rtmidi_test_no_such_server")
    with pytest.raises(MidiError, match=r"jack: no JACK server running .*no_such_server"):
        midi.open_input(virtual="x", api="jack")
    with pytest.raises(MidiError, match=r"^no MIDI API works here: .*jack: no JACK server"):
        midi.list_ports()


# ------------------------------------------------------------------------------ the CLI
def test_cli_midi_ports(sources, capsys):
    assert cli.main(["midi-ports", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    jack_api = [a for a in data["apis"] if a["api"] == "jack"][0]
    assert jack_api["available"] and jack_api["error"] is None
    assert {"api": "jack", "index": jack_api["ports"].index("src-beta:knobs"),
            "name": "src-beta:knobs"} in data["ports"]
    assert cli.main(["midi-ports", "--midi-api", "jack"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("jack: ") and "  src-beta:knobs" in out


def test_cli_midi_ports_no_api_is_one_line(server, monkeypatch, capsys):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "rtmidi_test_no_such_server")
    assert cli.main(["midi-ports", "--midi-api", "jack"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtstyle: error: no MIDI API works here: jack: no JACK server")
    assert err.count("\n") == 1


# ------------------------------------------------------------------------------ no device
class _FakeMidiIn:
    def __init__(self):
        self.callback = None
        self.calls = []

    def ignore_types(self, **kw):
        self.calls.append(("ignore", kw))

    def set_callback(self, f):
        self.callback = f

    def open_port(self, i, name=None):
        self.calls.append(("open", i))

    def cancel_callback(self):
        self.callback = None

    def close_port(self):
        self.calls.append(("close",))

    def delete(self):
        self.calls.append(("delete",))


def test_callback_queue_is_bounded_without_a_device():
    fake = _FakeMidiIn()
    mi = midi.MidiInput(fake, "jack", 0, port_name="x", queue_size=4, max_message_bytes=8)
    assert fake.calls[0] == ("ignore", {"sysex": True, "timing": True, "active_sense": True})
    big = [0xF0] + [0] * 4094 + [0xF7]
    for _ in range(1000):
        fake.callback((big, 0.0), None)
    for v in range(10):
        fake.callback(([0xB0, 1, v], 0.001), None)
    assert (mi.oversized, mi.received, mi.overflow, mi.pending) == (1000, 10, 6, 4)
    assert mi.drain(timed=True) == [([0xB0, 1, v], 0.001) for v in range(6, 10)]
    mi.close()
    mi.close()
    assert fake.calls[-2:] == [("close",), ("delete",)] and mi.closed


def test_callback_stamps_each_message_with_the_clock():
    """With a ``clock`` (live: the input ring), each message carries the clock's ``written``
    at arrival, through the channel filter and the controller; without one, ``None``."""
    import types

    fake = _FakeMidiIn()
    mi = midi.MidiInput(fake, "jack", 0, port_name="x", channel=1)
    fake.callback(([0xB0, 7, 64], 0.001), None)                   # before a clock: None
    clock = types.SimpleNamespace(written=512)
    mi.clock = clock
    fake.callback(([0xB1, 7, 1, 0xB0, 1, 127], 0.002), None)     # channel 2 part filtered out
    clock.written = 768
    fake.callback(([0xC0, 1], 0.003), None)
    fake.callback(([0xB1, 7, 1], 0.004), None)                   # channel 2 only: left out
    assert mi.drain(stamped=True, timed=True) == [
        ([0xB0, 7, 64], 0.001, None), ([0xB0, 1, 127], 0.002, 512), ([0xC0, 1], 0.003, 768)]
    fake.callback(([0xB0, 11, 0], 0.0), None)
    assert mi.drain(stamped=True) == [([0xB0, 11, 0], 768)]
    fake.callback(([0xB0, 11, 127], 0.0), None)
    assert mi.events(Controller(n_styles=2), stamped=True) == [(768, "mix", 1.0)]
    fake.callback(([0xB0, 11, 127], 0.0), None)
    assert mi.events(Controller(n_styles=2)) == [("mix", 1.0)]   # unchanged without stamps


def test_events_never_raise():
    class Bad:
        def handle(self, msg):
            raise ValueError("boom")

    fake = _FakeMidiIn()
    mi = midi.MidiInput(fake, "jack", 0, port_name="x")
    fake.callback(([0xB0, 1, 2], 0.0), None)
    assert mi.events(Bad()) == [] and mi.errors == 1


def test_bad_arguments(monkeypatch):
    with pytest.raises(ParameterError, match="api="):
        midi.list_ports(api="oss")
    with pytest.raises(ParameterError, match="not both"):
        midi.open_input("a", virtual="b")
    with pytest.raises(ParameterError, match="queue_size"):
        midi.open_input(virtual="b", queue_size=0)
    with pytest.raises(ParameterError, match="port="):
        midi.open_input(-1)


def test_missing_rtmidi_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "rtmidi", None)
    monkeypatch.setattr(midi, "_rtmidi", None)
    with pytest.raises(MidiError, match="python-rtmidi"):
        midi.list_ports()
