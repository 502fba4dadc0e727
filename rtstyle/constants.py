"""Choices and bounds of the engine's settings, importable without torch, numba or soxr.

Their homes import heavy libraries (:mod:`rtstyle.dsp.phase_stream`, :mod:`rtstyle.stream.styles`
import torch and numba; :mod:`rtstyle.io.resampling` imports soxr), so the CLI parser, ``--help``
and :mod:`rtstyle.engine_settings` read them here; ``tests/test_settings.py`` checks that each
equals the constant of the module that uses it.
"""

from __future__ import annotations

__all__ = ["PHASE_INITS", "ENVELOPES", "RESAMPLE_QUALITIES", "MAX_LOOKAHEAD", "IDENTITY_N_FFT",
           "IDENTITY_HOP_LENGTH"]

#: Initial phase of each new frame (:data:`rtstyle.dsp.phase_stream.PHASE_INITS`).
PHASE_INITS = ("input", "rtpghi", "random")
#: Levels of the styled frames (:data:`rtstyle.stream.styles.ENVELOPES`).
ENVELOPES = ("follow", "free")
#: soxr presets (:data:`rtstyle.io.resampling.RESAMPLE_QUALITIES`).
RESAMPLE_QUALITIES = ("VHQ", "HQ", "MQ", "LQ", "QQ")
#: Frames of phase look-ahead (:data:`rtstyle.dsp.phase_stream.MAX_LOOKAHEAD`).
MAX_LOOKAHEAD = 3
#: STFT sizes of the identity transform (no model to take them from).
IDENTITY_N_FFT, IDENTITY_HOP_LENGTH = 1024, 256
