"""How much of the timbre gain the performer's register allows: the instrument itself, played in
each input's register, judged like a style.

    python tools/judge_register.py [--style instruments:cello,instruments:flute]
        [--heldout ~/.cache/rtstyle/heldout] [--clips 4] [--json out/register.json]

``tools/judge.py``'s timbre gain, ``1 - FD(out, ref) / FD(in, ref)`` on 64-band log-mel
statistics, compares a style's output with *one* recording of the instrument, which plays in
one register. A style that keeps the input's pitch keeps its register, and a single line's
log-mel statistics describe where it plays as much as what plays it (the harmonics' spacing
against the mel bands, the notes' range). This tool measures that limit instead of arguing it.
For every held-out clip it renders the held-out reference's own notes, with the same soundfont,
transposed by the whole semitones between the reference's median pitch and the clip's
(torchcrepe ``tiny``, the frames with periodicity >= 0.5), and reports per style (medians over
the clips, speech and music apart):

register bound
    the timbre gain of *the instrument itself in the input's register* against the reference
    as it is: what a style that turned the input into exactly that instrument, keeping its
    pitch, would score. It is a calibration, not a ceiling: a style can score more by staying
    nearer the reference's own register or sustain than the instrument would in its place.
bound with the input's loudness
    the same, with the transposed instrument cut to the input's length and each of its frames
    scaled to the input's frame level (silent where the input is): what a style that also keeps
    the performer's loudness, as it must, would score. A sustained reference has no pauses; a
    voice has, and the log-mel statistics count them.
loudness alone
    the reference as it is (its own register), cut and scaled the same way: the loudness's
    share of the cost without the register's.
gain (fixed reference)
    the style's own gain, as ``tools/judge.py`` reports it.
gain (register-matched)
    the style's gain toward the transposed reference of each clip: how near the output is to
    the instrument playing where the performer plays.

Transpositions can leave the instrument's compass (a flute has nothing below C4, a voice sits
an octave or two lower); the soundfont then stretches its nearest sample, as any sampler does.
The table counts the clips whose transposed notes leave the compass in
``tools/make_heldout.py``'s ``RANGES``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import judge  # noqa: E402  (tools/ is not a package)
import make_heldout  # noqa: E402
from judge import ToolError, instrument_of, read_heldout, render, timbre_gain, to16  # noqa: E402

from rtstyle.dsp.stft import istft, stft  # noqa: E402

DEFAULT_STYLES = ",".join(f"instruments:{name}" for name in judge.INSTRUMENTS)
#: The report's columns (module docstring), in its table's order.
KEYS = ("bound", "bound_loudness", "loudness_alone", "gain", "gain_register")
#: The largest transposition tried, in semitones (three octaves).
MAX_SHIFT = 36


def median_midi(y: np.ndarray, sr: int, tracker) -> float | None:
    """The median pitch (MIDI, fractional) of the frames ``tracker`` finds voiced; None if
    fewer than 5 are."""
    f0, per = tracker(to16(y, sr))
    f = f0[(per >= 0.5) & (f0 > 0)]
    if len(f) < 5:
        return None
    return float(np.median(69.0 + 12.0 * np.log2(f / 440.0)))


def transposed(plan: dict, shift: int) -> dict:
    """A copy of a ``make_heldout.reference_plan`` with every note ``shift`` semitones up."""
    out = copy.deepcopy(plan)
    for voice in out["voices"]:
        voice["notes"] = [(o, d, tuple(p + shift for p in ps), *rest)
                          for o, d, ps, *rest in voice["notes"]]
    return out


def with_loudness(y: np.ndarray, envelope_of: np.ndarray, *, n_fft: int = 2048,
                  hop_length: int = 512) -> np.ndarray:
    """``y`` cut to ``envelope_of``'s length, each STFT frame scaled to the RMS of
    ``envelope_of``'s frame (frames of ``y`` more than 60 dB under its loudest are left as
    they are rather than raised)."""
    n = len(envelope_of)
    if len(y) < n:
        y = np.tile(y, -(-n // len(y)))
    y = y[:n]
    Y = stft(y, n_fft=n_fft, hop_length=hop_length)
    E = np.abs(stft(envelope_of, n_fft=n_fft, hop_length=hop_length))
    rms_y = np.sqrt(np.mean(np.abs(Y) ** 2, axis=0))
    rms_e = np.sqrt(np.mean(E ** 2, axis=0))
    floor = 1e-3 * max(float(rms_y.max()), 1e-12)
    gain = np.where(rms_y > floor, rms_e / np.maximum(rms_y, floor), 1.0)
    return istft(Y * gain, hop_length=hop_length, n_fft=n_fft, length=n).astype(np.float32)


def leaves_compass(plan: dict, shift: int, instrument: str) -> bool:
    lo, hi, _ = make_heldout.RANGES[instrument]
    pitches = [p + shift for v in plan["voices"] for _, _, ps, *_ in v["notes"] for p in ps]
    return min(pitches) < lo or max(pitches) > hi


def check_soundfont(soundfont: Path, folder: Path) -> None:
    """Stop unless ``soundfont`` is the one the held-out references were rendered with."""
    if not soundfont.is_file():
        raise ToolError(f"--soundfont {soundfont}: no such file (install "
                        f"musescore-general-soundfont-small, or pass the one the held-out set "
                        f"used)")
    man = judge.heldout_manifest(folder)
    want = (man.get("soundfont") or {}).get("sha256")
    have = hashlib.sha256(soundfont.resolve().read_bytes()).hexdigest()
    if want and want != have:
        raise ToolError(f"--soundfont {soundfont}: not the soundfont {folder} was rendered with "
                        f"({man['soundfont'].get('file')}, sha256 {want[:12]}...)")


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def judge_styles(styles: list[str], data: dict, sr: int, soundfont: Path, tracker,
                 log=print) -> dict:
    """Per style, per clip: the register bound and the style's two gains (module docstring)."""
    clips = [(kind, c) for kind in ("speech", "music") for c in data[kind]]
    pitch = {c["name"]: median_midi(c["y"], sr, tracker) for _, c in clips}
    report = {"input_pitch_midi": pitch, "styles": {}}
    with tempfile.TemporaryDirectory(prefix="rtstyle-register-") as tmp:
        for style in styles:
            name = instrument_of(style)
            if name is None or name not in data["references"]:
                raise ToolError(f"--style {style}: the held-out set has no reference of its "
                                f"instrument ({', '.join(sorted(data['references']))})")
            ref = data["references"][name]
            ref_pitch = median_midi(ref, sr, tracker)
            plan = make_heldout.reference_plan(name)
            renders: dict[int, np.ndarray] = {}
            rows = []
            t0 = time.perf_counter()
            for kind, c in clips:
                if pitch[c["name"]] is None or ref_pitch is None:
                    continue
                shift = int(np.clip(round(pitch[c["name"]] - ref_pitch), -MAX_SHIFT, MAX_SHIFT))
                if shift not in renders:
                    renders[shift] = make_heldout.render(transposed(plan, shift), Path(tmp),
                                                         soundfont, sr)
                y_out, _ = render(style, c["y"], sr, {})
                rows.append({
                    "clip": c["name"], "kind": kind, "shift": shift,
                    "outside_compass": leaves_compass(plan, shift, name),
                    "bound": timbre_gain(c["y"], renders[shift], ref, sr),
                    "bound_loudness": timbre_gain(c["y"], with_loudness(renders[shift], c["y"]),
                                                  ref, sr),
                    "loudness_alone": timbre_gain(c["y"], with_loudness(ref, c["y"]), ref, sr),
                    "gain": timbre_gain(c["y"], y_out, ref, sr),
                    "gain_register": timbre_gain(c["y"], y_out, renders[shift], sr),
                })
            summary = {"reference_pitch_midi": ref_pitch, "clips": len(rows),
                       "outside_compass": sum(r["outside_compass"] for r in rows)}
            for key in KEYS:
                for kind in ("speech", "music", None):
                    summary[f"{key}_{kind or 'all'}"] = median(
                        r[key] for r in rows if kind is None or r["kind"] == kind)
            report["styles"][style] = {"summary": summary, "clips": rows}
            log(f"judge_register: {style} in {time.perf_counter() - t0:.0f} s: "
                f"bound {summary['bound_all']:.2f}, with the input's loudness "
                f"{summary['bound_loudness_all']:.2f}, gain {summary['gain_all']:.2f}, "
                f"register-matched {summary['gain_register_all']:.2f}")
    return report


