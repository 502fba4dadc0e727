"""Make the held-out evaluation set: speech, melodies and style references from sources that
training never uses, reproducibly, from Debian/PyPI packages.

    python tools/make_heldout.py                          # ~/.cache/rtstyle/heldout, 22050 Hz
    python tools/make_heldout.py --sr 48000 --out DIR     # another rate, somewhere else
    python tools/make_heldout.py --overwrite              # make every file again

Why: a style is judged on whether it keeps the words and the melody of *its input*. Judged on
the corpus it was trained on (``tools/make_corpus.py``: espeak-ng speech, music21 scores
rendered with the training soundfont), a net can look good by having learned those very
voices, samples and tunes. This set shares none of them: other speech synthesiser and voices,
another soundfont, other music21 works (the script checks its works against make_corpus's
``sources()``, which lists the content works and the style references' chorales).

What it makes (mono, silence trimmed, peak -1 dBFS, 16-bit FLAC, at ``--sr``):

``speech/NN-VOICE.flac``
    9 clips of two Harvard sentences each (IEEE 1969 lists 1 and 2, public domain; a
    different pair per clip), 3 per festival voice: ``kal_diphone``, ``ked_diphone``
    (recorded-diphone, 16 kHz) and ``cmu_us_slt_arctic_hts`` (statistical parametric);
    about 4-6 s, 0.2 s of silence before and after.
``music/NN-INSTRUMENT-WORK.flac``
    8 single-line melodies (one note at a time, for pitch trackers), 6-10 s each: the
    openings of folk tunes from music21 corpus collections that make_corpus does not use
    (Essen folk song collection, Aird's Airs, Ryan's Mammoth Collection, Nottingham
    dataset), cut at a bar line, at 80-120 quarter notes a minute, each on its own General
    MIDI instrument (violin, flute, clarinet, trumpet, cello, oboe, alto sax, grand piano),
    moved by octaves into the instrument's natural range.
``references/NAME.flac``
    6 real-instrument references of about 20 s for the timbre judges, one per target that
    the bundled styles imitate: organ, choir, strings and brass play chords (Christmas
    Oratorio and cantata chorales that make_corpus's chorale pattern leaves out, a Josquin
    chanson, a Corelli Grave), cello and flute single lines (Handel and Schubert vocal
    lines, Northumbrian and American fife tunes).
``manifest.json``
    Every file with its kind, duration and source (transcript and voice, or work, title,
    parts, bars, tempo, transposition, instrument and GM program), licence lines, tool
    versions, the soundfont's name and sha256, and the sample rate.

Music and references are rendered by fluidsynth with ``--soundfont``, by default MuseScore
General (``musescore-general-soundfont-small`` or ``-lossless``), which make_corpus does not
use. Beware: MuseScore General is built in part from Fluid R3 Mono, so several instruments
share recordings with ``FluidR3_GM.sf2``. One note rendered by both correlates (waveform)
about 0.9 for strings, brass, trumpet, alto sax and organ, 0.36-0.73 for the others (their
log-spectra 0.86-0.95); against TimGM6mb, 0.18-0.69. So the set is held out from a corpus
made with TimGM6mb (make_corpus's default); from one made with FluidR3_GM it is held out in
speech and works, but only partly in timbre.

Every choice is fixed in the tables below, and nothing is random but the note velocities,
drawn from a seeded generator, so the same command makes the same bytes. Files that exist at
the same sample rate are kept unless ``--overwrite``; each file is written to a temporary file
and renamed, so none is ever partial; the manifest is rewritten (atomically) on every run.

Needs: Debian ``festival``, ``festvox-kallpc16k``, ``festvox-kdlpc16k``,
``festvox-us-slt-hts``, ``fluidsynth``, ``musescore-general-soundfont-small``; PyPI
``music21``, ``soundfile``, ``soxr``, ``numpy``. Nothing is downloaded. Run time: about
30 s at 22050 Hz, 40 s at 48000 Hz, on a busy 2-core machine (the fluidsynth renders take
most of it); about 6 MB of FLAC at 22050 Hz, 10 MB at 48000 Hz.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_corpus  # noqa: E402  (tools/ is not a package)
from make_corpus import (  # noqa: E402
    GM_NAMES,
    LICENCE_SCORE,
    STYLE_GAP_Q,
    _duration,
    _title,
    _velocities,
    _write_text_atomic,
    choir_parts,
    measure_starts,
    octave_shift,
    part_notes,
    phrase_end,
    quiet_fraction,
    render_voices,
    soundfont_licence,
    sources,
)
from make_demo_clips import (  # noqa: E402
    PEAK_DBFS,
    SOUNDFONT as TIMGM6MB,
    ToolError,
    fade_in,
    fade_out,
    load_mono,
    need_module,
    need_program,
    need_soundfont,
    normalise,
    run_tool,
    trim,
    write_flac_atomic,
)

SR = 22050
SEED = 1969  # velocities only; everything else is in the tables
SOUNDFONT = Path("/usr/share/sounds/sf3/MuseScore_General.sf3")
TRAINING_SOUNDFONTS = (TIMGM6MB, Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"))
# An .sf3 is decoded whole when fluidsynth loads it (about 5 s a render); loading only the
# samples a render plays gives the same output in about 2 s.
DYNAMIC_LOADING = "synth.dynamic-sample-loading=1"


def default_out() -> Path:
    return make_corpus.default_out().parent / "heldout"


# ----------------------------------------------------------------------------- licences

LICENCE_HARVARD = ("Text: Harvard sentences (IEEE Recommended Practice for Speech Quality "
                   "Measurements, IEEE Trans. Audio Electroacoust. 17, 1969, lists 1-2), "
                   "public domain.")
LICENCE_FESTIVAL = ("Synthesiser: Festival (c) 1996-2017 Centre for Speech Technology Research, "
                    "University of Edinburgh, free licence (Debian package festival, "
                    "/usr/share/doc/festival/copyright); the licence covers the program, this "
                    "audio is its output.")
VOICE_LICENCES = {
    "kal_diphone": ("Voice: kal_diphone (c) 1998 Alan W Black and Kevin Lenzo, free licence "
                    "(use and distribute without restriction; keep the notice; Debian package "
                    "festvox-kallpc16k, /usr/share/doc/festvox-kallpc16k/copyright)."),
    "ked_diphone": ("Voice: ked_diphone (c) 1997 Centre for Speech Technology Research, "
                    "University of Edinburgh, free licence (use and distribute without "
                    "restriction; keep the notice; Debian package festvox-kdlpc16k, "
                    "/usr/share/doc/festvox-kdlpc16k/copyright)."),
    "cmu_us_slt_arctic_hts": ("Voice: cmu_us_slt_arctic_hts (c) 2003 Carnegie Mellon "
                              "University, EST-2003 licence (permissive; HTS parts "
                              "BSD-3-Clause; Debian package festvox-us-slt-hts, "
                              "/usr/share/doc/festvox-us-slt-hts/copyright)."),
}
VOICE_PACKAGES = {"kal_diphone": "festvox-kallpc16k", "ked_diphone": "festvox-kdlpc16k",
                  "cmu_us_slt_arctic_hts": "festvox-us-slt-hts"}
# ----------------------------------------------------------------------------- speech

HARVARD = {  # (list, sentence) -> text
    (1, 1): "The birch canoe slid on the smooth planks.",
    (1, 2): "Glue the sheet to the dark blue background.",
    (1, 3): "It's easy to tell the depth of a well.",
    (1, 4): "These days a chicken leg is a rare dish.",
    (1, 5): "Rice is often served in round bowls.",
    (1, 6): "The juice of lemons makes fine punch.",
    (1, 7): "The box was thrown beside the parked truck.",
    (1, 8): "The hogs were fed chopped corn and garbage.",
    (1, 9): "Four hours of steady work faced us.",
    (1, 10): "A large size in stockings is hard to sell.",
    (2, 1): "The boy was there when the sun rose.",
    (2, 2): "A rod is used to catch pink salmon.",
    (2, 3): "The source of the huge river is the clear spring.",
    (2, 4): "Kick the ball straight and follow through.",
    (2, 5): "Help the woman get back to her feet.",
    (2, 6): "A pot of tea helps to pass the evening.",
    (2, 7): "Smoky fires lack flame and heat.",
    (2, 8): "The soft cushion broke the man's fall.",
    (2, 9): "The salt breeze came across from the sea.",
    (2, 10): "The girl at the booth sold fifty bonds.",
}
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
SPEECH_MARGIN_S = 0.2
SPEECH_RANGE_S = (3.0, 7.0)


def speech_plans() -> list[dict]:
    """Clip k (1-9): voice k % 3, the k-th pair of sentences in list order."""
    keys = list(HARVARD)
    plans = []
    for k in range(9):
        voice = FESTIVAL_VOICES[k % len(FESTIVAL_VOICES)]
        ids = keys[2 * k: 2 * k + 2]
        plans.append({"name": f"{k + 1:02d}-{voice}", "voice": voice,
                      "harvard": [f"{a}.{b}" for a, b in ids],
                      "text": " ".join(HARVARD[i] for i in ids)})
    return plans


def check_festival_voices() -> None:
    festival = need_program("festival", "festival")
    have = set(re.findall(r"[\w.-]+", run_tool([festival, "-b", "(print (voice.list))"])))
    missing = [v for v in FESTIVAL_VOICES if v not in have]
    if missing:
        pkgs = " ".join(VOICE_PACKAGES[v] for v in missing)
        raise ToolError(f"festival voice(s) {', '.join(missing)} missing; install the Debian "
                        f"package(s): sudo apt-get install {pkgs}")


def render_speech(plan: dict, workdir: Path, sr: int) -> np.ndarray:
    text2wave = need_program("text2wave", "festival")
    txt, wav = workdir / "speech.txt", workdir / "speech.wav"
    txt.write_text(plan["text"] + "\n", encoding="utf-8")
    # text2wave says "SIOD ERROR" and still exits 0 when the voice is missing: look for the file.
    run_tool([text2wave, "-eval", f"(voice_{plan['voice']})", str(txt), "-o", str(wav)])
    if not wav.is_file():
        raise ToolError(f"text2wave made no audio with voice {plan['voice']}; install "
                        f"sudo apt-get install {VOICE_PACKAGES[plan['voice']]}")
    y = load_mono(wav, sr)
    margin = np.zeros(int(SPEECH_MARGIN_S * sr), dtype=y.dtype)
    # Silence on both sides first, so that trim() always finds its full margin to keep.
    y = trim(np.concatenate([margin, y, margin]), sr, threshold_db=-50.0, pad_s=SPEECH_MARGIN_S)
    return normalise(fade_out(fade_in(y, sr, 0.01), sr, 0.05))


def speech_entry(plan: dict) -> dict:
    return {"kind": "speech", "text": plan["text"], "voice": plan["voice"],
            "source": {"synth": "festival (text2wave)", "voice": plan["voice"],
                       "debian_package": VOICE_PACKAGES[plan["voice"]],
                       "harvard_sentences": plan["harvard"]},
            "licence": [LICENCE_HARVARD, VOICE_LICENCES[plan["voice"]], LICENCE_FESTIVAL]}


# ----------------------------------------------------------------------------- scores

# Natural ranges (MIDI pitch, sounding) and the register a line is centred on.
RANGES = {
    "violin": (55, 100, 74), "flute": (60, 96, 79), "clarinet": (50, 89, 65),
    "trumpet": (54, 82, 67), "cello": (36, 76, 52), "oboe": (58, 91, 72),
    "altosax": (49, 80, 63), "piano": (21, 108, 67),
    "organ": (36, 96, 60), "choir": (40, 81, 60), "strings": (28, 96, 60),
    "brass": (34, 84, 58),
}
PROGRAMS = {"violin": 40, "flute": 73, "clarinet": 71, "trumpet": 56, "cello": 42,
            "oboe": 68, "altosax": 65, "piano": 0}

# Melodies: (instrument, music21 corpus work, ABC tune number X: or None, quarter-note bpm).
MELODIES = [
    ("violin", "ryansMammoth/CollegeHornpipe.abc", None, 88),
    ("flute", "essenFolksong/han2.abc", 3, 96),
    ("clarinet", "essenFolksong/fink0.abc", 1, 100),
    ("trumpet", "airdsAirs/book3.abc", 408, 112),
    ("cello", "essenFolksong/folkHaydn.abc", 11, 84),
    ("oboe", "essenFolksong/irl.abc", 10, 80),
    ("altosax", "nottingham-dataset/reelsa-c.abc", 80, 104),
    ("piano", "essenFolksong/dva0.abc", 3, 120),
]
MELODY_NOTES_S = 7.5  # wanted length of the notes; cut at the bar line nearest it
MELODY_RANGE_S = (6.0, 10.0)
MELODY_VELOCITY = 92

# References: name -> (0-based GM program, quarter-note bpm, [(work, ABC number or None,
# parts: "SATB" (a chorale's four voices), "all" or a tuple of part indices, semitones)]).
# The segments share REFERENCE_SECONDS and are joined with STYLE_GAP_Q of silence.
REFERENCES = {
    "organ": (19, 72, [("bach/bwv248.12-2.mxl", None, "SATB", 0),
                       ("bach/bwv248.46-5.mxl", None, "SATB", -5)]),
    "choir": (52, 176, [("josquin/milleRegrets.abc", None, "all", 0)]),
    "cello": (42, 66, [("handel/rinaldo/Lascia_chio_pianga.mxl", None, (0,), -12),
                       ("schubert/Lindenbaum.xml", None, (0,), -19)]),
    "strings": (48, 60, [("corelli/opus3no1/1grave.xml", None, "all", 0)]),
    "flute": (73, 96, [("miscFolk/northumbrianminstrelsyopus.abc", 25, (0,), 12),
                       ("miscFolk/americanfifeopus.abc", 25, (0,), 0),
                       ("miscFolk/americanfifeopus.abc", 22, (0,), 12)]),
    "brass": (61, 80, [("bach/bwv69.6.xml", None, "SATB", -2),
                       ("bach/bwv67.4.xml", None, "SATB", -5)]),
}
REFERENCE_SECONDS = 20.0
REFERENCE_VELOCITY = 88

COMPOSERS = {  # corpus folders that make_corpus.COMPOSERS does not name
    "essenFolksong": "traditional (Essen Folksong Collection)",
    "airdsAirs": "traditional (Aird's Selection of Scotch, English, Irish and Foreign Airs)",
    "ryansMammoth": "traditional (Ryan's Mammoth Collection, 1883)",
    "nottingham-dataset": "traditional (Nottingham Music Database)",
    "miscFolk": "traditional",
    "josquin": "Josquin des Prez", "corelli": "Arcangelo Corelli",
    "handel": "George Frideric Handel", "schubert": "Franz Schubert",
}


def check_not_in_training() -> None:
    """Stop if a held-out work is one make_corpus uses (its content or its style references)."""
    used = {w for works in sources().values() for w in works}
    ours = {w for _, w, _, _ in MELODIES}
    ours |= {seg[0] for _, _, segs in REFERENCES.values() for seg in segs}
    both = sorted(used & ours)
    if both:
        raise ToolError(f"held-out work(s) also in make_corpus's sources: {', '.join(both)}")


def load(work: str, number: int | None):
    """A corpus work as one Score (an ABC tune by its X: number; voices kept as separate
    scores in an Opus are merged)."""
    corpus = need_module("music21", "music21").corpus
    try:
        score = corpus.parse(work, number=number) if number is not None else corpus.parse(work)
    except Exception as exc:  # noqa: BLE001  (music21 raises many kinds; one line is enough)
        raise ToolError(f"music21 cannot read {work}"
                        + (f" tune {number}" if number is not None else "")
                        + f": {exc}") from None
    if hasattr(score, "mergeScores"):  # an Opus
        score = score.mergeScores()
    return score


def cut_at(score, start: float, quarters: float) -> float:
    """Where an excerpt from ``start`` stops: a fermata near ``start + quarters`` where the
    score has one (phrase_end), else the bar line nearest it (within 0.8-1.2 of the length),
    else ``start + quarters``; never past the end."""
    total = float(score.highestTime)
    end = phrase_end(score, start, quarters)
    if end != min(start + quarters, total):
        return end
    lines = [m for m in measure_starts(score) if m > start] + [total]
    near = [m for m in lines if 0.8 * quarters <= m - start <= 1.2 * quarters]
    return min(near, key=lambda m: (abs(m - start - quarters), m)) if near else end


def check_line(notes, what: str) -> None:
    """One note at a time: no chords, no overlaps."""
    for k, (onset, dur, pitches) in enumerate(notes):
        if len(pitches) != 1:
            raise ToolError(f"{what}: a chord at quarter {onset:g}; a single line was expected")
        if k + 1 < len(notes) and onset + dur > notes[k + 1][0] + 1e-6:
            raise ToolError(f"{what}: notes overlap at quarter {onset:g}")


def in_range(shift: int, notes, instrument: str) -> bool:
    lo, hi, _ = RANGES[instrument]
    pitches = [p + shift for _, _, ps in notes for p in ps]
    return lo <= min(pitches) and max(pitches) <= hi


def fit_range(notes, instrument: str, what: str) -> int:
    """The octave shift nearest the instrument's centre that keeps every note in its range."""
    first = octave_shift(notes, RANGES[instrument][2])
    shifts = [s for s in range(first - 48, first + 49, 12) if in_range(s, notes, instrument)]
    if not shifts:
        raise ToolError(f"{what} does not fit the range of the {instrument}")
    return min(shifts, key=lambda s: (abs(s - first), s))


