"""The engine's thread policy (DESIGN.md, Engine settings and threads).

A stream's work per hop is small: one frame through a small net, a few FFTs of ``n_fft``
samples, the phase kernels. Spread over several threads it gains little on an idle machine and
loses much on a busy one, where the threads of one torch call wait for each other behind other
processes (issue 13, 2 cores, a 60-s default render: 7.0 s idle; 17.7–30.9 s with two busy
processes beside it at torch's default thread count, 10.6 s with one thread). So ``render`` and
``live`` run the engine on one thread unless told otherwise (``--threads N``, ``threads=N``),
set where the engine starts, with no environment variable needed:

- torch: ``torch.set_num_threads(threads)`` (process-wide; a live worker thread follows it);
- BLAS (numpy's and scipy's OpenBLAS) through ``threadpoolctl`` where it is installed (it comes
  with librosa's scikit-learn);
- numba: nothing to set: rtstyle's kernels are compiled without ``parallel=True``, so they run
  on the calling thread (a test checks).

:func:`use_threads` returns the function that puts the previous settings back: ``render`` calls
it when the input is done, ``live`` when the session closes.
"""

from __future__ import annotations

import sys
from typing import Callable

from .._validate import bounded_int

__all__ = ["DEFAULT_THREADS", "use_threads"]

#: Threads per stream unless told otherwise.
DEFAULT_THREADS = 1


def use_threads(threads: int = DEFAULT_THREADS) -> Callable[[], None]:
    """Run the engine's torch (and BLAS) on ``threads`` threads; returns the undo function.

    torch is set only if something imported it (the styles' nets do; ``identity`` alone runs
    no torch, and importing it costs a second): call this after the styles are loaded.
    """
    threads = bounded_int(threads, "threads")
    undo = []
    torch = sys.modules.get("torch")
    if torch is not None:
        old = torch.get_num_threads()
        if old != threads:
            torch.set_num_threads(threads)
            undo.append(lambda: torch.set_num_threads(old))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:                       # pragma: no cover - it comes with librosa
        pass
    else:
        try:
            limits = threadpool_limits(limits=threads, user_api="blas")
        except Exception:                     # noqa: BLE001 - never stop a stream for BLAS
            pass
        else:
            undo.append(limits.restore_original_limits)

    def restore() -> None:
        while undo:
            undo.pop()()

    return restore
