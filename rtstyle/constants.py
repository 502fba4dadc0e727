"""Choices and bounds of the engine's settings, importable without torch, numba or soxr.

This is their one home: the modules that use them (:mod:`rtstyle.dsp.phase_stream`,
:mod:`rtstyle.stream.styles`, :mod:`rtstyle.io.resampling`) import them from here and import
heavy libraries themselves, so the CLI parser, ``--help`` and :mod:`rtstyle.engine_settings`
read them here without loading those.
"""

from __future__ import annotations

__all__ = ["PHASE_INITS", "ENVELOPES", "RESAMPLE_QUALITIES", "MAX_LOOKAHEAD", "IDENTITY_N_FFT",
           "IDENTITY_HOP_LENGTH", "CONTROLS"]

#: Initial phase of each new frame (:class:`rtstyle.dsp.phase_stream.StreamingPhase`).
PHASE_INITS = ("input", "rtpghi", "random")
#: Levels of the styled frames (:class:`rtstyle.stream.styles.StyleBank`): ``follow``: every
#: target frame is scaled to the input frame's energy (the performer's dynamics and silences
#: stay; the style shapes the spectrum); ``free``: the nets' own levels.
ENVELOPES = ("follow", "free")
#: soxr's quality presets, best (and slowest to respond) first
#: (:func:`rtstyle.io.resampling.resample_quality`).
RESAMPLE_QUALITIES = ("VHQ", "HQ", "MQ", "LQ", "QQ")
#: Most frames of phase look-ahead (:class:`rtstyle.dsp.phase_stream.StreamingPhase`).
MAX_LOOKAHEAD = 3
#: STFT sizes of the identity transform (no model to take them from).
IDENTITY_N_FFT, IDENTITY_HOP_LENGTH = 1024, 256
#: What :meth:`rtstyle.Streamer.set` changes while streaming: the output stage's controls
#: (:data:`rtstyle.stream.mixer.MIX_PARAMS`), then the style stage's.
CONTROLS = ("mix", "gain_db", "bypass", "strength", "morph", "style")
