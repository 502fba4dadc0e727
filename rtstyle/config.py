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

__all__ = ["StftConfig", "FeatureConfig", "EncoderConfig", "FEATURE_KINDS", "ACTIVATIONS", "POOLS",
           "MEL_INVERSES"]

FEATURE_KINDS = ("stft", "mel", "mfcc")
ACTIVATIONS = ("relu", "tanh")
POOLS = ("none", "max", "avg")
MEL_INVERSES = ("pinv", "nnls")


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