def source_of(score, work: str, number: int | None) -> dict:
    title, composer = _title(score, work)
    return {"work": work, **({"abc_number": number} if number is not None else {}),
            "title": title, "composer": composer or COMPOSERS.get(work.split("/")[0], "")}


def melody_plan(k: int) -> dict:
    instrument, work, number, bpm = MELODIES[k]
    score = load(work, number)
    what = f"{work}" + (f" tune {number}" if number is not None else "")
    part = score.parts[0]
    notes = part_notes(part, 0.0, float(score.highestTime))
    if not notes:
        raise ToolError(f"{what}: no notes")
    start = notes[0][0]
    end = cut_at(score, start, MELODY_NOTES_S * bpm / 60.0)
    notes = [(o - start, d, p) for o, d, p in part_notes(part, start, end)]
    check_line(notes, what)
    shift = fit_range(notes, instrument, what)
    program = PROGRAMS[instrument]
    rng = np.random.default_rng([SEED, 1, k])
    notes = _velocities(rng, [(o, d, (p[0] + shift,)) for o, d, p in notes], MELODY_VELOCITY)
    pitches = [p for _, _, ps, _ in notes for p in ps]
    stem = Path(work).stem + (f"-{number}" if number is not None else "")
    return {
        "name": f"{k + 1:02d}-{instrument}-{stem}", "bpm": bpm, "quarters": end - start,
        "voices": [{"program": program, "notes": notes}],
        "entry": {
            "kind": "music", "work": work, "instrument": GM_NAMES[program],
            "gm_program": program + 1,
            "source": {**source_of(score, work, number), "quarters": [start, end], "bpm": bpm,
                       "transpose": shift, "pitch_range": [min(pitches), max(pitches)],
                       "gm_program_0based": program},
        },
    }


