"""Offline render through the live engine: :func:`render` feeds a signal to a
:class:`~rtstyle.stream.Streamer` block by block, exactly as live audio would arrive.

DESIGN.md, "Render is live, aligned": by default the output is aligned with the input and of its
length (the engine latency removed); with ``keep_latency=True`` it is exactly what live would
play: input length + latency samples, input sample ``t`` at output sample ``t + latency``.

This module stays light (numpy only): ``import rtstyle`` binds ``rtstyle.render`` to this
module's function eagerly (a lazy attribute would be replaced by the submodule the first time
anything imports ``rtstyle.render``), so the engine and the metrics are imported inside
:func:`render`.
"""

from __future__ import annotations

import bisect
import collections
import logging
import time

import numpy as np

from . import _validate as v
from .constants import ENVELOPES, PHASE_INITS, RESAMPLE_QUALITIES
from .engine_settings import DEFAULTS as ENGINE_DEFAULTS
from .engine_settings import PARAMS, EngineSettings, style_label, with_engine_signature
from .errors import ParameterError

log = logging.getLogger("rtstyle")

__all__ = ["render", "render_file", "RenderSession", "style_list", "resolve_engine_styles",
           "engine_streamer", "PHASE_INITS", "RESAMPLE_QUALITIES", "ENVELOPES", "DEFAULTS"]

#: :func:`render`'s defaults, for the CLI and tools: the engine's
#: (:data:`rtstyle.engine_settings.DEFAULTS`; ``None``: the models' own, see :func:`render`) and
#: the block size.
DEFAULTS = {**ENGINE_DEFAULTS, "block_size": 4096}


def style_list(style=None, *, models_dir=None) -> list[str]:
    """The style list of ``render``/``live``: ``'A,B,C'`` or a list; ``None``: the listed styles.

    Without a style the list is ``rtstyle styles`` in its order (bundled first, then user
    models; broken entries skipped) restricted to the styles that share the first one's rate,
    n_fft and hop (one stream runs one STFT), or ``['identity']`` when no model is installed.
    """
    if style is None:
        from .models import list_styles

        rows = [e for e in list_styles(models_dir) if not e.get("error")]
        # One stream runs one STFT: the styles that share the first one's rate and sizes.
        key = (lambda e: (e["sr"], e["n_fft"], e["hop_length"]))
        names = [e["name"] for e in rows if key(e) == key(rows[0])] if rows else []
        return names or ["identity"]
    return list(PARAMS["style"].check(style, "style"))


def _load_styles(items, *, device="cpu", models_dir=None, n_fft=None, hop_length=None) -> list:
    """Style names → ``[(Model, index)]`` ('identity' and Model entries kept as they are), each
    model file loaded once however often the list names it, and every model checked to run on
    the first one's STFT (a stream runs one) and to be causal, the messages naming the styles
    by name (the Streamer would name the loaded objects)."""
    from .models import Model, resolve_style
    from .style_ref import REF_HOP_LENGTH, REF_N_FFT, REF_PREFIX, REF_SR, reference_style

    cache, out, first, refs = {}, [], None, []
    for item in items:
        if isinstance(item, str) and item.startswith(REF_PREFIX):
            refs.append((len(out), item))   # made below, on the list's STFT
            out.append(None)
            continue
        if isinstance(item, str) and item != "identity":
            model, index = resolve_style(item, device=device, models_dir=models_dir, cache=cache)
            out.append((model, index))
        else:
            out.append(item)
            model = item if isinstance(item, Model) else None
        if model is None:
            continue
        stft = (model.sr, model.n_fft, model.hop_length)
        for flag, asked, own in (("n_fft", n_fft, model.n_fft),
                                 ("hop_length", hop_length, model.hop_length)):
            if asked is not None and asked != own:
                raise ParameterError(f"style {style_label(item)!r} was trained with {flag}={own}; "
                                     f"{flag}={asked} cannot run it (leave {flag} unset)")
        if model.net.latency:
            raise ParameterError(
                f"style {style_label(item)!r}: nets with look-ahead ({model.net.latency} frames) are "
                "not supported by the Streamer yet; train a causal net (lookahead 0)")
        if first is None:
            first = (item, stft)
        elif stft != first[1]:
            raise ParameterError(
                f"style {style_label(item)!r} was trained at sr={stft[0]}, n_fft={stft[1]}, "
                f"hop_length={stft[2]}, but {style_label(first[0])!r} at sr={first[1][0]}, "
                f"n_fft={first[1][1]}, hop_length={first[1][2]}; one stream runs one STFT "
                "(list styles of the same settings)")
    if refs:   # zero-shot styles take the list's STFT (the engine's defaults without a model)
        sr, nf, hop = first[1] if first else (REF_SR, n_fft or REF_N_FFT,
                                              hop_length or REF_HOP_LENGTH)
        for i, item in refs:
            out[i] = (reference_style(item[len(REF_PREFIX):], sr=sr, n_fft=nf, hop_length=hop,
                                      device=device), 0)
    return out


