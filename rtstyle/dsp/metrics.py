"""Quality metrics: log-mel Fréchet distance (style closeness) and spectral convergence.

Two numbers, both "lower is better":

- :func:`logmel_frechet` compares the *distributions* of log-mel frames of two signals (a
  Fréchet / FID-style distance between Gaussian fits). Frame order does not enter, so it measures
  timbre and texture, not content: the quality benchmark reports it output → style and
  output → content (``tools/eval_quality.py``).
- :func:`spectral_convergence` measures how well a waveform realises a target magnitude
  spectrogram (phase reconstruction quality): ``20·log10(‖|STFT(y)| − S‖_F / ‖S‖_F)`` in dB.
"""

from __future__ import annotations

import warnings

import librosa
import numpy as np
import scipy.linalg

from .._validate import positive_float, positive_int, valid_audio
from ..errors import ParameterError
from .stft import stft

__all__ = ["logmel_frames", "frechet_distance", "logmel_frechet", "spectral_convergence"]

#: Floor of the mel power spectrum before taking dB: −60 dB re 1.0. A full-scale sine peaks near
#: +54 dB in these units (n_fft=2048), so the floor is ~114 dB down: deep enough for any timbre,
#: and high enough that digital zeros (espeak-ng pauses) and 16-bit noise (≈ −72 dB) both land
#: on it instead of being told apart by 30 dB of nothing.
_AMIN = 1e-6


def logmel_frames(
    y: np.ndarray,
    *,
    sr: int,
    n_mels: int = 64,
    n_fft: int = 2048,
    hop_length: int = 512,
) -> np.ndarray:
    """Log-mel frame features, one row per frame.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)], real-valued
        Audio. The frames of several channels are concatenated (channel 0's frames first), so a
        stereo file yields twice as many rows as a mono one.
    sr : int > 0
        Sample rate of ``y`` in Hz.
    n_mels : int > 0
        Number of mel bands (the feature dimension).
    n_fft : int > 0
        FFT size; 2048 is 93 ms at 22050 Hz.
    hop_length : int > 0
        Hop between frames in samples.

    Returns
    -------
    F : np.ndarray [shape=(frames, n_mels), dtype=float32]
        ``librosa.power_to_db`` of the mel *power* spectrogram (Slaney mel, Hann window,
        ``center=True``) with ``ref=1.0`` (absolute, not relative to the loudest frame),
        ``amin=1e-6`` and no ``top_db`` clipping: ``10·log10(max(mel, 1e-6))``, so silence and
        anything quieter than −60 dB (about 114 dB below a full-scale sine) sit at −60 dB.

    Raises
    ------
    ParameterError
        If ``y`` is not valid audio or a parameter is not a positive integer.

    See Also
    --------
    logmel_frechet : the Fréchet distance between two signals' log-mel frames.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros(22050, dtype=np.float32)
    >>> logmel_frames(y, sr=22050).shape
    (44, 64)
    """
    y = valid_audio(y)
    sr = positive_int(sr, "sr")
    n_mels = positive_int(n_mels, "n_mels")
    n_fft = positive_int(n_fft, "n_fft")
    hop_length = positive_int(hop_length, "hop_length")
    mel = librosa.feature.melspectrogram(
        y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, power=2.0
    )
    db = librosa.power_to_db(mel, ref=1.0, amin=_AMIN, top_db=None)
    # (..., n_mels, frames) -> (frames_total, n_mels), channel 0's frames first.
    db = np.moveaxis(db, -2, -1).reshape(-1, n_mels)
    return np.ascontiguousarray(db, dtype=np.float32)


