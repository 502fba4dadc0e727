"""tools/make_corpus.py: a tiny corpus is complete, well-formed, listed, and reproducible."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rtstyle.io.files import audio_info, load_audio

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "make_corpus.py"
ARGS = ["--minutes-speech", "0.2", "--minutes-music", "0.4", "--styles", "organ"]


def _needs():
    missing = [t for t in ("espeak-ng", "fluidsynth") if shutil.which(t) is None]
    if not Path("/usr/share/sounds/sf2/TimGM6mb.sf2").exists():
        missing.append("TimGM6mb.sf2")
    missing += [m for m in ("music21", "soundfile", "soxr") if importlib.util.find_spec(m) is None]
    if missing:
        reason = f"needs espeak-ng, fluidsynth, timgm6mb-soundfont, music21 (missing: {missing})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)  # .ci/run installs them: a skip there would hide a broken install
        pytest.skip(reason)


def _make(out: Path, *extra: str) -> str:
    proc = subprocess.run([sys.executable, str(TOOL), "--out", str(out), *ARGS, *extra],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


def test_tiny_corpus_is_complete_listed_and_reproducible(tmp_path):
    _needs()
    a, b = tmp_path / "a", tmp_path / "b"
    _make(a)

    manifest = json.loads((a / "manifest.json").read_text(encoding="utf-8"))
    entries = {e["path"]: e for e in manifest["files"]}
    flacs = sorted(p.relative_to(a).as_posix() for p in a.rglob("*.flac"))
    assert sorted(entries) == flacs  # every file listed, nothing listed that is not there
    assert not [p for p in a.rglob(".*")]  # no temporary files left behind

    speech = [p for p in flacs if p.startswith("content/speech/")]
    music = [p for p in flacs if p.startswith("content/music/")]
    assert len(speech) >= 2 and len(music) >= 2 and flacs[-1] == "styles/organ.flac"
    for part in (speech, music):
        splits = [entries[p]["split"] for p in part]
        assert splits[1] == "val" and splits.count("val") == 1  # file 1 is held out
    assert entries["content/speech/" + speech[0].split("/")[-1]]["source"]["text"]
    assert entries[music[0]]["source"]["work"].startswith(("bach/", "haydn/", "mozart/"))
    organ = entries["styles/organ.flac"]
    assert organ["source"]["gm_program"] == 20 and "split" not in organ
    assert len(organ["source"]["segments"]) >= 2
    assert any("TimGM6mb" in line for line in organ["licence"])

    for rel in flacs:
        info = audio_info(a / rel)
        assert info.sr == 22050 and info.channels == 1
        y, _ = load_audio(a / rel)
        assert y.dtype == np.float32
        assert abs(entries[rel]["duration_s"] - y.shape[-1] / 22050) < 1e-3
        assert 0.85 < np.max(np.abs(y)) <= 10 ** (-1 / 20) + 1e-4  # peak at -1 dBFS
        assert 20 * np.log10(np.sqrt(np.mean(y**2))) > -35  # not silent
    assert 20 <= entries["styles/organ.flac"]["duration_s"] <= 40

    # Again into the same folder: every file is kept, nothing changes.
    before = _files(a)
    out = _make(a)
    assert out.count("  kept") == len(flacs) and " made in " not in out
    assert _files(a) == before
    # Again from scratch elsewhere: the same bytes.
    _make(b)
    assert _files(b) == before
