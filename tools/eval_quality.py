"""Quality benchmark: how close do outputs get to the style, and how far from the content?

    python tools/eval_quality.py --content C.wav --style S.wav OUT1.wav [OUT2.wav ...]
    python tools/eval_quality.py --content examples/speech.flac --style examples/melody.flac \\
        out/speech_as_melody.wav --json out/quality.json

Every file is read with ``rtstyle.io.files.load_audio``, mixed down to mono and resampled with
soxr to ``--sr`` (default 22050 Hz). The score is the Fréchet distance between 64-band log-mel
frame distributions (``rtstyle.dsp.metrics.logmel_frechet``, in dB², lower is closer):

- the *baseline*: content → style, how far the untouched input is from the style;
- for each output: output → style (should fall below the baseline) and output → content
  (how far the output has moved from its input);
- ``Δ vs content→style (%)`` = 100 · (FD(output, style) − baseline) / baseline: negative
  means closer to the style than the input was.

It prints a markdown table (the content file itself is the first row, as a reference) and,
with ``--json FILE``, writes the same numbers (atomically; an existing report is replaced, an
input file never is). Exit status: 0, or 2 with one line on stderr for a missing, empty,
truncated or unreadable file, an unwritable ``--json`` path, or a bad argument.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
try:
    import rtstyle  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from rtstyle.dsp.metrics import logmel_frechet  # noqa: E402
from rtstyle.errors import RtStyleError  # noqa: E402
from rtstyle.io.files import atomic_output, check_output_path, load_audio  # noqa: E402

N_MELS = 64


class ToolError(Exception):
    """A problem the user can fix; reported as one line, exit status 2."""


def load_mono(path: Path, sr: int) -> np.ndarray:
    """Read ``path`` as float32 mono at ``sr`` (``rtstyle.io.files.load_audio``)."""
    try:
        y, _ = load_audio(path, sr=sr, mono=True)
    except RtStyleError as exc:  # AudioFileError / ParameterError: one line naming the file
        raise ToolError(str(exc)) from None
    return y


def _fd(a: np.ndarray, b: np.ndarray, sr: int, what: str) -> float:
    try:
        return logmel_frechet(a, b, sr=sr, n_mels=N_MELS)
    except RtStyleError as exc:
        raise ToolError(f"{what}: {exc}") from None


def evaluate(content: Path, style: Path, outputs: list[Path], *, sr: int) -> dict:
    """Compute the benchmark's numbers; see the module docstring."""
    y_content = load_mono(content, sr)
    y_style = load_mono(style, sr)
    y_outputs = [load_mono(p, sr) for p in outputs]  # read all first: fail before the maths
    baseline = _fd(y_content, y_style, sr, f"{content} vs {style}")

    def delta(fd_style: float) -> float | None:
        return None if baseline == 0 else 100.0 * (fd_style - baseline) / baseline

    rows = [{"file": str(content), "role": "content", "fd_to_style": baseline,
             "fd_to_content": 0.0, "delta_vs_content_to_style_pct": delta(baseline)}]
    for path, y in zip(outputs, y_outputs):
        fd_style = _fd(y, y_style, sr, f"{path} vs {style}")
        fd_content = _fd(y, y_content, sr, f"{path} vs {content}")
        rows.append({"file": str(path), "role": "output", "fd_to_style": fd_style,
                     "fd_to_content": fd_content,
                     "delta_vs_content_to_style_pct": delta(fd_style)})
    return {
        "metric": f"log-mel Frechet distance (n_mels={N_MELS}, n_fft=2048, hop_length=512, dB^2)",
        "sr": sr,
        "content": str(content),
        "style": str(style),
        "fd_content_to_style": baseline,
        "results": rows,
    }


def markdown(report: dict) -> str:
    lines = [
        f"content: {report['content']}  style: {report['style']}  sr: {report['sr']} Hz",
        f"baseline FD content→style: {report['fd_content_to_style']:.1f} "
        f"({report['metric']})",
        "",
        "| file | FD to style | FD to content | Δ vs content→style (%) |",
        "|---|---:|---:|---:|",
    ]
    for row in report["results"]:
        name = row["file"] + (" (content)" if row["role"] == "content" else "")
        d = row["delta_vs_content_to_style_pct"]
        d_txt = "n/a" if d is None else f"{d:+.1f}"
        lines.append(f"| {name} | {row['fd_to_style']:.1f} | {row['fd_to_content']:.1f} "
                     f"| {d_txt} |")
    return "\n".join(lines)


def _write_json(report: dict, path: Path, *, protect: list[Path]) -> None:
    """Write the report atomically; a regenerated artefact, so an old report is replaced."""
    with atomic_output(path, overwrite=True, protect=protect) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="eval_quality.py",
        description="Log-mel Fréchet distance of style-transfer outputs to the style and to "
        "the content, against the content→style baseline.",
        epilog="example: python tools/eval_quality.py --content examples/speech.flac "
        "--style examples/melody.flac out.wav --json quality.json",
    )
    parser.add_argument("--content", type=Path, required=True, help="the input (content) file")
    parser.add_argument("--style", type=Path, required=True, help="the style reference file")
    parser.add_argument("outputs", type=Path, nargs="+", metavar="OUT",
                        help="output files to score")
    parser.add_argument("--sr", type=int, default=22050,
                        help="analysis sample rate in Hz (default 22050)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers here")
    args = parser.parse_args(argv)

    try:
        if args.sr <= 0:
            raise ToolError(f"--sr={args.sr} must be a positive integer")
        inputs = [args.content, args.style, *args.outputs]
        if args.json is not None:  # fail before reading and scoring, not after
            check_output_path(args.json, overwrite=True, protect=inputs)
        report = evaluate(args.content, args.style, args.outputs, sr=args.sr)
        if args.json is not None:
            _write_json(report, args.json, protect=inputs)
    except (ToolError, RtStyleError, OSError) as exc:
        print(f"eval_quality: error: {exc}", file=sys.stderr)
        return 2
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
