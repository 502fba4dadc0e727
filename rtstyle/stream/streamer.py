"""The live engine: :class:`Streamer`, audio in, stylised audio out, one hop at a time.

Chain per channel: :class:`~rtstyle.stream.analysis.StreamingSTFT` (centred periodic-Hann
frames) → target magnitude (``model=None``: the input's own magnitude, the identity transform;
otherwise a style list run by :class:`~rtstyle.stream.styles.StyleBank`: nets, strength, morph,
switching, all on log1p magnitudes) →
:class:`~rtstyle.dsp.phase_stream.StreamingPhase` (RTISI-LA + fast Griffin-Lim) → output stage.

Latency (samples, exact): ``latency = n_fft + (lookahead - 1) * hop_length``. It is the analysis
delay ``n_fft // 2`` (frame ``t``, centred at ``t * hop``, is complete ``n_fft // 2`` samples
later) plus StreamingPhase's ``n_fft // 2 + lookahead * hop``, minus one hop: StreamingPhase's
output clock already counts the hop it returns with the frame that completes it, so the
``hop`` samples returned when frame ``t`` arrives are the stream's samples up to the input count
at that moment. Hence, after every completed hop, samples out == samples in, and input sample
``t`` comes out at output sample ``t + latency``, whatever the block sizes. Between hop
boundaries ``feed`` returns nothing new (a live caller buffers up to one hop).

The output stage (:class:`~rtstyle.stream.mixer.OutputStage`: wet/dry mix against the input
delayed by that engine latency, bypass, gain, then a look-ahead limiter with its ceiling at
−0.1 dBFS) adds the limiter's look-ahead, ``round(1.5 ms * sr)`` samples. So

``latency = n_fft + (lookahead - 1) * hop_length + limiter look-ahead``

Examples: sr=22050, n_fft=1024, hop=256, lookahead=1 → 1024 + 33 = 1057 samples (47.9 ms);
sr=48000, n_fft=512, hop=128, lookahead=1 → 512 + 72 = 584 samples (12.2 ms). Below the ceiling
and at the default mix, gain and bypass the output stage is bit-transparent (a pure delay).
"""

from __future__ import annotations

import numpy as np

from .._validate import positive_int, sample_rate
from ..constants import CONTROLS, IDENTITY_HOP_LENGTH, IDENTITY_N_FFT
from ..dsp.limiter import CEILING_DBFS
from ..dsp.phase_stream import StreamingPhase, stream_sizes
from ..engine_settings import PARAMS, EngineSettings, with_engine_signature
from ..errors import ParameterError
from .analysis import StreamingSTFT
from .mixer import OutputStage

__all__ = ["Streamer", "process", "CEILING_DBFS"]


