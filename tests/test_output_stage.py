"""The output stage: look-ahead limiter (ceiling −0.1 dBFS) and the mixer (mix, gain, bypass)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SR, speechlike, vowel

from rtstyle.dsp.limiter import StreamingLimiter
from rtstyle.errors import ParameterError
from rtstyle.stream import Streamer

CEIL = np.float32(10 ** (-0.1 / 20))
L = round(0.0015 * SR)
SMOOTH = round(0.020 * SR)


def _limit(x, block=None, **kw):
    lim = StreamingLimiter(sr=SR, channels=x.shape[0], **kw)
    block = block or x.shape[1]
    parts = [lim.feed(x[:, i:i + block]) for i in range(0, x.shape[1], block)]
    return np.concatenate(parts + [lim.flush()], axis=1), lim


def test_limiter_is_a_pure_delay_below_the_ceiling():
    x = np.stack([speechlike(SR, duration=1.0), 0.9 * vowel(SR, duration=1.0)]).astype(np.float32)
    out, lim = _limit(x, block=100)
    assert lim.latency == L and out.shape == (2, x.shape[1] + L)
    assert np.array_equal(out[:, L:], x) and not out[:, :L].any()
    assert lim.limited_samples == 0


@pytest.mark.parametrize("scale", [1.5, 4.0, 30.0])
def test_limiter_holds_the_ceiling_with_a_smooth_gain(scale):
    rng = np.random.default_rng(1)
    quiet_then_loud = np.concatenate([0.1 * np.ones(2000), scale * np.ones(3000), 0.2 * np.ones(4000)])
    x = (quiet_then_loud * np.sin(2 * np.pi * 220 * np.arange(9000) / SR))[None]
    x = np.concatenate([x, scale * rng.uniform(-1, 1, (1, 9000))])   # and loud noise
    for ch in range(2):
        out, lim = _limit(x[ch:ch + 1], block=97)
        assert np.abs(out).max() <= CEIL
        assert lim.limited_samples > 0
    out, _ = _limit(x[:1])
    sig = x[0]
    ok = np.abs(sig) > 0.05
    gain = out[0, L:][ok] / sig[ok]
    assert gain.max() <= 1.0 + 1e-6 and gain.min() > 0
    # The attack is spread over the look-ahead: no step larger than 1/L between valid samples
    # one sample apart (a hard clip would jump at once).
    idx = np.flatnonzero(ok)
    adjacent = np.diff(idx) == 1
    assert np.abs(np.diff(gain))[adjacent].max() <= 1.0 / L + 1e-6


def test_limiter_stream_equals_whole():
    rng = np.random.default_rng(2)
    x = 3.0 * rng.standard_normal((2, 5000))
    ref, _ = _limit(x)
    for block in (1, 64, 65, 511, 4096):
        out, _ = _limit(x, block=block)
        assert np.array_equal(out, ref), block


@pytest.mark.parametrize("kw,needle", [(dict(ceiling_db=0.5), "ceiling_db=0.5"),
                                       (dict(lookahead_ms=0), "lookahead_ms=0"),
                                       (dict(release_ms=-1), "release_ms=-1")])
def test_limiter_bad_parameters(kw, needle):
    with pytest.raises(ParameterError, match=needle):
        StreamingLimiter(sr=SR, **kw)


def _run(st, y, block=256):
    parts = [st.feed(y[..., i:i + block]) for i in range(0, y.shape[-1], block)]
    return np.concatenate(parts + [st.flush()], axis=-1)


@pytest.mark.parametrize("kw", [dict(mix=0.0), dict(bypass=True)])
def test_dry_path_is_the_input_delay_aligned(kw):
    y = speechlike(SR, duration=0.5).astype(np.float32)
    st = Streamer(sr=SR, phase_init="random", **kw)    # the wet signal differs from the input
    out = _run(st, y, block=333)
    np.testing.assert_allclose(out[st.latency:], y, atol=1e-6)
    assert np.abs(out[:st.latency]).max() < 1e-6


def test_gain_and_half_mix():
    y = speechlike(SR, duration=0.5).astype(np.float32)
    wet = _run(Streamer(sr=SR, phase_init="random"), y)
    half = _run(Streamer(sr=SR, phase_init="random", gain_db=20 * np.log10(0.5)), y)
    np.testing.assert_allclose(half, 0.5 * wet, atol=1e-6)
    assert not _run(Streamer(sr=SR, gain_db=-np.inf), y).any()
    mixed = _run(Streamer(sr=SR, phase_init="random", mix=0.25), y)
    st = Streamer(sr=SR)
    dry = np.concatenate([np.zeros(st.latency, np.float32), y])
    np.testing.assert_allclose(mixed, 0.25 * wet + 0.75 * dry, atol=1e-6)


def test_set_acts_on_the_input_timeline_and_glides():
    y = vowel(SR, duration=1.0).astype(np.float32) * 0.5
    st = Streamer(sr=SR)
    at = 10_000
    parts = [st.feed(y[:at])]
    st.set("gain_db", -np.inf)           # at input sample `at`: heard from at + latency
    parts += [st.feed(y[at:]), st.flush()]
    out = np.concatenate(parts)
    ref = _run(Streamer(sr=SR), y)
    t = at + st.latency
    np.testing.assert_array_equal(out[:t], ref[:t])          # untouched before
    assert not out[t + SMOOTH:].any()                        # silent after the glide
    ramp = out[t:t + SMOOTH] / np.where(ref[t:t + SMOOTH] == 0, 1, ref[t:t + SMOOTH])
    mid = np.abs(ref[t:t + SMOOTH]) > 0.05
    assert np.all(np.diff(ramp[mid]) <= 1e-6)                # a falling glide, no jump
    assert 0.2 < ramp[mid][len(ramp[mid]) // 2] < 0.8


@pytest.mark.parametrize("name,value,needle", [("mix", 1.5, "mix=1.5"),
                                               ("gain_db", "loud", "gain_db='loud'"),
                                               ("gain_db", 40.0, "gain_db=40.0"),
                                               ("bypass", "maybe", "bypass='maybe'"),
                                               ("wetness", 1.0, "'wetness'.*mix, gain_db, bypass, "
                                                "strength, morph, style")])
def test_bad_output_parameters(name, value, needle):
    st = Streamer(sr=SR)
    with pytest.raises(ParameterError, match=needle):
        st.set(name, value)
    if name in ("mix", "gain_db", "bypass"):
        with pytest.raises(ParameterError, match=needle):
            Streamer(sr=SR, **{name: value})


def test_the_ceiling_constant_reaches_the_limiter(monkeypatch):
    """CEILING_DBFS is what the Streamer's limiter holds (it used to be a number nothing read):
    moved to -6 dBFS, a 0.9-peak tone comes out at 10 ** (-6 / 20)."""
    import rtstyle.stream.streamer as streamer
    from rtstyle.stream import CEILING_DBFS

    assert CEILING_DBFS == -0.1
    x = 0.9 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
    monkeypatch.setattr(streamer, "CEILING_DBFS", -6.0)
    st = Streamer(sr=SR)
    y = np.concatenate([st.feed(x), st.flush()])
    ceiling = 10 ** (-6.0 / 20)
    assert np.max(np.abs(y)) <= ceiling and np.max(np.abs(y)) > 0.99 * ceiling


def test_the_controls_list_holds_the_output_stage_parameters():
    """``rtstyle.constants.CONTROLS`` (light: ``--help`` and ``live`` import it before torch)
    names what Streamer.set takes; the output stage's own list must stay inside it."""
    from rtstyle.constants import CONTROLS
    from rtstyle.stream.mixer import MIX_PARAMS

    assert CONTROLS[:len(MIX_PARAMS)] == tuple(MIX_PARAMS)
    assert set(CONTROLS) - set(MIX_PARAMS) == {"strength", "morph", "style"}
