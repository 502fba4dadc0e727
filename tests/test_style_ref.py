"""Zero-shot styles (``--style-ref CLIP``): a recording's band statistics as a style, no
training; bad references refused with one line, nothing written."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from rtstyle.dsp import band_stats
from rtstyle.dsp.stft import stft
from rtstyle.errors import AudioFileError, ParameterError
from rtstyle.render import render
from rtstyle.style_ref import REF_PREFIX, reference_style

SR = 22050
ROOT = Path(__file__).resolve().parents[1]


def coloured_noise(seconds: float, tilt_db_per_octave: float, seed: int,
                   sr: int = SR) -> np.ndarray:
    """White noise tilted by ``tilt`` dB per octave (pink is -3), at -20 dBFS RMS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    X = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / sr), 20.0)
    y = np.fft.irfft(X * 10 ** (tilt_db_per_octave * np.log2(f / 1000) / 20), n)
    return (0.1 * y / np.sqrt(np.mean(y ** 2))).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("refs")
    paths = {"bright": d / "bright.wav", "dark": d / "dark.flac", "short": d / "short.wav",
             "silent": d / "silent.wav", "corrupt": d / "corrupt.wav"}
    sf.write(paths["bright"], coloured_noise(12, +3.0, 1), SR)
    sf.write(paths["dark"], np.stack([coloured_noise(11, -6.0, 2, 44100)] * 2, axis=1), 44100)
    sf.write(paths["short"], coloured_noise(4, 0.0, 3), SR)
    sf.write(paths["silent"], np.zeros(12 * SR, np.float32), SR)
    paths["corrupt"].write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return paths


def tilt(y: np.ndarray, model) -> float:
    """Spread (max - min) of the RMS-weighted mean log band power over the bands: a bright
    signal and a dark one differ by tens of nepers."""
    S = torch.from_numpy(np.abs(stft(y[None], n_fft=1024, hop_length=256))[0]).double()
    mean, _ = band_stats.reference_stats(S, model.net.stats_weights.double())
    return float(mean[2:-2].max() - mean[2:-2].min()), mean


def test_a_reference_makes_a_style_that_moves_the_spectrum_toward_it(clips):
    bright = reference_style(clips["bright"])
    dark = reference_style(clips["dark"])       # 44.1 kHz stereo: resampled, channels pooled
    assert bright.styles == ["bright"] and bright.sr == SR and bright.net.config.stats
    y = coloured_noise(6, -3.0, 9)               # pink: between the two
    out_b, _ = render(y, sr=SR, style=[bright])
    out_d, _ = render(y, sr=SR, style=[dark])
    _, m_in = tilt(y, bright)
    _, m_b = tilt(out_b, bright)
    _, m_d = tilt(out_d, bright)
    # the high bands rise against the low ones toward the bright reference, fall toward the
    # dark one (in nepers of band power; the references are 9 dB/octave apart, ~7 octaves)
    slope = lambda m: float(m[-8:].mean() - m[2:10].mean())
    assert slope(m_b) > slope(m_in) + 2.0 and slope(m_d) < slope(m_in) - 2.0, \
        (slope(m_in), slope(m_b), slope(m_d))
    # each frame keeps the input's level (the envelope follows the input), moved by the
    # style's output level trim (at most 0 dB)
    rms = lambda v: float(np.sqrt(np.mean(v[SR:-SR] ** 2)))
    trim = bright.card["training"]["level_trim_db"]["bright"]
    assert abs(20 * np.log10(rms(out_b) / rms(y)) - trim) < 1.5


def test_two_references_morph_and_list_with_a_model(clips):
    out, info = render(coloured_noise(3, 0.0, 4), sr=SR,
                       style=[REF_PREFIX + str(clips["bright"]), REF_PREFIX + str(clips["dark"])],
                       morph=0.5)
    assert np.isfinite(out).all() and info["styles"] == ["bright", "dark"]


@pytest.mark.parametrize("which, error, words", [
    ("short", ParameterError, "4.0 s long; a style reference needs at least 10 s"),
    ("silent", ParameterError, "is silent"),
    ("corrupt", AudioFileError, "corrupt.wav"),
])
def test_bad_references_are_refused_by_name(clips, which, error, words):
    with pytest.raises(error, match=words.replace(".", r"\.")):
        reference_style(clips[which])


