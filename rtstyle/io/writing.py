"""Writing audio files: :func:`save_audio` (a whole signal, atomically), :class:`AudioWriter`
(block by block: atomically, or a recording in place whose header stays valid) and the format
and subtype a file name gets (:func:`format_and_subtype`). The rules of
:mod:`rtstyle.io.atomic` apply; audio that cannot be written raises
:class:`~rtstyle.errors.AudioFileError`."""

from __future__ import annotations

import contextlib
import os
import pathlib
import stat
import sys

import numpy as np
import soundfile as sf

from .._validate import positive_int, valid_audio
from ..errors import AudioFileError, ParameterError
from .atomic import _NO_SPACE, _disk_full, _path_name, atomic_output, check_output_path
from .reading import _reason, sf_path

__all__ = ["save_audio", "AudioWriter", "format_and_subtype"]

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
        except BaseException:          # a stop (Ctrl-C, SIGTERM) while the file opens: no temp
            if self._ctx is not None:
                self._ctx.__exit__(*sys.exc_info())
            else:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise
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


def _write_error(name: str, tmp, err: BaseException) -> AudioFileError:
    """The one-line error of a failed audio write: a full disk said as such (libsndfile says
    "System error" or writes short, which soundfile asserts)."""
    if tmp is not None and _disk_full(tmp):
        return AudioFileError(f"{name}: {_NO_SPACE}")
    return AudioFileError(f"{name}: write failed ({_reason(err)})")
