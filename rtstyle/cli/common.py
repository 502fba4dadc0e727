"""What the subcommands share: the parser and its help format, ``-q``/``-v``, the engine's flags
(walked from :class:`~rtstyle.engine_settings.EngineSettings`, so ``render`` and ``live`` take
the same ones), the style list's helpers, and checks of paths given on the command line.

Nothing here imports torch: ``rtstyle --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging

from ..engine_settings import DEFAULTS as ENGINE_DEFAULTS
from ..engine_settings import PARAMS, EngineSettings, Param
from ..errors import ParameterError

__all__ = ["log", "Formatter", "Parser", "add_command", "add_common", "add_engine_flags", "engine_settings",
           "STYLE_REF_HELP", "choices_text", "one_line", "real_path", "regular_input",
           "warn_no_effect", "with_refs"]

log = logging.getLogger("rtstyle")

#: Help of ``--style-ref`` (``render``, ``live``).
STYLE_REF_HELP = ("a recording (10 s or more) whose sound is a style at once, no training (its "
                  "band statistics; appended to --style, or the only style without it); "
                  "repeatable")


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions and examples as written; each flag's default after its help (none for a
    default of None: the help says what it means)."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and the exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def add_command(sub, name: str, *, help: str, description: str, epilog: str):
    """A subcommand's parser: ``description`` and ``epilog`` (its examples) dedented, the
    shared help format, and ``-q`` / ``-v``."""
    import textwrap

    parser = sub.add_parser(name, help=help, formatter_class=Formatter,
                            description=textwrap.dedent(description),
                            epilog=textwrap.dedent(epilog))
    add_common(parser)
    return parser


def add_common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``-q`` / ``-v``, on the top parser and on every subcommand."""
    # On subcommands the default is SUPPRESS, so 'rtstyle -q transfer ...' is not undone by the
    # subparser's own default.
    default = False if top else argparse.SUPPRESS
    g = parser.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="only errors; no progress bar")
    g.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="more detail (timings, settings)")


def _flag_type(name: str, param: Param):
    """The flag's text → its value, checked by the setting's own check: a bad value is
    argparse's one-line error naming the flag and the setting's message."""
    def parse(text):
        value = param.parse(text)          # ValueError: argparse's "invalid int value: 'x'"
        try:
            return param.check(value, name)
        except ParameterError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    parse.__name__ = param.parse.__name__
    return parse


def add_engine_flags(parser: argparse.ArgumentParser, *, preset: bool = False):
    """The group "style and engine": a flag per engine setting (dest: the setting's name), plus
    ``--style-ref`` and ``--models-dir``; returns the group, for a command's own engine flags.

    ``preset=False`` (``render``): each flag's default is the setting's. ``preset=True``
    (``live``): an unset flag is absent from the parsed arguments, so a preset's value or the
    default applies (:func:`engine_settings`), and the help states the default.
    """
    title = "style and engine" + (" (default: --preset, else the value shown)" if preset else "")
    g = parser.add_argument_group(title)
    for name, param in PARAMS.items():
        default = ENGINE_DEFAULTS[name]
        kw = {"dest": name, "help": param.help,
              "default": argparse.SUPPRESS if preset else default}
        if preset and default is not None:
            kw["help"] += f" (default: {default})"
        if param.parse is None:
            kw["action"] = "store_true"
        elif param.choices is not None:
            kw.update(type=param.parse, choices=param.choices)
        else:
            kw.update(type=_flag_type(name, param), metavar=param.metavar)
        g.add_argument(param.flag, **kw)
    g.add_argument("--style-ref", action="append", metavar="CLIP", help=STYLE_REF_HELP)
    g.add_argument("--models-dir", metavar="DIR",
                   help="user model folder (default: $RTSTYLE_MODELS or the user data dir)")
    return g


def engine_settings(args, **changes) -> EngineSettings:
    """The engine settings the flags in ``args`` give, with ``changes``."""
    given = {k: getattr(args, k) for k in PARAMS if hasattr(args, k)}
    return EngineSettings(**{**given, **changes})


def choices_text(values) -> str:
    return "|".join(values)


def one_line(err) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def real_path(path) -> str:
    """``path`` made absolute with its links resolved as far as they go, to compare outputs
    (``os.path.realpath``: a symlink loop is left as it is, where pathlib's resolve() raised
    RuntimeError)."""
    import os

    return os.path.realpath(os.fspath(path))


def regular_input(path, flag: str) -> None:
    """Refuse an input that is not a regular file (a FIFO blocks until a writer comes, a device
    never ends); a missing file is left to its reader, which says so."""
    import os
    import stat

    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as err:
        raise ParameterError(f"{flag} {path}: cannot read ({err.strerror or err})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ParameterError(f"{flag} {path}: is not a regular file")


def warn_no_effect(styles, *, morph, strength) -> None:
    """One warning line for a setting that can do nothing with this style list."""
    styles = list(styles or [])
    if morph and len(styles) < 2:
        log.warning("warning: --morph %g has no effect: it blends toward the next style of the "
                    "list, and the list has one (%s)", morph, styles[0] if styles else "identity")
    if strength is not None and strength != 1 and styles and all(s == "identity" for s in styles):
        log.warning("warning: --strength %g has no effect with the style 'identity' (it blends "
                    "the input toward a style)", strength)


def with_refs(styles, refs) -> list:
    """The style list with a zero-shot ``ref=CLIP`` entry appended per ``--style-ref``."""
    from ..style_ref import REF_PREFIX

    return list(styles) + [REF_PREFIX + str(r) for r in (refs or [])]
