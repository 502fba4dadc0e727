"""Band statistics in the gain net: the input's running long-term spectrum moves onto the
style's, level-free, silence kept, stream equals whole file, morphs interpolate, and training
stores each reference's statistics in the model."""

import numpy as np
import pytest
import torch

from rtstyle.config import TransformConfig
from rtstyle.dsp import band_stats
from rtstyle.dsp.gain import band_basis
from rtstyle.errors import ParameterError
from rtstyle.nn.transform import TransformNet
from test_transform import randomised, stream

SR, NFFT = 8000, 128
BINS = NFFT // 2 + 1
STATS = dict(bins=BINS, hidden=16, kernel_size=3, layers=2, n_styles=3, embed_dim=4,
             output="gain", bands=10, sr=SR, max_gain_db=40.0, dynamic_gain_db=6.0,
             stats=True, stats_frames=24)
# float64 throughout: the statistics are sums of up to stats_frames * bins terms, whose
# rounding (~sqrt(n) * 1e-16 of the values' scale, ~10) is far below every tolerance here.
TOL64 = 1e-9


def spectra(tilt_db_per_band: float, n: int = 200, seed: int = 0, batch: int = 1):
    """Stationary noise-like magnitudes (batch, bins, n) whose envelope tilts by the given dB
    per gain band, as log1p frames."""
    g = torch.Generator().manual_seed(seed)
    B = torch.from_numpy(band_basis(BINS, STATS["bands"], sr=SR)).double()
    pos = B @ torch.arange(STATS["bands"], dtype=torch.float64)          # band coordinate
    env = 10 ** (tilt_db_per_band * pos / 20)
    mag = env[None, :, None] * (0.5 + torch.rand(batch, BINS, n, generator=g, dtype=torch.float64))
    return torch.log1p(10.0 * mag)


def stats_only(config=None, styles=()):
    """A stats net whose learned parts are zero (out_proj and static_gain start at zero)."""
    net = TransformNet(TransformConfig(**(config or STATS))).double().eval()
    for k, (mean, spread) in enumerate(styles):
        net.set_style_stats(k, mean, spread)
    return net


def band_means(x: torch.Tensor, net: TransformNet, start: int) -> torch.Tensor:
    """RMS-weighted mean log band power of frames ``start:`` (bands,)."""
    S = torch.expm1(x[0, :, start:])
    return band_stats.reference_stats(S, net.stats_weights)[0]


def test_the_long_term_spectrum_moves_onto_the_styles():
    net = stats_only()
    ref = torch.expm1(spectra(+1.0, seed=5)[0])           # a bright style reference
    mean, spread = band_stats.reference_stats(ref, net.stats_weights)
    net.set_style_stats(1, mean, spread)
    x = spectra(-1.0)                                      # a dark input: 2 dB per band apart
    with torch.no_grad():
        y = net(x, 1)
    start = STATS["stats_frames"]                          # once the window is full
    before = band_means(x, net, start) - mean
    after = band_means(y, net, start) - mean
    # a level offset between input and style does not count (the frame energy stays the
    # input's): compare the shapes, i.e. the deviations from a constant
    mismatch = lambda d: float((d - d.mean()).abs().max())
    assert mismatch(before) > 1.5                          # ~9 dB of tilt, in nepers of power
    # the gain is applied through overlapping raised-cosine bands and measured through them
    # again, which blurs a tilt a little at the edge bands: a 10x smaller mismatch, not 0
    assert mismatch(after) < mismatch(before) / 10, (mismatch(before), mismatch(after))


def test_it_is_level_free_and_keeps_silence_and_energy():
    net = stats_only()
    ref = torch.expm1(spectra(+2.0, seed=5)[0])
    net.set_style_stats(0, *band_stats.reference_stats(ref, net.stats_weights))
    x = spectra(-2.0, n=120)
    x[..., 40:70] = 0.0                                    # a pause of digital silence
    S = torch.expm1(x)
    loud = torch.log1p(S * 100.0)                          # the same input 40 dB louder
    with torch.no_grad():
        y, y_loud = net(x, 0), net(loud, 0)
    assert (y[..., 40:70] == 0).all()                      # silence stays silence
    assert (y - x).abs().max() > 0.5                       # and the rest changed
    # louder input, the same output 40 dB louder (log1p is not scale-free, expm1 undoes it)
    torch.testing.assert_close(torch.expm1(y_loud), 100.0 * torch.expm1(y), rtol=TOL64 * 1e3,
                               atol=0)                     # log/exp of values ~1e3: 1e-6 rel
    e_in, e_out = S.square().sum(1), torch.expm1(y).square().sum(1)
    torch.testing.assert_close(e_out, e_in, rtol=TOL64, atol=0)   # each frame's energy kept


