"""Reading audio files: :func:`load_audio` (whole, resampled on request), :func:`read_blocks`
(block by block), :func:`audio_info` (the header only). A missing, empty, truncated or
non-audio file raises one :class:`~rtstyle.errors.AudioFileError` whose one-line message names
the file."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from typing import NamedTuple

import numpy as np
import soundfile as sf

from .._validate import MAX_SR, MIN_SR, positive_int, sample_rate
from ..errors import AudioFileError, ParameterError
from .atomic import _file_kind, _path_name
from .headers import _header_truncation
from .held_stderr import held_stderr
from .resampling import resample

__all__ = ["load_audio", "audio_info", "AudioInfo", "read_blocks", "sf_path", "AUDIO_EXTENSIONS"]

#: Extensions taken as audio when a folder is rendered (others are left alone).
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".mp3",
                              ".caf", ".au", ".snd", ".w64", ".rf64"})


class AudioInfo(NamedTuple):
    """What :func:`audio_info` returns: a plain ``(sr, channels, frames)`` tuple."""

    sr: int
    channels: int
    frames: int


def load_audio(path, *, sr=None, mono=False, dtype=np.float32):
    """Read an audio file into a float array, optionally down-mixed and resampled.

    Parameters
    ----------
    path : str or os.PathLike
        Any file libsndfile reads: WAV (also RF64, WAVEX), FLAC, OGG/Vorbis, AIFF, MP3, CAF...
    sr : int > 0 or None
        Rate to return. ``None`` keeps the file's rate; another rate resamples with soxr
        (quality ``'HQ'``), keeping the duration (the length becomes ``round(n * sr / sr_file)``).
    mono : bool
        Down-mix to one channel (the average of the channels).
    dtype : np.float32 or np.float64
        Sample type of ``y``.

    Returns
    -------
    y : np.ndarray [shape=(n,) or (channels, n), dtype=dtype]
        ``(n,)`` for a mono file or when ``mono=True``, else channel-first ``(channels, n)``
        (librosa's order; soundfile's ``(n, channels)`` is transposed). C-contiguous.
    sr : int
        The rate of ``y``: the ``sr`` asked for, else the file's.

    Raises
    ------
    AudioFileError
        The file is missing, a folder, unreadable, empty (no audio frames), not audio,
        truncated (the header declares more data than the file holds) or corrupt.
    ParameterError
        ``sr`` is not a positive integer, ``dtype`` is not float32/float64, or the file holds
        NaN or Inf samples.

    See Also
    --------
    audio_info : the rate, channels and length, without reading the samples.
    save_audio

    Examples
    --------
    >>> y, sr = load_audio("voice.wav", sr=22050, mono=True)  # doctest: +SKIP
    >>> y.shape, y.dtype  # doctest: +SKIP
    ((44100,), dtype('float32'))
    """
    if sr is not None:
        sr = sample_rate(sr, "sr")
    dtype = _float_dtype(dtype)
    name = _check_input(path)

    with _open_for_reading(path, name) as f:
        sr_file, declared = f.samplerate, f.frames
        _check_rate(name, sr_file)
        if declared == 0:
            raise AudioFileError(f"{name}: file is empty (no audio frames)")
        try:
            data = f.read(dtype=dtype.name, always_2d=True)  # (n, channels)
        except (sf.SoundFileError, RuntimeError) as err:
            raise AudioFileError(f"{name}: truncated or corrupt ({_reason(err)})") from None

    if data.shape[0] == 0:
        raise AudioFileError(f"{name}: file is empty (no audio frames)")
    if data.shape[0] < declared:
        raise AudioFileError(
            f"{name}: truncated: header declares {declared} frames, file holds {data.shape[0]}"
        )
    if not np.isfinite(data).all():
        raise ParameterError(f"{name}: holds NaN or Inf samples")

    if mono and data.shape[1] > 1:
        data = data.mean(axis=1, keepdims=True, dtype=dtype)
    y = data[:, 0] if data.shape[1] == 1 else data.T
    if sr is None:
        sr = sr_file
    return np.ascontiguousarray(resample(y, orig_sr=sr_file, target_sr=sr), dtype=dtype), int(sr)


def audio_info(path) -> AudioInfo:
    """Return a file's rate, channel count and length, checked as :func:`load_audio` checks.

    Cheap: it reads the header (and, for WAV and AIFF, walks the chunk list), not the samples,
    so corruption inside the audio data of a compressed file is only found by
    :func:`load_audio`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    info : AudioInfo
        A named tuple ``(sr, channels, frames)``.

    Raises
    ------
    AudioFileError
        As :func:`load_audio`: missing, unreadable, empty, not audio, or truncated.
    """
    name = _check_input(path)
    with _open_for_reading(path, name) as f:
        info = AudioInfo(int(f.samplerate), int(f.channels), int(f.frames))
    _check_rate(name, info.sr)
    if info.frames == 0:
        raise AudioFileError(f"{name}: file is empty (no audio frames)")
    return info


def read_blocks(path, *, blocksize: int = 65536):
    """Read an audio file block by block: ``(info, iterator of (channels, n) float32 blocks)``.

    The file is checked as :func:`load_audio` checks it (missing, empty, not audio, truncated,
    NaN/Inf — the last two when the block that shows it is read), but memory does not grow
    with its length.

    Returns
    -------
    info : AudioInfo
    blocks : iterator of np.ndarray [shape=(channels, n), dtype=float32]
    """
    info = audio_info(path)
    name = _path_name(path)
    blocksize = positive_int(blocksize, "blocksize")

    def blocks():
        got = 0
        with _open_for_reading(path, name) as f:
            while True:
                try:
                    data = f.read(blocksize, dtype="float32", always_2d=True)
                except (sf.SoundFileError, RuntimeError) as err:
                    raise AudioFileError(f"{name}: truncated or corrupt ({_reason(err)})") from None
                if data.shape[0] == 0:
                    break
                if not np.isfinite(data).all():
                    raise ParameterError(f"{name}: holds NaN or Inf samples")
                got += data.shape[0]
                yield np.ascontiguousarray(data.T)
        if got < info.frames:
            raise AudioFileError(f"{name}: truncated: header declares {info.frames} frames, "
                                 f"file holds {got}")

    return info, blocks()


def _check_rate(name: str, sr: int) -> None:
    """Refuse a file whose header claims a rate outside MIN_SR..MAX_SR (a 2-kB WAV claiming
    1 Hz would be resampled into gigabytes)."""
    if not MIN_SR <= sr <= MAX_SR:
        raise AudioFileError(f"{name}: its header claims a sample rate of {sr} Hz; rtstyle reads "
                             f"{MIN_SR}..{MAX_SR} Hz")


def sf_path(path):
    """``path`` as soundfile should get it: bytes (as the OS has it) on POSIX, so that a file
    name that is not valid UTF-8 (held by Python as surrogate escapes) still opens."""
    name = os.fspath(path)
    if os.name == "posix" and isinstance(name, str):
        return os.fsencode(name)
    return name


def _float_dtype(dtype) -> np.dtype:
    try:
        out = np.dtype(dtype)
    except TypeError:
        out = None
    if out not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ParameterError(f"dtype={dtype!r} must be float32 or float64")
    return out


def _reason(err: BaseException) -> str:
    """The short part of a soundfile error: libsndfile's own words, no 'Error opening ...'."""
    text = getattr(err, "error_string", None) or str(err)
    text = " ".join(str(text).split()).rstrip(".")
    text = re.sub(r"^Error\s*:\s*", "", text)  # libsndfile's prefix on some messages
    return text or type(err).__name__


