"""Benchmarks that print tables (not timed tests). Grows with every issue.

``net``: per-frame inference of a model's net (one frame per call, as live). ``render``: the
real-time factor of ``rtstyle render`` on 10-s files (mono, stereo, 44.1 kHz resampled; file
I/O included) and its peak memory on a 1-minute and a 30-minute file (``--with-transfer``
also times the seed's optimisation on the same clip: the 1000x comparison).

    python tools/bench.py net [--model NAME] [--threads N]
    python tools/bench.py render [--model NAME] [--long-minutes 30] [--with-transfer] [--threads N]

Both measure the product's defaults: the engine's own thread policy (one torch thread per
stream, :mod:`rtstyle.stream.threads`) unless ``--threads N`` asks for another count, exactly as
``rtstyle render --threads N`` would; nothing is pinned by the bench or the environment.

``busy``: a default ``rtstyle render`` of a 60-s file (the ``rtstyle`` command, start-up
included) on an idle machine, then with two busy-looping processes beside it; wall times and
their ratio (issue 13's target: within 2x). ``--threads N`` (repeatable) adds runs at other
thread counts for comparison.

    python tools/bench.py busy [--model NAME] [--seconds 60] [--spinners 2] [--threads N ...]

``live``: ``rtstyle live`` on a real JACK dummy server (jackd2), played into and recorded by a
second client (``tests/jack_rig.py``): reported latency, measured round trip (clicks), dropouts,
xruns and worker times per run.

    python tools/bench.py live [--case STYLE@SR/PERIOD[/BLOCK] ...] [--seconds 60] [--busy]

``phase``: phase reconstruction from the exact magnitude of real and synthetic clips — spectral
convergence (SC, dB, lower is better; same STFT as the target) and CPU seconds per second of
audio (``time.process_time``: CPU time of this process, all threads) for offline
``librosa.griffinlim(n_iter=32)`` (fast GL, momentum 0.99), plain GL-32 (momentum 0), rtstyle's
offline fast GL-100, and each streaming setting of :class:`rtstyle.dsp.phase_stream.StreamingPhase`.

    python tools/bench.py phase [--n-fft 1024 --hop-length 256] [--live-sr 48000] [--json FILE]

Three tables: SC and CPU per second of audio from exact magnitudes (the issue's comparison),
the same from modified magnitudes (a moving EQ: what a style transform does to them; here
``init='input'`` starts from the unmodified phase), and the live cost of one frame per call at
``--live-sr`` (microseconds per hop and the share of one core).

Run it alone on the machine; pin one core for per-core figures:
``taskset -c 0 python tools/bench.py phase``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _clips(sr: int) -> dict:
    from rtstyle.io.files import load_audio

    sys.path.insert(0, str(ROOT / "tests"))
    import conftest  # the test suite's synthetic signals: one place for them

    clips = {name: load_audio(ROOT / "examples" / f"{name}.flac", sr=sr, mono=True)[0]
             for name in ("speech", "melody")}
    clips["speechlike"] = conftest.speechlike(sr, duration=5.0)
    clips["chirp"] = conftest.chirp(sr, duration=5.0)
    return clips


#: Streaming settings in the phase table: (init, look-ahead, iterations, [pghi_lookahead]);
#: momentum is the default (with look-ahead 0.5 for input, 0.9 otherwise; 0 without). The
#: defaults are 4 iterations from the input's phase, 16 from RTPGHI or random phases.
STREAM_SETTINGS = {
    "rtpghi la0, 16 it": dict(init="rtpghi", lookahead=0, n_iter=16),
    "rtpghi la1, 16 it (rtpghi default)": dict(init="rtpghi", lookahead=1, n_iter=16),
    "rtpghi la1, 4 it": dict(init="rtpghi", lookahead=1, n_iter=4),
    "rtpghi la2, 16 it": dict(init="rtpghi", lookahead=2, n_iter=16),
    "rtpghi la3, 8 it, centred PGHI": dict(init="rtpghi", lookahead=3, n_iter=8, pghi_lookahead=1),
    "rtpghi la3, 16 it": dict(init="rtpghi", lookahead=3, n_iter=16),
    "random la1, 16 it": dict(init="random", lookahead=1, n_iter=16),
    "random la3, 16 it": dict(init="random", lookahead=3, n_iter=16),
    "input la1, 4 it (engine default)": dict(init="input", lookahead=1, n_iter=4),
    "input la1, 16 it (modified magnitudes)": dict(init="input", lookahead=1, n_iter=16),
}


#: librosa.griffinlim runs (random initial phases, seeds 0..N-1) whose median SC is reported.
LIBROSA_SEEDS = 5


def _timed(fn):
    t = time.process_time()
    out = fn()
    return out, time.process_time() - t


def phase_table(*, sr: int, n_fft: int, hop_length: int) -> list[dict]:
    import librosa

    from rtstyle.dsp.griffinlim import griffinlim
    from rtstyle.dsp.metrics import spectral_convergence
    from rtstyle.dsp.phase_stream import process
    from rtstyle.dsp.stft import stft

    opts = dict(n_fft=n_fft, hop_length=hop_length)
    librosa.griffinlim(np.ones((1 + n_fft // 2, 8), np.float32), n_iter=1, **opts)  # warm-up
    methods = {
        # librosa starts from random phases: the median over 5 seeds, so one draw can't decide.
        "librosa.griffinlim(n_iter=32)": lambda S, D, n: [
            librosa.griffinlim(S, n_iter=32, length=n, random_state=seed, **opts)
            for seed in range(LIBROSA_SEEDS)],
        "plain GL-32 (momentum 0)": lambda S, D, n: griffinlim(S, n_iter=32, momentum=0.0, length=n, **opts),
        "fast GL-100 (momentum 0.99)": lambda S, D, n: griffinlim(S, n_iter=100, length=n, **opts),
    }
    for name, kw in STREAM_SETTINGS.items():
        methods[f"stream {name}"] = (
            lambda S, D, n, kw=kw: process(S, D_in=D if kw["init"] == "input" else None, **kw, **opts))
    rows = []
    for clip, y in _clips(sr).items():
        D = stft(y.astype(np.float64), **opts)
        for target in ("exact", "modified"):
            # exact: |STFT(y)|. modified: |STFT(y)| under a slowly moving +-6 dB EQ, as a style
            # transform would change it; D keeps y's phase (what init='input' starts from).
            S = np.abs(D) if target == "exact" else np.abs(D) * _moving_eq(D.shape, sr, hop_length)
            for name, fn in methods.items():
                if target == "exact" and "modified" in name:
                    continue
                if target == "modified" and not any(k in name for k in MODIFIED_ROWS):
                    continue
                out, cpu = _timed(lambda: fn(S, D, y.size))
                outs = out if isinstance(out, list) else [out]
                sc = float(np.median([spectral_convergence(o, S, **opts) for o in outs]))
                rows.append({"clip": clip, "target": target, "method": name, "sc_db": sc,
                             "cpu_s_per_s": cpu / len(outs) / (y.size / sr)})
    return rows


#: Rows of the modified-magnitude table (a subset of the methods, by name).
MODIFIED_ROWS = ("librosa", "rtpghi la1, 16 it (rtpghi default)", "input la1")


def _moving_eq(shape, sr, hop_length, seed=0):
    """A smooth gain over (bins, frames): +-6 dB, changing over ~1/3 octave and ~0.5 s."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    bins, frames = shape
    logf = np.log2(np.arange(1, bins + 1))             # octaves above the first bin
    coarse = rng.uniform(-1, 1, (int(np.ceil(logf[-1] * 3)) + 2, frames))
    coarse = gaussian_filter(coarse, sigma=(1.0, 0.5 * sr / hop_length / 2))
    coarse /= np.abs(coarse).max()
    rows = np.interp(logf * 3, np.arange(coarse.shape[0]), np.arange(coarse.shape[0]))
    eq_db = 6.0 * np.stack([np.interp(rows, np.arange(coarse.shape[0]), coarse[:, t])
                            for t in range(frames)], axis=1)
    return 10.0 ** (eq_db / 20.0)


