"""The `rtstyle` command end to end: outputs, figures, logs, and every bad input's one line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from conftest import harmonic, speechlike
from rtstyle import cli

FAST = ["--n-fft", "512", "--hop-length", "128", "--filters", "64", "--iterations", "4",
        "--phase-iters", "4", "-q"]


@pytest.fixture
def clips(tmp_path):
    c = tmp_path / "voice.wav"
    s = tmp_path / "organ.flac"
    sf.write(c, np.stack([speechlike(44100, duration=1.0), speechlike(44100, duration=1.0, seed=4)]).T, 44100)
    sf.write(s, harmonic(16000, duration=0.8), 16000)
    return c, s


def run(*args):
    """The real console entry point in a subprocess: exit status, stdout, stderr."""
    p = subprocess.run([sys.executable, "-m", "rtstyle", *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def test_transfer_end_to_end(clips, tmp_path):
    c, s = clips
    out, fig, log = tmp_path / "out.flac", tmp_path / "fig.png", tmp_path / "log.json"
    code, _, err = run("transfer", c, s, "-o", out, "--plot", fig, "--log-json", log, *FAST)
    assert code == 0, err
    y, sr = sf.read(out, always_2d=True)
    assert sr == 44100 and y.shape == (44100, 2)  # the content's rate, channels and length
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads(log.read_text())
    assert report["settings"]["iterations"] == 4 and len(report["history"]) == 5
    assert {"content_to_style", "output_to_style", "output_to_content"} <= set(report["logmel_frechet"])
    assert sorted(os.listdir(tmp_path)) == sorted(["voice.wav", "organ.flac", "out.flac", "fig.png", "log.json"])


def test_version_and_help():
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("rtstyle ")
    code, out, _ = run("transfer", "--help")
    assert code == 0 and "examples:" in out and "--content-weight" in out


def _one_line_error(code, out, err, needle):
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert len(lines) == 1 and "error" in lines[0] and needle in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("problem", ["missing", "empty", "text", "truncated", "nan"])
def test_bad_input_file(clips, tmp_path, problem):
    c, s = clips
    bad = tmp_path / "bad.wav"
    if problem == "empty":
        bad.write_bytes(b"")
    elif problem == "text":
        bad.write_text("this is not audio\n" * 50)
    elif problem == "truncated":
        sf.write(bad, speechlike(22050, duration=1.0), 22050, subtype="PCM_16")
        bad.write_bytes(bad.read_bytes()[:20000])
    elif problem == "nan":
        y = speechlike(22050, duration=1.0)
        y[100] = np.nan
        sf.write(bad, y, 22050, subtype="FLOAT")
    out = tmp_path / "out.wav"
    code, o, err = run("transfer", bad, s, "-o", out, *FAST)
    _one_line_error(code, o, err, "bad.wav")
    assert not out.exists()


def test_refuses_to_overwrite(clips, tmp_path):
    c, s = clips
    out = tmp_path / "out.wav"
    out.write_bytes(b"keep me")
    code, o, err = run("transfer", c, s, "-o", out, *FAST)
    _one_line_error(code, o, err, "--overwrite")
    assert out.read_bytes() == b"keep me"
    before = c.read_bytes()
    code, o, err = run("transfer", c, s, "-o", c, "--overwrite", *FAST)
    _one_line_error(code, o, err, "input")
    assert c.read_bytes() == before
    code, _, err = run("transfer", c, s, "-o", out, "--overwrite", *FAST)
    assert code == 0, err
    assert out.read_bytes() != b"keep me"


@pytest.mark.parametrize("args,needle", [
    (["--filters", "0"], "filters=0"),
    (["--iterations", "-3"], "iterations=-3"),
    (["--features", "wavelet"], "--features"),
    (["--hop-length", "4096"], "hop_length=4096"),
    (["--content-loss", "perceptual"], "perceptual_weights"),
    (["--plot", "fig.bmpx"], "--plot"),
    (["--sr", "abc"], "--sr"),
])
def test_bad_flags(clips, tmp_path, args, needle):
    c, s = clips
    out = tmp_path / "out.wav"
    code, o, err = run("transfer", c, s, "-o", out, *FAST, *args)
    _one_line_error(code, o, err, needle)
    assert not out.exists()


def test_ctrl_c_leaves_no_file(clips, tmp_path, monkeypatch, capsys):
    c, s = clips
    out = tmp_path / "out.wav"
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    # rtstyle.transfer is the function; its module is in sys.modules under the same name.
    monkeypatch.setattr(sys.modules["rtstyle.transfer"], "transfer", interrupted)
    assert cli.main(["transfer", str(c), str(s), "-o", str(out), *FAST]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["organ.flac", "voice.wav"]


def test_error_while_writing_leaves_no_partial_file(clips, tmp_path, monkeypatch):
    c, s = clips
    out = tmp_path / "out.wav"
    import soundfile

    real_write = soundfile.SoundFile.write

    def broken(self, data):
        real_write(self, data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(soundfile.SoundFile, "write", broken)
    assert cli.main(["transfer", str(c), str(s), "-o", str(out), *FAST]) == 130
    assert sorted(os.listdir(tmp_path)) == ["organ.flac", "voice.wav"]


def test_api_functions_survive_submodule_imports():
    code = ("import rtstyle.transfer, rtstyle.io.files, rtstyle; "
            "print(callable(rtstyle.transfer), callable(rtstyle.load_audio))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["True", "True"]


def test_import_rtstyle_is_light():
    code = "import sys, rtstyle; print('torch' in sys.modules, 'librosa' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]


def test_stream_imports_without_audio_or_midi_libraries():
    # DESIGN: rtstyle.stream must import with sounddevice and rtmidi absent.
    code = ("import sys; sys.modules['sounddevice'] = None; sys.modules['rtmidi'] = None; "
            "import rtstyle.stream; print(rtstyle.stream.Streamer.__name__)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.stdout.split() == ["Streamer"], p.stderr
