"""The ``rtstyle`` command: one entry point, subcommands imported lazily.

User errors (bad flags, bad files, bad values) print one line, ``rtstyle: error: ...``, and exit
2; Ctrl-C exits 130 and leaves no partial output file (every write goes to a temp file that is
renamed into place only when complete). SIGTERM and SIGHUP act like Ctrl-C and exit 128 + the
signal's number (143, 129); ``live`` finishes its recordings on all three.
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
    if len({_real(o) for o in outputs}) != len(outputs):
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


_RESAMPLE_HELP = ("resampler when the device/file rate differs from the models': {default} "
                  "default; LQ or QQ cut the delay (QQ aliases)")
_ENVELOPE_HELP = ("follow: keep the input's frame energy (dynamics, silences); free: the style's "
                  "own levels ({default})")
_THREADS_HELP = ("threads of the engine's torch and BLAS ({default}: the fast choice, and the "
                 "one that holds up when other programs keep the cores busy)")


def _add_render(sub) -> None:
    from .render import DEFAULTS as D, ENVELOPES, PHASE_INITS, RESAMPLE_QUALITIES

    p = sub.add_parser(
        "render",
        help="file to file through the live streaming engine",
        formatter_class=_Formatter,
        description=textwrap.dedent("""\
            Run IN through the live engine (the Streamer), fed --block-size samples at a time
            exactly as a sound card would deliver them, with its channels, at the models' rate
            (IN is resampled to it and back). By default OUT is aligned with IN and of its
            length (the engine latency removed); --keep-latency writes exactly what live would
            play (IN sample t at OUT sample t + latency).
            """),
        epilog=textwrap.dedent("""\
            examples:
              rtstyle render examples/speech.flac -o out/speech_organ.wav --style instruments:organ
              rtstyle render voice.wav -o out.wav --style instruments:organ,instruments:choir \\
                  --morph 0.5 --strength 0.8
              rtstyle render voice.wav -o live.wav --keep-latency --block-size 128
              rtstyle render voice.wav -o out.wav --style identity --phase-init rtpghi \\
                  --lookahead 3 --report out.json
            """),
    )
    p.add_argument("input", nargs="+", help="audio file(s) or folder(s) to render")
    p.add_argument("-o", "--output", required=True,
                   help="output file (format from its extension); a folder for several inputs "
                        "or a folder input (same names inside)")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders")
    g = p.add_argument_group("style and engine")
    g.add_argument("--style", default=D["style"], metavar="A[,B...]",
                   help="style list: 'identity', MODEL or MODEL:STYLE, comma-separated; the "
                        "first is heard (default: the styles of 'rtstyle styles' that share the first "
                        "one's STFT)")
    g.add_argument("--style-ref", action="append", metavar="CLIP", help=_STYLE_REF_HELP)
    g.add_argument("--strength", type=float, default=D["strength"], metavar="X",
                   help="0..1: blend of the input's and the style's spectra")
    g.add_argument("--morph", type=float, default=D["morph"], metavar="X",
                   help="0..1: blend of the first style toward the second")
    g.add_argument("--crossfade", type=float, default=D["crossfade_ms"], metavar="MS",
                   help="style switch crossfade in ms")
    g.add_argument("--envelope", choices=ENVELOPES, default=D["envelope"],
                   help=_ENVELOPE_HELP.format(default="%(default)s"))
    g.add_argument("--mix", type=float, default=D["mix"], metavar="X",
                   help="0..1 wet share (the dry part is the input, delay-aligned)")
    g.add_argument("--gain", type=float, default=D["gain_db"], metavar="DB",
                   help="output gain in dB (a limiter at -0.1 dBFS follows)")
    g.add_argument("--device", default="cpu", metavar="cpu|cuda",
                   help="where the style nets run (CUDA absent: the CPU, with a warning)")
    g.add_argument("--midi", metavar="FILE.mid",
                   help="replay a MIDI file's program and control changes (DESIGN mapping)")
    g.add_argument("--midi-map", metavar="FILE.toml",
                   help="the MIDI mapping (as 'live --midi-map'; default: DESIGN's)")
    g.add_argument("--models-dir", metavar="DIR",
                   help="user model folder (default: $RTSTYLE_MODELS or the user data dir)")
    g.add_argument("--block-size", type=int, default=D["block_size"], metavar="N",
                   help="samples per engine call (the output does not depend on it; larger "
                        "blocks let the nets take several frames per call)")
    g.add_argument("--n-fft", type=int, default=D["n_fft"], metavar="N",
                   help="FFT size (periodic Hann window; default the models', 1024 for identity)")
    g.add_argument("--hop-length", type=int, default=D["hop_length"], metavar="N",
                   help="STFT hop in samples; divides --n-fft (default the models', 256)")
    g.add_argument("--lookahead", type=int, default=D["lookahead"], metavar="N",
                   help="phase look-ahead in frames, 0..3 (one hop of latency each)")
    g.add_argument("--phase-init", choices=PHASE_INITS, default=D["phase_init"],
                   help="initial phase of each new frame")
    g.add_argument("--phase-iters", type=int, default=D["phase_iters"], metavar="N",
                   help="fast Griffin-Lim projections per hop (default 4 for input phase, "
                        "16 otherwise)")
    g.add_argument("--momentum", type=float, default=D["momentum"], metavar="X",
                   help="fast Griffin-Lim momentum, in [0, 1) (default with look-ahead: 0.5 for "
                        "input phase, 0.9 otherwise; 0 without)")
    g.add_argument("--resample-quality", type=str.upper, choices=RESAMPLE_QUALITIES,
                   default=D["resample_quality"],
                   help=_RESAMPLE_HELP.format(default="%(default)s"))
    g.add_argument("--threads", type=int, default=D["threads"], metavar="N",
                   help=_THREADS_HELP.format(default="%(default)s"))
    g = p.add_argument_group("outputs")
    g.add_argument("--keep-latency", action="store_true",
                   help="write what live would play: IN length + latency samples")
    g.add_argument("--sr", type=int, metavar="HZ", help="output rate (default: the input's)")
    g.add_argument("--format", metavar="FMT",
                   help="output format for folders (WAV, FLAC, ...; default: the input's)")
    g.add_argument("--subtype", metavar="ST",
                   help="output subtype (PCM_16, PCM_24, FLOAT, ...; default: the input's)")
    g.add_argument("--overwrite", action="store_true", help="replace existing output files")
    g.add_argument("--report", metavar="FILE.json",
                   help="settings, latency, real-time factor, spectral convergence, peak")
    _common(p)
    p.set_defaults(func=_run_render)


def _render_jobs(args):
    """[(input, output)] from the command line: files, or folders mirrored into -o."""
    import pathlib

    from .errors import AudioFileError, ParameterError
    from .io.files import AUDIO_EXTENSIONS

    ins = [pathlib.Path(p) for p in args.input]
    single = len(ins) == 1 and not ins[0].is_dir()
    if single:
        return [(ins[0], pathlib.Path(args.output))], True
    out_dir = pathlib.Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"-o {out_dir}: must be a folder when rendering several inputs")
    ext = None if args.format is None else "." + args.format.lower()
    jobs = []
    for src in ins:
        if src.is_dir():
            pattern = "**/*" if args.recursive else "*"
            files = sorted(p for p in src.glob(pattern)
                           if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            if not files:
                raise AudioFileError(f"{src}: no audio files in this folder"
                                     + ("" if args.recursive else " (--recursive descends)"))
            for f in files:
                rel = f.relative_to(src)
                jobs.append((f, out_dir / (rel.with_suffix(ext) if ext else rel)))
        elif src.exists():
            jobs.append((src, out_dir / (src.with_suffix(ext).name if ext else src.name)))
        else:
            raise AudioFileError(f"{src}: no such file")
    return jobs, False


def _run_render(args) -> int:
    import json
    import pathlib

    from .errors import ParameterError, RtStyleError
    from .io.files import atomic_output, check_output_path
    from .render import render_file, style_list

    jobs, single = _render_jobs(args)
    outs = [_real(o) for _, o in jobs] + ([_real(args.report)] if args.report else [])
    if len(set(outs)) != len(outs):
        raise ParameterError("two outputs would share a name (--output, --report, or inputs "
                             "with the same name)")
    protect = [src for src, _ in jobs]
    for _, out in jobs:              # fail before minutes of work, not after
        if not single:
            out.parent.mkdir(parents=True, exist_ok=True)
        check_output_path(out, overwrite=args.overwrite, protect=protect)
    if args.report:
        check_output_path(args.report, overwrite=args.overwrite, protect=protect)
    styles = _with_refs(style_list(args.style, models_dir=args.models_dir)
                        if args.style or not args.style_ref else [], args.style_ref)
    _warn_no_effect(styles, morph=args.morph, strength=args.strength)
    events_of = None
    if args.midi:
        from .control import Mapping, midi_file_events

        _regular_input(args.midi, "--midi")
        if args.midi_map:
            _regular_input(args.midi_map, "--midi-map")

        mapping = Mapping.load(args.midi_map) if args.midi_map else Mapping()

        def events_of(sr):
            return midi_file_events(args.midi, sr=sr, mapping=mapping, n_styles=len(styles))
    settings = dict(style=styles, block_size=args.block_size, n_fft=args.n_fft,
                    hop_length=args.hop_length, lookahead=args.lookahead,
                    phase_iters=args.phase_iters, phase_init=args.phase_init,
                    momentum=args.momentum, strength=args.strength, morph=args.morph,
                    crossfade_ms=args.crossfade, mix=args.mix, gain_db=args.gain,
                    device=args.device, models_dir=args.models_dir,
                    keep_latency=args.keep_latency, envelope=args.envelope,
                    resample_quality=args.resample_quality, threads=args.threads)
    bars = _progress_bars(args, jobs)
    reports, failed = [], []
    for src, out in jobs:
        try:
            from .io.files import audio_info

            info_in = audio_info(src)
            events = events_of(info_in.sr) if events_of else ()
            info = render_file(src, out, sr_out=args.sr, format=args.format,
                               subtype=args.subtype, overwrite=args.overwrite, events=events,
                               progress=bars.file(src, info_in.frames), **settings)
        except RtStyleError as err:
            bars.done()
            if single:
                raise
            failed.append(str(src))
            print(f"rtstyle render: skipped {src}: {_one_line(err)}", file=sys.stderr)
            continue
        bars.done()
        report = {**info, "block_size": args.block_size, "lookahead": args.lookahead,
                  "phase_init": args.phase_init, "phase_iters": args.phase_iters,
                  "momentum": args.momentum, "strength": args.strength, "morph": args.morph,
                  "crossfade_ms": args.crossfade, "mix": args.mix, "gain_db": args.gain,
                  "midi": args.midi, "keep_latency": args.keep_latency,
                  "rtstyle_version": __version__}
        reports.append(report)
        if not args.quiet:
            sc = "n/a (silent input)" if info["sc_db"] is None else f"{info['sc_db']:.1f} dB"
            print(f"wrote {out} ({info['duration_s']:.2f} s, {info['sr_out']} Hz, style "
                  f"{info['styles'][0]}): latency {info['latency_samples']} samples "
                  f"({info['latency_ms']:.1f} ms{', kept' if args.keep_latency else ', removed'}),"
                  f" rtf {info['rtf']:.3f}, SC {sc}")
    bars.close()
    if args.report and reports:
        with atomic_output(args.report, overwrite=args.overwrite, protect=protect) as tmp:
            tmp.write_text(json.dumps(reports[0] if single else reports, indent=1) + "\n")
    if not single and not args.quiet:
        print(f"rendered {len(reports)} of {len(jobs)} files"
              + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _one_line(err) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _real(path) -> str:
    """``path`` made absolute with its links resolved as far as they go, to compare outputs
    (``os.path.realpath``: a symlink loop is left as it is, where pathlib's resolve() raised
    RuntimeError)."""
    import os

    return os.path.realpath(os.fspath(path))


def _regular_input(path, flag: str) -> None:
    """Refuse an input that is not a regular file (a FIFO blocks until a writer comes, a device
    never ends); a missing file is left to its reader, which says so."""
    import os
    import stat

    from .errors import ParameterError

    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as err:
        raise ParameterError(f"{flag} {path}: cannot read ({err.strerror or err})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ParameterError(f"{flag} {path}: is not a regular file")


def _warn_no_effect(styles, *, morph, strength) -> None:
    """One warning line for a setting that can do nothing with this style list."""
    styles = list(styles or [])
    if morph and len(styles) < 2:
        log.warning("warning: --morph %g has no effect: it blends toward the next style of the "
                    "list, and the list has one (%s)", morph, styles[0] if styles else "identity")
    if strength is not None and strength != 1 and styles and all(s == "identity" for s in styles):
        log.warning("warning: --strength %g has no effect with the style 'identity' (it blends "
                    "the input toward a style)", strength)


class _progress_bars:
    """tqdm bars, per file and overall, on a terminal and unless -q (no-ops otherwise)."""

    def __init__(self, args, jobs):
        self.on = not args.quiet and sys.stderr.isatty()
        self.total = self.bar = None
        if self.on:
            from tqdm import tqdm

            self._tqdm = tqdm
            if len(jobs) > 1:
                self.total = tqdm(total=len(jobs), unit="file", position=0, leave=True)

    def file(self, src, frames):
        if not self.on:
            return None
        self.bar = self._tqdm(total=frames, unit="smp", unit_scale=True, leave=False,
                              desc=str(src)[-40:], position=1 if self.total else 0)
        return self.bar.update

    def done(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.total is not None:
            self.total.update(1)

    def close(self):
        if self.total is not None:
            self.total.close()


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


def _add_train(sub) -> None:
    from .train.options import DEFAULTS as D
    from .config import TRANSFORM_OUTPUTS

    p = sub.add_parser(
        "train",
        help="train a feed-forward style net (one or several styles) on a corpus",
        formatter_class=_Formatter,
        description=textwrap.dedent("""\
            Train a small causal transform net to do, in one pass per frame, what 'rtstyle
            transfer' does by optimisation: random chunks of the corpus go through the net,
            and the loss is the transfer's (content + Gram style loss through the same seeded
            shallow random encoder on the same features). Several --style options make one
            conditioned model that holds them all. Writes NAME.safetensors + NAME.json (the
            model card). Checkpoints (safetensors + JSON, never pickle) go to --checkpoint-dir
            every --checkpoint-every steps, at the end, on Ctrl-C and on SIGTERM; --resume
            continues one. tools/train_style.py is the same command.
            """),
        epilog=textwrap.dedent("""\
            examples:
              python tools/make_corpus.py        # the corpus, in ~/.cache/rtstyle/corpus
              C=~/.cache/rtstyle/corpus
              rtstyle train --style $C/styles/organ.flac --corpus $C -o models/organ
              rtstyle train --style organ=$C/styles/organ.flac --style choir=$C/styles/choir.flac \\
                  --corpus $C -o models/duo --steps 3000 --filters 1024 --threads 1
              python tools/make_corpus.py --sr 48000 --out ~/.cache/rtstyle/corpus48
              C48=~/.cache/rtstyle/corpus48     # the low-latency organ, native at 48 kHz:
              rtstyle train --style organ=$C48/styles/organ.flac --corpus $C48 -o models/organ-ll \\
                  --sr 48000 --n-fft 512 --hop-length 128 --n-mels 64
              rtstyle train ... --resume         # after Ctrl-C or a kill: same command + --resume
            """),
    )
    p.add_argument("--style", action="append", required=True, metavar="NAME=REF[,REF2...]",
                   help="a style and its reference file(s); repeat for a conditioned model; "
                        "REF alone names the style after the file")
    p.add_argument("--corpus", metavar="DIR",
                   help="content corpus: a folder with manifest.json (tools/make_corpus.py) or "
                        "of audio files (needed unless --from)")
    p.add_argument("--from", dest="from_model", metavar="MODEL", default=None,
                   help="adapt a statistics model (e.g. instruments) to the --style clips in "
                        "seconds, no corpus and no gradient steps: each style is its clips' band "
                        "statistics in MODEL's analysis; -o NAME alone writes to the user models "
                        "folder, usable at once by name")
    p.add_argument("--preview", metavar="FILE.wav", default=None,
                   help="with --from: also render the demo speech clip (examples/speech.flac) "
                        "through the first new style into FILE")
    p.add_argument("-o", "--output", required=True, metavar="models/NAME",
                   help="model to write: NAME.safetensors + NAME.json")
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=int, default=D["steps"], help="Adam steps")
    g.add_argument("--batch-size", type=int, default=D["batch_size"], help="chunks per step")
    g.add_argument("--chunk-frames", type=int, default=D["chunk_frames"],
                   help="STFT frames per chunk that the loss sees")
    g.add_argument("--lr", type=float, default=D["lr"], help="Adam step size")
    g.add_argument("--lr-final", type=float, default=D["lr_final"],
                   help="final step size, as a fraction of --lr (cosine decay)")
    g.add_argument("--content-weight", type=float, default=D["content_weight"],
                   help="weight of the content loss (as rtstyle transfer)")
    g.add_argument("--style-weight", type=float, default=D["style_weight"],
                   help="weight of the Gram style loss (as rtstyle transfer)")
    g.add_argument("--seed", type=int, default=D["seed"],
                   help="net initialisation, chunk draws, validation chunks")
    g.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                   help="stop after this many minutes of training, resumed runs included (the "
                        "checkpoint and the model are as far as it got)")
    g = p.add_argument_group("analysis and loss (the transfer's defaults)")
    g.add_argument("--sr", type=int, default=D["sr"], metavar="HZ", help="sample rate of the model")
    g.add_argument("--n-fft", type=int, default=D["n_fft"], help="FFT size of the model")
    g.add_argument("--hop-length", type=int, default=D["hop_length"], help="STFT hop in samples")
    g.add_argument("--features", choices=("stft", "mel", "mfcc"), default=D["features"],
                   help="what the loss's encoder sees")
    g.add_argument("--n-mels", type=int, default=D["n_mels"], help="mel bands (mel, mfcc)")
    g.add_argument("--n-mfcc", type=int, default=None,
                   help=f"cepstral coefficients (mfcc); default {D['n_mfcc']} or --n-mels if fewer")
    g.add_argument("--filters", type=int, default=D["filters"], help="encoder filters")
    g.add_argument("--encoder-seed", type=int, default=D["encoder_seed"],
                   help="seed of the encoder's random weights (transfer's --seed)")
    g = p.add_argument_group("net")
    g.add_argument("--hidden", type=int, default=D["hidden"], help="hidden channels")
    g.add_argument("--layers", type=int, default=D["layers"], help="dilated causal conv layers")
    g.add_argument("--lookahead", type=int, default=D["lookahead"],
                   help="frames the net looks ahead (latency, in hops)")
    g.add_argument("--net", choices=TRANSFORM_OUTPUTS, default=D["net"],
                   help="what the net writes: a smooth gain curve on the input's spectrum "
                        "(gain, keeps pitch and words) or a log-magnitude residual (the first "
                        f"nets) ({D['net']})")
    g.add_argument("--bands", type=int, default=D["bands"],
                   help=f"mel bands of the gain curve ({D['bands']})")
    g.add_argument("--max-gain-db", type=float, default=D["max_gain_db"], metavar="DB",
                   help=f"bound of each band of the style's static gain ({D['max_gain_db']:g} dB)")
    g.add_argument("--dynamic-gain-db", type=float, default=D["dynamic_gain_db"], metavar="DB",
                   help="bound of each band of the gain that follows the input "
                        f"({D['dynamic_gain_db']:g} dB)")
    g.add_argument("--stats", action=argparse.BooleanOptionalAction, default=D["stats"],
                   help="also match the input's running band statistics to the style "
                        "reference's (gain nets; on)")
    g.add_argument("--stats-seconds", type=float, default=D["stats_seconds"], metavar="S",
                   help=f"window of the input's running statistics ({D['stats_seconds']:g} s)")
    g.add_argument("--stats-spread", type=float, default=D["stats_spread"], metavar="X",
                   help="how far each band's spread is matched, 0 (mean only) to 1 "
                        f"({D['stats_spread']:g})")
    g = p.add_argument_group("run")
    g.add_argument("--device", default=D["device"], help="cpu or cuda (falls back to cpu)")
    g.add_argument("--threads", type=int, default=D["threads"],
                   help="torch CPU threads (default: torch's choice)")
    g.add_argument("--val-every", type=int, default=D["val_every"], help="validate every N steps")
    g.add_argument("--val-chunks", type=int, default=D["val_chunks"],
                   help="held-out chunks for validation")
    g.add_argument("--checkpoint-every", type=int, default=D["checkpoint_every"],
                   help="checkpoint every N steps")
    g.add_argument("--log-every", type=int, default=D["log_every"],
                   help="log line every N steps (when there is no progress bar)")
    g.add_argument("--checkpoint-dir", metavar="DIR", default=None,
                   help="default: ~/.cache/rtstyle/checkpoints/NAME (the user cache folder)")
    g.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --checkpoint-dir")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing model, or a checkpoint when not resuming")
    g.add_argument("--licence", default=None, metavar="TEXT",
                   help="licence of the training audio, added to the card's (the corpus "
                        "manifest's lines are taken automatically)")
    g.add_argument("--note", default=None, metavar="TEXT",
                   help="a note for the model card (e.g. why this encoder width)")
    _common(p)
    p.set_defaults(func=_run_train)


def _adapt(args, out) -> int:
    """``train --from MODEL``: :func:`rtstyle.style_adapt.adapt_styles`, saved at once."""
    import os
    import pathlib
    import time

    from .errors import ParameterError
    from .io.files import check_output_path
    from .models import ENV_VAR, load_model, save_model, user_models_dir
    from .style_adapt import adapt_styles
    from .train.options import parse_style

    styles = [parse_style(spec) for spec in args.style]
    if out.parent == pathlib.Path("."):     # a bare NAME: the user models folder (RTSTYLE_MODELS
        env = os.environ.get(ENV_VAR)       # first, as the styles are found)
        out = (pathlib.Path(env) if env else user_models_dir()) / out.name
        out.parent.mkdir(parents=True, exist_ok=True)
    refs = [r for spec in styles for r in spec.references]
    outputs = [out.with_name(out.name + ".safetensors"), out.with_name(out.name + ".json")]
    if args.preview is not None:
        outputs.append(pathlib.Path(args.preview))
    for path in outputs:             # every output checked before any is written
        check_output_path(path, overwrite=args.overwrite, protect=refs)
    t0 = time.perf_counter()
    net, card = adapt_styles(args.from_model, styles, name=out.name)
    if args.licence:
        card["licence"] = args.licence
    save_model(net, card, out, overwrite=args.overwrite)
    if not args.quiet:
        trims = card["training"]["level_trim_db"] or {}
        names = ", ".join(f"{s.name} (trim {trims.get(s.name, 0):+.1f} dB)" for s in styles)
        print(f"wrote {out}.safetensors + {out.name}.json in {time.perf_counter() - t0:.1f} s: "
              f"{names}; use it as --style {out.name}", file=sys.stderr)
    if args.preview is not None:
        from .render import render_file
        from .style_adapt import EXAMPLES

        demo = EXAMPLES / "speech.flac"
        if not demo.is_file():
            raise ParameterError(f"--preview {args.preview}: the demo clip {demo} is not here "
                                 "(an installed package without examples/)")
        render_file(demo, args.preview, style=[(load_model(out), 0)], overwrite=args.overwrite)
        if not args.quiet:
            print(f"wrote {args.preview}: {demo.name} through {out.name}:{styles[0].name}",
                  file=sys.stderr)
    return 0


def _run_train(args) -> int:
    import pathlib

    from .errors import ParameterError
    from .io.files import check_output_path
    from .train.options import TrainSettings, parse_style

    out = pathlib.Path(args.output)
    if out.is_dir() or args.output.endswith(("/", "\\")):
        raise ParameterError(f"--output {args.output}: is a folder; give models/NAME")
    if out.suffix.lower() in (".safetensors", ".json"):
        out = out.with_name(out.stem)
    from .nn._weights import PICKLE_SUFFIXES

    if out.suffix.lower() in PICKLE_SUFFIXES:      # save_model refuses it: say so before training
        raise ParameterError(f"--output {args.output}: rtstyle models are never pickles; give "
                             f"{out.with_suffix('')} (writes {out.stem}.safetensors + "
                             f"{out.stem}.json)")
    if args.from_model is not None:
        return _adapt(args, out)
    if args.corpus is None:
        raise ParameterError("--corpus DIR is needed to train (or --from MODEL to adapt one)")
    if args.preview is not None:
        raise ParameterError(f"--preview {args.preview}: needs --from (a trained model has its "
                             "own preview: rtstyle render)")
    weights, card = (out.with_name(out.name + ext) for ext in (".safetensors", ".json"))
    settings = TrainSettings(
        name=out.name, styles=tuple(parse_style(spec) for spec in args.style),
        corpus=args.corpus, sr=args.sr, n_fft=args.n_fft, hop_length=args.hop_length,
        features=args.features, n_mels=args.n_mels, n_mfcc=args.n_mfcc, filters=args.filters,
        encoder_seed=args.encoder_seed, content_weight=args.content_weight,
        style_weight=args.style_weight, hidden=args.hidden, layers=args.layers,
        lookahead=args.lookahead, net=args.net, bands=args.bands, max_gain_db=args.max_gain_db,
        dynamic_gain_db=args.dynamic_gain_db, stats=args.stats,
        stats_seconds=args.stats_seconds, stats_spread=args.stats_spread,
        steps=args.steps, batch_size=args.batch_size,
        chunk_frames=args.chunk_frames, lr=args.lr, lr_final=args.lr_final, seed=args.seed,
        device=args.device, threads=args.threads, val_every=args.val_every,
        val_chunks=args.val_chunks, checkpoint_every=args.checkpoint_every,
        log_every=args.log_every, licence=args.licence,
        extra={"note": args.note} if args.note else {},
    )
    if args.time_limit is not None and not args.time_limit > 0:
        raise ParameterError(f"--time-limit={args.time_limit} must be a positive number of minutes")
    refs = [r for spec in settings.styles for r in spec.references]
    for path in (weights, card):   # fail now, not after an hour of training
        check_output_path(path, overwrite=args.overwrite, protect=refs)

    from .models import save_model
    from .train import train

    result = train(settings, checkpoint_dir=args.checkpoint_dir, resume=args.resume,
                   overwrite=args.overwrite, time_limit=args.time_limit,
                   progress=not args.quiet and sys.stderr.isatty())
    save_model(result.net, result.card, out, overwrite=args.overwrite)
    if not args.quiet:
        q = result.card["quality"]["styles"]
        styles = ", ".join(f"{n} style {v['s_content']:.3g} -> {v['s_ff']:.3g}"
                           for n, v in q.items())
        print(f"wrote {weights} + {card.name}: {result.steps} steps in "
              f"{result.card['training']['wall_time_s'] / 60:.1f} min; val {styles}")
    return 0


def _add_live(sub) -> None:
    from .control import CC_PARAMS
    from .io.midi import APIS as MIDI_APIS
    from .live import DEFAULTS as D, KEY_HELP, ON_DROPOUT
    from .render import ENVELOPES, PHASE_INITS, RESAMPLE_QUALITIES

    S = argparse.SUPPRESS            # unset flags fall back to --preset, then to the defaults
    p = sub.add_parser(
        "live",
        help="live stylisation: sound card in, styled sound out",
        formatter_class=_Formatter,
        description=textwrap.dedent(f"""\
            Stylise the input of a sound card (or a JACK server) live, through the same engine
            as 'rtstyle render': every listed style is loaded and warmed up before the stream
            opens; the first is heard. The device rate is resampled to the models' when they
            differ. A missed deadline plays the delay-aligned dry signal (or silence) and counts
            a dropout; the latency never drifts. Ctrl-C (or q, SIGTERM, SIGHUP) stops cleanly
            and keeps the recordings; a summary and --report follow. Recordings are written in
            place with their header updated every second: after a kill -9 or a crash they are
            valid files holding all but the last second.
            On a terminal: {KEY_HELP}.
            Latency = engine + buffer (prefill, resampling) + what PortAudio reports for the
            devices; 'rtstyle latency-test' measures the device part with a loopback.
            """),
        epilog=textwrap.dedent("""\
            examples:
              rtstyle live --style identity                     # hear the engine, no style
              rtstyle live --style organ,choir --mix 0.8 --record wet.wav --record-dry dry.wav
              rtstyle live --input 'USB' --output 'USB' --sr 48000 --block-size 128
              rtstyle live --style instruments:organ --sr 48000 --block-size 64 \\
                  --resample-quality LQ          # a 22.05 kHz model: less resampler delay
              rtstyle live --preset stage.toml --duration 600 --report live.json
              rtstyle live --style organ --strength 0.7 --save-preset stage.toml --overwrite
              JACK_DEFAULT_SERVER=myserver rtstyle live   # JACK ports rtstyle:in_N, rtstyle:out_N
              rtstyle live --style organ,choir --midi 'nanoKONTROL'   # program change 0/1
              rtstyle live --midi-virtual rtstyle --midi-api jack --midi-channel 2
              rtstyle live --midi 0 --midi-learn morph --save-midi-map knobs.toml
              rtstyle live --midi 0 --midi-map knobs.toml
            """),
    )
    g = p.add_argument_group("style and engine (default: --preset, else the value shown)")
    g.add_argument("--style", default=S, metavar="A[,B...]",
                   help="style list: 'identity', MODEL or MODEL:STYLE, comma-separated "
                        "(default: the styles of 'rtstyle styles' that share the first one's STFT; keys "
                        "1-9 pick one)")
    g.add_argument("--style-ref", action="append", metavar="CLIP", help=_STYLE_REF_HELP)
    g.add_argument("--strength", type=float, default=S, metavar="X",
                   help=f"0..1 blend of the input's and the style's spectra ({D['strength']})")
    g.add_argument("--morph", type=float, default=S, metavar="X",
                   help=f"0..1 blend toward the next style ({D['morph']})")
    g.add_argument("--mix", type=float, default=S, metavar="X",
                   help=f"0..1 wet share, the dry part delay-aligned ({D['mix']})")
    g.add_argument("--gain", type=float, default=S, metavar="DB",
                   help=f"output gain in dB before the -0.1 dBFS limiter ({D['gain_db']})")
    g.add_argument("--bypass", action="store_true", default=S,
                   help="start bypassed (dry, delay-aligned; space toggles)")
    g.add_argument("--crossfade", type=float, default=S, metavar="MS",
                   help=f"style switch crossfade ({D['crossfade_ms']:g} ms)")
    g.add_argument("--envelope", choices=ENVELOPES, default=S,
                   help=_ENVELOPE_HELP.format(default=D["envelope"]))
    g.add_argument("--device", default=S, metavar="cpu|cuda",
                   help="where the style nets run (cpu)")
    g.add_argument("--n-fft", type=int, default=S, metavar="N",
                   help="FFT size (the models'; 1024 for identity)")
    g.add_argument("--hop-length", type=int, default=S, metavar="N",
                   help="STFT hop (the models'; 256 for identity)")
    g.add_argument("--lookahead", type=int, default=S, metavar="N",
                   help=f"phase look-ahead in frames, 0..3 ({D['lookahead']})")
    g.add_argument("--phase-init", choices=PHASE_INITS, default=S,
                   help=f"initial phase of each new frame ({D['phase_init']})")
    g.add_argument("--phase-iters", type=int, default=S, metavar="N",
                   help="fast Griffin-Lim projections per hop (the engine's default for the "
                        "phase init)")
    g.add_argument("--momentum", type=float, default=S, metavar="X",
                   help="fast Griffin-Lim momentum in [0, 1) (the engine's default)")
    g.add_argument("--resample-quality", type=str.upper, choices=RESAMPLE_QUALITIES, default=S,
                   help=_RESAMPLE_HELP.format(default=D["resample_quality"]))
    g.add_argument("--threads", type=int, default=S, metavar="N",
                   help=_THREADS_HELP.format(default=D["threads"]))
    g.add_argument("--models-dir", metavar="DIR", help="user model folder")
    g = p.add_argument_group("audio devices")
    g.add_argument("--input", metavar="DEV", help="input device: number or part of the name "
                   "(see 'rtstyle devices'; default: the system's)")
    g.add_argument("--output", metavar="DEV", help="output device (default: the system's)")
    g.add_argument("--input-channel", type=int, default=1, metavar="N",
                   help="input channel to stylise, from 1")
    g.add_argument("--output-channels", type=int, default=None, metavar="N",
                   help="output channels, each gets the signal (default: 2, or 1 if mono)")
    g.add_argument("--input-gain", type=float, default=S, metavar="DB",
                   help=f"gain on the input before everything ({D['input_gain_db']} dB)")
    g.add_argument("--sr", type=int, default=None, metavar="HZ",
                   help="device rate (default: the models' if the devices take it, else "
                        "theirs; resampled to the models' rate)")
    g.add_argument("--block-size", type=int, default=S, metavar="N",
                   help=f"frames per audio callback ({D['block_size']})")
    g.add_argument("--latency", default="low", metavar="low|high|SECONDS",
                   help="PortAudio's suggested device latency")
    g.add_argument("--margin", type=float, default=S, metavar="MS",
                   help=f"buffering beyond the minimum: slack for the engine "
                        f"({D['margin_ms']:g} ms)")
    g.add_argument("--on-dropout", choices=ON_DROPOUT, default=S,
                   help=f"what a missed deadline plays ({D['on_dropout']})")
    g = p.add_argument_group(
        "MIDI control (see 'rtstyle midi-ports'; default mapping: program change n -> style n, "
        "CC1 morph, CC2 strength, CC7 gain 40*log10(v/127) dB, CC11 mix, CC64 bypass)")
    g.add_argument("--midi", nargs="?", const=True, default=S, metavar="PORT",
                   help="MIDI input port: a name, a part of one, or an index (alone: the "
                        "first port)")
    g.add_argument("--midi-virtual", default=S, metavar="NAME",
                   help="create a MIDI input port NAME for others to connect to (with JACK: "
                        "rtstyle-midi:NAME)")
    g.add_argument("--midi-api", choices=MIDI_APIS, default=S,
                   help="MIDI backend (default: each compiled one in turn)")
    g.add_argument("--midi-channel", type=int, default=S, metavar="1..16",
                   help="listen on this channel only (default: omni)")
    g.add_argument("--midi-map", default=S, metavar="FILE.toml",
                   help="MIDI mapping (TOML: channel, program, [cc] NUMBER = PARAM)")
    g.add_argument("--midi-learn", choices=tuple(CC_PARAMS), default=None, metavar="PARAM",
                   help=f"bind the next moved controller to PARAM ({_choices(CC_PARAMS)})")
    g.add_argument("--save-midi-map", metavar="FILE.toml",
                   help="write the MIDI mapping at exit (learned bindings included)")
    g = p.add_argument_group("run and outputs")
    g.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C or q)")
    g.add_argument("--record", metavar="WET.wav", help="record the engine's output")
    g.add_argument("--record-dry", metavar="DRY.wav", help="record the input as processed")
    g.add_argument("--record-subtype", metavar="ST",
                   help="PCM_16, PCM_24, FLOAT, ... (default PCM_24 where the format has it)")
    g.add_argument("--preset", metavar="FILE.toml", help="load engine and mix settings")
    g.add_argument("--save-preset", metavar="FILE.toml",
                   help="write the settings at exit (key changes included)")
    g.add_argument("--report", metavar="FILE.json",
                   help="latency, blocks, dropouts, xruns, worker times (at exit)")
    g.add_argument("--overwrite", action="store_true", help="replace existing output files")
    g.add_argument("--no-keys", action="store_true", help="do not read keys from the terminal")
    _common(p)
    p.set_defaults(func=_run_live)


#: rtstyle live flag → preset/settings key.
_STYLE_REF_HELP = ("a recording (10 s or more) whose sound is a style at once, no training (its "
                   "band statistics; appended to --style, or the only style without it); "
                   "repeatable")


def _with_refs(styles: list, refs) -> list:
    """The style list with a zero-shot ``ref=CLIP`` entry appended per ``--style-ref``."""
    from .style_ref import REF_PREFIX

    return list(styles) + [REF_PREFIX + str(r) for r in (refs or [])]


_LIVE_FLAGS = {"style": "style", "strength": "strength", "morph": "morph", "mix": "mix",
               "gain": "gain_db", "bypass": "bypass", "crossfade": "crossfade_ms",
               "envelope": "envelope",
               "device": "device", "n_fft": "n_fft", "hop_length": "hop_length",
               "lookahead": "lookahead", "phase_init": "phase_init",
               "phase_iters": "phase_iters", "momentum": "momentum",
               "resample_quality": "resample_quality", "threads": "threads",
               "input_gain": "input_gain_db", "block_size": "block_size", "margin": "margin_ms",
               "on_dropout": "on_dropout", "midi": "midi", "midi_virtual": "midi_virtual",
               "midi_api": "midi_api", "midi_channel": "midi_channel", "midi_map": "midi_map"}


def _run_live(args) -> int:
    import contextlib
    import json
    import pathlib

    from .errors import ParameterError, RtStyleError
    from .io.files import atomic_output, check_output_path
    from .live import KEY_HELP, KeyReader, LiveSession, Panel, load_preset, save_preset

    outs = [o for o in (args.record, args.record_dry, args.report, args.save_preset,
                        args.save_midi_map) if o]
    if len({_real(o) for o in outs}) != len(outs):
        raise ParameterError("--record, --record-dry, --report, --save-preset and "
                             "--save-midi-map must be different files")
    for o in (args.report, args.save_preset, args.save_midi_map):
        if o:
            check_output_path(o, overwrite=args.overwrite)
    if args.duration is not None and not args.duration > 0:
        raise ParameterError(f"--duration {args.duration}: must be a positive number of seconds")
    if args.preset:
        _regular_input(args.preset, "--preset")
    if isinstance(getattr(args, "midi_map", None), str):
        _regular_input(args.midi_map, "--midi-map")
    settings = load_preset(args.preset) if args.preset else {}
    if hasattr(args, "midi") and hasattr(args, "midi_virtual"):
        raise ParameterError("--midi opens a port, --midi-virtual creates one: give one of them")
    for flag, other in (("midi", "midi_virtual"), ("midi_virtual", "midi")):
        if hasattr(args, flag):               # the flag wins over the preset's other one
            settings.pop(other, None)
    for flag, key in _LIVE_FLAGS.items():
        if hasattr(args, flag):
            settings[key] = getattr(args, flag)
    if settings.get("midi") is None and settings.get("midi_virtual") is None:
        used = [f for f, given in (("--midi-learn", args.midi_learn),
                                   ("--save-midi-map", args.save_midi_map),
                                   ("--midi-map", hasattr(args, "midi_map")),
                                   ("--midi-api", hasattr(args, "midi_api")),
                                   ("--midi-channel", hasattr(args, "midi_channel"))) if given]
        if used:
            raise ParameterError(f"{', '.join(used)} need{'s' if len(used) == 1 else ''} a MIDI "
                                 "port: --midi PORT or --midi-virtual NAME")
    if isinstance(settings.get("style"), str):
        from .render import style_list

        settings["style"] = style_list(settings["style"])
    if args.style_ref:
        settings["style"] = _with_refs(settings.get("style") or [], args.style_ref)
    if settings.get("style") is not None:
        _warn_no_effect(settings["style"], morph=settings.get("morph"),
                        strength=settings.get("strength"))
    quiet = args.quiet
    session = LiveSession(settings, input=args.input, output=args.output,
                          input_channel=args.input_channel, output_channels=args.output_channels,
                          sr=args.sr, latency=args.latency, record=args.record,
                          record_dry=args.record_dry, record_subtype=args.record_subtype,
                          overwrite=args.overwrite, models_dir=args.models_dir,
                          midi_learn=args.midi_learn)
    keys = None if args.no_keys or quiet else KeyReader.open()
    error = None
    with session:
        r = session.report()
        if not quiet:
            dev_in, dev_out = r["device_latency_samples"]
            resampled = (f", engine at {r['model_sr']} Hz (resampled, soxr "
                         f"{r['resample_quality']})"
                         if r["model_sr"] != r["sr"] else "")
            print(f"rtstyle live: {session.choice.input_name} -> {session.choice.output_name} "
                  f"({session.choice.hostapi}), {r['sr']} Hz{resampled}, block {r['block_size']}",
                  file=sys.stderr)
            print(f"rtstyle live: styles {', '.join(r['styles'])}; latency {r['latency_samples']}"
                  f" samples ({r['latency_ms']:.1f} ms) = engine {r['engine_latency_samples']} + "
                  f"buffer {r['buffer_samples']} + device {dev_in}+{dev_out}", file=sys.stderr)
            midi_lines = session.describe_midi()
            if midi_lines:
                print("rtstyle live: " + "\n  ".join(midi_lines.splitlines()), file=sys.stderr)
            print(f"rtstyle live: {KEY_HELP if keys else 'Ctrl-C stops'}", file=sys.stderr)
        panel = None if quiet else Panel(sys.stderr)
        with keys if keys is not None else contextlib.nullcontext():
            try:
                report = session.run(args.duration, panel=panel, keys=keys)
            except RtStyleError as err:
                report, error = session.report(), err
    if args.report:
        with atomic_output(args.report, overwrite=args.overwrite) as tmp:
            tmp.write_text(json.dumps(report, indent=1) + "\n")
    if args.save_preset:
        save_preset(args.save_preset, session.settings, overwrite=args.overwrite)
    if args.save_midi_map:
        session.mapping.save(args.save_midi_map, overwrite=args.overwrite)
    if not quiet:
        p50, p99 = report["worker_p50_ms"], report["worker_p99_ms"]
        work = "n/a" if p50 is None else f"{p50:.2f}/{p99:.2f} ms (of {report['deadline_ms']:.1f})"
        saved = [o for o in (args.record, args.record_dry, args.report, args.save_preset,
                             args.save_midi_map) if o]
        print(f"live: {report['duration_s']:.1f} s, {report['blocks']} blocks, "
              f"{report['dropouts']} dropouts, {report['xruns']} xruns, worker p50/p99 {work}, "
              f"latency {report['latency_samples']} samples ({report['latency_ms']:.1f} ms)"
              + (f"; wrote {', '.join(saved)}" if saved else ""))
        m = report.get("midi")
        if m is not None:
            learned = ", ".join(f"CC{cc} -> {param}" for cc, param in m["learned"])
            print(f"midi: {m['received']} messages, {m['events']} events applied, "
                  f"{m['overflow'] + m['oversized']} dropped, {m['errors']} errors"
                  + (f"; learned {learned}" if learned else ""))
    if error is not None:
        raise error
    return 0


def _add_devices(sub) -> None:
    p = sub.add_parser(
        "devices",
        help="list audio host APIs and devices (channels, rates)",
        formatter_class=_Formatter,
        description=textwrap.dedent("""\
            List what PortAudio sees: host APIs, and each device with its input and output
            channels, default rate and the standard rates it accepts (probed). '>' marks the
            default input, '<' the default output. A JACK server shows up as a JACK device
            (the server named by $JACK_DEFAULT_SERVER, else the default one).
            """),
        epilog=textwrap.dedent("""\
            examples:
              rtstyle devices
              rtstyle devices --json
            """),
    )
    p.add_argument("--json", action="store_true", help="print a JSON object (hostapis, devices)")
    p.add_argument("--no-probe", action="store_true", help="do not probe the rates")
    _common(p)
    p.set_defaults(func=_run_devices)


def _run_devices(args) -> int:
    import json

    from .io import audio

    apis = audio.hostapis()
    devs = audio.list_devices(probe=not args.no_probe)
    if args.json:
        print(json.dumps({"hostapis": apis, "devices": devs}, indent=1))
        return 0
    print("host APIs: " + ", ".join(f"{a['name']} ({len(a['devices'])} device"
                                    f"{'' if len(a['devices']) == 1 else 's'})" for a in apis))
    if not devs:
        print("no audio devices (no sound card; for a JACK server, start it and set "
              "JACK_DEFAULT_SERVER if it has a name)")
        return 0
    rows = [("", "#", "NAME", "HOST API", "IN", "OUT", "DEFAULT SR", "RATES")]
    for d in devs:
        mark = ((">" if d["default_input"] else " ") + ("<" if d["default_output"] else " "))
        rates = sorted(set(d.get("input_rates", [])) | set(d.get("output_rates", [])))
        rows.append((mark, str(d["index"]), d["name"], d["hostapi"],
                     str(d["max_input_channels"]), str(d["max_output_channels"]),
                     str(d["default_samplerate"]),
                     ", ".join(map(str, rates)) if not args.no_probe else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1])
    return 0


def _add_latency_test(sub) -> None:
    from .render import RESAMPLE_QUALITIES

    p = sub.add_parser(
        "latency-test",
        help="measure the round-trip latency with clicks through a loopback",
        formatter_class=_Formatter,
        description=textwrap.dedent("""\
            Play short clicks through the output and capture them at the input: connect the
            output to the input with a cable (or a routing: JACK, a virtual device). Prints
            the measured round trip (median) and its jitter next to the figure rtstyle
            computes from what PortAudio reports. 'rtstyle live' adds its engine latency
            and buffer to this round trip; --style shows that sum.
            """),
        epilog=textwrap.dedent("""\
            examples:
              rtstyle latency-test
              rtstyle latency-test --input 'USB' --output 'USB' --sr 48000 --block-size 64
              rtstyle latency-test --style identity --json
              jack_connect rtstyle:out_0 rtstyle:in_0   # (while it runs) a JACK loopback
            """),
    )
    p.add_argument("--input", metavar="DEV", help="input device (see 'rtstyle devices')")
    p.add_argument("--output", metavar="DEV", help="output device")
    p.add_argument("--input-channel", type=int, default=1, metavar="N", help="from 1")
    p.add_argument("--output-channels", type=int, default=None, metavar="N",
                   help="output channels (default: 2, or 1 if mono); clicks on each")
    p.add_argument("--sr", type=int, default=None, metavar="HZ", help="device rate")
    p.add_argument("--block-size", type=int, default=256, metavar="N", help="frames per callback")
    p.add_argument("--latency", default="low", metavar="low|high|SECONDS",
                   help="PortAudio's suggested device latency")
    p.add_argument("--duration", type=float, default=4.0, metavar="S", help="length of the test")
    p.add_argument("--interval", type=float, default=0.5, metavar="S",
                   help="time between clicks (longer than the round trip)")
    p.add_argument("--style", metavar="A[,B...]",
                   help="also show what 'live --style' would measure (engine + buffer added)")
    p.add_argument("--margin", type=float, default=None, metavar="MS",
                   help="live's --margin, for --style")
    p.add_argument("--resample-quality", type=str.upper, choices=RESAMPLE_QUALITIES,
                   default="HQ", help="live's --resample-quality, for --style")
    p.add_argument("--models-dir", metavar="DIR", help="user model folder, for --style")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    _common(p)
    p.set_defaults(func=_run_latency_test)


def _run_latency_test(args) -> int:
    import json

    from .errors import DeviceError
    from .live import DEFAULTS, latency_test, live_buffering

    if not args.quiet and not args.json:
        print(f"rtstyle latency-test: {args.duration:g} s of clicks every {args.interval:g} s; "
              "the output must reach the input (cable or routing)", file=sys.stderr)
    r = latency_test(input=args.input, output=args.output, sr=args.sr,
                     block_size=args.block_size, latency=args.latency,
                     input_channel=args.input_channel, output_channels=args.output_channels,
                     duration=args.duration, interval=args.interval)
    if args.style:
        margin = DEFAULTS["margin_ms"] if args.margin is None else args.margin
        eng, buf = live_buffering(args.style, sr=r["sr"], block_size=args.block_size,
                                  margin_ms=margin, models_dir=args.models_dir,
                                  resample_quality=args.resample_quality)
        r["live"] = {"style": args.style, "engine_latency_samples": eng, "buffer_samples": buf,
                     "resample_quality": args.resample_quality,
                     "expected_samples": None if r["measured_samples"] is None
                     else r["measured_samples"] + eng + buf,
                     "computed_samples": r["computed_samples"] + eng + buf}
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        sr = r["sr"]
        if r["measured_samples"] is not None:
            print(f"round trip, measured: {r['measured_samples']} samples "
                  f"({r['measured_ms']:.1f} ms at {sr} Hz), jitter {r['jitter_samples']} samples "
                  f"peak to peak ({r['detected']} of {r['clicks']} clicks)")
        print(f"round trip, computed: {r['computed_samples']} samples ({r['computed_ms']:.1f} ms:"
              f" input {r['device_latency_samples'][0]} + output "
              f"{r['device_latency_samples'][1]}, as PortAudio reports)")
        if "live" in r:
            lv = r["live"]
            base = (f"expect {lv['expected_samples']} samples "
                    f"({1000 * lv['expected_samples'] / sr:.1f} ms) from this measurement, "
                    if lv["expected_samples"] is not None else "")
            print(f"live --style {lv['style']} adds engine {lv['engine_latency_samples']} + "
                  f"buffer {lv['buffer_samples']}: {base}{lv['computed_samples']} computed")
        if r["xruns"]:
            print(f"note: {r['xruns']} xruns during the test")
    if r["measured_samples"] is None:
        raise DeviceError(f"no click came back in {r['clicks']} tries: connect the output to "
                          "the input (a cable, or a routing such as "
                          "'jack_connect rtstyle:out_0 rtstyle:in_0')")
    return 0


def _add_midi_ports(sub) -> None:
    p = sub.add_parser(
        "midi-ports",
        help="list MIDI input ports (for 'live --midi')",
        formatter_class=_Formatter,
        description=textwrap.dedent("""\
            List the MIDI input ports python-rtmidi sees, per backend API (ALSA, JACK,
            CoreMIDI, WinMM), and why an API does not work (no ALSA sequencer, no JACK
            server). 'live --midi' takes a port's name, a part of it, or its index; with
            JACK the server is $JACK_DEFAULT_SERVER (the default one when unset).
            """),
        epilog=textwrap.dedent("""\
            examples:
              rtstyle midi-ports
              rtstyle midi-ports --midi-api jack --json
            """),
    )
    p.add_argument("--midi-api", choices=("alsa", "jack", "coremidi", "winmm"), default=None,
                   help="only this API (default: every compiled one)")
    p.add_argument("--json", action="store_true", help="print a JSON object (apis, ports)")
    _common(p)
    p.set_defaults(func=_run_midi_ports)


def _run_midi_ports(args) -> int:
    import json

    from .io import midi

    apis = midi.probe_apis(args.midi_api, require=True)
    if args.json:
        ports = [{"api": a["api"], "index": i, "name": n}
                 for a in apis for i, n in enumerate(a["ports"])]
        print(json.dumps({"apis": apis, "ports": ports}, indent=1))
        return 0
    for a in apis:
        if not a["available"]:
            print(f"{a['api']}: unavailable: {a['error']}")
            continue
        n = len(a["ports"])
        print(f"{a['api']}: {n} input port{'' if n == 1 else 's'}")
        for i, name in enumerate(a["ports"]):
            print(f"  {i}  {name}")
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
    _add_live(sub)
    _add_styles(sub)
    _add_devices(sub)
    _add_midi_ports(sub)
    _add_latency_test(sub)
    _add_train(sub)
    return parser


def _setup_logging(args) -> None:
    level = logging.ERROR if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rtstyle: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C's ``KeyboardInterrupt``, so the
    same clean-ups run: temp files removed, recordings finished, a training checkpointed."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.stopped_by = _signal_name(signum).lower()


def _signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class _StopSignals:
    """While a command runs: SIGTERM and SIGHUP act like Ctrl-C (:class:`_Stopped`).

    Only the first one raises; later ones are ignored while the clean-up runs (a second
    Ctrl-C still interrupts it). Installed only in the main thread, and the previous handlers
    are restored at exit (``main`` is also called in-process, by tests).

    A signal that lands while Python runs a finaliser (a ``__del__``, a weakref callback:
    numba and llvmlite free objects that way mid-render) would raise where Python can only
    print "Exception ignored" and carry on, so the stop would be lost and a traceback shown.
    While installed, ``sys.unraisablehook`` catches such a swallowed stop (or Ctrl-C), prints
    nothing, and delivers the signal again a moment later from a helper thread, so it raises
    in ordinary code.
    """

    #: Seconds before a swallowed stop is delivered again.
    REDELIVER_S = 0.005

    def __init__(self):
        self.signum: int | None = None
        self._raised = False
        self._old = {}
        self._old_hook = None
        self._timers = []

    def _handler(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        if self.signum == signum and not self._raised:
            self._raised = True
            raise _Stopped(signum)

    def _unraisable(self, unraisable):
        import os
        import signal
        import threading

        exc = unraisable.exc_value
        if isinstance(exc, _Stopped):
            self._raised = False                  # let the redelivered signal raise
            signum = exc.signum
        elif isinstance(exc, KeyboardInterrupt):  # Ctrl-C swallowed the same way
            signum = signal.SIGINT
        else:
            return self._old_hook(unraisable)
        timer = threading.Timer(self.REDELIVER_S, os.kill, (os.getpid(), signum))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in ("SIGTERM", "SIGHUP"):
                sig = getattr(signal, name, None)
                if sig is not None:
                    try:
                        self._old[sig] = signal.signal(sig, self._handler)
                    except (OSError, ValueError):
                        pass
            self._old_hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
        return self

    def __exit__(self, *exc):
        import signal

        for timer in self._timers:         # the command ended first: main reports the stop
            timer.cancel()
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if self._old_hook is not None:
            sys.unraisablehook = self._old_hook
        return False


def _say(line: str) -> None:
    """Print one line to stderr; after SIGHUP the terminal may be gone (EIO): say nothing."""
    try:
        print(line, file=sys.stderr)
    except OSError:
        pass


#: Flags (argparse dests) that size an allocation or a loop, and the bounds they are held to
#: (``rtstyle._validate.LIMITS``; rates ``MIN_SR..MAX_SR``), checked before any command runs.
_SIZE_FLAGS = ("n_fft", "hop_length", "block_size", "phase_iters", "lookahead", "filters",
               "n_mels", "n_mfcc", "kernel_size", "pool_width", "hidden", "layers", "bands",
               "steps", "iterations", "batch_size", "chunk_frames", "val_chunks", "threads",
               "input_channel", "output_channels")
#: Float flags with bounds: (lowest, highest).
_FLOAT_FLAGS = {"crossfade": (0.0, 60000.0), "margin": (0.0, 10000.0),
                "duration": (0.0, 1e7), "interval": (0.0, 3600.0)}


def _check_sizes(parser, args) -> None:
    """Every size flag within its bounds (one line, exit 2, as argparse's own errors)."""
    import math

    from ._validate import LIMITS, MAX_SR, MIN_SR

    prog = f"{parser.prog} {args.command}"

    def error(message):
        parser.exit(2, f"{prog}: error: {message} (see '{prog} --help')\n")

    checks = [(dest, LIMITS[dest]) for dest in _SIZE_FLAGS] + [("sr", (MIN_SR, MAX_SR))]
    for dest, (lo, hi) in checks:
        value = getattr(args, dest, None)
        if isinstance(value, int) and not isinstance(value, bool) and not lo <= value <= hi:
            unit = " Hz" if dest == "sr" else ""
            error(f"argument --{dest.replace('_', '-')}: {dest}={value} is out of bounds "
                  f"({lo}..{hi}{unit})")
    for dest, (lo, hi) in _FLOAT_FLAGS.items():
        value = getattr(args, dest, None)
        if isinstance(value, float) and not (math.isfinite(value) and lo <= value <= hi):
            error(f"argument --{dest.replace('_', '-')}: {dest}={value:g} is out of bounds "
                  f"({lo:g}..{hi:g})")


def _safe_streams() -> None:
    """Print file names that are not valid in the terminal's encoding (a non-UTF-8 name, held
    as surrogate escapes) escaped, instead of failing with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict":
            try:
                stream.reconfigure(errors="backslashreplace")
            except (AttributeError, ValueError, OSError):
                pass


def _os_error_line(err: OSError) -> str:
    """One line for an OSError that no rtstyle check turned into its own error."""
    what = err.strerror or str(err) or type(err).__name__
    name = err.filename
    if name is not None:
        name = name if isinstance(name, str) else repr(name)
        return f"{name}: {what[:1].lower()}{what[1:]}"
    return " ".join(what.split())


def main(argv=None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error, 130 interrupted, 128 + n on
    signal n: SIGTERM 143, SIGHUP 129)."""
    _safe_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _check_sizes(parser, args)
    _setup_logging(args)
    from .errors import RtStyleError

    with _StopSignals() as stop:
        try:
            status = args.func(args)
        except RtStyleError as err:
            if stop.signum is not None:        # a signal cut the work short, then this
                _say(f"rtstyle: stopped by {_signal_name(stop.signum)}: {err}")
                return 128 + stop.signum
            _say(f"rtstyle: error: {err}")
            return 2
        except KeyboardInterrupt:
            if stop.signum is not None:
                _say(f"rtstyle: stopped by {_signal_name(stop.signum)}; "
                     "no partial output was written")
                return 128 + stop.signum
            _say("rtstyle: interrupted; no partial output was written")
            return 130
        except OSError as err:
            if stop.signum is not None:        # e.g. printing to the terminal SIGHUP closed
                return 128 + stop.signum
            # an OS failure no check foresaw (a full disk, a folder we may not read): one line
            _say(f"rtstyle: error: {_os_error_line(err)}")
            return 2
        except RecursionError:
            _say("rtstyle: error: an input is nested too deeply to read (RecursionError)")
            return 2
        except MemoryError:
            _say("rtstyle: error: out of memory (an input or a setting asks for more than this "
                 "machine has)")
            return 2
        if stop.signum is not None:            # a command that stops on it (live) and kept
            _say(f"rtstyle: stopped by {_signal_name(stop.signum)}")     # its outputs
            return 128 + stop.signum
        return status
