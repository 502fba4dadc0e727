"""Benchmarks that print tables (not timed tests). Grows with every issue.

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

Run it alone on the machine; pin one thread for per-core figures:
``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 taskset -c 0 python tools/bench.py phase``.
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
#: momentum is the default (with look-ahead 0.5 for input, 0.9 otherwise; 0 without).
STREAM_SETTINGS = {
    "rtpghi la0, 16 it": dict(init="rtpghi", lookahead=0, n_iter=16),
    "rtpghi la1, 16 it (default)": dict(init="rtpghi", lookahead=1, n_iter=16),
    "rtpghi la1, 4 it": dict(init="rtpghi", lookahead=1, n_iter=4),
    "rtpghi la2, 16 it": dict(init="rtpghi", lookahead=2, n_iter=16),
    "rtpghi la3, 8 it, centred PGHI": dict(init="rtpghi", lookahead=3, n_iter=8, pghi_lookahead=1),
    "rtpghi la3, 16 it": dict(init="rtpghi", lookahead=3, n_iter=16),
    "random la1, 16 it": dict(init="random", lookahead=1, n_iter=16),
    "random la3, 16 it": dict(init="random", lookahead=3, n_iter=16),
    "input la1, 16 it (modified magnitudes)": dict(init="input", lookahead=1, n_iter=16),
}


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
        "librosa.griffinlim(n_iter=32)": lambda S, D, n: librosa.griffinlim(S, n_iter=32, length=n, **opts),
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
                rows.append({"clip": clip, "target": target, "method": name,
                             "sc_db": spectral_convergence(out, S, **opts),
                             "cpu_s_per_s": cpu / (y.size / sr)})
    return rows


#: Rows of the modified-magnitude table (a subset of the methods, by name).
MODIFIED_ROWS = ("librosa", "rtpghi la1, 16 it (default)", "input la1")


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("table", choices=["phase"])
    p.add_argument("--sr", type=int, default=22050)
    p.add_argument("--n-fft", type=int, default=1024)
    p.add_argument("--hop-length", type=int, default=256)
    p.add_argument("--live-sr", type=int, default=48000, help="rate of the live-cost table")
    p.add_argument("--json", help="also write the rows as JSON")
    args = p.parse_args(argv)
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
