"""ShallowEncoder (seeded random weights, Ulyanov scaling) and the Gram/content losses."""

import math

import numpy as np
import pytest
import torch

from rtstyle.config import EncoderConfig
from rtstyle.errors import ParameterError
from rtstyle.nn.encoder import ShallowEncoder, ulyanov_std
from rtstyle.nn.losses import StyleContentLoss, content_loss, gram, style_loss


def test_seed_scale():
    # The seed's own number: F=1025, N=4096, k=11 -> 0.00843 (neural-style-audio-tf).
    assert abs(ulyanov_std(1025, 4096, 11) - 0.00843) < 1e-5
    enc = ShallowEncoder(1025, EncoderConfig(n_filters=4096))
    assert abs(float(enc.weight.std()) - 0.00843) < 1e-4
    assert list(enc.parameters()) == []  # random and fixed: nothing to train


@pytest.mark.parametrize("pool,width,frames_out", [("none", 2, 90), ("max", 2, 45), ("avg", 3, 30)])
def test_shapes(pool, width, frames_out):
    enc = ShallowEncoder(64, EncoderConfig(n_filters=32, pool=pool, pool_width=width))
    assert enc(torch.randn(3, 64, 100)).shape == (3, 32, frames_out)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_activation(activation):
    enc = ShallowEncoder(16, EncoderConfig(n_filters=8, activation=activation))
    F = enc(torch.randn(1, 16, 40) * 10)
    if activation == "relu":
        assert float(F.min()) == 0.0
    else:
        assert float(F.min()) < 0 and float(F.abs().max()) <= 1.0


def test_deterministic_across_instances_and_global_seed():
    torch.manual_seed(1)
    a = ShallowEncoder(32, EncoderConfig(n_filters=16, seed=7))
    torch.manual_seed(2)
    b = ShallowEncoder(32, EncoderConfig(n_filters=16, seed=7))
    c = ShallowEncoder(32, EncoderConfig(n_filters=16, seed=8))
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)


def test_encoder_errors():
    enc = ShallowEncoder(16, EncoderConfig(n_filters=8))
    with pytest.raises(ParameterError, match=r"shape \(batch, 16, frames\)"):
        enc(torch.randn(1, 15, 40))
    with pytest.raises(ParameterError, match="at least 11 frames"):
        enc(torch.randn(1, 16, 10))
    with pytest.raises(ParameterError, match="activation='gelu'"):
        EncoderConfig(activation="gelu")
    with pytest.raises(ParameterError, match="filters=0"):
        EncoderConfig(n_filters=0)


def test_gram_against_slow_reference(rng):
    F = rng.standard_normal((2, 5, 13))
    G = gram(torch.tensor(F)).numpy()
    for b in range(2):
        for i in range(5):
            for j in range(5):
                expected = sum(F[b, i, t] * F[b, j, t] for t in range(13)) / 13
                assert math.isclose(G[b, i, j], expected, rel_tol=1e-12, abs_tol=1e-12)


def test_gram_is_length_independent(rng):
    F = torch.tensor(rng.standard_normal((1, 6, 20)))
    twice = torch.cat([F, F], dim=-1)
    assert torch.allclose(gram(F), gram(twice))


def test_losses():
    F = torch.randn(2, 4, 10)
    assert float(style_loss(gram(F), gram(F))) == 0.0
    assert float(content_loss(F, F)) == 0.0
    assert math.isclose(float(content_loss(F, F + 1)), 2 * 4 * 10 / 10, rel_tol=1e-6)
    with pytest.raises(ParameterError, match="shape"):
        content_loss(F, F[..., :5])


def test_style_content_loss_targets_mean_style_gram():
    enc = ShallowEncoder(8, EncoderConfig(n_filters=6, seed=3))
    style = torch.randn(2, 8, 30)
    loss = StyleContentLoss(enc, style, content_weight=0.0, style_weight=1.0)
    expected = gram(enc(style)).mean(0, keepdim=True)
    assert torch.allclose(loss.style_gram, expected)
    x = torch.randn(1, 8, 30)
    parts = loss(x, loss.target_features(x))
    assert float(parts["content"]) == 0.0 and float(parts["total"]) == pytest.approx(float(parts["style"]))
