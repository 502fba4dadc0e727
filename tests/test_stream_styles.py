"""Streamer with style nets: stream equals offline, strength, morph, switching with priming."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MODEL_HOP, MODEL_N_FFT, MODEL_SR, save_tiny_model, speechlike

from rtstyle.errors import ModelError, ParameterError
from rtstyle.models import load_model
from rtstyle.stream import Streamer
from rtstyle.stream.styles import StyleBank

SR = MODEL_SR


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    save_tiny_model(folder, "solo", styles=("bright",))
    save_tiny_model(folder, "duo", styles=("warm", "cold"))
    return folder


def _run(st, y, block):
    parts = [st.feed(y[..., i:i + block]) for i in range(0, y.shape[-1], block)]
    return np.concatenate(parts + [st.flush()], axis=-1)


def test_stream_equals_offline_with_a_net(models):
    y = speechlike(SR, duration=0.6).astype(np.float32)
    kw = dict(sr=SR, models_dir=models)
    ref = _run(Streamer("solo", **kw), y, y.size)
    assert ref.shape == (y.size + Streamer("solo", **kw).latency,)
    for block in (1, 64, 65, 511, 4096):
        # The nets run in float64, so a block of frames in one call equals frame-by-frame
        # calls to ~1e-12; the contract's float32 tolerance holds with room to spare.
        np.testing.assert_allclose(_run(Streamer("solo", **kw), y, block), ref, atol=1e-5,
                                   err_msg=f"block={block}")


def test_the_net_changes_the_sound_and_strength_zero_does_not(models):
    y = speechlike(SR, duration=0.5).astype(np.float32)
    ident = _run(Streamer(sr=SR, n_fft=MODEL_N_FFT, hop_length=MODEL_HOP), y, 256)
    styled = _run(Streamer("solo", sr=SR, models_dir=models), y, 256)
    zero = _run(Streamer("solo", sr=SR, models_dir=models, strength=0.0), y, 256)
    assert np.abs(styled - ident).max() > 1e-2
    np.testing.assert_allclose(zero, ident, atol=1e-5)
    listed = _run(Streamer(["identity", "solo"], sr=SR, models_dir=models), y, 256)
    np.testing.assert_allclose(listed, ident, atol=1e-5)     # the first entry is active


def _bank(models, styles, **kw):
    # The blend tests check the mechanics on the nets' own levels (envelope='free'); the
    # envelope follower is tested on its own below.
    kw.setdefault("envelope", "free")
    return StyleBank(styles, channels=1, sr=SR, n_fft=MODEL_N_FFT, hop_length=MODEL_HOP,
                     models_dir=models, **kw)


def _frames(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return np.abs(rng.standard_normal((n, 1, MODEL_N_FFT // 2 + 1))).astype(np.float32)


def test_switch_primes_the_idle_net_and_crossfades(models):
    X = _frames()
    alone = _bank(models, ["duo:cold"])
    ref = [alone.frame(x) for x in X]
    bank = _bank(models, ["solo", "duo:cold"], crossfade_ms=4.0)   # 4 ms = 4 hops at 16 kHz
    out = []
    for t, x in enumerate(X):
        if t == 30:
            bank.set("style", 1)
        out.append(bank.frame(x))
    fade = bank._crossfade_frames
    assert fade == 4
    # After the crossfade the primed net is exactly where it would be had it run all along.
    np.testing.assert_allclose(np.array(out[30 + fade:]), np.array(ref[30 + fade:]), atol=1e-5)
    # During it, a blend between the two.
    old = _bank(models, ["solo"])
    ref_old = [old.frame(x) for x in X]
    c = 1 / (fade + 1)
    np.testing.assert_allclose(out[30], (1 - c) * ref_old[30] + c * ref[30], atol=1e-5)


def test_morph_interpolates_embeddings_of_one_net_and_blends_others(models):
    X = _frames(20)
    cold = _bank(models, ["duo:cold"])
    ref = np.array([cold.frame(x) for x in X])
    bank = _bank(models, ["duo:warm", "duo:cold"], morph=1.0)
    np.testing.assert_allclose(np.array([bank.frame(x) for x in X]), ref, atol=1e-5)
    half = _bank(models, ["duo:warm", "duo:cold"], morph=0.5)
    mid = np.array([half.frame(x) for x in X])
    assert np.abs(mid - ref).max() > 1e-3
    # Different nets: the morph blends their outputs.
    solo = np.array([_bank(models, ["solo"]).frame(x) for x in X[:1]])
    mixed = _bank(models, ["duo:cold", "solo"], morph=0.5)
    np.testing.assert_allclose(mixed.frame(X[0]), 0.5 * ref[0] + 0.5 * solo[0], atol=1e-5)


def test_controls_glide_without_jumps(models):
    y = speechlike(SR, duration=0.5).astype(np.float32)
    st = Streamer(["solo", "duo:cold"], sr=SR, models_dir=models)
    parts = []
    for i in range(0, y.size, 160):
        if i == 3200:
            st.set("strength", 0.0)
        if i == 4800:
            st.set("style", 1)
        if i == 6400:
            st.set("morph", 1.0)
        parts.append(st.feed(y[i:i + 160]))
    out = np.concatenate(parts + [st.flush()])
    assert np.isfinite(out).all()
    # No click: no sample-to-sample step larger than the steady streams of each setting have
    # (the random test nets make a rough sound; 10 % margin for the blends in between).
    steady = max(np.abs(np.diff(_run(Streamer(s, sr=SR, models_dir=models, strength=k), y, 160))).max()
                 for s in ("solo", "duo:cold") for k in (0.0, 1.0))
    assert np.abs(np.diff(out)).max() <= 1.1 * steady


def test_style_list_errors(models, tmp_path):
    with pytest.raises(ParameterError, match="sr=22050"):
        Streamer("solo", sr=22050, models_dir=models)
    with pytest.raises(ModelError, match="no style 'hot'"):
        Streamer("duo:hot", sr=SR, models_dir=models)
    st = Streamer(["solo", "duo"], sr=SR, models_dir=models)
    with pytest.raises(ParameterError, match="style=2 is beyond the style list"):
        st.set("style", 2)
    with pytest.raises(ParameterError, match="strength=1.5"):
        st.set("strength", 1.5)
    with pytest.raises(ParameterError, match="strength and morph need a style"):
        Streamer(sr=SR, strength=0.5)
    save_tiny_model(tmp_path, "ahead", lookahead=2)
    with pytest.raises(ParameterError, match="look-ahead"):
        Streamer(str(tmp_path / "ahead.json"), sr=SR)
    assert st.styles == ["solo", "duo:warm"]
    assert load_model("duo", models_dir=models).styles == ["warm", "cold"]


def test_cuda_falls_back_to_the_cpu_with_one_warning(models, caplog):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the fallback is not exercised")
    with caplog.at_level("WARNING", logger="rtstyle"):
        st = Streamer("solo", sr=SR, models_dir=models, device="cuda")
    assert st.device == "cpu"
    assert [r.message for r in caplog.records].count(
        "device=cuda: CUDA is not available here; running on the CPU") == 1
    y = speechlike(SR, duration=0.2).astype(np.float32)
    assert np.isfinite(_run(st, y, 256)).all()


def test_envelope_follow_keeps_each_frames_energy(models):
    X = _frames(30)
    X[10:15] = 0.0                                     # a silence stays silent
    follow = _bank(models, ["solo"], envelope="follow")
    free = _bank(models, ["solo"])
    for x in X:
        a, b = follow.frame(x), free.frame(x)
        e_in = np.sum(np.expm1(x) ** 2)
        np.testing.assert_allclose(np.sum(np.expm1(a) ** 2), e_in, rtol=1e-4, atol=1e-9)
        # the spectral shape is the net's: the same up to one gain
        sa, sb = np.expm1(a), np.expm1(b)
        if e_in > 0:
            np.testing.assert_allclose(sa / np.linalg.norm(sa), sb / np.linalg.norm(sb),
                                       atol=1e-5)
