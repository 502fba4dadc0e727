"""A real JACK server with no sound card, and a second client that plays into rtstyle and
records it.

DESIGN.md, "Test rig with no sound card": ``jackd --no-realtime -d dummy`` runs a real JACK
server; PortAudio lists it as a JACK device; the ``JACK-Client`` package (``import jack``) makes
the player and the recorder. Two clients, not one, so the graph has no loop
(player → rtstyle → recorder); both index their buffers by the server's frame clock, so the lag
from a played sample to its recorded echo is the true round trip through rtstyle.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

import numpy as np



#: Bounds on an ``rtstyle live`` subprocess beyond the audio it plays. They catch a hang, they
#: do not measure speed: the tests wait for an event (its JACK ports appear: the readiness
#: handshake, :meth:`Rig.wait_for_ports`; the process exits), so a generous bound costs a
#: healthy run nothing. Measured on the 2-core test machine beside two busy loops: ports up
#: ~6 s after the start; exit 1-2 s after Ctrl-C, once 15 s (a run with 76 xruns; the
#: stream's close alone may take its 3-s limit, then the worker, MIDI and the recordings).
LIVE_START_S = 120.0
LIVE_STOP_S = 90.0
#: The rig's own wait (:meth:`Rig.wait`) is the audio's length plus this: the rig counts on
#: JACK's frame clock, which keeps the audio rate only as long as the server's cycles are on
#: time; on a loaded machine they are not, so the margin is wide.
RIG_SLACK_S = 30.0


def popen_ctrl_c(args, **kw) -> subprocess.Popen:
    """``subprocess.Popen(args, **kw)`` for a child that must act on SIGINT as on Ctrl-C.

    A shell starts a background job (``make test &``, a CI step sent to the background) with
    SIGINT and SIGQUIT ignored; its children inherit that, and Python keeps an inherited
    SIG_IGN for SIGINT (no KeyboardInterrupt). ``rtstyle live`` then never saw the test's
    SIGINT and ran on until the test's timeout killed it, its report unwritten: each loaded
    run of this suite started here with ``&`` failed that way (the "live subprocess timeouts
    under heavy load" of issue 14). A caught signal is reset to the default action on exec, so Python's
    own handler, installed in this process just for the fork, gives the child SIGINT's
    default. (Main thread only, as pytest runs tests.)
    """
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(args, **kw)
    finally:
        signal.signal(signal.SIGINT, old)


class MidiOutClient:
    """A JACK client with one MIDI output port ``out``; subclasses write in ``_process``.

    ``_setup()`` runs before the client is activated (for the subclass's own state); xruns are
    counted in :attr:`xruns`.
    """

    def __init__(self, name: str, server: str | None = None):
        import jack

        kw = {} if server is None else {"servername": server}
        self.client = jack.Client(name, no_start_server=True, **kw)
        self.port = self.client.midi_outports.register("out")
        self.name = self.port.name
        self.xruns = 0
        self._setup()
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)
        self.client.activate()

    def _setup(self) -> None:
        pass

    def _process(self, frames) -> None:
        self.port.clear_buffer()

    def _xrun(self, delay) -> None:
        self.xruns += 1

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()

class JackServer:
    """``jackd --no-realtime -n NAME -d dummy -r SR -p PERIOD``, started and stopped."""

    def __init__(self, name: str, *, sr: int = 22050, period: int = 256):
        self.name, self.sr, self.period = name, sr, period
        self.proc = None
        self.log = None                         # jackd's stderr (see start())
        self.env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_AUDIO_RESERVATION": "1"}

    @staticmethod
    def available() -> str | None:
        """``None`` if jackd and the jack module are there, else the reason."""
        if shutil.which("jackd") is None:
            return "jackd is not installed (apt-get install jackd2 libportaudio2)"
        try:
            import jack  # noqa: F401
        except (ImportError, OSError) as err:
            return f"the JACK-Client package is not usable ({err})"
        return None

    def start(self, timeout: float = 30.0) -> None:
        # jackd's stderr goes to a file, never to a pipe: jackd prints two or three lines per
        # xrun ("JackEngine::XRun: client = ... was not finished"), and on two busy cores a
        # 4-s run has hundreds of xruns; a pipe that nobody reads fills at 64 KB, jackd's
        # server thread then blocks in write() and every client call (deactivate, close,
        # connect) waits for it forever. That hung the MIDI fixture of test_live_midi on a
        # loaded machine (seen: 65 KB of xrun lines, jackd in anon_pipe_write).
        self.log = tempfile.NamedTemporaryFile(prefix=f"jackd-{self.name}-", suffix=".log")
        self.proc = subprocess.Popen(
            ["jackd", "--no-realtime", "-n", self.name, "-d", "dummy", "-r", str(self.sr),
             "-p", str(self.period)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=self.log)
        import jack

        # polled every 0.1 s, so a healthy start returns in well under a second; 30 s is for
        # a machine whose cores are all busy (jackd and the probe client then start slowly)
        t_end = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code, err = self.proc.returncode, self.log_tail()
                self.stop()
                raise RuntimeError(f"jackd exited ({code}): {err}")
            try:
                c = jack.Client("rig-probe", no_start_server=True, servername=self.name)
                c.close()
                return
            except jack.JackOpenError:
                if time.monotonic() > t_end:
                    self.stop()
                    raise RuntimeError(f"jackd -n {self.name} did not come up in {timeout} s")
                time.sleep(0.1)

    def log_tail(self, n: int = 500) -> str:
        """The last ``n`` characters jackd wrote to stderr (read by name: the file offset
        jackd writes at is not moved)."""
        if self.log is None:
            return ""
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")[-n:]

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        if self.log is not None:
            self.log.close()                    # a NamedTemporaryFile: removed on close
            self.log = None


def server_class():
    """:class:`JackServer` where the rig is usable; else skip the test with the reason, or fail
    it under CI=true (``.ci/run`` installs the rig, so a skip there would hide a broken
    install)."""
    reason = JackServer.available()
    if reason:
        import pytest

        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the JACK test rig is missing: {reason}")
        pytest.skip(reason)
    return JackServer


class Rig:
    """Player and recorder clients on one server, aligned on its frame clock.

    ``play(signal, record_frames)`` schedules ``signal`` to start a little after now and
    records ``record_frames`` from that same frame; ``wait()`` blocks until done. ``xruns``
    counts the server's xrun notifications.
    """

    def __init__(self, server: str):
        import jack

        self.player = jack.Client("rig-play", no_start_server=True, servername=server)
        self.recorder = jack.Client("rig-rec", no_start_server=True, servername=server)
        self.out = self.player.outports.register("out")
        self.inp = self.recorder.inports.register("in")
        self.sr = self.player.samplerate
        self.period = self.player.blocksize
        self.xruns = 0
        self.stall = 0                          # cycles in which the player sleeps (xrun test)
        self._f0 = None
        self._signal = np.zeros(0, np.float32)
        self.recording = np.zeros(0, np.float32)
        self.player.set_process_callback(self._play)
        self.recorder.set_process_callback(self._record)
        self.player.set_xrun_callback(self._xrun)
        self.player.activate()
        self.recorder.activate()

    def _xrun(self, delay):
        self.xruns += 1

    def _play(self, frames):
        a = self.out.get_array()
        a.fill(0.0)
        if self.stall:
            self.stall -= 1
            time.sleep(4 * frames / self.sr)     # miss the deadline: an xrun on purpose
        f0 = self._f0
        if f0 is None:
            return
        p = self.player.last_frame_time - f0
        lo, hi = max(p, 0), min(p + frames, self._signal.size)
        if hi > lo:
            a[lo - p:hi - p] = self._signal[lo:hi]

    def _record(self, frames):
        f0 = self._f0
        if f0 is None:
            return
        p = self.recorder.last_frame_time - f0
        lo, hi = max(p, 0), min(p + frames, self.recording.size)
        if hi > lo:
            self.recording[lo:hi] = self.inp.get_array()[lo - p:hi - p]

    def wait_for_ports(self, client: str = "rtstyle", timeout: float = 60.0) -> None:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            names = [p.name for p in self.player.get_ports()]
            if f"{client}:in_0" in names and f"{client}:out_0" in names:
                return
            time.sleep(0.05)
        raise TimeoutError(f"no {client}:in_0 / {client}:out_0 ports after {timeout} s")

    def connect(self, client: str = "rtstyle") -> None:
        self.player.connect(self.out, f"{client}:in_0")
        self.recorder.connect(f"{client}:out_0", self.inp)

    def play(self, signal: np.ndarray, record_frames: int, lead: float = 0.2) -> None:
        self._signal = np.ascontiguousarray(signal, np.float32)
        self.recording = np.zeros(record_frames, np.float32)
        self._f0 = self.player.frame_time + int(lead * self.sr)

    def done(self) -> bool:
        return self._f0 is not None and (
            self.player.frame_time - self._f0 >= self.recording.size + 2 * self.period)

    def wait(self, timeout: float) -> None:
        t_end = time.monotonic() + timeout
        while not self.done():
            if time.monotonic() > t_end:
                raise TimeoutError("the rig did not finish in time")
            time.sleep(0.05)

    def close(self, timeout: float = 10.0) -> None:
        """Deactivate and close both clients; a server that no longer answers leaves them to
        the process's exit instead of hanging the caller. (Seen after hundreds of xruns at
        1.3-ms periods: most likely jackd blocked writing its xrun lines to a full stderr
        pipe, which :meth:`JackServer.start` no longer gives it.)"""
        import threading

        def shut():
            for c in (self.player, self.recorder):
                try:
                    c.deactivate()
                    c.close()
                except Exception:               # noqa: BLE001
                    pass

        t = threading.Thread(target=shut, daemon=True)
        t.start()
        t.join(timeout)


def lag_of(recording: np.ndarray, reference: np.ndarray, max_lag: int) -> int:
    """The lag (0..max_lag) at which ``reference`` best matches ``recording`` (FFT xcorr)."""
    from scipy.signal import correlate

    seg = recording[: reference.size + max_lag]
    c = correlate(seg, reference, mode="valid", method="fft")
    return int(np.argmax(c[: max_lag + 1]))


def main(argv=None) -> int:
    """``python tests/jack_rig.py --server NAME --seconds S``: while ``rtstyle live`` runs on
    that server, play a speech-like signal with a click every second into ``rtstyle:in_0``,
    record ``rtstyle:out_0``, and print the round trip of each click (the benchmark's
    measured latency) and the xruns the rig saw."""
    import argparse
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from conftest import speechlike

    from rtstyle.live import click_template, find_clicks

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--server", default=os.environ.get("JACK_DEFAULT_SERVER", "default"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--client", default="rtstyle")
    a = ap.parse_args(argv)
    rig = Rig(a.server)
    try:
        rig.wait_for_ports(a.client)
        rig.connect(a.client)
        time.sleep(0.3)
        sr = rig.sr
        n = int(a.seconds * sr)
        sig = 0.5 * speechlike(sr, duration=a.seconds, seed=11)
        tpl = click_template(sr)
        starts = list(range(sr // 2, n - sr + 1, sr))
        for s in starts:                     # clicks over a short gap in the speech
            sig[s - 2000:s + 2000] = 0.0
            sig[s:s + tpl.size] = tpl
        x0 = rig.xruns
        rig.play(sig, n + sr)
        rig.wait(a.seconds + 30)
        rec = rig.recording
    finally:
        rig.close()
    lags = np.asarray(find_clicks(rec, starts, tpl, sr // 2))
    if lags.size:
        print(f"round trip: {int(np.median(lags))} samples median, {lags.min()}..{lags.max()} "
              f"({len(lags)} of {len(starts)} clicks) at {sr} Hz; rig xruns {rig.xruns - x0}")
    else:
        print(f"no click came back; rig xruns {rig.xruns - x0}")
    return 0 if lags.size else 1


if __name__ == "__main__":
    raise SystemExit(main())