class Streamer:
    """Streaming style transfer (a style list, or the identity) with an exact, known latency.

    Parameters
    ----------
    model : None, str, Model, or a list of them
        ``None``: identity (the target magnitude is the input's). Otherwise the style list:
        ``'identity'``, ``MODEL`` or ``MODEL:STYLE`` names (:func:`rtstyle.load_model`), or
        loaded :class:`~rtstyle.models.Model` objects; the first entry is active at the start.
    sr : int > 0
        Sample rate (Hz); with models it must be theirs (``rtstyle render`` resamples).
    channels : int > 0
        Channels of the stream; each has its own state (random draws are shared).
    settings : EngineSettings, optional
        The engine's settings (:class:`~rtstyle.engine_settings.EngineSettings`: their
        defaults, bounds and meaning); its ``style``, ``resample_quality`` and ``threads`` are
        the business of the chain around the Streamer (``model`` is the style list here).
    **engine
        Settings to change, by name (``n_fft``, ``hop_length``, ``lookahead``,
        ``phase_iters``, ``phase_init``, ``momentum``, ``mix``, ``gain_db``, ``bypass``,
        ``strength``, ``morph``, ``crossfade_ms``, ``envelope``, ``device``). ``n_fft`` and
        ``hop_length`` default to the models' (1024 and 256 for identity); ``hop_length``
        must divide ``n_fft`` with ``n_fft // hop_length >= 2``. ``device`` is unused by the
        identity transform.
    models_dir : path, optional
        User model folder for resolving names (else ``RTSTYLE_MODELS`` / the user data dir).

    Attributes
    ----------
    settings : EngineSettings
        As given (checked); the resolved sizes are :attr:`n_fft`, :attr:`hop_length`, and the
        phase's :attr:`phase_iters`, :attr:`momentum`.
    latency : int
        Samples; see the module docstring.
    nonfinite_samples : int
        NaN/Inf input samples replaced by zeros since the last :meth:`reset`.
    limited_samples : int
        Output samples the limiter turned down (gain < 1) since the last :meth:`reset`.
    """

    @with_engine_signature(streamer=True)
    def __init__(self, model=None, *, sr: int, channels: int = 1, models_dir=None,
                 settings: EngineSettings | None = None, **engine):
        s = EngineSettings.of(settings, **engine)
        around = sorted(k for k in engine if not PARAMS[k].streamer)
        if around:
            raise ParameterError(f"Streamer takes no {', '.join(around)}: the style list is "
                                 "model=..., resampling and threads are set around the "
                                 "Streamer (rtstyle.render, rtstyle live)")
        self.settings = s
        self.sr = sample_rate(sr, "sr")
        self.model = model
        device, n_fft, hop_length = s.device, s.n_fft, s.hop_length
        styles = None
        if model is not None:
            from ..nn.device import resolve_device

            device = resolve_device(device)     # CUDA absent: the CPU, with one warning line
            styles = resolve_styles(model, device=device, models_dir=models_dir)
            if len(styles) == 1 and styles[0][0] is None:
                styles = None                    # identity alone: no style bank to run
            first = next((m for m, _ in styles or () if m is not None), None)
            if first is not None:
                n_fft = first.n_fft if n_fft is None else n_fft
                hop_length = first.hop_length if hop_length is None else hop_length
        n_fft = IDENTITY_N_FFT if n_fft is None else n_fft
        hop_length = IDENTITY_HOP_LENGTH if hop_length is None else hop_length
        n_fft, hop_length = stream_sizes(n_fft, hop_length)
        self.n_fft, self.hop_length = n_fft, hop_length
        self.lookahead = s.lookahead
        self.phase_init = s.phase_init
        self.channels = positive_int(channels, "channels")
        self.envelope = s.envelope
        self.device = device
        self._styles = None
        if styles is not None:
            from .styles import IDENTITY, StyleBank

            self._styles = StyleBank([IDENTITY if m is None else (m, i) for m, i in styles],
                                     channels=self.channels, sr=self.sr, n_fft=n_fft,
                                     hop_length=hop_length, device=device, strength=s.strength,
                                     morph=s.morph, crossfade_ms=s.crossfade_ms,
                                     envelope=s.envelope)
        elif model is None and (s.strength, s.morph) != (1.0, 0.0):
            raise ParameterError("strength and morph need a style (model=...)")
        self._stft = StreamingSTFT(n_fft=n_fft, hop_length=hop_length, channels=self.channels)
        self._phase = StreamingPhase(n_fft=n_fft, hop_length=hop_length, lookahead=self.lookahead,
                                     n_iter=s.phase_iters, momentum=s.momentum,
                                     init=self.phase_init, channels=self.channels)
        self.phase_iters = self._phase.n_iter
        self.momentum = self._phase.momentum
        # Zeros that put StreamingPhase's output on the input's sample clock (module docstring).
        self._pre = n_fft // 2 - hop_length
        self._out = OutputStage(sr=self.sr, channels=self.channels, dry_delay=self.engine_latency,
                                ceiling_db=CEILING_DBFS, mix=s.mix, gain_db=s.gain_db,
                                bypass=s.bypass)
        self.reset()

    # ------------------------------------------------------------------ protocol
    @property
    def engine_latency(self) -> int:
        """Samples from input to the wet signal: ``n_fft + (lookahead - 1) * hop_length``."""
        return self._stft.latency + self._phase.latency - self.hop_length

    @property
    def latency(self) -> int:
        """End-to-end latency in samples: the engine's plus the limiter's look-ahead."""
        return self.engine_latency + self._out.latency

    @property
    def limited_samples(self) -> int:
        return self._out.limited_samples

    @property
    def styles(self) -> list[str]:
        """The style list's labels (``['identity']`` without a model)."""
        return ["identity"] if self._styles is None else self._styles.labels

    def set(self, name: str, value) -> None:
        """Change a control while streaming.

        ``mix``, ``gain_db``, ``bypass`` (output stage: glide over 20 ms, from the input sample
        that comes next, heard one :attr:`latency` later); ``strength``, ``morph`` (glide over
        ~20 ms of frames) and ``style`` (an index into the style list: a crossfade of
        ``crossfade_ms``), from the next frame completed. Raises :class:`ParameterError` for a
        bad name or value.
        """
        if name not in CONTROLS:
            raise ParameterError(f"unknown parameter {name!r} for Streamer.set; expected one of "
                                 f"{', '.join(CONTROLS)}")
        if name in ("strength", "morph", "style"):
            if self._styles is None:
                if name == "style" and value == 0:
                    return
                raise ParameterError(f"{name} needs a style list (model=...)")
            self._styles.set(name, value)
        else:
            self._out.set(name, value)

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency / self.sr

    def reset(self) -> None:
        """Clear the stream state (buffers re-allocated) and the counters, keep the parameters."""
        self._clear(keep_counts=False)

    def _clear(self, *, keep_counts: bool) -> None:
        self._stft.reset()
        self._phase.reset()
        self._out.reset(keep_count=keep_counts)
        if self._styles is not None:
            self._styles.reset()
        self._n_in = 0
        self._n_out = 0
        if not keep_counts:
            self._targets = []
            self.nonfinite_samples = 0

    def feed(self, block: np.ndarray) -> np.ndarray:
        """Take any number of samples; return the output that is ready (same layout).

        Parameters
        ----------
        block : np.ndarray [shape=(n,) or (channels, n)], floating point
            ``(n,)`` only for a one-channel stream. NaN/Inf samples become zeros (counted).

        Returns
        -------
        y : np.ndarray [shape=(m,) or (channels, m), dtype=float32]
            ``m`` is a multiple of ``hop_length`` (0 between hop boundaries), except that the first
            non-empty return also carries ``n_fft // 2 - hop_length`` leading zeros.
        """
        mono, x = self._check(block)
        self._n_in += x.shape[1]
        self._out.push_dry(x)
        D = self._stft.feed(x)
        return self._emit(self._run(D), mono)

    def flush(self) -> np.ndarray:
        """Finish the stream: return the tail, so that all output == input length + latency.

        The input is continued by ``n_fft // 2`` zeros (the centred STFT's padding), every frame
        left is committed and the output is cut at ``input length + latency`` samples. Nothing fed:
        an empty array. The layout is that of the last :meth:`feed` (mono if it was ``(n,)``).
        The stream is reset afterwards (the counters are kept until the next :meth:`reset`).
        """
        mono, C = self._mono, self.channels
        if self._n_in == 0:
            self.reset()
            out = np.zeros((C, 0), np.float32)
            return out[0] if mono else out
        D = self._stft.flush()              # the centred STFT's n_fft // 2 zeros
        parts = [self._run(D), self._phase.flush()]
        if self._n_out == 0:
            parts.insert(0, np.zeros((C, self._pre), np.float32))
        y = np.concatenate(parts, axis=1)
        y = y[:, : self._n_in + self.engine_latency - self._n_out]
        out = np.concatenate([self._out_stage(y), self._out.flush()], axis=1)
        self._clear(keep_counts=True)
        return out[0] if mono else out

    # ------------------------------------------------------------------ internals
    _mono = False

    def _check(self, block):
        if not isinstance(block, np.ndarray):
            raise ParameterError(f"block must be a numpy.ndarray, got {type(block).__name__}")
        if not np.issubdtype(block.dtype, np.floating):
            raise ParameterError(f"block must be floating-point audio, got dtype={block.dtype}")
        if block.ndim == 1:
            if self.channels != 1:
                raise ParameterError(
                    f"block.shape={block.shape}: expected {self.channels} channels "
                    f"(shape ({self.channels}, n)), got a mono (n,) block")
            mono, x = True, block[None]
        elif block.ndim == 2:
            if block.shape[0] != self.channels:
                raise ParameterError(
                    f"block.shape={block.shape}: expected {self.channels} channels, "
                    f"got {block.shape[0]} (audio is channel-first: (channels, n))")
            mono, x = False, block
        else:
            raise ParameterError(
                f"block must have shape (n,) or (channels, n), got block.shape={block.shape}")
        self._mono = mono
        x = np.array(x, dtype=np.float64)
        bad = ~np.isfinite(x)
        if bad.any():
            self.nonfinite_samples += int(bad.sum())
            x[bad] = 0.0
        return mono, x

    def _run(self, D: np.ndarray) -> np.ndarray:
        """Frames → target magnitudes (identity or the style list) → phase → samples."""
        S = np.abs(D)
        if self._styles is not None and S.shape[-1]:
            S = np.expm1(self._styles.feed(np.log1p(S)))
        if self.record_targets:
            self._targets.append(S.astype(np.float32))
        return self._phase.feed(S, D)

    #: Keep every target magnitude frame (render's SC report); off for live use.
    record_targets = False

    def take_targets(self) -> list:
        """The target frames recorded since the last call (``record_targets``), in order, as
        (channels, bins, k) blocks; the record is emptied (render drains it as it goes)."""
        taken, self._targets = self._targets, []
        return taken

    def _emit(self, y: np.ndarray, mono: bool) -> np.ndarray:
        if y.shape[1] and self._n_out == 0:
            y = np.concatenate([np.zeros((self.channels, self._pre), np.float32), y], axis=1)
        out = self._out_stage(y)
        return out[0] if mono else out

    def _out_stage(self, y: np.ndarray) -> np.ndarray:
        """Mixer and limiter; NaN/Inf from the engine (never expected) become silence first."""
        self._n_out += y.shape[1]
        y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
        return self._out.feed(y)


