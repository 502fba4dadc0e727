"""The engine's thread policy (issue 13, item 3; :mod:`rtstyle.stream.threads`).

``render`` and ``live`` run torch on one thread per stream by default, set where the engine
starts (no environment variable), ``--threads N`` / ``threads=N`` change it, and torch gets its
previous count back when the render or the session ends. The count is observed where the work
happens: inside the Streamer's ``feed`` (render) and in the live worker thread.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import harmonic, save_tiny_model

ROOT = Path(__file__).resolve().parents[1]
SR = 16000                    # conftest's tiny models run at 16 kHz


@pytest.fixture
def torch_threads():
    """torch at 3 threads (neither the default 1 nor a --threads 2), restored after the test."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(3)
    yield torch
    torch.set_num_threads(old)


@pytest.fixture
def seen_in_feed(monkeypatch):
    """torch's thread count at every Streamer.feed call."""
    import torch

    from rtstyle.stream import Streamer

    seen, real = [], Streamer.feed

    def feed(self, block):
        seen.append(torch.get_num_threads())
        return real(self, block)

    monkeypatch.setattr(Streamer, "feed", feed)
    return seen


@pytest.mark.parametrize("threads", [None, 2])
def test_render_runs_the_engine_on_one_thread_unless_told(tmp_path, torch_threads, seen_in_feed,
                                                          threads):
    import rtstyle

    _, path = save_tiny_model(tmp_path)
    kw = {} if threads is None else {"threads": threads}
    y = 0.3 * harmonic(SR, duration=1.0)
    out, info = rtstyle.render(y, sr=SR, style=str(path), block_size=1024, **kw)
    want = 1 if threads is None else threads
    assert seen_in_feed and set(seen_in_feed) == {want}
    assert info["threads"] == want
    assert torch_threads.get_num_threads() == 3          # the caller's setting is back


def test_render_command_threads_flag_and_report(tmp_path, torch_threads, seen_in_feed):
    import soundfile as sf

    from rtstyle.cli import main

    _, path = save_tiny_model(tmp_path)
    sf.write(tmp_path / "in.wav", 0.3 * harmonic(SR, duration=1.0), SR)
    for flag, want in (([], 1), (["--threads", "2"], 2)):
        seen_in_feed.clear()
        rc = main(["render", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav"), "-q",
                   "--style", str(path), "--overwrite", "--report", str(tmp_path / "r.json"),
                   *flag])
        assert rc == 0
        assert set(seen_in_feed) == {want}
        assert json.loads((tmp_path / "r.json").read_text())["threads"] == want
    assert torch_threads.get_num_threads() == 3
    with pytest.raises(SystemExit) as e:
        main(["render", str(tmp_path / "in.wav"), "-o", str(tmp_path / "o2.wav"),
              "--threads", "0"])
    assert e.value.code == 2


@pytest.mark.parametrize("flag, want", [([], 1), (["--threads", "2"], 2)])
def test_live_worker_runs_the_engine_on_one_thread_unless_told(tmp_path, monkeypatch, capsys,
                                                               torch_threads, flag, want):
    """``rtstyle live`` with a stand-in sound card: the worker thread's torch runs on ``want``
    threads; the report and a saved preset carry the setting; torch is given back at exit."""
    import torch

    import rtstyle.io
    from rtstyle import cli
    from rtstyle.live import LiveEngine, load_preset
    from test_live_midi import _FakeAudio, save_styles

    models = save_styles(tmp_path / "models")
    fake = _FakeAudio({})
    monkeypatch.setitem(sys.modules, "rtstyle.io.audio", fake)
    monkeypatch.setattr(rtstyle.io, "audio", fake, raising=False)
    seen, real = [], LiveEngine.feed

    def feed(self, x):
        seen.append(torch.get_num_threads())
        return real(self, x)

    monkeypatch.setattr(LiveEngine, "feed", feed)
    report, preset = tmp_path / "r.json", tmp_path / "p.toml"
    rc = cli.main(["live", "--style", "mA", "--models-dir", str(models), "--no-keys", "-q",
                   "--duration", "0.5", "--report", str(report), "--save-preset", str(preset),
                   *flag])
    assert rc == 0, capsys.readouterr().err
    assert seen and set(seen) == {want}
    r = json.loads(report.read_text())
    assert r["threads"] == want and r["settings"]["threads"] == want
    assert r["envelope"] == r["settings"]["envelope"] == "follow"      # as render's report
    assert load_preset(preset)["threads"] == want
    assert torch_threads.get_num_threads() == 3


def test_live_threads_are_validated():
    from rtstyle.errors import ParameterError
    from rtstyle.live import LiveSession

    with pytest.raises(ParameterError, match="threads"):
        LiveSession({"threads": 0})


def test_numba_kernels_run_on_the_calling_thread():
    """Nothing to set for numba: no kernel of rtstyle is compiled with parallel=True."""
    hits = [str(p.relative_to(ROOT)) for p in (ROOT / "rtstyle").rglob("*.py")
            if re.search(r"jit\([^)]*parallel\s*=\s*True|\bprange\(", p.read_text())]
    assert hits == []


def test_bench_measures_the_products_defaults():
    """tools/bench.py no longer pins torch to one thread: its render figures are the product's
    defaults, and it has a busy-machine case."""
    text = (ROOT / "tools" / "bench.py").read_text()
    assert "set_num_threads" not in text and "OMP_NUM_THREADS=1" not in text
    assert "def busy_table" in text
