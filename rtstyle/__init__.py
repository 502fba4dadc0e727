"""rtstyle: real-time audio style transfer.

``import rtstyle`` stays light (numpy only): the file functions and ``load_model`` are imported
on first use, and the modules whose public function shares their name (``rtstyle.transfer``,
``rtstyle.render``) import their heavy dependencies inside that function. Those functions are
bound here eagerly, because a lazy attribute would be replaced by the submodule as soon as
anything imports ``rtstyle.transfer`` or ``rtstyle.render``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["load_audio", "save_audio", "load_model", "Streamer", "EngineSettings", "render",
           "transfer", "__version__"]

from .render import render  # noqa: E402  (after __version__: the CLI reads it)
from .transfer import transfer  # noqa: E402

_LAZY = {
    "load_audio": ("rtstyle.io.files", "load_audio"),
    "save_audio": ("rtstyle.io.files", "save_audio"),
    "load_model": ("rtstyle.models", "load_model"),
    "Streamer": ("rtstyle.stream", "Streamer"),
    "EngineSettings": ("rtstyle.engine_settings", "EngineSettings"),
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
