"""rtstyle.stream.Streamer: the streaming protocol, exact latency, identity reconstruction."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SR, harmonic, speechlike, vowel
from rtstyle.errors import ParameterError
from rtstyle.stream import Streamer, process

#: Stream equals offline (DESIGN.md): block-wise vs whole-file output, float32 rounding.
BLOCK_TOL = 1e-5
#: The output limiter's look-ahead at SR (1.5 ms).
LIMITER_LOOKAHEAD = round(0.0015 * SR)
#: Identity with the input's own phase reproduces the input after the latency.
IDENTITY_TOL = 1e-4


def _run(st, y, block=None):
    n = y.shape[-1]
    block = block or max(n, 1)
    parts = [st.feed(y[..., i:i + block]) for i in range(0, n, block)]
    parts.append(st.flush())
    return np.concatenate(parts, axis=-1)


@pytest.fixture(scope="module")
def speech():
    return speechlike(SR, duration=2.0)


@pytest.mark.parametrize("init", ["input", "rtpghi", "random"])
def test_block_sizes_give_the_same_output(init):
    y = speechlike(SR, duration=0.5, seed=3)
    ref = _run(Streamer(sr=SR, phase_init=init), y)
    st = Streamer(sr=SR, phase_init=init)
    assert ref.shape == (y.size + st.latency,)
    for block in (1, 64, 65, 511, 4096):
        out = _run(st, y, block)              # flush() resets, so one object serves all
        assert out.shape == ref.shape, block
        np.testing.assert_allclose(out, ref, atol=BLOCK_TOL, rtol=0, err_msg=f"block={block}")


@pytest.mark.parametrize("n_fft,hop,lookahead", [(1024, 256, 1), (512, 128, 0), (512, 256, 3)])
@pytest.mark.parametrize("pos", [0, 1, 700, 2047])
def test_impulse_comes_out_at_t_plus_latency(n_fft, hop, lookahead, pos):
    x = np.zeros(4000, np.float32)
    x[pos] = 0.5
    st = Streamer(sr=SR, n_fft=n_fft, hop_length=hop, lookahead=lookahead)
    assert st.engine_latency == n_fft + (lookahead - 1) * hop
    assert st.latency == st.engine_latency + LIMITER_LOOKAHEAD
    out = _run(st, x, 65)
    assert out.size == x.size + st.latency
    expect = np.zeros_like(out)
    expect[pos + st.latency] = 0.5
    np.testing.assert_allclose(out, expect, atol=1e-6)


def test_latency_numbers():
    # window + (look-ahead - 1) hops + the limiter's 1.5 ms look-ahead
    assert Streamer(sr=22050, n_fft=1024, hop_length=256, lookahead=1).latency == 1024 + 33
    st = Streamer(sr=48000, n_fft=512, hop_length=128, lookahead=1)
    assert st.latency == 512 + 72 and st.latency_ms == pytest.approx(12.1667, abs=1e-3)


def test_outputs_keep_pace_with_inputs():
    # After every completed hop, samples out == samples in: no hidden extra delay.
    st = Streamer(sr=SR, n_fft=512, hop_length=128)
    n_in = n_out = 0
    for _ in range(40):
        n_in += 50
        n_out += st.feed(np.zeros(50, np.float32)).size
        assert n_out <= n_in
        if n_in >= 256:                          # the first frame is complete (n_fft // 2)
            assert n_in - n_out < 128


@pytest.mark.parametrize("lookahead", [0, 1, 3])
def test_identity_input_phase_reproduces_input(speech, lookahead):
    st = Streamer(sr=SR, lookahead=lookahead)
    out = _run(st, speech, 511)
    L = st.latency
    assert np.abs(out[:L]).max() < IDENTITY_TOL
    np.testing.assert_allclose(out[L:], speech, atol=IDENTITY_TOL, rtol=0)
    np.testing.assert_allclose(process(speech, sr=SR, lookahead=lookahead), speech,
                               atol=IDENTITY_TOL, rtol=0)


def test_stereo_channels_stay_separate():
    y = np.stack([vowel(SR, duration=1.0), harmonic(SR, f0=330.0, duration=1.0)])
    st = Streamer(sr=SR, channels=2)
    out = _run(st, y, 300)
    assert out.shape == (2, y.shape[1] + st.latency) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, st.latency:], y, atol=IDENTITY_TOL, rtol=0)
    aligned = process(y, sr=SR)
    assert aligned.shape == y.shape
    np.testing.assert_allclose(aligned, y, atol=IDENTITY_TOL, rtol=0)
    # A silent channel stays silent beside a loud one.
    z = np.stack([y[0], np.zeros_like(y[0])])
    assert np.abs(process(z, sr=SR, phase_init="random")[1]).max() == 0.0


@pytest.mark.parametrize("init", ["rtpghi", "random"])
@pytest.mark.parametrize("lookahead", [0, 1])
def test_other_phase_inits_run_and_are_finite(speech, init, lookahead):
    st = Streamer(sr=SR, phase_init=init, lookahead=lookahead)
    out = _run(st, speech[: SR // 2], 256)
    assert out.shape == (SR // 2 + st.latency,)
    assert np.isfinite(out).all() and np.abs(out).max() > 0.01


def test_nonfinite_block_becomes_zeros_and_is_counted():
    y = vowel(SR, duration=1.0)
    bad = y.copy()
    bad[5000:5512] = np.nan
    bad[9000] = np.inf
    st = Streamer(sr=SR)
    out = _run(st, bad, 512)
    assert st.nonfinite_samples == 513
    assert np.isfinite(out).all()
    clean = y.copy()
    clean[5000:5512] = 0.0
    clean[9000] = 0.0
    np.testing.assert_allclose(out[st.latency:], clean, atol=IDENTITY_TOL, rtol=0)
    st.reset()
    assert st.nonfinite_samples == 0


def test_layouts_and_empty_feeds():
    st = Streamer(sr=SR)
    assert st.feed(np.zeros(0, np.float32)).shape == (0,)
    assert st.flush().shape == (0,)
    mono = st.feed(np.zeros(2048, np.float32))
    assert mono.ndim == 1 and mono.dtype == np.float32
    st.reset()
    two_d = st.feed(np.zeros((1, 2048), np.float32))
    assert two_d.shape == (1, mono.size)
    assert st.flush().shape == (1, 2048 + st.latency - mono.size)
    st2 = Streamer(sr=SR, channels=2)
    out = st2.feed(np.zeros((2, 3000), np.float32))
    assert out.ndim == 2 and out.shape[0] == 2


def test_short_input_and_restart():
    st = Streamer(sr=SR)
    y = np.full(100, 0.25, np.float32)           # shorter than half a window
    out = _run(st, y, 7)
    assert out.size == 100 + st.latency
    np.testing.assert_allclose(out[st.latency:], y, atol=IDENTITY_TOL)
    assert np.array_equal(_run(st, y, 7), out)    # flush() left a fresh stream


def test_output_is_limited_at_the_ceiling_and_counted():
    y = 3.0 * vowel(SR, duration=0.5)      # peak 1.5
    st = Streamer(sr=SR)
    out = _run(st, y)
    assert np.abs(out).max() <= np.float32(10 ** (-0.1 / 20))
    assert st.limited_samples > 0
    # Limited, not clipped: the output is the input times a gain that moves smoothly.
    lat = st.latency
    gain = out[lat:][np.abs(y) > 0.3] / y[np.abs(y) > 0.3]
    assert gain.min() > 0.5 and gain.max() <= 1.0 + 1e-3
    quiet = _run(st.__class__(sr=SR), 0.5 * vowel(SR, duration=0.5))
    assert np.abs(quiet).max() < 0.6


@pytest.mark.parametrize("kw,needle", [
    (dict(hop_length=300), "hop_length=300"),
    (dict(hop_length=1024), "hop_length=1024"),
    (dict(n_fft=1023, hop_length=341), "n_fft=1023"),
    (dict(lookahead=4), "lookahead=4"),
    (dict(lookahead=-1), "lookahead=-1"),
    (dict(sr=0), "sr=0"),
    (dict(sr=-22050), "sr=-22050"),
    (dict(sr=500), "sr=500 must be a sample rate in 1000..768000"),   # engine sizes would not fit
    (dict(sr=22050.5), "sr=22050.5 must be a whole number of Hz"),
    (dict(phase_init="zero"), "phase_init='zero'"),
    (dict(phase_iters=-1), "phase_iters=-1"),
    (dict(momentum=1.0), "momentum=1.0"),
    (dict(channels=0), "channels=0"),
    (dict(device="tpu"), "device='tpu'"),
])
def test_bad_parameters(kw, needle):
    args = dict(sr=SR) | kw
    with pytest.raises(ParameterError, match=needle.replace("(", r"\(")):
        Streamer(args.pop("model", None), **args)


@pytest.mark.parametrize("sr", [22050.0, 16e3, np.float64(44100.0), np.int64(22050)])
def test_a_whole_float_or_numpy_rate_is_a_rate(sr, tmp_path):
    """``sr=16e3`` or a rate read back as a float is the rate it names, as in librosa; the
    render API, load_audio and the Streamer agree (one validator)."""
    import soundfile as sf

    import rtstyle
    from rtstyle import load_audio

    assert Streamer(sr=sr).sr == int(sr) and type(Streamer(sr=sr).sr) is int
    y = np.zeros(4096, np.float32)
    out, _ = rtstyle.render(y, sr=sr, style="identity")
    assert out.shape == y.shape
    sf.write(tmp_path / "a.wav", y, 8000)
    z, got = load_audio(tmp_path / "a.wav", sr=sr)
    assert got == int(sr) and type(got) is int and z.shape[-1] == round(4096 * int(sr) / 8000)


def test_bad_blocks():
    st = Streamer(sr=SR, channels=2)
    with pytest.raises(ParameterError, match="expected 2 channels.*got 3"):
        st.feed(np.zeros((3, 10), np.float32))
    with pytest.raises(ParameterError, match="expected 2 channels"):
        st.feed(np.zeros(10, np.float32))
    with pytest.raises(ParameterError, match="dtype"):
        st.feed(np.zeros((2, 10), np.int16))
    with pytest.raises(ParameterError, match="numpy"):
        st.feed([0.0, 0.0])
    with pytest.raises(ParameterError, match="channels"):
        process(np.zeros(100, np.float32), sr=SR, channels=1)


def test_unknown_model_is_a_model_error():
    from rtstyle.errors import ModelError

    with pytest.raises(ModelError, match="no model named 'mystyle'"):
        Streamer("mystyle", sr=SR)


def test_dead_api_is_gone():
    """Issue 13, item 6: what nothing used, or what changed nothing, is removed."""
    import rtstyle.transfer
    from rtstyle._progress import progress_bar
    from rtstyle._validate import valid_audio
    from rtstyle.stream.mixer import OutputStage

    assert not hasattr(Streamer, "recorded_targets")      # take_targets() is the one reader
    assert not hasattr(OutputStage, "current")
    with pytest.raises(TypeError):
        valid_audio(np.zeros(4, np.float32), max_channels=1)
    assert not hasattr(rtstyle.transfer, "_progress")     # one helper: rtstyle._progress
    assert progress_bar(0, desc="x", unit="it") is None
    assert progress_bar(5, desc="x", unit="it", enabled=False) is None
    assert "identity transform for now" not in Streamer.__doc__
