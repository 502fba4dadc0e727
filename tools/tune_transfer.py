"""Measure `rtstyle transfer` settings side by side: time and log-mel Fréchet distances.

Runs the transfer once with the base settings and once per value of each ``--vary`` option
(one factor at a time), on one content/style pair, and prints a markdown table: optimisation
time, style-loss reduction, FD output→style (lower = more style) and FD output→content (lower =
more content kept), next to the FD content→style of the input itself. Rows are appended to
``--jsonl`` as they finish, so a long sweep can be stopped and read.

    python tools/tune_transfer.py examples/speech.flac examples/melody.flac \\
        --vary filters=512,1024,4096 --vary features=stft,mfcc --jsonl out/tune.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from rtstyle.dsp.metrics import logmel_frechet
from rtstyle.io.files import load_audio, resample, save_audio
from rtstyle.transfer import DEFAULTS, transfer


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("content")
    p.add_argument("style")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change a base setting (transfer() keyword)")
    p.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2",
                   help="one-factor sweep around the base")
    p.add_argument("--seconds", type=float, default=10.0, help="crop the content to this long")
    p.add_argument("--jsonl", help="append one JSON object per run")
    p.add_argument("--save-dir", help="also write each run's output here (RUN.wav), to listen or re-score")
    args = p.parse_args(argv)

    base = {k: v for k, v in DEFAULTS.items()}
    for item in args.set:
        k, v = item.split("=", 1)
        base[k.replace("-", "_")] = _parse_value(v)
    runs = [("base", dict(base))]
    for item in args.vary:
        k, values = item.split("=", 1)
        k = k.replace("-", "_")
        for v in values.split(","):
            runs.append((f"{k}={v}", {**base, k: _parse_value(v)}))

    content, sr = load_audio(args.content, mono=True)
    style, style_sr = load_audio(args.style, mono=True)
    content = content[: int(args.seconds * sr)]
    p_sr = base["processing_sr"]
    c_p = resample(content, orig_sr=sr, target_sr=p_sr)
    s_p = resample(style, orig_sr=style_sr, target_sr=p_sr)
    fd_cs = logmel_frechet(c_p, s_p, sr=p_sr)
    print(f"content {args.content} ({content.size / sr:.1f} s), style {args.style}; "
          f"FD content->style {fd_cs:.0f}", flush=True)
    print("| run | opt s | phase s | style loss ÷ | FD out→style | FD out→content |")
    print("|---|---:|---:|---:|---:|---:|", flush=True)
    for name, kw in runs:
        t = time.perf_counter()
        r = transfer(content, style, sr=sr, style_sr=style_sr, **kw)
        y_p = resample(r.y, orig_sr=sr, target_sr=p_sr)
        row = {"run": name, "settings": r.settings, "timings": r.timings,
               "style_loss_reduction": r.style_loss_reduction,
               "fd_content_style": fd_cs, "fd_out_style": logmel_frechet(y_p, s_p, sr=p_sr),
               "fd_out_content": logmel_frechet(y_p, c_p, sr=p_sr),
               "wall_s": time.perf_counter() - t}
        print(f"| {name} | {r.timings['optimisation']:.1f} | {r.timings['phase']:.1f} | "
              f"{row['style_loss_reduction']:.3g} | {row['fd_out_style']:.0f} | "
              f"{row['fd_out_content']:.0f} |", flush=True)
        if args.save_dir:
            safe = name.replace("=", "-").replace("/", "_")
            save_audio(f"{args.save_dir}/{safe}.wav", r.y, sr=sr, overwrite=True)
        if args.jsonl:
            with open(args.jsonl, "a") as fh:
                fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
