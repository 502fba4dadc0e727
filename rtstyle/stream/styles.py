"""The style list of a stream: its nets, and the target log-magnitude of every frame.

A :class:`StyleBank` holds the entries of a style list (``identity`` or ``MODEL[:STYLE]``,
DESIGN.md "Styles"), every net loaded and warmed up before the first frame. Per frame it turns
the input's log1p magnitudes ``x`` into the target log1p magnitudes

``target = x + strength · (y − x)``, where ``y`` is the heard style:

- the active entry's output; with ``morph`` > 0, blended toward the next entry of the list (for
  two styles of one conditioned net, by interpolating their embeddings instead);
- for ``crossfade`` after a switch, a linear crossfade from the previous entry's output.

Only the entries being heard run. An entry that was idle is primed from a shared ring of the
last input frames (its receptive field) the moment it is needed, so its first frame is already
what it would have been had it run all along (DESIGN.md, Switching and morphing).
``strength`` and ``morph`` glide over ~20 ms (whole hops) like every continuous control.
"""

from __future__ import annotations

import copy
import math
import numbers

import numpy as np

from ..constants import ENVELOPES
from ..errors import ParameterError
from .mixer import GLIDE_MS

__all__ = ["StyleBank", "IDENTITY", "STYLE_PARAMS"]

#: The built-in pass-through style (tests, bypass, a list entry like any other).
IDENTITY = "identity"
#: Continuous style parameters with their defaults.
STYLE_PARAMS = {"strength": 1.0, "morph": 0.0}


class _Entry:
    """One style of the list: a net with its own streaming state (or the identity)."""

    def __init__(self, label, model, index, net, embedding):
        self.label, self.model, self.index = label, model, index
        self.net, self.embedding = net, embedding
        self.running = False


def _unit(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) \
            or not 0.0 <= float(value) <= 1.0:
        raise ParameterError(f"{name}={value!r} must be a number in 0..1")
    return float(value)


