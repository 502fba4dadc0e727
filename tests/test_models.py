"""Model files and the registry: save/load, refusals, resolution, listing, `rtstyle styles`."""

import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

import rtstyle
from rtstyle import cli
from rtstyle.config import EncoderConfig, FeatureConfig, TransformConfig
from rtstyle.errors import AudioFileError, ModelError, ParameterError
from rtstyle.models import (FORMAT_VERSION, list_styles, load_model, resolve_style, save_model,
                            user_models_dir)
from rtstyle.nn.transform import TransformNet

from conftest import MODEL_BINS as BINS  # noqa: F401
from conftest import MODEL_HOP as HOP
from conftest import MODEL_N_FFT as N_FFT  # noqa: F401
from conftest import MODEL_SR as SR  # noqa: F401
from conftest import model_card as card
from conftest import save_tiny_model as saved
from conftest import tiny_net

LIMITER = round(0.0015 * SR)  # the output limiter's look-ahead, part of every stream's latency


@pytest.fixture
def no_user_env(monkeypatch, tmp_path):
    """Keep the developer's real user folder out of the tests."""
    monkeypatch.delenv("RTSTYLE_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def test_round_trip(tmp_path, no_user_env):
    net, path = saved(tmp_path, "duo", styles=("organ", "choir"), lookahead=1)
    assert path == tmp_path / "duo.safetensors"
    assert sorted(os.listdir(tmp_path)) == ["duo.json", "duo.safetensors"]
    written = json.loads((tmp_path / "duo.json").read_text())
    assert written["format_version"] == FORMAT_VERSION
    assert TransformConfig.from_dict(written["architecture"]) == net.config

    for spec in (tmp_path / "duo", str(path), str(tmp_path / "duo.json")):
        model = load_model(spec)
        assert model.name == "duo" and model.styles == ["organ", "choir"]
        assert (model.sr, model.n_fft, model.hop_length, model.bundled) == (SR, N_FFT, HOP, False)
        assert model.path == path and model.card_path == tmp_path / "duo.json"
        assert not model.net.training and model.net.config == net.config
    x = torch.rand(1, BINS, 20) * 3
    with torch.no_grad():
        for style in (0, 1):
            assert torch.equal(model.net(x, style), net(x, style))
    # latency: phase n_fft + (1 - 1) * hop, one net look-ahead frame, the limiter's 1.5 ms
    assert model.latency_samples == N_FFT + HOP + LIMITER
    assert rtstyle.load_model is load_model


def test_save_refuses_bad_cards(tmp_path):
    net = tiny_net()
    with pytest.raises(ModelError, match=r"m\.json: model card lacks key 'licence'"):
        save_model(net, {k: v for k, v in card("m").items() if k != "licence"}, tmp_path / "m")
    with pytest.raises(ModelError, match="n_styles=1 but the card names 2"):
        save_model(net, card("m", styles=("a", "b")), tmp_path / "m")
    with pytest.raises(ModelError, match=r"bins=33 does not match 1 \+ n_fft // 2 = 65"):
        save_model(net, card("m", stft={"n_fft": 128, "hop_length": 32}), tmp_path / "m")
    with pytest.raises(ModelError, match="differs from the net"):
        save_model(net, card("m", architecture={**net.config.to_dict(), "hidden": 9}),
                   tmp_path / "m")
    with pytest.raises(ModelError, match="cannot be written as JSON"):
        save_model(net, card("m", quality={"loss": float("nan")}), tmp_path / "m")
    with pytest.raises(ModelError, match=r"styles\[0\]\.name='a:b' must not contain ':'"):
        save_model(net, card("m", styles=("a:b",)), tmp_path / "m")
    with pytest.raises(ParameterError, match="differs from the file name"):
        save_model(net, card("other"), tmp_path / "m.safetensors")
    assert os.listdir(tmp_path) == []
    save_model(net, card("m"), tmp_path)                      # a folder: named after the card
    with pytest.raises(AudioFileError, match="exists"):
        save_model(net, card("m"), tmp_path / "m.json")
    save_model(net, card("m"), tmp_path / "m.json", overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["m.json", "m.safetensors"]   # no temp files left


class _Marker:
    """Unpickling this object creates a file: proof that someone unpickled it."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ckpt", ".pkl"])
def test_refuses_pickle_suffixes(tmp_path, suffix):
    marker = tmp_path / "unpickled.txt"
    evil = tmp_path / f"evil{suffix}"
    evil.write_bytes(pickle.dumps({"x": _Marker(marker)}, protocol=2))
    with pytest.raises(ModelError, match=r"refusing to load a '\.\w+' \(pickle\) file") as info:
        load_model(evil)
    assert str(evil) in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_refuses_a_pickle_renamed_safetensors_without_unpickling(tmp_path):
    saved(tmp_path, "m")
    marker = tmp_path / "unpickled.txt"
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(pickle.dumps({"in_proj.weight": _Marker(marker)}, protocol=2))
    with pytest.raises(ModelError, match=r"m\.safetensors: is a pickle, not safetensors; "
                                         r"refusing to unpickle it") as info:
        load_model(tmp_path / "m")
    assert "\n" not in str(info.value)
    assert not marker.exists()
    # a protocol-0 pickle (no 0x80 byte) is not sniffed but is still never unpickled
    weights.write_bytes(pickle.dumps({"in_proj.weight": _Marker(marker)}, protocol=0))
    with pytest.raises(ModelError, match="not a valid safetensors file"):
        load_model(tmp_path / "m")
    assert not marker.exists()


def test_truncated_and_garbage_weights(tmp_path):
    _, path = saved(tmp_path, "m")
    data = path.read_bytes()
    path.write_bytes(data[:-50])
    with pytest.raises(ModelError, match=r"m\.safetensors: not a valid safetensors file"):
        load_model(tmp_path / "m")
    path.write_bytes(b"")
    with pytest.raises(ModelError, match=r"m\.safetensors: not a valid safetensors file"):
        load_model(tmp_path / "m")
    path.unlink()
    with pytest.raises(ModelError, match=r"m\.safetensors: no such file"):
        load_model(tmp_path / "m")


def test_wrong_or_missing_tensors(tmp_path):
    from safetensors.torch import save_file

    net, path = saved(tmp_path, "m")
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file({**state, "out_proj.bias": torch.zeros(7)}, path)
    with pytest.raises(ModelError, match=r"m\.safetensors: tensor 'out_proj\.bias' has shape "
                                         r"\(7,\), expected \(33,\) by the architecture "
                                         r"in m\.json"):
        load_model(tmp_path / "m")
    save_file({k: v for k, v in state.items() if k != "film.weight"}, path)
    with pytest.raises(ModelError, match="missing tensor 'film.weight'"):
        load_model(tmp_path / "m")
    save_file({**state, "extra": torch.zeros(1)}, path)
    with pytest.raises(ModelError, match="unexpected tensor 'extra'"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("edit,needle", [
    (lambda c: c.update(format_version=FORMAT_VERSION + 1),
     f"format_version={FORMAT_VERSION + 1} is newer than this rtstyle reads"),
    (lambda c: c.pop("architecture"), "lacks key 'architecture'"),
    (lambda c: c.pop("styles"), "lacks key 'styles'"),
    (lambda c: c["architecture"].update(hidden=0), "hidden=0 must be a positive integer"),
    (lambda c: c["stft"].update(n_fft="big"), "n_fft='big'"),
])
def test_bad_cards(tmp_path, edit, needle):
    saved(tmp_path, "m")
    path = tmp_path / "m.json"
    c = json.loads(path.read_text())
    edit(c)
    path.write_text(json.dumps(c))
    with pytest.raises(ModelError, match=r"m\.json: ") as info:
        load_model(tmp_path / "m.safetensors")
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_card_not_json(tmp_path):
    saved(tmp_path, "m")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"m\.json: not a valid JSON model card"):
        load_model(tmp_path / "m")
    (tmp_path / "m.json").unlink()
    with pytest.raises(ModelError, match=r"m\.safetensors: has no model card m\.json"):
        load_model(tmp_path / "m")


def test_style_resolution(tmp_path, no_user_env):
    saved(tmp_path, "duo", styles=("organ", "choir"))
    model, i = resolve_style("duo", models_dir=tmp_path)
    assert (model.name, i) == ("duo", 0)
    assert resolve_style("duo:choir", models_dir=tmp_path)[1] == 1
    assert resolve_style(f"{tmp_path / 'duo.json'}:choir")[1] == 1
    with pytest.raises(ModelError, match="model 'duo' has no style 'flute'; its styles: "
                                         "organ, choir"):
        resolve_style("duo:flute", models_dir=tmp_path)
    with pytest.raises(ModelError, match=r"no model named 'nope' \(available: .*duo"):
        resolve_style("nope:organ", models_dir=tmp_path)
    with pytest.raises(ModelError, match="style name after ':' is empty"):
        resolve_style("duo:", models_dir=tmp_path)


def test_user_folder_from_environment(tmp_path, monkeypatch):
    user = tmp_path / "user"
    user.mkdir()
    saved(user, "solo")
    monkeypatch.setenv("RTSTYLE_MODELS", str(user))
    assert load_model("solo").path == user / "solo.safetensors"
    names = [r["name"] for r in list_styles() if not r["bundled"]]
    assert names == ["solo"]
    monkeypatch.setenv("RTSTYLE_MODELS", str(tmp_path / "absent"))
    with pytest.raises(ModelError, match="RTSTYLE_MODELS .*absent: does not exist"):
        list_styles()
    # the platform default when nothing is set
    monkeypatch.delenv("RTSTYLE_MODELS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert user_models_dir() == tmp_path / "xdg" / "rtstyle" / "models"
    # the default folder does not exist: no user models, no error (bundled ones are listed)
    assert [r for r in list_styles() if not r["bundled"]] == []


def test_list_styles(tmp_path, no_user_env):
    saved(tmp_path, "b_duo", styles=("organ", "choir"), lookahead=2)
    saved(tmp_path, "a_solo")
    saved(tmp_path, "c_broken")
    (tmp_path / "c_broken.json").write_text("{")
    (tmp_path / ".hidden.tmp-1234.json").write_text("{")          # a temp file: skipped
    (tmp_path / "README.md").write_text("notes")
    rows = [r for r in list_styles(models_dir=tmp_path) if not r["bundled"]]   # after bundled
    assert [r["name"] for r in rows] == ["a_solo", "b_duo:organ", "b_duo:choir", "c_broken"]
    solo, organ = rows[0], rows[1]
    assert solo == {"name": "a_solo", "model": "a_solo",
                    "path": str(tmp_path / "a_solo.safetensors"),
                    "sr": SR, "n_fft": N_FFT, "hop_length": HOP,
                    "latency_ms": round(1000 * (N_FFT + LIMITER) / SR, 3),
                    "latency_samples": N_FFT + LIMITER,
                    "styles": ["bright"], "bundled": False, "error": None}
    assert organ["model"] == "b_duo" and organ["styles"] == ["organ", "choir"]
    assert organ["latency_samples"] == N_FFT + 2 * HOP + LIMITER
    assert rows[3]["error"].startswith(f"{tmp_path / 'c_broken.json'}: not a valid JSON")
    assert rows[3]["sr"] is None


def test_list_styles_does_not_import_torch(tmp_path):
    saved(tmp_path, "m")
    code = ("import sys, rtstyle.models as m; rows = m.list_styles(models_dir=sys.argv[1]); "
            "print(rows[-1]['name'], 'torch' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                       text=True)
    assert p.stdout.split() == ["m", "False"], p.stderr


def test_empty_bundled_folder(no_user_env):
    from rtstyle.models import model_folders

    bundled = model_folders()["bundled"]
    assert bundled is not None and bundled.name in ("models", "_bundled_models")
    assert [r for r in list_styles() if not r["bundled"]] == []   # only bundled (maybe none)


def test_cli_styles_json_lists_a_user_model(tmp_path, capsys, no_user_env):
    saved(tmp_path, "solo")
    assert cli.main(["styles", "--json", "--models-dir", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out)
    user = [r for r in rows if not r["bundled"]]
    assert [r["name"] for r in user] == ["solo"] and user[0]["path"].endswith("solo.safetensors")
    assert {"name", "model", "path", "sr", "n_fft", "hop_length", "latency_ms", "styles",
            "bundled"} <= set(user[0])
    assert cli.main(["styles", "--models-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "solo" in out and f"{N_FFT}/{HOP}" in out and "user" in out


def test_cli_styles_bad_models_dir_is_one_line(tmp_path, capsys):
    assert cli.main(["styles", "--models-dir", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rtstyle: error:") and "absent" in err[0]
    (tmp_path / "file").write_text("x")
    assert cli.main(["styles", "--models-dir", str(tmp_path / "file")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_loading_a_model_does_not_start_torch_compiler():
    # the card check builds a net on the 'meta' device; nn.Embedding's own init there imports
    # torch._dynamo, which cost every render and live start ~1.7 s on this machine
    code = ("import sys; from rtstyle.models import load_model; load_model('instruments'); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
