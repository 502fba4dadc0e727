"""Benchmarks that print tables (not timed tests). Grows with every issue.

``phase``: phase reconstruction from the exact magnitude of real and synthetic clips — spectral
convergence (SC, dB, lower is better; same STFT as the target) and CPU seconds per second of
audio (``time.process_time``: CPU time of this process, all threads) for offline
``librosa.griffinlim(n_iter=32)`` (fast GL, momentum 0.99), plain GL-32 (momentum 0), rtstyle's
offline fast GL-100, and each streaming setting of :class:`rtstyle.dsp.phase_stream.StreamingPhase`.

    python tools/bench.py phase [--n-fft 1024 --hop-length 256] [--json out/bench_phase.json]

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
    for init in ("rtpghi", "random"):
        for la in (0, 1, 3):
            methods[f"stream {init} look-ahead {la}, 4 it"] = (
                lambda S, D, n, init=init, la=la: process(S, init=init, lookahead=la, n_iter=4, **opts))
    methods["stream input look-ahead 1, 4 it"] = (
        lambda S, D, n: process(S, D_in=D, init="input", lookahead=1, n_iter=4, **opts))
    rows = []
    for clip, y in _clips(sr).items():
        D = stft(y.astype(np.float64), **opts)
        S = np.abs(D)
        for name, fn in methods.items():
            out, cpu = _timed(lambda: fn(S, D, y.size))
            rows.append({"clip": clip, "method": name, "sc_db": spectral_convergence(out, S, **opts),
                         "cpu_s_per_s": cpu / (y.size / sr)})
    return rows


def markdown(rows: list[dict]) -> str:
    clips = list(dict.fromkeys(r["clip"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["clip"], r["method"]): r for r in rows}
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
    p.add_argument("--json", help="also write the rows as JSON")
    args = p.parse_args(argv)
    rows = phase_table(sr=args.sr, n_fft=args.n_fft, hop_length=args.hop_length)
    print(f"phase reconstruction from exact magnitudes, sr={args.sr}, n_fft={args.n_fft}, "
          f"hop_length={args.hop_length}\n")
    print(markdown(rows))
    if args.json:
        from rtstyle.io.files import atomic_output

        with atomic_output(args.json, overwrite=True) as tmp:
            tmp.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
