#!/usr/bin/env python3
"""Zero-shot from the instrument's own recording, against the bundled style: the README table.

    python tools/judge_zero_shot.py [--heldout ~/.cache/rtstyle/heldout] [--seconds 12]

Each held-out reference (tools/make_heldout.py) is cut in two: its first ``--seconds`` become a
``--style-ref`` style, the rest is the judge's reference. The timbre gain
(``tools/judge.py``'s ``timbre_gain``, median over every held-out clip) of that zero-shot style
is printed beside the bundled ``instruments:NAME`` style's, judged against the same rest.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import judge  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--heldout", type=Path, default=Path.home() / ".cache/rtstyle/heldout")
    p.add_argument("--seconds", type=float, default=12.0,
                   help="the reference's first part that makes the style (>= 10 s)")
    args = p.parse_args(argv)
    import soundfile as sf

    sr = 22050
    try:
        held = judge.read_heldout(args.heldout, sr, None)
    except judge.ToolError as exc:
        print(f"judge_zero_shot: error: {exc}", file=sys.stderr)
        return 1
    clips = held["speech"] + held["music"]
    cut = int(args.seconds * sr)
    print("| instrument | bundled style | `--style-ref` first "
          f"{args.seconds:g} s | ratio |\n|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for inst, ref in held["references"].items():
            clip = Path(tmp) / f"{inst}.wav"
            sf.write(clip, ref[:cut], sr)
            gains = []
            for style in (f"instruments:{inst}", f"{judge.REF_PREFIX}{clip}"):
                g = [judge.timbre_gain(c["y"], judge.render(style, c["y"], sr, {})[0],
                                       ref[cut:], sr) for c in clips]
                gains.append(float(np.median(g)))
            ratio = gains[1] / gains[0] if gains[0] > 0 else float("nan")
            print(f"| {inst} | {gains[0]:.2f} | {gains[1]:.2f} | {ratio:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
