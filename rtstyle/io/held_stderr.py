"""What C libraries write straight to file descriptor 2, held while a call that may fail runs
(PortAudio opening a stream, libsndfile probing a file), so a failure reads as rtstyle's one
line instead of after the library's own chatter."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile

__all__ = ["held_stderr"]

log = logging.getLogger("rtstyle")


@contextlib.contextmanager
def held_stderr(library: str):
    """Hold what is written on file descriptor 2 while the body runs. On success it is written
    out as it came; after an error, only at ``-v`` (as "``library`` said: ..."; the error
    rtstyle raises says what happened, in one line).

    Process-wide: another thread's writes to fd 2 in that window are held with it.
    """
    try:
        saved = os.dup(2)
    except OSError:                            # no stderr descriptor: nothing to hold
        yield
        return
    failed = False
    with tempfile.TemporaryFile() as held:
        try:
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):
            pass
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read()
            if text and not failed:
                os.write(2, text)
            elif text:
                log.debug("%s said: %s", library, text.decode(errors="replace").strip())
