"""The engine chain of ``rtstyle live``: device rate → the models' rate → Streamer → device
rate (:class:`LiveEngine`, on :class:`~rtstyle.stream.resampled.ResampledStreamer`, the chain
``render`` runs), the style list it runs
(:func:`resolve`) and the buffering it needs (:func:`live_buffering`)."""

from __future__ import annotations

import math

import numpy as np

from ..constants import CONTROLS
from ..engine_settings import EngineSettings
from ..errors import ParameterError
from .settings import DEFAULTS

__all__ = ["resolve", "LiveEngine", "live_buffering"]


def resolve(style=None, *, models_dir=None, device: str = "cpu"):
    """The style list → ``(resolved entries, model rate or None for identity only)``.

    As ``render`` does it (:func:`rtstyle.render.resolve_engine_styles`): each model file
    loaded once however often the list names it, every style checked to share the first one's
    STFT and to be causal, the messages naming the styles.
    """
    from ..render import resolve_engine_styles

    return resolve_engine_styles(EngineSettings(style=style, device=device),
                                 models_dir=models_dir)


class LiveEngine:
    """Device rate → the models' rate → :class:`~rtstyle.stream.Streamer` → device rate.

    The chain, :class:`~rtstyle.stream.resampled.ResampledStreamer`, that
    :class:`~rtstyle.render.RenderSession` runs with ``keep_latency=True``: fed a signal in any pieces, its output equals ``rtstyle render
    --keep-latency`` of that signal (within float32 rounding). It follows the streaming protocol
    (:class:`rtstyle.stream.protocol.StreamingStage`; ``latency`` at the device rate). Not
    thread-safe: one thread (the worker) drives it.

    Parameters
    ----------
    styles : list
        From :func:`resolve`.
    sr : int
        The device rate.

    The settings' ``resample_quality`` is soxr's preset for both resamplers (device rate ↔ the
    models' rate), as ``render(resample_quality=...)``; it sets their hold-back, so
    :meth:`prefill` and the buffer. No effect when the rates are equal.
    settings : EngineSettings, optional
        The engine's settings (its ``style`` is ``styles``'; ``threads`` are set by the
        session, :class:`~rtstyle.live.session.LiveSession`).
    **engine
        Settings to change, by name (``resample_quality``, ``strength``, ...).
    """

    CONTROLS = CONTROLS                      # what Streamer.set changes

    def __init__(self, styles, *, sr: int, settings: EngineSettings | None = None, **engine):
        from ..render import engine_streamer
        from ..stream.resampled import ResampledStreamer

        s = EngineSettings.of(settings, **engine)
        self.sr = int(sr)
        self.model_sr = next((m.sr for m, _ in styles if m is not None), self.sr)
        self.streamer = engine_streamer(styles, s, sr=self.model_sr, channels=1)
        self.initial = {k: 0 if k == "style" else getattr(s, k) for k in self.CONTROLS}
        self.current = dict(self.initial)
        self._chain = ResampledStreamer(self.streamer, sr=self.sr, quality=s.resample_quality)
        self.resample_quality = self._chain.quality

    @property
    def latency(self) -> int:
        """Engine latency at the device rate (as ``render`` counts it)."""
        return self._chain.latency

    @property
    def styles(self) -> list[str]:
        return self.streamer.styles

    def feed(self, x: np.ndarray) -> np.ndarray:
        """``(1, n)`` at the device rate → the ``(1, m)`` output that is ready."""
        return self._chain.feed(x)

    def flush(self) -> np.ndarray:
        """The tail (the Streamer's latency and the resamplers' hold-back); then reset."""
        tail = self._chain.flush()
        self.reset()
        return tail

    def set(self, name: str, value) -> None:
        """Change a control (validated by the Streamer; raises ParameterError)."""
        if name not in self.CONTROLS:
            raise ParameterError(f"unknown control {name!r}; expected one of {self.CONTROLS}")
        self.streamer.set(name, value)
        self.current[name] = value

    def reset(self) -> None:
        """Fresh stream state; the current controls are set again."""
        self._chain.reset()
        for k, v in self.current.items():
            if v != self.initial[k]:
                self.streamer.set(k, v)

    def warm_up(self, seconds: float = 0.5) -> None:
        """Run the chain once (JIT kernels, allocations) so the first real block is on time."""
        rng = np.random.default_rng(0)
        x = (0.05 * rng.standard_normal((1, max(1, int(seconds * self.sr))))).astype(np.float32)
        for i in range(0, x.shape[1], 256):
            self.feed(x[:, i:i + 256])
        self.reset()

    def prefill(self, block: int) -> int:
        """The smallest buffer (device samples) that keeps the output fed, worker infinitely fast.

        Runs the chain's sample counts (an identity Streamer with the same STFT sizes, the same
        resamplers at the same ``resample_quality``) for ``block``-sized callbacks: at callback
        ``k`` the worker has had blocks ``0 .. k-1`` and the callback needs output up to
        ``(k + 1) * block``. The start-up transient (output that is silent anyway) is not
        counted. soxr's hold-back, and so this buffer, depends on the quality.
        """
        from ..stream import Streamer
        from ..stream.resampled import ResampledStreamer

        st = self.streamer
        sim = ResampledStreamer(
            Streamer(None, sr=self.model_sr, n_fft=st.n_fft, hop_length=st.hop_length,
                     lookahead=st.lookahead, phase_iters=0, channels=1),
            sr=self.sr, quality=self.resample_quality)
        hop = st.hop_length * self.sr / self.model_sr
        k0 = int(math.ceil((self.latency + 2 * hop + block) / block)) + 1
        z = np.zeros((1, block), np.float32)
        produced = worst = 0
        for k in range(k0 + max(64, int(math.ceil(1.0 * self.sr / block)))):
            if k >= k0:
                worst = max(worst, (k + 1) * block - produced)
            produced += sim.feed(z).shape[-1]
        return int(worst)


def live_buffering(style, *, sr: int, block_size: int, margin_ms: float = DEFAULTS["margin_ms"],
                   models_dir=None, **engine_kw) -> tuple[int, int]:
    """``(engine latency, buffer)`` in samples at ``sr`` that ``live`` would run with.

    ``engine_kw`` are :class:`LiveEngine`'s (``resample_quality``, ``lookahead``, ...).
    """
    styles, _ = resolve(style, models_dir=models_dir)
    eng = LiveEngine(styles, sr=sr, **engine_kw)
    return eng.latency, eng.prefill(block_size) + int(round(margin_ms * sr / 1000))
