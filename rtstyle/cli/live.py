"""``rtstyle live``: a sound card through the engine, with keys, MIDI, presets, recordings."""

from __future__ import annotations

import argparse
import sys

from .common import (add_command, add_engine_flags, choices_text, real_path, regular_input,
                     warn_no_effect, with_refs)


def add(sub) -> None:
    from ..control import CC_PARAMS
    from ..io.midi import APIS as MIDI_APIS
    from ..live import DEFAULTS as D, KEY_HELP, ON_DROPOUT

    S = argparse.SUPPRESS            # unset flags fall back to --preset, then to the defaults
    p = add_command(
        sub, "live",
        help="live stylisation: sound card in, styled sound out",
        description=f"""\
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
            """,
        epilog="""\
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
            """,
    )
    add_engine_flags(p, preset=True)
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
    g.add_argument("--midi-api", choices=tuple(MIDI_APIS), default=S,
                   help="MIDI backend (default: each compiled one in turn)")
    g.add_argument("--midi-channel", type=int, default=S, metavar="1..16",
                   help="listen on this channel only (default: omni)")
    g.add_argument("--midi-map", default=S, metavar="FILE.toml",
                   help="MIDI mapping (TOML: channel, program, [cc] NUMBER = PARAM)")
    g.add_argument("--midi-learn", choices=tuple(CC_PARAMS), default=None, metavar="PARAM",
                   help=f"bind the next moved controller to PARAM ({choices_text(CC_PARAMS)})")
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
    p.set_defaults(func=run)


#: live's own flags (argparse dests) → their settings key; the engine's flags are the
#: settings' names (:func:`rtstyle.cli.common.add_engine_flags`).
_RUN_FLAGS = {"input_gain": "input_gain_db", "block_size": "block_size", "margin": "margin_ms",
              "on_dropout": "on_dropout", "midi": "midi", "midi_virtual": "midi_virtual",
              "midi_api": "midi_api", "midi_channel": "midi_channel", "midi_map": "midi_map"}


def run(args) -> int:
    import contextlib
    import json

    from ..errors import ParameterError, RtStyleError
    from ..io.files import atomic_output, check_output_path
    from ..live import KEY_HELP, KeyReader, LiveSession, Panel, load_preset, save_preset

    outs = [o for o in (args.record, args.record_dry, args.report, args.save_preset,
                        args.save_midi_map) if o]
    if len({real_path(o) for o in outs}) != len(outs):
        raise ParameterError("--record, --record-dry, --report, --save-preset and "
                             "--save-midi-map must be different files")
    for o in (args.report, args.save_preset, args.save_midi_map):
        if o:
            check_output_path(o, overwrite=args.overwrite)
    if args.duration is not None and not args.duration > 0:
        raise ParameterError(f"--duration {args.duration}: must be a positive number of seconds")
    if args.preset:
        regular_input(args.preset, "--preset")
    if isinstance(getattr(args, "midi_map", None), str):
        regular_input(args.midi_map, "--midi-map")
    settings = load_preset(args.preset) if args.preset else {}
    if hasattr(args, "midi") and hasattr(args, "midi_virtual"):
        raise ParameterError("--midi opens a port, --midi-virtual creates one: give one of them")
    for flag, other in (("midi", "midi_virtual"), ("midi_virtual", "midi")):
        if hasattr(args, flag):               # the flag wins over the preset's other one
            settings.pop(other, None)
    from ..engine_settings import PARAMS

    for flag, key in {**{k: k for k in PARAMS}, **_RUN_FLAGS}.items():
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
        from ..render import style_list

        settings["style"] = style_list(settings["style"])
    if args.style_ref:
        settings["style"] = with_refs(settings.get("style") or [], args.style_ref)
    if settings.get("style") is not None:
        warn_no_effect(settings["style"], morph=settings.get("morph"),
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
