"""Nothing is lost on a signal (issue 14, "Data lost").

- ``render``: SIGTERM and SIGHUP act like Ctrl-C (exit 128 + n, one line, no partial output,
  no temp file); a run killed outright (SIGKILL) leaves a temp file named with its pid, which
  the next write to the same output removes.
- ``live --record``: SIGTERM and SIGHUP finish ``wet.wav`` and ``dry.wav`` as Ctrl-C does; after
  SIGKILL both are valid WAV files (their headers are rewritten every second), read here with
  the standard library's strict ``wave`` reader. These run against a JACK dummy server
  (DESIGN.md "Test rig"): skipped where jackd is missing, failed under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import noise, speechlike
from jack_rig import LIVE_START_S, LIVE_STOP_S

ROOT = Path(__file__).resolve().parents[1]
SR, PERIOD = 22050, 256


def rtstyle_cmd(*args):
    return [sys.executable, "-m", "rtstyle", *map(str, args)]


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ----------------------------------------------------------------------------------------------
# temp files and recordings, in-process
# ----------------------------------------------------------------------------------------------


def test_temp_names_carry_the_pid_and_stale_ones_are_removed(tmp_path):
    from rtstyle.io.files import atomic_output, remove_stale_temps

    out = tmp_path / "out.wav"
    stale = tmp_path / f".out.tmp-{dead_pid()}-0123abcd.wav"
    running = tmp_path / f".out.tmp-{os.getppid()}-0123abcd.wav"       # a live process's
    others = [tmp_path / ".out.tmp-0123abcd.wav",                        # no pid: not ours
              tmp_path / f".other.tmp-{dead_pid()}-0123abcd.wav",         # another output's
              tmp_path / f".out.tmp-{dead_pid()}-0123abcd.wav.keep"]
    for p in (stale, running, *others):
        p.write_bytes(b"x")
    with atomic_output(out) as tmp:
        assert tmp.name.startswith(f".out.tmp-{os.getpid()}-") and tmp.suffix == ".wav"
        assert not stale.exists()                  # removed when the new write began
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new"
    assert running.exists() and all(p.exists() for p in others)
    assert remove_stale_temps(out) == []


def test_a_250_byte_output_name_gets_a_temp_file(tmp_path):
    from rtstyle.io.files import atomic_output

    out = tmp_path / ("n" * 246 + ".wav")
    with atomic_output(out) as tmp:
        assert len(os.fsencode(tmp.name)) <= 255
        tmp.write_bytes(b"ok")
    assert out.read_bytes() == b"ok"


def test_a_recording_is_a_valid_wav_while_it_is_written(tmp_path):
    """In place, header rewritten every ``sync_every`` frames: readable without closing."""
    from rtstyle.io.files import AudioWriter

    path = tmp_path / "rec.wav"
    w = AudioWriter(path, sr=8000, channels=1, subtype="PCM_16", atomic=False, sync_every=8000)
    w.__enter__()
    try:
        for _ in range(25):
            w.write(np.full(1000, 0.25, np.float32))
        with wave.open(str(path)) as r:            # the strict reader: RIFF and data sizes
            assert r.getnframes() == 24000 and r.getframerate() == 8000
        assert hidden(tmp_path) == []
    finally:
        w.__exit__(None, None, None)
    assert sf.info(path).frames == 25000


# ----------------------------------------------------------------------------------------------
# render
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def long_input(tmp_path):
    path = tmp_path / "in.wav"
    sf.write(path, noise(SR, duration=180.0, amp=0.1), SR, subtype="PCM_16")
    return path


def start_render(src, out, *extra):
    return subprocess.Popen(rtstyle_cmd("render", src, "-o", out, "--style", "identity", "-q",
                                        *extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def wait_for_temp(proc, folder: Path, timeout=120.0) -> list[str]:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        temps = [n for n in hidden(folder) if n.startswith(".out.tmp-")]
        if temps:
            return temps
        if proc.poll() is not None:
            raise AssertionError(f"render ended before writing: {proc.communicate()[1]}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("render wrote no temp file")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_render_on_sigterm_and_sighup_leaves_nothing(sig, long_input, tmp_path):
    out = tmp_path / "out.wav"
    proc = start_render(long_input, out)
    wait_for_temp(proc, tmp_path)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and signal.Signals(sig).name in lines[0], err
    assert "Traceback" not in err
    assert not out.exists() and hidden(tmp_path) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_that_lands_in_a_finaliser_is_not_lost(sig, capsys):
    """CI once saw SIGHUP arrive while llvmlite ran a ``__del__``: Python printed "Exception
    ignored" with a traceback, dropped the stop, and the render ran to the end. The stop
    must still raise, in ordinary code, with nothing printed."""
    caught, stop = _stop_in_a_finaliser(sig)
    assert caught.value.signum == sig and stop.signum == sig
    assert capsys.readouterr().err == ""
    assert signal.getsignal(sig) is not stop._handler   # handlers restored


def _stop_in_a_finaliser(sig):
    """Send ``sig`` from inside a ``__del__`` under :class:`StopSignals`, then wait in
    ordinary code for up to 5 s; returns pytest's ExceptionInfo of the :class:`Stopped`
    raised, and the StopSignals."""
    from rtstyle.cli import _Stopped, _StopSignals

    class Finalised:
        def __del__(self):
            os.kill(os.getpid(), sig)          # the handler runs here, inside the finaliser
            for _ in range(1000):
                pass

    t_end = time.monotonic() + 5.0
    with pytest.raises(_Stopped) as caught, _StopSignals() as stop:
        Finalised()                            # freed at once: __del__ swallows the first raise
        while time.monotonic() < t_end:        # ordinary code: the redelivered stop lands here
            time.sleep(0.001)
    return caught, stop


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_redelivered_stop_waits_until_the_hook_has_returned(sig, capsys, monkeypatch):
    """The test above failed on a busy machine (2 of 300 tries beside three busy loops):
    the main thread stayed inside ``sys.unraisablehook`` past the redelivery delay, so the
    redelivered signal raised inside the hook and was swallowed for good ("Exception ignored
    in sys.unraisablehook"). Made exact: starting the helper thread returns 50 ms late (10x
    the delay), as a descheduled main thread would."""
    import threading

    start = threading.Thread.start

    def late_start(self):
        start(self)
        time.sleep(0.05)

    monkeypatch.setattr(threading.Thread, "start", late_start)
    caught, stop = _stop_in_a_finaliser(sig)
    assert caught.value.signum == sig and stop.signum == sig
    assert capsys.readouterr().err == ""


def test_a_stop_while_the_output_opens_leaves_no_temp(tmp_path, monkeypatch):
    """The window that the render signal test above hits only by chance, made exact: the
    stop (SIGTERM/SIGHUP arrive as KeyboardInterrupt's subclass) raised while soundfile opens
    the temp file that atomic_output has just created."""
    from rtstyle.io import writing

    def stopped(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(writing.sf, "SoundFile", stopped)
    w = writing.AudioWriter(tmp_path / "out.wav", sr=SR, channels=1)
    with pytest.raises(KeyboardInterrupt):
        w.__enter__()
    assert hidden(tmp_path) == [] and not (tmp_path / "out.wav").exists()


def test_render_killed_leaves_a_temp_that_the_next_run_removes(long_input, tmp_path):
    out = tmp_path / "out.wav"
    proc = start_render(long_input, out)
    temps = wait_for_temp(proc, tmp_path)
    proc.kill()                                    # SIGKILL: no handler runs
    proc.wait()
    assert hidden(tmp_path) == temps               # what a kill leaves ...
    short = tmp_path / "short.wav"
    sf.write(short, noise(SR, duration=0.5), SR)
    p = subprocess.run(rtstyle_cmd("render", short, "-o", out, "--style", "identity", "-q"),
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    assert hidden(tmp_path) == []                  # ... the next render of that output removes
    assert sf.info(out).frames == int(0.5 * SR)


# ----------------------------------------------------------------------------------------------
# live --record, against a JACK dummy server
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jack_server():
    sys.path.insert(0, str(Path(__file__).parent))
    from jack_rig import server_class

    server = server_class()(f"rtstyle-sig-{os.getpid()}", sr=SR, period=PERIOD)
    server.start()
    yield server
    server.stop()


class Live:
    """``rtstyle live --record wet.wav --record-dry dry.wav`` in a subprocess, the rig playing
    a clip into it."""

    def __init__(self, server, folder: Path, subtype="FLOAT"):
        from jack_rig import Rig

        self.wet, self.dry, self.report = (folder / n for n in ("wet.wav", "dry.wav", "r.json"))
        self.proc = subprocess.Popen(
            rtstyle_cmd("live", "--style", "identity", "--no-keys", "-q", "--block-size", PERIOD,
                        "--record", self.wet, "--record-dry", self.dry, "--record-subtype",
                        subtype, "--report", self.report),
            env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        self.rig = Rig(server.name)

    def play(self, clip, seconds: float):
        """Play ``clip`` and let ``seconds`` of it pass."""
        try:
            self.rig.wait_for_ports(timeout=LIVE_START_S)
        except TimeoutError:
            self.proc.kill()
            raise AssertionError("rtstyle live did not open its ports: "
                                 + self.proc.communicate()[1][-2000:]) from None
        self.rig.connect()
        self.rig.play(clip, clip.size)
        time.sleep(seconds)

    def stop(self, sig):
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=LIVE_STOP_S)
        return err

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        self.rig.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_live_recordings_are_finished_on_sigterm_and_sighup(sig, jack_server, tmp_path):
    clip = speechlike(SR, duration=6.0, seed=3)
    run = Live(jack_server, tmp_path)
    try:
        run.play(clip, 2.5)
        err = run.stop(sig)
    finally:
        run.close()
    assert run.proc.returncode == 128 + sig, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and signal.Signals(sig).name in lines[0], err
    report = json.loads(run.report.read_text())
    assert report["stopped_by"] == signal.Signals(sig).name.lower()
    dry, sr = sf.read(run.dry, dtype="float32")
    wet, _ = sf.read(run.wet, dtype="float32")
    assert sr == SR and dry.size >= SR and wet.size == dry.size + report["engine_latency_samples"]
    assert np.abs(dry).max() > 0.1                 # the clip was recorded
    assert hidden(tmp_path) == []


def test_live_recordings_survive_sigkill(jack_server, tmp_path):
    clip = speechlike(SR, duration=8.0, seed=4)
    run = Live(jack_server, tmp_path, subtype="PCM_16")
    try:
        run.play(clip, 3.5)
        run.proc.kill()                            # SIGKILL: no handler, no close
        run.proc.wait()
    finally:
        run.close()
    assert run.proc.returncode == -signal.SIGKILL
    for path in (run.wet, run.dry):
        with wave.open(str(path)) as r:            # a valid RIFF/WAVE header, sizes that hold
            n = r.getnframes()
            assert r.getframerate() == SR and r.getsampwidth() == 2
            audio = np.frombuffer(r.readframes(n), np.int16)
        assert audio.size == n >= SR, (path, n)    # at least a second; at most ~1 s lost
        assert 44 + 2 * n <= path.stat().st_size
    dry = np.frombuffer(wave.open(str(run.dry)).readframes(10 ** 7), np.int16)
    assert np.abs(dry).max() > 0.1 * 32768
    assert hidden(tmp_path) == []


def test_a_finaliser_broken_by_a_stop_prints_nothing_at_exit():
    """CI once saw SIGTERM land while llvmlite built an object: its finaliser failed as the
    process exited ("Exception ignored ... has no attribute '_as_parameter_'", a traceback)
    after the one-line stop message. After a stop, such failures print nothing; before one,
    they still show (they would be our bugs)."""
    code = textwrap.dedent("""
        import os, signal, sys
        from rtstyle.cli import _Stopped, _StopSignals
        class HalfBuilt:
            def __del__(self):
                self._as_parameter_            # never set: AttributeError in the finaliser
        kept = []
        try:
            with _StopSignals():
                kept.append(HalfBuilt())       # freed only as the process exits
                if sys.argv[1] == "stop":
                    os.kill(os.getpid(), signal.SIGTERM)
                    signal.pause()
        except _Stopped:
            print("stopped", file=sys.stderr)
    """)
    for mode, want in (("stop", "stopped\n"), ("run", None)):
        r = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                           timeout=60)
        if want is not None:
            assert r.stderr == want
        else:
            assert "_as_parameter_" in r.stderr       # without a stop the failure shows
