"""The streaming protocol (rtstyle.stream.protocol.StreamingStage), checked over every stage.

One conformance test, parametrised over the stages: (a) the stage is a ``StreamingStage``;
(b) any block sizes plus ``flush()`` give what one block gives; (c) the output has the length
the stage defines (input + ``latency`` for the audio stages) and, aligned by ``latency``,
matches the stage's offline result where one exists; (d) after ``reset()`` (mid-stream) the
stage gives the same output again. ``flush()`` resets too, so one object serves every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import pytest

from conftest import SR, harmonic, noise, speechlike
from rtstyle.stream.protocol import StreamingStage

N_FFT, HOP = 1024, 256                  # the bundled model's STFT (and the Streamer's default)
MODEL = "instruments:organ"             # bundled, trained at SR = 22050 with N_FFT / HOP
SR_DEVICE = 44100                       # render / live at another rate: 2x, so lengths are exact
AUDIO_SIZES = (1, 7, 100, 257, None)    # None: the whole input in one block
FRAME_SIZES = (1, 2, 7, None)           # the frame stages' inputs are ~35 frames long

#: Bit-equal: the stage does the same arithmetic on the same numbers whatever the blocks (a
#: per-sample recursion over rings, per-frame work in the same order, soxr's stream).
EXACT = 0.0
#: The STFT: the same samples and window per frame, one FFT per frame, but numpy transforms k
#: frames in one call; a batched FFT may round in another order: a few ulps of |D| <~ 100.
FFT_TOL = 1e-12
#: Torch runs the nets over a block of frames in one call or frame by frame; in float64 the
#: batched matmul rounds differently by ~1e-15 (measured 3e-15 on log1p magnitudes of ~1).
NET_TOL = 1e-12
#: Engines: the float32 output of values below 1 is on a grid of 6e-8 (one ulp at 0.5..1 is
#: 6e-8; 1.2e-7 above 1 before the limiter); a float64 difference of ~1e-12 carried through the
#: phase iterations can flip a rounding by one ulp, no more. 1e-6 allows 8 ulps.
ENGINE_TOL = 1e-6
#: Identity with the input's own phase: the input's STFT is a fixed point of the projections
#: (to float64 rounding, ~1e-15), so the float32 output is the float32 input (up to an ulp).
IDENTITY_TOL = 1e-7


@dataclass
class Case:
    make: Callable                      # () -> the stage
    x: np.ndarray                       # the input: (channels, n) samples or (..., k) frames
    sizes: tuple = AUDIO_SIZES
    tol: float = EXACT                  # block sizes vs one block, and after reset
    length: Callable | None = None      # (stage, input length) -> total output length
    offline: np.ndarray | None = None   # what the output, aligned by latency, must equal
    offline_tol: float = EXACT
    align: Callable | None = None       # (stage, out, input length) -> the aligned output
    feed: Callable | None = None        # (stage, block) -> output, if the stage takes more


def _plus_latency(st, n):
    return n + st.latency


def _delay_aligned(st, out, n):
    return out[..., st.latency: st.latency + n]


@lru_cache(maxsize=None)
def _y():
    """Mono speech-like audio at SR, a whole number of hops (so the phase stage's offline
    signal, ``hop * (frames - 1)`` samples, is all of it)."""
    y = speechlike(SR, duration=0.4, seed=5)
    return y[: y.size // HOP * HOP].astype(np.float64)


def _stft(y):
    from rtstyle.dsp.stft import stft

    return stft(y, n_fft=N_FFT, hop_length=HOP)


def _cases():
    from rtstyle.dsp.limiter import StreamingLimiter
    from rtstyle.dsp.phase_stream import StreamingPhase
    from rtstyle.io.files import Resampler, resample
    from rtstyle.stream.analysis import StreamingSTFT
    from rtstyle.stream.mixer import OutputStage

    y = _y()
    stereo = np.stack([y, -0.5 * y])
    D = _stft(stereo)                                    # (2, bins, k), complex128
    k = D.shape[-1]
    loud = np.stack([4.0 * y, harmonic(SR, duration=y.size / SR, amp=1.5)[: y.size]])
    noise48 = noise(48000, duration=0.3)
    noise48 = np.stack([noise48, -noise48[::-1]])

    def phase_length(st, _k):
        # every frame returns a hop, the flush lookahead * hop + n_fft - hop: the centred
        # signal (hop * (k - 1) samples) after the latency, then the last frame's right half
        return HOP * (_k - 1) + st.latency + N_FFT // 2

    def phase_aligned(st, out, _k):
        return out[..., st.latency: st.latency + HOP * (_k - 1)]

    cases = {
        # samples in, frames out: frame t is centred at sample t * hop (latency = n_fft // 2 is
        # when it is complete), so the frames line up with the offline STFT as they are
        "stft": Case(lambda: StreamingSTFT(n_fft=N_FFT, hop_length=HOP, channels=2), stereo,
                     length=lambda st, n: 1 + n // HOP, offline=D,
                     offline_tol=FFT_TOL, tol=FFT_TOL, align=lambda st, out, n: out),
        # frames in (the input's own STFT: magnitude and phase), samples out
        "phase (input)": Case(
            lambda: StreamingPhase(n_fft=N_FFT, hop_length=HOP, channels=2), D,
            sizes=FRAME_SIZES, length=phase_length, offline=stereo, offline_tol=IDENTITY_TOL,
            align=phase_aligned, feed=lambda st, blk: st.feed(np.abs(blk), blk)),
        # magnitudes alone (the protocol's one-argument feed), phases from RTPGHI
        "phase (rtpghi)": Case(
            lambda: StreamingPhase(n_fft=N_FFT, hop_length=HOP, channels=2, init="rtpghi",
                                   n_iter=4), np.abs(D),
            sizes=FRAME_SIZES, length=phase_length),
        # below the ceiling at the default mix/gain/bypass: a pure delay, bit for bit
        "output stage": Case(
            lambda: OutputStage(sr=SR, channels=2, dry_delay=0), stereo.astype(np.float32),
            length=_plus_latency, offline=stereo.astype(np.float32), align=_delay_aligned),
        # far above the ceiling: the gain recursion works on every sample
        "limiter": Case(lambda: StreamingLimiter(sr=SR, channels=2), loud,
                        length=_plus_latency),
        "resampler": Case(
            lambda: Resampler(orig_sr=48000, target_sr=22050, channels=2), noise48,
            length=lambda st, n: round(n * 22050 / 48000),
            offline=resample(noise48, orig_sr=48000, target_sr=22050), align=lambda st, o, n: o),
    }
    return cases


def _net_cases():
    """Cases that load the bundled model (kept apart: a model load costs ~1 s)."""
    import rtstyle
    from rtstyle.live import LiveEngine
    from rtstyle.render import RenderSession
    from rtstyle.stream import Streamer, process
    from rtstyle.stream.resampled import ResampledStreamer
    from rtstyle.stream.streamer import resolve_styles
    from rtstyle.stream.styles import StyleBank

    y = _y()
    stereo = np.stack([y, -0.5 * y])
    L = np.log1p(np.abs(_stft(stereo)))                  # the bank's input: log1p magnitudes
    y2 = speechlike(SR_DEVICE, duration=0.3, seed=6).astype(np.float64)
    y2 = y2[: y2.size // 2 * 2]                          # even: 44100 -> 22050 -> 44100 exact
    styles = resolve_styles([MODEL])
    bank = dict(channels=2, sr=SR, n_fft=N_FFT, hop_length=HOP)
    return {
        # the net wrapper the engine runs (TransformNet inside), frames in and out, latency 0
        # identity: the input again, but through the envelope follower's expm1 / energy
        # ratio / log1p in float64 (a few ulps of values below 1)
        "style bank (identity)": Case(lambda: StyleBank(["identity"], **bank), L,
                                      sizes=FRAME_SIZES, length=lambda st, k: k, offline=L,
                                      offline_tol=1e-12, align=lambda st, out, k: out),
        "style bank (model)": Case(lambda: StyleBank([styles[0]], **bank), L,
                                   sizes=FRAME_SIZES, tol=NET_TOL, length=lambda st, k: k),
        "streamer (identity)": Case(
            lambda: Streamer(sr=SR, channels=2), stereo, tol=ENGINE_TOL, length=_plus_latency,
            offline=stereo, offline_tol=IDENTITY_TOL, align=_delay_aligned),
        # mono (n,) layout; the offline helper process() is the whole input in one block
        "streamer (model)": Case(
            lambda: Streamer(MODEL, sr=SR), y, tol=ENGINE_TOL, length=_plus_latency,
            offline=process(y, sr=SR, model=MODEL), offline_tol=ENGINE_TOL,
            align=_delay_aligned),
        # resample -> Streamer -> resample; aligned output (latency 0), equal to render()
        "render session (model)": Case(
            lambda: RenderSession(sr=SR_DEVICE, channels=1, style=MODEL), y2[None],
            tol=ENGINE_TOL, length=_plus_latency,
            offline=rtstyle.render(y2[None], sr=SR_DEVICE, style=MODEL)[0],
            offline_tol=ENGINE_TOL, align=_delay_aligned),
        # the one resampled engine both run: equals render --keep-latency, whole
        "resampled streamer (model)": Case(
            lambda: ResampledStreamer(Streamer(MODEL, sr=SR, channels=1), sr=SR_DEVICE),
            y2[None], tol=ENGINE_TOL, length=_plus_latency,
            offline=rtstyle.render(y2[None], sr=SR_DEVICE, style=MODEL, keep_latency=True)[0],
            offline_tol=ENGINE_TOL, align=lambda st, out, n: out),
        # live's chain (output with the latency kept): equals render --keep-latency, whole
        "live engine (model)": Case(
            lambda: LiveEngine(styles, sr=SR_DEVICE), y2[None], tol=ENGINE_TOL,
            length=_plus_latency,
            offline=rtstyle.render(y2[None], sr=SR_DEVICE, style=MODEL, keep_latency=True)[0],
            offline_tol=ENGINE_TOL, align=lambda st, out, n: out),
    }


def _run(case, st, x, size):
    """Feed ``x`` in blocks of ``size`` (None: one block), then flush; the concatenation."""
    feed = case.feed or (lambda s, blk: s.feed(blk))
    n = x.shape[-1]
    size = size or max(n, 1)
    parts = [feed(st, x[..., i:i + size]) for i in range(0, n, size)]
    parts.append(st.flush())
    return np.concatenate(parts, axis=-1)


def _check(case):
    st = case.make()
    assert isinstance(st, StreamingStage), type(st).__name__
    assert isinstance(st.latency, (int, np.integer)) and st.latency >= 0
    x, n = case.x, case.x.shape[-1]
    ref = _run(case, st, x, None)
    # (c) length, and the latency-aligned output against the offline result
    if case.length is not None:
        assert ref.shape[-1] == case.length(st, n)
    if case.offline is not None:
        got = (case.align or _delay_aligned)(st, ref, n)
        assert got.shape == case.offline.shape
        np.testing.assert_allclose(got, case.offline, rtol=0, atol=case.offline_tol)
    # (b) any block sizes + flush == one block (flush reset the stage: the same object again)
    for size in case.sizes:
        out = _run(case, st, x, size)
        assert out.shape == ref.shape, size
        np.testing.assert_allclose(out, ref, rtol=0, atol=case.tol, err_msg=f"block {size}")
    # (d) reset mid-stream, then the same input gives the same output
    feed = case.feed or (lambda s, blk: s.feed(blk))
    for i in range(0, n // 2, 7):
        feed(st, x[..., i:min(i + 7, n // 2)])
    st.reset()
    np.testing.assert_allclose(_run(case, st, x, None), ref, rtol=0, atol=case.tol,
                               err_msg="after reset")


@pytest.mark.parametrize("name", ["stft", "phase (input)", "phase (rtpghi)", "output stage",
                                  "limiter", "resampler"])
def test_dsp_stage_follows_the_protocol(name):
    _check(_cases()[name])


@pytest.fixture(scope="module")
def net_cases():
    # one torch thread, as the engine runs by default (render sets it; a bare Streamer does
    # not): the nets' per-frame calls are ~5x slower on two threads of a busy machine
    import torch  # noqa: F401 - use_threads sets torch only once it is imported

    from rtstyle.stream.threads import use_threads

    undo = use_threads(1)
    try:
        yield _net_cases()
    finally:
        undo()


@pytest.mark.parametrize("name", ["style bank (identity)", "style bank (model)",
                                  "streamer (identity)", "streamer (model)",
                                  "render session (model)", "resampled streamer (model)",
                                  "live engine (model)"])
def test_engine_stage_follows_the_protocol(net_cases, name):
    _check(net_cases[name])
