"""Presets of ``rtstyle live`` (``--preset`` / ``--save-preset``): the :data:`DEFAULTS` keys as
TOML."""

from __future__ import annotations

import json
import math

from ..errors import ParameterError
from .settings import DEFAULTS

__all__ = ["load_preset", "save_preset", "preset_text"]


def _toml_loads(text: str) -> dict:
    try:
        import tomllib                                  # Python >= 3.11
    except ModuleNotFoundError:                         # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def load_preset(path) -> dict:
    """Read a preset (TOML) → the settings it holds (a subset of :data:`DEFAULTS`).

    Raises ParameterError for a missing or malformed file, or an unknown key.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise ParameterError(f"--preset {path}: cannot read it ({err.strerror or err})") from None
    except UnicodeDecodeError:                 # e.g. an audio file given by mistake
        raise ParameterError(f"--preset {path}: not a TOML preset (not UTF-8 text)") from None
    try:
        data = _toml_loads(text)
    except Exception as err:                   # noqa: BLE001 - tomllib.TOMLDecodeError
        raise ParameterError(f"--preset {path}: not valid TOML ({err})") from None
    unknown = sorted(set(data) - set(DEFAULTS) - {"format"})
    if unknown:
        raise ParameterError(f"--preset {path}: unknown setting(s) {', '.join(unknown)}; a preset "
                             f"holds {', '.join(DEFAULTS)}")
    data.pop("format", None)
    if isinstance(data.get("style"), str):
        data["style"] = [s.strip() for s in data["style"].split(",")]
    return data


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, float):
        if math.isinf(v):
            return "-inf" if v < 0 else "inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))


def preset_text(settings: dict) -> str:
    lines = ["# rtstyle live preset (rtstyle live --preset THIS.toml)", "format = 1"]
    for k in DEFAULTS:
        v = settings.get(k)
        if v is None:
            lines.append(f"# {k}: default")
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def save_preset(path, settings: dict, *, overwrite: bool = False) -> None:
    """Write the :data:`DEFAULTS` keys of ``settings`` as TOML, atomically."""
    from ..io.atomic import atomic_output

    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(preset_text(settings), encoding="utf-8")
