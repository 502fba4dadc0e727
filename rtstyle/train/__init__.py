"""Training feed-forward style nets (``rtstyle train``, ``tools/train_style.py``).

A :class:`~rtstyle.nn.transform.TransformNet` learns, once per style, what the offline
optimisation of :mod:`rtstyle.transfer` does per clip (Johnson et al.'s perceptual-loss recipe on
spectrogram frames): random content chunks of a corpus go through the net, and the loss is the
transfer's own, ``content_weight * content + style_weight * ||Gram(E(T(x))) - Gram(E(style))||²``
through the same seeded :class:`~rtstyle.nn.encoder.ShallowEncoder` on the same features.

Modules
-------
options     :class:`TrainSettings` (every option, validated; no torch import), ``--style`` parsing
data        the corpus (manifest or folder), cached spectrograms, chunk sampling, references
checkpoint  safetensors + JSON checkpoints (never pickle), exact resume
loop        :func:`train`: reads top to bottom

``import rtstyle.train`` stays light; :func:`train` imports torch when called.
"""

from __future__ import annotations

from .options import DEFAULTS, TrainSettings, parse_style

__all__ = ["train", "TrainResult", "TrainSettings", "DEFAULTS", "parse_style"]


def __getattr__(name):
    if name in ("train", "TrainResult"):
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'rtstyle.train' has no attribute {name!r}")
