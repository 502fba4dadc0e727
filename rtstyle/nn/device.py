"""Torch device selection with a clean fallback (CI and most laptops have no GPU)."""

from __future__ import annotations

import logging

import torch

from .._validate import one_of

__all__ = ["resolve_device", "DEVICES"]

DEVICES = ("cpu", "cuda")
log = logging.getLogger("rtstyle")


def resolve_device(device: str) -> str:
    """Return ``device`` if it can run here, else ``'cpu'`` with one warning line.

    Parameters
    ----------
    device : {'cpu', 'cuda'} or 'cuda:N'
    """
    base = device.split(":", 1)[0] if isinstance(device, str) else device
    one_of(base, DEVICES, "device")
    if base == "cuda" and not torch.cuda.is_available():
        log.warning("device=%s: CUDA is not available here; running on the CPU", device)
        return "cpu"
    return device
