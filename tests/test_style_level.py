"""A style's output level trim (rtstyle.style_level, TransformConfig(level=True)): applied last,
after every envelope stage, scaled by strength, and chosen so content keeps the limiter's share
within the promise."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SR, speechlike
from rtstyle.config import TransformConfig
from rtstyle.errors import ParameterError
from rtstyle.models import Model
from rtstyle.stream.streamer import Streamer, process
from rtstyle.style_level import TARGET_LIMITED, measure_level_trim
from rtstyle.style_ref import statistics_net


def stats_model(level: bool, trim_db: float = 0.0) -> Model:
    """A two-style statistics net with made-up statistics (a tilt), level trim on style 0."""
    import torch

    net = statistics_net(bins=513, sr=SR, hop_length=256, n_styles=2, embed_dim=2, level=level)
    bands = net.config.bands
    tilt = torch.linspace(2.0, -2.0, bands)
    net.set_style_stats(0, tilt, torch.ones(bands))
    net.set_style_stats(1, -tilt, torch.ones(bands))
    with torch.no_grad():
        net.style_embedding.weight.copy_(torch.eye(2))
    if level:
        net.set_style_level(0, trim_db)
    net.eval().requires_grad_(False)
    return Model(name="t", path="t", card={}, net=net, styles=["a", "b"], sr=SR, n_fft=1024,
                 hop_length=256, bundled=False)


@pytest.mark.parametrize("envelope", ["follow", "free"])
@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_the_trim_scales_the_output_by_its_factor(envelope, strength):
    y = speechlike(duration=2.0) * 0.1            # far under the limiter: the path is linear
    plain = process(y, sr=SR, model=[(stats_model(False), "a")], envelope=envelope,
                    strength=strength)
    trimmed = process(y, sr=SR, model=[(stats_model(True, -6.0), "a")], envelope=envelope,
                      strength=strength)
    factor = 1.0 + strength * (10 ** (-6.0 / 20) - 1.0)
    # the trim multiplies magnitudes frame by frame and the phase stage is linear in them:
    # the outputs differ by that factor up to float32 rounding of values of this scale
    scale = float(np.max(np.abs(plain)))
    np.testing.assert_allclose(trimmed, factor * plain, atol=1e-5 * scale)


def test_a_morph_interpolates_the_trim():
    """Style a trimmed by -6 dB, b not: halfway between them the trim is -3 dB (the morph mixes
    the styles' rows, dB included). The frame energy follows the input, so each output's level
    against the input's is the trim, up to what the phase stage changes (a few %)."""
    y = speechlike(duration=3.0) * 0.1
    model = stats_model(True, -6.0)
    rms_in = float(np.sqrt(np.mean(y ** 2)))
    level = {}
    for morph in (0.0, 0.5):
        out = process(y, sr=SR, model=[(model, "a"), (model, "b")], morph=morph)
        level[morph] = 20 * np.log10(float(np.sqrt(np.mean(out ** 2))) / rms_in)
    b = process(y, sr=SR, model=[(model, "b")])
    level[1.0] = 20 * np.log10(float(np.sqrt(np.mean(b ** 2))) / rms_in)
    # 0.5 dB: the phase stage's energy change, the same for all three (measured ~0.1 dB)
    assert level[0.0] - level[1.0] == pytest.approx(-6.0, abs=0.5)
    assert level[0.5] - level[1.0] == pytest.approx(-3.0, abs=0.5)


def test_level_needs_its_flag_and_a_finite_number():
    with pytest.raises(ParameterError, match="level=True"):
        stats_model(False).net.set_style_level(0, -1.0)
    with pytest.raises(ParameterError, match="finite"):
        stats_model(True).net.set_style_level(0, float("nan"))
    with pytest.raises(ParameterError, match="level"):
        TransformConfig(output="residual", level=True)
    assert stats_model(False).net.output_level("a") is None


def test_a_net_before_level_loads_without_it():
    cfg = TransformConfig.from_dict({k: v for k, v in TransformConfig(output="gain").to_dict()
                                     .items() if k != "level"})
    assert cfg.level is False


def test_the_measured_trim_keeps_every_clip_within_the_promise():
    """Made-up statistics (a steep tilt toward the low bands) that make the output peakier at
    equal energy: at trim 0 the limiter works on more than the promise allows. The trim found
    keeps each peak-normalised content clip's limited share within the target."""
    import torch

    model = stats_model(True)
    bands = model.net.config.bands
    model.net.set_style_stats(0, torch.linspace(3.0, -3.0, bands), torch.ones(bands))
    clips = [speechlike(duration=3.0, seed=k) for k in range(3)]
    trim = measure_level_trim(model, 0, clips, sr=SR)
    assert -3.0 < trim < 0.0            # needed, and found within the bound
    model.net.set_style_level(0, trim)
    for y in clips:
        y = (y / np.max(np.abs(y)) * 10 ** (-1 / 20)).astype(np.float32)
        st = Streamer([(model, 0)], sr=SR)
        st.feed(y)
        st.flush()
        assert st.limited_samples <= TARGET_LIMITED * len(y) + 1
