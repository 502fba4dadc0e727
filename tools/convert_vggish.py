"""Convert the public PyTorch VGGish port's weights to safetensors, once.

rtstyle never unpickles user files. The PyTorch port of VGGish (harritaylor/torchvggish)
releases its weights as a ``torch.save`` state dict (``vggish-10086976.pth``); this tool reads it
with ``torch.load(weights_only=True)`` (tensors and plain containers only, no code), keeps the
``features.*`` and ``embeddings.*`` tensors (the ``pproc.*`` PCA parameters are dropped; rtstyle
uses the raw 128-d embedding), checks them against :class:`rtstyle.nn.vggish.VGGish` and writes
a safetensors file that :func:`rtstyle.nn.vggish.load_vggish` reads.

Usage::

    python tools/convert_vggish.py vggish-10086976.pth -o vggish.safetensors [--overwrite]

Exit status: 0 on success, 2 on any user error (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import os
import stat
import sys

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from rtstyle.errors import AudioFileError, ModelError, RtStyleError
from rtstyle.io.files import atomic_output, check_output_path
from rtstyle.nn.vggish import check_vggish_tensors

PROG = "convert_vggish"
_KEPT_PREFIXES = ("features.", "embeddings.")
_DROPPED_PREFIXES = ("pproc.",)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Convert the PyTorch VGGish port's state dict (.pth) to safetensors for "
                    "rtstyle's perceptual content loss.",
        epilog="example: python tools/convert_vggish.py vggish-10086976.pth "
               "-o vggish.safetensors",
    )
    p.add_argument("input", help="state dict saved with torch.save (e.g. vggish-10086976.pth)")
    p.add_argument("-o", "--output", help="output .safetensors file "
                   "(default: the input's name with a .safetensors suffix)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return p


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Read the port's state dict with ``weights_only=True`` and keep VGGish's tensors.

    Raises
    ------
    ModelError
        Missing or unreadable file, something ``weights_only`` refuses (arbitrary pickles), not
        a mapping of tensors, or keys/shapes that are not VGGish's.
    """
    if not os.path.isfile(path):
        raise ModelError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError (bad zip), EOFError, OSError…
        raise ModelError(f"{path}: cannot read as a weights-only PyTorch state dict "
                         f"({_first_line(exc)})") from exc
    if not isinstance(obj, dict):
        raise ModelError(f"{path}: holds a {type(obj).__name__}, expected a state dict")
    tensors = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise ModelError(f"{path}: state-dict key {key!r} is not a string")
        if key.startswith(_DROPPED_PREFIXES):
            continue
        tensors[key] = value
    check_vggish_tensors(tensors, name=path)
    return {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}


def convert(input_path: str, output_path: str, *, overwrite: bool = False) -> int:
    """Convert ``input_path`` to ``output_path``; return the number of tensors written.

    The output is checked before the input is read, and written atomically
    (:func:`rtstyle.io.files.atomic_output`): a failure leaves no partial file behind.

    Raises
    ------
    ModelError
        A bad input, or an output name that does not end in ``.safetensors``.
    AudioFileError
        An output that exists (without ``overwrite``), is the input, is a folder, lies in a
        folder that does not exist or is not writable, or cannot be written.
    """
    if not output_path.lower().endswith(".safetensors"):
        raise ModelError(f"{output_path}: output name must end in .safetensors")
    check_output_path(output_path, overwrite=overwrite, protect=[input_path])
    tensors = read_state_dict(input_path)
    metadata = {"format": "rtstyle-vggish", "source": os.path.basename(input_path)}
    with atomic_output(output_path, overwrite=overwrite, protect=[input_path]) as tmp:
        mode = tmp.stat().st_mode  # the usual permissions (umask), as atomic_output made it
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as exc:  # I/O errors come back as this, not OSError
            raise AudioFileError(f"{output_path}: cannot write ({_first_line(exc)})") from None
        # save_file writes its own mkstemp file (0600) and renames it over tmp: undo that
        os.chmod(tmp, stat.S_IMODE(mode))
    return len(tensors)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 2 user error)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, message already printed)
        return int(exc.code or 0)
    output = args.output or os.path.splitext(args.input)[0] + ".safetensors"
    try:
        n = convert(args.input, output, overwrite=args.overwrite)
    except RtStyleError as exc:  # ModelError, AudioFileError: one line naming the file
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: error: {output}: cannot write ({exc.strerror or _first_line(exc)})",
              file=sys.stderr)
        return 2
    print(f"wrote {output} ({n} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