class StyleBank:
    """Style list → per-frame target log-magnitudes (see the module docstring).

    Parameters
    ----------
    styles : list of (str or rtstyle.models.Model or (Model, int))
        The style list; ``'identity'`` is the pass-through. Strings are resolved by
        :func:`rtstyle.models.resolve_style`.
    channels : int
        Streams run side by side (the nets' batch).
    sr, n_fft, hop_length : int
        The stream's STFT; every model must have been trained on it.
    device : str
        Where the nets run.
    strength, morph : float in 0..1
        Initial values.
    crossfade_ms : float >= 0
        Length of the crossfade of a style switch.
    models_dir : path, optional
        User model folder for resolving names.
    """

    def __init__(self, styles, *, channels: int, sr: int, n_fft: int, hop_length: int,
                 device: str = "cpu", strength: float = 1.0, morph: float = 0.0,
                 crossfade_ms: float = 50.0, envelope: str = "follow", models_dir=None):
        import torch

        from .._validate import one_of
        from ..dsp.gain import match_frame_energy
        from ..models import Model, resolve_style

        self._torch = torch
        self._match_energy = match_frame_energy
        if isinstance(styles, (str, Model, tuple)):
            styles = [styles]
        if not styles:
            raise ParameterError("the style list is empty")
        self.channels, self.sr, self.hop_length, self.device = channels, sr, hop_length, device
        self.bins = 1 + n_fft // 2
        self.envelope = one_of(envelope, ENVELOPES, "envelope")
        self.entries: list[_Entry] = []
        for spec in styles:
            if isinstance(spec, str) and spec == IDENTITY:
                self.entries.append(_Entry(IDENTITY, None, 0, None, None))
                continue
            if isinstance(spec, tuple):
                model, index = spec
            elif isinstance(spec, Model):
                model, index = spec, 0
            elif isinstance(spec, str):
                model, index = resolve_style(spec, device=device, models_dir=models_dir)
            else:
                raise ParameterError(f"style {spec!r} must be a name, a Model or 'identity'")
            if (model.sr, model.n_fft, model.hop_length) != (sr, n_fft, hop_length):
                raise ParameterError(
                    f"style {spec!r} was trained at sr={model.sr}, n_fft={model.n_fft}, "
                    f"hop_length={model.hop_length}; the stream runs at sr={sr}, n_fft={n_fft}, "
                    f"hop_length={hop_length} (use the model's settings; render resamples)")
            if model.net.latency:
                raise ParameterError(
                    f"style {spec!r}: nets with look-ahead ({model.net.latency} frames) are not "
                    "supported by the Streamer yet; train a causal net (lookahead 0)")
            # float64: a block of frames in one call then gives what frame-by-frame calls give
            # to ~1e-12 (in float32 the batched matmul's rounding, carried through the phase
            # iterations, reached 1.6e-5 between render block sizes); 0.7 ms per frame.
            net = copy.deepcopy(model.net).to(device=device, dtype=torch.float64).eval()
            net.reset(channels)
            with torch.inference_mode():
                emb = net.embedding(index).detach().clone()
            label = f"{model.name}:{model.styles[index]}" if len(model.styles) > 1 else model.name
            self.entries.append(_Entry(label, model, index, net, emb))
        self._ring_len = max([e.net.receptive_field for e in self.entries if e.net] + [1])
        self._crossfade_frames = max(1, round(crossfade_ms * sr / 1000 / hop_length)) \
            if crossfade_ms > 0 else 0
        self._glide_frames = max(1, round(GLIDE_MS / 1000 * sr / hop_length))
        self._initial = {"strength": _unit("strength", strength), "morph": _unit("morph", morph)}
        self._warm_up()
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the stream (nets' state, the ring, glides, crossfade); the initial style
        (the first entry), ``strength`` and ``morph`` again."""
        self._ring = None                 # (channels, bins, ring_len) recent input frames,
        self._ring_pos = 0                # a circular buffer: the next write goes to _ring_pos
        self._ring_fill = 0
        self.active = 0
        self._previous = None             # entry fading out
        self._fade = 0                    # frames of crossfade done
        self._value = dict(self._initial)
        self._target = dict(self._initial)
        for e in self.entries:
            e.running = False
            if e.net is not None:
                e.net.reset(self.channels)

    def _warm_up(self):
        """Run every net once (allocations, kernels) before audio starts."""
        torch = self._torch
        for e in self.entries:
            if e.net is not None:
                bins = e.net.config.bins
                with torch.inference_mode():
                    e.net.reset(self.channels)
                    e.net.feed(torch.zeros(self.channels, bins, 2, device=self.device, dtype=torch.float64), e.embedding)
                    e.net.reset(self.channels)

    @property
    def labels(self) -> list[str]:
        return [e.label for e in self.entries]

    # ------------------------------------------------------------------ control
    def set(self, name: str, value) -> None:
        """``strength`` / ``morph`` (0..1, glide) or ``style`` (list index: crossfade)."""
        if name == "style":
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ParameterError(f"style={value!r} must be an index into the style list")
            if not 0 <= value < len(self.entries):
                raise ParameterError(f"style={value} is beyond the style list "
                                     f"({len(self.entries)} entries: {', '.join(self.labels)})")
            if value != self.active:
                self._previous = self.active if self._crossfade_frames else None
                self._fade = 0
                self.active = int(value)
            return
        if name not in STYLE_PARAMS:
            raise ParameterError(f"unknown style parameter {name!r}; expected strength, morph "
                                 "or style")
        self._target[name] = _unit(name, value)

    # ------------------------------------------------------------------ frames
    #: The streaming protocol's latency (:class:`rtstyle.stream.protocol.StreamingStage`): 0,
    #: the nets are causal (look-ahead nets are refused), so frame ``t`` out needs frame ``t`` in.
    latency = 0

    def feed(self, X: np.ndarray) -> np.ndarray:
        """Several frames ``X`` (channels, bins, k) of log1p magnitudes → targets, same shape.

        While nothing glides or crossfades, the heard nets take the whole block in one call
        (render's speed); otherwise frame by frame. Equal either way to float64 rounding.
        """
        k = X.shape[-1]
        steady = (self._previous is None and all(self._value[n] == self._target[n]
                                                  for n in STYLE_PARAMS))
        if k <= 1 or not steady:
            out = np.empty_like(X, dtype=np.float64)
            for t in range(k):
                out[..., t] = self.frame(X[..., t])
            return out
        return self._step(X)

    def flush(self) -> np.ndarray:
        """End the stream: nothing is held back (no latency), so no frames; then reset.

        Returns
        -------
        X : np.ndarray [shape=(channels, 1 + n_fft // 2, 0), dtype=float64]
        """
        self.reset()
        return np.zeros((self.channels, self.bins, 0), np.float64)

    def frame(self, x: np.ndarray) -> np.ndarray:
        """One frame: ``x`` (channels, bins) log1p magnitudes → target (channels, bins)."""
        for k in STYLE_PARAMS:
            self._glide(k)
        return self._step(x[..., None])[..., 0]

    def _step(self, X: np.ndarray) -> np.ndarray:
        """Frames (channels, bins, k) through the heard nets, blended as the controls say.

        A crossfade advances by one frame per call (more than one frame per call only happens
        when nothing crossfades or glides; see :meth:`frames`).
        """
        xt = self._torch.from_numpy(np.ascontiguousarray(X, dtype=np.float64)).to(self.device)
        m = self._value["morph"]
        nxt = (self.active + 1) % len(self.entries)
        a, b = self.entries[self.active], self.entries[nxt]
        same_net = m > 0 and a.model is not None and a.model is b.model
        styles = {self.active: (1 - m) * a.embedding + m * b.embedding if same_net
                  else a.embedding}
        if m > 0 and not same_net:
            styles[nxt] = b.embedding
        if self._previous is not None:
            styles.setdefault(self._previous, self.entries[self._previous].embedding)
        outs = {i: self._run(self.entries[i], xt, style) for i, style in styles.items()}
        for i, e in enumerate(self.entries):
            if i not in styles:
                e.running = False
        levels = {i: self._level(self.entries[i], style) for i, style in styles.items()}
        y, level = outs[self.active], levels[self.active]
        if m > 0 and not same_net:
            y = (1 - m) * y + m * outs[nxt]
            level = (1 - m) * level + m * levels[nxt]
        if self._previous is not None:
            self._fade += 1
            c = self._fade / (self._crossfade_frames + 1)
            y = (1 - c) * outs[self._previous] + c * y
            level = (1 - c) * levels[self._previous] + c * level
            if self._fade >= self._crossfade_frames:
                self._previous = None
        self._push(xt)
        s = self._value["strength"]
        target = xt + s * (y - xt) if s != 1.0 else y
        level = 1.0 + s * (level - 1.0)
        return self._follow(xt, target.clamp_min(0), level).cpu().numpy()

    @staticmethod
    def _level(e, style):
        """Entry ``e``'s output level factor for ``style`` (1.0: none; the net's
        :meth:`~rtstyle.nn.transform.TransformNet.output_level`, after its feed)."""
        if e.net is None:
            return 1.0
        level = e.net.output_level(style)
        return 1.0 if level is None else level

    def _follow(self, x, target, level=1.0):
        """``envelope='follow'``: scale each target frame to the input frame's energy; then the
        output level factor (the styles' trims, :meth:`_level`), in the same magnitude pass.

        ``x``, ``target``: log1p magnitudes (channels, bins, frames); frame energy is the sum
        of squared linear magnitudes over the bins. ``level``: 1.0 or a (channels, 1, 1)
        magnitude factor.
        """
        follow = self.envelope == "follow"
        plain = isinstance(level, float) and level == 1.0
        if not follow and plain:
            return target
        torch = self._torch
        S = torch.expm1(target)
        if follow:
            S = self._match_energy(torch.expm1(x), S)
        return torch.log1p(S if plain else S * level)

    def _run(self, e, xt, style):
        """Frames ``xt`` (channels, bins, k) through entry ``e`` (primed first if it was idle)."""
        if e.net is None:
            return xt
        if not e.running:                 # idle until now: prime from the shared ring
            if self._ring_fill:
                e.net.prime(self._history(), style)
            else:
                e.net.reset(self.channels)
            e.running = True
        return e.net.feed(xt, style)

    def _push(self, xt):
        """Write frames (channels, bins, k) into the ring of recent input frames, in place."""
        torch, L = self._torch, self._ring_len
        if self._ring is None:
            self._ring = torch.zeros(self.channels, xt.shape[1], L, device=xt.device,
                                     dtype=xt.dtype)
        k = xt.shape[-1]
        for t in range(max(0, k - L), k):
            self._ring[..., self._ring_pos] = xt[..., t]
            self._ring_pos = (self._ring_pos + 1) % L
        self._ring_fill = min(self._ring_fill + k, L)

    def _history(self):
        """The ring's frames, oldest first (channels, bins, fill); only when priming."""
        L = self._ring_len
        idx = (self._ring_pos - self._ring_fill + np.arange(self._ring_fill)) % L
        return self._ring[..., self._torch.as_tensor(idx, device=self._ring.device)]

    def _glide(self, k):
        v, t = self._value[k], self._target[k]
        if v != t:
            step = 1.0 / self._glide_frames
            self._value[k] = min(t, v + step) if t > v else max(t, v - step)