def _valid_frames(x, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise ParameterError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != 2:
        raise ParameterError(f"{name} must have shape (frames, dims), got {name}.shape={x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ParameterError(f"{name} must be real-valued, got dtype={x.dtype}")
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise ParameterError(
            f"{name} needs at least 2 frames and 1 dimension for a covariance, "
            f"got {name}.shape={x.shape}"
        )
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ParameterError(f"{name} is not finite everywhere (it holds NaN or Inf)")
    return x


def frechet_distance(a: np.ndarray, b: np.ndarray, *, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussian fits of two sets of frames (as in FID / FAD).

    .. math:: d^2 = \\lVert\\mu_a - \\mu_b\\rVert^2 + \\operatorname{Tr}\\bigl(\\Sigma_a + \\Sigma_b
                    - 2(\\Sigma_a\\Sigma_b)^{1/2}\\bigr)

    Parameters
    ----------
    a, b : np.ndarray [shape=(frames, dims)], real-valued
        Two frame sets with the same number of dimensions (they may differ in frame count).
        Each needs at least 2 frames.
    eps : float > 0
        Ridge added to both covariances (``eps·I``) when ``scipy.linalg.sqrtm`` reports the
        product singular or returns non-finite values, which happens when a covariance is
        singular (fewer frames than
        dimensions, or a dimension that never varies, e.g. a mel band that is silent
        throughout).

    Returns
    -------
    d2 : float >= 0
        The *squared* Fréchet distance, as FID reports it, in the squared units of the
        features (dB² for :func:`logmel_frames`). Symmetric in ``a`` and ``b``; 0 for two
        sets with equal mean and covariance.

    Raises
    ------
    ParameterError
        Wrong shapes, fewer than 2 frames, mismatched dimensions, non-finite values.

    Notes
    -----
    Means and covariances are the sample estimates (``np.cov``, ``ddof=1``). The square root
    is ``scipy.linalg.sqrtm``; numerical error can give it tiny imaginary parts, which are
    dropped (only the real part of its trace is used), and can make the result a tiny
    negative number, which is clipped to 0. For 1-D features the formula reduces to
    ``(μa − μb)² + (σa − σb)²``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.standard_normal((1000, 3))
    >>> frechet_distance(a, a) < 1e-9
    True
    >>> round(frechet_distance(a, a + 2.0), 6)  # a shift of 2 in each of 3 dims: 3 · 2²
    12.0
    """
    a = _valid_frames(a, "a")
    b = _valid_frames(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ParameterError(
            f"a and b must have the same number of dimensions, got a.shape={a.shape}, "
            f"b.shape={b.shape}"
        )
    eps = positive_float(eps, "eps")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
    singular = any(issubclass(w.category, scipy.linalg.LinAlgWarning) for w in caught)
    if singular or not np.isfinite(covmean).all():
        ridge = eps * np.eye(cov_a.shape[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            covmean = scipy.linalg.sqrtm((cov_a + ridge) @ (cov_b + ridge))
        if not np.isfinite(covmean).all():
            raise ParameterError(
                f"frechet_distance: the covariance product has no finite square root even "
                f"with a ridge eps={eps}; try a larger eps"
            )
    tr_covmean = float(np.real(np.trace(covmean)))

    diff = mu_a - mu_b
    d2 = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_covmean)
    return max(d2, 0.0)


#: The level both signals are brought to before :func:`logmel_frechet` compares them (dBFS RMS).
LEVEL_DB = -20.0


def logmel_frechet(y_a: np.ndarray, y_b: np.ndarray, *, sr: int, n_mels: int = 64,
                   level_db: float | None = LEVEL_DB) -> float:
    """Fréchet distance between the log-mel frame distributions of two signals.

    Both signals are first scaled to the same RMS level (``level_db``), so the distance measures
    timbre and texture, not loudness: a constant gain of g dB would otherwise add g² per band
    (64 g² in all) and swamp everything else (a style reference 10 dB louder than the content
    would count 6400 dB² before any difference of timbre).

    Parameters
    ----------
    y_a, y_b : np.ndarray [shape=(n,) or (channels, n)], real-valued
        Two signals at the same sample rate; lengths may differ. Each needs at least two
        frames (``n >= 512`` samples at the default hop).
    sr : int > 0
        Their sample rate in Hz.
    n_mels : int > 0
        Mel bands of :func:`logmel_frames` (its other defaults: ``n_fft=2048``,
        ``hop_length=512``).
    level_db : float or None
        RMS level (dBFS) both are scaled to first; ``None`` compares them as they are.

    Returns
    -------
    d2 : float >= 0
        ``frechet_distance(logmel_frames(y_a), logmel_frames(y_b))`` in dB².

    Raises
    ------
    ParameterError
        Invalid audio or parameters.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(22050) / 22050
    >>> y = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    >>> logmel_frechet(y, y, sr=22050) < 1e-6
    True
    """
    y_a = valid_audio(y_a, name="y_a")
    y_b = valid_audio(y_b, name="y_b")
    if level_db is not None:
        y_a, y_b = (_at_level(y, level_db) for y in (y_a, y_b))
    fa = logmel_frames(y_a, sr=sr, n_mels=n_mels)
    fb = logmel_frames(y_b, sr=sr, n_mels=n_mels)
    return frechet_distance(fa, fb)


def _at_level(y: np.ndarray, level_db: float) -> np.ndarray:
    level = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    return y if level == 0.0 else (y * (10 ** (level_db / 20) / level)).astype(np.float32)


def spectral_convergence(
    y: np.ndarray,
    S: np.ndarray,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
) -> float:
    """Spectral convergence of a waveform against a target magnitude spectrogram, in dB.

    .. math:: SC = 20\\log_{10}\\frac{\\lVert |STFT(y)| - S\\rVert_F}{\\lVert S\\rVert_F}

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)], real-valued
        The waveform, e.g. a phase reconstruction of ``S``.
    S : np.ndarray [shape=(1 + n_fft // 2, frames) or (channels, 1 + n_fft // 2, frames)]
        Target magnitudes (not power, not dB), with the leading shape of ``y``'s STFT.
    n_fft : int > 0
        FFT size of ``S``.
    hop_length : int > 0
        Hop of ``S`` in samples.
    win_length : int or None
        Window length of ``S``; defaults to ``n_fft``.

    Returns
    -------
    sc_db : float
        Lower is better: about −60 dB or below for a near-perfect reconstruction, 0 dB when
        the error is as large as the target. A perfect match returns −240 dB (the error norm
        is floored at ``1e-12·‖S‖_F``) rather than ``-inf``.

    Raises
    ------
    ParameterError
        Invalid audio or parameters, ``S`` negative, not finite, all zero, or of a shape
        that does not fit ``y`` and ``n_fft``.

    Notes
    -----
    ``|STFT(y)|`` is :func:`rtstyle.dsp.stft.stft` (librosa's conventions: periodic Hann,
    centred frames), the STFT rtstyle uses everywhere, so ``S`` must come from the same
    transform. If ``y`` yields more frames than ``S`` has, the
    extra frames are dropped; if fewer, the missing ones count as zeros (they add ``S``'s
    energy there to the error).

    Examples
    --------
    >>> import librosa, numpy as np
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> S = np.abs(librosa.stft(y, n_fft=1024, hop_length=256))
    >>> spectral_convergence(y, S, n_fft=1024, hop_length=256) < -60
    True
    """
    y = valid_audio(y)
    n_fft = positive_int(n_fft, "n_fft")
    hop_length = positive_int(hop_length, "hop_length")
    if win_length is not None:
        win_length = positive_int(win_length, "win_length")
        if win_length > n_fft:
            raise ParameterError(f"win_length={win_length} must be <= n_fft={n_fft}")
    if not isinstance(S, np.ndarray):
        raise ParameterError(f"S must be a numpy.ndarray, got {type(S).__name__}")
    if np.iscomplexobj(S) or not (
        np.issubdtype(S.dtype, np.floating) or np.issubdtype(S.dtype, np.integer)
    ):
        raise ParameterError(f"S must be real magnitudes (np.abs of an STFT), got dtype={S.dtype}")
    expected = y.shape[:-1] + (1 + n_fft // 2,)
    if S.ndim != y.ndim + 1 or S.shape[:-1] != expected or S.shape[-1] == 0:
        raise ParameterError(
            f"S.shape={S.shape} does not fit y.shape={y.shape} and n_fft={n_fft}: expected "
            f"{expected + ('frames',)}"
        )
    S = np.asarray(S, dtype=np.float64)
    if not np.isfinite(S).all():
        raise ParameterError("S is not finite everywhere (it holds NaN or Inf)")
    if (S < 0).any():
        raise ParameterError("S must be non-negative magnitudes (np.abs of an STFT)")
    den = float(np.linalg.norm(S))
    if den == 0.0:
        raise ParameterError("S is all zeros; spectral convergence is undefined")

    X = np.abs(stft(y.astype(np.float64), n_fft=n_fft, hop_length=hop_length, win_length=win_length))
    frames = S.shape[-1]
    if X.shape[-1] >= frames:
        X = X[..., :frames]
    else:
        pad = [(0, 0)] * (X.ndim - 1) + [(0, frames - X.shape[-1])]
        X = np.pad(X, pad)
    num = max(float(np.linalg.norm(X - S)), 1e-12 * den)
    return 20.0 * float(np.log10(num / den))
