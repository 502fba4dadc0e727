"""The one progress bar helper of long loops (``transfer``'s iterations, ``train``'s steps)."""

from __future__ import annotations

__all__ = ["progress_bar"]


def progress_bar(total: int, *, desc: str, unit: str, initial: int = 0, enabled: bool = True):
    """A tqdm bar of ``total`` items starting at ``initial``, or None when not ``enabled`` or
    there is nothing to count (callers test for None, so no tqdm import when off)."""
    if not enabled or total <= 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)
