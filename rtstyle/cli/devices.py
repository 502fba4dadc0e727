"""``rtstyle devices``: PortAudio's host APIs and devices."""

from __future__ import annotations

from .common import add_command


def add(sub) -> None:
    p = add_command(
        sub, "devices",
        help="list audio host APIs and devices (channels, rates)",
        description="""\
            List what PortAudio sees: host APIs, and each device with its input and output
            channels, default rate and the standard rates it accepts (probed). '>' marks the
            default input, '<' the default output. A JACK server shows up as a JACK device
            (the server named by $JACK_DEFAULT_SERVER, else the default one).
            """,
        epilog="""\
            examples:
              rtstyle devices
              rtstyle devices --json
            """,
    )
    p.add_argument("--json", action="store_true", help="print a JSON object (hostapis, devices)")
    p.add_argument("--no-probe", action="store_true", help="do not probe the rates")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..io import audio

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
