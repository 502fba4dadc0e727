"""TransformNet: stream equals whole file, identity at init, causality, styles, validation."""

import dataclasses

import pytest
import torch

from rtstyle.config import TransformConfig
from rtstyle.errors import ParameterError
from rtstyle.nn.transform import TransformNet

SMALL = dict(bins=33, hidden=24, kernel_size=3, layers=3, n_styles=3, embed_dim=8)


def stream_atol(net: TransformNet, y: torch.Tensor) -> float:
    """Tolerance for stream vs whole-file float32 output, from the arithmetic.

    Streaming and offline compute the same sums in a different order (a matmul over gathered
    taps vs ``conv1d``, over different frame counts), so they differ by rounding only. A dot
    product of ``n`` float32 terms carries a rounding error of about ``sqrt(n) * eps`` relative
    to the size of its terms (the probabilistic bound of Higham & Mary, 2019), and every output
    value goes through ``depth = layers + 2`` such products (in_proj, the convs, out_proj),
    whose errors add up like a random walk. The values' scale is ``max|y|`` (the residual
    stream carries it; random weights give outputs up to ~40 here), so::

        atol = eps * max|y| * sqrt(depth * n),   n = the longest reduction

    i.e. ~19 eps of the largest value; measured differences are 1-3 eps of it (2.3 eps =
    1.0014e-05 on a CPU where a fixed 1e-5 failed). A real streaming bug (a wrong cache, a
    lost frame) is off by O(1).
    """
    c = net.config
    n = max(c.bins, c.hidden * c.kernel_size)
    depth = c.layers + 2
    eps = torch.finfo(torch.float32).eps
    return float(eps * y.abs().max() * (depth * n) ** 0.5)


def randomised(config: TransformConfig, seed: int = 0) -> TransformNet:
    """A net whose every parameter is random (so the identity init hides nothing)."""
    torch.manual_seed(seed)
    net = TransformNet(config).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.2)
    net.reset()
    return net


def frames(batch=2, bins=33, n=60, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, bins, n, generator=g) * 4.0


def stream(net, x, style, k):
    net.reset(x.shape[0])
    parts = [net.feed(x[..., i:i + k], style) for i in range(0, x.shape[-1], k)]
    return torch.cat(parts + [net.flush()], dim=-1)


@pytest.mark.parametrize("lookahead", [0, 2])
@pytest.mark.parametrize("norm", ["none", "layer"])
def test_stream_equals_whole(lookahead, norm):
    net = randomised(TransformConfig(**SMALL, lookahead=lookahead, norm=norm))
    x = frames()
    style = torch.tensor([0, 2])
    with torch.no_grad():
        whole = net(x, style)
    assert whole.shape == x.shape and (whole >= 0).all()
    for k in (1, 2, 7, 64):
        out = stream(net, x, style, k)
        assert out.shape == x.shape, k
        atol = stream_atol(net, whole)
        assert torch.allclose(out, whole, atol=atol, rtol=0), (k, (out - whole).abs().max(), atol)


def test_feed_returns_frames_late_by_latency_and_accepts_empty_chunks():
    net = randomised(TransformConfig(**SMALL, lookahead=3))
    assert net.latency == 3
    x = frames(batch=1, n=10)
    net.reset()
    assert net.feed(x[..., :0], 0).shape == (1, 33, 0)
    sizes = [net.feed(x[..., i:i + 1], 0).shape[-1] for i in range(10)]
    assert sizes == [0, 0, 0] + [1] * 7
    assert net.flush().shape[-1] == 3
    # a stream shorter than the look-ahead still gives all its frames
    net.reset()
    assert net.feed(x[..., :2], 0).shape[-1] == 0
    tail = net.flush()
    with torch.no_grad():
        want = net(x[..., :2], 0)
    assert torch.allclose(tail, want, atol=stream_atol(net, want), rtol=0)


def test_dilations_and_receptive_field():
    c = TransformConfig(**SMALL, dilation_growth=3)
    assert c.layer_dilations == (1, 3, 9) and c.context == 2 * (1 + 3 + 9)
    c = TransformConfig(**{**SMALL, "layers": 2}, dilations=[1, 5], lookahead=1)
    assert TransformNet(c).receptive_field == 12
    assert TransformNet(dataclasses.replace(c, lookahead=20)).receptive_field == 20


def test_identity_at_init():
    net = TransformNet(TransformConfig(**SMALL, lookahead=1)).eval()
    x = frames()
    with torch.no_grad():
        assert torch.equal(net(x, 1), x)
    assert torch.equal(stream(net, x, 1, 5), x)


@pytest.mark.parametrize("lookahead", [0, 1, 3])
def test_causality(lookahead):
    net = randomised(TransformConfig(**SMALL, lookahead=lookahead))
    x = frames(batch=1, n=40)
    t = 20
    changed = x.clone()
    changed[..., t:] = torch.rand_like(changed[..., t:]) * 4
    with torch.no_grad():
        a, b = net(x, 0), net(changed, 0)
    # frames t - lookahead .. see the change, those before do not
    assert torch.equal(a[..., :t - lookahead], b[..., :t - lookahead])
    assert not torch.allclose(a[..., t - lookahead], b[..., t - lookahead])
    # and only frames within the receptive field before t feel a change at t
    past = x.clone()
    past[..., :t - net.config.context - 1] = 0
    with torch.no_grad():
        c = net(past, 0)
    tail = slice(t - lookahead, None)
    assert torch.allclose(c[..., tail], a[..., tail], atol=stream_atol(net, a), rtol=0)


