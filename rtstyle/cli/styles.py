"""``rtstyle styles``: the bundled and user styles."""

from __future__ import annotations

from .common import add_command, log


def add(sub) -> None:
    p = add_command(
        sub, "styles",
        help="list the bundled and user styles",
        description="""\
            List every style of every model rtstyle can find: the bundled models first, then
            the user models (--models-dir, else $RTSTYLE_MODELS, else the user data folder,
            e.g. ~/.local/share/rtstyle/models), each by name. A style is named MODEL (a
            model with one style) or MODEL:STYLE; this order is the default style list of
            'render' and 'live'. A model whose files are broken is listed with its error.
            Latency is the engine's with the model's default streaming settings.
            """,
        epilog="""\
            examples:
              rtstyle styles
              rtstyle styles --json > styles.json
              rtstyle styles --models-dir ~/my-models
            """,
    )
    p.add_argument("--json", action="store_true",
                   help="print a JSON list (name, model, path, sr, n_fft, hop_length, "
                        "latency_ms, styles, bundled, error)")
    p.add_argument("--models-dir", metavar="DIR", default=None,
                   help="user models folder (default: $RTSTYLE_MODELS or the user data folder)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..models import list_styles, model_folders

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