def reference_plan(name: str, spec: tuple | None = None, seconds: float = REFERENCE_SECONDS,
                   key: int | None = None) -> dict:
    """A reference of ``name`` (REFERENCES'); or, for tools/judge_zero_shot.py
    --new-instruments, of the instrument ``name`` (a RANGES key) from ``spec`` (a REFERENCES
    entry whose transpositions may be None: the octave that fits the range), ``seconds`` long,
    its velocities seeded by ``key``."""
    program, bpm, segments = spec or REFERENCES[name]
    rng = np.random.default_rng([SEED, 2, list(REFERENCES).index(name) if key is None else key])
    per_segment_q = seconds / len(segments) * bpm / 60.0
    voices: dict[int, list] = {}
    info, offset = [], 0.0
    for work, number, which, transpose in segments:
        score = load(work, number)
        parts = list(score.parts)
        chosen = (choir_parts(parts) if which == "SATB"
                  else list(range(len(parts))) if which == "all" else list(which))
        found = [part_notes(parts[p], 0.0, float(score.highestTime)) for p in chosen]
        start = min(ns[0][0] for ns in found if ns)
        end = cut_at(score, start, per_segment_q)
        notes = [part_notes(parts[p], start, end) for p in chosen]
        what = f"{work} for the {name} reference"
        if len(chosen) == 1:
            check_line(notes[0], what)
        if transpose is None:
            transpose = fit_range([n for ns in notes for n in ns], name, what)
        if not in_range(transpose, [n for ns in notes for n in ns], name):
            raise ToolError(f"{what}: transposed by {transpose}, it leaves the {name}'s range")
        for slot, ns in enumerate(notes):
            ns = [(o + offset, d, tuple(p + transpose for p in ps)) for o, d, ps in ns]
            voices.setdefault(slot, []).extend(_velocities(rng, ns, REFERENCE_VELOCITY))
        pitches = [p + transpose for ns in notes for _, _, ps in ns for p in ps]
        info.append({**source_of(score, work, number),
                     "parts": [str(parts[p].partName or f"part {p + 1}") for p in chosen],
                     "quarters": [start, end], "transpose": transpose,
                     "pitch_range": [min(pitches), max(pitches)]})
        offset += end - start + STYLE_GAP_Q
    works = sorted({s["work"] for s in info})
    return {
        "name": name, "bpm": bpm, "quarters": offset - STYLE_GAP_Q,
        "voices": [{"program": program, "notes": voices[s]} for s in sorted(voices)],
        "entry": {
            "kind": "reference", "work": ", ".join(works), "instrument": GM_NAMES[program],
            "gm_program": program + 1,
            "source": {"style": name, "bpm": bpm, "gm_program_0based": program,
                       "segments": info},
        },
        "works": works,
    }


