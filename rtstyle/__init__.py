"""rtstyle: real-time audio style transfer.

The public API is imported lazily so that ``import rtstyle`` (and the CLI's ``--help``) stay
fast and never load torch or an audio device until asked.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["load_audio", "save_audio", "transfer", "__version__"]

_LAZY = {
    "load_audio": ("rtstyle.io.files", "load_audio"),
    "save_audio": ("rtstyle.io.files", "save_audio"),
    "transfer": ("rtstyle.transfer", "transfer"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rtstyle' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
