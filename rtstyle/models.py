"""Model files and the model registry.

A *model* is a pair of files with the same stem: ``NAME.safetensors`` (the
:class:`~rtstyle.nn.transform.TransformNet` weights; never a pickle) and ``NAME.json`` (the
model card: format version, every config needed to rebuild the net, style names, training
data, metrics, licence). One model holds one style or several (a conditioned net).

Where models are found, in this order:

1. *bundled*: the repository's ``models/`` folder, shipped inside the wheel as
   ``rtstyle/_bundled_models`` (found with :mod:`importlib.resources`);
2. *user*: ``models_dir`` (the CLI's ``--models-dir``), else the environment variable
   ``RTSTYLE_MODELS``, else the platform's user data folder (``$XDG_DATA_HOME/rtstyle/models``
   or ``~/.local/share/rtstyle/models`` on Linux, ``~/Library/Application
   Support/rtstyle/models`` on macOS, ``%LOCALAPPDATA%\\rtstyle\\models`` on Windows);
3. a *path*: to the ``.safetensors`` file, the ``.json`` card, or their common stem.

A bare name is looked up as bundled, then user, then as a stem in the current folder; a bundled
model hides a user model of the same name (which :func:`list_styles` then marks). A model's name
is its file stem.

A *style* is named ``MODEL`` (the model's first style) or ``MODEL:STYLE``
(:func:`resolve_style`). :func:`list_styles` lists every style, bundled first then user models,
each by name, reading only the JSON cards (no torch import), so it stays cheap.

Functions
---------
save_model      write NAME.safetensors + NAME.json atomically, checking the card
load_model      find, check and load a model -> :class:`Model`
resolve_style   ``MODEL`` or ``MODEL:STYLE`` -> (Model, style index)
list_styles     the ``rtstyle styles --json`` list
model_folders   the bundled and user folders that would be searched
"""

from __future__ import annotations

import json
import numbers
import os
import pathlib
import stat
import sys
from dataclasses import dataclass
from typing import NamedTuple

from ._validate import LIMITS, MAX_SR, MIN_SR
from .config import (LIMITER_LOOKAHEAD_MS, EncoderConfig, FeatureConfig, StftConfig,
                     TransformConfig)
from .errors import ModelError, ParameterError
from .nn._weights import PICKLE_SUFFIXES, path_name

__all__ = [
    "Model",
    "save_model",
    "load_model",
    "resolve_style",
    "list_styles",
    "model_folders",
    "user_models_dir",
    "FORMAT_VERSION",
    "CARD_KEYS",
    "STREAMING_DEFAULTS",
]

#: The model-card format this rtstyle writes and the newest it reads.
FORMAT_VERSION = 1
#: Keys every model card has.
CARD_KEYS = ("format_version", "name", "styles", "sr", "stft", "features", "encoder",
             "architecture", "defaults", "training", "quality", "licence")
#: Streaming settings a card's ``defaults`` may leave out (those of ``rtstyle render``).
STREAMING_DEFAULTS = {"lookahead": 1, "phase_init": "input"}
#: Environment variable naming the user models folder.
ENV_VAR = "RTSTYLE_MODELS"

_WEIGHTS = ".safetensors"
_CARD = ".json"
#: A model card larger than this is refused unread (the bundled ones are ~20 kB).
MAX_CARD_BYTES = 4 << 20
#: Equal to ``rtstyle.dsp.phase_stream.PHASE_INITS`` and ``MAX_LOOKAHEAD`` (a test checks);
#: repeated so that listing models imports no numba.
_PHASE_INITS = ("input", "rtpghi", "random")
_MAX_LOOKAHEAD = 3
#: The most streaming state (cached frames x hidden channels) a card may ask for.
_MAX_STATE = 1 << 24
# Not allowed in model or style names: path separators, the MODEL:STYLE separator, the
# --style list separator.
_BAD_NAME_CHARS = set("/\\:,")


# ----------------------------------------------------------------------------------------------
# the model card


class _Card(NamedTuple):
    """What a checked card says, parsed."""

    stft: StftConfig
    arch: TransformConfig
    styles: list
    defaults: dict


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _check_name(value, what: str) -> str | None:
    """Why ``value`` is not a valid model/style name, or None."""
    if not isinstance(value, str) or not value.strip():
        return f"{what}={value!r} must be a non-empty string"
    bad = sorted(set(value) & _BAD_NAME_CHARS)
    if bad:
        return f"{what}={value!r} must not contain {' '.join(repr(c) for c in bad)}"
    if value.startswith("."):
        return f"{what}={value!r} must not start with '.'"
    if value != value.strip():
        return f"{what}={value!r} must not start or end with spaces"
    return None


