"""Safe, atomic outputs for every file rtstyle writes (audio, reports, presets, models, figures).

:func:`check_output_path` checks an output before any work (never overwrite unless told, never
an input, the folder writable); :func:`atomic_output` writes through a hidden temp file in the
same folder and renames it into place, so an output is the old file or the complete new one,
never a partial one, even after Ctrl-C; :func:`remove_stale_temps` clears what killed runs
left. Failures raise :class:`~rtstyle.errors.OutputFileError`, whatever the file holds.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import re
import secrets
import stat

from ..errors import AudioFileError, OutputFileError, ParameterError

__all__ = ["atomic_output", "check_output_path", "remove_stale_temps"]

#: The process umask, read once at import (os.umask can only be read by setting it, which is
#: not thread-safe later on).
_UMASK = os.umask(0o022)
os.umask(_UMASK)

#: How a full disk is reported (errno ENOSPC's words, lower-case).
_NO_SPACE = "no space left on device"


def _disk_full(path) -> bool:
    """Whether the file system holding ``path`` has no block left for this user."""
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)) or ".")
    except (OSError, AttributeError):
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _path_name(path) -> str:
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        raise ParameterError(f"path={path!r} must be a str or os.PathLike") from None


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
    OutputFileError
        ``path`` is one of ``protect``; exists and ``overwrite`` is False; is a folder; or its
        folder is missing or not writable.
    """
    name = _path_name(path)
    target = pathlib.Path(name)
    if isinstance(protect, (str, bytes, os.PathLike)):
        protect = (protect,)
    for other in protect:
        if _same_path(target, pathlib.Path(_path_name(other))):
            raise OutputFileError(f"{name}: is an input file; refusing to overwrite it")
    try:
        st = os.stat(target)                # follows links: what a write would replace
    except FileNotFoundError:
        st = None                           # nothing there (or a dangling link)
    except OSError as err:                  # a symlink loop (ELOOP), a folder we cannot search
        raise OutputFileError(f"{name}: cannot be checked ({err.strerror or err})") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputFileError(f"{name}: is a folder")
    if os.path.lexists(target) and not overwrite:
        raise OutputFileError(f"{name}: exists (use --overwrite to replace it)")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputFileError(f"{name}: is {_file_kind(st.st_mode)}, not a regular file; "
                              "refusing to replace it")
    folder = target.parent
    if not folder.is_dir():
        raise OutputFileError(f"{name}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputFileError(f"{name}: folder {str(folder)!r} is not writable")
    return target


def _same_path(a: pathlib.Path, b: pathlib.Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, RuntimeError, ValueError):     # RuntimeError: a symlink loop (pathlib)
        return os.path.abspath(a) == os.path.abspath(b)


def _file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    for test, what in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return what
    return "not a regular file"


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
    OutputFileError
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
        except AudioFileError:          # ours (an OutputFileError) or an audio writer's: as is
            raise
        except OSError as err:          # the writer's own error: a full disk, an I/O error
            if err.errno == errno.ENOSPC or _disk_full(tmp):
                raise OutputFileError(f"{target}: {_NO_SPACE}") from None
            raise OutputFileError(f"{target}: cannot write ({err.strerror or err})") from None
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
            raise OutputFileError(
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
                raise OutputFileError(f"{target}: {_NO_SPACE}") from None
            raise OutputFileError(
                f"{target}: cannot create a file in {str(target.parent)!r} "
                f"({err.strerror or err})"
            ) from None
        try:
            os.close(fd)
        except BaseException:           # a stop right after the create: leave no temp
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp
    raise OutputFileError(f"{target}: cannot create a temp file in {str(target.parent)!r}")


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
        raise OutputFileError(f"{path}: the temp file vanished before it could be kept") from None
    except OSError:
        return
    _fsync_fd(fd)


def _fsync_folder(folder: pathlib.Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    _fsync_fd(fd)


def _fsync_fd(fd: int) -> None:
    """``os.fsync(fd)`` (best effort: some file systems refuse it), then close ``fd``."""
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
