"""Configuration dataclasses: what every layer needs to rebuild a computation.

Each dataclass validates itself on construction (a bad value raises
:class:`~rtstyle.errors.ParameterError` naming it) and round-trips through plain dicts, so model
cards and logs can carry them as JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from . import _validate as v
from .errors import ParameterError

__all__ = ["StftConfig", "FeatureConfig", "EncoderConfig", "TransformConfig", "FEATURE_KINDS",
           "ACTIVATIONS", "POOLS", "MEL_INVERSES", "TRANSFORM_ACTIVATIONS", "TRANSFORM_NORMS"]

FEATURE_KINDS = ("stft", "mel", "mfcc")
ACTIVATIONS = ("relu", "tanh")
POOLS = ("none", "max", "avg")
MEL_INVERSES = ("pinv", "nnls")
TRANSFORM_ACTIVATIONS = ("relu", "leaky_relu", "gelu", "silu", "tanh")
TRANSFORM_NORMS = ("none", "layer")
#: What a transform net writes: ``residual``, a log1p-magnitude correction added to the input
#: (the first nets: free to write any spectrum); ``gain``, a smooth gain curve per frame on the
#: input's magnitudes, at the input frame's energy (keeps pitch, onsets and level by design).
TRANSFORM_OUTPUTS = ("residual", "gain")
#: How a window's frames count in the band statistics (rtstyle.dsp.band_stats.gated_weights).
STATS_WEIGHTINGS = ("rms", "gated")


#: Look-ahead of the output limiter every stream ends in (ms): part of every stream's latency.
LIMITER_LOOKAHEAD_MS = 1.5


class _Dict:
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ParameterError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class StftConfig(_Dict):
    """Short-time Fourier transform settings (librosa names; Hann window, centred frames).

    Parameters
    ----------
    sr : int
        Sample rate in Hz.
    n_fft : int
        FFT size. The seed method uses 2048 at 22050 Hz (93 ms).
    hop_length : int or None
        Hop in samples; ``None`` means ``win_length // 4``.
    win_length : int or None
        Window length, ``<= n_fft``; ``None`` means ``n_fft``.
    """

    sr: int = 22050
    n_fft: int = 2048
    hop_length: int | None = None
    win_length: int | None = None

    def __post_init__(self):
        v.positive_int(self.sr, "sr")
        v.positive_int(self.n_fft, "n_fft")
        if self.n_fft < 16:
            raise ParameterError(f"n_fft={self.n_fft} must be at least 16")
        win = self.n_fft if self.win_length is None else v.positive_int(self.win_length, "win_length")
        if win > self.n_fft:
            raise ParameterError(f"win_length={win} must be <= n_fft={self.n_fft}")
        hop = win // 4 if self.hop_length is None else v.positive_int(self.hop_length, "hop_length")
        if hop > win:
            raise ParameterError(f"hop_length={hop} must be <= win_length={win}")
        object.__setattr__(self, "win_length", win)
        object.__setattr__(self, "hop_length", hop)

    @property
    def n_bins(self) -> int:
        """Number of frequency bins, ``1 + n_fft // 2``."""
        return 1 + self.n_fft // 2


@dataclass(frozen=True)
class FeatureConfig(_Dict):
    """Which log-compressed spectral feature the encoder sees.

    Parameters
    ----------
    kind : {'stft', 'mel', 'mfcc'}
        ``stft``: log1p linear magnitude (``1 + n_fft/2`` channels); ``mel``: log1p of a
        mel-filtered magnitude (``n_mels`` channels); ``mfcc``: the first ``n_mfcc``
        orthonormal DCT-II coefficients of the log1p mel magnitude.
    n_mels : int
        Mel bands (librosa's default 128, as the seed report).
    n_mfcc : int
        Cepstral coefficients kept (40, as the seed report), ``<= n_mels``.
    fmin, fmax : float or None
        Mel filterbank range in Hz; ``fmax=None`` means ``sr / 2``.
    """

    kind: str = "mel"
    n_mels: int = 128
    n_mfcc: int = 40
    fmin: float = 0.0
    fmax: float | None = None

    def __post_init__(self):
        v.one_of(self.kind, FEATURE_KINDS, "features")
        v.positive_int(self.n_mels, "n_mels")
        v.positive_int(self.n_mfcc, "n_mfcc")
        if self.n_mfcc > self.n_mels:
            raise ParameterError(f"n_mfcc={self.n_mfcc} must be <= n_mels={self.n_mels}")
        v.nonnegative_float(self.fmin, "fmin")
        if self.fmax is not None and v.positive_float(self.fmax, "fmax") <= self.fmin:
            raise ParameterError(f"fmax={self.fmax} must be > fmin={self.fmin}")

    def n_channels(self, stft: StftConfig) -> int:
        """Channels of this feature for the given STFT."""
        return {"stft": stft.n_bins, "mel": self.n_mels, "mfcc": self.n_mfcc}[self.kind]


