#!/usr/bin/env python3
"""Zero-shot from the instrument's own recording, against the bundled style: the README table.

    python tools/judge_zero_shot.py [--heldout ~/.cache/rtstyle/heldout] [--seconds 12]
    python tools/judge_zero_shot.py --new-instruments [violin,clarinet,trumpet,oboe,altosax]
        [--clips 4] [--tagger-python PY] [--json out/new-instruments.json]

Each held-out reference (tools/make_heldout.py) is cut in two: its first ``--seconds`` become a
``--style-ref`` style, the rest is the judge's reference. The timbre gain
(``tools/judge.py``'s ``timbre_gain``, median over every held-out clip) of that zero-shot style
is printed beside the bundled ``instruments:NAME`` style's, judged against the same rest.

``--new-instruments`` does it for instruments no bundled style has (issue 15's targets). Per
instrument it makes (once, in ``--work``) three recordings: a FluidR3 reference of
bundled-style chorales (make_corpus.py's EXTRA_STYLES) whose statistics model
(tools/make_stats_model.py, level trims on ``--corpus``) is the *fully trained* style, as the
bundled ones are; a MuseScore General judge reference and, from other tunes, the performer's
own 30-s clip (make_heldout.py's reference_plan). Every held-out speech and music clip is then
judged with tools/judge.py's judges, toward the judge reference, through the identity path,
the full style, the zero-shot ``--style-ref`` of the clip, and ``rtstyle train --from
models/instruments.safetensors --style NAME=CLIP`` (timed, pinned to one core).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import judge  # noqa: E402
from make_demo_clips import ToolError as MakeError  # noqa: E402  (make_corpus's, make_heldout's)

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rtstyle"

#: ``--new-instruments``: instruments no bundled style has. The judge reference (20 s) and the
#: performer's own 30-s clip of each are MuseScore General renders of Ryan's Mammoth tunes, two
#: for the one and three others for the other (none in training or the held-out set).
NEW_TUNES = {
    "violin": (("BallAndPinHornpipe", "BirdOnTheWingJig"),
               ("BraesOfAuchentyreReel", "ComeToTheRaffleJig", "DustyMillersJig")),
    "clarinet": (("FightAboutTheFiresideReel", "HoopDeDooDenDooJig"),
                 ("JackSmithsFavoriteReel", "MissGaysReel", "LadyWalpolesReel")),
    "trumpet": (("LittleHouseRoundTheCornerJig", "MaidsComplaintJig"),
                ("KeelRowReel", "MrsHogansGooseJig", "RedStockingsJig")),
    "oboe": (("OldTanglefootHornpipe", "PalmettoHornpipe"),
             ("PresidentGarfieldsHornpipe", "NewWeddingReel", "SamHidesJig")),
    "altosax": (("SnowFlakeHornpipe", "TeddyMalosJig"),
                ("TwoFortyReel", "WhipplesHornpipe", "42dHighlandRegimentStrathspey")),
}
NEW_BPM = 100
USER_SECONDS = 30.0
FLUID = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
#: musicnn's MagnaTagATune vocabulary names only the violin of them.
NEW_TAG_GROUPS = {"violin": ("violin", "strings", "cello")}
ROLES = ("full", "judge", "user")


def render_new(name: str, role: str, key: int, sr: int, tmp: Path) -> np.ndarray:
    """One recording of ``name``: ``full`` (FluidR3, what its fully trained style is made of),
    ``judge`` or ``user`` (MuseScore General, other tunes)."""
    import make_corpus
    import make_heldout

    if role == "full":
        p = make_corpus.style_plan(name, FLUID)
        return make_corpus.render_voices(p["voices"], p["bpm"], p["quarters"], tmp, FLUID, sr)
    j = ROLES.index(role) - 1
    spec = (make_heldout.PROGRAMS[name], NEW_BPM,
            [(f"ryansMammoth/{t}.abc", None, (0,), None) for t in NEW_TUNES[name][j]])
    plan = make_heldout.reference_plan(name, spec, (make_heldout.REFERENCE_SECONDS,
                                                    USER_SECONDS)[j], 100 + 2 * key + j)
    return make_heldout.render(plan, tmp, make_heldout.SOUNDFONT, sr)


def new_material(names: list[str], work: Path, sr: int) -> dict:
    """``{name: {role: path}}``, each recording made once in ``work``."""
    import make_corpus
    import make_heldout
    from rtstyle.io.files import save_audio

    ours = {f"ryansMammoth/{t}.abc" for n in names for tunes in NEW_TUNES[n] for t in tunes}
    used = {w for ws in make_corpus.sources().values() for w in ws}
    used |= {w for _, w, _, _ in make_heldout.MELODIES}
    if ours & used:
        raise judge.ToolError(f"tune(s) also in training or the held-out set: {ours & used}")
    out = {}
    for k, name in enumerate(names):
        out[name] = {}
        for role in ROLES:
            path = work / f"{role}-{name}.flac"
            if not path.is_file():
                with tempfile.TemporaryDirectory() as tmp:
                    save_audio(path, render_new(name, role, k, sr, Path(tmp)), sr=sr)
            out[name][role] = path
    return out


def full_model(names: list[str], files: dict, work: Path, corpus: Path) -> Path:
    """The fully trained styles: tools/make_stats_model.py over a card naming the FluidR3
    references (written by rtstyle.style_adapt from the bundled model's analysis)."""
    import make_stats_model

    from rtstyle.models import save_model
    from rtstyle.style_adapt import adapt_styles
    from rtstyle.train.options import StyleSpec

    specs = [StyleSpec(n, (str(files[n]["full"]),)) for n in names]
    net, card = adapt_styles("instruments", specs, name="full-src")
    save_model(net, card, work / "full-src", overwrite=True)
    if make_stats_model.main(["--from", str(work / "full-src.json"), "--corpus", str(corpus),
                              "-o", str(work / "full"), "--overwrite"]):
        raise judge.ToolError("make_stats_model failed")
    return work / "full.json"


def fine_tune(name: str, clip: Path, work: Path) -> float:
    """``rtstyle train --from models/instruments.safetensors --style NAME=CLIP`` on one core;
    its wall seconds."""
    cmd = [sys.executable, "-m", "rtstyle", "train", "--from",
           str(ROOT / "models" / "instruments.safetensors"), "--style", f"{name}={clip}",
           "-o", str(work / f"tuned-{name}"), "--overwrite", "-q"]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode:
        raise judge.ToolError(f"train --from for {name} failed: {res.stderr.strip()[-300:]}")
    return time.perf_counter() - t0


def new_instruments(args) -> int:
    from rtstyle.io.files import atomic_output, audio_info, load_audio

    names = [n.strip() for n in args.new_instruments.split(",") if n.strip()]
    unknown = sorted(set(names) - set(NEW_TUNES))
    if unknown:
        raise judge.ToolError(f"--new-instruments: unknown {unknown}; choose from "
                              f"{','.join(NEW_TUNES)}")
    sr, work = 22050, args.work
    work.mkdir(parents=True, exist_ok=True)
    times = {}
    t0 = time.perf_counter()
    files = new_material(names, work, sr)
    times["material"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = full_model(names, files, work, args.corpus)
    times["full_model"] = time.perf_counter() - t0
    times["fine_tune"] = {n: fine_tune(n, files[n]["user"], work) for n in names}
    seconds = {n: {r: round(audio_info(p).frames / sr, 2) for r, p in f.items()}
               for n, f in files.items()}
    print(f"judge_zero_shot: material {times['material']:.0f} s, full model "
          f"{times['full_model']:.0f} s, fine-tuning "
          + ", ".join(f"{n} {s:.1f} s" for n, s in times["fine_tune"].items()), file=sys.stderr)
    # judge.py finds a condition's reference (and tag group) by the instrument its name holds
    judge.INSTRUMENTS = (*judge.INSTRUMENTS, *names)
    judge.TAG_GROUPS = {**judge.TAG_GROUPS, **NEW_TAG_GROUPS}
    data = judge.read_heldout(args.heldout, sr, args.clips)
    data["references"] = {n: load_audio(files[n]["judge"], sr=sr, mono=True)[0] for n in names}
    jd = judge.Judge(tagger_python=args.tagger_python)
    conds = {"identity": "identity"}
    for n in names:
        conds.update({f"{n}: full": f"{full}:{n}",
                      f"{n}: zero-shot": f"{judge.REF_PREFIX}{files[n]['user']}",
                      f"{n}: fine-tuned": f"{work / f'tuned-{n}.json'}:{n}"})
    report = {"instruments": names, "seconds": seconds, "times_s": times,
              "files": {n: {r: str(p) for r, p in f.items()} for n, f in files.items()},
              "summary": {}, "clips": {}}
    with tempfile.TemporaryDirectory(prefix="rtstyle-zs-") as tmp:
        report["sanity"], used = judge.sanity(jd, data, sr, Path(tmp))
        for label, cond in conds.items():
            t0 = time.perf_counter()
            report["clips"][label], report["summary"][label] = judge.judge_condition(
                jd, cond, data, sr, {"strength": 1.0}, used, Path(tmp))
            print(f"judge_zero_shot: {label} in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr, flush=True)
    text = new_markdown(report)
    print(text)
    if args.json is not None:
        with atomic_output(args.json, overwrite=True) as tmp_path:
            Path(tmp_path).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def new_markdown(report: dict) -> str:
    f, fs = judge._fmt, judge._fmt_small
    lines = ["| judge | check | value | pass if | used |", "|---|---|---:|---|---|"]
    lines += [f"| {r['judge']} | {r['check']} | {f(r['value'])} | {r['pass']} | "
              f"{f(r['used'])} |" for r in report["sanity"]]
    lines += ["", "| condition | WER | PER | pitch speech | pitch music | timbre gain | ÷ full "
              "| tagger up | flux r | limited |", "|---|" + "---:|" * 9]
    summ = dict(report["summary"])
    for label, s in report["summary"].items():
        full = summ.get(label.split(":")[0] + ": full", {}).get("timbre_gain")
        s["ratio"] = s["timbre_gain"] / full if s["timbre_gain"] is not None and full else None
    for kind in ("full", "zero-shot", "fine-tuned"):      # means over the instruments
        rows = [summ[f"{n}: {kind}"] for n in report["instruments"]]
        summ[f"mean: {kind}"] = {k: (float(np.mean([r[k] for r in rows]))
                                     if all(r[k] is not None for r in rows) else None)
                                 for k in rows[0] if k != "tag_up_share"}
        summ[f"mean: {kind}"]["tag_up_share"] = None
    for label, s in summ.items():
        ratio = s["ratio"]
        lines.append(f"| {label} | {f(s['wer'], True)} | {f(s['per'], True)} | "
                     f"{f(s['pitch_speech'], True)} | {f(s['pitch_music'], True)} | "
                     f"{f(s['timbre_gain'])} | {f(ratio)} | {f(s['tag_up_share'], True)} | "
                     f"{f(s['flux_corr'])} | {fs(s['limited'])} |")
    tune = report["times_s"]["fine_tune"]
    lines += ["", "fine-tuning (`train --from`, one core), wall seconds: "
              + ", ".join(f"{n} {tune[n]:.1f}" for n in report["instruments"])]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--heldout", type=Path, default=Path.home() / ".cache/rtstyle/heldout")
    p.add_argument("--seconds", type=float, default=12.0,
                   help="the reference's first part that makes the style (>= 10 s)")
    p.add_argument("--new-instruments", nargs="?", const=",".join(NEW_TUNES), default=None,
                   metavar="NAMES", help="judge instruments no bundled style has "
                   f"(default all: {','.join(NEW_TUNES)})")
    p.add_argument("--work", type=Path, default=CACHE / "new-instruments",
                   help="--new-instruments: where its recordings and models go")
    p.add_argument("--corpus", type=Path, default=CACHE / "corpus-fluid",
                   help="--new-instruments: the corpus the full styles' level trims use")
    p.add_argument("--clips", type=int, default=None, help="at most N speech and N music clips")
    p.add_argument("--tagger-python", default=None, metavar="PY")
    p.add_argument("--json", type=Path, default=None, help="--new-instruments: the report")
    args = p.parse_args(argv)
    if args.new_instruments is not None:
        try:
            return new_instruments(args)
        except (judge.ToolError, judge.RtStyleError, MakeError) as exc:
            print(f"judge_zero_shot: error: {exc}", file=sys.stderr)
            return 1
    import soundfile as sf

    sr = 22050
    try:
        held = judge.read_heldout(args.heldout, sr, args.clips)
    except judge.ToolError as exc:
        print(f"judge_zero_shot: error: {exc}", file=sys.stderr)
        return 1
    clips = held["speech"] + held["music"]
    cut = int(args.seconds * sr)
    print("| instrument | bundled style | `--style-ref` first "
          f"{args.seconds:g} s | ratio |\n|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for inst, ref in held["references"].items():
            clip = Path(tmp) / f"{inst}.wav"
            sf.write(clip, ref[:cut], sr)
            gains = []
            for style in (f"instruments:{inst}", f"{judge.REF_PREFIX}{clip}"):
                g = [judge.timbre_gain(c["y"], judge.render(style, c["y"], sr, {})[0],
                                       ref[cut:], sr) for c in clips]
                gains.append(float(np.median(g)))
            ratio = gains[1] / gains[0] if gains[0] > 0 else float("nan")
            print(f"| {inst} | {gains[0]:.2f} | {gains[1]:.2f} | {ratio:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
