"""The one error hierarchy of rtstyle.

Every error a user can cause derives from :class:`RtStyleError` and also from the builtin
that fits it (as python-rtmidi does), so ``except ValueError`` keeps working for callers who
do not know rtstyle. Messages are one line and name the value, the file or the flag.
"""

from __future__ import annotations

__all__ = [
    "RtStyleError",
    "ParameterError",
    "AudioFileError",
    "OutputFileError",
    "DeviceError",
    "ModelError",
    "MidiError",
]


class RtStyleError(Exception):
    """Base class of every error rtstyle raises on purpose."""


class ParameterError(RtStyleError, ValueError):
    """A malformed argument: a value out of range, a wrong shape, non-finite audio."""


class AudioFileError(RtStyleError, OSError):
    """An audio file that is missing, empty, truncated, not audio, or not writable."""


class OutputFileError(AudioFileError):
    """An output file of any kind (audio, a report, a preset, a model, a figure) that may not or
    cannot be written: it exists, is an input, is a folder, its folder is missing or not
    writable, the disk is full. Raised by :func:`rtstyle.io.files.atomic_output` and
    :func:`~rtstyle.io.files.check_output_path`. A subclass of :class:`AudioFileError`, which
    these raised before, so that ``except AudioFileError`` still catches them."""


class DeviceError(RtStyleError, OSError):
    """An audio device that is missing, busy or cannot do what was asked."""


class ModelError(RtStyleError, ValueError):
    """A model or weights file that is missing, truncated, mismatched or of a refused format."""


class MidiError(RtStyleError, OSError):
    """A MIDI port or file that cannot be opened or read."""