def render(plan: dict, workdir: Path, soundfont: Path, sr: int) -> np.ndarray:
    """make_corpus.render_voices, with fluidsynth loading only the samples it plays."""
    saved = make_corpus.RENDER_OPTIONS
    make_corpus.RENDER_OPTIONS = (*saved, DYNAMIC_LOADING)
    try:
        return render_voices(plan["voices"], plan["bpm"], plan["quarters"], workdir,
                             soundfont, sr)
    finally:
        make_corpus.RENDER_OPTIONS = saved


# ----------------------------------------------------------------------------- driver


def _sample_rate(path: Path) -> int:
    import soundfile as sf

    return int(sf.info(str(path)).samplerate)


def _levels(path: Path) -> tuple[float, float, float]:
    """(peak dBFS, RMS dBFS, fraction of 512-sample frames 45 dB under the peak)."""
    import soundfile as sf

    y, _ = sf.read(str(path), dtype="float32")
    peak = float(np.max(np.abs(y)))
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    return 20 * np.log10(max(peak, 1e-9)), 20 * np.log10(max(rms, 1e-9)), quiet_fraction(y)


class HeldOut:
    def __init__(self, out: Path, sr: int, soundfont: Path, overwrite: bool):
        self.out, self.sr, self.soundfont, self.overwrite = out, sr, soundfont, overwrite
        self.entries: list[dict] = []
        self.made = self.kept = 0
        self.odd: list[str] = []

    def file(self, rel: str, make, entry: dict, span: tuple[float, float]) -> None:
        t0 = time.monotonic()
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        stale = path.exists() and _sample_rate(path) != self.sr
        if path.exists() and not self.overwrite and not stale:
            status = "kept"
            self.kept += 1
        else:
            with tempfile.TemporaryDirectory(prefix="rtstyle-heldout-") as tmp:
                y = make(Path(tmp))
            write_flac_atomic(y, path, self.sr, overwrite=True)
            status = f"made in {time.monotonic() - t0:.1f} s" + (" (was another rate)"
                                                                 if stale else "")
            self.made += 1
        dur = _duration(path)
        peak, rms, quiet = _levels(path)
        flags = []
        if not span[0] <= dur <= span[1]:
            flags.append(f"duration outside {span[0]:g}-{span[1]:g} s")
        if rms < -40.0 or quiet > 0.5:
            flags.append("mostly quiet")
        if peak > PEAK_DBFS + 0.1:
            flags.append("peak above target")
        self.odd += [f"{rel}: {f}" for f in flags]
        self.entries.append({"path": rel, **entry, "duration_s": round(dur, 3)})
        print(f"{entry['kind']:<9} {rel:<44} {dur:5.1f} s  peak {peak:5.1f}  rms {rms:5.1f} "
              f"dBFS  quiet {quiet:4.0%}  {status}" + "".join(f"  [{f}]" for f in flags),
              flush=True)