@dataclass(frozen=True)
class EncoderConfig(_Dict):
    """The shallow random encoder (never trained; rebuilt exactly from ``seed``).

    Parameters
    ----------
    n_filters : int
        Output channels (the seed uses 4096).
    kernel_size : int
        Width over frames (the seed uses 11).
    activation : {'relu', 'tanh'}
    pool : {'none', 'max', 'avg'}
        Pooling over time after the activation.
    pool_width : int
        Pooling window and stride in frames.
    seed : int
        Seed of the random weights.
    """

    n_filters: int = 4096
    kernel_size: int = 11
    activation: str = "relu"
    pool: str = "none"
    pool_width: int = 2
    seed: int = 0

    def __post_init__(self):
        v.positive_int(self.n_filters, "filters")
        v.positive_int(self.kernel_size, "kernel_size")
        v.one_of(self.activation, ACTIVATIONS, "activation")
        v.one_of(self.pool, POOLS, "pool")
        v.positive_int(self.pool_width, "pool_width")
        v.nonnegative_int(self.seed, "seed")


@dataclass(frozen=True)
class TransformConfig(_Dict):
    """The causal transform net (:class:`rtstyle.nn.transform.TransformNet`).

    Parameters
    ----------
    bins : int
        Input and output channels: frequency bins ``1 + n_fft // 2`` (513 for ``n_fft=1024``).
    hidden : int
        Channels of the hidden convolutions.
    kernel_size : int >= 1
        Width over frames of each hidden convolution.
    layers : int >= 1
        Hidden (residual, FiLM-conditioned) convolution layers.
    dilation_growth : int >= 1
        Layer ``i`` has dilation ``dilation_growth ** i`` (1, 2, 4, 8... for 2).
    dilations : tuple of int or None
        Explicit per-layer dilations (``layers`` of them); overrides ``dilation_growth``.
    n_styles : int >= 1
        Styles held by the net (rows of its style embedding).
    embed_dim : int >= 1
        Size of a style embedding.
    lookahead : int >= 0
        Frames of bounded look-ahead (0 = causal): output frame ``t`` sees input frames up to
        ``t + lookahead``, and comes out ``lookahead`` frames late when streaming.
    activation : {'relu', 'leaky_relu', 'gelu', 'silu', 'tanh'}
        ``leaky_relu`` has slope 0.1 below zero. (Exact ``gelu`` costs ~7 us per call per
        frame on a CPU, several times the others.)
    norm : {'none', 'layer'}
        ``layer``: per-frame LayerNorm over channels after each convolution (never a
        normalisation over time, which would not be causal).
    output : {'residual', 'gain'}
        ``residual``: ``y = max(x + out(h), 0)`` in log1p magnitude. ``gain``: the net writes
        ``bands`` coefficients per frame, a smooth log-gain curve over frequency
        (:func:`rtstyle.dsp.gain.band_basis`, bounded to ``±max_gain_db``) applied to the
        input's magnitudes, and the frame is scaled back to the input frame's energy.
    bands : int >= 2
        Raised-cosine mel bands of the gain curve (``gain`` only).
    sr : int
        Sample rate that places the bands in Hz (``gain`` only; the model's STFT rate).
    max_gain_db : float > 0
        Bound of every band of the style's static gain curve, in dB (``gain`` only; a smooth
        ``tanh`` bound).
    dynamic_gain_db : float > 0
        Bound of every band of the curve that follows the input frame by frame, added to the
        static one (``gain`` only). Kept small, it cannot whiten the input's formants and
        harmonics away (what erases words and pitch), only shade them.
    stats : bool
        ``gain`` only: add the gain that moves the input's running band statistics onto the
        style's (:mod:`rtstyle.dsp.band_stats`; the style's mean and spread of log band power
        are stored with the net, one row per style). Off for nets trained before it.
    stats_frames : int >= 2
        The window of the input's running statistics, in frames (172 is 2 s at 22050 Hz, hop
        256). Part of :attr:`receptive_field`.
    stats_spread : float in 0..1
        How far a band's spread is matched (0: the long-term mean only; 1: the spread too).
    stats_weight : {'rms', 'gated'}
        How the frames of the window count in its statistics (and the reference's in the
        style's): ``rms`` by their RMS magnitude (nets made before it), ``gated`` equally,
        over the frames a level gate lets through (:func:`rtstyle.dsp.band_stats.gated_weights`).
    stats_shape : bool
        Take the statistics of each band's log power *relative to the frame's mean over the
        bands* (the frame's spectral shape; :func:`rtstyle.dsp.band_stats.band_features`), the
        reference's alike, instead of the log power itself. A voice's syllables and pauses move
        every band together; as plain log power that swing counts in every band's spread, and
        the spread match turns it into a tilt that follows the loudness. Off for nets made
        before it.
    level : bool
        ``gain`` only: each style carries an output level in dB (``style_level_db``, saved with
        the net, 0 until set), applied after the frame energy match. A style that raises the
        crest factor (peakier frames at the input's energy) would otherwise push a peak-normalised
        input into the output limiter; its measured trim (``tools/make_stats_model.py``) keeps the
        peaks where the input's were. Off for nets made before it.
    """

    bins: int = 513
    hidden: int = 160
    kernel_size: int = 3
    layers: int = 5
    dilation_growth: int = 2
    dilations: tuple[int, ...] | None = None
    n_styles: int = 1
    embed_dim: int = 16
    lookahead: int = 0
    activation: str = "leaky_relu"
    norm: str = "none"
    output: str = "residual"
    bands: int = 40
    sr: int = 22050
    max_gain_db: float = 40.0
    dynamic_gain_db: float = 40.0
    stats: bool = False
    stats_frames: int = 172
    stats_spread: float = 0.5
    stats_weight: str = "rms"
    stats_shape: bool = False
    level: bool = False

    def __post_init__(self):
        v.positive_int(self.bins, "bins")
        v.positive_int(self.hidden, "hidden")
        v.positive_int(self.kernel_size, "kernel_size")
        v.positive_int(self.layers, "layers")
        v.positive_int(self.dilation_growth, "dilation_growth")
        if self.dilations is not None:
            if isinstance(self.dilations, (str, bytes)) or not hasattr(self.dilations, "__iter__"):
                raise ParameterError(f"dilations={self.dilations!r} must be a list of positive "
                                     "integers or None")
            dil = tuple(self.dilations)
            for d in dil:
                v.positive_int(d, "dilations")
            if len(dil) != self.layers:
                raise ParameterError(f"dilations={list(dil)} must have layers={self.layers} "
                                     "entries")
            object.__setattr__(self, "dilations", dil)
        v.positive_int(self.n_styles, "n_styles")
        v.positive_int(self.embed_dim, "embed_dim")
        v.nonnegative_int(self.lookahead, "lookahead")
        v.one_of(self.activation, TRANSFORM_ACTIVATIONS, "activation")
        v.one_of(self.norm, TRANSFORM_NORMS, "norm")
        v.one_of(self.output, TRANSFORM_OUTPUTS, "output")
        v.positive_int(self.bands, "bands")
        if self.output == "gain" and not 2 <= self.bands <= self.bins:
            raise ParameterError(f"bands={self.bands} must be between 2 and bins={self.bins}")
        v.positive_int(self.sr, "sr")
        v.positive_float(self.max_gain_db, "max_gain_db")
        v.positive_float(self.dynamic_gain_db, "dynamic_gain_db")
        if not isinstance(self.stats, bool):
            raise ParameterError(f"stats={self.stats!r} must be true or false")
        if self.stats and self.output != "gain":
            raise ParameterError("stats=True needs output='gain' (it is a gain on the input)")
        v.positive_int(self.stats_frames, "stats_frames")
        if self.stats_frames < 2:
            raise ParameterError(f"stats_frames={self.stats_frames} must be at least 2")
        if isinstance(self.stats_spread, bool) or not isinstance(self.stats_spread, (int, float)) \
                or not 0.0 <= float(self.stats_spread) <= 1.0:
            raise ParameterError(f"stats_spread={self.stats_spread!r} must be a number in 0..1")
        v.one_of(self.stats_weight, STATS_WEIGHTINGS, "stats_weight")
        if not isinstance(self.stats_shape, bool):
            raise ParameterError(f"stats_shape={self.stats_shape!r} must be true or false")
        if not isinstance(self.level, bool):
            raise ParameterError(f"level={self.level!r} must be true or false")
        if self.level and self.output != "gain":
            raise ParameterError("level=True needs output='gain'")

    @property
    def layer_dilations(self) -> tuple[int, ...]:
        """The dilation of each hidden layer."""
        if self.dilations is not None:
            return self.dilations
        return tuple(self.dilation_growth ** i for i in range(self.layers))

    @property
    def context(self) -> int:
        """Past frames cached by the convolutions: ``sum((kernel_size - 1) * dilation)``."""
        return sum((self.kernel_size - 1) * d for d in self.layer_dilations)

    @property
    def stats_context(self) -> int:
        """Past frames the running band statistics keep (``stats_frames - 1``; 0 without), and
        with ``gated`` weights as many again: the gate of the window's oldest frame looked back
        a window itself."""
        if not self.stats:
            return 0
        return (self.stats_frames - 1) * (2 if self.stats_weight == "gated" else 1)