def _check_card(card, where: str) -> _Card:
    """Check a model card; raise one-line ModelError ``"{where}: ..."`` on the first problem."""
    def fail(msg):
        raise ModelError(f"{where}: {msg}")

    if not isinstance(card, dict):
        fail(f"the model card must be a JSON object, got {type(card).__name__}")
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        more = (f" (and {len(missing) - 1} more: {', '.join(missing[1:])})"
                if len(missing) > 1 else "")
        fail(f"model card lacks key '{missing[0]}'{more}")
    version = card["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        fail(f"format_version={version!r} must be a positive integer")
    if version > FORMAT_VERSION:
        fail(f"format_version={version} is newer than this rtstyle reads ({FORMAT_VERSION}); "
             "upgrade rtstyle")
    problem = _check_name(card["name"], "name")
    if problem:
        fail(problem)
    styles = card["styles"]
    if not isinstance(styles, list) or not styles:
        fail("styles must be a non-empty list of {\"name\": ..., \"references\": [...]}")
    names = []
    for i, s in enumerate(styles):
        if not isinstance(s, dict) or "name" not in s:
            fail(f"styles[{i}] must be an object with a 'name'")
        problem = _check_name(s["name"], f"styles[{i}].name")
        if problem:
            fail(problem)
        if not isinstance(s.get("references", []), list):
            fail(f"styles[{i}].references must be a list")
        names.append(s["name"])
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        fail(f"style name {dup[0]!r} appears twice")
    for key in ("stft", "features", "encoder", "architecture", "defaults", "training",
                "quality"):
        if not isinstance(card[key], dict):
            fail(f"{key} must be a JSON object, got {type(card[key]).__name__}")
    if not isinstance(card["licence"], str) or not card["licence"].strip():
        fail(f"licence={card['licence']!r} must be a non-empty string")
    try:
        sr = card["sr"]
        stft_d = dict(card["stft"])
        if stft_d.setdefault("sr", sr) != sr:
            fail(f"stft.sr={stft_d['sr']!r} differs from sr={sr!r}")
        stft = StftConfig.from_dict(stft_d)
        FeatureConfig.from_dict(card["features"])
        EncoderConfig.from_dict(card["encoder"])
        arch = TransformConfig.from_dict(card["architecture"])
    except (ParameterError, TypeError) as err:
        fail(_one_line(err))
    # Sizes drive allocations (a 1-kB card asked for 12 TB): bound them before anything is built.
    sizes = [("stft.n_fft", stft.n_fft, "n_fft"), ("stft.hop_length", stft.hop_length, "hop_length"),
             ("architecture.hidden", arch.hidden, "hidden"),
             ("architecture.layers", arch.layers, "layers"),
             ("architecture.kernel_size", arch.kernel_size, "kernel_size"),
             ("architecture.embed_dim", arch.embed_dim, "embed_dim"),
             ("architecture.n_styles", arch.n_styles, "n_styles"),
             ("architecture.lookahead", arch.lookahead, "lookahead")]
    if arch.output == "gain":
        sizes.append(("architecture.bands", arch.bands, "bands"))
    for label, value, key in sizes:
        lo, hi = LIMITS[key]
        if not lo <= value <= hi:
            fail(f"{label}={value} is out of bounds ({lo}..{hi})")
    lo, hi = LIMITS["dilation"]
    for d in arch.layer_dilations:          # layers is bounded above: a short loop
        if not lo <= d <= hi:
            fail(f"architecture: a dilation of {d} is out of bounds ({lo}..{hi})")
    if arch.context * arch.hidden > _MAX_STATE:
        fail(f"architecture: a receptive field of {arch.context} frames of {arch.hidden} "
             f"channels is more streaming state than rtstyle keeps ({_MAX_STATE} values)")
    if not MIN_SR <= stft.sr <= MAX_SR:
        fail(f"sr={stft.sr} is out of bounds ({MIN_SR}..{MAX_SR} Hz)")
    if arch.bins != stft.n_bins:
        fail(f"architecture.bins={arch.bins} does not match 1 + n_fft // 2 = {stft.n_bins} "
             f"(n_fft={stft.n_fft})")
    if arch.n_styles != len(names):
        fail(f"architecture.n_styles={arch.n_styles} but the card names {len(names)} style(s)")
    defaults = {**STREAMING_DEFAULTS, **card["defaults"]}
    problem = _check_defaults(defaults)
    if problem:
        fail(problem)
    return _Card(stft, arch, names, defaults)


def _check_defaults(d: dict) -> str | None:
    """Why a card's streaming ``defaults`` are invalid, or None (unknown keys are kept)."""
    def integer(x):
        return isinstance(x, int) and not isinstance(x, bool)

    la = d["lookahead"]
    if not integer(la) or not 0 <= la <= _MAX_LOOKAHEAD:
        return f"defaults.lookahead={la!r} must be an integer in 0..{_MAX_LOOKAHEAD}"
    if d["phase_init"] not in _PHASE_INITS:
        return (f"defaults.phase_init={d['phase_init']!r} must be one of "
                f"{', '.join(_PHASE_INITS)}")
    iters = d.get("phase_iters")
    lo, hi = LIMITS["phase_iters"]
    if iters is not None and (not integer(iters) or not lo <= iters <= hi):
        return f"defaults.phase_iters={iters!r} must be an integer in {lo}..{hi} or null"
    m = d.get("momentum")
    if m is not None and (isinstance(m, bool) or not isinstance(m, (int, float))
                          or not 0 <= m < 1):
        return f"defaults.momentum={m!r} must be a number in [0, 1) or null"
    return None


def _latency_samples(info: _Card) -> int:
    """Stream latency with the card's default settings: window + phase look-ahead + net
    look-ahead + the output limiter's look-ahead (as ``Streamer.latency``)."""
    n_fft, hop = info.stft.n_fft, info.stft.hop_length
    limiter = max(1, int(round(LIMITER_LOOKAHEAD_MS * info.stft.sr / 1000)))
    return n_fft + (info.defaults["lookahead"] - 1) * hop + info.arch.lookahead * hop + limiter


def _read_card(path: pathlib.Path):
    try:
        # O_NONBLOCK: a FIFO opens at once (and is refused below) instead of waiting for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError
            if not stat.S_ISREG(st.st_mode):
                raise ModelError(f"{path}: is not a regular file; expected a model card (.json)")
            if st.st_size > MAX_CARD_BYTES:
                raise ModelError(f"{path}: {st.st_size} bytes, more than a model card holds "
                                 f"(at most {MAX_CARD_BYTES})")
            with os.fdopen(os.dup(fd), "rb") as fh:
                data = fh.read(MAX_CARD_BYTES + 1)
        finally:
            os.close(fd)
        return json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelError(f"{path}: is a folder, expected a model card (.json)") from None
    except OSError as err:
        raise ModelError(f"{path}: cannot read ({err.strerror or err})") from None
    except RecursionError:
        raise ModelError(f"{path}: not a valid JSON model card (nested too deeply)") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise ModelError(f"{path}: not a valid JSON model card ({_one_line(err)})") from None


# ----------------------------------------------------------------------------------------------
# folders


def user_models_dir() -> pathlib.Path:
    """The platform's default user models folder (it may not exist).

    ``%LOCALAPPDATA%\\rtstyle\\models`` on Windows, ``~/Library/Application
    Support/rtstyle/models`` on macOS, else ``$XDG_DATA_HOME/rtstyle/models`` with
    ``XDG_DATA_HOME`` defaulting to ``~/.local/share``. ``RTSTYLE_MODELS`` is not consulted here
    (see :func:`model_folders`).
    """
    home = pathlib.Path.home()
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA")
        root = pathlib.Path(base) if base else home / "AppData" / "Local"
    elif sys.platform == "darwin":
        root = home / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        root = pathlib.Path(xdg) if os.path.isabs(xdg) else home / ".local" / "share"
    return root / "rtstyle" / "models"


def _bundled_dir() -> pathlib.Path | None:
    """``rtstyle/_bundled_models`` of an installed wheel, else the source tree's ``models/``."""
    try:
        from importlib.resources import files

        root = files("rtstyle") / "_bundled_models"
        if isinstance(root, pathlib.Path) and root.is_dir():
            return root
    except (ImportError, OSError, TypeError, ValueError):
        pass
    repo = pathlib.Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file() and (repo / "models").is_dir():
        return repo / "models"
    return None


def _user_dir(models_dir) -> pathlib.Path | None:
    if models_dir is not None:
        source, folder = "models folder", pathlib.Path(path_name(models_dir))
    elif os.environ.get(ENV_VAR):
        source, folder = ENV_VAR, pathlib.Path(os.environ[ENV_VAR])
    else:
        folder = user_models_dir()
        return folder if folder.is_dir() else None
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        raise ModelError(f"{source} {folder}: does not exist") from None
    except OSError as err:
        raise ModelError(f"{source} {folder}: cannot be read ({err.strerror or err})") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ModelError(f"{source} {folder}: is not a folder")
    return folder


def model_folders(models_dir=None) -> dict:
    """The folders searched for models: ``{"bundled": Path or None, "user": Path or None}``.

    Raises
    ------
    ModelError
        ``models_dir`` (or ``RTSTYLE_MODELS``) is given but is not an existing folder.
    """
    return {"bundled": _bundled_dir(), "user": _user_dir(models_dir)}


def _stems(folder: pathlib.Path | None) -> list[str]:
    """Model stems in a folder (from cards and weights; hidden and temp files skipped)."""
    if folder is None:
        return []
    stems = set()
    try:
        entries = list(os.scandir(folder))
    except OSError as err:
        raise ModelError(f"models folder {folder}: cannot list ({err.strerror or err})") from None
    for e in entries:
        name = e.name
        if name.startswith("."):
            continue
        for suffix in (_CARD, _WEIGHTS):
            if name.endswith(suffix) and len(name) > len(suffix):
                stems.add(name[: -len(suffix)])
    return sorted(stems)


def _files(base: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """(weights, card) for a stem path (names may hold dots, so no with_suffix)."""
    return base.with_name(base.name + _WEIGHTS), base.with_name(base.name + _CARD)


def _present(path: pathlib.Path) -> bool:
    """Whether ``path`` exists; a folder that cannot be searched (EACCES), a symlink loop or
    a name that is too long is a one-line ModelError, not a traceback."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as err:
        raise ModelError(f"{path}: cannot be read ({err.strerror or err})") from None
    except ValueError:                  # an embedded NUL
        return False
    return True


def _exists(base: pathlib.Path) -> bool:
    if not base.name or base.name in (".", ".."):
        return False
    w, c = _files(base)
    return _present(w) or _present(c)


# ----------------------------------------------------------------------------------------------
# listing


def _entries(stem: str, folder: pathlib.Path, bundled: bool, shadowed: bool) -> list[dict]:
    weights, card_path = _files(folder / stem)
    base = {"name": stem, "model": stem, "path": str(weights), "sr": None, "n_fft": None,
            "hop_length": None, "latency_ms": None, "latency_samples": None, "styles": [],
            "bundled": bundled, "error": None}
    try:
        if shadowed:
            raise ModelError(f"{card_path}: hidden by the bundled model of the same name; "
                             "load it by path")
        if not _present(card_path):
            raise ModelError(f"{weights}: has no model card {card_path.name}")
        info = _check_card(_read_card(card_path), str(card_path))
        if not _present(weights):
            raise ModelError(f"{card_path}: its weights {weights.name} are missing")
    except ModelError as err:
        return [{**base, "error": str(err)}]
    samples = _latency_samples(info)
    common = {**base, "sr": info.stft.sr, "n_fft": info.stft.n_fft,
              "hop_length": info.stft.hop_length,
              "latency_ms": round(1000.0 * samples / info.stft.sr, 3),
              "latency_samples": samples, "styles": list(info.styles)}
    if len(info.styles) == 1:
        return [common]
    return [{**common, "name": f"{stem}:{s}"} for s in info.styles]


def list_styles(models_dir=None) -> list[dict]:
    """Every style of every bundled and user model, as ``rtstyle styles --json`` lists them.

    Only the JSON model cards are read (no torch import, no weights loaded).

    Parameters
    ----------
    models_dir : str or os.PathLike or None
        The user models folder; ``None`` means ``RTSTYLE_MODELS`` or the platform's default.

    Returns
    -------
    styles : list of dict
        Bundled models first, then user models, each by name; one entry per style. Keys:
        ``name`` (``MODEL`` for a one-style model, else ``MODEL:STYLE``), ``model``, ``path``
        (the ``.safetensors`` file), ``sr``, ``n_fft``, ``hop_length``, ``latency_ms`` and
        ``latency_samples`` (engine latency with the card's default streaming settings: phase
        reconstruction ``n_fft + (lookahead - 1) * hop_length`` plus the net's look-ahead
        frames times ``hop_length``), ``styles`` (the model's style names), ``bundled``, and
        ``error``: ``None``, or one line saying why the model cannot be used (a broken or
        missing card, missing weights, a user model hidden by a bundled one). A broken model is
        listed, not fatal, so one bad file does not hide the others; its other values are
        ``None``/empty, and a style list built from this must skip it.

    Raises
    ------
    ModelError
        ``models_dir`` (or ``RTSTYLE_MODELS``) is given but is not an existing folder.
    """
    folders = model_folders(models_dir)
    bundled_stems = _stems(folders["bundled"])
    out = []
    for stem in bundled_stems:
        out += _entries(stem, folders["bundled"], True, False)
    if folders["user"] is not None and folders["user"] != folders["bundled"]:
        for stem in _stems(folders["user"]):
            out += _entries(stem, folders["user"], False, stem in bundled_stems)
    return out


# ----------------------------------------------------------------------------------------------
# loading


@dataclass(repr=False)
class Model:
    """A loaded model: its card, its net (eval mode, frozen) and where it came from.

    Attributes
    ----------
    name : str
        The file stem.
    path : pathlib.Path
        The ``.safetensors`` file (the card is :attr:`card_path`).
    card : dict
        The model card as read.
    net : rtstyle.nn.transform.TransformNet
        In eval mode, ``requires_grad=False``, streaming state reset for batch 1.
    styles : list of str
        Style names, in embedding order.
    sr, n_fft, hop_length : int
        The STFT the net was trained on.
    bundled : bool
        Found in the bundled models.
    """

    name: str
    path: pathlib.Path
    card: dict
    net: object
    styles: list
    sr: int
    n_fft: int
    hop_length: int
    bundled: bool

    def __repr__(self) -> str:
        where = "bundled" if self.bundled else str(self.path)
        return (f"Model({self.name!r}, styles={self.styles}, sr={self.sr}, n_fft={self.n_fft}, "
                f"hop_length={self.hop_length}, {where})")

    @property
    def card_path(self) -> pathlib.Path:
        """The ``.json`` model card next to :attr:`path`."""
        return _files(self.path.with_name(self.path.name[: -len(_WEIGHTS)]))[1]

    @property
    def stft(self) -> StftConfig:
        """The card's STFT settings."""
        return StftConfig.from_dict({"sr": self.sr, **self.card["stft"]})

    @property
    def defaults(self) -> dict:
        """Default streaming settings: the card's, completed by :data:`STREAMING_DEFAULTS`."""
        return {**STREAMING_DEFAULTS, **self.card["defaults"]}

    @property
    def latency_samples(self) -> int:
        """Engine latency in samples at :attr:`sr` with :attr:`defaults` (see list_styles)."""
        return _latency_samples(_Card(self.stft, self.net.config, self.styles, self.defaults))

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.sr

    def style_index(self, style) -> int:
        """Index of a style given by name (or by index, checked).

        Raises
        ------
        ModelError
            No such style; the message lists the model's styles.
        """
        if isinstance(style, numbers.Integral) and not isinstance(style, bool):
            if 0 <= style < len(self.styles):
                return int(style)
        elif style in self.styles:
            return self.styles.index(style)
        raise ModelError(f"model '{self.name}' has no style {style!r}; its styles: "
                         f"{', '.join(self.styles)}")


def _split_style(spec):
    """``MODEL:STYLE`` -> (MODEL, STYLE); ``MODEL`` -> (MODEL, None). Drive letters are kept."""
    if not isinstance(spec, str) or ":" not in spec:
        return spec, None
    model, style = spec.rsplit(":", 1)
    if "/" in style or "\\" in style:        # C:\models\x.json: a path, not a style
        return spec, None
    if not model:
        raise ModelError(f"style {spec!r}: the model name before ':' is empty")
    if not style:
        raise ModelError(f"style {spec!r}: the style name after ':' is empty")
    return model, style


def _locate(spec, models_dir) -> tuple[pathlib.Path, bool]:
    """Find a model: (stem path, bundled)."""
    if isinstance(spec, os.PathLike):
        spec = path_name(spec)
    if not isinstance(spec, str) or not spec:
        raise ModelError(f"model={spec!r} must be a model name or a path")
    suffix = os.path.splitext(spec)[1].lower()
    if suffix in PICKLE_SUFFIXES:
        raise ModelError(f"{spec}: refusing to load a '{suffix}' (pickle) file; rtstyle models "
                         "are NAME.safetensors + NAME.json")
    is_path = suffix in (_WEIGHTS, _CARD) or "/" in spec or os.sep in spec
    if suffix in (_WEIGHTS, _CARD):
        spec_base = spec[: -len(suffix)]
    else:
        spec_base = spec
    if is_path:
        base = pathlib.Path(spec_base)
        if not _exists(base):
            raise ModelError(f"{spec}: no such model file (a model is NAME.safetensors + "
                             "NAME.json)")
        return base, False
    folders = model_folders(models_dir)
    for key in ("bundled", "user"):
        folder = folders[key]
        if folder is not None and _check_name(spec, "model") is None and _exists(folder / spec):
            return folder / spec, key == "bundled"
    if _exists(pathlib.Path(spec)):
        return pathlib.Path(spec), False
    names = [s for key in ("bundled", "user") for s in _stems(folders[key])]
    listed = ", ".join(names) if names else "none installed"
    user = folders["user"] or f"{user_models_dir()} (absent)"
    raise ModelError(f"no model named {spec!r} (available: {listed}; user folder: {user}; "
                     "see 'rtstyle styles')")


def _check_tensors(tensors: dict, expected: dict, weights, card_path) -> None:
    import torch

    missing = [k for k in expected if k not in tensors]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ModelError(f"{weights}: missing tensor '{missing[0]}'{more} for the architecture "
                         f"in {card_path.name}")
    unexpected = sorted(k for k in tensors if k not in expected)
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise ModelError(f"{weights}: unexpected tensor '{unexpected[0]}'{more} for the "
                         f"architecture in {card_path.name}")
    for key, shape in expected.items():
        t = tensors[key]
        if tuple(t.shape) != shape:
            raise ModelError(f"{weights}: tensor '{key}' has shape {tuple(t.shape)}, expected "
                             f"{shape} by the architecture in {card_path.name}")
        if not t.is_floating_point():
            raise ModelError(f"{weights}: tensor '{key}' has dtype {t.dtype}, expected floating "
                             "point")
        if not bool(torch.isfinite(t).all()):
            raise ModelError(f"{weights}: tensor '{key}' holds NaN or Inf values")


def _check_header(weights: pathlib.Path, expected: dict, card_path: pathlib.Path) -> None:
    """Check the tensors' names, shapes and dtypes from the safetensors header, reading no
    tensor data (so a card that disagrees with its weights costs nothing)."""
    import safetensors

    name = path_name(weights)
    try:
        st = os.stat(weights)
    except FileNotFoundError:
        raise ModelError(f"{name}: no such file") from None
    except OSError as err:
        raise ModelError(f"{name}: cannot read ({err.strerror or err})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"{name}: is not a regular file; expected a .safetensors file")
    from .nn._weights import sniff_pickle

    try:
        kind = sniff_pickle(name)
        if kind is not None:
            raise ModelError(f"{name}: is {kind}, not safetensors; refusing to unpickle it")
        with safetensors.safe_open(name, framework="pt", device="cpu") as fh:
            shapes = {k: (tuple(fh.get_slice(k).get_shape()), str(fh.get_slice(k).get_dtype()))
                      for k in fh.keys()}
    except ModelError:
        raise
    except OSError as exc:
        raise ModelError(f"{name}: cannot read: {exc.strerror or exc}") from None
    except Exception as exc:           # safetensors' own SafetensorError (and others)
        raise ModelError(f"{name}: not a valid safetensors file ({_one_line(exc)})") from None
    missing = [k for k in expected if k not in shapes]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ModelError(f"{name}: missing tensor '{missing[0]}'{more} for the architecture "
                         f"in {card_path.name}")
    for key, shape in expected.items():
        got, dtype = shapes[key]
        if got != shape:
            raise ModelError(f"{name}: tensor '{key}' has shape {got}, expected {shape} by the "
                             f"architecture in {card_path.name}")
        if dtype not in ("F16", "BF16", "F32", "F64"):
            raise ModelError(f"{name}: tensor '{key}' has dtype {dtype}, expected floating "
                             "point")


def _expected_shapes(arch: TransformConfig) -> dict:
    """The parameter shapes of a TransformNet of ``arch``, built on torch's 'meta' device (no
    memory is allocated for them)."""
    import torch

    from .nn.transform import TransformNet

    with torch.device("meta"):
        net = TransformNet(arch)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def load_model(name_or_path, *, device="cpu", models_dir=None) -> Model:
    """Find, check and load a model.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A bundled model name, a user-folder model name, or a path to ``NAME.safetensors``,
        ``NAME.json`` or their stem ``NAME``. (For ``MODEL:STYLE`` use :func:`resolve_style`.)
    device : str
        ``cpu`` or ``cuda[:N]`` (falls back to the CPU with a warning where CUDA is absent).
    models_dir : str or os.PathLike or None
        The user models folder; ``None`` means ``RTSTYLE_MODELS`` or the platform's default.

    Returns
    -------
    model : Model

    Raises
    ------
    ModelError
        One line naming the file and the problem: no such model; a pickle file (``.pt``,
        ``.pth``, ``.ckpt``, ``.pkl``, … or pickle bytes under any name: refused, never
        unpickled); a missing, truncated or invalid ``.safetensors``; a card that is not JSON,
        lacks a key, holds a bad value, or has a ``format_version`` newer than
        :data:`FORMAT_VERSION`; tensors whose names or shapes do not fit the card's
        architecture.

    Examples
    --------
    >>> model = rtstyle.load_model("cello")                 # doctest: +SKIP
    >>> model.styles, model.sr, model.net.latency           # doctest: +SKIP
    (['cello'], 22050, 0)
    """
    base, bundled = _locate(name_or_path, models_dir)
    weights, card_path = _files(base)
    if not _present(card_path):
        raise ModelError(f"{weights}: has no model card {card_path.name} next to it")
    card = _read_card(card_path)
    info = _check_card(card, str(card_path))

    import torch

    from .nn._weights import read_safetensors
    from .nn.device import resolve_device
    from .nn.transform import TransformNet

    if os.path.splitext(path_name(weights))[1].lower() == _WEIGHTS:
        # the card's sizes against the weights' shapes, before a byte of either is allocated
        expected = _expected_shapes(info.arch)
        _check_header(weights, expected, card_path)
    tensors = read_safetensors(weights, what="rtstyle model weights",
                               hint="models are NAME.safetensors + NAME.json (save_model)")
    net = TransformNet(info.arch)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    _check_tensors(tensors, expected, weights, card_path)
    net.load_state_dict({k: t.to(torch.float32) for k, t in tensors.items()}, strict=True)
    net.to(resolve_device(device))
    net.eval()
    net.requires_grad_(False)
    net.reset()
    return Model(name=base.name, path=weights, card=card, net=net, styles=list(info.styles),
                 sr=info.stft.sr, n_fft=info.stft.n_fft, hop_length=info.stft.hop_length,
                 bundled=bundled)


def resolve_style(spec, *, device="cpu", models_dir=None, cache=None) -> tuple[Model, int]:
    """Load the model of a style spec and find the style in it.

    Parameters
    ----------
    spec : str or os.PathLike
        ``MODEL`` (its first style) or ``MODEL:STYLE``; ``MODEL`` as for :func:`load_model`.
    device, models_dir
        As for :func:`load_model`.
    cache : dict, optional
        Models already loaded, by resolved weights path (filled here): a style list that names
        one model many times loads its file once. The caller owns it (one render, one stream).

    Returns
    -------
    model : Model
    index : int
        The style's index in ``model.styles`` (its embedding row).

    Raises
    ------
    ModelError
        As :func:`load_model`; or the model has no such style (the message lists its styles).
    """
    model_spec, style = _split_style(spec)
    if cache is None:
        model = load_model(model_spec, device=device, models_dir=models_dir)
    else:
        base, _ = _locate(model_spec, models_dir)
        key = (os.path.realpath(_files(base)[0]), str(device))
        model = cache.get(key)
        if model is None:
            model = cache[key] = load_model(model_spec, device=device, models_dir=models_dir)
    return model, (0 if style is None else model.style_index(style))


# ----------------------------------------------------------------------------------------------
# saving


def save_model(net, card: dict, path, *, overwrite: bool = False) -> pathlib.Path:
    """Write a model: ``NAME.safetensors`` (weights) and ``NAME.json`` (card), each atomically.

    Parameters
    ----------
    net : rtstyle.nn.transform.TransformNet
    card : dict
        The model card: :data:`CARD_KEYS`. ``format_version`` (default
        :data:`FORMAT_VERSION`), ``architecture`` (default ``net.config``; if given it must
        equal it) and ``name`` (default the file stem) may be left out. ``styles`` is a list of
        ``{"name": ..., "references": [...]}``, one per ``net.config.n_styles``; ``stft``
        holds ``n_fft``, ``hop_length``, ``win_length`` (``sr`` is the card's); ``features``
        and ``encoder`` are the training loss's ``FeatureConfig``/``EncoderConfig`` dicts;
        ``defaults`` the streaming settings (``lookahead``, ``phase_init``, …); ``training``
        and ``quality`` are free-form objects; ``licence`` a string. Any other keys are kept.
    path : str or os.PathLike
        A folder (the files are named after ``card["name"]``), or ``NAME``,
        ``NAME.safetensors`` or ``NAME.json``.
    overwrite : bool
        Replace existing files.

    Returns
    -------
    path : pathlib.Path
        The ``.safetensors`` file written.

    Raises
    ------
    ModelError
        The card is incomplete or inconsistent (with the net, with itself), or is not JSON
        (NaN, non-serialisable values); a pickle suffix.
    ParameterError
        ``net`` is not a TransformNet; ``card['name']`` differs from the file name.
    AudioFileError
        A file exists (without ``overwrite``), or the folder is missing or not writable (the
        rules of :func:`rtstyle.io.files.atomic_output`). Nothing is left half-written: the
        weights are moved into place first, the card last, so a listed model is complete.
    """
    import torch
    from safetensors.torch import save_file

    from .io.files import atomic_output
    from .nn.transform import TransformNet

    if not isinstance(net, TransformNet):
        raise ParameterError(f"net must be a TransformNet, got {type(net).__name__}")
    if not isinstance(card, dict):
        raise ParameterError(f"card must be a dict, got {type(card).__name__}")
    card = dict(card)
    target = pathlib.Path(path_name(path))
    if target.is_dir():
        if "name" not in card:
            raise ParameterError("card['name'] is needed to save into a folder")
        base = target / str(card["name"])
    else:
        suffix = target.suffix.lower()
        if suffix in PICKLE_SUFFIXES:
            raise ModelError(f"{target}: rtstyle models are never pickles; save to "
                             "NAME.safetensors + NAME.json")
        base = target.with_name(target.name[: -len(suffix)]) if suffix in (_WEIGHTS, _CARD) \
            else target
        card.setdefault("name", base.name)
        if card["name"] != base.name:
            raise ParameterError(f"card name={card['name']!r} differs from the file name "
                                 f"{base.name!r}; a model's name is its file stem")
    card.setdefault("format_version", FORMAT_VERSION)
    arch = net.config.to_dict()
    if "architecture" in card:
        try:
            given = TransformConfig.from_dict(card["architecture"])
        except (ParameterError, TypeError) as err:
            raise ModelError(f"card architecture: {_one_line(err)}") from None
        if given != net.config:
            raise ModelError(f"card architecture {card['architecture']} differs from the net's "
                             f"{arch}")
    card["architecture"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in arch.items()}
    weights, card_path = _files(base)
    _check_card(card, str(card_path))
    try:
        text = json.dumps(card, indent=1, allow_nan=False) + "\n"
    except (TypeError, ValueError) as err:
        raise ModelError(f"{card_path}: the card cannot be written as JSON "
                         f"({_one_line(err)})") from None
    state = {k: t.detach().to("cpu", torch.float32).contiguous().clone()
             for k, t in net.state_dict().items()}
    metadata = {"format": "pt", "rtstyle_format_version": str(card["format_version"]),
                "name": base.name}
    # Card outside, weights inside: the weights are renamed into place first, the card last.
    with atomic_output(card_path, overwrite=overwrite) as tmp_card, \
            atomic_output(weights, overwrite=overwrite) as tmp_weights:
        save_file(state, str(tmp_weights), metadata=metadata)
        tmp_card.write_text(text, encoding="utf-8")
    return weights
