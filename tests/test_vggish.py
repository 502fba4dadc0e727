"""VGGish perceptual content loss: architecture, weight conversion, safe loading, front end.

No VGGish weights can be downloaded here, so every test uses random weights in the public
PyTorch port's (harritaylor/torchvggish) naming.
"""

from __future__ import annotations

import importlib.util
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import safetensors
import torch
from safetensors.torch import save_file

from rtstyle.errors import ModelError, ParameterError
from rtstyle.nn.vggish import (
    VGGish,
    PerceptualContentLoss,
    check_vggish_tensors,
    load_vggish,
    vggish_examples,
)

from conftest import sine

ROOT = Path(__file__).resolve().parents[1]

# The port's state-dict keys (torchvggish/vggish.py: make_layers() and VGG.embeddings).
PORT_KEYS = [f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13) for p in ("weight", "bias")] + [
    f"embeddings.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")
]


def _load_tool():
    spec = importlib.util.spec_from_file_location("convert_vggish",
                                                  ROOT / "tools" / "convert_vggish.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


convert_tool = _load_tool()


class _PortPostprocessor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pca_matrix = torch.nn.Parameter(torch.eye(128), requires_grad=False)
        self.pca_means = torch.nn.Parameter(torch.zeros(128, 1), requires_grad=False)


class _PortVGGish(torch.nn.Module):
    """An independent re-statement of the port's VGG (its layer list, flatten and pproc)."""

    def __init__(self):
        super().__init__()
        layers, c = [], 1
        for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M"]:
            if v == "M":
                layers += [torch.nn.MaxPool2d(kernel_size=2, stride=2)]
            else:
                layers += [torch.nn.Conv2d(c, v, kernel_size=3, padding=1),
                           torch.nn.ReLU(inplace=True)]
                c = v
        self.features = torch.nn.Sequential(*layers)
        self.embeddings = torch.nn.Sequential(
            torch.nn.Linear(512 * 4 * 6, 4096), torch.nn.ReLU(True),
            torch.nn.Linear(4096, 4096), torch.nn.ReLU(True),
            torch.nn.Linear(4096, 128), torch.nn.ReLU(True))
        self.pproc = _PortPostprocessor()

    def forward(self, x):
        x = self.features(x)
        x = torch.transpose(x, 1, 3)
        x = torch.transpose(x, 1, 2)
        x = x.contiguous()
        x = x.view(x.size(0), -1)
        return self.embeddings(x)


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    """A random port-style model, its .pth, the converted .safetensors and the loaded VGGish."""
    torch.manual_seed(0)
    model = _PortVGGish().eval()
    with torch.no_grad():  # He init and small biases, so random embeddings are not all zero
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                torch.nn.init.uniform_(m.bias, -0.05, 0.05)
    folder = tmp_path_factory.mktemp("vggish")
    pth = folder / "vggish-random.pth"
    torch.save(model.state_dict(), pth)
    out = folder / "vggish.safetensors"
    assert convert_tool.main([str(pth), "-o", str(out)]) == 0
    loaded = load_vggish(out)
    return dict(model=model, pth=pth, out=out, loaded=loaded, folder=folder)


def _cheap_state_dict(**override):
    """VGGish-shaped tensors that cost nothing to save: each is a 1-element storage, expanded."""
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in VGGish().state_dict().items()}
    shapes.update(override)
    return {k: torch.zeros(1).expand(s) for k, s in shapes.items()}


def _stft_mag(y: np.ndarray, n_fft: int, hop_length: int) -> torch.Tensor:
    return torch.stft(torch.from_numpy(y), n_fft=n_fft, hop_length=hop_length,
                      window=torch.hann_window(n_fft), center=True, return_complex=True).abs()


# ---------------------------------------------------------------------------------------------
# Architecture


def test_state_dict_keys_are_the_ports():
    with torch.device("meta"):
        sd = VGGish().state_dict()
    assert list(sd) == PORT_KEYS
    assert tuple(sd["embeddings.0.weight"].shape) == (4096, 512 * 4 * 6)
    assert tuple(sd["features.13.weight"].shape) == (512, 512, 3, 3)


def test_forward_shape(port):
    torch.manual_seed(1)
    emb = port["loaded"](torch.randn(3, 1, 96, 64))
    assert emb.shape == (3, 128)
    assert torch.isfinite(emb).all() and (emb >= 0).all() and (emb > 0).any()
    with pytest.raises(ParameterError, match=r"\(n, 1, 96, 64\)"):
        port["loaded"](torch.randn(3, 96, 64))


# ---------------------------------------------------------------------------------------------
# Conversion and loading