def resolve_styles(model, *, device="cpu", models_dir=None):
    """Style list → ``[(Model or None for identity, style index)]``, every model loaded.

    Entries: ``'identity'``, ``MODEL`` / ``MODEL:STYLE`` names, :class:`~rtstyle.models.Model`
    objects (their first style) or ``(Model, style)`` pairs. ``None`` entries are identity too.
    """
    from ..models import Model, resolve_style
    from .styles import IDENTITY

    items = model if isinstance(model, (list, tuple)) else [model]
    if not items:
        raise ParameterError("model=[]: the style list is empty")
    out = []
    for item in items:
        if item is None or (isinstance(item, str) and item == IDENTITY):
            out.append((None, 0))
        elif isinstance(item, Model):
            out.append((item, 0))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Model):
            out.append((item[0], item[0].style_index(item[1])))
        elif isinstance(item, str):
            out.append(resolve_style(item, device=device, models_dir=models_dir))
        else:
            raise ParameterError(f"model entry {item!r} must be a style name, 'identity' or a "
                                 "Model")
    return out


def process(y: np.ndarray, *, sr: int, **kw) -> np.ndarray:
    """Offline helper: the whole of ``y`` through a :class:`Streamer`, aligned with ``y``.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)], floating point
    sr : int
    **kw
        The other keyword arguments of :class:`Streamer` (not ``channels``: taken from ``y``).

    Returns
    -------
    out : np.ndarray, same shape as ``y``, float32
        The stream's output with the latency removed (``out[t]`` carries ``y[t]``).
    """
    if not isinstance(y, np.ndarray) or y.ndim not in (1, 2):
        raise ParameterError("y must be a numpy.ndarray of shape (n,) or (channels, n)")
    if "channels" in kw:
        raise ParameterError("process() takes the channels from y.shape; do not pass channels")
    st = Streamer(sr=sr, channels=1 if y.ndim == 1 else y.shape[0], **kw)
    out = np.concatenate([st.feed(y), st.flush()], axis=-1)
    return out[..., st.latency: st.latency + y.shape[-1]]
