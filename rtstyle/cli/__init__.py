"""The ``rtstyle`` command: one entry point; a subcommand imports what it needs when it runs.

User errors (bad flags, bad files, bad values) print one line, ``rtstyle: error: ...``, and exit
2; Ctrl-C exits 130 and leaves no partial output file (every write goes to a temp file that is
renamed into place only when complete). SIGTERM and SIGHUP act like Ctrl-C and exit 128 + the
signal's number (143, 129); ``live`` finishes its recordings on all three.

The package holds a module per subcommand (``transfer``, ``render``, ``live``, ``styles``,
``devices``, ``midi_ports``, ``latency_test``, ``train``: each an ``add(subparsers)`` and a
``run(args)``), :mod:`~rtstyle.cli.common` (the parser, the shared and the engine's flags) and
:mod:`~rtstyle.cli.signals` (stop signals); this module builds the parser and runs a command
(:func:`main`), turning every user error into one line. Importing it, building the parser and
``--help`` import neither torch nor numba.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .. import __version__
from . import devices, latency_test, live, midi_ports, render, styles, train, transfer
from .common import Formatter, Parser, add_common, log
from .signals import StopSignals, Stopped, signal_name

# The names tests and tools/ import from rtstyle.cli (it was one module).
_Stopped, _StopSignals = Stopped, StopSignals

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rtstyle", formatter_class=Formatter,
        description="Real-time audio style transfer: make a voice or an instrument sound like "
                    "another sound.",
        epilog="Run 'rtstyle COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"rtstyle {__version__}")
    add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    transfer.add(sub)
    render.add(sub)
    live.add(sub)
    styles.add(sub)
    devices.add(sub)
    midi_ports.add(sub)
    latency_test.add(sub)
    train.add(sub)
    return parser


def _setup_logging(args) -> None:
    level = logging.ERROR if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rtstyle: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _say(line: str) -> None:
    """Print one line to stderr; after SIGHUP the terminal may be gone (EIO): say nothing."""
    try:
        print(line, file=sys.stderr)
    except OSError:
        pass


#: Flags (argparse dests) that size an allocation or a loop, and the bounds they are held to
#: (``rtstyle._validate.LIMITS``; rates ``MIN_SR..MAX_SR``), checked before any command runs.
_SIZE_FLAGS = ("n_fft", "hop_length", "block_size", "phase_iters", "lookahead", "filters",
               "n_mels", "n_mfcc", "kernel_size", "pool_width", "hidden", "layers", "bands",
               "steps", "iterations", "batch_size", "chunk_frames", "val_chunks", "threads",
               "input_channel", "output_channels")


#: Float flags with bounds: (lowest, highest).
_FLOAT_FLAGS = {"margin": (0.0, 10000.0),
                "duration": (0.0, 1e7), "interval": (0.0, 3600.0)}


def _check_sizes(parser, args) -> None:
    """Every size flag within its bounds (one line, exit 2, as argparse's own errors)."""
    import math

    from .._validate import LIMITS, MAX_SR, MIN_SR

    prog = f"{parser.prog} {args.command}"

    def error(message):
        parser.exit(2, f"{prog}: error: {message} (see '{prog} --help')\n")

    checks = [(dest, LIMITS[dest]) for dest in _SIZE_FLAGS] + [("sr", (MIN_SR, MAX_SR))]
    for dest, (lo, hi) in checks:
        value = getattr(args, dest, None)
        if isinstance(value, int) and not isinstance(value, bool) and not lo <= value <= hi:
            unit = " Hz" if dest == "sr" else ""
            error(f"argument --{dest.replace('_', '-')}: {dest}={value} is out of bounds "
                  f"({lo}..{hi}{unit})")
    for dest, (lo, hi) in _FLOAT_FLAGS.items():
        value = getattr(args, dest, None)
        if isinstance(value, float) and not (math.isfinite(value) and lo <= value <= hi):
            error(f"argument --{dest.replace('_', '-')}: {dest}={value:g} is out of bounds "
                  f"({lo:g}..{hi:g})")


def _safe_streams() -> None:
    """Print file names that are not valid in the terminal's encoding (a non-UTF-8 name, held
    as surrogate escapes) escaped, instead of failing with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict":
            try:
                stream.reconfigure(errors="backslashreplace")
            except (AttributeError, ValueError, OSError):
                pass


def _os_error_line(err: OSError) -> str:
    """One line for an OSError that no rtstyle check turned into its own error."""
    what = err.strerror or str(err) or type(err).__name__
    name = err.filename
    if name is not None:
        name = name if isinstance(name, str) else repr(name)
        return f"{name}: {what[:1].lower()}{what[1:]}"
    return " ".join(what.split())


def main(argv=None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error, 130 interrupted, 128 + n on
    signal n: SIGTERM 143, SIGHUP 129)."""
    _safe_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _check_sizes(parser, args)
    _setup_logging(args)
    from ..errors import RtStyleError

    with StopSignals() as stop:
        try:
            status = args.func(args)
        except RtStyleError as err:
            if stop.signum is not None:        # a signal cut the work short, then this
                _say(f"rtstyle: stopped by {signal_name(stop.signum)}: {err}")
                return 128 + stop.signum
            _say(f"rtstyle: error: {err}")
            return 2
        except KeyboardInterrupt:
            if stop.signum is not None:
                _say(f"rtstyle: stopped by {signal_name(stop.signum)}; "
                     "no partial output was written")
                return 128 + stop.signum
            _say("rtstyle: interrupted; no partial output was written")
            return 130
        except OSError as err:
            if stop.signum is not None:        # e.g. printing to the terminal SIGHUP closed
                return 128 + stop.signum
            # an OS failure no check foresaw (a full disk, a folder we may not read): one line
            _say(f"rtstyle: error: {_os_error_line(err)}")
            return 2
        except RecursionError:
            _say("rtstyle: error: an input is nested too deeply to read (RecursionError)")
            return 2
        except MemoryError:
            _say("rtstyle: error: out of memory (an input or a setting asks for more than this "
                 "machine has)")
            return 2
        if stop.signum is not None:            # a command that stops on it (live) and kept
            _say(f"rtstyle: stopped by {signal_name(stop.signum)}")     # its outputs
            return 128 + stop.signum
        return status
