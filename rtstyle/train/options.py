"""Training options: defaults, validation, ``--style`` parsing, the checkpoint folder.

No torch import here: the CLI builds its parser from :data:`DEFAULTS` without loading torch.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import sys
from dataclasses import dataclass, field

from .. import _validate as v
from ..config import FEATURE_KINDS, EncoderConfig, FeatureConfig, StftConfig, TransformConfig
from ..errors import ParameterError

__all__ = ["DEFAULTS", "StyleSpec", "TrainSettings", "parse_style", "default_checkpoint_dir",
           "RUN_KEYS"]

#: Defaults of :func:`rtstyle.train.train` and ``rtstyle train``. The loss (features, encoder,
#: weights) is the transfer's: these values equal :data:`rtstyle.transfer.DEFAULTS` (a test checks;
#: ``train`` does not import ``transfer``, see DESIGN.md, Layout); the STFT is the live engine's.
DEFAULTS = dict(
    sr=22050, n_fft=1024, hop_length=256,
    features="mel", n_mels=128, n_mfcc=40,
    filters=2048, kernel_size=11, activation="tanh", encoder_seed=0,
    content_weight=0.5, style_weight=1.0,
    hidden=TransformConfig.hidden, layers=TransformConfig.layers,
    net_kernel=TransformConfig.kernel_size, embed_dim=TransformConfig.embed_dim,
    net="gain", bands=TransformConfig.bands, max_gain_db=30.0, dynamic_gain_db=6.0,
    stats=True, stats_seconds=2.0, stats_spread=TransformConfig.stats_spread,
    lookahead=0, steps=2000, batch_size=16, chunk_frames=128, lr=2e-3, lr_final=0.1,
    seed=0, device="cpu", threads=None, val_every=100, val_chunks=16, checkpoint_every=100,
    log_every=25,
)

#: Settings that may change between a run and its ``--resume`` (they do not change the
#: result trajectory, or only extend it).
RUN_KEYS = ("steps", "device", "threads", "val_every", "checkpoint_every", "log_every")

_BAD_NAME_CHARS = set("/\\:,=")


def _check_name(name: str, what: str) -> str:
    if not name or not name.strip():
        raise ParameterError(f"{what}: the name is empty")
    bad = sorted(set(name) & _BAD_NAME_CHARS)
    if bad or name.startswith(".") or name != name.strip():
        why = f"must not contain {' '.join(repr(c) for c in bad)}" if bad else \
            "must not start with '.' or with/end with spaces"
        raise ParameterError(f"{what}: name {name!r} {why}")
    return name


@dataclass(frozen=True)
class StyleSpec:
    """One style to learn: its name and its reference files."""

    name: str
    references: tuple[str, ...]


def parse_style(spec: str) -> StyleSpec:
    """Parse ``--style NAME=REF[,REF2...]`` or ``--style REF[,REF2...]`` (named after REF).

    Raises
    ------
    ParameterError
        An empty name or reference, or a name with ``/ \\ : , =`` in it.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ParameterError(f"--style {spec!r}: expected NAME=REF.wav[,REF2.wav...] or REF.wav")
    name, sep, refs = spec.partition("=")
    if not sep:
        refs, name = spec, None
    paths = [r.strip() for r in refs.split(",")]
    if not refs.strip() or any(not p for p in paths):
        raise ParameterError(f"--style {spec!r}: an empty reference file name "
                             "(expected NAME=REF.wav[,REF2.wav...])")
    if name is None:
        name = pathlib.Path(paths[0]).stem
    _check_name(name.strip() if name.strip() else "", f"--style {spec!r}")
    return StyleSpec(name.strip(), tuple(paths))


def default_checkpoint_dir(name: str) -> pathlib.Path:
    """``$XDG_CACHE_HOME/rtstyle/checkpoints/NAME`` (``~/.cache/...``; ``%LOCALAPPDATA%`` on
    Windows, ``~/Library/Caches`` on macOS): outside the repository."""
    home = pathlib.Path.home()
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA")
        root = pathlib.Path(base) if base else home / "AppData" / "Local"
    elif sys.platform == "darwin":
        root = home / "Library" / "Caches"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        root = pathlib.Path(xdg) if os.path.isabs(xdg) else home / ".cache"
    return root / "rtstyle" / "checkpoints" / name


