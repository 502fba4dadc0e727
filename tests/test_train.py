"""Training (rtstyle train, tools/train_style.py): smoke run, learning, resume, errors, no pickle.

Everything runs on a tiny synthetic corpus in tmp_path with a tiny encoder and net, so the whole
file takes seconds; real training runs outside CI.
"""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import chirp, harmonic, noise, speechlike, vowel
from rtstyle import cli
from rtstyle.nn._weights import sniff_pickle
from rtstyle.train import DEFAULTS, TrainSettings, parse_style
from rtstyle.train.checkpoint import CHECKPOINT_JSON

SR = 8000
TINY = dict(sr=SR, n_fft=256, hop_length=64, n_mels=32, filters=64, hidden=32, layers=2,
            chunk_frames=24, batch_size=4, val_chunks=4, threads=1)
TINY_ARGS = ["--sr", "8000", "--n-fft", "256", "--hop-length", "64", "--n-mels", "32",
             "--filters", "64", "--hidden", "32", "--layers", "2", "--chunk-frames", "24",
             "--batch-size", "4", "--val-chunks", "4", "--threads", "1", "-q"]


@pytest.fixture
def corpus(tmp_path):
    """A manifest corpus (4 train + 1 val content files) and two style references."""
    root = tmp_path / "corpus"
    (root / "content").mkdir(parents=True)
    (root / "styles").mkdir()
    clips = [speechlike(SR, duration=1.5, seed=i) for i in range(3)]
    clips += [chirp(SR, 100, 3000, duration=1.2), vowel(SR, duration=1.2)]
    files = []
    for i, y in enumerate(clips):
        rel = f"content/{i:03d}.wav" if i % 2 else f"content/{i:03d}.flac"
        sf.write(root / rel, y, SR)
        files.append({"path": rel, "part": "speech", "split": "val" if i == 1 else "train",
                      "licence": ["Synthetic test signal (CC0)."], "duration_s": len(y) / SR})
    sf.write(root / "styles/organ.flac", harmonic(SR, f0=110, duration=1.5, n_harmonics=20), SR)
    sf.write(root / "styles/hiss.wav", noise(SR, duration=1.5, amp=0.2), SR)
    files += [{"path": "styles/organ.flac", "part": "style", "name": "organ",
               "licence": ["Synthetic organ (CC0)."]},
              {"path": "styles/hiss.wav", "part": "style", "name": "hiss", "licence": []}]
    (root / "manifest.json").write_text(json.dumps({"about": "test corpus", "files": files}))
    return root


def settings(corpus, **kw):
    styles = kw.pop("styles", (parse_style(f"organ={corpus}/styles/organ.flac"),
                               parse_style(f"{corpus}/styles/hiss.wav")))
    return TrainSettings(**{"name": "m", "styles": styles, "corpus": str(corpus), **TINY, **kw})


def style_args(corpus):
    return ["--style", f"organ={corpus}/styles/organ.flac", "--style", f"{corpus}/styles/hiss.wav"]


def test_defaults_are_the_transfers():
    from rtstyle.transfer import DEFAULTS as T

    assert DEFAULTS["sr"] == T["processing_sr"]
    for key in ("features", "n_mels", "n_mfcc", "filters", "kernel_size", "activation",
                "content_weight", "style_weight"):
        assert DEFAULTS[key] == T[key], key
    assert DEFAULTS["encoder_seed"] == T["seed"]


def test_parse_style():
    assert parse_style("organ=a.wav,b.flac").references == ("a.wav", "b.flac")
    assert parse_style("dir/cello.flac").name == "cello"
    for bad in ("=a.wav", "organ=", "organ=a.wav,,b.wav", "or:gan=a.wav", ""):
        with pytest.raises(ValueError):
            parse_style(bad)


