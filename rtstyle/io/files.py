"""Reading and writing audio files (soundfile + soxr), and safe, atomic output paths: one import.

A leaf: every layer may import it, and it imports nothing of rtstyle but ``errors`` and
``_validate``. The code lives in a module per concern; this one gathers their names (the ones
the rest of rtstyle, its tools and its users import from here):

- :mod:`rtstyle.io.resampling`: :func:`resample`, :class:`Resampler` (soxr) and the quality
  presets.
- :mod:`rtstyle.io.reading`: :func:`load_audio` reads any format libsndfile reads (WAV, FLAC,
  OGG/Vorbis, AIFF, MP3, ...) into float32 ``(n,)`` (mono) or ``(channels, n)`` (librosa's
  channel-first order), resampling with soxr when asked; :func:`read_blocks`,
  :func:`audio_info`. A missing, empty, truncated or non-audio file raises one
  :class:`~rtstyle.errors.AudioFileError` whose one-line message names the file.
- :mod:`rtstyle.io.headers`: the WAV/AIFF chunk walk that finds a truncated file.
- :mod:`rtstyle.io.writing`: :func:`save_audio` writes audio atomically, never overwrites a
  file unless told to, and never an input; :class:`AudioWriter` writes block by block.
- :mod:`rtstyle.io.atomic`: :func:`atomic_output` and :func:`check_output_path` apply those
  same rules to any other output (figures, JSON reports), so a CLI can check its outputs before
  minutes of computation; they raise :class:`~rtstyle.errors.OutputFileError`.
"""

from __future__ import annotations

from .atomic import atomic_output, check_output_path, remove_stale_temps
from .reading import AUDIO_EXTENSIONS, AudioInfo, audio_info, load_audio, read_blocks, sf_path
from .resampling import RESAMPLE_QUALITIES, RESAMPLE_QUALITY, Resampler, resample, resample_quality
from .writing import AudioWriter, format_and_subtype, save_audio

__all__ = [
    "resample",
    "Resampler",
    "RESAMPLE_QUALITIES",
    "resample_quality",
    "read_blocks",
    "AudioWriter",
    "format_and_subtype",
    "load_audio",
    "save_audio",
    "audio_info",
    "AudioInfo",
    "atomic_output",
    "check_output_path",
    "remove_stale_temps",
    "sf_path",
    "AUDIO_EXTENSIONS",
    "RESAMPLE_QUALITY",
]
