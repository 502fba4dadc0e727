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
    in ordinary code. The helper waits until the hook has returned: a signal handled inside
    the hook itself would be swallowed once more, and for good ("Exception ignored in
    sys.unraisablehook"; seen on a busy machine, where the main thread can stay in the hook
    past the delay). Should a redelivered stop still meet the hook, it is delivered again.

    A stop can also land while such a library builds an object: the half-built object's
    finaliser then fails (llvmlite: "'PipelineTuningOptions' object has no attribute
    '_as_parameter_'"), during the clean-up or as the process exits. That is the stop's doing,
    reported already in one line, so after a stop every such failure is silent: while
    installed, and after :meth:`__exit__` for the rest of the process.
    """

    #: Seconds before a swallowed stop is delivered again.
    REDELIVER_S = 0.005

    def __init__(self):
        import threading

        self.signum: int | None = None
        self._raised = False
        self._old = {}
        self._old_hook = None
        self._in_hook = False
        self._cancel = threading.Event()

    def _handler(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        if self.signum == signum and not self._raised:
            if self._in_hook:                     # raised here it would be lost: once more
                self._redeliver(signum)
                return
            self._raised = True
            raise Stopped(signum)

    def _redeliver(self, signum: int) -> None:
        """Send ``signum`` to this process again, :attr:`REDELIVER_S` from now and once
        :meth:`_unraisable` has returned (from a daemon thread; :meth:`__exit__` cancels)."""
        import os
        import threading
        import time

        def later():
            if self._cancel.wait(self.REDELIVER_S):
                return
            while self._in_hook and not self._cancel.is_set():
                time.sleep(0.001)
            if not self._cancel.is_set():
                os.kill(os.getpid(), signum)

        threading.Thread(target=later, name="rtstyle-stop-redeliver", daemon=True).start()

    def _unraisable(self, unraisable):
        self._in_hook = True
        try:
            return self._on_unraisable(unraisable)
        finally:
            self._in_hook = False

    def _on_unraisable(self, unraisable):
        import signal

        exc = unraisable.exc_value
        if self.signum is not None and not isinstance(exc, KeyboardInterrupt):
            return None                           # a finaliser of what the stop cut short
        if isinstance(exc, Stopped):
            self._raised = False                  # let the redelivered signal raise
            self._redeliver(exc.signum)
        elif isinstance(exc, KeyboardInterrupt):  # Ctrl-C swallowed the same way
            self._redeliver(signal.SIGINT)
        else:
            return self._old_hook(unraisable)
        return None

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

        self._cancel.set()                 # the command ended first: main reports the stop
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
