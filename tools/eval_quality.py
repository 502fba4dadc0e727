"""Quality benchmark: how close do outputs get to the style, and how far from the content?

    python tools/eval_quality.py --content C.wav --style S.wav OUT1.wav [OUT2.wav ...]
    python tools/eval_quality.py --model instruments --corpus ~/.cache/rtstyle/corpus \\
        [--clips 1 --seconds 6 --iterations 300] [--json out/quality_models.json]

The second form compares a trained model's feed-forward net with the offline optimisation
(``rtstyle transfer`` with the model's encoder, features and loss weights) on held-out corpus
clips; see :func:`evaluate_model`. The first form scores files:
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


# ------------------------------------------------------------------ feed-forward vs optimisation


def _pick_clips(corpus: Path, n: int) -> list[tuple[str, Path]]:
    """Held-out content: the first ``n`` val files of each part (speech, music) of the corpus."""
    manifest = json.loads((corpus / "manifest.json").read_text())
    picks = []
    for part in ("speech", "music"):
        files = [f for f in manifest["files"] if f.get("split") == "val" and f.get("part") == part]
        picks += [(f"{part}:{Path(f['path']).stem}", corpus / f["path"]) for f in files[:n]]
    if not picks:
        raise ToolError(f"{corpus}: the manifest lists no held-out (val) content files")
    return picks


def _envelope_corr(a: np.ndarray, b: np.ndarray, hop: int = 256) -> float:
    """Correlation of frame log-energies (the temporal envelope), 1024-sample frames."""
    def env(y):
        n = (y.size - 1024) // hop + 1
        idx = np.arange(1024)[None, :] + hop * np.arange(n)[:, None]
        return np.log10(np.mean(y[idx] ** 2, axis=1) + 1e-8)
    ea, eb = env(a), env(b)
    m = min(ea.size, eb.size)
    return float(np.corrcoef(ea[:m], eb[:m])[0, 1])


def evaluate_model(model_name: str, corpus: Path, *, clips: int, seconds: float,
                   iterations: int, models_dir=None) -> dict:
    """The feed-forward net against ``rtstyle transfer`` (same encoder and weights).

    For each held-out clip and each style of the model: the Gram style loss of the content
    itself (``s_content``), of the net's output (``s_ff``) and of the optimisation's
    (``s_opt``), the content losses, the log-mel Fréchet distance of the rendered audio to the
    style relative to the content's (``fd_ratio``: 1 = unchanged, 0 = the style's statistics),
    the correlation of the content's and the output's frame log-energy, and wall times. Losses
    are measured the same way for both: the output magnitudes → features → encoder.
    """
    import time

    import torch

    import rtstyle
    from rtstyle.config import EncoderConfig, FeatureConfig
    from rtstyle.dsp.features import features as to_features
    from rtstyle.dsp.stft import stft
    from rtstyle.models import load_model
    from rtstyle.nn.encoder import ShallowEncoder
    from rtstyle.nn.losses import StyleContentLoss, content_loss, gram, style_loss

    torch.set_num_threads(1)
    model = load_model(model_name, models_dir=models_dir)
    card, sr = model.card, model.sr
    stft_cfg = model.stft
    feat = FeatureConfig.from_dict(card["features"])
    enc = EncoderConfig.from_dict(card["encoder"])
    cw, sw = card["training"]["content_weight"], card["training"]["style_weight"]
    encoder = ShallowEncoder(feat.n_channels(stft_cfg), enc)
    opts = dict(n_fft=stft_cfg.n_fft, hop_length=stft_cfg.hop_length)

    def feats(S):
        return torch.as_tensor(to_features(np.asarray(S, np.float32), stft=stft_cfg, features=feat))

    rows = []
    for k, style_name in enumerate(model.styles):
        refs = [corpus / r for r in card["styles"][k]["references"]]
        y_style = np.concatenate([load_mono(r, sr) for r in refs])
        X_style = feats(np.abs(stft(y_style, **opts))[None])
        G = StyleContentLoss(encoder, X_style, content_weight=cw, style_weight=sw).style_gram
        for label, path in _pick_clips(corpus, clips):
            y = load_mono(path, sr)[: int(seconds * sr)]
            S_c = np.abs(stft(y, **opts))[None]
            with torch.no_grad():
                F_c = encoder(feats(S_c))

                def losses(S):
                    F = encoder(feats(S))
                    return float(style_loss(gram(F), G)), float(content_loss(F, F_c))

                s_content, _ = losses(S_c)
                t0 = time.perf_counter()
                y_log = model.net(torch.log1p(torch.as_tensor(S_c, dtype=torch.float32)), k)
                t_net = time.perf_counter() - t0
                s_ff, c_ff = losses(torch.expm1(y_log).numpy())
            t0 = time.perf_counter()
            out_ff, _ = rtstyle.render(y, sr=sr, style=f"{model.path.with_suffix('.json')}:{style_name}"
                                       if len(model.styles) > 1 else str(model.path.with_suffix(".json")))
            t_ff = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = rtstyle.transfer(y, y_style, sr=sr, processing_sr=sr, n_fft=stft_cfg.n_fft,
                                   hop_length=stft_cfg.hop_length, features=feat.kind,
                                   n_mels=feat.n_mels, n_mfcc=feat.n_mfcc,
                                   filters=enc.n_filters, kernel_size=enc.kernel_size,
                                   activation=enc.activation, content_weight=cw,
                                   style_weight=sw, iterations=iterations, seed=enc.seed,
                                   phase="content")
            t_opt = time.perf_counter() - t0
            with torch.no_grad():
                s_opt, c_opt = losses(res.S_output)
            fd_c = _fd(y, y_style, sr, label)
            row = {"clip": label, "style": style_name, "s_content": s_content, "s_ff": s_ff,
                   "s_opt": s_opt, "content_ff": c_ff, "content_opt": c_opt,
                   "fd_ratio_ff": _fd(out_ff, y_style, sr, label) / fd_c,
                   "fd_ratio_opt": _fd(res.y, y_style, sr, label) / fd_c,
                   "envelope_corr_ff": _envelope_corr(y, out_ff),
                   "envelope_corr_opt": _envelope_corr(y, res.y),
                   "net_s": t_net, "render_s": t_ff, "transfer_s": t_opt}
            gain_ff = np.log(s_content / max(s_ff, 1e-30))
            gain_opt = np.log(s_content / max(s_opt, 1e-30))
            row["style_gain_ratio"] = float(gain_ff / gain_opt) if gain_opt > 0 else None
            row["content_ratio"] = c_ff / max(c_opt, 1e-30)
            rows.append(row)
            g = row["style_gain_ratio"]
            print(f"  {label} → {style_name}: s_content {s_content:.3g} s_ff {s_ff:.3g} s_opt "
                  f"{s_opt:.3g}, gain ratio {'n/a' if g is None else f'{g:.2f}'}, content "
                  f"ratio {row['content_ratio']:.2f}, fd {row['fd_ratio_ff']:.2f}, env "
                  f"{row['envelope_corr_ff']:.2f}", file=sys.stderr, flush=True)
    return {"model": model_name, "sr": sr, "clip_seconds": seconds,
            "transfer_iterations": iterations, "encoder": enc.to_dict(),
            "features": feat.to_dict(), "content_weight": cw, "style_weight": sw, "rows": rows}


def model_markdown(report: dict) -> str:
    lines = ["| clip | style | s_content | s_ff | s_opt | log gain ff/opt | content ff/opt "
             "| FD ratio ff (opt) | envelope corr ff (opt) | render s | transfer s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        g = "n/a" if r["style_gain_ratio"] is None else f"{r['style_gain_ratio']:.2f}"
        lines.append(
            f"| {r['clip']} | {r['style']} | {r['s_content']:.3g} | {r['s_ff']:.3g} | "
            f"{r['s_opt']:.3g} | {g} | {r['content_ratio']:.2f} | {r['fd_ratio_ff']:.2f} "
            f"({r['fd_ratio_opt']:.2f}) | {r['envelope_corr_ff']:.2f} "
            f"({r['envelope_corr_opt']:.2f}) | {r['render_s']:.2f} | {r['transfer_s']:.1f} |")
    rows = report["rows"]
    gains = [r["style_gain_ratio"] for r in rows if r["style_gain_ratio"] is not None]
    lines.append("")
    med = f"{np.median(gains):.2f}" if gains else "n/a"
    lines.append(f"medians: log gain ff/opt {med} (target >= 0.8), content "
                 f"ff/opt {np.median([r['content_ratio'] for r in rows]):.2f} (target <= 1.5), "
                 f"FD ratio ff {np.median([r['fd_ratio_ff'] for r in rows]):.2f} (target <= 0.5),"
                 f" envelope corr ff {np.median([r['envelope_corr_ff'] for r in rows]):.2f} "
                 f"(target >= 0.8)")
    return "\n".join(lines)


def model_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="eval_quality.py --model",
        description="A trained model's feed-forward net against the offline optimisation "
        "(rtstyle transfer, same encoder and weights) on held-out corpus clips.",
        epilog="example: python tools/eval_quality.py --model instruments "
        "--corpus ~/.cache/rtstyle/corpus --json out/quality_models.json")
    parser.add_argument("--model", required=True, help="model name or path")
    parser.add_argument("--corpus", type=Path, required=True,
                        help="the corpus of tools/make_corpus.py (held-out clips, references)")
    parser.add_argument("--clips", type=int, default=1, help="val clips per part (speech, music)")
    parser.add_argument("--seconds", type=float, default=6.0, help="clip length")
    parser.add_argument("--iterations", type=int, default=300, help="transfer iterations")
    parser.add_argument("--models-dir", help="user model folder")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers here")
    args = parser.parse_args(argv)
    try:
        if args.json is not None:
            check_output_path(args.json, overwrite=True)
        report = evaluate_model(args.model, args.corpus.expanduser(), clips=args.clips,
                                seconds=args.seconds, iterations=args.iterations,
                                models_dir=args.models_dir)
        if args.json is not None:
            _write_json(report, args.json, protect=[])
    except (ToolError, RtStyleError, OSError) as exc:
        print(f"eval_quality: error: {exc}", file=sys.stderr)
        return 2
    print(model_markdown(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--model" in argv:
        return model_main(argv)
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