def resolve_engine_styles(settings: EngineSettings, *, models_dir=None):
    """``settings.style`` → ``(resolved entries, the models' rate or None for identity only)``.

    The style list of ``render`` and ``live`` (:func:`style_list`), each model loaded on
    ``settings.device`` once however often the list names it, and checked against the first
    one's STFT and ``settings``' ``n_fft`` / ``hop_length`` (:func:`_load_styles`).
    """
    from .stream.streamer import resolve_styles

    items = _load_styles(style_list(settings.style, models_dir=models_dir),
                         device=settings.device, models_dir=models_dir, n_fft=settings.n_fft,
                         hop_length=settings.hop_length)
    styles = resolve_styles(items, models_dir=models_dir)
    return styles, next((m.sr for m, _ in styles if m is not None), None)


def engine_streamer(styles, settings: EngineSettings, *, sr: int, channels: int):
    """The :class:`~rtstyle.stream.Streamer` of ``render`` and ``live``: the entries of
    :func:`resolve_engine_styles` at the models' rate ``sr``, with ``settings``."""
    from .stream import Streamer

    return Streamer([None if m is None else (m, i) for m, i in styles], sr=sr,
                    channels=channels, settings=settings)


@with_engine_signature
def render(y: np.ndarray, *, sr: int, settings: EngineSettings | None = None,
           block_size: int = DEFAULTS["block_size"], models_dir=None, keep_latency: bool = False,
           **engine) -> tuple[np.ndarray, dict]:
    """Run ``y`` through the streaming engine, ``block_size`` samples at a time, then flush.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (channels, n)], floating point, finite
    sr : int > 0
        Rate of ``y``. The engine runs at the models' rate (``y`` is resampled to it and back
        with soxr at ``resample_quality``), or at ``sr`` for ``identity``.
    style : str or list of str, optional
        The style list: ``'identity'``, ``MODEL`` or ``MODEL:STYLE``, comma-separated or a list;
        the first is heard. Default: every style ``rtstyle styles`` lists (the first heard), or
        ``identity`` when no model is installed.
    block_size : int > 0
        Samples per :meth:`~rtstyle.stream.Streamer.feed` call. The output does not depend on it
        (within float32 rounding); a large block lets the nets take several frames per call.
    settings : EngineSettings, optional
        The engine's settings (default: the defaults of
        :class:`~rtstyle.engine_settings.EngineSettings`, where each is described and bounded).
    **engine
        Settings to change, by name: ``style``, ``strength``, ``morph``, ``mix``, ``gain_db``,
        ``bypass``, ``crossfade_ms``, ``envelope``, ``n_fft``, ``hop_length`` (default: the
        models', 1024 and 256 for ``identity``), ``lookahead``, ``phase_init``,
        ``phase_iters``, ``momentum``, ``resample_quality``, ``device``, ``threads``.
    models_dir : path, optional
        User model folder for resolving names.
    keep_latency : bool
        ``False``: output aligned with ``y`` and of its length. ``True``: what live would play,
        ``n + latency`` samples with ``y[t]`` at ``out[t + latency]``.

    ``resample_quality`` is soxr's preset between ``sr`` and the models' rate: render's output
    is aligned the same way at every quality (soxr's streams are delay-compensated), but it
    sounds as live does at that quality. ``threads`` are torch's (and BLAS's) while the render
    runs (:mod:`rtstyle.stream.threads`); their previous count is restored when it ends.

    Returns
    -------
    out : np.ndarray [shape=(channels, m) or (m,), dtype=float32]
        Same layout and rate as ``y``; ``m = n`` or ``n + latency``.
    info : dict
        ``latency_samples`` and ``latency_ms`` (at ``sr``), ``rtf`` (processing seconds /
        duration: the audio's cost, which grows with its length), ``startup_s`` (seconds to
        load the styles and start the engine, once per call), ``sc_db`` (spectral convergence of the aligned output against the magnitudes
        the engine asked for: ``|STFT(y)|`` for identity, the styled targets otherwise; ``None``
        for a silent input), ``duration_s``, ``peak_dbfs`` (``None`` when silent),
        ``model_sr``, ``n_fft``, ``hop_length``, ``styles`` (the list's labels),
        ``limited_samples``, and every engine setting by name
        (:meth:`EngineSettings.to_dict <rtstyle.engine_settings.EngineSettings.to_dict>`).

    Raises
    ------
    ParameterError
        Invalid audio or an invalid engine parameter (naming the value).
    ModelError
        A style that cannot be found or loaded.

    Examples
    --------
    >>> import numpy as np, rtstyle
    >>> y = 0.5 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    >>> out, info = rtstyle.render(y, sr=22050, style="identity")
    >>> out.shape, info["latency_samples"]
    ((22050,), 1057)
    """
    y = v.channel_first(v.valid_audio(y))
    sr = v.sample_rate(sr, "sr")
    channels = 1 if y.ndim == 1 else y.shape[0]
    t_start = time.perf_counter()
    session = RenderSession(sr=sr, channels=channels, settings=settings, block_size=block_size,
                            models_dir=models_dir, keep_latency=keep_latency, **engine)
    x = y.reshape(channels, -1)
    t0 = time.perf_counter()
    try:
        parts = [session.feed(x[:, i:i + 65536]) for i in range(0, x.shape[1], 65536)]
        parts.append(session.flush())
    finally:
        session.close()
    out = np.concatenate(parts, axis=1)
    info = session.info(elapsed=time.perf_counter() - t0, startup=t0 - t_start)
    return (out[0] if y.ndim == 1 else out), info


