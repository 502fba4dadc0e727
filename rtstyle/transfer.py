"""The seed method, complete: style transfer by optimising a spectrogram (Ulyanov & Lebedev 2016).

The content and style are analysed with one STFT at the processing rate; the optimisation
variable is the content's *feature* map (log1p linear magnitude, mel or MFCC); the loss is
``content_weight * content + style_weight * ||Gram(E(x)) - Gram(E(style))||^2`` through a
shallow random encoder ``E``; L-BFGS (or Adam) runs a fixed number of iterations; the features
go back to a linear magnitude and to audio by fast Griffin-Lim, or with the content's own phase.

Channels of the content are styled independently (one batch item each) toward the style's Gram
(the mean of its channels' Grams). The output has the content's rate, channels and length, and
its loudness: the RMS level of the content, with peaks limited at -1 dBFS.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from . import _validate as v
from ._progress import progress_bar
from .config import MEL_INVERSES, EncoderConfig, FeatureConfig, StftConfig
from .errors import ParameterError

# torch, librosa, soundfile and the DSP are imported inside transfer(): `import rtstyle` binds
# rtstyle.transfer to this module's function eagerly (a lazy attribute would be replaced by the
# submodule the first time anything imports rtstyle.transfer), so this module must stay light.

__all__ = ["transfer", "TransferResult", "OPTIMIZERS", "INITS", "PHASES", "CONTENT_LOSSES", "DEFAULTS"]

log = logging.getLogger("rtstyle")

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("random", "content")
PHASES = ("griffinlim", "content")
CONTENT_LOSSES = ("features", "spectrum", "perceptual")

#: Defaults, chosen by measurement (docs/transfer.md, "Choosing the defaults"): clearly audible
#: style on a 10-s clip within 3 minutes on a 2-core CPU.
DEFAULTS = dict(
    processing_sr=22050, n_fft=2048, hop_length=512, features="mel", n_mels=128, n_mfcc=40,
    filters=2048, kernel_size=11, activation="tanh", pool="none", pool_width=2,
    content_weight=0.5, style_weight=1.0, content_loss="features", optimizer="lbfgs",
    iterations=300, lr=None, init="content", phase="griffinlim", phase_iters=200,
    momentum=0.99, mel_inverse="pinv", seed=0, device="cpu",
)

#: The output has the content's RMS level, its peaks limited at this ceiling (dBFS).
PEAK_CEILING_DB = -1.0


@dataclass
class TransferResult:
    """What :func:`transfer` returns.

    Attributes
    ----------
    y : np.ndarray [shape=(n,) or (channels, n), dtype=float32]
        The stylised audio at the content's rate, channels and length.
    sr : int
        Its sample rate (the content's).
    processing_sr : int
        The rate the method ran at.
    stft : StftConfig
        The analysis at ``processing_sr``.
    S_content, S_style, S_output, S_result : np.ndarray [shape=(channels, bins, frames)]
        Linear magnitudes at ``processing_sr``: content, style, the optimised target (decoded
        from features, before phase reconstruction) and the result's audio (after it).
    history : list of dict
        Per iteration: ``iteration``, ``total``, ``content``, ``style``, ``seconds``.
    timings : dict
        Seconds spent in ``analysis``, ``optimisation``, ``phase`` and ``total``.
    settings : dict
        Every option the run used, for logs.
    """

    y: np.ndarray
    sr: int
    processing_sr: int
    stft: StftConfig
    S_content: np.ndarray
    S_style: np.ndarray
    S_output: np.ndarray
    S_result: np.ndarray
    history: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def style_loss_reduction(self) -> float:
        """Style loss at the start divided by at the end (how much closer the Gram got); 1
        where it started at 0 (the content already had the style: nothing to reduce)."""
        start = self.history[0]["style"]
        return start / max(self.history[-1]["style"], 1e-30) if start > 0 else 1.0


def _channels_first(y: np.ndarray) -> np.ndarray:
    return y[None] if y.ndim == 1 else y


def transfer(content: np.ndarray, style: np.ndarray, *, sr: int, style_sr: int | None = None,
             processing_sr: int = DEFAULTS["processing_sr"], n_fft: int = DEFAULTS["n_fft"],
             hop_length: int = DEFAULTS["hop_length"], features: str = DEFAULTS["features"],
             n_mels: int = DEFAULTS["n_mels"], n_mfcc: int = DEFAULTS["n_mfcc"],
             filters: int = DEFAULTS["filters"], kernel_size: int = DEFAULTS["kernel_size"],
             activation: str = DEFAULTS["activation"], pool: str = DEFAULTS["pool"],
             pool_width: int = DEFAULTS["pool_width"],
             content_weight: float = DEFAULTS["content_weight"],
             style_weight: float = DEFAULTS["style_weight"],
             content_loss: str = DEFAULTS["content_loss"], perceptual_weights=None,
             optimizer: str = DEFAULTS["optimizer"], iterations: int = DEFAULTS["iterations"],
             lr: float | None = DEFAULTS["lr"], init: str = DEFAULTS["init"],
             phase: str = DEFAULTS["phase"], phase_iters: int = DEFAULTS["phase_iters"],
             momentum: float = DEFAULTS["momentum"], mel_inverse: str = DEFAULTS["mel_inverse"],
             seed: int = DEFAULTS["seed"], device: str = DEFAULTS["device"],
             progress: bool = False, callback=None) -> TransferResult:
    """Style ``content`` with ``style`` by optimising its spectrogram (the seed method).

    Parameters
    ----------
    content : np.ndarray [shape=(n,) or (channels, n)]
        The audio whose words/notes/rhythm are kept.
    style : np.ndarray [shape=(m,) or (channels_s, m)]
        The reference whose timbre/texture is imposed; any length and channel count.
    sr : int
        Rate of ``content`` (and of the output).
    style_sr : int, optional
        Rate of ``style``; default ``sr``.
    processing_sr : int
        Rate the method runs at (both signals are resampled with soxr). 22050 as the seed.
    n_fft, hop_length : int
        STFT at ``processing_sr`` (Hann window of ``n_fft``). 2048/512 as the seed.
    features : {'stft', 'mel', 'mfcc'}
        What the encoder sees (see :mod:`rtstyle.dsp.features`); ``n_mels``, ``n_mfcc`` size them.
    filters, kernel_size, activation, pool, pool_width
        The shallow random encoder (:class:`~rtstyle.nn.encoder.ShallowEncoder`).
    content_weight, style_weight : float
        The two loss weights; ``content_weight=0`` is texture synthesis from the init.
    content_loss : {'features', 'spectrum', 'perceptual'}
        L2 on encoder activations (the seed), on the features themselves, or between VGGish
        embeddings of the magnitudes (needs ``perceptual_weights``).
    perceptual_weights : str or Path, optional
        VGGish weights as safetensors (``tools/convert_vggish.py`` makes them).
    optimizer : {'lbfgs', 'adam'}
        SciPy's L-BFGS-B (the seed's optimiser), or Adam.
    iterations : int
        Optimiser iterations (each L-BFGS iteration may evaluate the loss more than once; it
        stops early only when its line search can no longer lower the loss).
    lr : float, optional
        Adam's step size (default 0.05); L-BFGS sets its steps by line search.
    init : {'random', 'content'}
        Start from ``1e-3 * randn`` (the seed) or from the content's features (Grinstein et al.).
    phase : {'griffinlim', 'content'}
        Fast Griffin-Lim from a random phase, or the content's own phase (no iterations).
    phase_iters, momentum
        Griffin-Lim iterations and momentum (0.99: fast Griffin-Lim).
    mel_inverse : {'pinv', 'nnls'}
        How mel/MFCC features go back to a linear magnitude.
    seed : int
        Seeds the encoder weights, the random init and the random phase.
    device : {'cpu', 'cuda'}
        Falls back to the CPU with a warning when CUDA is missing.
    progress : bool
        Show a progress bar with the loss.
    callback : callable, optional
        Called with each history entry (a dict) after every iteration.

    Returns
    -------
    TransferResult

    Raises
    ------
    ParameterError
        Bad audio (not finite, empty, wrong shape) or any option out of range; a clip shorter
        than the encoder's receptive field.
    ModelError
        Unreadable perceptual weights.
    """
    import torch

    from .dsp.dynamics import match_loudness, peak_limit
    from .dsp.features import features as to_features, features_to_magnitude
    from .dsp.griffinlim import griffinlim, istft_with_phase
    from .dsp.stft import stft
    from .io.files import resample
    from .nn.device import resolve_device
    from .nn.encoder import ShallowEncoder
    from .nn.losses import StyleContentLoss

    t_start = time.perf_counter()
    content = v.channel_first(v.valid_audio(content, name="content"), "content")
    style = v.channel_first(v.valid_audio(style, name="style"), "style")
    sr = v.sample_rate(sr, "sr")
    style_sr = sr if style_sr is None else v.sample_rate(style_sr, "style_sr")
    # sizes bounded before anything is allocated by them (n_fft 2^30 asked for 8 GiB)
    v.bounded_int(n_fft, "n_fft")
    if hop_length is not None:
        v.bounded_int(hop_length, "hop_length")
    v.bounded_int(filters, "filters")
    v.bounded_int(kernel_size, "kernel_size")
    v.bounded_int(n_mels, "n_mels")
    v.bounded_int(n_mfcc, "n_mfcc")
    v.bounded_int(pool_width, "pool_width")
    stft_cfg = StftConfig(sr=v.sample_rate(processing_sr, "processing_sr"), n_fft=n_fft,
                          hop_length=hop_length)
    feat_cfg = FeatureConfig(kind=features, n_mels=n_mels, n_mfcc=n_mfcc)
    enc_cfg = EncoderConfig(n_filters=filters, kernel_size=kernel_size, activation=activation,
                            pool=pool, pool_width=pool_width, seed=v.nonnegative_int(seed, "seed"))
    content_weight = v.nonnegative_float(content_weight, "content_weight")
    style_weight = v.nonnegative_float(style_weight, "style_weight")
    v.one_of(content_loss, CONTENT_LOSSES, "content_loss")
    if content_loss == "perceptual" and perceptual_weights is None:
        raise ParameterError("content_loss='perceptual' needs perceptual_weights (a VGGish .safetensors file)")
    if perceptual_weights is not None:    # refused now, not after the analysis
        import os

        from .errors import ModelError
        from .nn._weights import PICKLE_SUFFIXES, path_name

        pw = path_name(perceptual_weights)
        if os.path.splitext(pw)[1].lower() in PICKLE_SUFFIXES:
            raise ModelError(f"{pw}: refusing to load a '{os.path.splitext(pw)[1]}' (pickle) "
                             "file; VGGish weights must be safetensors (tools/convert_vggish.py)")
        if not os.path.isfile(pw):
            raise ModelError(f"{pw}: no such file (VGGish weights, .safetensors)")
    v.one_of(optimizer, OPTIMIZERS, "optimizer")
    iterations = v.nonnegative_int(iterations, "iterations")
    lr = 0.05 if lr is None else v.positive_float(lr, "lr")
    v.one_of(init, INITS, "init")
    v.one_of(phase, PHASES, "phase")
    phase_iters = v.nonnegative_int(phase_iters, "phase_iters")
    momentum = v.nonnegative_float(momentum, "momentum")
    v.one_of(mel_inverse, MEL_INVERSES, "mel_inverse")
    device = resolve_device(device)
    settings = dict(sr=sr, style_sr=style_sr, processing_sr=stft_cfg.sr, n_fft=stft_cfg.n_fft,
                    hop_length=stft_cfg.hop_length, features=features, n_mels=n_mels, n_mfcc=n_mfcc,
                    filters=filters, kernel_size=kernel_size, activation=activation, pool=pool,
                    pool_width=pool_width, content_weight=content_weight, style_weight=style_weight,
                    content_loss=content_loss,
                    perceptual_weights=None if perceptual_weights is None else str(perceptual_weights),
                    optimizer=optimizer, iterations=iterations, lr=lr, init=init, phase=phase,
                    phase_iters=phase_iters, momentum=momentum, mel_inverse=mel_inverse, seed=seed,
                    device=device)

    # --- analysis at the processing rate -------------------------------------------------
    mono_out = content.ndim == 1
    n_out = content.shape[-1]
    c = _channels_first(resample(content, orig_sr=sr, target_sr=stft_cfg.sr))
    s = _channels_first(resample(style, orig_sr=style_sr, target_sr=stft_cfg.sr))
    opts = dict(n_fft=stft_cfg.n_fft, hop_length=stft_cfg.hop_length)
    D_content = stft(c, **opts)
    S_content = np.abs(D_content)
    S_style = np.abs(stft(s, **opts))
    X_content = to_features(S_content, stft=stft_cfg, features=feat_cfg)
    X_style = to_features(S_style, stft=stft_cfg, features=feat_cfg)

    encoder = ShallowEncoder(feat_cfg.n_channels(stft_cfg), enc_cfg).to(device)
    for what, X in (("content", X_content), ("style", X_style)):
        if X.shape[-1] < encoder.min_frames:
            need = (encoder.min_frames - 1) * stft_cfg.hop_length / stft_cfg.sr
            raise ParameterError(
                f"{what} is too short: {X.shape[-1]} frames, the encoder needs {encoder.min_frames} "
                f"(at least {need:.2f} s at hop_length={stft_cfg.hop_length})"
            )
    xc = torch.as_tensor(np.ascontiguousarray(X_content), device=device)
    loss_fn = StyleContentLoss(encoder, torch.as_tensor(X_style, device=device),
                               content_weight=content_weight, style_weight=style_weight,
                               content="spectrum" if content_loss == "spectrum" else "features")
    content_target = loss_fn.target_features(xc)
    perceptual = None
    if content_loss == "perceptual":
        from .nn.vggish import PerceptualContentLoss, load_vggish

        perceptual = PerceptualContentLoss(load_vggish(perceptual_weights, device=device),
                                           torch.as_tensor(S_content, device=device),
                                           sr=stft_cfg.sr, n_fft=stft_cfg.n_fft,
                                           hop_length=stft_cfg.hop_length)
    t_analysis = time.perf_counter() - t_start

    # --- optimisation --------------------------------------------------------------------
    gen = torch.Generator(device="cpu").manual_seed(seed)
    if init == "random":
        x0 = 1e-3 * torch.randn(xc.shape, generator=gen)
    else:
        x0 = xc.detach().cpu().clone(memory_format=torch.contiguous_format)
    x = x0.to(device).requires_grad_(True)

    def evaluate() -> dict:
        parts = loss_fn(x, content_target)
        if perceptual is not None:
            S = features_to_magnitude(x, stft=stft_cfg, features=feat_cfg, method="pinv")
            parts["content"] = perceptual(S)
            parts["total"] = content_weight * parts["content"] + style_weight * parts["style"]
        return parts

    t0 = time.perf_counter()
    history = _optimise(evaluate, x, optimizer=optimizer, iterations=iterations, lr=lr,
                        progress=progress, callback=callback)
    t_opt = time.perf_counter() - t0

    # --- back to audio -------------------------------------------------------------------
    t1 = time.perf_counter()
    X_out = x.detach().cpu().numpy()
    S_output = features_to_magnitude(X_out, stft=stft_cfg, features=feat_cfg, method=mel_inverse)
    n_proc = c.shape[-1]
    if phase == "content":
        y = istft_with_phase(S_output, D_content, length=n_proc, **opts)
    else:
        y = griffinlim(S_output, n_iter=phase_iters, momentum=momentum, length=n_proc, seed=seed,
                       device=device, **opts)
    y = match_loudness(y, reference=c, sr=stft_cfg.sr, ceiling_db=PEAK_CEILING_DB)
    S_result = np.abs(stft(y, **opts))  # what the listener gets, at the processing rate
    if sr != stft_cfg.sr:
        y = _fit_length(resample(y, orig_sr=stft_cfg.sr, target_sr=sr), n_out)
        y = peak_limit(y, sr=sr, ceiling_db=PEAK_CEILING_DB)  # resampling may overshoot a little
    t_phase = time.perf_counter() - t1
    if mono_out:
        y = y[0]
    timings = {"analysis": t_analysis, "optimisation": t_opt, "phase": t_phase,
               "total": time.perf_counter() - t_start}
    log.info("transfer: %d iterations in %.1f s, style loss %.4g -> %.4g", iterations, t_opt,
             history[0]["style"], history[-1]["style"])
    return TransferResult(y=np.ascontiguousarray(y, dtype=np.float32), sr=sr,
                          processing_sr=stft_cfg.sr, stft=stft_cfg, S_content=S_content,
                          S_style=S_style, S_output=S_output, S_result=S_result, history=history, timings=timings,
                          settings=settings)


def _optimise(evaluate, x: torch.Tensor, *, optimizer: str, iterations: int, lr: float,
              progress: bool, callback) -> list:
    """Minimise ``evaluate()['total']`` over the tensor ``x`` in place; return the history.

    ``lbfgs`` is SciPy's L-BFGS-B, as the seed used through TensorFlow's ScipyOptimizerInterface
    (its line search is robust where torch's LBFGS, stepped one iteration at a time, can stall),
    with the tolerances at 0 so it runs every iteration unless the line search can no longer
    improve the loss. ``adam`` is torch's Adam. History entry ``i`` is the loss after ``i``
    iterations (entry 0: the start).
    """
    import torch

    t0 = time.perf_counter()
    history = []
    bar = progress_bar(iterations, desc="transfer", unit="it", enabled=progress)

    def record(it: int, parts: dict) -> None:
        entry = {"iteration": it, **parts, "seconds": time.perf_counter() - t0}
        history.append(entry)
        if it == 0:
            return
        if callback is not None:
            callback(entry)
        if bar is not None:
            bar.set_postfix(loss=f"{parts['total']:.4g}", style=f"{parts['style']:.3g}",
                            content=f"{parts['content']:.3g}", refresh=False)
            bar.update(1)

    def loss_and_grad() -> dict:
        if x.grad is not None:
            x.grad = None
        parts = evaluate()
        parts["total"].backward()
        values = {k: float(val.detach()) for k, val in parts.items()}
        if not np.isfinite(values["total"]):
            raise ParameterError(f"the loss became {values['total']} after {len(history)} "
                                 f"iterations; lower lr={lr} or the loss weights")
        return values

    try:
        if iterations == 0:
            with torch.no_grad():
                record(0, {k: float(val) for k, val in evaluate().items()})
        elif optimizer == "lbfgs":
            import scipy.optimize

            last = {}

            def fun(z):
                with torch.no_grad():
                    x.copy_(torch.from_numpy(z.reshape(x.shape)))
                last.update(loss_and_grad())
                if not history:
                    record(0, dict(last))
                return last["total"], x.grad.detach().cpu().double().numpy().ravel()

            def step(*_):
                # L-BFGS-B ends each iteration at the point it evaluated last: the accepted one.
                record(len(history), dict(last))

            z0 = x.detach().cpu().double().numpy().ravel()
            res = scipy.optimize.minimize(fun, z0, jac=True, method="L-BFGS-B", callback=step,
                                          options=dict(maxiter=iterations, maxfun=50 * iterations,
                                                       ftol=0.0, gtol=0.0))
            with torch.no_grad():
                x.copy_(torch.from_numpy(res.x.reshape(x.shape)))
            if len(history) <= iterations:
                log.info("L-BFGS stopped after %d of %d iterations: %s", len(history) - 1,
                         iterations, res.message)
        else:
            opt = torch.optim.Adam([x], lr=lr)
            for it in range(iterations):
                record(it, loss_and_grad())  # the loss before this step = after `it` steps
                opt.step()
            with torch.no_grad():
                record(iterations, {k: float(val) for k, val in evaluate().items()})
    finally:
        if bar is not None:
            bar.close()
    return history


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Crop or zero-pad the last axis to ``n`` samples (resampling may be off by one)."""
    if y.shape[-1] >= n:
        return y[..., :n]
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, n - y.shape[-1])])