def test_prime_matches_a_net_that_ran_all_along():
    net = randomised(TransformConfig(**SMALL, lookahead=2))
    x = frames(batch=1, n=80)
    with torch.no_grad():
        whole = net(x, 1)
    t = 50  # prime from frames < t, then feed from t on
    net.prime(x[..., :t], 1)
    out = torch.cat([net.feed(x[..., t:], 1), net.flush()], dim=-1)
    assert torch.allclose(out, whole[..., t - 2:], atol=stream_atol(net, whole), rtol=0)


def test_styles_differ_and_interpolation_endpoints_are_the_pure_styles():
    net = randomised(TransformConfig(**SMALL))
    x = frames()
    with torch.no_grad():
        y0, y1 = net(x, 0), net(x, 1)
        assert not torch.allclose(y0, y1)
        e0, e1 = net.embedding(0), net.embedding(1)
        assert e0.shape == (8,) and net.embedding([0, 1]).shape == (2, 8)
        for a, want in ((0.0, y0), (1.0, y1)):
            e = (1 - a) * e0 + a * e1
            assert torch.allclose(net(x, e), want, atol=1e-6)
            assert torch.allclose(net(x, e.expand(2, 8)), want, atol=1e-6)
        mid = net(x, 0.5 * e0 + 0.5 * e1)
        assert not torch.allclose(mid, y0) and not torch.allclose(mid, y1)
        # per-item styles: a LongTensor of indices
        both = net(x, torch.tensor([0, 1]))
        assert torch.allclose(both[0], y0[0]) and torch.allclose(both[1], y1[1])
    # streaming with an embedding
    out = stream(net, x, 0.5 * e0 + 0.5 * e1, 3)
    assert torch.allclose(out, mid, atol=stream_atol(net, mid), rtol=0)


def test_reset_clears_state():
    net = randomised(TransformConfig(**SMALL, lookahead=1))
    x = frames(batch=1, n=30)
    net.reset()
    first = torch.cat([net.feed(x, 0), net.flush()], dim=-1)
    net.reset()
    net.feed(frames(batch=1, n=30, seed=9), 2)      # leave state behind, no flush
    net.reset()
    again = torch.cat([net.feed(x, 0), net.flush()], dim=-1)
    assert torch.equal(first, again)
    # reset allocates every cache for the batch up front
    net.reset(batch=4)
    assert all(conv.cache.shape[0] == 4 for conv in net.convs)
    with pytest.raises(ParameterError, match="batch 1.*reset for batch=4"):
        net.feed(x, 0)


@pytest.mark.parametrize("field,value", [
    ("bins", 0), ("hidden", -1), ("kernel_size", 0), ("layers", 2.5), ("n_styles", 0),
    ("embed_dim", 0), ("lookahead", -1), ("activation", "swish"), ("norm", "instance"),
    ("dilation_growth", 0),
])
def test_config_validation_names_the_value(field, value):
    with pytest.raises(ParameterError, match=f"{field}={value!r}"):
        TransformConfig(**{field: value})


def test_config_dilations_and_round_trip():
    with pytest.raises(ParameterError, match="dilations=.*layers=3"):
        TransformConfig(layers=3, dilations=[1, 2])
    with pytest.raises(ParameterError, match="dilations=0"):
        TransformConfig(layers=2, dilations=[1, 0])
    c = TransformConfig(**SMALL, dilations=[1, 4, 2], lookahead=2, norm="layer")
    assert TransformConfig.from_dict(c.to_dict()) == c
    import json

    assert TransformConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ParameterError, match="unknown keys"):
        TransformConfig.from_dict({**c.to_dict(), "depth": 3})


def test_bad_inputs():
    net = TransformNet(TransformConfig(**SMALL))
    with pytest.raises(ParameterError, match=r"\(batch, 33, frames\)"):
        net(torch.zeros(1, 32, 5))
    with pytest.raises(ParameterError, match="style=3 out of range"):
        net(torch.zeros(1, 33, 5), 3)
    with pytest.raises(ParameterError, match="embedding must have shape"):
        net(torch.zeros(1, 33, 5), torch.zeros(5))
    with pytest.raises(ParameterError, match="floating-point"):
        net.feed(torch.zeros(1, 33, 5, dtype=torch.long))


def test_streaming_follows_every_style_change():
    """The streaming FiLM is kept while the style stays the same and recomputed when it
    changes: an index, a new embedding, or the same embedding tensor changed in place."""
    net = randomised(TransformConfig(**SMALL))
    x = frames(n=6)
    with torch.no_grad():
        e0, e1 = net.embedding(0).clone(), net.embedding(1).clone()
        mid = 0.5 * e0 + 0.5 * e1
    plan = [0, 0, 1, e0, mid, mid]                    # per frame
    net.reset(2)
    e = e0.clone()
    got = []
    for t, s in enumerate(plan):
        if isinstance(s, torch.Tensor):
            e.copy_(s)                                 # one tensor, changed in place
            s = e
        got.append(net.feed(x[..., t:t + 1], s))
    ref = randomised(TransformConfig(**SMALL))          # the same net, FiLM computed per frame
    ref.reset(2)
    want = []
    for t, s in enumerate(plan):
        ref._film_key = None
        want.append(ref.feed(x[..., t:t + 1], s.clone() if isinstance(s, torch.Tensor) else s))
    assert torch.equal(torch.cat(got, -1), torch.cat(want, -1))
    assert not torch.allclose(want[0], want[2])         # the styles do differ
