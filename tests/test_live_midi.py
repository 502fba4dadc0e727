"""``rtstyle live`` under MIDI control (issue 7): program change, CC, learn, junk and floods.

Two halves:

- Without a sound card, a JACK server or python-rtmidi: ``rtstyle live`` run through
  :func:`rtstyle.cli.main` on a fake audio stream (a thread calling the callback in real time)
  and a real :class:`rtstyle.io.midi.MidiInput` over a fake rtmidi object that the stream feeds:
  ``--midi-learn``, the mapping printed at start, ``--save-midi-map``, the report's ``midi``
  object, a program change beyond the style list ignored with one warning; and the flags'
  one-line errors.
- Against a real JACK server (``jackd --no-realtime -d dummy``, tests/jack_rig.py): ``rtstyle
  live --midi rig-midi`` in a subprocess (so python-rtmidi's JACK client lives in a process of
  its own: rtstyle/io/midi.py, "Threads and JACK") with two tiny random styles at the server's
  rate, while this process plays a stationary tone through it, records its output and sends
  MIDI from a ``JACK-Client`` MIDI port at known frames: a program change, random junk and a
  flood of 4-KB sysex, then CC7. One run serves every check (a module fixture, retried once if
  the server had xruns or rtstyle a dropout, as tests/test_live.py does). Skipped where jackd,
  JACK-Client or python-rtmidi is missing; failed instead under ``CI=true``.

Timing in the JACK run: a MIDI event written at offset 0 of the cycle that starts at frame
``E`` (relative to the first played sample) reaches rtstyle in that cycle together with input
samples ``E .. E + period``. rtmidi's callback stamps it with the input ring's ``written`` at
that moment, and the worker applies it exactly when its processing reaches that stamp (it cuts
its chunk there), however far it lags behind the audio callback: at input position ``E`` or
``E + block``, never earlier. Output frame ``f`` of the recording carries input ``f - RT`` (RT:
the round trip measured by the rig), i.e. engine output sample ``f - D`` with ``D = RT - engine
latency`` in render ``--keep-latency`` terms. The bound (issue 7, Targets): the output has
become the new style by ``E + RT + block + crossfade``, and nothing changes before ``E + D``.

Which of ``E`` and ``E + block`` the stamp is depends on the order in which rtstyle's two JACK
clients (rtmidi's and PortAudio's) run in that cycle: ``written`` is ``E`` if rtmidi's runs
first, ``E + block`` if PortAudio's has already copied the cycle's input. On a loaded machine
either happens (measured on two busy cores: ``E + block`` in 2 of 13 runs). Before the stamps
the worker applied an event at its own read position when it drained the queue, so a worker
that fell behind and caught up several blocks at once applied it blocks *early*
(test_core_applies_stamped_midi_where_its_audio_is_however_late_the_worker_runs pins that
down without JACK). The report's ``midi.log`` holds the input position ``P`` the worker used,
so the checks locate the change from ``P`` and the output, and bound ``P`` to ``E .. E +
block``; none assumes ``P = E``. A gain change made at input position ``P`` is heard from
engine-output index ``P + L`` (the output stage acts on the input's timeline, one engine
latency ``L`` later) and glides for 20 ms.
"""

from __future__ import annotations

import collections
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import harmonic, model_card, noise
from jack_rig import LIVE_START_S, LIVE_STOP_S, RIG_SLACK_S, MidiOutClient, popen_ctrl_c

ROOT = Path(__file__).resolve().parents[1]
SR, PERIOD = 22050, 256
N_FFT, HOP = 256, 64
CROSSFADE_MS = 50.0


# ----------------------------------------------------------------------------------------------
# helpers shared by both halves
# ----------------------------------------------------------------------------------------------


def save_styles(folder: Path) -> Path:
    """Two tiny random TransformNets at the live rate (``mA``, ``mB``): clearly different
    timbres of a harmonic tone, both well under the limiter's ceiling."""
    import torch

    from rtstyle.config import TransformConfig
    from rtstyle.models import save_model
    from rtstyle.nn.transform import TransformNet

    folder.mkdir(parents=True, exist_ok=True)
    for name, seed in (("mA", 1), ("mB", 2)):
        torch.manual_seed(seed)
        net = TransformNet(TransformConfig(bins=1 + N_FFT // 2, hidden=8, layers=2, n_styles=1,
                                           embed_dim=4))
        with torch.no_grad():
            for p in net.parameters():
                p.normal_(0.0, 0.12)
        save_model(net.eval(), model_card(name, sr=SR, stft={"n_fft": N_FFT, "hop_length": HOP}),
                   folder / name)
    return folder


