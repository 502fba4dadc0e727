"""The streaming protocol every stateful stage of rtstyle follows (DESIGN.md, Contracts).

A stage takes its input in blocks of any size and gives back what is ready; the result does not
depend on how the input was cut into blocks. The stages that follow it:

=================================================  ==================  ==================
stage                                              ``feed`` takes      ``feed`` returns
=================================================  ==================  ==================
:class:`rtstyle.stream.analysis.StreamingSTFT`      samples             STFT frames
:class:`rtstyle.stream.styles.StyleBank`            log1p frames        log1p frames
:class:`rtstyle.dsp.phase_stream.StreamingPhase`    magnitude frames    samples
:class:`rtstyle.stream.mixer.OutputStage`           samples             samples
:class:`rtstyle.dsp.limiter.StreamingLimiter`       samples             samples
:class:`rtstyle.io.files.Resampler`                 samples             samples (new rate)
:class:`rtstyle.stream.Streamer`                    samples             samples
:class:`rtstyle.render.RenderSession`               samples             samples
:class:`rtstyle.live.LiveEngine`                    samples             samples
=================================================  ==================  ==================

(:class:`rtstyle.nn.transform.TransformNet` streams too, but counts its ``latency`` in frames
of look-ahead; the engine runs it inside :class:`~rtstyle.stream.styles.StyleBank`, which takes
only causal nets and so has no latency.) ``tests/test_protocol.py`` checks every stage above
against this protocol: block-size invariance, flush, reset, length and alignment.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["StreamingStage"]


@runtime_checkable
class StreamingStage(Protocol):
    """A stateful stream processor: ``feed`` blocks, ``flush`` the tail, ``reset`` to start over.

    ``isinstance(obj, StreamingStage)`` checks that the four members exist (not their
    signatures); ``tests/test_protocol.py`` checks what they do.

    Attributes
    ----------
    latency : int >= 0
        In samples, always: input sample ``t`` comes out at output sample ``t + latency``
        (output samples counted from the first one the stage ever returned since its last
        :meth:`reset`, across :meth:`feed` and :meth:`flush`). A stage with frames on one side
        states where a frame sits on the sample clock (:class:`StreamingSTFT`: frame ``t`` is
        centred on sample ``t * hop_length`` and returned once sample
        ``t * hop_length + latency - 1`` has arrived). A resampler's is on the output rate's
        clock (soxr's streams are delay-compensated: 0).
    """

    latency: int

    def feed(self, block: np.ndarray) -> np.ndarray:
        """Take the next block of input; return the output that is ready.

        Parameters
        ----------
        block : np.ndarray [shape=(channels, n)] (audio) or (channels, bins, k) (frames)
            Any ``n >= 0`` (or ``k >= 0``); the stage keeps what it cannot use yet. Stages with
            ``(n,)`` mono audio (the :class:`~rtstyle.stream.Streamer`) return the same layout.

        Returns
        -------
        out : np.ndarray [shape=(channels, m)] or (channels, bins, k')
            What no later input can change. The concatenation of every ``feed`` output and the
            :meth:`flush` tail is the same whatever the block sizes (to float rounding).
        """
        ...

    def flush(self) -> np.ndarray:
        """End the stream: return the tail, same layout as :meth:`feed`'s output.

        After ``flush`` the stage is reset (counters, and a report, the stage documents may be
        kept): the next :meth:`feed` starts a new stream.
        """
        ...

    def reset(self) -> None:
        """Forget the stream (buffers, history); keep the parameters the stage was built with."""
        ...
