"""Reading and writing audio files (soundfile + soxr), and safe, atomic output paths.

A leaf module: every layer may import it, and it imports nothing of rtstyle but ``errors`` and
``_validate``.

- :func:`load_audio` reads any format libsndfile reads (WAV, FLAC, OGG/Vorbis, AIFF, MP3, ...)
  into float32 ``(n,)`` (mono) or ``(channels, n)`` (librosa's channel-first order), resampling
  with soxr when asked. A missing, empty, truncated or non-audio file raises one
  :class:`~rtstyle.errors.AudioFileError` whose one-line message names the file.
- :func:`save_audio` writes audio atomically: to a hidden temp file in the same folder, then
  ``os.replace``. It never overwrites a file unless told to, and never overwrites an input.
- :func:`atomic_output` and :func:`check_output_path` apply those same rules to any other output
  (figures, JSON reports), so a CLI can check its outputs before minutes of computation.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import re
import secrets
import stat
import struct
import sys
from typing import NamedTuple

import numpy as np
import soundfile as sf
import soxr

from .._validate import MAX_SR, MIN_SR, positive_int, valid_audio
from ..errors import AudioFileError, ParameterError

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
]

#: The process umask, read once at import (os.umask can only be read by setting it, which is
#: not thread-safe later on).
_UMASK = os.umask(0o022)
os.umask(_UMASK)

#: soxr's quality presets, best (and slowest to respond) first; see :func:`resample_quality`.
RESAMPLE_QUALITIES = ("VHQ", "HQ", "MQ", "LQ", "QQ")
#: The default quality of every resampling: 'HQ' is 20-bit precise, fast enough for long files.
RESAMPLE_QUALITY = "HQ"

# File extensions whose name is not the libsndfile format name (soundfile itself only knows
# ".wav", ".flac", ".aiff", ...). Values: (format, default subtype or None).
_EXTRA_EXTENSIONS = {
    "aif": ("AIFF", None),
    "oga": ("OGG", None),
    "opus": ("OGG", "OPUS"),
    "snd": ("AU", None),
}
# Shown in the "unknown extension" message, in this order, where libsndfile has them.
_COMMON_EXTENSIONS = ("wav", "flac", "ogg", "aiff", "mp3")
#: Extensions taken as audio when a folder is rendered (others are left alone).
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".mp3",
                              ".caf", ".au", ".snd", ".w64", ".rf64"})


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------


def resample_quality(quality, name: str = "quality") -> str:
    """Check a soxr quality name (case-insensitive) and return it upper-case.

    The presets trade the filter's length (its delay, and the hold-back of a stream) against
    its precision. Measured for 48000 → 22050 Hz (output Nyquist 11025 Hz):

    ========  ====================================================================
    ``VHQ``   28-bit precise, linear phase: the longest filter, the longest delay.
    ``HQ``    20-bit precise (stop band ≥ 100 dB down), linear phase: the default;
              -3 dB at ~0.95 of the output Nyquist.
    ``MQ``    16-bit precise (≥ 80 dB down), the same bandwidth as HQ; its stream holds
              back about as much as HQ's, so it does not shorten live's latency.
    ``LQ``    16-bit precise with a wide roll-off (-3 dB at ~0.8 of the output
              Nyquist: duller highs); the shortest filter of the four.
    ``QQ``    cubic interpolation, no anti-alias filter worth the name: the lowest
              delay (almost none), audible aliasing of content above the lower rate's
              Nyquist and some treble loss.
    ========  ====================================================================

    Parameters
    ----------
    quality : str
        One of :data:`RESAMPLE_QUALITIES`, in any case.
    name : str
        How the value is called in the error message (``resample_quality`` for the engine).

    Returns
    -------
    quality : str
        Upper-case, one of :data:`RESAMPLE_QUALITIES`.

    Raises
    ------
    ParameterError
        Anything else (one line naming the value and the choices).
    """
    q = quality.upper() if isinstance(quality, str) else quality
    if q not in RESAMPLE_QUALITIES:
        raise ParameterError(f"{name}={quality!r} must be one of "
                             f"{', '.join(RESAMPLE_QUALITIES)} (soxr's quality presets)")
    return q


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int,
             quality: str = RESAMPLE_QUALITY) -> np.ndarray:
    """Resample channel-first audio with soxr (the one resampler of rtstyle).

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)]
    orig_sr, target_sr : int > 0
    quality : str
        soxr's preset: ``'VHQ'``, ``'HQ'`` (default), ``'MQ'``, ``'LQ'`` or ``'QQ'``,
        case-insensitive; see :func:`resample_quality` for what each trades.

    Returns
    -------
    y : np.ndarray [shape=(m,) or (channels, m)], same dtype, ``m ~ n * target_sr / orig_sr``
        ``y`` itself when the rates are equal.

    Raises
    ------
    ParameterError
        A rate that is not a positive integer, or an unknown ``quality``.
    """
    orig_sr = positive_int(orig_sr, "orig_sr")
    target_sr = positive_int(target_sr, "target_sr")
    quality = resample_quality(quality)
    if orig_sr == target_sr:
        return y
    out = soxr.resample(np.asarray(y).T, orig_sr, target_sr, quality=quality).T
    return np.ascontiguousarray(out, dtype=y.dtype)


class Resampler:
    """Streaming soxr resampler (channel-first blocks), equal to :func:`resample` of the whole.

    It follows the streaming protocol (:class:`rtstyle.stream.protocol.StreamingStage`).
    soxr's stream is delay-compensated (:attr:`latency` is 0): the concatenated outputs of
    :meth:`feed` and :meth:`flush` equal the one-shot result at the same ``quality`` (tested for
    each), so a file resampled block by block is the same file. The stream holds samples back
    until its filter has seen enough input, and how many depends on ``quality``: live adds
    that hold-back to its buffer (:meth:`rtstyle.live.LiveEngine.prefill`). With equal rates it
    passes blocks through (``quality`` is checked, and has no effect).

    Parameters
    ----------
    orig_sr, target_sr : int > 0
    channels : int > 0
    quality : str
        ``'VHQ'``, ``'HQ'`` (default), ``'MQ'``, ``'LQ'`` or ``'QQ'``, case-insensitive; see
        :func:`resample_quality`. Hold-back measured with 64-sample chunks (the largest
        shortfall of output against ``input * target_sr / orig_sr`` once the stream runs,
        in samples at the output rate; soxr emits in bursts, so it swings below that):
        48000 → 22050 Hz: VHQ 1746, HQ 841, MQ 858, LQ 443, QQ 1;
        22050 → 48000 Hz: VHQ 1935, HQ 2011, MQ 2044, LQ 46, QQ 4.

    Attributes
    ----------
    latency : int
        0: output sample ``j`` is at time ``j / target_sr``, as input sample ``i`` is at
        ``i / orig_sr`` (the hold-back delays when output is returned, not where it lies).

    Raises
    ------
    ParameterError
        A rate or channel count that is not a positive integer, or an unknown ``quality``.
    """

    latency = 0

    def __init__(self, *, orig_sr: int, target_sr: int, channels: int,
                 quality: str = RESAMPLE_QUALITY):
        self.orig_sr = positive_int(orig_sr, "orig_sr")
        self.target_sr = positive_int(target_sr, "target_sr")
        self.channels = positive_int(channels, "channels")
        self.quality = resample_quality(quality)
        self._rs = None
        if self.orig_sr != self.target_sr:
            self._rs = soxr.ResampleStream(self.orig_sr, self.target_sr, self.channels,
                                           dtype="float32", quality=self.quality)

    def feed(self, x: np.ndarray) -> np.ndarray:
        """``x`` (channels, n) at ``orig_sr`` → the (channels, m) float32 ready at ``target_sr``."""
        return self._chunk(x, last=False)

    def flush(self) -> np.ndarray:
        """End the stream: its tail, (channels, m) float32; then :meth:`reset`."""
        out = self._chunk(np.zeros((self.channels, 0), np.float32), last=True)
        self.reset()
        return out

    def reset(self) -> None:
        """Forget the stream (soxr's ``clear``): the next :meth:`feed` starts a new one."""
        if self._rs is not None:
            self._rs.clear()

    def _chunk(self, x: np.ndarray, *, last: bool) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self._rs is None:
            return x
        out = self._rs.resample_chunk(np.ascontiguousarray(x.T), last=last)
        return np.ascontiguousarray(out.reshape(-1, self.channels).T)


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


class AudioWriter:
    """Write an audio file block by block, atomically (a context manager).

    The blocks go to a hidden temp file in the output's folder; leaving the ``with`` block
    normally renames it into place, an exception (``KeyboardInterrupt`` included) removes it
    and leaves ``path`` as it was. The rules of :func:`save_audio` apply (``overwrite``,
    ``protect``, ``format``, ``subtype``).

    A *recording* (``atomic=False``, ``sync_every=N``) is written in place instead: ``path``
    itself is created at the start (an existing file is replaced only with ``overwrite``, and
    only if it is a regular file), and its header is rewritten every ``N`` frames, so that
    whatever ends the process, SIGKILL and a crash included, ``path`` is a valid file holding
    everything up to its last header update (WAV, AIFF, W64, RF64, CAF, AU: libsndfile's
    ``SFC_UPDATE_HEADER_NOW``; other formats get no periodic header). Leaving the ``with``
    block, with or without an exception, finishes the file and keeps it: a recording cut
    short is still a recording.

    Examples
    --------
    >>> with AudioWriter("out.flac", sr=22050, channels=2) as w:  # doctest: +SKIP
    ...     for block in blocks:
    ...         w.write(block)                 # (channels, n)
    """

    def __init__(self, path, *, sr: int, channels: int, format=None, subtype=None,
                 overwrite: bool = False, protect=(), atomic: bool = True,
                 sync_every: int | None = None):
        self.path, self.sr, self.channels = path, positive_int(sr, "sr"), positive_int(channels, "channels")
        self._name = _path_name(path)
        self._fmt, self._subtype = format_and_subtype(self._name, format, subtype)
        self._overwrite, self._protect = overwrite, protect
        self._atomic = bool(atomic)
        self._sync_every = None if sync_every is None else positive_int(sync_every, "sync_every")
        self._synced = 0
        self.frames = 0

    def __enter__(self):
        if self._atomic:
            self._ctx = atomic_output(self.path, overwrite=self._overwrite, protect=self._protect)
            tmp = self._ctx.__enter__()
        else:
            self._ctx = None
            tmp = _create_in_place(self.path, overwrite=self._overwrite, protect=self._protect)
        try:
            self._f = sf.SoundFile(sf_path(tmp), "w", samplerate=self.sr, channels=self.channels,
                                   format=self._fmt, subtype=self._subtype)
        except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as err:
            full = _disk_full(tmp)
            if self._ctx is not None:
                self._ctx.__exit__(*sys.exc_info())
            else:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            if full:
                raise AudioFileError(f"{self._name}: {_NO_SPACE}") from None
            raise ParameterError(f"{self._name}: cannot write {self._fmt}/{self._subtype} with "
                                 f"{self.channels} channel(s) at sr={self.sr} ({_reason(err)})") from None
        self._tmp = tmp
        return self

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` (channels, n) or (n,) for one channel."""
        block = np.asarray(block)
        frames = block.reshape(self.channels, -1).T
        try:
            self._f.write(frames)
        except (sf.SoundFileError, RuntimeError, AssertionError) as err:
            raise _write_error(self._name, self._tmp, err) from None
        self.frames += frames.shape[0]
        if self._sync_every is not None and self.frames - self._synced >= self._sync_every:
            self.update_header()

    def update_header(self) -> None:
        """Rewrite the file's header for the frames written so far (where the format has one
        that libsndfile can update), so the file is valid as it stands."""
        self._synced = self.frames
        _update_header(self._f)

    def __exit__(self, *exc):
        try:
            self._f.close()
        except Exception as err:                # noqa: BLE001 - the original error matters more
            if exc[0] is None:
                failure = _write_error(self._name, self._tmp, err)
                if self._ctx is not None:
                    self._ctx.__exit__(type(failure), failure, None)
                raise failure from None
        if self._ctx is None:
            return False
        return self._ctx.__exit__(*exc)


#: libsndfile's SFC_UPDATE_HEADER_NOW (sndfile.h; soundfile's cffi declares no name for it).
_SFC_UPDATE_HEADER_NOW = 0x1060


def _update_header(f: sf.SoundFile) -> None:
    """Ask libsndfile to rewrite ``f``'s header now (best effort: a no-op where soundfile's
    internals differ or the format has no header to update)."""
    snd, ffi = getattr(sf, "_snd", None), getattr(sf, "_ffi", None)
    handle = getattr(f, "_file", None)
    if snd is None or ffi is None or handle is None:
        return
    with contextlib.suppress(Exception):
        snd.sf_command(handle, _SFC_UPDATE_HEADER_NOW, ffi.NULL, 0)


def _create_in_place(path, *, overwrite=False, protect=()) -> pathlib.Path:
    """Create ``path`` empty, for a recording written in place (see :class:`AudioWriter`).

    The rules of :func:`check_output_path` apply; an existing file is replaced (unlinked, then
    created anew) only with ``overwrite`` and only if it is a regular file.
    """
    target = check_output_path(path, overwrite=overwrite, protect=protect)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        pass
    except OSError as err:
        raise AudioFileError(f"{target}: cannot be checked ({err.strerror or err})") from None
    else:
        if not stat.S_ISREG(st.st_mode):
            raise AudioFileError(f"{target}: is not a regular file; refusing to replace it")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise AudioFileError(f"{target}: exists (use --overwrite to replace it)") from None
    except OSError as err:
        raise AudioFileError(f"{target}: cannot be created ({err.strerror or err})") from None
    os.close(fd)
    return target


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
        sr = positive_int(sr, "sr")
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


#: How a full disk is reported (errno ENOSPC's words, lower-case).
_NO_SPACE = "no space left on device"


def _disk_full(path) -> bool:
    """Whether the file system holding ``path`` has no block left for this user."""
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)) or ".")
    except (OSError, AttributeError):
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _write_error(name: str, tmp, err: BaseException) -> AudioFileError:
    """The one-line error of a failed audio write: a full disk said as such (libsndfile says
    "System error" or writes short, which soundfile asserts)."""
    if tmp is not None and _disk_full(tmp):
        return AudioFileError(f"{name}: {_NO_SPACE}")
    return AudioFileError(f"{name}: write failed ({_reason(err)})")


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


def _file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    for test, what in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return what
    return "not a regular file"


@contextlib.contextmanager
def _open_for_reading(path, name: str):
    try:
        f = sf.SoundFile(sf_path(path))
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as err:
        raise AudioFileError(f"{name}: not a readable audio file ({_reason(err)})") from None
    with f:
        yield f


# WAVE format tags whose block_align is the size of one frame (PCM, float, A-law, mu-law,
# extensible); for compressed tags (ADPCM, GSM...) a block holds many frames.
_WAVE_FRAME_TAGS = {0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE}
# AIFF-C compression types whose samples take ceil(bits / 8) bytes each.
_AIFC_PLAIN = {b"NONE", b"sowt", b"twos", b"raw ", b"in24", b"in32", b"fl32", b"FL32",
               b"fl64", b"FL64"}
_UNKNOWN_SIZES = {0, 0xFFFFFFFF}  # placeholders written by streaming writers


def _header_truncation(fh, size: int) -> str | None:
    """Walk a WAV/RF64 or AIFF chunk list; describe a truncation, or return None.

    libsndfile reads a WAV whose data chunk runs past the end of the file without complaint
    (it shortens the file's length), so that case is found here, from the header. Size fields
    holding 0 or 0xFFFFFFFF (left by writers that stream) mean "unknown" and are not flagged.
    Other formats return None (their truncation shows as a short or failing read).
    """
    head = fh.read(12)
    if len(head) < 12:
        return None
    try:
        if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
            return _walk_chunks(fh, size, "<", _WavChunks(rf64=head[:4] == b"RF64"))
        if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            return _walk_chunks(fh, size, ">", _AiffChunks(aifc=head[8:12] == b"AIFC"))
    except struct.error:  # a malformed header: let libsndfile judge it
        return None
    return None


def _walk_chunks(fh, size: int, endian: str, reader) -> str | None:
    """Visit each chunk after the 12-byte form header until ``reader`` gives a verdict.

    ``reader.visit(fh, chunk_id, chunk_size, offset, size)`` returns a message (truncated),
    ``""`` (the audio data is complete: stop) or None (go on). A chunk before the audio data
    that runs past the end of the file is a truncation too.
    """
    pos = 12
    while pos + 8 <= size:
        fh.seek(pos)
        chunk_id, chunk_size = struct.unpack(endian + "4sI", fh.read(8))
        offset = pos + 8
        if chunk_id != reader.data_id and offset + chunk_size > size:
            name = chunk_id.decode("latin-1").strip() or "?"
            return f"the file ends inside its '{name}' chunk, before the audio data"
        verdict = reader.visit(fh, chunk_id, chunk_size, offset, size)
        if verdict is not None:
            return verdict or None
        pos = offset + chunk_size + (chunk_size & 1)  # chunks are padded to an even length
    if pos < size:
        return "the file ends inside a chunk header, before the audio data"
    return None


class _WavChunks:
    data_id = b"data"

    def __init__(self, *, rf64: bool):
        self.rf64 = rf64
        self.block_align = self.tag = self.ds64_data_size = None

    def visit(self, fh, chunk_id, chunk_size, offset, size):
        if chunk_id == b"ds64" and chunk_size >= 16:
            _riff_size, self.ds64_data_size = struct.unpack("<QQ", fh.read(16))
        elif chunk_id == b"fmt " and chunk_size >= 14:
            self.tag, _ch, _sr, _rate, self.block_align = struct.unpack("<HHIIH", fh.read(14))
        elif chunk_id == b"data":
            declared = chunk_size
            if self.rf64 and chunk_size == 0xFFFFFFFF and self.ds64_data_size:
                declared = self.ds64_data_size
            elif declared in _UNKNOWN_SIZES:
                return ""
            held = size - offset
            if held >= declared:
                return ""
            if self.block_align and self.tag in _WAVE_FRAME_TAGS:
                return (f"header declares {declared // self.block_align} frames, "
                        f"file holds {held // self.block_align}")
            return f"header declares {declared} bytes of audio data, file holds {held}"
        return None


class _AiffChunks:
    data_id = b"SSND"

    def __init__(self, *, aifc: bool):
        self.aifc = aifc
        self.frames = self.frame_bytes = None

    def visit(self, fh, chunk_id, chunk_size, offset, size):
        if chunk_id == b"COMM" and chunk_size >= 18:
            body = fh.read(min(chunk_size, 22))
            channels, self.frames, bits = struct.unpack(">hIh", body[:8])
            compression = body[18:22] if self.aifc and len(body) >= 22 else b"NONE"
            if compression in _AIFC_PLAIN and channels > 0 and bits > 0:
                self.frame_bytes = channels * ((bits + 7) // 8)
        elif chunk_id == b"SSND":
            if offset + 8 > size:
                return "the file ends inside its 'SSND' chunk header, before the audio data"
            data_offset, _block = struct.unpack(">II", fh.read(8))
            start = offset + 8 + data_offset
            held = max(size - start, 0)
            if self.frames and self.frame_bytes:  # COMM came first, as it usually does
                if held // self.frame_bytes < self.frames:
                    return (f"header declares {self.frames} frames, "
                            f"file holds {held // self.frame_bytes}")
                return ""
            declared = chunk_size - 8 - data_offset
            if chunk_size in _UNKNOWN_SIZES or held >= declared:
                return ""
            return f"header declares {declared} bytes of audio data, file holds {held}"
        return None


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------


def save_audio(path, y, *, sr, subtype=None, format=None, overwrite=False, protect=()):
    """Write audio to a file, atomically, refusing to overwrite unless asked (never an input).

    Parameters
    ----------
    path : str or os.PathLike
        Output file. Its folder must exist.
    y : np.ndarray [shape=(n,) or (channels, n)], floating point, finite
        Audio in librosa's channel-first order. Values are written as they are: nothing is
        rescaled, so with an integer ``subtype`` (the default) samples beyond [-1, 1] are
        clipped by libsndfile. Use ``subtype='FLOAT'`` to keep them.
    sr : int > 0
        Sample rate.
    subtype : str or None
        libsndfile subtype (``'PCM_16'``, ``'PCM_24'``, ``'FLOAT'``, ``'VORBIS'``...). ``None``
        uses soundfile's default for the format: ``'PCM_16'`` for WAV, FLAC and AIFF, Vorbis for
        OGG (Opus for ``.opus``), MPEG Layer III for MP3.
    format : str or None
        libsndfile format (``'WAV'``, ``'FLAC'``...). ``None`` infers it from the extension
        (``.wav``, ``.flac``, ``.ogg``, ``.aiff``/``.aif``, ``.mp3``, ``.caf``, ...).
    overwrite : bool
        Replace an existing file. Without it an existing ``path`` is an error.
    protect : path or iterable of paths
        Files never to overwrite, even with ``overwrite=True`` (a program's inputs).

    Returns
    -------
    path : pathlib.Path
        The file written.

    Raises
    ------
    ParameterError
        Bad ``y`` (including more channels than samples: a transposed array) or ``sr``;
        an unknown extension or format; a subtype the format cannot hold;
        a channel count or rate the format cannot hold.
    AudioFileError
        ``path`` exists (without ``overwrite``), is one of ``protect``, is a folder, its folder
        is missing or not writable, or the write failed. ``path`` is then left as it was, and
        no temp file remains.

    See Also
    --------
    atomic_output : the same rules for any other output file.
    load_audio

    Notes
    -----
    The audio goes to a hidden temp file in the same folder (``.NAME.tmp-PID-XXXXXXXX.EXT``),
    is flushed to disk, then renamed over ``path`` with :func:`os.replace`, so readers see the
    old file or the complete new one, never a partial one, even after Ctrl-C.

    Examples
    --------
    >>> save_audio("out.wav", y, sr=22050)  # doctest: +SKIP
    >>> save_audio("in.wav", y, sr=22050, overwrite=True, protect=["in.wav"])  # doctest: +SKIP
    Traceback (most recent call last):
    AudioFileError: in.wav: is an input file; refusing to overwrite it
    """
    y = valid_audio(y)
    if y.ndim == 2 and y.shape[0] > y.shape[1]:
        raise ParameterError(
            f"y.shape={y.shape} has more channels than samples; audio is channel-first "
            "(channels, n): transpose an (n, channels) array with y.T"
        )
    sr = positive_int(sr, "sr")
    name = _path_name(path)
    fmt, subtype = format_and_subtype(name, format, subtype)
    channels = 1 if y.ndim == 1 else y.shape[0]
    frames = y.reshape(channels, -1).T  # (n, channels), soundfile's order

    with atomic_output(path, overwrite=overwrite, protect=protect) as tmp:
        try:
            f = sf.SoundFile(sf_path(tmp), "w", samplerate=sr, channels=channels, format=fmt,
                             subtype=subtype)
        except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as err:
            reason = _reason(err)
            if _disk_full(tmp):
                raise AudioFileError(f"{name}: {_NO_SPACE}") from None
            what = (f"{name}: cannot write {fmt}/{subtype} with {channels} channel(s) "
                    f"at sr={sr} ({reason})")
            if reason.lower().startswith("system error"):
                raise AudioFileError(what) from None
            raise ParameterError(what) from None
        try:
            with f:
                # soundfile asserts that every frame was written: a full disk shows as that
                f.write(frames)
        except (sf.SoundFileError, RuntimeError, AssertionError) as err:
            raise _write_error(name, tmp, err) from None
    return pathlib.Path(path)


def _path_name(path) -> str:
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        raise ParameterError(f"path={path!r} must be a str or os.PathLike") from None


def format_and_subtype(name: str, format, subtype) -> tuple[str, str]:
    """The soundfile format and subtype an output named ``name`` gets (checked, not written).

    ``format`` and ``subtype`` override the extension and soundfile's default subtype; an
    unknown extension or an impossible pair raises ParameterError naming them.
    """
    formats = sf.available_formats()
    default_subtype = None
    if format is not None:
        fmt = str(format).upper()
        if fmt not in formats:
            listed = ", ".join(f for f in ("WAV", "FLAC", "OGG", "AIFF", "MP3") if f in formats)
            raise ParameterError(
                f"format={format!r} is not an audio format libsndfile writes; "
                f"use one of {listed}, ... (soundfile.available_formats())"
            )
    else:
        ext = os.path.splitext(name)[1][1:].lower()
        if ext in _EXTRA_EXTENSIONS:
            fmt, default_subtype = _EXTRA_EXTENSIONS[ext]
        elif ext.upper() in formats and ext != "raw":
            fmt = ext.upper()
        else:
            listed = ", ".join(f".{e}" for e in _COMMON_EXTENSIONS if e.upper() in formats)
            shown = f"extension '.{ext}'" if ext else "no extension"
            raise ParameterError(
                f"{name}: unknown audio file type ({shown}); use one of {listed}, ... "
                "or pass format="
            )
    if subtype is None:
        subtype = default_subtype or sf.default_subtype(fmt)
    else:
        subtype = str(subtype).upper()
        if not sf.check_format(fmt, subtype):
            listed = ", ".join(sf.available_subtypes(fmt))
            raise ParameterError(
                f"subtype={subtype!r} is not valid for {fmt} files; use one of {listed}"
            )
    return fmt, subtype


def check_output_path(path, *, overwrite=False, protect=()) -> pathlib.Path:
    """Check that ``path`` may be written, without writing anything.

    A command calls this for each of its outputs first, so it fails in a second rather than
    after minutes of computation; :func:`atomic_output` (and so :func:`save_audio`) calls it
    again before writing.

    Parameters
    ----------
    path : str or os.PathLike
        The output file.
    overwrite : bool
        Allow replacing an existing file.
    protect : path or iterable of paths
        Files never to overwrite, even with ``overwrite=True``. Compared with
        :func:`os.path.samefile` when both exist (so hard links and symlinks to an input
        count), else by resolved path.

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    AudioFileError
        ``path`` is one of ``protect``; exists and ``overwrite`` is False; is a folder; or its
        folder is missing or not writable.
    """
    name = _path_name(path)
    target = pathlib.Path(name)
    if isinstance(protect, (str, bytes, os.PathLike)):
        protect = (protect,)
    for other in protect:
        if _same_path(target, pathlib.Path(_path_name(other))):
            raise AudioFileError(f"{name}: is an input file; refusing to overwrite it")
    try:
        st = os.stat(target)                # follows links: what a write would replace
    except FileNotFoundError:
        st = None                           # nothing there (or a dangling link)
    except OSError as err:                  # a symlink loop (ELOOP), a folder we cannot search
        raise AudioFileError(f"{name}: cannot be checked ({err.strerror or err})") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise AudioFileError(f"{name}: is a folder")
    if os.path.lexists(target) and not overwrite:
        raise AudioFileError(f"{name}: exists (use --overwrite to replace it)")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise AudioFileError(f"{name}: is {_file_kind(st.st_mode)}, not a regular file; "
                             "refusing to replace it")
    folder = target.parent
    if not folder.is_dir():
        raise AudioFileError(f"{name}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AudioFileError(f"{name}: folder {str(folder)!r} is not writable")
    return target


def _same_path(a: pathlib.Path, b: pathlib.Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, RuntimeError, ValueError):     # RuntimeError: a symlink loop (pathlib)
        return os.path.abspath(a) == os.path.abspath(b)


@contextlib.contextmanager
def atomic_output(path, *, overwrite=False, protect=()):
    """Context manager: write an output via a temp file, then move it into place atomically.

    The same rules as :func:`save_audio`, for any writer: ``path`` is checked with
    :func:`check_output_path`; the block writes to the yielded temp path (a hidden file in the
    same folder, with the same extension, created empty); on success it is flushed to disk and
    renamed over ``path``. On any exception in the block, ``KeyboardInterrupt`` included, the
    temp file is removed, ``path`` is left untouched, and the exception propagates. (The
    ``rtstyle`` command turns SIGTERM and SIGHUP into such an exception too.) A process killed
    outright (SIGKILL) cannot clean up: its temp file, named with its process id, is removed by
    the next write to the same ``path`` (:func:`remove_stale_temps`).

    Parameters
    ----------
    path : str or os.PathLike
    overwrite : bool
    protect : path or iterable of paths
        As for :func:`check_output_path`.

    Yields
    ------
    tmp : pathlib.Path
        Where to write, e.g. ``fig.savefig(tmp, format="png")``. Pass the format explicitly
        when the writer guesses it from the name (the temp name keeps the extension).

    Raises
    ------
    AudioFileError
        As :func:`check_output_path` (checked before the block and again just before the
        rename, in case the target appeared meanwhile), or the temp file cannot be created or
        moved.

    Examples
    --------
    >>> with atomic_output("report.json", overwrite=True) as tmp:  # doctest: +SKIP
    ...     tmp.write_text(json.dumps(report))
    """
    target = check_output_path(path, overwrite=overwrite, protect=protect)
    tmp = _create_temp(target)
    try:
        try:
            yield tmp
        except AudioFileError:
            raise
        except OSError as err:          # the writer's own error: a full disk, an I/O error
            if err.errno == errno.ENOSPC or _disk_full(tmp):
                raise AudioFileError(f"{target}: {_NO_SPACE}") from None
            raise AudioFileError(f"{target}: cannot write ({err.strerror or err})") from None
        _fsync(tmp)
        check_output_path(path, overwrite=overwrite, protect=protect)
        with contextlib.suppress(OSError):
            if overwrite and target.exists():   # keep the replaced file's permissions
                os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
            else:                               # writers that recreate the file (safetensors)
                os.chmod(tmp, 0o666 & ~_UMASK)  # may leave it 0600: the umask's default
        try:
            os.replace(tmp, target)
        except OSError as err:
            raise AudioFileError(
                f"{target}: cannot move the finished file into place ({err.strerror or err})"
            ) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(target.parent)


#: The longest file name most file systems take (bytes); temp names are kept within it.
_NAME_MAX = 255
#: Room kept in a temp name for the pid (Linux pids have at most 7 digits).
_PID_DIGITS = 10


def _temp_parts(target: pathlib.Path) -> tuple[str, str]:
    """``(prefix, ext)`` of ``target``'s temp names: ``PREFIX<pid>-<8 hex>EXT``.

    ``PREFIX`` is ``.STEM.tmp-``, with ``STEM`` shortened where needed so that the whole name
    stays within :data:`_NAME_MAX` bytes (a valid 250-byte output name still gets a temp).
    It depends only on ``target``, so a later run finds the temps of an earlier one.
    """
    stem, ext = target.stem or target.name, target.suffix
    room = _NAME_MAX - len(os.fsencode(f"..tmp--{ext}")) - _PID_DIGITS - 8
    while stem and len(os.fsencode(stem)) > room:
        stem = stem[:-1]
    return f".{stem}.tmp-", ext


def _create_temp(target: pathlib.Path) -> pathlib.Path:
    """Create an empty hidden temp file next to ``target``, with the umask's permissions.

    Its name, ``.STEM.tmp-PID-XXXXXXXX.EXT``, carries this process's id, so that the temp
    files of a run that was killed (SIGKILL, a power cut: no handler runs) are recognised and
    removed by the next write to the same output (:func:`remove_stale_temps`).
    (``tempfile.mkstemp`` would create it 0600, and the final file would keep that.)
    """
    remove_stale_temps(target)
    prefix, ext = _temp_parts(target)
    for _ in range(100):
        tmp = target.with_name(f"{prefix}{os.getpid()}-{secrets.token_hex(4)}{ext}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as err:
            if err.errno == errno.ENOSPC:
                raise AudioFileError(f"{target}: {_NO_SPACE}") from None
            raise AudioFileError(
                f"{target}: cannot create a file in {str(target.parent)!r} "
                f"({err.strerror or err})"
            ) from None
        os.close(fd)
        return tmp
    raise AudioFileError(f"{target}: cannot create a temp file in {str(target.parent)!r}")


def remove_stale_temps(path) -> list[pathlib.Path]:
    """Remove the temp files that killed runs left behind for the output ``path``.

    Only files that match this module's own temp-name pattern for ``path``
    (``.STEM.tmp-PID-XXXXXXXX.EXT``, see :func:`atomic_output`), are regular files of this
    user, and whose process ``PID`` no longer exists are removed: a temp file of a run still
    going (this process or another) is left alone. A no-op where process ids cannot be
    checked (not POSIX). Returns the files removed.
    """
    if os.name != "posix":
        return []
    target = pathlib.Path(_path_name(path))
    prefix, ext = _temp_parts(target)
    pattern = re.compile(f"{re.escape(prefix)}([0-9]{{1,10}})-[0-9a-f]{{8}}{re.escape(ext)}\\Z")
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return []
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(pathlib.Path(entry.path))
    return removed


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (POSIX; when in doubt, True: keep the file)."""
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)                 # signal 0: a check, nothing is sent
    except ProcessLookupError:
        return False
    except OSError:                     # PermissionError: it exists, owned by another user
        return True
    return True


def _fsync(path: pathlib.Path) -> None:
    """Flush a finished file to disk (best effort: some file systems refuse fsync)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        raise AudioFileError(f"{path}: the temp file vanished before it could be kept") from None
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: pathlib.Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