def test_smoke_cli_writes_a_loadable_model(corpus, tmp_path, capsys):
    from rtstyle.models import CARD_KEYS, load_model

    out, ck = tmp_path / "models" / "duo", tmp_path / "ck"
    out.parent.mkdir()
    code = cli.main(["train", *style_args(corpus), "--corpus", str(corpus), "-o", str(out),
                     "--steps", "4", "--val-every", "2", "--checkpoint-dir", str(ck), *TINY_ARGS])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.parent.iterdir()) == ["duo.json", "duo.safetensors"]
    model = load_model(out)
    assert model.styles == ["organ", "hiss"] and model.sr == SR and model.n_fft == 256
    card = json.loads((out.parent / "duo.json").read_text())
    assert set(CARD_KEYS) <= set(card)
    assert card["training"]["steps"] == 4 and card["training"]["threads"] == 1
    assert card["encoder"]["n_filters"] == 64 and card["features"]["kind"] == "mel"
    assert card["defaults"]["phase_init"] == "input"
    assert card["styles"][0]["references"] == ["styles/organ.flac"]
    assert "Synthetic test signal" in card["licence"] and "Synthetic organ" in card["licence"]
    q = card["quality"]["styles"]
    assert set(q) == {"organ", "hiss"} and all(v["s_content"] > 0 and v["s_ff"] > 0 for v in q.values())
    x = torch.rand(1, 129, 20)
    for k in range(2):
        y = model.net(x, k)
        assert y.shape == x.shape and torch.isfinite(y).all() and (y >= 0).all()


def test_val_style_loss_drops(corpus, tmp_path):
    from rtstyle.train import train

    res = train(settings(corpus, steps=30, val_every=10, lr=5e-3), checkpoint_dir=tmp_path / "ck")
    assert [h["step"] for h in res.history] == [10, 20, 30]
    for name, v in res.history[-1]["styles"].items():
        assert v["style"] < 0.5 * v["s_content"], (name, v)   # the identity net scores s_content
    first, last = res.history[0]["styles"], res.history[-1]["styles"]
    assert sum(v["style"] for v in last.values()) < sum(v["style"] for v in first.values())


def test_resume_after_interrupt_continues_the_same_trajectory(corpus, tmp_path):
    from rtstyle.train import train

    full = train(settings(corpus, steps=6, checkpoint_every=3), checkpoint_dir=tmp_path / "a")

    def stop_at_4(step, info):
        if step == 4:
            raise KeyboardInterrupt

    ck = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        train(settings(corpus, steps=6, checkpoint_every=3), checkpoint_dir=ck, callback=stop_at_4)
    meta = json.loads((ck / CHECKPOINT_JSON).read_text())
    assert meta["step"] == 4                       # Ctrl-C checkpoints the last finished step
    resumed = train(settings(corpus, steps=6, checkpoint_every=3), checkpoint_dir=ck,
                    resume=True)
    assert resumed.steps == 6
    a, b = full.net.state_dict(), resumed.net.state_dict()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)
    assert json.loads((ck / CHECKPOINT_JSON).read_text())["step"] == 6
    # the checkpoint's settings must match, except run keys such as --steps
    with pytest.raises(ValueError, match="other settings"):
        train(settings(corpus, steps=8, lr=1e-2), checkpoint_dir=ck, resume=True)
    longer = train(settings(corpus, steps=8), checkpoint_dir=ck, resume=True)
    assert longer.steps == 8


def test_checkpoints_hold_no_pickle(corpus, tmp_path):
    from rtstyle.train import train

    ck = tmp_path / "ck"
    train(settings(corpus, steps=2, checkpoint_every=1), checkpoint_dir=ck)
    names = sorted(os.listdir(ck))
    assert names == [CHECKPOINT_JSON, "step-0000002.safetensors"]
    meta = json.loads((ck / CHECKPOINT_JSON).read_text())
    assert meta["step"] == 2 and meta["settings"]["filters"] == 64
    assert all(isinstance(v, int) for v in meta["rng"]["state"].values())   # plain numbers
    blob = (ck / names[1]).read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    assert blob[8:9] == b"{" and sniff_pickle(ck / names[1]) is None
    assert any(k.startswith("adam.exp_avg_sq.") for k in header)
    assert any(k.startswith("net.") for k in header)
    # the JSON is JSON, not a zip (torch.save) or a pickle (0x80 protocol byte); the weights'
    # first 8 bytes are a header length, which may well start with 0x80 (3712 = 0x0E80):
    # the safetensors file is checked by its structure above, not by its first byte
    head = (ck / CHECKPOINT_JSON).read_bytes()[:4]
    assert head[:1] == b"{" and sniff_pickle(ck / CHECKPOINT_JSON) is None


