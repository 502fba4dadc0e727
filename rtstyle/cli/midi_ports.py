"""``rtstyle midi-ports``: the MIDI input ports per backend API."""

from __future__ import annotations

from .common import add_command


def add(sub) -> None:
    from ..io.midi import APIS as MIDI_APIS

    p = add_command(
        sub, "midi-ports",
        help="list MIDI input ports (for 'live --midi')",
        description="""\
            List the MIDI input ports python-rtmidi sees, per backend API (ALSA, JACK,
            CoreMIDI, WinMM), and why an API does not work (no ALSA sequencer, no JACK
            server). 'live --midi' takes a port's name, a part of it, or its index; with
            JACK the server is $JACK_DEFAULT_SERVER (the default one when unset).
            """,
        epilog="""\
            examples:
              rtstyle midi-ports
              rtstyle midi-ports --midi-api jack --json
            """,
    )
    p.add_argument("--midi-api", choices=tuple(MIDI_APIS), default=None,
                   help="only this API (default: every compiled one)")
    p.add_argument("--json", action="store_true", help="print a JSON object (apis, ports)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..io import midi

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