class RenderSession:
    """One input through a :class:`~rtstyle.stream.Streamer`, block by block, at file rates.

    The input (at ``sr``) is resampled to the models' rate, fed to the Streamer in
    ``block_size`` pieces (split at control events), and its output is aligned (the latency
    dropped, unless ``keep_latency``) and resampled to ``sr_out``. Memory does not grow with
    the input's length: spectral convergence and the peak are accumulated as the audio passes.

    Parameters are those of :func:`render`; ``sr_out`` (default ``sr``) is the output rate.
    Use :meth:`schedule` for control events, :meth:`feed` for each input block
    ``(channels, n)`` and :meth:`flush` for the tail; :meth:`info` for the report (of the input
    just flushed, until the next :meth:`feed`); :meth:`close` when done (it gives torch its
    previous thread count back: the session sets ``threads`` when it starts). It follows the
    streaming protocol (:class:`rtstyle.stream.protocol.StreamingStage`): :attr:`latency` is
    what the output carries (0 when aligned), :attr:`streamer_latency` what the report states.
    """

    def __init__(self, *, sr: int, channels: int, settings: EngineSettings | None = None,
                 block_size: int = DEFAULTS["block_size"], models_dir=None,
                 keep_latency: bool = False, sr_out: int | None = None, **engine):
        from .stream.analysis import StreamingSTFT
        from .stream.resampled import ResampledStreamer
        from .stream.threads import use_threads

        self.settings = es = EngineSettings.of(settings, **engine)
        self.sr = v.sample_rate(sr, "sr")
        self.sr_out = self.sr if sr_out is None else v.sample_rate(sr_out, "sr_out")
        self.block_size = v.bounded_int(block_size, "block_size")
        channels = v.bounded_int(channels, "channels")
        if not isinstance(keep_latency, bool):
            raise ParameterError(f"keep_latency={keep_latency!r} must be True or False")
        self.keep_latency = keep_latency
        self.resample_quality, self.threads = es.resample_quality, es.threads
        styles, model_sr = resolve_engine_styles(es, models_dir=models_dir)
        self.model_sr = model_sr or self.sr
        self.channels = channels
        self.streamer = st = engine_streamer(styles, es, sr=self.model_sr, channels=channels)
        st.record_targets = True          # drained frame by frame into the SC sums below
        # the chain live runs too: resample → (_engine: events, SC, alignment) → resample
        self._chain = ResampledStreamer(st, sr=self.sr, sr_out=self.sr_out,
                                        quality=self.resample_quality, inner=self._engine)
        self._sc_stft = StreamingSTFT(n_fft=st.n_fft, hop_length=st.hop_length, channels=channels)
        self._events: list[tuple[int, str, object]] = []   # sorted by sample (stable)
        self._ignored: set[str] = set()   # controls that can do nothing here (warned once)
        self._start()
        self._ended = False               # flushed: the next feed starts a new input
        self._restore_threads = use_threads(self.threads)   # the styles are loaded: torch is in

    def _start(self) -> None:
        """The per-input state: counters, alignment, SC sums, the next event to apply."""
        st = self.streamer
        self._targets = collections.deque()   # target frames (channels, bins) not yet paired
        self._sc_num = self._sc_den = 0.0
        self._sc_skip = st.latency
        self._n_in = 0                    # input samples (file rate)
        self._m_in = 0                    # samples fed to the engine (model rate)
        self._m_out = 0                   # engine samples out
        self._skip = 0 if self.keep_latency else st.latency
        self._next_event = 0              # index of the first event not applied yet
        self._peak = 0.0
        self._out_frames = 0

    def close(self) -> None:
        """Give torch (and BLAS) their thread counts from before the session; safe twice."""
        self._restore_threads()

    # ------------------------------------------------------------------ control
    def schedule(self, sample: int, name: str, value) -> None:
        """A control change at input sample ``sample`` (file rate), e.g. from a MIDI file."""
        at = int(round(sample * self.model_sr / self.sr))
        if not self._events or self._events[-1][0] <= at:     # in order: the usual case, O(1)
            self._events.append((at, name, value))
        else:                             # after every pending event of the same sample
            bisect.insort_right(self._events, (at, name, value), lo=self._next_event,
                                key=lambda e: e[0])

    # ------------------------------------------------------------------ audio
    def feed(self, x: np.ndarray) -> np.ndarray:
        """An input block ``(channels, n)`` at ``sr`` → the output that is ready, at ``sr_out``.

        The first block after :meth:`flush` starts a new input (as after :meth:`reset`).
        """
        if self._ended:
            self.reset()
        self._n_in += x.shape[1]
        return self._emit(self._chain.feed(x))

    def flush(self) -> np.ndarray:
        """Flush everything: the rest of the output, cut to the exact length
        (:attr:`expected_frames` in all). :meth:`info` still reports this input; the next
        :meth:`feed` starts a new one."""
        if self._ended:
            self.reset()
        self._ended = True
        out = self._emit(self._chain.flush())
        want = self.expected_frames
        have = self._out_frames
        if have > want:                                   # resampling rounds up a little
            out = out[:, : out.shape[1] - (have - want)]
        elif have < want:
            out = np.concatenate([out, np.zeros((self.channels, want - have), np.float32)], 1)
        self._out_frames = want
        return out

    def reset(self) -> None:
        """Start the input over: the Streamer (its initial settings), the resamplers, the
        counters and the report are cleared; scheduled events stay, to apply from sample 0 again."""
        self._chain.reset()
        self._sc_stft.reset()
        self._start()
        self._ended = False

    @property
    def streamer_latency(self) -> int:
        """The Streamer's latency at the output rate: what ``keep_latency`` keeps (and the
        report's ``latency_samples``, kept or removed)."""
        return self._chain.latency

    @property
    def latency(self) -> int:
        """The protocol's latency (output samples before input sample 0 comes out):
        :attr:`streamer_latency` with ``keep_latency``, else 0 (the output is aligned)."""
        return self.streamer_latency if self.keep_latency else 0

    @property
    def expected_frames(self) -> int:
        """Output samples in all, once flushed: the input's length at ``sr_out`` + :attr:`latency`."""
        return int(round(self._n_in * self.sr_out / self.sr)) + self.latency

    def _engine(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        st, parts, pos = self.streamer, [], 0
        events = self._events
        while pos < x.shape[1]:
            while self._next_event < len(events) and events[self._next_event][0] <= self._m_in:
                _, name, value = events[self._next_event]
                self._next_event += 1
                self._apply(name, value)
            end = min(pos + self.block_size, x.shape[1])
            if self._next_event < len(events):
                end = min(end, pos + max(1, events[self._next_event][0] - self._m_in))
            parts.append(st.feed(x[:, pos:end]))
            self._m_in += end - pos
            pos = end
        if last:
            parts.append(st.flush())
        y = np.concatenate(parts, axis=1) if parts else np.zeros((self.channels, 0), np.float32)
        self._sc_update(y, last)
        if self._skip:                    # align: drop the first `latency` engine samples
            drop = min(self._skip, y.shape[1])
            self._skip -= drop
            y = y[:, drop:]
        return y

    def _apply(self, name: str, value) -> None:
        """A control event → the Streamer; ``strength`` or ``morph`` with no style to blend
        toward (the list is 'identity' alone) is ignored with one warning line per control, as
        the ``--strength`` flag is, instead of failing the render (e.g. a MIDI file's CC2)."""
        if name in ("strength", "morph") and self.streamer.styles == ["identity"]:
            if name not in self._ignored:
                self._ignored.add(name)
                log.warning("warning: %s changes ignored: the style list is 'identity' alone "
                            "(%s blends toward a style)", name, name)
            return
        self.streamer.set(name, value)

    def _emit(self, out: np.ndarray) -> np.ndarray:
        """Count the output (at ``sr_out``) for the report and the exact length."""
        if out.size:
            self._peak = max(self._peak, float(np.max(np.abs(out))))
        self._out_frames += out.shape[1]
        return out

    # ------------------------------------------------------------------ spectral convergence
    def _sc_update(self, y: np.ndarray, last: bool) -> None:
        """Pair the aligned output's STFT frames with the engine's target frames, in order.

        Targets come out of the engine a latency before the output that realises them, so the
        queue holds a few frames only; the sums give SC of the whole file at the end.
        """
        st = self.streamer
        for block in st.take_targets():
            self._targets.extend(np.moveaxis(block, -1, 0))
        if self._sc_skip:
            drop = min(self._sc_skip, y.shape[1])
            self._sc_skip -= drop
            y = y[:, drop:]
        A = np.abs(self._sc_stft.feed(y))
        if last:
            A = np.concatenate([A, np.abs(self._sc_stft.flush())], axis=-1)
        for t in range(A.shape[-1]):
            if not self._targets:
                break
            S = self._targets.popleft()
            self._sc_num += float(np.sum((A[..., t] - S) ** 2))
            self._sc_den += float(np.sum(S.astype(np.float64) ** 2))

    def info(self, *, elapsed: float, startup: float) -> dict:
        """The report keys of DESIGN.md (and a few more) for this input: ``elapsed`` seconds
        of processing, ``startup`` seconds before it (styles loaded, engine built)."""
        duration_s = self._n_in / self.sr
        st = self.streamer
        sc = None
        if self._sc_den > 0:
            sc = float(10 * np.log10(max(self._sc_num, 1e-300) / self._sc_den))
        return {
            **self.settings.to_dict(),
            "latency_samples": self.streamer_latency,
            "latency_ms": 1000.0 * self.streamer_latency / self.sr_out,
            "rtf": elapsed / duration_s if duration_s else None,
            "startup_s": startup,
            "sc_db": sc,
            "duration_s": duration_s,
            "peak_dbfs": float(20 * np.log10(self._peak)) if self._peak > 0 else None,
            "model_sr": int(self.model_sr),
            "n_fft": int(st.n_fft),
            "hop_length": int(st.hop_length),
            "styles": st.styles,
            "device": st.device,
            "limited_samples": int(st.limited_samples),
        }


def render_file(path_in, path_out, *, sr_out: int | None = None, format=None, subtype=None,
                overwrite: bool = False, events=(), progress=None, read_block: int = 65536,
                **kw) -> dict:
    """Render one file to another, streamed from disk (memory does not grow with duration).

    Parameters
    ----------
    path_in, path_out : path
        Any file soundfile reads; the output's format from its extension (or ``format``),
        its subtype the input's where that format has it (or ``subtype``). Written atomically;
        never over ``path_in``, never over an existing file without ``overwrite``.
    sr_out : int, optional
        The output's rate (default the input's).
    events : iterable of (sample, name, value)
        Control changes at input samples (file rate), e.g. from a MIDI file.
    progress : callable(n_samples), optional
        Called with the number of input samples consumed after every block.
    **kw
        :class:`RenderSession`'s: ``settings``, ``block_size``, ``models_dir``,
        ``keep_latency``, and engine settings by name (``style``, ``strength``, ...).

    Returns
    -------
    info : dict
        :func:`render`'s info plus ``input``, ``output``, ``sr`` (the input file's) and
        ``sr_out``.
    """
    import soundfile as sf

    from .io.files import AudioWriter, format_and_subtype, read_blocks, sf_path

    t_start = time.perf_counter()
    info_in, blocks = read_blocks(path_in, blocksize=read_block)
    fmt, _ = format_and_subtype(str(path_out), format, None)
    if subtype is None:
        src = sf.info(sf_path(path_in))
        if src.format == fmt and sf.check_format(fmt, src.subtype):
            subtype = src.subtype                 # keep the input's sample format
    session = RenderSession(sr=info_in.sr, channels=info_in.channels, sr_out=sr_out, **kw)
    for sample, name, value in events:
        session.schedule(sample, name, value)
    t0 = time.perf_counter()
    try:
        with AudioWriter(path_out, sr=session.sr_out, channels=info_in.channels, format=format,
                         subtype=subtype, overwrite=overwrite, protect=[path_in]) as w:
            for block in blocks:
                w.write(session.feed(block))
                if progress is not None:
                    progress(block.shape[1])
            w.write(session.flush())
    finally:
        session.close()
    info = session.info(elapsed=time.perf_counter() - t0, startup=t0 - t_start)
    return {"input": str(path_in), "output": str(path_out), "sr": int(info_in.sr),
            "sr_out": int(session.sr_out), **info}
