"""``rtstyle train``: a style net trained on a corpus, or a statistics model adapted to clips
(``--from``); ``tools/train_style.py`` is the same command."""

from __future__ import annotations

import argparse
import sys

from .common import add_command


def add(sub) -> None:
    from ..train.options import DEFAULTS as D
    from ..config import FEATURE_KINDS, TRANSFORM_OUTPUTS

    p = add_command(
        sub, "train",
        help="train a feed-forward style net (one or several styles) on a corpus",
        description="""\
            Train a small causal transform net to do, in one pass per frame, what 'rtstyle
            transfer' does by optimisation: random chunks of the corpus go through the net,
            and the loss is the transfer's (content + Gram style loss through the same seeded
            shallow random encoder on the same features). Several --style options make one
            conditioned model that holds them all. Writes NAME.safetensors + NAME.json (the
            model card). Checkpoints (safetensors + JSON, never pickle) go to --checkpoint-dir
            every --checkpoint-every steps, at the end, on Ctrl-C and on SIGTERM; --resume
            continues one. tools/train_style.py is the same command.
            """,
        epilog="""\
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
            """,
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
    g.add_argument("--features", choices=FEATURE_KINDS, default=D["features"],
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
    p.set_defaults(func=run)


def _adapt(args, out) -> int:
    """``train --from MODEL``: :func:`rtstyle.style_adapt.adapt_styles`, saved at once."""
    import os
    import pathlib
    import time

    from ..errors import ParameterError
    from ..io.files import check_output_path
    from ..models import ENV_VAR, load_model, save_model, user_models_dir
    from ..style_adapt import adapt_styles
    from ..train.options import parse_style

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
    net, card = adapt_styles(args.from_model, styles, name=out.name, progress=not args.quiet)
    if args.licence:
        card["licence"] = args.licence
    save_model(net, card, out, overwrite=args.overwrite)
    if not args.quiet:
        trims = card["training"]["level_trim_db"] or {}
        names = ", ".join(f"{s.name} (trim {trims.get(s.name, 0):+.1f} dB)" for s in styles)
        print(f"wrote {out}.safetensors + {out.name}.json in {time.perf_counter() - t0:.1f} s: "
              f"{names}; use it as --style {out.name}", file=sys.stderr)
    if args.preview is not None:
        from ..render import render_file
        from ..style_level import EXAMPLES

        demo = EXAMPLES / "speech.flac"
        if not demo.is_file():
            raise ParameterError(f"--preview {args.preview}: the demo clip {demo} is not here "
                                 "(an installed package without examples/)")
        render_file(demo, args.preview, style=[(load_model(out), 0)], overwrite=args.overwrite)
        if not args.quiet:
            print(f"wrote {args.preview}: {demo.name} through {out.name}:{styles[0].name}",
                  file=sys.stderr)
    return 0


def run(args) -> int:
    import pathlib

    from ..errors import ParameterError
    from ..io.files import check_output_path
    from ..train.options import TrainSettings, parse_style

    out = pathlib.Path(args.output)
    if out.is_dir() or args.output.endswith(("/", "\\")):
        raise ParameterError(f"--output {args.output}: is a folder; give models/NAME")
    if out.suffix.lower() in (".safetensors", ".json"):
        out = out.with_name(out.stem)
    from ..nn._weights import PICKLE_SUFFIXES

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

    from ..models import save_model
    from ..train import train

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