def test_converted_weights_give_the_ports_embeddings(port):
    torch.manual_seed(2)
    x = torch.randn(2, 1, 96, 64)
    with torch.no_grad():
        ref = port["model"](x)
        got = port["loaded"](x)
    # Same weights, same ops, same flatten order: equal up to float32 rounding.
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)
    assert not port["loaded"].training
    assert not any(p.requires_grad for p in port["loaded"].parameters())
    with safetensors.safe_open(port["out"], framework="pt") as fh:
        assert fh.metadata() == {"format": "rtstyle-vggish", "source": "vggish-random.pth"}
        assert sorted(fh.keys()) == sorted(PORT_KEYS)  # pproc.* dropped


def test_convert_refuses_existing_output(port, capsys):
    before = port["out"].stat().st_mtime_ns
    assert convert_tool.main([str(port["pth"]), "-o", str(port["out"])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("convert_vggish: error:") and "--overwrite" in err
    assert "\n" not in err and "Traceback" not in err
    assert port["out"].stat().st_mtime_ns == before


def test_convert_never_overwrites_its_input(tmp_path, capsys):
    src = tmp_path / "w.safetensors"
    src.write_bytes(b"not touched")
    assert convert_tool.main([str(src), "-o", str(src), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("convert_vggish: error:") and "\n" not in err
    assert "is an input file; refusing to overwrite it" in err
    assert src.read_bytes() == b"not touched"


def test_convert_refuses_wrong_shape_and_missing_key(tmp_path, capsys):
    bad = tmp_path / "bad.pth"
    torch.save(_cheap_state_dict(**{"features.0.weight": (32, 1, 3, 3)}), bad)
    out = tmp_path / "bad.safetensors"
    assert convert_tool.main([str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"convert_vggish: error: {bad}: tensor 'features.0.weight' has shape "
                   "(32, 1, 3, 3), expected (64, 1, 3, 3)")
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]  # no temp file left

    sd = _cheap_state_dict()
    del sd["embeddings.4.bias"]
    torch.save(sd, bad)
    assert convert_tool.main([str(bad), "-o", str(out)]) == 2
    assert "missing tensor 'embeddings.4.bias'" in capsys.readouterr().err
    assert not out.exists()


def test_check_vggish_tensors_messages():
    check_vggish_tensors(_cheap_state_dict(), name="ok")
    with pytest.raises(ModelError, match=r"x\.st: unexpected tensor 'pproc\.pca_matrix'"):
        check_vggish_tensors({**_cheap_state_dict(), "pproc.pca_matrix": torch.zeros(1)},
                             name="x.st")
    with pytest.raises(ModelError, match=r"'embeddings\.4\.bias' has shape \(64,\), "
                                         r"expected \(128,\)"):
        check_vggish_tensors(_cheap_state_dict(**{"embeddings.4.bias": (64,)}), name="x.st")


class _Marker:
    """Unpickling this object creates a file: proof that someone unpickled it."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("name", ["evil.pth", "evil.pt", "evil.ckpt", "evil.pkl",
                                  "evil.safetensors"])
def test_load_refuses_pickles_without_unpickling(tmp_path, name):
    marker = tmp_path / "unpickled.txt"
    path = tmp_path / name
    path.write_bytes(pickle.dumps({"features.0.weight": _Marker(marker)}, protocol=2))
    with pytest.raises(ModelError, match="convert_vggish.py") as info:
        load_vggish(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_converter_does_not_run_pickled_code(tmp_path, capsys):
    marker = tmp_path / "unpickled.txt"
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"features.0.weight": _Marker(marker)}, protocol=2))
    assert convert_tool.main([str(evil), "-o", str(tmp_path / "evil.safetensors")]) == 2
    assert "weights-only" in capsys.readouterr().err
    assert not marker.exists()  # weights_only=True refused the `open` global


def test_load_refuses_bad_safetensors(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        load_vggish(tmp_path / "absent.safetensors")

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"this is not a safetensors file at all" * 10)
    with pytest.raises(ModelError, match=r"garbage\.safetensors: not a valid safetensors"):
        load_vggish(garbage)

    partial = tmp_path / "partial.safetensors"
    save_file({"features.0.weight": torch.zeros(64, 1, 3, 3),
               "features.0.bias": torch.zeros(64)}, partial)
    with pytest.raises(ModelError, match=r"partial\.safetensors: missing tensor 'features\.3"):
        load_vggish(partial)

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(partial.read_bytes()[:-100])
    with pytest.raises(ModelError, match=r"truncated\.safetensors: not a valid safetensors"):
        load_vggish(truncated)


# ---------------------------------------------------------------------------------------------
# Front end


def test_examples_shape_and_batching():
    sr, n_fft, hop = 22050, 2048, 512
    torch.manual_seed(3)
    S = torch.rand(1 + n_fft // 2, 1 + 3 * sr // hop)  # 3 s: 130 frames -> 302 frames at 100 fps
    ex = vggish_examples(S, sr=sr, n_fft=n_fft, hop_length=hop)
    assert ex.shape == (math.ceil(300 / 96), 1, 96, 64)
    # A batch is its items' patches, item by item.
    S2 = torch.stack([S, 2 * S])
    ex2 = vggish_examples(S2, sr=sr, n_fft=n_fft, hop_length=hop)
    assert ex2.shape == (8, 1, 96, 64)
    torch.testing.assert_close(ex2[:4], ex)
    # Short input: still one patch, padded with its last frame.
    short = vggish_examples(S[:, :5], sr=sr, n_fft=n_fft, hop_length=hop)
    assert short.shape == (1, 1, 96, 64)
    assert torch.equal(short[0, 0, -1], short[0, 0, 20])
    with pytest.raises(ParameterError, match="expected 1 \\+ n_fft // 2 = 513"):
        vggish_examples(S, sr=sr, n_fft=1024, hop_length=hop)
    with pytest.raises(ParameterError, match="sr=4000"):
        vggish_examples(S, sr=4000, n_fft=n_fft, hop_length=hop)


def _vggish_native_log_mel(y16: np.ndarray) -> np.ndarray:
    """VGGish's own front end at 16 kHz: 400-sample periodic Hann, 160 hop, 512-point FFT."""
    from rtstyle.nn.vggish import _mel_matrix

    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    frames = np.lib.stride_tricks.sliding_window_view(y16, 400)[::160]
    mag = np.abs(np.fft.rfft(frames * win, 512))
    return np.log(mag @ _mel_matrix(16000, 512).T + 0.01)   # (frames, 64)


@pytest.mark.parametrize("sr,n_fft,hop", [(22050, 2048, 512), (44100, 2048, 256),
                                          (16000, 1024, 256), (8000, 512, 128)])
def test_sine_lands_in_its_band_at_vggish_level(sr, n_fft, hop):
    f0 = 1000.0
    y = sine(sr, f0=f0, duration=2.0, amp=0.5)
    ex = vggish_examples(_stft_mag(y, n_fft, hop), sr=sr, n_fft=n_fft, hop_length=hop)
    spectrum = ex[0, 0, 20:80].mean(0).numpy()          # steady middle frames, (64,)
    ref = _vggish_native_log_mel(sine(16000, f0=f0, duration=2.0, amp=0.5))[20:80].mean(0)
    assert int(spectrum.argmax()) == int(ref.argmax())   # same band layout at every sr
    # Band centres: 125..7500 Hz, 64 bands evenly in HTK mel; the peak band holds 1 kHz.
    mel = np.linspace(1127 * np.log(1 + 125 / 700), 1127 * np.log(1 + 7500 / 700), 66)
    centres = 700 * (np.exp(mel[1:-1] / 1127) - 1)
    assert abs(centres[spectrum.argmax()] - f0) < 0.05 * f0
    # The window-sum scaling puts the tone at VGGish's own level; what remains is how many
    # (zero-padded) bins the main lobe covers under the triangle: < 0.4 nats (measured 0.02 to
    # 0.3 for 300 Hz .. 3 kHz at these settings).
    assert abs(spectrum.max() - ref.max()) < 0.4
    # Far bands hold only the log offset's floor in both (at 8 kHz: nothing above 4 kHz).
    assert spectrum[-1] < np.log(0.01) + 1.0 and ref[-1] < np.log(0.01) + 1.0
    if sr == 8000:
        assert np.allclose(spectrum[-8:], np.log(0.01))


# ---------------------------------------------------------------------------------------------
# Loss


@pytest.fixture(scope="module")
def short_specs():
    sr, n_fft, hop = 22050, 2048, 512
    content = _stft_mag(sine(sr, f0=440.0, duration=0.9), n_fft, hop)
    other = _stft_mag(sine(sr, f0=2500.0, duration=0.9), n_fft, hop)
    return dict(sr=sr, n_fft=n_fft, hop_length=hop, content=content, other=other)


def test_loss_zero_on_content_and_positive_elsewhere(port, short_specs):
    s = short_specs
    loss_fn = PerceptualContentLoss(port["loaded"], s["content"], sr=s["sr"], n_fft=s["n_fft"],
                                    hop_length=s["hop_length"])
    assert loss_fn.target.shape == (1, 128)
    assert loss_fn(s["content"].clone()).item() == 0.0
    S = s["other"].clone().requires_grad_(True)
    loss = loss_fn(S)
    assert loss.ndim == 0 and loss.item() > 0
    loss.backward()
    assert torch.isfinite(S.grad).all() and S.grad.abs().sum() > 0
    with pytest.raises(ParameterError, match="content's shape"):
        loss_fn(s["other"][:, :-1])


def test_adam_steps_lower_the_loss(port, short_specs):
    s = short_specs
    loss_fn = PerceptualContentLoss(port["loaded"], s["content"], sr=s["sr"], n_fft=s["n_fft"],
                                    hop_length=s["hop_length"])
    torch.manual_seed(4)
    log_S = torch.log(s["other"] + 1e-3).clone().requires_grad_(True)   # keep S > 0
    opt = torch.optim.Adam([log_S], lr=0.1)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = loss_fn(torch.exp(log_S))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