@dataclass(frozen=True)
class TrainSettings:
    """Every option of a training run, validated on construction; JSON-able with
    :meth:`to_dict` / :meth:`from_dict` (checkpoints carry it).

    Parameters
    ----------
    name : str
        The model's name (its file stem).
    styles : tuple of StyleSpec
        The styles of the (conditioned) net, in embedding order.
    corpus : str
        A corpus folder: ``manifest.json`` (``tools/make_corpus.py``) or just audio files.
    sr, n_fft, hop_length
        The STFT of the net (and of the loss).
    features, n_mels, n_mfcc, filters, kernel_size, activation, encoder_seed
        The loss's feature transform and shallow random encoder, as in ``rtstyle transfer``
        (``n_mfcc=None``: 40, or ``n_mels`` when that is fewer).
    content_weight, style_weight : float
        The loss weights, as in ``rtstyle transfer``.
    hidden, layers, net_kernel, embed_dim, lookahead
        The :class:`~rtstyle.config.TransformConfig` of the net.
    net, bands, max_gain_db, dynamic_gain_db
        What the net writes (``gain``: a smooth gain curve of ``bands`` mel bands on the input's
        spectrum, the style's static curve bounded to ``±max_gain_db`` plus one that follows
        the input, bounded to ``±dynamic_gain_db``; ``residual``: a log-magnitude correction;
        :class:`~rtstyle.config.TransformConfig` ``output``).
    stats, stats_seconds, stats_spread
        ``gain`` nets: also match the input's running band statistics (over ``stats_seconds``)
        to each style reference's (:mod:`rtstyle.dsp.band_stats`; ``stats_spread`` 0 matches
        the mean only, 1 the spread too). The references' statistics are stored in the net.
    steps, batch_size, chunk_frames : int
        Adam steps; chunks per batch; frames per chunk that the loss sees (the net also sees
        its receptive field of real left context, and ``lookahead`` frames of right context).
    lr, lr_final : float
        Adam's step size, decayed by a cosine to ``lr * lr_final`` at ``steps``.
    seed : int
        The net's initial weights, the chunk draws and the validation chunks.
    device, threads
        Torch device (CUDA falls back to the CPU with a warning); CPU threads (None: torch's).
    val_every, val_chunks, checkpoint_every, log_every : int
        Validation cadence and size; checkpoint cadence; log-line cadence (without a tty).
    licence : str or None
        Appended to the licence lines taken from the corpus manifest.
    """

    name: str
    styles: tuple
    corpus: str
    sr: int = DEFAULTS["sr"]
    n_fft: int = DEFAULTS["n_fft"]
    hop_length: int = DEFAULTS["hop_length"]
    features: str = DEFAULTS["features"]
    n_mels: int = DEFAULTS["n_mels"]
    n_mfcc: int | None = None
    filters: int = DEFAULTS["filters"]
    kernel_size: int = DEFAULTS["kernel_size"]
    activation: str = DEFAULTS["activation"]
    encoder_seed: int = DEFAULTS["encoder_seed"]
    content_weight: float = DEFAULTS["content_weight"]
    style_weight: float = DEFAULTS["style_weight"]
    hidden: int = DEFAULTS["hidden"]
    layers: int = DEFAULTS["layers"]
    net_kernel: int = DEFAULTS["net_kernel"]
    embed_dim: int = DEFAULTS["embed_dim"]
    lookahead: int = DEFAULTS["lookahead"]
    net: str = DEFAULTS["net"]
    bands: int = DEFAULTS["bands"]
    max_gain_db: float = DEFAULTS["max_gain_db"]
    dynamic_gain_db: float = DEFAULTS["dynamic_gain_db"]
    stats: bool = DEFAULTS["stats"]
    stats_seconds: float = DEFAULTS["stats_seconds"]
    stats_spread: float = DEFAULTS["stats_spread"]
    steps: int = DEFAULTS["steps"]
    batch_size: int = DEFAULTS["batch_size"]
    chunk_frames: int = DEFAULTS["chunk_frames"]
    lr: float = DEFAULTS["lr"]
    lr_final: float = DEFAULTS["lr_final"]
    seed: int = DEFAULTS["seed"]
    device: str = DEFAULTS["device"]
    threads: int | None = DEFAULTS["threads"]
    val_every: int = DEFAULTS["val_every"]
    val_chunks: int = DEFAULTS["val_chunks"]
    checkpoint_every: int = DEFAULTS["checkpoint_every"]
    log_every: int = DEFAULTS["log_every"]
    licence: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        _check_name(self.name, "--output")
        if self.n_mfcc is None:   # the transfer's 40, or fewer when there are fewer mel bands
            n_mels = v.positive_int(self.n_mels, "n-mels")
            object.__setattr__(self, "n_mfcc", min(DEFAULTS["n_mfcc"], n_mels))
        styles = tuple(s if isinstance(s, StyleSpec) else StyleSpec(s["name"], tuple(s["references"]))
                       for s in self.styles)
        if not styles:
            raise ParameterError("--style: at least one style is needed (--style NAME=REF.wav)")
        names = [s.name for s in styles]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ParameterError(f"--style: the style name {dup[0]!r} is given twice")
        for s in styles:
            _check_name(s.name, f"--style {s.name}")
        object.__setattr__(self, "styles", styles)
        v.one_of(self.features, FEATURE_KINDS, "features")
        for key in ("steps", "batch_size", "chunk_frames", "val_every", "val_chunks",
                    "checkpoint_every", "log_every", "hidden", "layers", "net_kernel",
                    "embed_dim", "filters", "kernel_size"):
            v.positive_int(getattr(self, key), key.replace("_", "-"))
        for key in ("seed", "encoder_seed", "lookahead"):
            v.nonnegative_int(getattr(self, key), key.replace("_", "-"))
        v.nonnegative_float(self.content_weight, "content-weight")
        v.nonnegative_float(self.style_weight, "style-weight")
        if self.content_weight == 0 and self.style_weight == 0:
            raise ParameterError("--content-weight and --style-weight are both 0: nothing to learn")
        v.positive_float(self.lr, "lr")
        v.positive_float(self.stats_seconds, "stats-seconds")
        if self.stats and self.net != "gain":
            object.__setattr__(self, "stats", False)    # statistics are a gain: residual has none
        v.unit_float(self.lr_final, "lr-final")
        if self.threads is not None:
            v.positive_int(self.threads, "threads")
        # Build every config once, so a bad combination fails here, not after loading data.
        self.stft_config(), self.feature_config(), self.encoder_config(), self.transform_config()
        if self.chunk_frames < self.kernel_size:
            raise ParameterError(f"--chunk-frames={self.chunk_frames} must be at least the "
                                 f"encoder's width kernel_size={self.kernel_size}")

    # ------------------------------------------------------------------------------ configs
    def stft_config(self) -> StftConfig:
        return StftConfig(sr=v.positive_int(self.sr, "sr"), n_fft=self.n_fft,
                          hop_length=self.hop_length)

    def feature_config(self) -> FeatureConfig:
        return FeatureConfig(kind=self.features, n_mels=self.n_mels, n_mfcc=self.n_mfcc)

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(n_filters=self.filters, kernel_size=self.kernel_size,
                             activation=self.activation, pool="none", seed=self.encoder_seed)

    def transform_config(self) -> TransformConfig:
        return TransformConfig(bins=self.stft_config().n_bins, hidden=self.hidden,
                               kernel_size=self.net_kernel, layers=self.layers,
                               n_styles=len(self.styles), embed_dim=self.embed_dim,
                               lookahead=self.lookahead, output=self.net, bands=self.bands,
                               sr=self.sr, max_gain_db=self.max_gain_db,
                               dynamic_gain_db=self.dynamic_gain_db, stats=bool(self.stats),
                               stats_frames=self.stats_frames,
                               stats_spread=float(self.stats_spread))

    @property
    def stats_frames(self) -> int:
        """``stats_seconds`` in frames (at least 2)."""
        from ..dsp.band_stats import window_frames

        return window_frames(self.stats_seconds, sr=self.sr,
                             hop_length=self.stft_config().hop_length)

    # ------------------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["styles"] = [{"name": s.name, "references": list(s.references)} for s in self.styles]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSettings":
        names = {f.name for f in dataclasses.fields(cls)}
        d = {"net": "residual", **d}    # a checkpoint from before gain nets: a residual net
        d = {"stats": False, **d}       # ... and from before band statistics: none
        return cls(**{k: val for k, val in d.items() if k in names})

    def differences(self, other: "TrainSettings") -> list[str]:
        """Settings (other than :data:`RUN_KEYS`, ``name`` and ``licence``) where ``other``
        differs. The name only names the output, so a resume may rename it."""
        a, b = self.to_dict(), other.to_dict()
        skip = set(RUN_KEYS) | {"name", "licence", "extra"}
        return [f"{k}={b[k]!r} (checkpoint: {a[k]!r})" for k in a
                if k not in skip and a[k] != b[k]]
