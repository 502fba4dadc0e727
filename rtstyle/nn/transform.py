"""The causal, streamable transform net: log1p-magnitude frames in, styled ones out.

A small stack of causal 1-D convolutions over frames, with frequency bins as channels::

    h   = in_proj(x)                                   1x1 conv, bins -> hidden
    for each layer i (dilation d_i):
        u = conv_i(h)                                  causal conv, width k, dilation d_i
        u = norm(u)                                    optional, per frame, over channels
        u = u * (1 + gamma_i(e)) + beta_i(e)           FiLM from the style embedding e
        h = h + act(u)                                 residual
    y   = clamp(x + out_proj(h), min=0)                output='residual': hidden -> bins
    c   = out_proj(h)                                  output='gain': hidden -> bands,
    s   = static_gain(e)                               the style's own curve,
          + G(x, stats(e)) / 2                         stats=True: the statistics match,
    y   = log1p(energy_of_x(|X| * exp(B @ (bound(s) + bound(c)))))   plus a bounded dynamic one

With ``output='gain'`` (the bundled styles since 0.2) the net cannot write a spectrum of its
own: ``B`` is a few dozen smooth mel bands (:func:`rtstyle.dsp.gain.band_basis`), so the gain
reshapes the input's spectral envelope while its harmonics (pitch), onsets and phase stay, and
each frame keeps the input frame's energy (:func:`rtstyle.dsp.gain.match_frame_energy`). A
residual net learned to emit the style's average spectrum gated by the input's energy instead,
which a global Gram loss allows. With ``stats=True`` (the bundled styles since 0.3) the gain
also moves the input's running band statistics (mean and spread of the log band power over
the last ``stats_frames``) onto the style's, which are stored in the net
(:mod:`rtstyle.dsp.band_stats`): a static curve alone cannot fit inputs whose long-term spectra
differ (a voice, a flute), the running match does, and the learned curves refine it.

``out_proj`` starts at zero, so an untrained net is the identity and training starts from it.
The output is a log1p magnitude, so it must be >= 0 (``expm1`` of it is a magnitude >= 0): it is
*clamped* at 0 rather than passed through a softplus, because a softplus would not be the
identity at initialisation and would lift silent bins (``softplus(0) = log 2``). A clamped bin
has no gradient, which only happens where the net already asks for silence.

Streaming follows cached_conv (acids-ircam): every convolution keeps its last
``(k - 1) * d`` input frames in a cache that :meth:`TransformNet.reset` allocates (zeros, the
same zero padding :meth:`TransformNet.forward` uses), so frames fed one at a time, or in any
chunks, give the whole-file output. With ``lookahead = L`` the causal stack runs ``L`` frames
ahead of the output: output frame ``t`` is computed from input frames ``<= t + L`` and is
returned ``L`` frames late by :meth:`~TransformNet.feed` (:attr:`~TransformNet.latency`);
offline, the input is padded with ``L`` zero frames at the end, and :meth:`~TransformNet.flush`
feeds the same zeros.

Styles: one net may hold several (``n_styles``), each a learned embedding row; a style is
chosen per call by index, or given as an embedding vector, so styles morph by interpolating
embeddings (:meth:`TransformNet.embedding`).
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TransformConfig
from ..dsp import band_stats
from ..dsp.gain import band_basis, match_frame_energy
from ..errors import ParameterError

__all__ = ["TransformNet", "CachedConv1d"]


class CachedConv1d(nn.Conv1d):
    """A causal ``Conv1d`` (left zero padding ``(k - 1) * dilation``) with a streaming cache.

    :meth:`forward` is the offline (whole-sequence, channels-first) path; :meth:`step` the
    streaming one, which works frames-first, ``(batch, frames, channels)``, and computes the
    convolution as one matrix product over the gathered taps (torch's CPU ``conv1d`` is very
    slow for a dilated kernel over a few frames). Its cache of the last ``(k - 1) * dilation``
    input frames is allocated by :meth:`reset_cache`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 dilation: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.pad = (kernel_size - 1) * dilation
        self.cache: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Causal convolution of a whole sequence, ``(batch, in, T) -> (batch, out, T)``."""
        return F.conv1d(F.pad(x, (self.pad, 0)), self.weight, self.bias,
                        dilation=self.dilation)

    def reset_cache(self, batch: int) -> None:
        """Allocate the cache: ``(batch, (k - 1) * dilation, in)`` zeros (frames first)."""
        w = self.weight
        self.cache = torch.zeros(batch, self.pad, self.in_channels, device=w.device, dtype=w.dtype)
        # the weight as the matrix step() multiplies by: a view (it follows in-place updates)
        self._w2d = w.detach().reshape(self.out_channels, -1)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve ``k >= 1`` new frames using the cached past.

        ``x`` is frames-first ``(batch, k, in)``; returns ``(batch, k, out)``.
        """
        K = self.kernel_size[0]
        if K == 1:
            return F.linear(x, self.weight[:, :, 0], self.bias)
        full = torch.cat((self.cache, x), dim=1)                 # (batch, pad + k, in)
        # a plain tensor attribute: set in __dict__, skipping nn.Module.__setattr__'s checks
        # (this runs for every layer of every frame live)
        self.__dict__["cache"] = full[:, x.shape[1]:]
        taps = full.unfold(1, self.pad + 1, 1)[..., ::self.dilation[0]]   # (batch, k, in, K)
        taps = taps.reshape(x.shape[0], x.shape[1], self.in_channels * K)
        return F.linear(taps, self._w2d, self.bias)


