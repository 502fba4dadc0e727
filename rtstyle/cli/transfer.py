"""``rtstyle transfer``: offline style transfer by optimisation (the seed method)."""

from __future__ import annotations

import sys

from .. import __version__
from .common import add_command, log, real_path

PLOT_FORMATS = ("png", "pdf", "svg", "jpg", "jpeg")


def add(sub) -> None:
    from ..config import ACTIVATIONS, FEATURE_KINDS, MEL_INVERSES, POOLS
    from ..transfer import CONTENT_LOSSES, DEFAULTS as D, INITS, OPTIMIZERS, PHASES

    p = add_command(
        sub, "transfer",
        help="offline style transfer by optimisation (the seed method)",
        description="""\
            Style CONTENT with the timbre of STYLE by optimising its spectrogram through a
            wide, shallow, random conv encoder (Ulyanov & Lebedev 2016): content loss plus
            Gram-matrix style loss, L-BFGS, then Griffin-Lim. Minutes per clip: the reference
            method, not the live engine. The output has the content's rate, channels, length.
            """,
        epilog="""\
            examples:
              rtstyle transfer examples/speech.flac examples/melody.flac -o out/speech_cello.wav
              rtstyle transfer voice.wav organ.flac -o out.wav --plot out.png --log-json out.json
              rtstyle transfer voice.wav organ.flac -o out.wav --content-weight 0.1   # more style
              # the original 2016 baseline (about 6 minutes for 10 s on 2 CPU cores):
              rtstyle transfer c.wav s.wav -o base.wav --features stft --filters 4096 \\
                  --iterations 300 --phase-iters 500 --activation relu --init random \\
                  --content-weight 4.2
            """,
    )
    p.add_argument("content", help="audio file whose words/notes are kept")
    p.add_argument("style", help="audio file whose timbre/texture is imposed")
    p.add_argument("-o", "--output", required=True, help="output audio file (format from its extension)")
    g = p.add_argument_group("features and encoder")
    g.add_argument("--features", choices=FEATURE_KINDS, default=D["features"],
                   help="spectral feature the encoder sees")
    g.add_argument("--n-mels", type=int, default=D["n_mels"], help="mel bands (mel, mfcc)")
    g.add_argument("--n-mfcc", type=int, default=D["n_mfcc"], help="cepstral coefficients (mfcc)")
    g.add_argument("--filters", type=int, default=D["filters"], help="encoder filters (seed: 4096)")
    g.add_argument("--kernel-size", type=int, default=D["kernel_size"], help="encoder width in frames")
    g.add_argument("--activation", choices=ACTIVATIONS, default=D["activation"])
    g.add_argument("--pool", choices=POOLS, default=D["pool"], help="pooling over time")
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
    g.add_argument("--mel-inverse", choices=MEL_INVERSES, default=D["mel_inverse"],
                   help="mel/MFCC back to a linear magnitude")
    g = p.add_argument_group("run and outputs")
    g.add_argument("--seed", type=int, default=D["seed"], help="encoder weights, init and phase")
    g.add_argument("--device", default=D["device"], help="cpu or cuda (falls back to cpu)")
    g.add_argument("--overwrite", action="store_true", help="replace existing output files")
    g.add_argument("--plot", metavar="FIG.png", help="content, style and result spectrograms")
    g.add_argument("--log-json", metavar="FILE", help="settings, losses per iteration, timings")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import pathlib

    from ..errors import ParameterError
    from ..io.files import check_output_path, load_audio, resample, save_audio
    from ..transfer import transfer

    inputs = [args.content, args.style]
    outputs = [o for o in (args.output, args.plot, args.log_json) if o]
    if len({real_path(o) for o in outputs}) != len(outputs):
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
        from ..plot import save_figure, spectrogram_figure

        fig = spectrogram_figure(
            [(f"content: {pathlib.Path(args.content).name}", result.S_content[0]),
             (f"style: {pathlib.Path(args.style).name}", result.S_style[0]),
             (f"result ({result.settings['features']}, {result.settings['iterations']} it)",
              result.S_result[0])],
            sr=result.processing_sr, hop_length=result.stft.hop_length,
            fmax=min(result.processing_sr / 2, 8000))
        save_figure(fig, args.plot, overwrite=args.overwrite, protect=inputs)
    if args.log_json:
        from ..dsp.metrics import logmel_frechet
        from ..io.files import atomic_output

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
