"""``rtstyle latency-test``: the round trip through a loopback, measured with clicks."""

from __future__ import annotations

import sys

from .common import add_command


def add(sub) -> None:
    from ..constants import RESAMPLE_QUALITIES
    from ..engine_settings import DEFAULTS as ENGINE

    p = add_command(
        sub, "latency-test",
        help="measure the round-trip latency with clicks through a loopback",
        description="""\
            Play short clicks through the output and capture them at the input: connect the
            output to the input with a cable (or a routing: JACK, a virtual device). Prints
            the measured round trip (median) and its jitter next to the figure rtstyle
            computes from what PortAudio reports. 'rtstyle live' adds its engine latency
            and buffer to this round trip; --style shows that sum.
            """,
        epilog="""\
            examples:
              rtstyle latency-test
              rtstyle latency-test --input 'USB' --output 'USB' --sr 48000 --block-size 64
              rtstyle latency-test --style identity --json
              jack_connect rtstyle:out_0 rtstyle:in_0   # (while it runs) a JACK loopback
            """,
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
                   default=ENGINE["resample_quality"],
                   help="live's --resample-quality, for --style")
    p.add_argument("--models-dir", metavar="DIR", help="user model folder, for --style")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..errors import DeviceError
    from ..live import DEFAULTS, latency_test, live_buffering

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
