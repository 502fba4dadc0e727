"""A style's output level trim: keep the output's peaks where the input's were.

A gain style rebuilds each frame's spectrum at the input frame's energy (the frame energy
match), but the new spectrum can be peakier: partials brought into line, a band lifted that the
phase stage sums coherently. At equal energy its waveform peaks higher, and a peak-normalised
input (mastered program material, a hot microphone) then drives the output limiter on every
loud passage. :func:`measure_level_trim` renders content through the style and returns the
trim (dB, at most 0) that keeps the limiter's share of that content within a target; a net built with ``TransformConfig(level=True)`` stores one per style
(:meth:`~rtstyle.nn.transform.TransformNet.set_style_level`). Loudness barely moves: the trims
are fractions of a dB to a dB or two.
"""

from __future__ import annotations

import pathlib

import numpy as np

from .errors import ParameterError

__all__ = ["measure_level_trim", "set_level_trims", "demo_content", "INPUT_PEAK_DBFS", "TARGET_LIMITED", "MAX_TRIM_DB"]

#: The input peak the trim is chosen for (dBFS): program material normalised as mastered audio
#: and the held-out set are, 0.9 dB under the limiter's ceiling.
INPUT_PEAK_DBFS = -1.0
#: The share of a clip's output samples the limiter may turn down at that input peak: the 1 %
#: the engine promises on real program material, held by every content clip (the promise is
#: per recording: an average over clips would let one loud passage in ten go by).
TARGET_LIMITED = 0.01
#: The largest trim returned (dB): beyond it the style is rebuilt quieter than its input by more
#: than a listener forgives; the limiter takes the rest.
MAX_TRIM_DB = 3.0
#: Trims are tried in steps of this (dB).
STEP_DB = 0.1
#: The level the content is rendered at (peak dBFS), far below the limiter's ceiling so the
#: render sees the style, not the limiter (the style is level-free: the output scales with it).
_MEASURE_PEAK_DBFS = -20.0


def measure_level_trim(model, style, clips, *, sr: int) -> float:
    """The output level trim (dB) of ``model``'s style ``style`` over content ``clips``.

    Each clip is rendered once through the style; the output, scaled as if the input had
    peaked at :data:`INPUT_PEAK_DBFS`, goes through the engine's output limiter at trims of
    0, -0.1, ... dB until the limited share of every clip is at most :data:`TARGET_LIMITED`.

    Parameters
    ----------
    model : rtstyle.models.Model
        The model, its style's level still 0 (a set level would be measured with it).
    style : int or str
        The style's index or name.
    clips : list of np.ndarray [shape=(n,)]
        Content at ``sr`` (speech and music, not the style's reference); silent clips are
        skipped.
    sr : int
        Their rate, the model's.

    Returns
    -------
    trim_db : float in [-MAX_TRIM_DB, 0]
        The smallest trim (in :data:`STEP_DB` steps) that holds the target.

    Raises
    ------
    ParameterError
        No clip with sound.
    """
    from .dsp.limiter import StreamingLimiter
    from .stream.streamer import process

    outs = []
    for y in clips:
        y = np.asarray(y, dtype=np.float32)
        peak = float(np.max(np.abs(y))) if y.size else 0.0
        if peak == 0.0:
            continue
        out = process(y * (10 ** (_MEASURE_PEAK_DBFS / 20) / peak), sr=sr,
                      model=[(model, style)])
        outs.append(out.astype(np.float64) * 10 ** ((INPUT_PEAK_DBFS - _MEASURE_PEAK_DBFS) / 20))
    if not outs:
        raise ParameterError("measure_level_trim: no content clip has sound")
    limiter = StreamingLimiter(sr=sr)
    steps = int(round(MAX_TRIM_DB / STEP_DB))
    for k in range(steps + 1):
        trim = -k * STEP_DB
        for out in outs:
            limiter.reset()
            limiter.feed(out[None] * 10 ** (trim / 20))
            limiter.flush()
            if limiter.limited_samples > TARGET_LIMITED * len(out):
                break
        else:
            return round(trim, 2)
    return -MAX_TRIM_DB


def set_level_trims(net, names, clips, *, sr: int, n_fft: int, hop_length: int,
                    on_style=None) -> dict:
    """Measure (:func:`measure_level_trim`) and store every style's trim in ``net`` (built
    with ``level=True``, its levels still 0), its styles called ``names``, at that STFT;
    ``on_style(name, trim)``, when given, is called after each style (a progress bar).

    Returns
    -------
    trims : dict
        Style name -> trim in dB.
    """
    from .models import Model

    model = Model(name="measure", path=pathlib.Path("measure"), card={}, net=net.eval(),
                  styles=list(names), sr=sr, n_fft=n_fft, hop_length=hop_length, bundled=False)
    trims = {}
    for k, name in enumerate(names):
        trims[name] = measure_level_trim(model, k, clips, sr=sr)
        net.set_style_level(k, trims[name])
        if on_style is not None:
            on_style(name, trims[name])
    return trims


#: The demo clips (speech and a melody) the level trim is measured on, when present.
EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def demo_content(sr: int) -> list:
    """The demo clips in ``examples/`` at ``sr`` (mono), or ``[]`` where they are not."""
    from .io.files import load_audio

    clips = []
    for stem in ("speech", "melody"):
        path = EXAMPLES / f"{stem}.flac"
        if path.is_file():
            clips.append(load_audio(path, sr=sr, mono=True)[0])
    return clips