def test_spread_one_matches_how_far_each_band_swings():
    cfg = dict(STATS, stats_spread=1.0, stats_frames=60)
    net = stats_only(cfg)
    g = torch.Generator().manual_seed(3)
    base = torch.expm1(spectra(0.0, n=300))
    # the input's bands swing by +-8 dB from frame to frame, the style's by +-2 dB
    swing = lambda db: 10 ** (db * (2 * torch.rand(1, 1, 300, generator=g,
                                                      dtype=torch.float64) - 1) / 20)
    low = torch.arange(BINS) < BINS // 2                   # only the low half swings
    x_lin = base.clone()
    x_lin[:, low] *= swing(8.0)
    ref = base[0].clone()
    ref[low] *= swing(2.0)[0]
    mean, spread = band_stats.reference_stats(ref, net.stats_weights)
    net.set_style_stats(0, mean, spread)
    x = torch.log1p(x_lin)
    with torch.no_grad():
        y = net(x, 0)
    Lx = band_stats.band_log_power(x_lin[0, :, 60:], net.stats_weights)
    Ly = band_stats.band_log_power(torch.expm1(y)[0, :, 60:], net.stats_weights)
    # relative to the unchanged top band (the frame energy is re-matched every frame)
    rel = lambda L: (L[:3] - L[-1:]).std(dim=-1)
    # the ratio is bounded to 1/4..2, and the top band moves a little with the energy match
    assert torch.all(rel(Ly) < 0.6 * rel(Lx)), (rel(Lx), rel(Ly))


@pytest.mark.parametrize("weight,shape", [("rms", False), ("gated", False), ("gated", True)])
def test_stream_equals_whole_over_awkward_blocks_and_morphs_interpolate(weight, shape):
    net = randomised(TransformConfig(**dict(STATS, stats_weight=weight,
                                            stats_shape=shape))).double()
    for k in range(3):
        net.set_style_stats(k, torch.linspace(-1, 1, 10) * (k + 1), torch.full((10,), 1.0 + k))
    x = spectra(-1.0, n=120, batch=2)
    x[..., 30:45] = 0.0
    x[..., 60:75] = torch.log1p(torch.expm1(x[..., 60:75]) * 10 ** (-45 / 20))   # gated out
    e = 0.25 * net.embedding(0) + 0.75 * net.embedding(2)
    for style in (torch.tensor([0, 2]), e):
        with torch.no_grad():
            whole = net(x, style)
        for k in (1, 2, 7, 23, 64):
            out = stream(net, x, style, k)
            torch.testing.assert_close(out, whole, rtol=0, atol=TOL64)
    # prime(): the last receptive_field frames give the state of the whole history
    # (gated: the gate of the window's oldest frame looked a window further back)
    assert net.receptive_field == (STATS["stats_frames"] - 1) * (2 if weight == "gated" else 1)
    with torch.no_grad():
        whole = net(x, 1)
    net.prime(x[..., :100], 1)
    torch.testing.assert_close(net.feed(x[..., 100:], 1), whole[..., 100:], rtol=0,
                               atol=TOL64)
    # a morph's statistics are the same mixture of the styles' (least squares on embeddings)
    m, sp = net._style_stats(e, e[None])
    want = 0.25 * net.style_stats_mean[0] + 0.75 * net.style_stats_mean[2]
    torch.testing.assert_close(m[0, :, 0], want, rtol=0, atol=1e-9)


def test_shape_statistics_leave_a_loudness_swing_out_of_the_spread():
    """stats_shape: an input whose frames swing in level (syllables; here +-10 dB, inside the
    gate) gets the same spectral gain in every frame as its steady version: the output is the
    steady one's, scaled frame by frame. Plain log-power statistics count the swing in every
    band's spread, and the spread match turns it into a tilt that follows the loudness."""
    g = torch.Generator().manual_seed(7)
    x = spectra(-1.0, n=150)
    swing = 10 ** (10.0 * (2 * torch.rand(1, 1, 150, generator=g, dtype=torch.float64) - 1) / 20)
    swung = torch.log1p(torch.expm1(x) * swing)
    ref = torch.expm1(spectra(+1.5, seed=5)[0])
    tilt = {}
    for shape in (False, True):
        cfg = dict(STATS, stats_weight="gated", stats_shape=shape, stats_spread=1.0)
        net = stats_only(cfg)
        net.set_style_stats(0, *net.reference_stats(ref))
        with torch.no_grad():
            y, y_swung = torch.expm1(net(x, 0)), torch.expm1(net(swung, 0))
        # the swung output over the steady one, per frame and bin, over its mean per frame: 1
        # wherever the two got the same spectral gain
        r = (y_swung / (y * swing))[..., STATS["stats_frames"]:]
        tilt[shape] = float((r / r.mean(dim=-2, keepdim=True) - 1).abs().max())
    # float64 throughout; the running sums' rounding (TOL64) is far below 1e-6
    assert tilt[True] < 1e-6, tilt
    assert tilt[False] > 0.05, tilt        # the plain statistics do tilt with the loudness


