"""``make demo``: the committed clips through the bundled styles, with a spectrogram figure.

    python tools/demo.py [--out out] [--styles instruments:organ,instruments:choir] [--overwrite]

Renders ``examples/speech.flac`` and ``examples/melody.flac`` through each style (default: every
style ``rtstyle styles`` lists, bundled first) with the live engine (``rtstyle.render``: the
same Streamer as ``rtstyle live``), writes ``out/<clip>_<style>.wav``, a figure
``out/demo.png`` (input and styled spectrograms of the speech clip) and prints one line per
file with its real-time factor. Takes well under a minute on two cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
try:
    import rtstyle  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

import rtstyle  # noqa: E402
from rtstyle.dsp.stft import stft  # noqa: E402
from rtstyle.errors import RtStyleError  # noqa: E402
from rtstyle.io.files import load_audio, save_audio  # noqa: E402
from rtstyle.plot import save_figure, spectrogram_figure  # noqa: E402
from rtstyle.render import style_list  # noqa: E402

CLIPS = ("speech", "melody")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "out")
    p.add_argument("--styles", help="comma-separated style list (default: every listed style)")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        if args.styles:
            styles = [s for s in style_list(args.styles) if s != "identity"]
        else:                                     # every listed style, one render each
            from rtstyle.models import list_styles

            styles = [e["name"] for e in list_styles() if not e.get("error")]
        if not styles:
            raise RtStyleError("no trained style is installed (see 'rtstyle styles')")
        args.out.mkdir(parents=True, exist_ok=True)
        panels = []
        t_start = time.perf_counter()
        for clip in CLIPS:
            y, sr = load_audio(ROOT / "examples" / f"{clip}.flac")
            if clip == "speech":
                panels.append((f"{clip} (input)", y))
            for style in styles:
                t0 = time.perf_counter()
                out, info = rtstyle.render(y, sr=sr, style=style)
                name = f"{clip}_{style.replace(':', '_')}.wav"
                save_audio(args.out / name, out, sr=sr, overwrite=args.overwrite,
                           protect=[ROOT / "examples" / f"{clip}.flac"])
                print(f"{args.out / name}: {style}, rtf {info['rtf']:.3f} "
                      f"({time.perf_counter() - t0:.1f} s with model loading)")
                if clip == "speech":
                    panels.append((style, out))
        S = [(title, np.abs(stft(z, n_fft=1024, hop_length=256))) for title, z in panels[:5]]
        fig = spectrogram_figure(S, sr=sr, hop_length=256, fmax=8000)
        save_figure(fig, args.out / "demo.png", overwrite=True)
        print(f"{args.out / 'demo.png'}: spectrograms of the speech clip; "
              f"{time.perf_counter() - t_start:.1f} s in all")
    except (RtStyleError, OSError) as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
