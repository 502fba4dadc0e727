"""The ``rtstyle`` command: one entry point, subcommands imported lazily.

User errors (bad flags, bad files, bad values) print one line, ``rtstyle: error: ...``, and exit
2; Ctrl-C exits 130 and leaves no partial output file (every write goes to a temp file that is
renamed into place only when complete).
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap

from . import __version__

log = logging.getLogger("rtstyle")

PLOT_FORMATS = ("png", "pdf", "svg", "jpg", "jpeg")


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and the exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _common(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # On subcommands the default is SUPPRESS, so 'rtstyle -q transfer ...' is not undone by the
    # subparser's own default.
    default = False if top else argparse.SUPPRESS
    g = parser.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="only errors; no progress bar")
    g.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="more detail (timings, settings)")


def _choices(values) -> str:
    return "|".join(values)


def _add_transfer(sub) -> None:
    from .transfer import CONTENT_LOSSES, DEFAULTS as D, INITS, OPTIMIZERS, PHASES

    p = sub.add_parser(
        "transfer",
        help="offline style transfer by optimisation (the seed method)",
        formatter_class=_Formatter,
        description=textwrap.dedent("""\
            Style CONTENT with the timbre of STYLE by optimising its spectrogram through a
            wide, shallow, random conv encoder (Ulyanov & Lebedev 2016): content loss plus
            Gram-matrix style loss, L-BFGS, then Griffin-Lim. Minutes per clip: the reference
            method, not the live engine. The output has the content's rate, channels, length.
            """),
        epilog=textwrap.dedent("""\
            examples:
              rtstyle transfer examples/speech.flac examples/melody.flac -o out/speech_cello.wav
              rtstyle transfer voice.wav organ.flac -o out.wav --plot out.png --log-json out.json
              rtstyle transfer voice.wav organ.flac -o out.wav --content-weight 0.1   # more style
              # the original 2016 baseline (about 6 minutes for 10 s on 2 CPU cores):
              rtstyle transfer c.wav s.wav -o base.wav --features stft --filters 4096 \\
                  --iterations 300 --phase-iters 500 --activation relu --init random \\
                  --content-weight 4.2
            """),
    )
    p.add_argument("content", help="audio file whose words/notes are kept")
    p.add_argument("style", help="audio file whose timbre/texture is imposed")
    p.add_argument("-o", "--output", required=True, help="output audio file (format from its extension)")
    g = p.add_argument_group("features and encoder")
    g.add_argument("--features", choices=("stft", "mel", "mfcc"), default=D["features"],
                   help="spectral feature the encoder sees")
    g.add_argument("--n-mels", type=int, default=D["n_mels"], help="mel bands (mel, mfcc)")
    g.add_argument("--n-mfcc", type=int, default=D["n_mfcc"], help="cepstral coefficients (mfcc)")
    g.add_argument("--filters", type=int, default=D["filters"], help="encoder filters (seed: 4096)")
    g.add_argument("--kernel-size", type=int, default=D["kernel_size"], help="encoder width in frames")
    g.add_argument("--activation", choices=("relu", "tanh"), default=D["activation"])
    g.add_argument("--pool", choices=("none", "max", "avg"), default=D["pool"], help="pooling over time")
    g.add_argument("--pool-width", type=int, default=D["pool_width"], help="pooling width in frames")
    g = p.add_argument_group("loss and optimisation")
    g.add_argument("--content-weight", type=float, default=D["content_weight"],
                   help="weight of the content loss (larger keeps more content; 0 = texture)")
    g.add_argument("--style-weight", type=float, default=D["style_weight"], help="weight of the Gram loss")
    g.add_argument("--content-loss", choices=CONTENT_LOSSES, default=None,
                   help="content distance: encoder features (seed), the features themselves, or "
                        "VGGish embeddings (default: perceptual if --perceptual-weights, else features)")
    g.add_argument("--perceptual-weights", metavar="FILE",
                   help="VGGish weights (.safetensors, made by tools/convert_vggish.py)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=D["optimizer"])
    g.add_argument("--iterations", type=int, default=D["iterations"], help="optimiser iterations")
    g.add_argument("--lr", type=float, default=None, help="Adam step size (default 0.05); L-BFGS uses a line search")
    g.add_argument("--init", choices=INITS, default=D["init"], help="start from noise or from the content")
    g = p.add_argument_group("analysis and phase")
    g.add_argument("--sr", type=int, default=D["processing_sr"], metavar="HZ", help="processing rate")
    g.add_argument("--n-fft", type=int, default=D["n_fft"], help="FFT size at the processing rate")
    g.add_argument("--hop-length", type=int, default=D["hop_length"], help="STFT hop in samples")
    g.add_argument("--phase", choices=PHASES, default=D["phase"],
                   help="Griffin-Lim, or reuse the content's phase")
    g.add_argument("--phase-iters", type=int, default=D["phase_iters"], help="Griffin-Lim iterations")
    g.add_argument("--momentum", type=float, default=D["momentum"], help="Griffin-Lim momentum (0 = classic)")
    g.add_argument("--mel-inverse", choices=("pinv", "nnls"), default=D["mel_inverse"],
                   help="mel/MFCC back to a linear magnitude")
    g = p.add_argument_group("run and outputs")
    g.add_argument("--seed", type=int, default=D["seed"], help="encoder weights, init and phase")
    g.add_argument("--device", default=D["device"], help="cpu or cuda (falls back to cpu)")
    g.add_argument("--overwrite", action="store_true", help="replace existing output files")
    g.add_argument("--plot", metavar="FIG.png", help="content, style and result spectrograms")
    g.add_argument("--log-json", metavar="FILE", help="settings, losses per iteration, timings")
    _common(p)
    p.set_defaults(func=_run_transfer)


def _run_transfer(args) -> int:
    import json
    import pathlib

    from .errors import ParameterError
    from .io.files import check_output_path, load_audio, resample, save_audio
    from .transfer import transfer

    inputs = [args.content, args.style]
    outputs = [o for o in (args.output, args.plot, args.log_json) if o]
    if len({str(pathlib.Path(o).resolve()) for o in outputs}) != len(outputs):
        raise ParameterError("--output, --plot and --log-json must be different files")
    if args.plot and pathlib.Path(args.plot).suffix.lower().lstrip(".") not in PLOT_FORMATS:
        raise ParameterError(f"--plot {args.plot}: the extension must be one of {', '.join(PLOT_FORMATS)}")
    # Fail before minutes of optimisation, not after.
    for o in outputs:
        check_output_path(o, overwrite=args.overwrite, protect=inputs)
    content_loss = args.content_loss or ("perceptual" if args.perceptual_weights else "features")

    content, sr = load_audio(args.content)
    style, style_sr = load_audio(args.style)
    log.info("content %s: %.2f s at %d Hz, %d channel(s)", args.content, content.shape[-1] / sr, sr,
             1 if content.ndim == 1 else content.shape[0])
    log.info("style %s: %.2f s at %d Hz, %d channel(s)", args.style, style.shape[-1] / style_sr,
             style_sr, 1 if style.ndim == 1 else style.shape[0])
    result = transfer(
        content, style, sr=sr, style_sr=style_sr, processing_sr=args.sr, n_fft=args.n_fft,
        hop_length=args.hop_length, features=args.features, n_mels=args.n_mels,
        n_mfcc=args.n_mfcc, filters=args.filters, kernel_size=args.kernel_size,
        activation=args.activation, pool=args.pool, pool_width=args.pool_width,
        content_weight=args.content_weight, style_weight=args.style_weight,
        content_loss=content_loss, perceptual_weights=args.perceptual_weights,
        optimizer=args.optimizer, iterations=args.iterations, lr=args.lr, init=args.init,
        phase=args.phase, phase_iters=args.phase_iters, momentum=args.momentum,
        mel_inverse=args.mel_inverse, seed=args.seed, device=args.device,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    save_audio(args.output, result.y, sr=result.sr, overwrite=args.overwrite, protect=inputs)
    if args.plot:
        from .plot import save_figure, spectrogram_figure

        fig = spectrogram_figure(
            [(f"content: {pathlib.Path(args.content).name}", result.S_content[0]),
             (f"style: {pathlib.Path(args.style).name}", result.S_style[0]),
             (f"result ({result.settings['features']}, {result.settings['iterations']} it)",
              result.S_result[0])],
            sr=result.processing_sr, hop_length=result.stft.hop_length,
            fmax=min(result.processing_sr / 2, 8000))
        save_figure(fig, args.plot, overwrite=args.overwrite, protect=inputs)
    if args.log_json:
        from .dsp.metrics import logmel_frechet
        from .io.files import atomic_output

        p_sr = result.processing_sr
        c_p = resample(content, orig_sr=sr, target_sr=p_sr)
        s_p = resample(style, orig_sr=style_sr, target_sr=p_sr)
        y_p = resample(result.y, orig_sr=sr, target_sr=p_sr)
        report = {
            "content": str(args.content), "style": str(args.style), "output": str(args.output),
            "rtstyle_version": __version__, "settings": result.settings,
            "timings_s": result.timings,
            "style_loss_reduction": result.style_loss_reduction,
            "logmel_frechet": {"content_to_style": logmel_frechet(c_p, s_p, sr=p_sr),
                               "output_to_style": logmel_frechet(y_p, s_p, sr=p_sr),
                               "output_to_content": logmel_frechet(y_p, c_p, sr=p_sr)},
            "history": result.history,
        }
        with atomic_output(args.log_json, overwrite=args.overwrite, protect=inputs) as tmp:
            tmp.write_text(json.dumps(report, indent=1) + "\n")
    if not args.quiet:
        t = result.timings
        print(f"wrote {args.output} ({result.y.shape[-1] / result.sr:.2f} s at {result.sr} Hz): "
              f"{result.settings['iterations']} iterations in {t['optimisation']:.1f} s, "
              f"total {t['total']:.1f} s; style loss /{result.style_loss_reduction:.3g}")
    return 0


def _add_render(sub) -> None:
    from .render import DEFAULTS as D, PHASE_INITS, STYLES

    p = sub.add_parser(
        "render",
        help="file to file through the live streaming engine",
        formatter_class=_Formatter,
        description=textwrap.dedent("""\
            Run IN through the live engine (the Streamer), fed --block-size samples at a time
            exactly as a sound card would deliver them, at the file's own rate and with its
            channels. By default OUT is aligned with IN and of its length (the engine latency
            removed); --keep-latency writes exactly what live would play (IN sample t at OUT
            sample t + latency).
            """),
        epilog=textwrap.dedent("""\
            examples:
              rtstyle render examples/speech.flac -o out/speech_id.wav
              rtstyle render voice.wav -o live.wav --keep-latency --block-size 128
              rtstyle render voice.wav -o out.wav --phase-init rtpghi --lookahead 3 \\
                  --report out.json
            """),
    )
    p.add_argument("input", help="audio file to render")
    p.add_argument("-o", "--output", required=True,
                   help="output audio file (format from its extension)")
    g = p.add_argument_group("style and engine")
    g.add_argument("--style", default=D["style"], metavar=_choices(STYLES),
                   help="style (trained styles come with a later release)")
    g.add_argument("--block-size", type=int, default=D["block_size"], metavar="N",
                   help="samples per engine call, as a live callback delivers them")
    g.add_argument("--n-fft", type=int, default=D["n_fft"], metavar="N",
                   help="FFT size (periodic Hann window)")
    g.add_argument("--hop-length", type=int, default=D["hop_length"], metavar="N",
                   help="STFT hop in samples; divides --n-fft")
    g.add_argument("--lookahead", type=int, default=D["lookahead"], metavar="N",
                   help="phase look-ahead in frames, 0..3 (one hop of latency each)")
    g.add_argument("--phase-init", choices=PHASE_INITS, default=D["phase_init"],
                   help="initial phase of each new frame")
    g.add_argument("--phase-iters", type=int, default=D["phase_iters"], metavar="N",
                   help="fast Griffin-Lim projections per hop")
    g.add_argument("--momentum", type=float, default=D["momentum"], metavar="X",
                   help="fast Griffin-Lim momentum, in [0, 1) (default 0.9 with look-ahead, "
                        "0 without)")
    g = p.add_argument_group("outputs")
    g.add_argument("--keep-latency", action="store_true",
                   help="write what live would play: IN length + latency samples")
    g.add_argument("--overwrite", action="store_true", help="replace existing output files")
    g.add_argument("--report", metavar="FILE.json",
                   help="settings, latency, real-time factor, spectral convergence, peak")
    _common(p)
    p.set_defaults(func=_run_render)


def _run_render(args) -> int:
    import json
    import pathlib

    import soundfile as sf

    from .errors import ParameterError
    from .io.files import (format_and_subtype, atomic_output, check_output_path, load_audio,
                           save_audio)
    from .render import render

    outputs = [o for o in (args.output, args.report) if o]
    if len({str(pathlib.Path(o).resolve()) for o in outputs}) != len(outputs):
        raise ParameterError("--output and --report must be different files")
    # Fail before processing, not after: output paths and the output's file type.
    for o in outputs:
        check_output_path(o, overwrite=args.overwrite, protect=[args.input])
    fmt, _ = format_and_subtype(str(args.output), None, None)

    y, sr = load_audio(args.input)
    info_in = sf.info(str(args.input))
    # Keep the input's sample format where the output's file type has it (else its default).
    keep = info_in.format == fmt and sf.check_format(fmt, info_in.subtype)
    subtype = info_in.subtype if keep else None
    log.debug("input %s: %.2f s at %d Hz, %d channel(s), %s", args.input, y.shape[-1] / sr, sr,
              1 if y.ndim == 1 else y.shape[0], info_in.subtype)
    out, info = render(
        y, sr=sr, style=args.style, block_size=args.block_size, n_fft=args.n_fft,
        hop_length=args.hop_length, lookahead=args.lookahead, phase_iters=args.phase_iters,
        phase_init=args.phase_init, momentum=args.momentum, keep_latency=args.keep_latency,
    )
    save_audio(args.output, out, sr=sr, subtype=subtype, overwrite=args.overwrite,
               protect=[args.input])
    if args.report:
        report = {
            "input": str(args.input), "output": str(args.output), "sr": sr, "model_sr": sr,
            "n_fft": args.n_fft, "hop_length": args.hop_length, **info, "styles": [args.style],
            "block_size": args.block_size, "lookahead": args.lookahead,
            "phase_init": args.phase_init, "phase_iters": args.phase_iters,
            "momentum": args.momentum, "keep_latency": args.keep_latency,
            "rtstyle_version": __version__,
        }
        with atomic_output(args.report, overwrite=args.overwrite, protect=[args.input]) as tmp:
            tmp.write_text(json.dumps(report, indent=1) + "\n")
    if not args.quiet:
        sc = "n/a (silent input)" if info["sc_db"] is None else f"{info['sc_db']:.1f} dB"
        print(f"wrote {args.output} ({out.shape[-1] / sr:.2f} s at {sr} Hz): latency "
              f"{info['latency_samples']} samples ({info['latency_ms']:.1f} ms"
              f"{', kept' if args.keep_latency else ', removed'}), rtf {info['rtf']:.3f}, SC {sc}")
    return 0


def _add_styles(sub) -> None:
    p = sub.add_parser(
        "styles",
        help="list the bundled and user styles",
        formatter_class=_Formatter,
        description=textwrap.dedent("""\
            List every style of every model rtstyle can find: the bundled models first, then
            the user models (--models-dir, else $RTSTYLE_MODELS, else the user data folder,
            e.g. ~/.local/share/rtstyle/models), each by name. A style is named MODEL (a
            model with one style) or MODEL:STYLE; this order is the default style list of
            'render' and 'live'. A model whose files are broken is listed with its error.
            Latency is the engine's with the model's default streaming settings.
            """),
        epilog=textwrap.dedent("""\
            examples:
              rtstyle styles
              rtstyle styles --json > styles.json
              rtstyle styles --models-dir ~/my-models
            """),
    )
    p.add_argument("--json", action="store_true",
                   help="print a JSON list (name, model, path, sr, n_fft, hop_length, "
                        "latency_ms, styles, bundled, error)")
    p.add_argument("--models-dir", metavar="DIR", default=None,
                   help="user models folder (default: $RTSTYLE_MODELS or the user data folder)")
    _common(p)
    p.set_defaults(func=_run_styles)


def _run_styles(args) -> int:
    import json

    from .models import list_styles, model_folders

    folders = model_folders(args.models_dir)
    rows = list_styles(models_dir=args.models_dir)
    log.debug("bundled models: %s; user models: %s", folders["bundled"] or "none",
              folders["user"] or "none")
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        if not args.quiet:
            print("no styles found (bundled: {}; user folder: {})".format(
                folders["bundled"] or "none", folders["user"] or "none"))
        return 0
    table = [("NAME", "SR", "N_FFT/HOP", "LATENCY", "WHERE", "PATH")]
    for r in rows:
        where = "bundled" if r["bundled"] else "user"
        if r["error"]:
            table.append((r["name"], "-", "-", "-", where, f"error: {r['error']}"))
        else:
            table.append((r["name"], str(r["sr"]), f"{r['n_fft']}/{r['hop_length']}",
                          f"{r['latency_ms']:.1f} ms", where, r["path"]))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rtstyle", formatter_class=_Formatter,
        description="Real-time audio style transfer: make a voice or an instrument sound like "
                    "another sound.",
        epilog="Run 'rtstyle COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"rtstyle {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_transfer(sub)
    _add_render(sub)
    _add_styles(sub)
    return parser


def _setup_logging(args) -> None:
    level = logging.ERROR if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rtstyle: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def main(argv=None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _setup_logging(args)
    from .errors import RtStyleError

    try:
        return args.func(args)
    except RtStyleError as err:
        print(f"rtstyle: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rtstyle: interrupted; no partial output was written", file=sys.stderr)
        return 130
