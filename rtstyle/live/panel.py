"""The terminal side of ``rtstyle live``: :class:`Panel` (one refreshing status line),
:class:`KeyReader` (single keys) and :data:`KEY_HELP`."""

from __future__ import annotations

import os
import sys
import time

__all__ = ["Panel", "KeyReader", "KEY_HELP"]


class Panel:
    """One refreshing line on a terminal; a plain line every ``every`` s otherwise."""

    def __init__(self, stream=None, *, every: float = 5.0, refresh: float = 0.2):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = refresh if self.tty else every
        self._next = 0.0
        self._shown = False

    def update(self, session) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        line = session.status_line()
        if self.tty:
            import shutil

            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + line[:width].ljust(width))
            self._shown = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


class KeyReader:
    """Single keys from a terminal (cbreak mode, restored on exit); None where unavailable."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdin
        self._old = None

    @classmethod
    def open(cls):
        try:
            import termios  # noqa: F401
            import tty      # noqa: F401
        except ImportError:
            return None
        if not (hasattr(sys.stdin, "isatty") and sys.stdin.isatty()):
            return None
        return cls()

    def __enter__(self):
        import termios
        import tty

        fd = self.stream.fileno()
        self._old = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        return self

    def __exit__(self, *exc):
        import termios

        if self._old is not None:
            termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._old)
            self._old = None
        return False

    def read(self, timeout: float) -> list[str]:
        import select

        fd = self.stream.fileno()
        keys = []
        ready, _, _ = select.select([fd], [], [], timeout)
        while ready:
            ch = os.read(fd, 1).decode("utf-8", "replace")
            if not ch:
                break
            keys.append(ch)
            ready, _, _ = select.select([fd], [], [], 0)
        return keys


KEY_HELP = "keys: 1-9 style, space bypass, +/- mix, [/] gain, q quit"
