"""The shallow random encoder of Ulyanov & Lebedev (2016): one wide Conv1d over frames.

Frequency channels are the convolution's input channels and time is its only axis, so a
``(batch, channels, frames)`` feature map becomes ``(batch, n_filters, frames')``. The weights
are drawn once from ``N(0, sigma)`` with Ulyanov's scaling and a fixed seed, and never trained:
the same ``EncoderConfig`` rebuilds the same encoder bit for bit on any machine, so model files
store the config, not the weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validate import positive_int
from ..config import EncoderConfig
from ..errors import ParameterError

__all__ = ["ShallowEncoder", "ulyanov_std"]


def ulyanov_std(n_channels: int, n_filters: int, kernel_size: int) -> float:
    """Ulyanov's weight scale ``sqrt(2) * sqrt(2 / ((F + N) * k))``.

    For the seed (F=1025, N=4096, k=11) this is 0.00843.
    """
    return math.sqrt(2.0) * math.sqrt(2.0 / ((n_channels + n_filters) * kernel_size))


class ShallowEncoder(nn.Module):
    """Random, fixed, wide and shallow: Conv1d (no bias, 'valid') -> relu|tanh -> optional pool.

    Parameters
    ----------
    n_channels : int
        Input channels (feature bins, ``FeatureConfig.n_channels``).
    config : EncoderConfig
        Filters, kernel width, activation, pooling and the seed of the weights.

    Notes
    -----
    The weights are a buffer, not a parameter: they move with ``.to(device)`` and are never
    optimised. Their draw uses a private CPU generator, so the global torch seed is untouched
    and the weights do not depend on the device.
    """

    def __init__(self, n_channels: int, config: EncoderConfig = EncoderConfig()):
        super().__init__()
        self.n_channels = positive_int(n_channels, "n_channels")
        self.config = config
        n, k = config.n_filters, config.kernel_size
        gen = torch.Generator(device="cpu").manual_seed(config.seed)
        std = ulyanov_std(n_channels, n, k)
        self.register_buffer("weight", torch.randn(n, n_channels, k, generator=gen) * std)

    @property
    def min_frames(self) -> int:
        """Fewest input frames that give at least one output frame."""
        pool = self.config.pool_width if self.config.pool != "none" else 1
        return self.config.kernel_size + pool - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode feature frames.

        Parameters
        ----------
        x : torch.Tensor [shape=(batch, n_channels, frames)]

        Returns
        -------
        F : torch.Tensor [shape=(batch, n_filters, frames_out)]
            ``frames_out = frames - kernel_size + 1``, divided by ``pool_width`` (floor) when pooling.
        """
        if x.dim() != 3 or x.shape[1] != self.n_channels:
            raise ParameterError(
                f"encoder input must have shape (batch, {self.n_channels}, frames), got {tuple(x.shape)}"
            )
        if x.shape[-1] < self.min_frames:
            raise ParameterError(
                f"encoder needs at least {self.min_frames} frames, got {x.shape[-1]}"
            )
        h = nn.functional.conv1d(x, self.weight.to(x.dtype))
        h = torch.relu(h) if self.config.activation == "relu" else torch.tanh(h)
        w = self.config.pool_width
        if self.config.pool == "max":
            h = nn.functional.max_pool1d(h, w)
        elif self.config.pool == "avg":
            h = nn.functional.avg_pool1d(h, w)
        return h