_ACTIVATIONS = {
    "relu": F.relu,
    "leaky_relu": lambda u: F.leaky_relu(u, 0.1),
    "gelu": F.gelu,
    "silu": F.silu,
    "tanh": torch.tanh,
}


class TransformNet(nn.Module):
    """Causal (or bounded look-ahead) style transform of log1p-magnitude frames.

    Parameters
    ----------
    config : TransformConfig
        Sizes, dilations, styles, look-ahead, activation and normalisation.

    Attributes
    ----------
    config : TransformConfig
    latency : int
        Frames by which :meth:`feed` output lags its input (``config.lookahead``).
    receptive_field : int
        Most recent input frames that fully determine the streaming state (see :meth:`prime`).

    Notes
    -----
    Shapes: frames are ``(batch, bins, frames)`` float tensors of log1p magnitudes (>= 0).
    The streaming state (per-layer caches, the look-ahead delay line) is allocated by
    :meth:`reset` for a batch size, on the device and dtype of the parameters; call
    :meth:`reset` again after moving the net. :meth:`feed`, :meth:`flush`, :meth:`reset` and
    :meth:`prime` run under :func:`torch.inference_mode` (no gradients); train with
    :meth:`forward`.

    Examples
    --------
    >>> net = TransformNet(TransformConfig(bins=513, n_styles=2)).eval()
    >>> x = torch.rand(1, 513, 100)
    >>> y = net(x, 0)                                         # style 0, whole file
    >>> e = 0.3 * net.embedding(0) + 0.7 * net.embedding(1)   # a morph between the two
    >>> y_morph = net(x, e)
    >>> net.reset()
    >>> parts = [net.feed(x[..., t:t + 1], 0) for t in range(100)] + [net.flush()]
    >>> torch.allclose(torch.cat(parts, -1), y, atol=1e-5)
    True
    """

    def __init__(self, config: TransformConfig = TransformConfig()) -> None:
        super().__init__()
        if not isinstance(config, TransformConfig):
            raise ParameterError(f"config must be a TransformConfig, got {type(config).__name__}")
        self.config = config
        c = config
        # nn.Embedding's own init (normal_) on the 'meta' device, where models._expected_shapes
        # builds a net to check a card, imports torch._dynamo (~1.7 s of every command's start);
        # randn draws the same N(0, 1) values from the same generator without it
        self.style_embedding = nn.Embedding(c.n_styles, c.embed_dim,
                                            _weight=torch.randn(c.n_styles, c.embed_dim))
        self.in_proj = nn.Conv1d(c.bins, c.hidden, 1)
        self.convs = nn.ModuleList(CachedConv1d(c.hidden, c.hidden, c.kernel_size, d)
                                   for d in c.layer_dilations)
        if c.norm == "layer":
            self.norm_weight = nn.Parameter(torch.ones(c.layers, c.hidden, 1))
            self.norm_bias = nn.Parameter(torch.zeros(c.layers, c.hidden, 1))
        # FiLM: one linear map from the embedding to every layer's (gamma, beta).
        self.film = nn.Linear(c.embed_dim, 2 * c.layers * c.hidden)
        self.out_proj = nn.Conv1d(c.hidden, c.bands if c.output == "gain" else c.bins, 1)
        if c.output == "gain":
            # not a weight: rebuilt from the config, so not saved with the model
            basis = torch.from_numpy(band_basis(c.bins, c.bands, sr=c.sr))
            self.register_buffer("gain_basis", basis, persistent=False)
            # the style's own static curve (from its embedding: morphs interpolate it), zero at
            # init; the trunk adds a bounded curve that follows the input frame by frame
            self.static_gain = nn.Linear(c.embed_dim, c.bands)
            nn.init.zeros_(self.static_gain.weight)
            nn.init.zeros_(self.static_gain.bias)
            self._gain_bound = c.max_gain_db * math.log(10.0) / 20.0    # dB -> nepers
            self._dynamic_bound = c.dynamic_gain_db * math.log(10.0) / 20.0
        if c.stats:
            # the styles' own band statistics (saved with the model; set by training from the
            # style references, :meth:`set_style_stats`) and the bands as power weights
            self.register_buffer("style_stats_mean", torch.zeros(c.n_styles, c.bands))
            self.register_buffer("style_stats_spread", torch.ones(c.n_styles, c.bands))
            self.register_buffer("stats_weights", band_stats.band_power_basis(basis),
                                 persistent=False)
        if c.level:
            # each style's output level trim in dB (saved; :meth:`set_style_level`)
            self.register_buffer("style_level_db", torch.zeros(c.n_styles))
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)
        self._act = _ACTIVATIONS[c.activation]
        self.reset()

    # ------------------------------------------------------------------------------------------
    # properties

    @property
    def latency(self) -> int:
        """Frames by which streamed output lags its input: ``config.lookahead``."""
        return self.config.lookahead

    @property
    def receptive_field(self) -> int:
        """Most recent input frames that fully determine the streaming state.

        ``max(context, lookahead, stats_context)`` with ``context = sum((kernel_size - 1) *
        dilation)`` and ``stats_context = stats_frames - 1`` (0 without ``stats``): feeding a
        freshly reset net the last ``receptive_field`` input frames (:meth:`prime`) puts it in
        exactly the state it would have after the whole history. An output frame ``t`` depends
        on input frames ``t + lookahead - context`` .. ``t + lookahead``.
        """
        c = self.config
        return max(c.context, c.lookahead, c.stats_context)

    # ------------------------------------------------------------------------------------------
    # styles

    def embedding(self, index) -> torch.Tensor:
        """Style embedding(s) by index.

        Parameters
        ----------
        index : int or sequence of int or torch.LongTensor [shape=(batch,)]

        Returns
        -------
        e : torch.Tensor [shape=(embed_dim,) for an int, else (batch, embed_dim)]
            Interpolate them (``(1 - a) * e0 + a * e1``) and pass the result as ``style`` to
            morph between styles.
        """
        if isinstance(index, numbers.Integral) and not isinstance(index, bool):
            return self.style_embedding.weight[self._check_index(int(index))]
        idx = torch.as_tensor(index, device=self.style_embedding.weight.device)
        if idx.dtype.is_floating_point or idx.dtype == torch.bool or idx.ndim > 1:
            raise ParameterError(f"style index must be an int or a 1-D integer tensor, got "
                                 f"{idx.dtype} of shape {tuple(idx.shape)}")
        idx = idx.long()
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.config.n_styles):
            raise ParameterError(f"style index {idx.tolist()} out of range for "
                                 f"n_styles={self.config.n_styles}")
        return self.style_embedding(idx)

    def _check_index(self, i: int) -> int:
        if not 0 <= i < self.config.n_styles:
            raise ParameterError(f"style={i} out of range for n_styles={self.config.n_styles} "
                                 f"(0..{self.config.n_styles - 1})")
        return i

    def _style_vectors(self, style, batch: int) -> torch.Tensor:
        """Turn ``style`` into embeddings of shape (batch, embed_dim)."""
        c = self.config
        w = self.style_embedding.weight
        if style is None:
            style = 0
        if isinstance(style, numbers.Integral) and not isinstance(style, bool):
            return w[self._check_index(int(style))].expand(batch, c.embed_dim)
        if not isinstance(style, torch.Tensor):
            raise ParameterError(f"style must be an int, a LongTensor of indices or a float "
                                 f"embedding tensor, got {type(style).__name__}")
        if style.is_floating_point():
            e = style.to(device=w.device, dtype=w.dtype)
            if e.ndim == 1:
                e = e.unsqueeze(0)
            if e.ndim != 2 or e.shape[-1] != c.embed_dim or e.shape[0] not in (1, batch):
                raise ParameterError(f"style embedding must have shape ({batch}, {c.embed_dim}) "
                                     f"or ({c.embed_dim},), got {tuple(style.shape)}")
            return e.expand(batch, c.embed_dim)
        if style.ndim == 0:
            return w[self._check_index(int(style))].expand(batch, c.embed_dim)
        if style.ndim != 1 or style.shape[0] not in (1, batch):
            raise ParameterError(f"style indices must have shape ({batch},), got "
                                 f"{tuple(style.shape)}")
        return self.embedding(style).expand(batch, c.embed_dim)

    def reference_stats(self, S) -> tuple[torch.Tensor, torch.Tensor]:
        """A style reference's band statistics as this net takes its input's (its config's
        frame weights, window and features): :func:`rtstyle.dsp.band_stats.reference_stats`
        of magnitudes ``S`` (..., bins, frames), or a list of them, in float64. Raises
        ValueError for a silent reference."""
        c = self.config
        return band_stats.reference_stats(S, self.stats_weights.double(), weighting=c.stats_weight,
                                          stats_frames=c.stats_frames, shape=c.stats_shape)

    @torch.no_grad()
    def set_style_stats(self, index: int, mean: torch.Tensor, spread: torch.Tensor) -> None:
        """Store style ``index``'s band statistics (:func:`rtstyle.dsp.band_stats.reference_stats`
        of its reference), each of shape ``(bands,)``. Needs ``config.stats``."""
        if not self.config.stats:
            raise ParameterError("set_style_stats: this net was built without stats=True")
        i = self._check_index(int(index))
        self.style_stats_mean[i] = mean.to(self.style_stats_mean)
        self.style_stats_spread[i] = spread.to(self.style_stats_spread)

    @torch.no_grad()
    def set_style_level(self, index: int, level_db: float) -> None:
        """Store style ``index``'s output level trim in dB (a finite number). Needs
        ``config.level``."""
        if not self.config.level:
            raise ParameterError("set_style_level: this net was built without level=True")
        if isinstance(level_db, bool) or not isinstance(level_db, (int, float)) \
                or not math.isfinite(level_db):
            raise ParameterError(f"level_db={level_db!r} must be a finite number")
        self.style_level_db[self._check_index(int(index))] = float(level_db)

    def _style_rows(self, style, e: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """``table``'s rows (one per style, (n_styles, D)) for ``style`` (its embeddings ``e``,
        (batch, embed_dim)): (batch, D).

        A style index takes its own row. An embedding (a morph) takes the rows mixed with the
        weights that give the embedding from the style embeddings (least squares, weights summing
        to 1): an interpolation of two styles' embeddings interpolates their rows.
        """
        if isinstance(style, torch.Tensor) and style.is_floating_point():
            E = self.style_embedding.weight.detach()
            n = E.shape[0]
            A = torch.cat((E.T, E.new_ones(1, n)), dim=0).double()           # (embed + 1, n)
            b = torch.cat((e.detach().T, e.new_ones(1, e.shape[0])), dim=0).double()
            a = torch.linalg.lstsq(A.cpu(), b.cpu()).solution.to(table).T    # (batch, n)
            return a @ table
        idx = 0 if style is None else style
        idx = torch.as_tensor(idx, device=table.device).long().reshape(-1)
        return table[idx].expand(e.shape[0], -1)

    def _style_stats(self, style, e: torch.Tensor):
        """The band statistics of ``style`` (:meth:`_style_rows`): mean and spread, each
        (batch, bands, 1)."""
        m = self._style_rows(style, e, self.style_stats_mean)
        sp = self._style_rows(style, e, self.style_stats_spread)
        return m.unsqueeze(-1), sp.unsqueeze(-1)

    def _film(self, style, batch: int):
        """Per-layer FiLM scale and shift, each (layers, batch, hidden, 1); the style's static
        gain coefficients (batch, bands, 1) in nepers (``None`` for a residual net); and its
        band statistics (mean, spread), each (batch, bands, 1) (``None`` without ``stats``)."""
        c = self.config
        e = self._style_vectors(style, batch)
        gb = self.film(e).view(batch, c.layers, 2, c.hidden).permute(1, 2, 0, 3)
        static = stats = level = None
        if c.output == "gain":
            static = self.static_gain(e).unsqueeze(-1)
        if c.stats:
            stats = self._style_stats(style, e)
        if c.level:          # dB -> a magnitude factor, (batch, 1, 1)
            db = self._style_rows(style, e, self.style_level_db.unsqueeze(-1))
            level = torch.pow(10.0, db / 20.0).unsqueeze(-1)
        return 1.0 + gb[:, 0].unsqueeze(-1), gb[:, 1].unsqueeze(-1), (static, stats, level)

    # ------------------------------------------------------------------------------------------
    # computation

    def _check_frames(self, x, name: str = "x") -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            what = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ParameterError(f"{name} must be a floating-point torch.Tensor, got {what}")
        if x.ndim != 3 or x.shape[1] != self.config.bins:
            raise ParameterError(f"{name} must have shape (batch, {self.config.bins}, frames), "
                                 f"got {tuple(x.shape)}")

    def _trunk(self, x: torch.Tensor, scale, shift, conv) -> torch.Tensor:
        """``out_proj(h)`` for frames ``x``; ``conv(i, h)`` is the offline or streaming conv."""
        h = self.in_proj(x)
        for i in range(self.config.layers):
            u = conv(i, h)
            if self.config.norm == "layer":
                mean = u.mean(dim=1, keepdim=True)
                var = u.var(dim=1, keepdim=True, unbiased=False)
                u = (u - mean) * torch.rsqrt(var + 1e-5) * self.norm_weight[i] + self.norm_bias[i]
            h = h + self._act(u * scale[i] + shift[i])
        return self.out_proj(h)

    def _trunk_stream(self, x: torch.Tensor, scale, shift) -> torch.Tensor:
        """:meth:`_trunk` frames-first with the cached convolutions: (batch, k, bins) in and out."""
        h = F.linear(x, self.in_proj.weight[:, :, 0], self.in_proj.bias)
        for i in range(self.config.layers):
            u = self.convs[i].step(h)
            if self.config.norm == "layer":
                mean = u.mean(dim=-1, keepdim=True)
                var = u.var(dim=-1, keepdim=True, unbiased=False)
                u = ((u - mean) * torch.rsqrt(var + 1e-5) * self.norm_weight[i, :, 0]
                     + self.norm_bias[i, :, 0])
            h = h + self._act(u * scale[i] + shift[i])
        return F.linear(h, self.out_proj.weight[:, :, 0], self.out_proj.bias)

    def forward(self, x: torch.Tensor, style=None) -> torch.Tensor:
        """Transform a whole sequence of frames (training and offline use).

        Parameters
        ----------
        x : torch.Tensor [shape=(batch, bins, frames)]
            log1p magnitudes (>= 0).
        style : int, LongTensor [shape=(batch,)], Tensor [shape=(batch, embed_dim)], or None
            Style index (per batch item), or a style embedding (e.g. an interpolation of
            :meth:`embedding` rows; shape ``(embed_dim,)`` is shared by the batch). ``None``
            is style 0.

        Returns
        -------
        y : torch.Tensor [shape=(batch, bins, frames)]
            log1p magnitudes, >= 0. ``y[..., t]`` depends on ``x[..., :t + lookahead + 1]``
            only; frames beyond the end count as zeros.
        """
        self._check_frames(x)
        L = self.config.lookahead
        scale, shift, style_gain = self._film(style, x.shape[0])
        xin = F.pad(x, (0, L)) if L else x
        g = self._trunk(xin, scale, shift, lambda i, h: self.convs[i](h))
        if L:
            g = g[..., L:]
        return self._combine(x, g, style_gain, stream=False)

    def _combine(self, x: torch.Tensor, g: torch.Tensor, style_gain, *,
                 stream: bool) -> torch.Tensor:
        """The output frames from the input frames ``x`` and the trunk's output ``g``.

        ``residual``: ``max(x + g, 0)``. ``gain``: the style's static coefficients plus, with
        ``stats``, half the statistics-matching power gain of :mod:`rtstyle.dsp.band_stats`
        (a magnitude gain), bounded by ``tanh`` to ``±max_gain_db``; ``g``'s ``bands``
        coefficients per frame, bounded to ``±dynamic_gain_db``, added; the log gain over the
        bins is the basis times them; the input's magnitudes times that gain are scaled back to
        each input frame's energy. Without ``stats``, the identity while ``out_proj`` and
        ``static_gain`` are zero. (``level`` is not applied here: the style bank applies
        :meth:`output_level` after its own envelope stage.) Shapes ``(batch, ., frames)``;
        ``style_gain`` is :meth:`_film`'s ``(static, stats, level)``. ``stream``: the statistics
        window continues from the streaming cache (else it starts from silence, as a reset
        stream does).
        """
        if self.config.output != "gain":
            return torch.clamp(x + g, min=0.0)
        static, stats, _ = style_gain
        S = torch.expm1(x)
        if stats is not None:
            static = static + 0.5 * self._stats_gain(S, *stats, stream=stream)
        b, bd = self._gain_bound, self._dynamic_bound
        coeff = b * torch.tanh(static / b) + bd * torch.tanh(g / bd)
        log_gain = torch.matmul(self.gain_basis, coeff)                   # (batch, bins, T)
        return torch.log1p(match_frame_energy(S, S * torch.exp(log_gain)))

    def _stats_terms(self, S: torch.Tensor, L: torch.Tensor, *, stream: bool) -> torch.Tensor:
        """:func:`band_stats.stats_terms` with the config's frame weights; ``stream``: the
        level gate continues from (and updates) its streaming state."""
        c = self.config
        w, past = band_stats.frame_weights(S, weighting=c.stats_weight, window=c.stats_frames,
                                           past=self._stats_levels if stream else None)
        if stream:
            self._stats_levels = past
        return band_stats.stats_terms(S, L, w)

    def _stats_gain(self, S: torch.Tensor, style_mean, style_spread, *,
                    stream: bool) -> torch.Tensor:
        """The statistics-matching power gain (batch, bands, T) of magnitudes ``S``."""
        c = self.config
        L = band_stats.band_features(S, self.stats_weights, shape=c.stats_shape)
        terms = self._stats_terms(S, L, stream=stream)
        if stream:
            # running sums: the window's sum is the cache's (kept) plus the new frame; then the
            # oldest cached frame leaves. O(bands) per frame where the window's conv1d cost
            # O(bands * stats_frames) (0.6 ms a frame at 48 kHz); float64 rounding of the
            # running sum stays ~1e-16 of the largest term, far below the output's precision.
            k = terms.shape[-1]
            full = torch.cat((self._stats_cache, terms), dim=-1)
            leaving = full[..., :k]
            sums = self._stats_sum + terms.cumsum(-1) - F.pad(leaving.cumsum(-1)[..., :-1],
                                                              (1, 0))
            self._stats_sum = sums[..., -1:] - leaving[..., -1:]
            self._stats_cache = full[..., k:]
        else:
            sums = band_stats.window_sums(F.pad(terms, (c.stats_frames - 1, 0)),
                                          c.stats_frames)
        mean, spread, heard = band_stats.window_stats(sums, c.bands)
        return band_stats.match_gain(L, mean, spread, heard, style_mean, style_spread,
                                     float(c.stats_spread))

    # ------------------------------------------------------------------------------------------
    # streaming

    @torch.inference_mode()
    def reset(self, batch: int = 1) -> None:
        """Clear the streaming state (keep the parameters) and allocate it for ``batch`` streams.

        Every cache is allocated here, on the parameters' device and dtype (call again after
        ``.to(...)``), filled with zeros: the zero padding of :meth:`forward`.
        """
        if isinstance(batch, bool) or not isinstance(batch, numbers.Integral) or batch <= 0:
            raise ParameterError(f"batch={batch!r} must be a positive integer")
        batch = int(batch)
        self._batch = batch
        for conv in self.convs:
            conv.reset_cache(batch)
        w = self.in_proj.weight
        L = self.config.lookahead
        self._delay = torch.zeros(batch, self.config.bins, L, device=w.device, dtype=w.dtype)
        c = self.config
        if c.stats:   # the last stats_frames - 1 frames' weighted moments (zeros: silence)
            self._stats_cache = torch.zeros(batch, 1 + 2 * c.bands, c.stats_frames - 1,
                                            device=w.device, dtype=w.dtype)
            self._stats_sum = torch.zeros(batch, 1 + 2 * c.bands, 1, device=w.device,
                                          dtype=w.dtype)        # the cache's sum
            # the level gate's memory: the last stats_frames - 1 frames' levels (float64;
            # silence before the stream began)
            self._stats_levels = band_stats.gated_past(batch, c.stats_frames, device=w.device)
        self._skip = L      # outputs of the causal stack that belong before frame 0
        self._fed = 0       # frames fed since reset
        self._last_style = None
        self._film_key = self._film_value = None

    def _film_stream(self, style):
        """:meth:`_film` frames-first, recomputed only when ``style`` changes (an equal index
        or an equal embedding reuses it): a steady style costs no FiLM per frame."""
        last = self._film_key
        if isinstance(style, torch.Tensor):
            hit = (isinstance(last, torch.Tensor) and last.shape == style.shape
                   and last.dtype == style.dtype and last.device == style.device
                   and torch.equal(last, style))
        else:
            hit = not isinstance(last, torch.Tensor) and last is not None and last == (style,)
        if not hit:
            scale, shift, style_gain = self._film(style, self._batch)
            self._film_value = (scale.transpose(-1, -2), shift.transpose(-1, -2), style_gain)
            self._film_key = style.clone() if isinstance(style, torch.Tensor) else (style,)
        return self._film_value

    def output_level(self, style=None):
        """The streaming style's output level factor (a magnitude gain, (batch, 1, 1)), or
        ``None`` for a net without ``config.level``. The engine applies it last, after the
        frame energy is settled (:class:`~rtstyle.stream.styles.StyleBank`), so no envelope
        stage takes it back; it is cached with the stream's FiLM (:meth:`_film_stream`)."""
        if not self.config.level:
            return None
        return self._film_stream(style)[2][2]

    @torch.inference_mode()
    def feed(self, x: torch.Tensor, style=None) -> torch.Tensor:
        """Take ``k >= 0`` new frames; return the output frames that are ready.

        Parameters
        ----------
        x : torch.Tensor [shape=(batch, bins, k)]
            The next input frames (log1p magnitudes); ``batch`` as given to :meth:`reset`.
        style : as for :meth:`forward`
            The style for these frames (it may change between calls).

        Returns
        -------
        y : torch.Tensor [shape=(batch, bins, k')]
            Output frames in order: ``k' = k`` once ``lookahead`` frames have been fed (the
            first ``lookahead`` frames come out later, the last ones from :meth:`flush`). All
            outputs of a stream, flush included, equal :meth:`forward` of the whole input.
        """
        self._check_frames(x)
        if x.shape[0] != self._batch:
            raise ParameterError(f"x has batch {x.shape[0]}, but the stream was reset for "
                                 f"batch={self._batch} (call reset(batch={x.shape[0]}))")
        w = self.in_proj.weight
        if x.device != w.device:
            raise ParameterError(f"x is on {x.device}, the net on {w.device}")
        x = x.to(w.dtype)
        self._last_style = style
        return self._step(x, style)

    def _step(self, x: torch.Tensor, style) -> torch.Tensor:
        k = x.shape[-1]
        if k == 0:
            return x.new_zeros(self._batch, self.config.bins, 0)
        self._fed += k
        scale, shift, style_gain = self._film_stream(style)
        g = self._trunk_stream(x.transpose(1, 2), scale, shift).transpose(1, 2)
        L = self.config.lookahead
        if L:
            full = torch.cat((self._delay, x), dim=-1)     # input frames aligned with g
            self._delay = full[..., k:]
            x = full[..., :k]
        y = self._combine(x, g, style_gain, stream=True)
        if self._skip:
            drop = min(self._skip, k)
            self._skip -= drop
            y = y[..., drop:]
        return y

    @torch.inference_mode()
    def flush(self, style=None) -> torch.Tensor:
        """End the stream: return the last ``lookahead`` output frames, then reset.

        Parameters
        ----------
        style : as for :meth:`forward`, optional
            Style for the tail; ``None`` keeps the last style given to :meth:`feed`.

        Returns
        -------
        tail : torch.Tensor [shape=(batch, bins, min(lookahead, frames fed))]
            Computed with zero frames after the end, as :meth:`forward` pads.
        """
        style = self._last_style if style is None else style
        L = self.config.lookahead
        owed = min(L, self._fed)
        w = self.in_proj.weight
        if owed == 0:
            out = torch.zeros(self._batch, self.config.bins, 0, device=w.device, dtype=w.dtype)
        else:
            zeros = torch.zeros(self._batch, self.config.bins, L, device=w.device, dtype=w.dtype)
            out = self._step(zeros, style)[..., :owed]
        self.reset(self._batch)
        return out

    @torch.inference_mode()
    def prime(self, history: torch.Tensor, style=None) -> None:
        """Reset, then run the last :attr:`receptive_field` frames of ``history`` (output dropped).

        Afterwards :meth:`feed` continues exactly as if the net had run over the whole history
        (up to the zero padding before a history shorter than :attr:`receptive_field`).

        Parameters
        ----------
        history : torch.Tensor [shape=(batch, bins, n)]
            Recent input frames, oldest first, ending with the last frame before the next feed.
        style : as for :meth:`forward`
        """
        self._check_frames(history, "history")
        self.reset(history.shape[0])
        recent = history[..., max(0, history.shape[-1] - self.receptive_field):]
        c = self.config
        keep = max(c.context, c.lookahead, 1)
        if c.stats and c.lookahead == 0 and recent.shape[-1] > keep:
            # the statistics window reaches further back than the convolutions: its older
            # frames only enter the statistics cache (their net output would be dropped), so a
            # 2-s window costs a style switch the trunk over `context` frames, not 2 s of them
            w = self.in_proj.weight
            old = recent[..., :-keep].to(device=w.device, dtype=w.dtype)
            recent = recent[..., -keep:]
            S = torch.expm1(old)
            L = band_stats.band_features(S, self.stats_weights, shape=c.stats_shape)
            terms = self._stats_terms(S, L, stream=True)
            full = torch.cat((self._stats_cache, terms), dim=-1)
            self._stats_cache = full[..., terms.shape[-1]:]
            self._stats_sum = self._stats_cache.sum(dim=-1, keepdim=True)
            self._fed += old.shape[-1]
        self.feed(recent, style)
        self._skip = 0
