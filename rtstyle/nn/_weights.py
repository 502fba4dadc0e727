"""Reading weights files safely: safetensors only, pickles refused without being opened as such.

Shared by :func:`rtstyle.nn.vggish.load_vggish` and :mod:`rtstyle.models`. Importing this module
does not import torch (the model registry lists models without it); :func:`read_safetensors`
imports it when called.
"""

from __future__ import annotations

import os

from ..errors import ModelError

__all__ = ["PICKLE_SUFFIXES", "sniff_pickle", "path_name", "read_safetensors"]

#: Refused without reading a byte: these are (or usually are) pickles.
PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar"})


def path_name(path) -> str:
    """``path`` as a str for messages (bytes paths decoded)."""
    name = os.fspath(path)
    return name if isinstance(name, str) else os.fsdecode(name)


def sniff_pickle(path) -> str | None:
    """Say what a file is if its first bytes show a torch zip or a pickle, else None.

    A safetensors file starts with its header length (8 bytes, little-endian) followed by
    ``{``; such a file is never called a pickle, even when the low byte of its header length
    happens to be ``0x80`` (a pickle's protocol-2+ opcode).
    """
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        return None
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (torch.save format)"
    if head[:1] == b"\x80":
        return "a pickle"
    return None


def read_safetensors(path, *, what: str, hint: str = "") -> dict:
    """Read every tensor of a ``.safetensors`` file onto the CPU, refusing pickles.

    Parameters
    ----------
    path : str or os.PathLike
    what : str
        What the file should hold, for messages (``"VGGish weights"``, ``"model weights"``).
    hint : str
        Appended to the pickle refusal (how to convert such a file), or empty.

    Returns
    -------
    tensors : dict[str, torch.Tensor]

    Raises
    ------
    ModelError
        One line naming the file: a pickle suffix (refused before opening), a missing file or a
        folder, bytes that are a pickle or a torch zip (refused; never unpickled), an unreadable
        file, or not valid safetensors (garbage, truncated).
    """
    name = path_name(path)
    tail = f": {hint}" if hint else ""
    suffix = os.path.splitext(name)[1].lower()
    if suffix in PICKLE_SUFFIXES:
        raise ModelError(f"{name}: refusing to load a '{suffix}' (pickle) file; {what} "
                         f"must be safetensors{tail}")
    if not os.path.exists(name):
        raise ModelError(f"{name}: no such file")
    if os.path.isdir(name):
        raise ModelError(f"{name}: is a folder, expected a .safetensors file")
    import safetensors

    try:
        kind = sniff_pickle(name)
        if kind is not None:
            raise ModelError(f"{name}: is {kind}, not safetensors; refusing to unpickle it{tail}")
        tensors = {}
        with safetensors.safe_open(name, framework="pt", device="cpu") as fh:
            for key in fh.keys():
                tensors[key] = fh.get_tensor(key)
    except ModelError:
        raise
    except OSError as exc:
        raise ModelError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    except Exception as exc:  # safetensors raises its own SafetensorError (and others)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{name}: not a valid safetensors file ({first})") from exc
    return tensors