def _versions(soundfont: Path) -> dict:
    festival = run_tool([need_program("festival", "festival"), "--version"]).strip()
    fluid = run_tool([need_program("fluidsynth", "fluidsynth"), "--version"]).splitlines()[0]
    return {"festival": festival, "fluidsynth": fluid.strip(),
            "music21": need_module("music21", "music21").__version__,
            "soxr": need_module("soxr", "soxr").__version__, "numpy": np.__version__}


def write_manifest(held: HeldOut, soundfont: Path) -> Path:
    real = soundfont.resolve()
    sha = hashlib.sha256(real.read_bytes()).hexdigest()
    manifest = {
        "about": ("rtstyle held-out evaluation set (voices, soundfont and works that "
                  "tools/make_corpus.py does not use), made by tools/make_heldout.py"),
        "sr": held.sr, "sample_rate": held.sr,  # "sr" is what tools/judge.py reads
        "peak_dbfs": PEAK_DBFS, "format": "FLAC, 16-bit, mono",
        "soundfont": {"name": soundfont.name, "file": real.name, "sha256": sha},
        "versions": _versions(soundfont),
        "licences": [LICENCE_HARVARD, *VOICE_LICENCES.values(), LICENCE_FESTIVAL,
                     soundfont_licence(soundfont),
                     LICENCE_SCORE.format(work="each file's work")],
        "files": sorted(held.entries, key=lambda e: e["path"]),
    }
    path = held.out / "manifest.json"
    _write_text_atomic(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", path)
    return path


def build(out: Path, sr: int, soundfont: Path, overwrite: bool) -> HeldOut:
    held = HeldOut(out, sr, soundfont, overwrite)
    sf_licence = soundfont_licence(soundfont)
    for plan in speech_plans():
        held.file(f"speech/{plan['name']}.flac",
                  lambda tmp, plan=plan: render_speech(plan, tmp, sr), speech_entry(plan),
                  SPEECH_RANGE_S)
    for k in range(len(MELODIES)):
        plan = melody_plan(k)
        entry = {**plan["entry"],
                 "licence": [LICENCE_SCORE.format(work=plan["entry"]["work"]), sf_licence]}
        held.file(f"music/{plan['name']}.flac",
                  lambda tmp, plan=plan: render(plan, tmp, soundfont, sr), entry,
                  MELODY_RANGE_S)
    for name in REFERENCES:
        plan = reference_plan(name)
        entry = {**plan["entry"], "licence": [LICENCE_SCORE.format(work=", ".join(plan["works"])),
                                              sf_licence]}
        held.file(f"references/{name}.flac",
                  lambda tmp, plan=plan: render(plan, tmp, soundfont, sr), entry,
                  (REFERENCE_SECONDS - 4.0, REFERENCE_SECONDS + 4.0))
    return held


def main(argv: list[str] | None = None) -> int:
    doc = __doc__.split("\n\nWhat it makes")[0]
    parser = argparse.ArgumentParser(
        prog="make_heldout.py", description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="What it makes" + __doc__.split("\n\nWhat it makes", 1)[1])
    parser.add_argument("--out", type=Path, default=default_out(),
                        help=f"output folder (default: {default_out()})")
    parser.add_argument("--sr", type=int, default=SR, help=f"sample rate (default {SR})")
    parser.add_argument("--soundfont", type=Path, default=SOUNDFONT,
                        help=f"soundfont for music and references, one training does not use "
                        f"(default: {SOUNDFONT})")
    parser.add_argument("--overwrite", action="store_true", help="make existing files again")
    args = parser.parse_args(argv)

    t0 = time.monotonic()
    try:
        if args.sr < 8000:
            raise ToolError(f"--sr {args.sr} is too low (fluidsynth needs at least 8000)")
        for mod, pypi in (("numpy", "numpy"), ("soundfile", "soundfile"), ("soxr", "soxr"),
                          ("music21", "music21")):
            need_module(mod, pypi)
        need_program("festival", "festival")
        need_program("text2wave", "festival")
        need_program("fluidsynth", "fluidsynth")
        try:
            need_soundfont(args.soundfont)
        except ToolError:
            raise ToolError(f"soundfont {args.soundfont} not found; install the Debian package: "
                            "sudo apt-get install musescore-general-soundfont-small (or pass "
                            "--soundfont PATH)") from None
        if any(args.soundfont.resolve() == p.resolve() for p in TRAINING_SOUNDFONTS
               if p.exists()):
            print(f"make_heldout: warning: {args.soundfont} is a training soundfont; this set "
                  "will not be held out", file=sys.stderr)
        check_festival_voices()
        check_not_in_training()
        args.out.mkdir(parents=True, exist_ok=True)
        held = build(args.out, args.sr, args.soundfont, args.overwrite)
        manifest = write_manifest(held, args.soundfont)
    except (ToolError, OSError) as exc:
        print(f"make_heldout: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("make_heldout: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130

    for kind in ("speech", "music", "reference"):
        es = [e for e in held.entries if e["kind"] == kind]
        durs = [e["duration_s"] for e in es]
        print(f"{kind:<9} {len(es):2d} files  {sum(durs):6.1f} s  "
              f"({min(durs):.1f}-{max(durs):.1f} s each)")
    for line in held.odd:
        print(f"make_heldout: check: {line}", file=sys.stderr)
    print(f"{manifest}: {len(held.entries)} files at {args.sr} Hz; {held.made} made, "
          f"{held.kept} kept, {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
