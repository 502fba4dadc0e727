"""The gain-mode style net: a smooth gain curve on the input, identity at init, energy kept,
stream equals whole file; and the band basis it is made of."""

import numpy as np
import pytest
import torch

from rtstyle.config import TransformConfig
from rtstyle.dsp.gain import band_basis, match_frame_energy
from rtstyle.errors import ParameterError
from rtstyle.nn.transform import TransformNet
from test_transform import frames, randomised, stream

GAIN = dict(bins=65, hidden=24, kernel_size=3, layers=3, n_styles=3, embed_dim=8,
            output="gain", bands=12, sr=8000)


def test_band_basis_is_a_smooth_partition_of_unity():
    B = band_basis(513, 40, sr=22050)
    assert B.shape == (513, 40) and B.dtype == np.float32
    np.testing.assert_allclose(B.sum(axis=1), 1.0, rtol=1e-6)    # a flat gain stays flat
    assert (B >= 0).all()
    # each band is one bump: rises to its peak, then falls (no ripple a gain could hide in)
    for k in range(40):
        peak = int(np.argmax(B[:, k]))
        assert np.all(np.diff(B[:peak + 1, k]) >= -1e-7) and np.all(np.diff(B[peak:, k]) <= 1e-7)
    # mel spacing: low bands are narrower in Hz than high ones
    width = (B > 0).sum(axis=0)
    assert width[1] < width[-2]
    with pytest.raises(ParameterError, match="bands=1"):
        band_basis(513, 1, sr=22050)


def test_match_frame_energy_keeps_each_frames_energy_and_silence():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 40, 9, generator=g)
    S = torch.rand(2, 40, 9, generator=g) * 7
    S[..., 3] = 0                                   # a silent frame stays silent
    out = match_frame_energy(ref, S)
    e_ref, e_out = ref.square().sum(-2), out.square().sum(-2)
    keep = torch.ones(9, dtype=torch.bool)
    keep[3] = False
    # a float32 sum of 40 squares and a sqrt: ~sqrt(40) eps relative (7.5e-7); 1e-5 is 13x that
    torch.testing.assert_close(e_out[..., keep], e_ref[..., keep], rtol=1e-5, atol=0)
    assert not out[..., 3].any()


def test_gain_net_is_the_identity_at_init_and_keeps_energy_when_trained():
    net = TransformNet(TransformConfig(**GAIN)).eval()
    x = frames(bins=65)
    with torch.no_grad():
        y = net(x, 1)
    # log1p(expm1(x)) in float32: a few eps of x's scale (x < 4 here)
    torch.testing.assert_close(y, x, rtol=0, atol=8 * torch.finfo(torch.float32).eps * 4)
    net = randomised(TransformConfig(**GAIN))
    with torch.no_grad():
        y = net(x, torch.tensor([0, 2]))
    assert (y - x).abs().max() > 0.1                   # the random net does change the spectrum
    e_in, e_out = torch.expm1(x).square().sum(1), torch.expm1(y).square().sum(1)
    # float32 through log1p and back through expm1: each magnitude carries ~x * eps relative
    # error (x < 4 here), twice for the square: ~1e-6 per bin; 1e-4 leaves a wide margin
    torch.testing.assert_close(e_out, e_in, rtol=1e-4, atol=0)


def test_gain_is_smooth_and_bounded():
    """The output over the input is a gain curve made of the bands, within ±max_gain_db."""
    cfg = TransformConfig(**{**GAIN, "max_gain_db": 12.0, "dynamic_gain_db": 6.0})
    net = randomised(cfg)
    with torch.no_grad():
        net.out_proj.weight.mul_(50.0)              # drive both tanh bounds hard
        net.static_gain.weight.mul_(50.0)
        x = frames(bins=65) + 1.0
        y = net(x, 0)
    log_ratio = torch.log(torch.expm1(y) / torch.expm1(x))       # the gain, energy scale included
    spread = log_ratio.amax(dim=1) - log_ratio.amin(dim=1)      # per frame, across frequency
    assert spread.max() <= 2 * (12.0 + 6.0) * np.log(10) / 20 + 1e-4   # both bounds, up and down
    assert spread.max() > 12.0 * np.log(10) / 20                 # and they were reached
    # made of the bands: every frame's log gain lies in the span of the basis (a constant,
    # the energy scale, is in it too: the bands sum to 1), up to float32 rounding of logs ~1
    B = torch.from_numpy(band_basis(65, 12, sr=8000)).double()
    G = log_ratio.double().permute(0, 2, 1).reshape(-1, 65).T              # (bins, frames)
    coef = torch.linalg.lstsq(B, G).solution
    assert (B @ coef - G).abs().max() < 1e-4


@pytest.mark.parametrize("lookahead", [0, 2])
def test_gain_net_stream_equals_whole(lookahead):
    net = randomised(TransformConfig(**GAIN, lookahead=lookahead))
    x = frames(bins=65)
    style = torch.tensor([0, 2])
    with torch.no_grad():
        whole = net(x, style)
    c = net.config
    # As test_transform.stream_atol: the trunk's float32 sums differ by rounding between the
    # two paths, ~eps * scale * sqrt(depth * n). Here the trunk's output is a log gain (bounded
    # by max_gain_db in nepers) and the output a log1p magnitude; an error in the log gain is
    # the same absolute error in the output (d log1p(g |X|) / d log g <= 1), so the scale is
    # the larger of the two.
    n = max(c.bins, c.hidden * c.kernel_size)
    scale = max(float(whole.abs().max()), c.max_gain_db * np.log(10) / 20)
    atol = torch.finfo(torch.float32).eps * scale * ((c.layers + 2) * n) ** 0.5
    for k in (1, 2, 7, 64):
        out = stream(net, x, style, k)
        assert out.shape == x.shape
        assert torch.allclose(out, whole, atol=atol, rtol=0), (k, (out - whole).abs().max(), atol)


def test_gain_config_validation():
    with pytest.raises(ParameterError, match="output"):
        TransformConfig(output="spectrum")
    with pytest.raises(ParameterError, match="bands=600"):
        TransformConfig(output="gain", bins=513, bands=600)
    with pytest.raises(ParameterError, match="max_gain_db"):
        TransformConfig(output="gain", max_gain_db=0)
    with pytest.raises(ParameterError, match="dynamic_gain_db"):
        TransformConfig(output="gain", dynamic_gain_db=-1)
    # a residual card (written before gain existed) loads with the residual default
    assert TransformConfig.from_dict({"bins": 513}).output == "residual"
