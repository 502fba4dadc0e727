"""`rtstyle.render` and `rtstyle render`: the live engine file to file, aligned or as played."""

import inspect
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import rtstyle
from conftest import SR, chirp, speechlike
from rtstyle import cli
from rtstyle.errors import ParameterError
from rtstyle.render import DEFAULTS, PHASE_INITS, RESAMPLE_QUALITIES, render

N_FFT, HOP = 512, 128  # engine latency n_fft + (lookahead - 1) * hop = 512 samples at lookahead 1
LIMITER = round(0.0015 * SR)  # the output limiter's look-ahead
LAT = N_FFT + LIMITER
ROOT_EXAMPLES = __import__("pathlib").Path(__file__).resolve().parent.parent / "examples"


def signal(duration=0.5):
    return speechlike(SR, duration=duration)


def main(capsys, *args):
    """The CLI in-process (no interpreter start): exit status, stdout, stderr."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def wav(tmp_path):
    """A mono FLOAT wav (no quantisation to hide differences)."""
    path = tmp_path / "in.wav"
    sf.write(path, signal(), SR, subtype="FLOAT")
    return path


# ---------------------------------------------------------------------------------------- API


def test_block_size_does_not_matter():
    y = signal()
    ref, _ = render(y, sr=SR, style="identity", n_fft=N_FFT, hop_length=HOP, block_size=y.shape[-1])
    for block_size in (1, 64, 65, 4096):
        out, _ = render(y, sr=SR, style="identity", n_fft=N_FFT, hop_length=HOP, block_size=block_size)
        assert np.max(np.abs(out - ref)) <= 1e-5, block_size


def test_identity_reproduces_the_input_aligned():
    y = chirp(SR, duration=0.5)
    out, info = render(y, sr=SR, style="identity", n_fft=N_FFT, hop_length=HOP)
    assert out.shape == y.shape and out.dtype == np.float32
    assert np.max(np.abs(out - y)) <= 1e-4
    assert info["latency_samples"] == LAT
    assert info["latency_ms"] == pytest.approx(1000 * LAT / SR)
    assert info["duration_s"] == pytest.approx(y.shape[-1] / SR)
    assert info["sc_db"] < -60
    assert info["peak_dbfs"] == pytest.approx(20 * np.log10(np.max(np.abs(y))), abs=1e-3)
    assert 0 < info["rtf"] < 10


def test_keep_latency_is_what_live_plays():
    y = chirp(SR, duration=0.5)
    out, info = render(y, sr=SR, style="identity", n_fft=N_FFT, hop_length=HOP, lookahead=2, keep_latency=True)
    lat = info["latency_samples"]
    assert lat == N_FFT + HOP + LIMITER
    assert out.shape == (y.shape[-1] + lat,)
    assert np.max(np.abs(out[:lat])) <= 1e-4  # nothing before the latency
    assert np.max(np.abs(out[lat:] - y)) <= 1e-4  # input sample t at output sample t + latency


def test_stereo_channels_kept():
    y = np.stack([signal(), 0.5 * chirp(SR, duration=0.5)])
    out, info = render(y, sr=SR, style="identity", n_fft=N_FFT, hop_length=HOP, block_size=100)
    assert out.shape == y.shape
    assert np.max(np.abs(out - y)) <= 1e-4


def test_silence_has_no_sc_and_no_peak():
    out, info = render(np.zeros(4000, np.float32), sr=SR, style="identity", n_fft=N_FFT, hop_length=HOP)
    assert not out.any() and info["sc_db"] is None and info["peak_dbfs"] is None


@pytest.mark.parametrize("kw, needle", [
    ({"block_size": 0}, "block_size=0"),
    ({"lookahead": 7}, "lookahead=7"),
    ({"phase_init": "zero"}, "phase_init"),
    ({"momentum": 1.0}, "momentum=1.0"),
    ({"hop_length": 300}, "hop_length=300"),
    ({"keep_latency": "yes"}, "keep_latency"),
    ({"resample_quality": "best"}, "resample_quality='best' must be one of VHQ, HQ, MQ, LQ, QQ"),
])
def test_bad_parameters_name_the_value(kw, needle):
    with pytest.raises(ParameterError, match=needle):
        render(signal(0.1), sr=SR, **({"style": "identity"} | kw))


def test_defaults_and_choices_match_the_engine():
    import rtstyle.io.files                  # not imported yet when this test runs alone
    from rtstyle.dsp.phase_stream import PHASE_INITS as ENGINE_INITS

    assert PHASE_INITS == ENGINE_INITS
    assert RESAMPLE_QUALITIES == rtstyle.io.files.RESAMPLE_QUALITIES
    from rtstyle.render import ENVELOPES
    from rtstyle.stream.styles import ENVELOPES as ENGINE_ENVELOPES

    assert ENVELOPES == ENGINE_ENVELOPES
    params = inspect.signature(render).parameters
    assert DEFAULTS == {k: params[k].default for k in DEFAULTS}


def test_api_functions_survive_submodule_imports():
    code = ("import rtstyle.render, rtstyle.transfer, rtstyle; "
            "print(callable(rtstyle.render), callable(rtstyle.transfer))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.stdout.split() == ["True", "True"], p.stderr
    assert rtstyle.render is render


# ---------------------------------------------------------------------------------------- CLI


def test_cli_block_sizes_give_the_same_file(wav, tmp_path, capsys):
    files = []
    for block_size in (64, 4096):
        out = tmp_path / f"out{block_size}.wav"
        code, _, err = main(capsys, "render", wav, "-o", out, "--style", "identity", "--block-size", block_size,
                            "--n-fft", N_FFT, "--hop-length", HOP, "-q")
        assert code == 0, err
        files.append(sf.read(out, dtype="float32"))
    (a, sr_a), (b, sr_b) = files
    assert sf.info(tmp_path / "out64.wav").subtype == "FLOAT"  # the input's subtype kept
    assert sr_a == sr_b == SR and a.shape == b.shape == (signal().shape[-1],)
    assert np.max(np.abs(a - b)) <= 1e-5


def test_cli_keep_latency_and_summary_line(wav, tmp_path, capsys):
    out = tmp_path / "live.wav"
    code, stdout, err = main(capsys, "render", wav, "-o", out, "--style", "identity", "--keep-latency",
                             "--n-fft", N_FFT, "--hop-length", HOP)
    assert code == 0, err
    assert len(stdout.splitlines()) == 1 and f"latency {LAT} samples" in stdout and err == ""
    y, _ = sf.read(wav, dtype="float32")
    z, _ = sf.read(out, dtype="float32")
    assert z.shape == (y.shape[0] + LAT,)
    assert np.max(np.abs(z[LAT:] - y)) <= 1e-4


def test_cli_stereo_in_stereo_out(tmp_path, capsys):
    src, out = tmp_path / "st.flac", tmp_path / "st_out.flac"
    y = np.stack([signal(), 0.5 * chirp(SR, duration=0.5)])
    sf.write(src, y.T, SR, subtype="PCM_24")
    code, _, err = main(capsys, "render", src, "-o", out, "--style", "identity", "-q")
    assert code == 0, err
    z, sr = sf.read(out, always_2d=True)
    assert sr == SR and z.shape == (y.shape[-1], 2) and sf.info(out).subtype == "PCM_24"
    assert np.max(np.abs(z.T - y)) <= 1e-4  # 24-bit input and output


def test_cli_report(wav, tmp_path, capsys):
    out, rep = tmp_path / "out.wav", tmp_path / "r.json"
    code, _, err = main(capsys, "render", wav, "-o", out, "--style", "identity", "--report", rep, "-q",
                        "--phase-init", "rtpghi", "--lookahead", "2")
    assert code == 0, err
    r = json.loads(rep.read_text())
    keys = {"input", "output", "sr", "model_sr", "n_fft", "hop_length", "latency_samples",
            "latency_ms", "rtf", "startup_s", "sc_db", "duration_s", "peak_dbfs", "styles"}
    assert keys <= r.keys()
    assert r["input"] == str(wav) and r["output"] == str(out)
    assert r["sr"] == r["model_sr"] == SR and (r["n_fft"], r["hop_length"]) == (1024, 256)
    assert r["latency_samples"] == 1024 + 256 + LIMITER
    assert r["latency_ms"] == pytest.approx(1000 * (1280 + LIMITER) / SR)
    assert r["duration_s"] == pytest.approx(0.5) and r["rtf"] > 0 and r["startup_s"] > 0
    assert -60 < r["sc_db"] < 0  # rtpghi: a real reconstruction, not a copy of the input phase
    assert -20 < r["peak_dbfs"] <= -0.1 and r["styles"] == ["identity"]


def _one_line_error(code, out, err, needle):
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith(("rtstyle: error:", "rtstyle render: error:")), err
    assert needle in err, err


@pytest.mark.parametrize("args, needle", [
    (["--lookahead", "7"], "lookahead=7"),
    (["--style", "nosuchmodel"], "no model named 'nosuchmodel'"),
    (["--hop-length", "300"], "hop_length=300"),
    (["--phase-init", "zero"], "invalid choice"),
    (["--resample-quality", "best"], "--resample-quality: invalid choice: 'BEST'"),
])
def test_cli_bad_flags(wav, tmp_path, capsys, args, needle):
    _one_line_error(*main(capsys, "render", wav, "-o", tmp_path / "out.wav", "--style", "identity", *args), needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]  # no file left


def test_cli_bad_paths(wav, tmp_path, capsys):
    _one_line_error(*main(capsys, "render", tmp_path / "missing.wav", "-o", tmp_path / "o.wav"),
                    "missing.wav")
    _one_line_error(*main(capsys, "render", wav, "-o", wav, "--style", "identity", "--overwrite"), "input file")
    _one_line_error(*main(capsys, "render", wav, "-o", tmp_path / "o.xyz", "--style", "identity"), "unknown audio file")
    rep = tmp_path / "r.json"
    rep.write_text("keep")
    _one_line_error(*main(capsys, "render", wav, "-o", tmp_path / "o.wav", "--style", "identity", "--report", rep),
                    "exists")
    assert rep.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "r.json"]  # no file left
    before = wav.read_bytes()
    existing = tmp_path / "o.wav"
    existing.write_bytes(b"old")
    _one_line_error(*main(capsys, "render", wav, "-o", existing, "--style", "identity"), "--overwrite")
    assert existing.read_bytes() == b"old" and wav.read_bytes() == before
    code, _, err = main(capsys, "render", wav, "-o", existing, "--style", "identity", "--overwrite", "-q")
    assert code == 0 and sf.info(existing).frames == signal().shape[-1], err


# ------------------------------------------------------------------- real files and folders


def test_stereo_resampled_file_streamed_from_disk(tmp_path, capsys):
    # A stereo 44.1 kHz file read in small blocks: stereo out, same length, each channel its own
    # stream, equal to the in-memory render of the same file.
    y = np.stack([signal(0.7), 0.5 * chirp(SR, duration=0.7)])
    y44 = rtstyle.io.files.resample(y, orig_sr=SR, target_sr=44100)
    src = tmp_path / "st.flac"
    sf.write(src, y44.T, 44100, subtype="PCM_24")
    out = tmp_path / "st_out.flac"
    from rtstyle.render import render_file

    info = render_file(src, out, style="identity", read_block=1000)
    z, sr = sf.read(out, dtype="float32", always_2d=True)
    assert sr == 44100 and z.shape == (y44.shape[1], 2) and sf.info(out).subtype == "PCM_24"
    ref, _ = render(sf.read(src, dtype="float32")[0].T, sr=44100, style="identity")
    assert np.max(np.abs(z.T - ref)) <= 2 ** -22     # PCM_24 quantisation
    assert info["sc_db"] < -60 and info["sr_out"] == 44100


def test_output_rate_option(wav, tmp_path, capsys):
    out = tmp_path / "o16k.wav"
    code, _, err = main(capsys, "render", wav, "-o", out, "--style", "identity", "--sr", 16000, "-q")
    assert code == 0, err
    z, sr = sf.read(out)
    assert sr == 16000 and z.shape[0] == round(signal().size * 16000 / SR)


def test_resample_quality_reaches_every_resampler_and_the_report(wav, tmp_path, capsys):
    # identity runs at the file's rate: with --sr the only resampler is the output's, so a QQ
    # file is the QQ resampling of the file rendered at its own rate (soxr's stream == one-shot)
    out, rep = tmp_path / "o16k.wav", tmp_path / "r.json"
    code, _, err = main(capsys, "render", wav, "-o", out, "--style", "identity", "--sr", 16000,
                        "--resample-quality", "qq", "--report", rep, "-q")
    assert code == 0, err
    assert json.loads(rep.read_text())["resample_quality"] == "QQ"
    z, _ = sf.read(out, dtype="float32")
    at_sr, info = render(signal(), sr=SR, style="identity")
    assert info["resample_quality"] == "HQ"
    for q in ("QQ", "HQ"):
        ref = rtstyle.io.files.resample(at_sr, orig_sr=SR, target_sr=16000, quality=q)
        assert (np.max(np.abs(z - ref)) <= 1e-6) == (q == "QQ")
    from rtstyle.render import RenderSession

    rs = RenderSession(sr=48000, channels=1, style="identity", sr_out=44100,
                       resample_quality="lq")
    assert (rs._chain._rs_in.quality, rs._chain._rs_out.quality, rs.resample_quality) == (
        "LQ", "LQ", "LQ")


def test_folder_with_a_corrupt_file_renders_the_rest(tmp_path, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    sf.write(src / "a.wav", signal(), SR)
    sf.write(src / "sub" / "b.flac", signal(0.3), SR)
    (src / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (src / "notes.txt").write_text("not audio, not touched")
    dst = tmp_path / "out"
    code, out, err = main(capsys, "render", src, "-o", dst, "--style", "identity", "--recursive",
                          "--report", tmp_path / "r.json")
    assert code != 0
    assert "broken.wav" in err and len(err.strip().splitlines()) == 1
    assert (dst / "a.wav").exists() and (dst / "sub" / "b.flac").exists()
    assert not (dst / "broken.wav").exists() and not (dst / "notes.txt").exists()
    assert "rendered 2 of 3 files" in out
    reports = json.loads((tmp_path / "r.json").read_text())
    assert isinstance(reports, list) and len(reports) == 2
    assert not list(dst.rglob(".*tmp*"))             # no partial files


def test_midi_program_change_switches_the_style_at_its_time(tmp_path, capsys):
    import mido
    from conftest import MODEL_SR, save_tiny_model

    models = tmp_path / "models"
    models.mkdir()
    save_tiny_model(models, "solo", styles=("bright",))
    save_tiny_model(models, "duo", styles=("warm", "cold"))
    y = speechlike(MODEL_SR, duration=1.0).astype(np.float32)
    src = tmp_path / "in.wav"
    sf.write(src, y, MODEL_SR, subtype="FLOAT")
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))     # 120 bpm
    track.append(mido.Message("program_change", program=1, time=480))     # at 0.5 s
    mid.save(tmp_path / "auto.mid")
    common = ["--models-dir", models, "--style", "solo,duo:cold", "-q", "--subtype", "FLOAT"]
    outs = {}
    for name, extra in (("midi", ["--midi", tmp_path / "auto.mid"]), ("a", []),
                        ("b", ["--style", "duo:cold,solo"])):
        args = common + extra if name != "b" else [a for a in common if a != "solo,duo:cold"
                                                   and a != "--style"] + extra
        code, _, err = main(capsys, "render", src, "-o", tmp_path / f"{name}.wav", *args)
        assert code == 0, err
        outs[name] = sf.read(tmp_path / f"{name}.wav", dtype="float32")[0]
    t = MODEL_SR // 2
    n_fft = 64
    # Before the change (less the analysis window) the output is style A's, sample for sample.
    np.testing.assert_allclose(outs["midi"][: t - n_fft], outs["a"][: t - n_fft], atol=1e-6)
    # After it and the 50 ms crossfade, it is B's spectrum, not A's.
    after = slice(t + int(0.05 * MODEL_SR) + n_fft, None)

    def spec(z):
        z = z[after]
        return np.log1p(np.abs(np.fft.rfft(z[: z.size // 64 * 64].reshape(-1, 64), axis=-1)))

    to_b = np.mean((spec(outs["midi"]) - spec(outs["b"])) ** 2)
    to_a = np.mean((spec(outs["midi"]) - spec(outs["a"])) ** 2)
    assert to_b < 0.2 * to_a


def test_bundled_style_block_sizes_give_the_same_file(tmp_path, capsys):
    # A real trained style (a bundled model): the nets take a whole block of frames per call at
    # --block-size 4096 and one frame per call at 64; the files agree to the contract's 1e-5.
    from rtstyle.models import list_styles

    names = [r["name"] for r in list_styles() if r["bundled"] and not r["error"]]
    if not names:
        pytest.skip("no bundled model")
    y, sr = rtstyle.load_audio(ROOT_EXAMPLES / "speech.flac")
    src = tmp_path / "speech.wav"
    sf.write(src, y[: int(1.5 * sr)], sr, subtype="FLOAT")
    files = []
    for block in (64, 4096):
        out = tmp_path / f"o{block}.wav"
        code, _, err = main(capsys, "render", src, "-o", out, "--style", names[0],
                            "--block-size", block, "-q")
        assert code == 0, err
        files.append(sf.read(out, dtype="float32")[0])
    assert files[0].shape == files[1].shape == (int(1.5 * sr),)
    assert np.max(np.abs(files[0] - files[1])) <= 1e-5
    assert np.max(np.abs(files[0] - y[: int(1.5 * sr)])) > 0.01      # the style did something