def test_cli_style_ref(clips, tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, coloured_noise(3, -3.0, 5), SR)
    out = tmp_path / "out.wav"
    run = lambda *a: subprocess.run([sys.executable, "-m", "rtstyle", "render", str(src), "-o",
                                     str(out), *a], capture_output=True, text=True, timeout=300)
    r = run("--style-ref", str(clips["bright"]))
    assert r.returncode == 0, r.stderr
    assert "style bright" in r.stdout and sf.info(str(out)).frames == 3 * SR
    out.unlink()
    r = run("--style-ref", str(clips["short"]))
    assert r.returncode != 0 and not out.exists()
    assert r.stderr.strip().splitlines() == [
        f"rtstyle: error: {clips['short']}: 4.0 s long; a style reference needs at least 10 s"]


def test_train_from_a_model_makes_a_named_style_in_the_user_folder(clips, tmp_path):
    """``rtstyle train --from instruments --style NAME=CLIP -o NAME``: no corpus, seconds; the
    model lands in the user folder and renders by name, its styles carrying their clips'
    statistics (the bright one brighter than the dark one), a morph between them in between."""
    import os

    from rtstyle.models import load_model

    env = {**os.environ, "RTSTYLE_MODELS": str(tmp_path)}
    train = lambda *a: subprocess.run([sys.executable, "-m", "rtstyle", "train", *a],
                                      capture_output=True, text=True, timeout=300, env=env)
    r = train("--from", "instruments", "--style", f"b={clips['bright']}",
              "--style", f"d={clips['dark']}", "-o", "mine", "--preview", str(tmp_path / "p.wav"))
    assert r.returncode == 0, r.stderr
    demo = sf.info(str(ROOT / "examples" / "speech.flac"))
    assert sf.info(str(tmp_path / "p.wav")).frames == demo.frames     # the demo, rendered
    assert (tmp_path / "mine.json").is_file() and (tmp_path / "mine.safetensors").is_file()
    model = load_model(tmp_path / "mine")
    assert model.styles == ["b", "d"] and model.sr == 22050
    assert model.card["training"]["from"] == "instruments"
    src = tmp_path / "in.wav"
    sf.write(src, coloured_noise(4, -3.0, 7), SR)
    tilts = {}
    for k, (style, morph) in enumerate((("mine:b", 0.0), ("mine:b,mine:d", 0.5),
                                        ("mine:d", 0.0))):
        out = tmp_path / f"out-{k}.wav"
        r = subprocess.run([sys.executable, "-m", "rtstyle", "render", str(src), "-o", str(out),
                            "--style", style, "--morph", str(morph)],
                           capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 0, r.stderr
        tilts[style] = tilt(sf.read(out, dtype="float32")[0], model)[1]
    # the mean log power of the top bands against the bottom ones: bright > morph > dark
    lift = {k: float(m[-8:-2].mean() - m[2:8].mean()) for k, m in tilts.items()}
    assert lift["mine:b"] > lift["mine:b,mine:d"] > lift["mine:d"]


@pytest.mark.parametrize("which,words", [("short", "4.0 s long"), ("silent", "is silent"),
                                         ("corrupt", "")])
def test_train_from_refuses_bad_clips_in_one_line_and_writes_nothing(clips, tmp_path, which,
                                                                      words):
    import os

    env = {**os.environ, "RTSTYLE_MODELS": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "rtstyle", "train", "--from", "instruments",
                        "--style", f"x={clips[which]}", "-o", "bad"],
                       capture_output=True, text=True, timeout=300, env=env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and str(clips[which]) in lines[0], r.stderr
    assert words in lines[0] and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_train_needs_a_corpus_or_a_model_to_adapt(clips, tmp_path):
    r = subprocess.run([sys.executable, "-m", "rtstyle", "train", "--style",
                        f"x={clips['bright']}", "-o", str(tmp_path / "m")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip() == "rtstyle: error: --corpus DIR is needed to train (or --from " \
                               "MODEL to adapt one)"


def test_a_zero_shot_style_keeps_the_limiter_under_one_percent(clips):
    # its output level trim is measured on the demo clips, as train --from's: the demo speech
    # at -1 dBFS peak must then come out with at most 1 % of its samples limited
    from rtstyle.io.files import load_audio
    from rtstyle.style_level import MAX_TRIM_DB, TARGET_LIMITED

    bright = reference_style(clips["bright"])
    trim = bright.card["training"]["level_trim_db"]["bright"]
    assert -MAX_TRIM_DB <= trim <= 0
    assert float(bright.net.style_level_db[0]) == pytest.approx(trim)
    y = load_audio(ROOT / "examples" / "speech.flac", sr=SR, mono=True)[0]
    y = y * (10 ** (-1 / 20) / np.max(np.abs(y)))
    _, info = render(y, sr=SR, style=[bright])
    assert info["limited_samples"] <= TARGET_LIMITED * len(y)
    assert reference_style(clips["bright"], level=False).card["training"]["level_trim_db"] is None
