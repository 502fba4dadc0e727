"""Gram-matrix style loss and content loss over encoder features (the seed's objective).

``gram(F) = F Fᵀ / T``: normalised by the number of encoder output frames ``T`` so that clips of
any length compare. The style term is the *sum* of squared Gram differences, as the seed's
``2 * l2_loss(G - G_s)``. The content term is the sum of squared feature differences *per
frame* (divided by ``T``), so the balance of the two does not drift with clip length: the seed's
``ALPHA`` on its fixed 10-s clips (420 encoder frames) is ``content_weight = ALPHA * 420``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ParameterError
from .encoder import ShallowEncoder

__all__ = ["gram", "style_loss", "content_loss", "StyleContentLoss"]


def gram(F: torch.Tensor) -> torch.Tensor:
    """Gram matrix of feature maps, normalised by frames.

    Parameters
    ----------
    F : torch.Tensor [shape=(batch, channels, frames)]

    Returns
    -------
    G : torch.Tensor [shape=(batch, channels, channels)]
        ``G[b] = F[b] @ F[b].T / frames``.
    """
    if F.dim() != 3:
        raise ParameterError(f"gram() needs (batch, channels, frames), got shape {tuple(F.shape)}")
    return torch.bmm(F, F.transpose(1, 2)) / F.shape[-1]


def style_loss(G: torch.Tensor, G_target: torch.Tensor) -> torch.Tensor:
    """Sum of squared Gram differences per batch item, summed over the batch.

    ``G_target`` broadcasts: ``(1, N, N)`` styles every item toward one Gram.
    """
    return ((G - G_target) ** 2).sum()


def content_loss(F: torch.Tensor, F_target: torch.Tensor) -> torch.Tensor:
    """Sum of squared differences divided by frames (per-frame energy), summed over the batch."""
    if F.shape != F_target.shape:
        raise ParameterError(f"content features differ in shape: {tuple(F.shape)} vs {tuple(F_target.shape)}")
    return ((F - F_target) ** 2).sum() / F.shape[-1]


class StyleContentLoss(nn.Module):
    """``content_weight * content + style_weight * style`` through one shallow encoder.

    Parameters
    ----------
    encoder : ShallowEncoder
    style : torch.Tensor [shape=(batch_s, channels, frames_s)]
        Features of the style reference(s); their Grams are averaged into one target (several
        style channels or clips count equally).
    content_weight, style_weight : float
    content : {'features', 'spectrum'}
        Content distance on encoder activations (the seed) or on the input features themselves.

    Notes
    -----
    ``forward(x, x_content)`` returns a dict with ``total``, ``content`` and ``style`` (unweighted
    terms, for logging). ``x`` and ``x_content`` are ``(batch, channels, frames)``. A perceptual
    content loss is added by the caller (it works on magnitudes, not on these features).
    """

    def __init__(self, encoder: ShallowEncoder, style: torch.Tensor, *, content_weight: float,
                 style_weight: float, content: str = "features"):
        super().__init__()
        self.encoder = encoder
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.content = content
        with torch.no_grad():
            self.register_buffer("style_gram", gram(encoder(style)).mean(0, keepdim=True))

    def target_features(self, x_content: torch.Tensor) -> torch.Tensor:
        """What the content term compares with: encoder features or the input itself."""
        with torch.no_grad():
            return self.encoder(x_content) if self.content == "features" else x_content

    def forward(self, x: torch.Tensor, content_target: torch.Tensor) -> dict:
        F = self.encoder(x)
        s = style_loss(gram(F), self.style_gram)
        c = content_loss(F if self.content == "features" else x, content_target)
        return {"total": self.content_weight * c + self.style_weight * s, "content": c, "style": s}
