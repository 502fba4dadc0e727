"""``rtstyle render``: files and folders through the live engine."""

from __future__ import annotations

import sys

from .. import __version__
from .common import (add_command, add_engine_flags, engine_settings, one_line, real_path,
                     regular_input, warn_no_effect, with_refs)


def add(sub) -> None:
    from ..render import DEFAULTS

    p = add_command(
        sub, "render",
        help="file to file through the live streaming engine",
        description="""\
            Run IN through the live engine (the Streamer), fed --block-size samples at a time
            exactly as a sound card would deliver them, with its channels, at the models' rate
            (IN is resampled to it and back). By default OUT is aligned with IN and of its
            length (the engine latency removed); --keep-latency writes exactly what live would
            play (IN sample t at OUT sample t + latency).
            """,
        epilog="""\
            examples:
              rtstyle render examples/speech.flac -o out/speech_organ.wav --style instruments:organ
              rtstyle render voice.wav -o out.wav --style instruments:organ,instruments:choir \\
                  --morph 0.5 --strength 0.8
              rtstyle render voice.wav -o live.wav --keep-latency --block-size 128
              rtstyle render voice.wav -o out.wav --style identity --phase-init rtpghi \\
                  --lookahead 3 --report out.json
            """,
    )
    p.add_argument("input", nargs="+", help="audio file(s) or folder(s) to render")
    p.add_argument("-o", "--output", required=True,
                   help="output file (format from its extension); a folder for several inputs "
                        "or a folder input (same names inside)")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders")
    g = add_engine_flags(p)
    g.add_argument("--block-size", type=int, default=DEFAULTS["block_size"], metavar="N",
                   help="samples per engine call (the output does not depend on it; larger "
                        "blocks let the nets take several frames per call)")
    g = p.add_argument_group("automation")
    g.add_argument("--midi", metavar="FILE.mid",
                   help="replay a MIDI file's program and control changes (DESIGN mapping)")
    g.add_argument("--midi-map", metavar="FILE.toml",
                   help="the MIDI mapping (as 'live --midi-map'; default: DESIGN's)")
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
    p.set_defaults(func=run)


def _render_jobs(args):
    """[(input, output)] from the command line: files, or folders mirrored into -o."""
    import pathlib

    from ..errors import AudioFileError, ParameterError
    from ..io.files import AUDIO_EXTENSIONS

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


def run(args) -> int:
    import functools
    import json

    from ..errors import ParameterError, RtStyleError
    from ..io.files import atomic_output, check_output_path
    from ..render import render_file, style_list

    jobs, single = _render_jobs(args)
    outs = [real_path(o) for _, o in jobs] + ([real_path(args.report)] if args.report else [])
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
    styles = with_refs(style_list(args.style, models_dir=args.models_dir)
                       if args.style or not args.style_ref else [], args.style_ref)
    warn_no_effect(styles, morph=args.morph, strength=args.strength)
    events_of = None
    if args.midi_map and not args.midi:       # as live: a mapping with nothing to map
        raise ParameterError("--midi-map needs a MIDI file: --midi FILE.mid")
    if args.midi:
        from ..control import Mapping, midi_file_events

        regular_input(args.midi, "--midi")
        if args.midi_map:
            regular_input(args.midi_map, "--midi-map")

        mapping = Mapping.load(args.midi_map) if args.midi_map else Mapping()
        events_of = functools.partial(midi_file_events, args.midi, mapping=mapping,
                                      n_styles=len(styles))
    settings = engine_settings(args, style=styles)
    bars = _progress_bars(args, jobs)
    reports, failed = [], []
    for src, out in jobs:
        try:
            from ..io.files import audio_info

            info_in = audio_info(src)
            events = events_of(sr=info_in.sr) if events_of else ()
            info = render_file(src, out, sr_out=args.sr, format=args.format,
                               subtype=args.subtype, overwrite=args.overwrite, events=events,
                               progress=bars.file(src, info_in.frames), settings=settings,
                               block_size=args.block_size, models_dir=args.models_dir,
                               keep_latency=args.keep_latency)
        except RtStyleError as err:
            bars.done()
            if single:
                raise
            failed.append(str(src))
            print(f"rtstyle render: skipped {src}: {one_line(err)}", file=sys.stderr)
            continue
        bars.done()
        report = {**info, "block_size": args.block_size, "midi": args.midi,
                  "keep_latency": args.keep_latency, "rtstyle_version": __version__}
        reports.append(report)
        if not args.quiet:
            sc = "n/a (silent input)" if info["sc_db"] is None else f"{info['sc_db']:.1f} dB"
            print(f"wrote {out} ({info['duration_s']:.2f} s, {info['sr_out']} Hz, style "
                  f"{info['styles'][0]}): latency {info['latency_samples']} samples "
                  f"({info['latency_ms']:.1f} ms{', kept' if args.keep_latency else ', removed'}),"
                  f" rtf {info['rtf']:.3f} (+{info['startup_s']:.1f} s to start), SC {sc}")
    bars.close()
    if args.report and reports:
        with atomic_output(args.report, overwrite=args.overwrite, protect=protect) as tmp:
            tmp.write_text(json.dumps(reports[0] if single else reports, indent=1) + "\n")
    if not single and not args.quiet:
        print(f"rendered {len(reports)} of {len(jobs)} files"
              + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


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