def per_hop_table(*, sr: int = 48000, n_fft: int = 1024, hop_length: int = 256) -> list[dict]:
    """Live cost: one frame per call at ``sr``; microseconds per hop and the share of one core."""
    from rtstyle.dsp.phase_stream import StreamingPhase
    from rtstyle.dsp.stft import stft
    from rtstyle.io.files import load_audio

    y = load_audio(ROOT / "examples" / "speech.flac", sr=sr, mono=True)[0].astype(np.float64)
    D = stft(y, n_fft=n_fft, hop_length=hop_length)[None]
    S = np.abs(D)
    rows = []
    for name, kw in STREAM_SETTINGS.items():
        sp = StreamingPhase(n_fft=n_fft, hop_length=hop_length, **kw)
        sp.feed(S[..., :8], D[..., :8])                  # compile and warm up
        sp.reset()
        times = []
        for t in range(S.shape[-1]):
            t0 = time.process_time()
            sp.feed(S[..., t:t + 1], D[..., t:t + 1])
            times.append(time.process_time() - t0)
        total = sum(times) / S.shape[-1]
        rows.append({"method": f"stream {name}", "sr": sr, "n_fft": n_fft, "hop_length": hop_length,
                     "us_per_hop_mean": 1e6 * total,
                     "core_share": total * sr / hop_length})
    return rows


