"""Stop signals: SIGTERM and SIGHUP act like Ctrl-C while a command runs (:class:`StopSignals`),
so the same clean-ups run (temp files removed, recordings finished, a training checkpointed)."""

from __future__ import annotations

import sys

__all__ = ["Stopped", "StopSignals", "signal_name"]


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C's ``KeyboardInterrupt``, so the
    same clean-ups run: temp files removed, recordings finished, a training checkpointed."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.stopped_by = signal_name(signum).lower()


def signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopSignals:
    """While a command runs: SIGTERM and SIGHUP act like Ctrl-C (:class:`Stopped`).

    Only the first one raises; later ones are ignored while the clean-up runs (a second
    Ctrl-C still interrupts it). Installed only in the main thread, and the previous handlers
    are restored at exit (``main`` is also called in-process, by tests).

    A signal that lands while Python runs a finaliser (a ``__del__``, a weakref callback:
    numba and llvmlite free objects that way mid-render) would raise where Python can only
    print "Exception ignored" and carry on, so the stop would be lost and a traceback shown.
    While installed, ``sys.unraisablehook`` catches such a swallowed stop (or Ctrl-C), prints
    nothing, and delivers the signal again a moment later from a helper thread, so it raises
    in ordinary code.

    A stop can also land while such a library builds an object: the half-built object's
    finaliser then fails (llvmlite: "'PipelineTuningOptions' object has no attribute
    '_as_parameter_'"), during the clean-up or as the process exits. That is the stop's doing,
    reported already in one line, so after a stop every such failure is silent: while
    installed, and after :meth:`__exit__` for the rest of the process.
    """

    #: Seconds before a swallowed stop is delivered again.
    REDELIVER_S = 0.005

    def __init__(self):
        self.signum: int | None = None
        self._raised = False
        self._old = {}
        self._old_hook = None
        self._timers = []

    def _handler(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        if self.signum == signum and not self._raised:
            self._raised = True
            raise Stopped(signum)

    def _unraisable(self, unraisable):
        import os
        import signal
        import threading

        exc = unraisable.exc_value
        if self.signum is not None and not isinstance(exc, KeyboardInterrupt):
            return None                           # a finaliser of what the stop cut short
        if isinstance(exc, Stopped):
            self._raised = False                  # let the redelivered signal raise
            signum = exc.signum
        elif isinstance(exc, KeyboardInterrupt):  # Ctrl-C swallowed the same way
            signum = signal.SIGINT
        else:
            return self._old_hook(unraisable)
        timer = threading.Timer(self.REDELIVER_S, os.kill, (os.getpid(), signum))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in ("SIGTERM", "SIGHUP"):
                sig = getattr(signal, name, None)
                if sig is not None:
                    try:
                        self._old[sig] = signal.signal(sig, self._handler)
                    except (OSError, ValueError):
                        pass
            self._old_hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
        return self

    def __exit__(self, *exc):
        import signal

        for timer in self._timers:         # the command ended first: main reports the stop
            timer.cancel()
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if self._old_hook is not None:
            stopped = self.signum is not None or (exc[0] is not None
                                                  and issubclass(exc[0], KeyboardInterrupt))
            sys.unraisablehook = _quiet_after_stop if stopped else self._old_hook
        return False


def _quiet_after_stop(unraisable) -> None:
    """``sys.unraisablehook`` once a command was stopped: finalisers of objects the stop cut
    short fail as the process exits; print nothing (:class:`StopSignals`)."""
    return None