def _f(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def markdown(report: dict) -> str:
    names = ("register bound", "bound with the input's loudness", "loudness alone",
             "gain, fixed reference", "gain, register-matched")
    lines = ["| style (speech / music / all) | reference's median pitch | " + " | ".join(names)
             + " | clips outside the compass |",
             "|---|" + "---:|" * (len(names) + 2)]
    for style, entry in report["styles"].items():
        s = entry["summary"]
        cols = [" / ".join(_f(s[f"{key}_{k}"]) for k in ("speech", "music", "all"))
                for key in KEYS]
        lines.append(f"| {style} | {_f(s['reference_pitch_midi'])} | {' | '.join(cols)} | "
                     f"{s['outside_compass']} of {s['clips']} |")
    return "\n".join(lines)


def _register(args) -> None:
    """main() after its arguments: judge_register's whole run."""
    styles = judge.style_list(args.style)
    folder = args.heldout or judge.default_heldout()
    sr = int(judge.heldout_manifest(folder).get("sr", 22050))
    check_soundfont(args.soundfont, folder)
    data = read_heldout(folder, sr, args.clips)
    report = judge_styles(styles, data, sr, args.soundfont, judge.PitchTracker(),
                          log=lambda m: print(m, file=sys.stderr))
    print(markdown(report))
    judge.write_text(args.json, json.dumps(report, indent=1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--style", default=DEFAULT_STYLES,
                   help=f"comma-separated styles, each naming a held-out instrument "
                        f"(default {DEFAULT_STYLES})")
    p.add_argument("--heldout", type=Path, default=None,
                   help=f"held-out set folder (default {judge.default_heldout()})")
    p.add_argument("--soundfont", type=Path, default=make_heldout.SOUNDFONT,
                   help=f"the soundfont the held-out set was rendered with "
                        f"(default {make_heldout.SOUNDFONT})")
    p.add_argument("--clips", type=int, default=None, help="at most N speech and N music clips")
    p.add_argument("--json", type=Path, default=None, help="write the full report here")
    args = p.parse_args(argv)
    return judge.run_tool("judge_register", lambda: _register(args), make_heldout.ToolError)


if __name__ == "__main__":
    sys.exit(main())