def markdown(rows: list[dict]) -> str:
    clips = list(dict.fromkeys(r["clip"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["clip"], r["method"]): r for r in rows}
    if not methods:
        return ""
    lines = ["| method | " + " | ".join(f"{c} SC dB" for c in clips) + " | CPU s per s (median) |",
             "|---|" + "---:|" * (len(clips) + 1)]
    for m in methods:
        cpu = np.median([cell[(c, m)]["cpu_s_per_s"] for c in clips])
        lines.append(f"| {m} | " + " | ".join(f"{cell[(c, m)]['sc_db']:.1f}" for c in clips) + f" | {cpu:.3f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------ nets and render


def net_table(model: str, *, threads: int | None = None, calls: int = 2000) -> list[dict]:
    """Per-frame inference of a model's net, one frame per call (live), on the engine's thread
    policy (``threads``: its default unless given)."""
    import torch

    from rtstyle.models import load_model
    from rtstyle.stream.threads import DEFAULT_THREADS, use_threads

    threads = DEFAULT_THREADS if threads is None else threads
    import copy

    m = load_model(model)
    use_threads(threads)                         # as the engine does when it starts
    rows = []
    for dtype, batch in ((torch.float64, 1), (torch.float64, 2), (torch.float32, 1)):
        net = copy.deepcopy(m.net).to(dtype)     # the Streamer runs float64 (block-invariant)
        net.reset(batch)
        x = torch.rand(batch, net.config.bins, 1, dtype=dtype)
        for _ in range(50):
            net.feed(x, 0)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            net.feed(x, 0)
            times.append(time.perf_counter() - t0)
        whole = torch.rand(1, net.config.bins, 861, dtype=dtype)  # 10 s at 22050/256
        t0 = time.perf_counter()
        with torch.inference_mode():
            net(whole, 0)
        rows.append({"model": m.name, "dtype": str(dtype).split(".")[-1], "channels": batch,
                     "threads": threads,
                     "params": sum(p.numel() for p in net.parameters()),
                     "us_per_frame_median": 1e6 * float(np.median(times)),
                     "us_per_frame_p99": 1e6 * float(np.percentile(times, 99)),
                     "whole_10s_ms": 1e3 * (time.perf_counter() - t0)})
    return rows


def _peak_rss_mb(code: str) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter; its peak resident memory (MB) and its stdout."""
    import subprocess

    wrapper = code + "\nimport resource; print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    rss = [float(line.split()[1]) / 1024 for line in out.splitlines() if line.startswith("RSS")]
    return rss[0], out


def _long_file(path: Path, *, sr: int, minutes: float) -> None:
    """A speech-and-melody file of ``minutes`` written block by block (never all in memory)."""
    from rtstyle.io.files import AudioWriter, load_audio

    if path.exists():
        return
    loop = np.concatenate([load_audio(ROOT / "examples" / f"{n}.flac", sr=sr, mono=True)[0]
                           for n in ("speech", "melody")])
    total = int(minutes * 60 * sr)
    with AudioWriter(path, sr=sr, channels=1) as w:
        done = 0
        while done < total:
            n = min(loop.size, total - done)
            w.write(loop[None, :n])
            done += n


def render_table(style: str | None, *, threads: int | None = None, long_minutes: float = 30.0,
                 with_transfer: bool = False) -> list[dict]:
    """``rtstyle render`` speed (file I/O included) and memory against the input's length, at
    the product's thread policy (``threads``: ``render(threads=...)``, its default unless
    given)."""
    import tempfile

    import soundfile as sf

    from rtstyle.io.files import load_audio, resample

    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="rtstyle-bench-"))
    y, sr = load_audio(ROOT / "examples" / "speech.flac", mono=True)
    y10 = np.concatenate([y, y])[: 10 * sr]                              # 10 s
    sf.write(tmp / "mono.wav", y10, sr, subtype="PCM_16")
    sf.write(tmp / "stereo.wav", np.stack([y10, np.roll(y10, 4000)]).T, sr, subtype="PCM_16")
    sf.write(tmp / "mono44k.wav", resample(y10, orig_sr=sr, target_sr=44100), 44100,
             subtype="PCM_16")
    style_arg = ("" if style is None else f", style={style!r}") + (
        "" if threads is None else f", threads={threads}")
    for name in ("mono", "stereo", "mono44k"):
        code = ("import time; from rtstyle.render import render_file; "
                f"render_file({str(tmp / (name + '.wav'))!r}, {str(tmp / (name + '_out.wav'))!r}"
                f"{style_arg}, overwrite=True); t=time.perf_counter(); "
                f"info = render_file({str(tmp / (name + '.wav'))!r}, "
                f"{str(tmp / (name + '_out.wav'))!r}{style_arg}, overwrite=True); "
                "print('RTF', info['rtf'], time.perf_counter()-t, info['styles'][0])")
        rss, out = _peak_rss_mb(code)
        line = next(x for x in out.splitlines() if x.startswith("RTF")).split()
        rows.append({"case": f"10 s {name}", "rtf": float(line[1]), "wall_s": float(line[2]),
                     "style": line[3], "peak_rss_mb": rss})
    for minutes in (1.0, long_minutes):
        path = tmp / f"long{minutes:g}.flac"
        _long_file(path, sr=sr, minutes=minutes)
        code = ("from rtstyle.render import render_file; "
                f"info = render_file({str(path)!r}, {str(tmp / 'long_out.flac')!r}{style_arg}, "
                "overwrite=True); print('RTF', info['rtf'], info['startup_s'])")
        rss, out = _peak_rss_mb(code)
        _, rtf, startup = next(x for x in out.splitlines() if x.startswith("RTF")).split()
        # the report's rtf is the audio's cost; the wall time adds the one-off start
        rows.append({"case": f"{minutes:g} min mono (flac)", "rtf": float(rtf),
                     "wall_s": float(rtf) * minutes * 60 + float(startup),
                     "style": rows[0]["style"], "peak_rss_mb": rss})
    if with_transfer:
        import rtstyle

        t0 = time.perf_counter()
        rtstyle.transfer(y10, y10[::-1].copy(), sr=sr, features="stft", filters=4096,
                         iterations=300, phase_iters=500, activation="relu", init="random",
                         content_weight=4.2)
        rows.append({"case": "10 s: rtstyle transfer at the seed's baseline settings",
                     "rtf": (time.perf_counter() - t0) / 10, "wall_s": time.perf_counter() - t0,
                     "style": "(optimisation)", "peak_rss_mb": None})
    return rows


def busy_table(style: str | None, *, seconds: float = 60.0, spinners: int = 2,
               threads: tuple = (None,), python: str = sys.executable) -> list[dict]:
    """A default ``rtstyle render`` of a ``seconds``-long file (the command as a user runs it,
    start-up included), on the idle machine and then beside ``spinners`` busy-looping
    processes: wall seconds of each and their ratio. ``threads``: ``None`` (the product's
    default, no flag) and any ``--threads N`` to compare; ``style`` None: no ``--style``."""
    import os
    import subprocess
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="rtstyle-bench-busy-"))
    src = tmp / "in.flac"
    _long_file(src, sr=22050, minutes=seconds / 60)
    rows = []
    for n in threads:
        cmd = [python, "-m", "rtstyle", "render", str(src), "-o", str(tmp / "out.wav"),
               "--overwrite", "-q", *([] if style is None else ["--style", style]),
               *([] if n is None else ["--threads", str(n)])]
        row = {"threads": "default" if n is None else n, "seconds": seconds,
               "spinners": spinners, "load_before": os.getloadavg()[0]}
        for case in ("idle", "busy"):
            spin = [subprocess.Popen([python, "-c", "while True: pass"])
                    for _ in range(spinners if case == "busy" else 0)]
            try:
                if spin:
                    time.sleep(1.0)               # the spinners are running
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, cwd=ROOT)
                row[f"{case}_s"] = time.perf_counter() - t0
            finally:
                for proc in spin:
                    proc.kill()
                    proc.wait()
        row["ratio"] = row["busy_s"] / row["idle_s"]
        rows.append(row)
    return rows


def live_table(cases: list[str], *, seconds: float = 60.0, busy: bool = False,
               live_args: tuple = (), python: str = sys.executable) -> list[dict]:
    """``rtstyle live`` on a real JACK dummy server, measured from outside by a second client.

    Each case ``STYLE@SR/PERIOD[/BLOCK]`` starts ``jackd --no-realtime -d dummy -r SR -p
    PERIOD``, runs ``rtstyle live --style STYLE --block-size BLOCK`` (default: the period) in
    its own process with ``--report``, and plays a speech-like signal with a click every second
    into it through the rig of ``tests/jack_rig.py``, recording its output on the server's frame
    clock: the clicks' lags are the measured round trip. ``busy`` keeps the other core busy
    (a spinning process) for the run; ``live_args`` are added to each ``rtstyle live``.
    A styled click is not always found by the matched filter, so besides the median the rows
    count the clicks within one period of it (``clicks_at_median``).
    """
    import os
    import subprocess
    import tempfile

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import speechlike
    from jack_rig import JackServer, Rig

    from rtstyle.live import click_template, find_clicks

    why = JackServer.available()
    if why:
        raise SystemExit(f"bench live: {why}")
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="rtstyle-bench-live-"))
    for i, case in enumerate(cases):
        style, _, rest = case.partition("@")
        parts = [int(x) for x in rest.split("/") if x]
        sr = parts[0] if parts else 22050
        period = parts[1] if len(parts) > 1 else 256
        block = parts[2] if len(parts) > 2 else period
        server = JackServer(f"rtbench{os.getpid()}_{i}", sr=sr, period=period)
        server.start()
        spin = live = None
        report = tmp / f"live{i}.json"
        try:
            if busy:
                spin = subprocess.Popen([python, "-c", "while True: pass"])
            live = subprocess.Popen(
                [python, "-m", "rtstyle", "live", "--style", style, "--block-size", str(block),
                 "--duration", str(seconds + 30), "--report", str(report), "--no-keys",
                 "--overwrite", *live_args],
                env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            rig = Rig(server.name)
            try:
                rig.wait_for_ports("rtstyle", timeout=120)
                rig.connect("rtstyle")
                time.sleep(0.5)
                n = int(seconds * sr)
                sig = 0.5 * speechlike(sr, duration=seconds, seed=11)
                tpl = click_template(sr)
                starts = list(range(sr // 2, n - sr + 1, sr))
                for s in starts:                  # a click over a short gap in the speech
                    sig[s - 2000:s + 2000] = 0.0
                    sig[s:s + tpl.size] = tpl
                rig.play(sig, n + sr)
                rig.wait(seconds + 60)
                rig_xruns = rig.xruns
                rec = rig.recording
            finally:
                rig.close()
            err = live.communicate(timeout=seconds + 120)[1].decode(errors="replace")
            if live.returncode != 0:
                raise SystemExit(f"bench live: rtstyle live failed ({live.returncode}): "
                                 f"{err.strip()[-400:]}")
        finally:
            for proc in (live, spin):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
            server.stop()
        rep = json.loads(report.read_text())
        lags = np.asarray(find_clicks(rec, starts, tpl, sr // 2))
        win, hop = rep["n_fft"] * sr / rep["model_sr"], rep["hop_length"] * sr / rep["model_sr"]
        rows.append({
            "style": style, "styles": rep["styles"], "sr": sr, "model_sr": rep["model_sr"],
            "period": period, "block": block, "n_fft": rep["n_fft"],
            "hop_length": rep["hop_length"], "seconds": seconds, "busy": busy,
            "latency_samples": rep["latency_samples"],
            "round_trip_samples": int(np.median(lags)) if lags.size else None,
            "round_trip_min": int(lags.min()) if lags.size else None,
            "round_trip_max": int(lags.max()) if lags.size else None,
            "clicks_found": int(lags.size), "clicks": len(starts),
            "clicks_at_median": int(np.sum(np.abs(lags - np.median(lags)) <= period))
            if lags.size else 0, "live_args": list(live_args),
            "bound_samples": int(round(win + hop + 2 * block)),
            "dropouts": rep["dropouts"], "xruns": rep["xruns"], "rig_xruns": rig_xruns,
            "worker_p50_ms": rep["worker_p50_ms"], "worker_p99_ms": rep["worker_p99_ms"],
            "deadline_ms": rep["deadline_ms"]})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("table", choices=["phase", "net", "render", "live", "busy"])
    p.add_argument("--case", action="append", metavar="STYLE@SR/PERIOD[/BLOCK]",
                   help="live table: a run (repeat; default: the default style list at "
                        "22050/256)")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="live table: seconds per run; busy table: the file's length")
    p.add_argument("--live-args", default="", metavar="'ARGS'",
                   help="live table: more rtstyle live options for every run, e.g. '--margin 10'")
    p.add_argument("--busy", action="store_true",
                   help="live table: keep the other core busy (a spinning process)")
    p.add_argument("--model", default=None,
                   help="net/render tables: model or style (default: the first listed style)")
    p.add_argument("--threads", type=int, action="append", default=None,
                   help="net/render: the engine's threads (default: the product's, one per "
                        "stream); busy: also run with --threads N (repeatable)")
    p.add_argument("--spinners", type=int, default=2,
                   help="busy table: busy-looping processes beside the render")
    p.add_argument("--long-minutes", type=float, default=30.0,
                   help="render table: length of the long file for the memory check")
    p.add_argument("--with-transfer", action="store_true",
                   help="render table: also time rtstyle transfer at the seed's baseline settings "
                        "on the same 10-s clip (about 5 minutes)")
    p.add_argument("--sr", type=int, default=22050)
    p.add_argument("--n-fft", type=int, default=1024)
    p.add_argument("--hop-length", type=int, default=256)
    p.add_argument("--live-sr", type=int, default=48000, help="rate of the live-cost table")
    p.add_argument("--json", help="also write the rows as JSON")
    args = p.parse_args(argv)
    if args.table == "live":
        from rtstyle.render import style_list

        cases = args.case or [f"{','.join(style_list())}@22050/256"]
        import shlex

        rows = live_table(cases, seconds=args.seconds, busy=args.busy,
                          live_args=tuple(shlex.split(args.live_args)))
        print(f"rtstyle live on a JACK dummy server, {args.seconds:g} s per run"
              f"{', other core busy' if args.busy else ''}"
              f"{'; live ' + args.live_args if args.live_args else ''}; round trip = median lag "
              "of the clicks played into rtstyle:in_0 and recorded at rtstyle:out_0\n")
        print("| style | device sr | model sr | n_fft/hop | period/block | reported latency | "
              "measured round trip | window+hop+2 blocks | dropouts | xruns | worker p50/p99 "
              "(deadline) ms |\n|---|---:|---:|---|---|---:|---:|---:|---:|---:|---|")
        for r in rows:
            ms = 1000.0 / r["sr"]
            rt = ("no click found" if r["round_trip_samples"] is None else
                  f"{r['round_trip_samples']} ({r['round_trip_samples'] * ms:.1f} ms; "
                  f"{r['clicks_at_median']}/{r['clicks']} clicks within a period of it)")
            print(f"| {r['style']} | {r['sr']} | {r['model_sr']} | {r['n_fft']}/{r['hop_length']} "
                  f"| {r['period']}/{r['block']} | {r['latency_samples']} "
                  f"({r['latency_samples'] * ms:.1f} ms) | {rt} | {r['bound_samples']} "
                  f"({r['bound_samples'] * ms:.1f} ms) | {r['dropouts']} | {r['xruns']} "
                  f"(rig {r['rig_xruns']}) | {r['worker_p50_ms']:.2f}/{r['worker_p99_ms']:.2f} "
                  f"({r['deadline_ms']:.1f}) |")
    if args.table == "live" and args.json:
        from rtstyle.io.files import atomic_output

        with atomic_output(args.json, overwrite=True) as tmp:
            tmp.write_text(json.dumps(rows, indent=1) + "\n")
    if args.table == "live":
        return 0
    if args.table == "busy":
        rows = busy_table(args.model, seconds=args.seconds, spinners=args.spinners,
                          threads=(None, *(args.threads or ())))
        print(f"rtstyle render of a {args.seconds:g}-s file (the command, start-up included), "
              f"style {args.model or 'default'}: idle, then beside {args.spinners} busy-looping "
              "processes\n")
        print("| threads | idle wall s | busy wall s | busy / idle |\n|---|---:|---:|---:|")
        for r in rows:
            print(f"| {r['threads']} | {r['idle_s']:.2f} | {r['busy_s']:.2f} | "
                  f"{r['ratio']:.2f} |")
        if args.json:
            from rtstyle.io.files import atomic_output

            with atomic_output(args.json, overwrite=True) as tmp:
                tmp.write_text(json.dumps(rows, indent=1) + "\n")
        return 0
    if args.table in ("net", "render"):
        from rtstyle.render import DEFAULTS, style_list

        style = args.model or style_list()[0]
        threads = args.threads[-1] if args.threads else None
        shown = threads or f"{DEFAULTS['threads']} (the default)"
        if args.table == "net":
            rows = net_table(style.split(":")[0], threads=threads)
            print(f"per-frame inference, one frame per call, {shown} thread(s)\n")
            print("| model | dtype | channels | parameters | median us/frame | p99 us/frame | "
                  "whole 10 s (861 frames) ms |\n|---|---|---:|---:|---:|---:|---:|")
            for r in rows:
                print(f"| {r['model']} | {r['dtype']} | {r['channels']} | {r['params']:,} | "
                      f"{r['us_per_frame_median']:.0f} | {r['us_per_frame_p99']:.0f} | "
                      f"{r['whole_10s_ms']:.0f} |")
        else:
            rows = render_table(style, threads=threads, long_minutes=args.long_minutes,
                                with_transfer=args.with_transfer)
            print(f"rtstyle render (file I/O included), style {style}, {shown} torch "
                  "thread(s)\n")
            print("| case | RTF | wall s | peak RSS MB |\n|---|---:|---:|---:|")
            for r in rows:
                rss = "" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}"
                print(f"| {r['case']} | {r['rtf']:.4f} | {r['wall_s']:.2f} | {rss} |")
        if args.json:
            from rtstyle.io.files import atomic_output

            with atomic_output(args.json, overwrite=True) as tmp:
                tmp.write_text(json.dumps(rows, indent=1) + "\n")
        return 0
    rows = phase_table(sr=args.sr, n_fft=args.n_fft, hop_length=args.hop_length)
    for target, title in (("exact", "from exact magnitudes"),
                          ("modified", "from modified magnitudes (moving +-6 dB EQ; input phase "
                                       "= the unmodified signal's)")):
        print(f"\nphase reconstruction {title}, sr={args.sr}, n_fft={args.n_fft}, "
              f"hop_length={args.hop_length}\n")
        print(markdown([r for r in rows if r["target"] == target]))
    hops = per_hop_table(sr=args.live_sr, n_fft=args.n_fft, hop_length=args.hop_length)
    print(f"\nlive cost, one frame per call, sr={args.live_sr}, n_fft={args.n_fft}, "
          f"hop_length={args.hop_length} (CPU time of this process; run pinned to one core)\n")
    print("| method | us per hop | share of one core |\n|---|---:|---:|")
    for r in hops:
        print(f"| {r['method']} | {r['us_per_hop_mean']:.0f} | {100 * r['core_share']:.1f} % |")
    if args.json:
        from rtstyle.io.files import atomic_output

        with atomic_output(args.json, overwrite=True) as tmp:
            tmp.write_text(json.dumps({"phase": rows, "live": hops}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