def test_reference_stats_and_config_errors():
    net = stats_only()
    with pytest.raises(ValueError, match="silent"):
        band_stats.reference_stats(torch.zeros(BINS, 20, dtype=torch.float64),
                                   net.stats_weights)
    with pytest.raises(ParameterError, match="stats=True needs output='gain'"):
        TransformConfig(stats=True)
    with pytest.raises(ParameterError, match="stats_frames=1"):
        TransformConfig(output="gain", stats=True, stats_frames=1)
    with pytest.raises(ParameterError, match="stats_spread"):
        TransformConfig(output="gain", stats=True, stats_spread=1.5)
    with pytest.raises(ParameterError, match="stats_shape='yes' must be true or false"):
        TransformConfig(output="gain", stats=True, stats_shape="yes")
    with pytest.raises(ParameterError, match="without stats=True"):
        TransformNet(TransformConfig(output="gain")).set_style_stats(0, torch.zeros(40),
                                                                     torch.ones(40))
    # a card from before band statistics loads without them
    assert TransformConfig.from_dict({"output": "gain"}).stats is False
    assert TransformConfig.from_dict({"output": "gain", "stats": True}).stats_shape is False
    # the statistics are saved with the weights (state_dict), the power weights are not
    keys = set(stats_only().state_dict())
    assert {"style_stats_mean", "style_stats_spread"} <= keys and "stats_weights" not in keys


def test_the_level_gate_counts_quiet_frames_alike_and_ignores_noise_and_silence():
    """Gated weights: every frame within 40 dB of the window's loudest counts alike (so the
    quiet frames of speech are moved onto the style too), room noise below -70 dBFS and
    anything 40 dB under the window's peak never counts, and the decision is level-free."""
    n, window = 200, 24
    S = torch.expm1(spectra(0.0, n=n))[0]
    gain_db = torch.zeros(n, dtype=torch.float64)
    gain_db[50:100] = -30.0                # a quiet passage: counts
    gain_db[120:140] = -50.0               # 50 dB under the loud frames around it: does not
    S = S * 10 ** (gain_db / 20)
    level = band_stats.frame_level_db(S)
    w = band_stats.gated_weights(level, None, window)[0]
    assert bool((w[:120] == 1).all()) and bool((w[120:140] == 0).all())
    assert bool((w[140:] == 1).all())
    # the same input 20 dB quieter: the same decisions (the relative gate follows the input);
    # a full-scale sine's frames sit at 0 dB of frame_level_db, which places the floor
    quiet = band_stats.frame_level_db(S * 0.1)
    torch.testing.assert_close(quiet, level - 20.0, rtol=0, atol=1e-9)
    assert torch.equal(band_stats.gated_weights(quiet, None, window)[0], w)
    t = torch.arange(2 * (BINS - 1) * 8, dtype=torch.float64) / SR
    sine = torch.sin(2 * torch.pi * 1000.0 * t)
    spec = torch.stft(sine, 2 * (BINS - 1), hop_length=BINS - 1,
                      window=torch.hann_window(2 * (BINS - 1), periodic=True,
                                               dtype=torch.float64),
                      center=True, return_complex=True).abs()
    # the middle frames of a full-scale sine read 0 dB (edges: half-empty frames)
    torch.testing.assert_close(band_stats.frame_level_db(spec)[0, 3:-3],
                               torch.zeros(spec.shape[-1] - 6, dtype=torch.float64),
                               rtol=0, atol=0.05)   # a sine between bins: Parseval holds to ~1 %
    hiss = band_stats.frame_level_db(spec * 10 ** (-75 / 20))
    assert bool((band_stats.gated_weights(hiss, None, window) == 0).all())  # under the floor
    # and a net with gated weights takes the quiet passage's spectrum into its statistics
    mean_rms = band_stats.reference_stats(S, stats_only().stats_weights)[0]
    mean_gated = band_stats.reference_stats(S, stats_only().stats_weights, weighting="gated",
                                            stats_frames=window)[0]
    loud_only = band_stats.reference_stats(S[:, :50], stats_only().stats_weights)[0]
    # the quiet frames lower the gated mean level by ~30 dB x their share; RMS weights hardly
    assert float((loud_only - mean_gated).mean()) > 4 * float((loud_only - mean_rms).mean())