def test_folder_corpus_and_cuda_fallback(corpus, tmp_path, caplog):
    from rtstyle.train import train

    folder = tmp_path / "plain"
    folder.mkdir()
    for i in range(3):
        sf.write(folder / f"{i}.wav", speechlike(SR, duration=1.0, seed=10 + i), SR)
    s = settings(folder, steps=2, device="cuda" if not torch.cuda.is_available() else "cpu",
                 styles=(parse_style(f"organ={corpus}/styles/organ.flac"),))
    with caplog.at_level("WARNING", logger="rtstyle"):
        res = train(s, checkpoint_dir=tmp_path / "ck")
    assert res.steps == 2 and res.card["training"]["corpus"]["files"] == {"train": 2, "val": 1}
    if not torch.cuda.is_available():
        assert any("CUDA is not available" in r.getMessage() for r in caplog.records)
        assert res.card["training"]["device"] == "cpu"


def _one_line(code, err, needle):
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("rtstyle") and needle in lines[0], err


@pytest.mark.parametrize("case, needle", [
    ("missing corpus", "--corpus"),
    ("empty corpus", "no content audio files"),
    ("bad style", "--style"),
    ("empty style name", "--style"),
    ("missing reference", "nothere.wav"),
    ("unreadable reference", "notaudio.wav"),
    ("duplicate style", "given twice"),
    ("output exists", "exists"),
    ("output folder", "is a folder"),
    ("checkpoint exists", "--resume"),
    ("bad steps", "steps"),
])
def test_bad_arguments_give_one_line(case, needle, corpus, tmp_path, capsys):
    out = tmp_path / "m"
    organ = f"organ={corpus}/styles/organ.flac"
    args = {"style": [organ], "corpus": str(corpus), "out": str(out), "extra": []}
    if case == "missing corpus":
        args["corpus"] = str(tmp_path / "nope")
    elif case == "empty corpus":
        (tmp_path / "empty").mkdir()
        args["corpus"] = str(tmp_path / "empty")
    elif case == "bad style":
        args["style"] = ["organ="]
    elif case == "empty style name":
        args["style"] = [f"={corpus}/styles/organ.flac"]
    elif case == "missing reference":
        args["style"] = [f"x={tmp_path}/nothere.wav"]
    elif case == "unreadable reference":
        (tmp_path / "notaudio.wav").write_text("hello")
        args["style"] = [f"x={tmp_path}/notaudio.wav"]
    elif case == "duplicate style":
        args["style"] = [organ, organ]
    elif case == "output exists":
        (tmp_path / "m.json").write_text("{}")
    elif case == "output folder":
        args["out"] = str(tmp_path)
    elif case == "checkpoint exists":
        (tmp_path / "ck").mkdir()
        (tmp_path / "ck" / CHECKPOINT_JSON).write_text("{}")
        args["extra"] = ["--checkpoint-dir", str(tmp_path / "ck")]
    elif case == "bad steps":
        args["extra"] = ["--steps", "0"]
    argv = ["train", *[a for s in args["style"] for a in ("--style", s)], "--corpus",
            args["corpus"], "-o", args["out"], "--steps", "1", *TINY_ARGS, *args["extra"]]
    if "--checkpoint-dir" not in argv:
        argv += ["--checkpoint-dir", str(tmp_path / "ck2")]
    code = cli.main(argv)
    _one_line(code, capsys.readouterr().err, needle)
    assert not out.with_suffix(".safetensors").exists()


def test_tool_script_is_the_same_command():
    tool = os.path.join(os.path.dirname(__file__), "..", "tools", "train_style.py")
    p = subprocess.run([sys.executable, tool, "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "--checkpoint-dir" in p.stdout and "examples:" in p.stdout
    p = subprocess.run([sys.executable, tool, "--corpus", "x", "-o", "y"], capture_output=True,
                       text=True)
    assert p.returncode == 2 and "--style" in p.stderr and len(p.stderr.strip().splitlines()) == 1