def _ci_or_skip(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the JACK MIDI test rig is missing: {reason}")
    pytest.skip(reason)


# ----------------------------------------------------------------------------------------------
# without JACK: the live arguments, a fake stream, a fake rtmidi port
# ----------------------------------------------------------------------------------------------


class _FakeMidiIn:
    """Stands in for ``rtmidi.MidiIn``: keeps the callback MidiInput installs."""

    def __init__(self):
        self.callback = None

    def ignore_types(self, **kw):
        pass

    def set_callback(self, f):
        self.callback = f

    def open_virtual_port(self, name):
        pass

    def cancel_callback(self):
        self.callback = None

    def close_port(self):
        pass

    def delete(self):
        pass


class _FakeAudio:
    """Stands in for ``rtstyle.io.audio``: a duplex stream run by a thread in real time; at
    the blocks of ``script`` it sends the MIDI messages there through the fake port."""

    def __init__(self, script):
        import types

        self.script = script
        self.choice = types.SimpleNamespace(input=0, output=0, sr=SR, input_channels=1,
                                            output_channels=1, input_name="fake in",
                                            output_name="fake out", hostapi="fake")
        self.port = None
        self.midi_opened_before_start = None

    def preflight(self, **kw):
        return self.choice

    def DuplexStream(self, choice, *, block_size, latency, callback):     # noqa: N802
        fake = self

        class Stream:
            latency = (0, 0)
            cpu_load = 0.0
            abandoned = False

            def __init__(self):
                self.active = False
                self._thread = None

            def start(self):
                fake.midi_opened_before_start = fake.port is not None
                self.active = True
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()

            def _run(self):
                x = (0.1 * harmonic(SR, f0=200, duration=30.0)).reshape(1, -1)
                out = np.zeros((1, block_size), np.float32)
                k, t0 = 0, time.monotonic()
                while self.active:
                    for msg in fake.script.get(k, ()):
                        fake.port.callback((msg, 0.0), None)
                    i = (k * block_size) % (x.shape[1] - block_size)
                    callback(x[:, i:i + block_size], out, block_size, 0)
                    k += 1
                    time.sleep(max(0.0, t0 + k * block_size / SR - time.monotonic()))

            def close(self, timeout=3.0):
                self.active = False
                if self._thread is not None:
                    self._thread.join(timeout)
                return True

            def abandon(self):
                self.active = False

        return Stream()


def test_live_midi_learn_map_and_report_without_a_device(tmp_path, monkeypatch, capsys):
    """``--midi-virtual`` + ``--midi-learn morph`` + ``--save-midi-map`` through the CLI: the
    next moved CC (21) binds to morph and drives it, a program change switches the style, one
    beyond the list is ignored with one warning line; the saved mapping and the report hold
    what happened."""
    import rtstyle.io
    from rtstyle import cli, control
    from rtstyle.io import midi

    models = save_styles(tmp_path / "models")
    script = {8: [[0xB0, 21, 100]],                    # learn: CC21 -> morph, morph = 100/127
              14: [[0xB0, 1, 127]],                    # CC1 no longer drives morph
              20: [[0xC0, 1], [0xC0, 5], [0xC0, 5]],   # style 1; program 5: one warning
              26: [[0x90, 60, 100], [0xF0, 1, 2, 0xF7], [0xB0, 7]]}   # ignored
    fake = _FakeAudio(script)
    opened = {}

    def open_input(port=None, *, api=None, virtual=None, channel=None, **kw):
        opened.update(port=port, api=api, virtual=virtual, channel=channel)
        fake.port = _FakeMidiIn()
        return midi.MidiInput(fake.port, api or "jack", None, virtual=virtual, channel=channel)

    monkeypatch.setattr(midi, "open_input", open_input)
    monkeypatch.setitem(sys.modules, "rtstyle.io.audio", fake)
    monkeypatch.setattr(rtstyle.io, "audio", fake, raising=False)
    files = {k: tmp_path / f"{k}.{ext}" for k, ext in
             (("map", "toml"), ("report", "json"), ("preset", "toml"))}
    rc = cli.main(["live", "--style", "mA,mB", "--models-dir", str(models), "--no-keys",
                   "--duration", "0.8", "--midi-virtual", "ctl", "--midi-api", "jack",
                   "--midi-channel", "1", "--midi-learn", "morph",
                   "--save-midi-map", str(files["map"]), "--report", str(files["report"]),
                   "--save-preset", str(files["preset"])])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert opened == {"port": None, "api": "jack", "virtual": "ctl", "channel": 1}
    assert fake.midi_opened_before_start is True           # MIDI opens before the stream starts
    # printed at start: the port and the active mapping; then what learn bound; one warning
    assert "MIDI virtual port 'ctl' (jack, channel 1)" in err
    assert "CC1 -> morph" in err and "CC7 -> gain_db" in err and "styles: 2" in err
    assert "MIDI learn: move a control to bind it to morph" in err
    assert "MIDI learn: CC21 -> morph" in err
    assert err.count("program change 5 ignored") == 1
    assert "learned CC21 -> morph" in out
    # the mapping saved at exit, learned binding included (CC1 unbound from morph)
    saved = control.Mapping.load(files["map"])
    assert saved.cc == {2: "strength", 7: "gain_db", 11: "mix", 21: "morph", 64: "bypass"}
    assert saved.channel == 1 and saved.program == "style"
    report = json.loads(files["report"].read_text())
    m = report["midi"]
    assert m["received"] == 8 and m["overflow"] == m["oversized"] == m["errors"] == 0
    assert m["learned"] == [[21, "morph"]] and m["events"] == 2
    assert [e[1:] for e in m["log"]] == [["morph", 100 / 127], ["style", 1]]
    assert 0 < m["log"][0][0] < m["log"][1][0] <= report["blocks"] * PERIOD
    assert m["mapping"]["cc"]["21"] == "morph" and "1" not in m["mapping"]["cc"]
    assert report["settings"]["morph"] == pytest.approx(100 / 127)
    assert report["settings"]["active"] == 1 and report["settings"]["midi_virtual"] == "ctl"
    # the preset carries the MIDI settings (not the one-shot learn)
    from rtstyle.live import load_preset

    preset = load_preset(files["preset"])
    assert preset["midi_virtual"] == "ctl" and preset["midi_channel"] == 1
    assert preset["midi_api"] == "jack" and "midi" not in preset


@pytest.mark.parametrize("args, needle", [
    (["--midi-learn", "morph"], "--midi-learn needs a MIDI port"),
    (["--save-midi-map", "{tmp}/m.toml"], "--save-midi-map needs a MIDI port"),
    (["--midi", "x", "--midi-virtual", "y"], "give one of them"),
    (["--midi-virtual", "y", "--midi-channel", "17"], "midi_channel=17 must be 1..16"),
    (["--midi-virtual", "y", "--midi-map", "{tmp}/missing.toml"], "cannot read the MIDI mapping"),
    (["--midi-virtual", "y", "--midi-map", "{tmp}/bad.toml"], "cc.7 = 'volume'"),
    (["--midi-virtual", "y", "--report", "{tmp}/r.json", "--save-midi-map", "{tmp}/r.json"],
     "must be different files"),
])
def test_live_midi_flags_are_one_line_errors(tmp_path, capsys, args, needle):
    from rtstyle import cli

    (tmp_path / "bad.toml").write_text('[cc]\n7 = "volume"\n')
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert cli.main(["live", "--style", "identity", "-q", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtstyle: error:"), lines
    assert needle in lines[0], lines


def test_core_applies_midi_at_the_hop_boundary_and_survives_a_bad_source():
    """LiveCore drains MIDI before it applies queued controls; a source that raises or an
    event the engine refuses never stops the worker."""
    from rtstyle.control import Controller
    from rtstyle.live import LiveCore

    class Engine:
        sr, latency = SR, 0

        def __init__(self):
            self.applied = []
            self.current = {"gain_db": 0.0}

        def prefill(self, block):
            return block

        def feed(self, x):
            return x

        def flush(self):
            return np.zeros((1, 0), np.float32)

        def reset(self):
            pass

        def set(self, name, value):
            from rtstyle.errors import ParameterError

            if name == "style" and value == 1:
                raise ParameterError("refused")
            self.applied.append((name, value))
            self.current[name] = value

    class Source:
        def __init__(self):
            self.batches = collections.deque([[[0xB0, 7, 64]], "boom", [[0xC0, 1], [0xB0, 11, 0]]])

        def events(self, controller):
            if not self.batches:
                return []
            b = self.batches.popleft()
            if b == "boom":
                raise RuntimeError("a broken source")
            return [e for msg in b for e in controller.handle(msg)]

    eng = Engine()
    core = LiveCore(eng, block_size=PERIOD)
    core.attach_midi(Source(), Controller(n_styles=2))
    core.start()
    t_end = time.monotonic() + 5
    while len(eng.applied) < 2 and time.monotonic() < t_end:
        time.sleep(0.01)
    core.stop()
    assert core.worker_error is None
    assert eng.applied == [("gain_db", 40 * math.log10(64 / 127)), ("mix", 0.0)]
    assert core.midi_errors == 1 and core.midi_events == 3
    assert core.fallback_gain == pytest.approx(10 ** (40 * math.log10(64 / 127) / 20))


def test_core_applies_stamped_midi_where_its_audio_is_however_late_the_worker_runs():
    """A worker 3 blocks behind applies each MIDI event at the input position it arrived at
    (the input ring's ``written`` when rtmidi's callback ran), not at its own read position.

    No thread timing is involved: a fake clock calls the audio callback for blocks 0, 1 and 2
    with no worker running; CC7 = 64 arrives through a real :class:`MidiInput` (over a fake
    rtmidi port) between blocks 1 and 2 (stamp ``P = 2 block``), a program change before block
    0 (stamp 0). Only then does the worker start and find the 3 blocks and both events. The
    engine applies the output gain to what it is fed, so the wet recording shows where the
    gain changed: exactly at ``P`` (before the stamps, the worker applied both at 0, two
    blocks early), and ``midi.log`` says ``P``."""
    from rtstyle.control import Controller
    from rtstyle.io import midi
    from rtstyle.live import LiveCore

    block = PERIOD

    class GainEngine:
        """Latency 0, output = input × the gain set (so the output shows where it changed)."""

        sr, latency = SR, 0

        def __init__(self):
            self.current = {"gain_db": 0.0, "style": 0}
            self.fed = 0
            self.applied = []                  # (input position, name, value)

        def prefill(self, block):
            return block

        def feed(self, x):
            self.fed += x.shape[1]
            return x * np.float32(10 ** (self.current["gain_db"] / 20))

        def flush(self):
            return np.zeros((1, 0), np.float32)

        def reset(self):
            pass

        def set(self, name, value):
            self.applied.append((self.fed, name, value))
            self.current[name] = value

    class Recorder:
        def __init__(self):
            self.parts = []

        def write(self, y):
            self.parts.append(np.array(y))

    eng, wet = GainEngine(), Recorder()
    # margin: 3 blocks of backlog stay below max_backlog (no restart)
    core = LiveCore(eng, block_size=block, margin=4 * block, recorders=(wet, None))
    port = _FakeMidiIn()
    mi = midi.MidiInput(port, "jack", None, virtual="ctl")
    core.attach_midi(mi, Controller(n_styles=2))
    x = (0.5 * harmonic(SR, f0=200, duration=3 * block / SR)).astype(np.float32)[:3 * block]
    out = np.zeros((1, block), np.float32)
    port.callback(([0xC0, 1], 0.0), None)                      # stamp 0
    for k in range(3):
        if k == 2:
            port.callback(([0xB0, 7, 64], 0.0), None)          # stamp P = 2 blocks
        core.callback(x[None, k * block:(k + 1) * block], out, block, 0)
    assert core.in_ring.read_pos == 0 and core.in_ring.written == 3 * block   # 3 behind
    P, g_db = 2 * block, 40 * math.log10(64 / 127)
    core.start()
    t_end = time.monotonic() + 10
    while core.fed < 3 * block and time.monotonic() < t_end:
        time.sleep(0.005)
    core.stop()
    assert core.worker_error is None and core.resets == 0 and core.fed == 3 * block
    assert eng.applied == [(0, "style", 1), (P, "gain_db", pytest.approx(g_db))]
    assert core.midi_log == [(0, "style", 1), (P, "gain_db", pytest.approx(g_db))]
    y = np.concatenate(wet.parts, axis=1)[0]
    assert y.size == 3 * block
    np.testing.assert_array_equal(y[:P], x[:P])                # before P: the old gain
    np.testing.assert_allclose(y[P:], x[P:] * 10 ** (g_db / 20), rtol=1e-6)
    # the fallback (dry) gain follows too
    assert core.fallback_gain == pytest.approx(10 ** (g_db / 20))


# ----------------------------------------------------------------------------------------------
# through a real JACK server
# ----------------------------------------------------------------------------------------------


class MidiSender(MidiOutClient):
    """A JACK client with one MIDI output. ``at(frame, msg)`` writes ``msg`` at offset 0 of the
    cycle that holds JACK frame ``frame`` (or the next one) and records that cycle's first
    frame; ``flood(frame, msgs)`` writes ``msgs`` from then on, as many per cycle as the port
    buffer holds."""

    def _setup(self):
        self.scheduled: collections.deque = collections.deque()
        self.sent: list[tuple[int, list]] = []
        self.flood_at = None
        self.flooding: collections.deque = collections.deque()
        self.flood_done = None

    def _write(self, msg) -> bool:
        buf = self.port.reserve_midi_event(0, len(msg))
        if len(buf) < len(msg):
            return False
        buf[:] = bytes(msg)
        return True

    def _process(self, frames):
        self.port.clear_buffer()
        t = self.client.last_frame_time
        while self.scheduled and self.scheduled[0][0] < t + frames:
            if not self._write(self.scheduled[0][1]):
                break
            self.sent.append((t, self.scheduled.popleft()[1]))
        if self.flood_at is not None and t + frames > self.flood_at:
            while self.flooding and self._write(self.flooding[0]):
                self.flooding.popleft()
            if not self.flooding and self.flood_done is None:
                self.flood_done = t

    def at(self, frame: int, msg) -> None:
        self.scheduled.append((frame, list(msg)))

    def flood(self, frame: int, msgs) -> None:
        self.flooding.extend(bytes(m) for m in msgs)
        self.flood_at = frame

    def close(self) -> None:
        try:
            super().close()
        except Exception:                       # noqa: BLE001 - the server may be gone already
            pass


def _floor_rig(server: str):
    """The rig of tests/jack_rig.py, its player adding a -60 dBFS noise floor at every frame
    (as a microphone has), so that the exact comparisons do not hinge on digital silence: with
    ``--envelope free`` the random test nets sound on silence, and phase reconstruction from
    a zero input phase is chaotic (float32 rounding differences between live's chunking and
    render's grew to audible size within ~0.4 s before the envelope follower was default)."""
    from jack_rig import Rig

    floor = (1e-3 * np.random.default_rng(5).standard_normal(1 << 16)).astype(np.float32)

    class FloorRig(Rig):
        def _play(self, frames):
            super()._play(frames)
            a = self.out.get_array()
            i = self.player.last_frame_time % floor.size
            k = min(frames, floor.size - i)
            a[:k] += floor[i:i + k]
            if k < frames:
                a[k:] += floor[:frames - k]

    return FloorRig(server)


def junk_messages(n: int, seed: int = 7) -> list[list[int]]:
    """Random byte strings (1..8 bytes) that the default mapping turns into no event (so the
    sound must not change), with every kind of status byte in them."""
    from rtstyle.control import Controller

    rng = np.random.default_rng(seed)
    ctl = Controller(n_styles=2)
    out = []
    while len(out) < n:
        msg = rng.integers(0, 256, size=int(rng.integers(1, 9))).tolist()
        if not ctl.handle(msg):
            out.append(msg)
    return out


# the performance, in seconds from the first played sample
T_END, T_PROGRAM, T_FLOOD, T_GAIN = 4.0, 1.2, 1.8, 2.9
N_SYSEX = 200                                  # 4-KB sysex each: 800 KB


def _clip() -> np.ndarray:
    return (harmonic(SR, f0=180.0, duration=T_END, amp=0.2)
            + noise(SR, duration=T_END, amp=0.01, seed=3)).astype(np.float32)


@pytest.fixture(scope="module")
def jack_midi_run(tmp_path_factory):
    """One ``rtstyle live --midi rig-midi`` run through a JACK dummy server (retried once if
    it was not clean); returns what the checks need."""
    sys.path.insert(0, str(Path(__file__).parent))
    from jack_rig import JackServer

    reason = JackServer.available()
    if reason:
        _ci_or_skip(reason)
    try:
        import rtmidi  # noqa: F401
    except ImportError as err:
        _ci_or_skip(f"python-rtmidi is not installed ({err})")
    if shutil.which("jackd") is None:
        _ci_or_skip("jackd is not installed")
    base = tmp_path_factory.mktemp("live_midi")
    models = save_styles(base / "models")
    clip = _clip()
    sysex = [0xF0, 0x7D] + [0x55] * 4093 + [0xF7]
    flood = junk_messages(300) + [sysex] * N_SYSEX
    server = JackServer(f"rtstyle-midi-test-{os.getpid()}", sr=SR, period=PERIOD)
    server.start()
    try:
        for attempt in (1, 2):
            d = base / f"run{attempt}"
            d.mkdir()
            files = {k: d / f"{k}{ext}" for k, ext in
                     (("wet", ".wav"), ("dry", ".wav"), ("report", ".json"))}
            sender = MidiSender("rig-midi", server.name)      # before live: --midi finds it
            proc = rig = None
            try:
                proc = popen_ctrl_c(     # stopped by SIGINT below (jack_rig)
                    [sys.executable, "-m", "rtstyle", "live", "--style", "mA,mB", "--models-dir",
                     str(models), "--no-keys", "--block-size", str(PERIOD),
                     "--crossfade", str(CROSSFADE_MS), "--midi", "rig-midi",
                     "--record", str(files["wet"]), "--record-dry", str(files["dry"]),
                     "--record-subtype", "FLOAT", "--report", str(files["report"])],
                    env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                    cwd=ROOT)
                rig = _floor_rig(server.name)
                try:
                    rig.wait_for_ports(timeout=LIVE_START_S)
                except TimeoutError:
                    proc.kill()
                    raise AssertionError("rtstyle live did not open its ports: "
                                         + proc.communicate()[1][-2000:]) from None
                assert sender.port.number_of_connections == 1     # opened before the stream
                rig.connect()
                time.sleep(0.3)
                x0, s0 = rig.xruns, sender.xruns
                rig.play(clip, clip.size + SR)
                f0 = rig._f0
                sender.at(f0 + int(T_PROGRAM * SR), [0xC0, 1])
                sender.flood(f0 + int(T_FLOOD * SR), flood)
                sender.at(f0 + int(T_GAIN * SR), [0xB0, 7, 64])
                rig.wait(T_END + 1 + RIG_SLACK_S)      # the clip and its 1-s tail
                rig_xruns = rig.xruns - x0 + sender.xruns - s0
                recording = rig.recording.copy()
                sent = [(t - f0, m) for t, m in sender.sent]
                flood_done = None if sender.flood_done is None else sender.flood_done - f0
                left = len(sender.flooding)
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=LIVE_STOP_S)
            finally:
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.communicate()
                if rig is not None:
                    rig.close()
                sender.close()
            assert proc.returncode == 0, err[-3000:]
            report = json.loads(files["report"].read_text())
            # clean: no xrun or dropout counted, and the rig heard exactly what the engine made
            # (what every timing check below reads off the recording)
            heard = _heard_deviation(recording, files["wet"])
            clean = (report["xruns"] == 0 and report["dropouts"] == 0 and rig_xruns == 0
                     and heard <= HEARD_ATOL)
            if clean:
                break
            print(f"\nJACK MIDI run {attempt} not clean: xruns {report['xruns']}, dropouts "
                  f"{report['dropouts']}, rig xruns {rig_xruns}, recording vs --record "
                  f"{heard:.2e}")
    finally:
        server.stop()
    return {"clip": clip, "recording": recording, "report": report, "sent": sent,
            "flood_done": flood_done, "flood_left": left, "rig_xruns": rig_xruns,
            "heard": heard, "clean": clean, "files": files, "models": models, "err": err,
            "out": out, "attempts": attempt}


@pytest.fixture(scope="module")
def analysis(jack_midi_run):
    """References (render of each style) and the rig's alignment."""
    import rtstyle
    from jack_rig import lag_of

    import soundfile as sf

    r = jack_midi_run
    clip, rec, report = r["clip"], r["recording"], r["report"]
    dry, _ = sf.read(r["files"]["dry"], dtype="float32")
    d0 = lag_of(dry, clip, dry.size - clip.size)       # where the clip starts in what it took
    said = (f"clean {r['clean']}: xruns {report['xruns']}, dropouts {report['dropouts']}, "
            f"input dropped {report['input_dropped_samples']}, resets {report['resets']}, "
            f"rig xruns {r['rig_xruns']}, recording vs --record {r['heard']:.1e}")
    if r["clean"]:
        # what rtstyle took in is what the rig played (within the rig's noise floor)
        assert np.abs(dry[d0:d0 + clip.size] - clip).max() < 0.01, said
    else:
        # after two runs with xruns a period or two of the input may be lost: the rig's noise
        # is 1 % of the clip's RMS (0.001 against 0.10, measured), a lost period 100 %
        assert _mostly(dry[d0:d0 + clip.size], clip, 0.05) >= 0.9, said
    # render --keep-latency of what rtstyle took in, with each style all along; index i of
    # ref[...] is engine output for clip sample i - L
    ref = {s: rtstyle.render(dry, sr=SR, style=s, keep_latency=True,
                             models_dir=r["models"])[0][d0:] for s in ("mA", "mB")}
    L = report["engine_latency_samples"]
    E = {("style" if m[0] == 0xC0 else "gain"): t for t, m in r["sent"]}
    # D: recording frame D + i carries ref index i (measured on style A before the switch)
    D = lag_of(rec, ref["mA"][:E["style"] - 2 * PERIOD], 4 * SR)
    # P: the input position (clip samples) at which the worker applied each event (midi.log)
    P = {("style" if name == "style" else "gain"): pos - d0
         for pos, name, _ in report["midi"]["log"]}
    return {**r, "ref": ref, "L": L, "D": D, "RT": D + L, "E": E, "P": P, "d0": d0}


#: float32 through JACK and a FLOAT --record file: the recording is the engine's output bit for
#: bit, so any deviation is a sample lost or repeated on the way (measured: 0.0 in every run)
HEARD_ATOL = 1e-6


def _heard_deviation(recording: np.ndarray, wet_path) -> float:
    """The largest difference between what the rig recorded and what ``rtstyle live`` wrote
    to ``--record`` (its engine's output), aligned on a half second from the wet file's
    middle third; inf where they do not overlap."""
    import soundfile as sf
    from jack_rig import lag_of

    wet, _ = sf.read(wet_path, dtype="float32")
    a = wet.size // 3
    seg = wet[a:a + SR // 2]
    if seg.size < SR // 2 or recording.size <= seg.size:
        return math.inf
    off = lag_of(recording, seg, recording.size - seg.size) - a    # recording[off + j] ~ wet[j]
    j0, j1 = max(0, -off), min(wet.size, recording.size - off)
    return float(np.abs(recording[off + j0:off + j1] - wet[j0:j1]).max())


def _spectra(x, n=N_FFT, hop=HOP) -> np.ndarray:
    """Magnitude spectra (frames, bins) of Hann-windowed ``n``-sample frames every ``hop``."""
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop] * np.hanning(n)
    return np.abs(np.fft.rfft(frames, axis=1))


def _settled_spectra(y, ref, thr) -> int:
    """Where the sound of ``y`` has become that of ``ref``: the centre of the first frame
    from which on every frame's magnitude spectrum is within ``thr`` (relative L2) of
    ``ref``'s. Phase-free: what one hears, not where the phase stage's history stands."""
    Y, R = _spectra(y), _spectra(ref)
    rel = np.linalg.norm(Y - R, axis=1) / (np.linalg.norm(R, axis=1) + 1e-9)
    return _settled_from(rel, thr, step=HOP, centre=N_FFT // 2)


def _settled_from(rel, thr, *, step, centre) -> int:
    """The centre (sample) of the first of the windows, every ``step`` samples, from which
    on each relative error ``rel`` is at most ``thr``."""
    bad = np.nonzero(rel > thr)[0]
    return 0 if not bad.size else int(bad[-1] + 1) * step + centre


def _settled(y, ref, thr, w=128, step=16) -> int:
    """Where ``y`` has become ``ref``: the centre of the first ``w``-sample window (every
    ``step``) from which on each window's RMS error is at most ``thr`` times ``ref``'s RMS."""
    v = np.lib.stride_tricks.sliding_window_view
    d = v(y - ref, w)[::step]
    r = v(ref, w)[::step]
    rel = np.sqrt((d ** 2).mean(1)) / (np.sqrt((r ** 2).mean(1)) + 1e-9)
    return _settled_from(rel, thr, step=step, centre=w // 2)


def _rms(x, w=1024):
    n = x.size // w * w
    return np.sqrt((x[:n].reshape(-1, w) ** 2).mean(1))


def _mostly(y, ref, thr, w=1024) -> float:
    """The share of ``w``-sample windows where ``y`` is within ``thr`` (relative RMS) of
    ``ref`` (for a run with xruns, where a few windows hold the dry fallback)."""
    return float(np.mean(_rms(y - ref, w) <= thr * _rms(ref, w)))


def test_jack_program_change_switches_style_in_time_without_a_click(analysis):
    """(a) Program change 1: the output leaves style A at the event's hop boundary (not
    before), and sounds as style B by event + round trip + one block + the crossfade: every
    frame's magnitude spectrum within -20 dB of the render of style B all along. Phase-free,
    because phase stays continuous through a switch by design: how fast the waveform meets
    B's own (the phase stage's history) is printed, not asserted: it depends on the input's
    noise at the switch, 1.1-1.25k samples after it for -14 dB in renders swept over the
    switch position, but 1.7k in a live run whose recording was the engine's output bit for
    bit (and 1.8k+ in the CI run that failed the old waveform bound). The spectra stay
    within 1.15k of the switch in both; a 75-ms crossfade would fail the bound. No
    sample-to-sample jump in the switch far beyond those of the steady parts of either style
    (a guard; the click-free blend is tested offline, see the check). After two runs with
    xruns: the styles before and after hold in 90 % of the windows."""
    a = analysis
    rec, ref, D, RT = a["recording"], a["ref"], a["D"], a["RT"]
    E, report = a["E"]["style"], a["report"]
    assert report["midi"]["log"][0][1:] == ["style", 1] and report["settings"]["active"] == 1
    # the rig's round trip is the one rtstyle reports (within a period: the dummy driver's)
    assert abs(RT - report["latency_samples"]) <= PERIOD, (RT, report["latency_samples"])
    y = rec[D:]                                   # engine-output time, as render keeps it
    end = int(T_GAIN * SR) - 2 * PERIOD            # before the gain change
    bound = RT + PERIOD + int(CROSSFADE_MS * SR / 1000)
    if not a["clean"]:
        s0, s1 = SR // 4, E - D + bound
        assert _mostly(y[s0:E], ref["mA"][s0:E], 0.01) >= 0.9
        assert _mostly(y[s1:end], ref["mB"][s1:end], 0.2) >= 0.9
        return
    P = a["P"]["style"]
    # applied with the event's block or the next one (module doc), never before the event
    assert E <= P <= E + PERIOD, (P, E)
    err_a = np.abs(y[:end] - ref["mA"][:end])
    first = int(np.argmax(err_a > 1e-4))
    assert err_a[:E].max() <= 1e-5                 # before the event: exactly style A
    # left at the first hop boundary from where it was applied (a hop: the frame grid), plus
    # the first samples of the changed frame's synthesis window: it rises from 0 (sin^2), so
    # the change crosses the fixed 1e-4 threshold a few samples into it, how many depending on
    # the signal there (CI saw 2 past the hop); N_FFT // 16 samples reach 4 % of the window
    ramp = N_FFT // 16
    assert P <= first <= P + HOP + ramp, (first, P, E)
    sounds = _settled_spectra(y[:end], ref["mB"][:end], 0.1)
    done = _settled(y[:end], ref["mB"][:end], 0.2)
    done20 = _settled(y[:end], ref["mB"][:end], 0.1)
    latency = D + sounds - E                          # control to sound, recording frames
    wave, wave20 = D + done - E, D + done20 - E
    figures = (f"control-to-sound: leaves A after {D + first - E} samples, sounds as B (spectra "
               f"-20 dB) after {latency} ({1000 * latency / SR:.1f} ms), waveform -14 dB after "
               f"{wave}, -20 dB after {wave20} ({1000 * wave20 / SR:.1f} ms); bound {bound} "
               f"({1000 * bound / SR:.1f} ms: round trip {RT} + block {PERIOD} + crossfade); "
               f"applied at E + {P - E}; recording vs --record {a['heard']:.1e}; "
               f"attempts {a['attempts']}")
    print("\n" + figures)
    assert latency <= bound, figures
    # no gross jump: the switch steps about as far as the steady parts of either style do. A
    # linear crossfade of the two cannot step further than the larger of them; what differs
    # between the windows is the input's noise and the phase stage re-converging on the mixed
    # magnitudes, a few % (a fresh-clone CI run saw 1.06x against a bound of 1.05x set on one
    # machine), so 1.25x. This only guards against a jump out of the signal's range (a level or
    # a value gone wrong): this clip is a pulse train whose own steps are 0.24 at a peak of
    # 0.33, so a block lost or a hard cut from A to B (median steps 0.06 and 0.05, measured on
    # these styles) hides among them. The click-free switch itself is checked where it can be:
    # the style bank's exact blend (test_stream_styles.py::test_switch_primes_the_idle_net_and_
    # crossfades) and live == render through this very switch (the flood test below).
    jump = np.abs(np.diff(y))
    steady = max(jump[SR // 4:E - PERIOD].max(), jump[done20 + SR // 10:end].max())
    switch = jump[E - PERIOD:done20 + 2 * PERIOD].max()
    print(f"largest sample step: switch {switch:.3f}, steady parts {steady:.3f}")
    assert switch <= 1.25 * steady, (switch, steady)


def test_jack_cc7_sets_the_gain_as_mapped(analysis):
    """(b) CC7 = 64 after the flood: the output level drops by 40·log10(64/127) = -11.9 dB
    (median over 1024-sample windows of 0.4 s). Where, from the output itself: the window
    that ends where the logged input position ``P`` is heard (``P + L``) is still at the old
    level, and the first window after the 20-ms glide (``P + L + glide``) is at the mapped one;
    ``P`` is the event's block or the next (``E .. E + block``), so the gain is reached by
    recording frame ``E + RT + block + glide``. No click."""
    a = analysis
    rec, D, RT, L = a["recording"], a["D"], a["RT"], a["L"]
    E, P = a["E"]["gain"], a["P"]["gain"]
    m = a["report"]["midi"]
    want = 40 * math.log10(64 / 127)
    assert m["log"][-1][1] == "gain_db" and m["log"][-1][2] == pytest.approx(want)
    if a["clean"]:
        # applied with the event's block or the next one (module doc), never before the event:
        # the order of rtstyle's two JACK clients in the cycle decides which, not the test's
        # timing. (After xruns, cycles JACK skipped shift input positions against E.)
        assert E <= P <= E + PERIOD, (P, E)
    y = rec[D:]                                    # engine-output time (see the module doc)
    glide = int(0.02 * SR)                         # the output stage's 20-ms glide (mixer.py)
    heard = max(P, E) + L                          # the first output sample the change touches
    n, w = int(0.4 * SR), 1024
    before = _rms(y[E - n:E])
    last = _rms(y[heard - w:heard])[0]             # the window just before the change
    after = _rms(y[heard + glide:heard + glide + n])
    got = 20 * math.log10(np.median(after) / np.median(before))
    first = 20 * math.log10(after[0] / np.median(before))
    still = 20 * math.log10(last / np.median(before))
    reached = D + heard + glide - E                # recording frames from the event
    print(f"\nCC7=64: {got:.2f} dB (mapped {want:.2f} dB); applied {P - E} samples after the "
          f"event; {still:.2f} dB just before it is heard, {first:.2f} dB in the window from "
          f"{1000 * reached / SR:.1f} ms after the event (bound "
          f"{1000 * (RT + PERIOD + glide) / SR:.1f} ms: round trip {RT} + block + glide)")
    assert got == pytest.approx(want, abs=0.3 if a["clean"] else 1.0), (got, want)
    if a["clean"]:
        # the level is the window's own (a stationary tone: the 0.3-dB check above), so 0.5 dB
        # holds a 1024-sample window's spread about the median, and no part of the glide
        assert still == pytest.approx(0.0, abs=0.5), (still, P, E)
        assert first == pytest.approx(want, abs=0.5), (first, P, E)
        assert reached <= RT + PERIOD + glide, (reached, RT)
        jump = np.abs(np.diff(y))
        assert jump[heard - PERIOD:heard + glide + PERIOD].max() <= 1.05 * jump[E - n:E].max()


def test_jack_junk_and_sysex_flood_leave_the_engine_running(analysis):
    """(c) 300 random junk messages and 200 sysex of 4 KB: the engine ran on with no dropout
    (apart from the server's xruns), the junk changed nothing, the CC7 after it still worked;
    the sysex never reached Python. And the wet recording is render --keep-latency of the dry
    one with the logged MIDI events replayed at their input positions (live == offline)."""
    import soundfile as sf

    from rtstyle.render import RenderSession

    a = analysis
    report, m = a["report"], a["report"]["midi"]
    assert a["flood_left"] == 0 and a["flood_done"] is not None
    assert a["flood_done"] < a["E"]["gain"]        # the whole flood went out before CC7
    assert report["stopped_by"] == "interrupt" and report["blocks"] * PERIOD >= a["clip"].size
    assert report["nonfinite_samples"] == 0 and report["callback_errors"] == 0
    xruns = report["xruns"] + a["rig_xruns"]
    assert report["dropouts"] == 0 or xruns > 0, (report["dropouts"], xruns)
    assert report["dropouts"] <= 20
    assert m["errors"] == 0 and m["overflow"] == 0 and m["oversized"] == 0
    assert m["events"] == 2 and [e[1] for e in m["log"]] == ["style", "gain_db"]
    assert 2 <= m["received"] <= 2 + 300 + 6       # the 4-KB sysex stayed inside rtmidi
    assert "MIDI port 'rig-midi:out'" in a["err"]  # the mapping printed at start
    assert "CC7 -> gain_db" in a["err"]
    # live == offline: replay the log on the dry recording
    dry, sr = sf.read(a["files"]["dry"], dtype="float32")
    wet, _ = sf.read(a["files"]["wet"], dtype="float32")
    if report["resets"] == 0:
        s = RenderSession(sr=SR, channels=1, style="mA,mB", keep_latency=True,
                          models_dir=a["models"], crossfade_ms=CROSSFADE_MS)
        for pos, name, value in m["log"]:
            s.schedule(pos, name, value)
        ref = np.concatenate([s.feed(dry[None]), s.flush()], axis=1)[0]
        assert ref.size == wet.size
        np.testing.assert_allclose(wet, ref, atol=1e-5)
