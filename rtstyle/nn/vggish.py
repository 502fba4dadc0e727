"""Optional VGGish perceptual content loss (the 2019 IIT Bombay report's perceptual variant).

VGGish (Hershey et al. 2017, Google's AudioSet model) maps 0.96-s log-mel patches (96 frames of
10 ms, 64 mel bands, 125–7500 Hz) to 128-d embeddings. Here it is the architecture of the public
PyTorch port (harritaylor/torchvggish, ``torchvggish/vggish.py``) with the same state-dict keys,
so the port's released weights, converted once to safetensors with ``tools/convert_vggish.py``,
give the same raw embeddings (before the port's PCA/quantisation postprocessor, which is not
used). Nothing is downloaded: the user supplies the weights; the tests use random ones.

Unlike the report's TensorFlow code, where the VGGish loss was a constant computed with
``sess.run`` on numpy arrays, the front end here (:func:`vggish_examples`) is torch all the way
from rtstyle's own linear STFT magnitude, so the loss has a gradient with respect to it.

Functions and classes
---------------------
VGGish                 the network, ``(n, 1, 96, 64) -> (n, 128)``
load_vggish            weights from a ``.safetensors`` file (never pickle)
check_vggish_tensors   the key/shape check shared with ``tools/convert_vggish.py``
vggish_examples        differentiable |STFT| -> VGGish log-mel patches
PerceptualContentLoss  MSE between VGGish embeddings of S and of a fixed content
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from .._validate import positive_int
from ..errors import ModelError, ParameterError
from ._weights import path_name, read_safetensors

__all__ = [
    "VGGish",
    "load_vggish",
    "check_vggish_tensors",
    "vggish_examples",
    "PerceptualContentLoss",
    "PATCH_FRAMES",
    "N_MELS",
    "EMBEDDING_SIZE",
]

# VGGish's own front-end constants (vggish_params.py of the AudioSet release).
PATCH_FRAMES = 96          # frames per example (0.96 s at 10 ms)
N_MELS = 64                # mel bands
EMBEDDING_SIZE = 128       # raw embedding size
FRAME_RATE = 100.0         # frames per second (10-ms hop)
MEL_FMIN = 125.0           # lower edge of the lowest band, Hz
MEL_FMAX = 7500.0          # upper edge of the highest band, Hz
LOG_OFFSET = 0.01          # log(mel + 0.01)
_VGGISH_WINDOW_SUM = 200.0  # sum of VGGish's periodic Hann of 400 samples (25 ms at 16 kHz)
_MIN_SR = 8000              # below this the 125 Hz .. sr/2 band is too narrow to mean much

# Conv widths; "M" is a 2x2 max-pool. Same list as the port's make_layers().
_FEATURE_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")


class VGGish(torch.nn.Module):
    """The VGGish network, key for key the harritaylor/torchvggish port (without ``pproc``).

    ``features`` is ``Sequential(conv3x3 64, ReLU, pool, conv 128, ReLU, pool, conv 256, ReLU,
    conv 256, ReLU, pool, conv 512, ReLU, conv 512, ReLU, pool)`` (convs at indices 0, 3, 6, 8,
    11, 13) and ``embeddings`` is ``Sequential(Linear(12288, 4096), ReLU, Linear(4096, 4096),
    ReLU, Linear(4096, 128), ReLU)`` (linears at 0, 2, 4), so the state-dict keys are
    ``features.0.weight`` … ``features.13.bias`` and ``embeddings.0.weight`` …
    ``embeddings.4.bias``. The weights start at PyTorch's default initialisation; use
    :func:`load_vggish` for trained ones.

    Notes
    -----
    Before flattening, the ``(n, 512, 6, 4)`` feature map is put in ``(n, 6, 4, 512)`` order
    (height, width, channels), as TensorFlow flattened it and as the port does, so the first
    linear layer's converted weights line up.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        in_channels = 1
        for v in _FEATURE_CFG:
            if v == "M":
                layers.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [torch.nn.Conv2d(in_channels, v, kernel_size=3, padding=1),
                           torch.nn.ReLU()]
                in_channels = v
        self.features = torch.nn.Sequential(*layers)
        self.embeddings = torch.nn.Sequential(
            torch.nn.Linear(512 * 4 * 6, 4096), torch.nn.ReLU(),
            torch.nn.Linear(4096, 4096), torch.nn.ReLU(),
            torch.nn.Linear(4096, EMBEDDING_SIZE), torch.nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed log-mel patches.

        Parameters
        ----------
        x : torch.Tensor [shape=(n, 1, 96, 64)]
            Log-mel patches (frames × mel bands), as :func:`vggish_examples` makes them.

        Returns
        -------
        embeddings : torch.Tensor [shape=(n, 128)]
            Raw (non-PCA, non-quantised) VGGish embeddings, >= 0 (final ReLU).
        """
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, PATCH_FRAMES, N_MELS):
            raise ParameterError(
                f"VGGish input must have shape (n, 1, {PATCH_FRAMES}, {N_MELS}), "
                f"got {tuple(x.shape)}"
            )
        x = self.features(x)                      # (n, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).contiguous()    # (n, 6, 4, 512): TF's (H, W, C) flatten order
        return self.embeddings(x.flatten(1))


@functools.lru_cache(maxsize=1)
def _expected_shapes() -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):  # shapes only, no 290 MB of random numbers
        model = VGGish()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _shape_str(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_vggish_tensors(tensors: Mapping[str, torch.Tensor], *, name: str) -> None:
    """Check that ``tensors`` are exactly VGGish's state dict: same keys, same shapes, floats.

    Parameters
    ----------
    tensors : Mapping[str, torch.Tensor]
        A state dict (without the port's ``pproc.*`` entries).
    name : str
        The file the tensors came from, for the error message.

    Raises
    ------
    ModelError
        One line naming ``name`` and the first problem found (missing key, unexpected key,
        wrong shape, non-floating dtype).
    """
    expected = _expected_shapes()
    missing = [k for k in expected if k not in tensors]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ModelError(f"{name}: missing tensor '{missing[0]}'{more}; not a VGGish state dict")
    unexpected = sorted(k for k in tensors if k not in expected)
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise ModelError(f"{name}: unexpected tensor '{unexpected[0]}'{more}; "
                         "not a VGGish state dict")
    for key, shape in expected.items():
        t = tensors[key]
        if not isinstance(t, torch.Tensor):
            raise ModelError(f"{name}: entry '{key}' is a {type(t).__name__}, not a tensor")
        if tuple(t.shape) != shape:
            raise ModelError(f"{name}: tensor '{key}' has shape {_shape_str(t.shape)}, "
                             f"expected {_shape_str(shape)}")
        if not t.is_floating_point():
            raise ModelError(f"{name}: tensor '{key}' has dtype {t.dtype}, expected floating point")


def load_vggish(path, *, device="cpu") -> VGGish:
    """Load VGGish weights from a ``.safetensors`` file (never from a pickle).

    Parameters
    ----------
    path : str or os.PathLike
        A safetensors file holding exactly VGGish's state dict (``features.*``,
        ``embeddings.*``), as ``tools/convert_vggish.py`` writes it from the public PyTorch
        port's ``vggish-10086976.pth``.
    device : str or torch.device
        Where the model lives.

    Returns
    -------
    model : VGGish
        In eval mode, every parameter with ``requires_grad=False`` (gradients still flow to the
        input).

    Raises
    ------
    ModelError
        A pickle-type file (``.pt``, ``.pth``, ``.pkl``, ``.ckpt``, … or a file whose bytes are a
        pickle or torch zip; convert it with ``tools/convert_vggish.py``), a missing or
        unreadable file, a file that is not safetensors (garbage, truncated), or tensors whose
        keys or shapes are not VGGish's. Each message is one line naming the file.

    Examples
    --------
    >>> model = load_vggish("vggish.safetensors")           # doctest: +SKIP
    >>> model(torch.zeros(1, 1, 96, 64)).shape               # doctest: +SKIP
    torch.Size([1, 128])
    """
    hint = "convert it with `python tools/convert_vggish.py FILE -o vggish.safetensors`"
    tensors = read_safetensors(path, what="VGGish weights", hint=hint)
    name = path_name(path)
    check_vggish_tensors(tensors, name=name)
    model = VGGish()
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()}, strict=True)
    model.to(device)
    model.eval()
    model.requires_grad_(False)
    return model


# ----------------------------------------------------------------------------------------------
# Front end: linear |STFT| -> VGGish log-mel patches (differentiable)


def _hz_to_mel(f):
    # HTK mel, as VGGish's mel_features.hertz_to_mel.
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


@functools.lru_cache(maxsize=16)
def _mel_matrix(sr: int, n_fft: int) -> np.ndarray:
    """VGGish's mel weights for an ``n_fft`` spectrum at ``sr``: shape (64, 1 + n_fft // 2).

    The construction of ``mel_features.spectrogram_to_mel_matrix``: 64 triangles that are
    linear in HTK mel (not in Hz), band edges evenly spaced in mel over 125–7500 Hz, peak
    weight 1 (no area normalisation), DC bin zeroed. Only the bin frequencies are rtstyle's
    (``k * sr / n_fft``) instead of VGGish's 512-point FFT at 16 kHz.

    The band layout does not depend on ``sr``: below 15 kHz the bands above ``sr / 2`` have no
    bins and stay at the log floor, which is what VGGish itself sees for such audio resampled
    to 16 kHz. (Squeezing the 64 bands into 125 Hz .. sr/2 would move every band away from the
    frequencies VGGish was trained on.)
    """
    n_bins = 1 + n_fft // 2
    bins_mel = _hz_to_mel(np.arange(n_bins) * sr / n_fft)
    edges = np.linspace(_hz_to_mel(MEL_FMIN), _hz_to_mel(MEL_FMAX), N_MELS + 2)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bins_mel[None, :] - lower) / (centre - lower)
    down = (upper - bins_mel[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(up, down))
    weights[:, 0] = 0.0
    weights.setflags(write=False)
    return weights


def _check_front_end(sr, n_fft, hop_length, win_length) -> tuple[int, int, int, int]:
    sr = positive_int(sr, "sr")
    if sr < _MIN_SR:
        raise ParameterError(f"sr={sr} is too low for VGGish's 125–7500 Hz mel bands "
                             f"(at least {_MIN_SR} Hz)")
    n_fft = positive_int(n_fft, "n_fft")
    hop_length = positive_int(hop_length, "hop_length")
    win_length = n_fft if win_length is None else positive_int(win_length, "win_length")
    if win_length > n_fft:
        raise ParameterError(f"win_length={win_length} must be <= n_fft={n_fft}")
    return sr, n_fft, hop_length, win_length


def _as_spectrogram(S, n_fft: int, name: str = "S") -> torch.Tensor:
    if isinstance(S, np.ndarray):
        S = torch.from_numpy(S)
    if not isinstance(S, torch.Tensor):
        raise ParameterError(f"{name} must be a torch.Tensor, got {type(S).__name__}")
    if not S.is_floating_point():
        raise ParameterError(f"{name} must be a real floating-point magnitude, got dtype={S.dtype}")
    if S.ndim not in (2, 3):
        raise ParameterError(f"{name} must have shape (bins, frames) or (batch, bins, frames), "
                             f"got {name}.shape={tuple(S.shape)}")
    if S.shape[-2] != 1 + n_fft // 2:
        raise ParameterError(f"{name} has {S.shape[-2]} bins, expected 1 + n_fft // 2 = "
                             f"{1 + n_fft // 2} for n_fft={n_fft} ({name}.shape={tuple(S.shape)})")
    if S.shape[-1] == 0 or (S.ndim == 3 and S.shape[0] == 0):
        raise ParameterError(f"{name} is empty ({name}.shape={tuple(S.shape)})")
    return S


def _examples(S: torch.Tensor, mel: torch.Tensor, *, gain: float, frames_out: int) -> torch.Tensor:
    """The differentiable core of :func:`vggish_examples` (arguments already checked).

    ``S`` is (batch, bins, frames), ``mel`` is (64, bins); returns (batch * patches, 1, 96, 64).
    """
    batch = S.shape[0]
    log_mel = torch.log(torch.matmul(mel, S * gain) + LOG_OFFSET)           # (batch, 64, T)
    log_mel = F.interpolate(log_mel, size=frames_out, mode="linear", align_corners=False)
    patches = -(-frames_out // PATCH_FRAMES)
    pad = patches * PATCH_FRAMES - frames_out
    if pad:
        log_mel = F.pad(log_mel, (0, pad), mode="replicate")
    # (batch, 64, patches*96) -> (batch, patches, 96, 64) -> (batch*patches, 1, 96, 64)
    out = log_mel.reshape(batch, N_MELS, patches, PATCH_FRAMES).permute(0, 2, 3, 1)
    return out.reshape(batch * patches, 1, PATCH_FRAMES, N_MELS)


def _frames_out(frames: int, sr: int, hop_length: int) -> int:
    # The same duration at 100 frames per second; never fewer than one frame.
    return max(1, int(round(frames * hop_length * FRAME_RATE / sr)))


def vggish_examples(S, *, sr: int, n_fft: int, hop_length: int,
                    win_length: int | None = None) -> torch.Tensor:
    """Turn rtstyle's linear STFT magnitude into VGGish input patches, differentiably.

    Parameters
    ----------
    S : torch.Tensor [shape=(bins, frames) or (batch, bins, frames), bins = 1 + n_fft // 2]
        Non-negative linear magnitude ``|STFT|`` as ``rtstyle.dsp.stft`` makes it (periodic
        Hann of ``win_length``, not normalised, centred frames), of audio in [-1, 1]. A numpy
        array is converted (without gradient).
    sr : int >= 8000
        Sample rate of the audio behind ``S``.
    n_fft : int > 0
        FFT size of ``S``.
    hop_length : int > 0
        Hop of ``S`` in samples.
    win_length : int <= n_fft or None
        Hann window length of ``S``; ``None`` means ``n_fft``.

    Returns
    -------
    examples : torch.Tensor [shape=(batch * patches, 1, 96, 64)]
        Log-mel patches (96 frames of 10 ms × 64 bands), on ``S``'s device and dtype. A 2-D ``S``
        counts as ``batch = 1``; for a batch, every item has the same number of patches and its
        patches are consecutive (item 0's first), so ``examples.reshape(batch, patches, 1, 96,
        64)`` splits them. ``patches = ceil(T / 96)`` with ``T = round(frames * hop_length * 100
        / sr)`` (at least 1); the last patch is filled by repeating the last frame.

    Raises
    ------
    ParameterError
        A non-tensor, non-float or empty ``S``, a bin count that does not match ``n_fft``, or a
        bad ``sr``/``n_fft``/``hop_length``/``win_length``.

    Notes
    -----
    The steps, mirroring VGGish's own front end (16 kHz, 25-ms periodic Hann, 10-ms hop,
    64 HTK-mel bands over 125–7500 Hz, ``log(mel + 0.01)``, 0.96-s patches):

    1. Level: ``S`` is scaled by ``200 / (win_length / 2)``, the ratio of the window sums (a
       periodic Hann of N samples sums to N/2; VGGish's of 400 samples to 200). A sinusoid of
       amplitude A peaks at ``A * sum(window) / 2`` whatever the sample rate or FFT size, so
       tones reach VGGish at the level its own STFT would give them, and ``log(mel + 0.01)``
       sees the offset where VGGish was trained. (Broadband noise, whose bin magnitudes grow
       with sqrt of the window energy and fill more bins per band, is matched only roughly.)
    2. Mel: VGGish's triangular filters (linear in HTK mel, peak 1, DC zeroed, 125–7500 Hz)
       evaluated at ``S``'s bin frequencies. The bands stay where VGGish has them at every
       ``sr``; below 15 kHz the bands above ``sr / 2`` are empty (log floor), as they are in
       VGGish for audio resampled up to 16 kHz.
    3. Time: the log-mel frames are resampled linearly from ``sr / hop_length`` to 100 frames
       per second (``torch.nn.functional.interpolate``), then cut into non-overlapping
       96-frame patches. Unlike VGGish, which drops a partial last patch, it is padded, so
       every frame counts and short inputs still give one patch.
    """
    sr, n_fft, hop_length, win_length = _check_front_end(sr, n_fft, hop_length, win_length)
    S = _as_spectrogram(S, n_fft)
    S3 = S.unsqueeze(0) if S.ndim == 2 else S
    mel = torch.tensor(_mel_matrix(sr, n_fft), dtype=S3.dtype, device=S3.device)
    return _examples(S3, mel, gain=_VGGISH_WINDOW_SUM / (win_length / 2.0),
                     frames_out=_frames_out(S3.shape[-1], sr, hop_length))


class PerceptualContentLoss(torch.nn.Module):
    """VGGish perceptual content loss: MSE between embeddings of ``S`` and of a fixed content.

    Parameters
    ----------
    vggish : VGGish
        The network (from :func:`load_vggish`); it is frozen (eval mode, no parameter
        gradients) and becomes a submodule, so ``.to(device)`` moves it too.
    S_content : torch.Tensor [shape=(bins, frames) or (batch, bins, frames)]
        Linear STFT magnitude of the content, as for :func:`vggish_examples`. Its embeddings are
        computed once, without gradient.
    sr, n_fft, hop_length, win_length
        The STFT settings of ``S_content`` and of every ``S`` passed to :meth:`forward`.

    Raises
    ------
    ParameterError
        As :func:`vggish_examples`; or ``vggish`` is not a :class:`VGGish`.

    Notes
    -----
    ``forward(S)`` needs ``S.shape == S_content.shape``: both are cut into the same patches and
    compared patch by patch, ``mean((E(S) - E(S_content))**2)`` over patches and the 128
    dimensions. This is the report's "perceptual content loss", which it found worse than L2 on
    the encoder features; it is offered for comparison.

    Examples
    --------
    >>> loss_fn = PerceptualContentLoss(load_vggish("vggish.safetensors"), S_content,
    ...                                 sr=22050, n_fft=2048, hop_length=512)  # doctest: +SKIP
    >>> loss = loss_fn(S)                                                      # doctest: +SKIP
    """

    def __init__(self, vggish: VGGish, S_content, *, sr: int, n_fft: int, hop_length: int,
                 win_length: int | None = None) -> None:
        super().__init__()
        if not isinstance(vggish, VGGish):
            raise ParameterError(f"vggish must be a VGGish model, got {type(vggish).__name__}")
        sr, n_fft, hop_length, win_length = _check_front_end(sr, n_fft, hop_length, win_length)
        S_content = _as_spectrogram(S_content, n_fft, name="S_content")
        self.sr, self.n_fft, self.hop_length, self.win_length = sr, n_fft, hop_length, win_length
        self.gain = _VGGISH_WINDOW_SUM / (win_length / 2.0)
        self.content_shape = tuple(S_content.shape)
        self.vggish = vggish.eval().requires_grad_(False)
        device = next(vggish.parameters()).device
        S3 = S_content.detach().to(device=device, dtype=torch.float32)
        S3 = S3.unsqueeze(0) if S3.ndim == 2 else S3
        self.frames_out = _frames_out(S3.shape[-1], sr, hop_length)
        self.register_buffer("mel", torch.tensor(_mel_matrix(sr, n_fft), dtype=torch.float32,
                                                 device=device))
        with torch.no_grad():
            target = self.vggish(_examples(S3, self.mel, gain=self.gain,
                                           frames_out=self.frames_out))
        self.register_buffer("target", target)

    def forward(self, S: torch.Tensor) -> torch.Tensor:
        """Loss of ``S`` against the content.

        Parameters
        ----------
        S : torch.Tensor [shape=S_content.shape]
            Linear STFT magnitude (float32), usually requiring grad.

        Returns
        -------
        loss : torch.Tensor [shape=()]
            Mean squared difference of the VGGish embeddings; 0 when ``S`` equals the content.
        """
        if not isinstance(S, torch.Tensor) or tuple(S.shape) != self.content_shape:
            shape = tuple(S.shape) if isinstance(S, torch.Tensor) else type(S).__name__
            raise ParameterError(f"S must have the content's shape {self.content_shape}, "
                                 f"got {shape}")
        S3 = (S.unsqueeze(0) if S.ndim == 2 else S).to(self.mel.dtype)
        emb = self.vggish(_examples(S3, self.mel, gain=self.gain, frames_out=self.frames_out))
        return F.mse_loss(emb, self.target)