def _check_input(path) -> str:
    """Check that ``path`` is a readable, non-empty file (or a pipe) and not truncated.

    Returns the name to use in messages.
    """
    try:
        name = os.fsdecode(os.fspath(path))
    except TypeError:
        raise ParameterError(f"path={path!r} must be a str or os.PathLike") from None
    try:
        st = os.stat(name)
    except (FileNotFoundError, NotADirectoryError):
        raise AudioFileError(f"{name}: no such file") from None
    except OSError as err:
        raise AudioFileError(f"{name}: cannot read ({err.strerror or err})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioFileError(f"{name}: is a folder, not an audio file")
    regular = stat.S_ISREG(st.st_mode)
    if not regular:     # a FIFO would block until a writer comes; a device never ends
        raise AudioFileError(f"{name}: is not a regular file ({_file_kind(st.st_mode)}); "
                             "rtstyle reads audio files")
    if regular and st.st_size == 0:
        raise AudioFileError(f"{name}: file is empty (no audio frames)")
    try:
        with open(name, "rb") as fh:
            problem = _header_truncation(fh, st.st_size) if regular else None
    except PermissionError:
        raise AudioFileError(f"{name}: permission denied") from None
    except OSError as err:
        raise AudioFileError(f"{name}: cannot read ({err.strerror or err})") from None
    if problem:
        raise AudioFileError(f"{name}: truncated: {problem}")
    return name


@contextlib.contextmanager
def _open_for_reading(path, name: str):
    try:
        # libsndfile's MP3 decoder prints "Note: Illegal Audio-MPEG-Header ..." lines when it
        # probes a file that is not audio: the one-line error below says it
        with held_stderr("libsndfile"):
            f = sf.SoundFile(sf_path(path))
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as err:
        reason = _reason(err)
        if reason.startswith("File does not exist or is not a regular file"):
            # libsndfile's words when no format matched the contents; _check_input has
            # already found a regular file there
            reason = "no audio format libsndfile reads matches its contents"
        raise AudioFileError(f"{name}: not a readable audio file ({reason})") from None
    with f:
        yield f
