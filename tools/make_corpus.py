"""Make the training corpus and the style references, reproducibly, from Debian/PyPI packages.

    python tools/make_corpus.py                          # ~/.cache/rtstyle/corpus, all of it
    python tools/make_corpus.py --out DIR                # somewhere else
    python tools/make_corpus.py --only styles            # only the style references
    python tools/make_corpus.py --only styles --styles organ,cello
    python tools/make_corpus.py --minutes-speech 2 --minutes-music 2   # a smaller corpus
    python tools/make_corpus.py --overwrite              # make every file again

What it makes (22050 Hz mono, silence trimmed, peak -1 dBFS, 16-bit FLAC):

``content/speech/NNN-VOICE-VARIANT.flac``
    The performer's side, speech: 2-3 sentences (written for rtstyle) per file, spoken by
    espeak-ng in English (US, GB, RP, Scottish, New York, Caribbean), German, French, Spanish
    and Italian, with voice variants (+m1 ... +f5), speeds and pitches drawn per file.
    Default 9 minutes (about 50 files).
``content/music/NNN-WORK-INSTRUMENT-MODE.flac``
    The performer's side, music: 10-30 s excerpts of music21 corpus scores (Bach chorales,
    Haydn/Mozart/Beethoven string quartets, Monteverdi madrigals, Palestrina, O'Neill's Irish
    tunes) on piano, violin, clarinet, guitar, trumpet, voice, saxophone, oboe, marimba,
    bassoon or flute (General MIDI programs of the TimGM6mb soundfont, rendered by
    fluidsynth), as a single line (``line``), all parts on one instrument (``ensemble``) or
    the full texture on a chord instrument (``full``). Default 9 minutes (about 30 files).
``styles/NAME.flac``
    Style references of about 30 s: organ, choir, cello, strings, flute, brass, pad. Each
    joins excerpts of several Bach chorales that the content does not use, transposed so
    that the reference covers the instrument's range (chords for organ, choir, strings,
    brass and pad; single lines for cello and flute).
``manifest.json``
    Every file with its part, split, duration, source (text and voice, or score, parts,
    bars, tempo, transposition and GM program) and licence lines; tool versions.

Every file number ``NNN`` is drawn from a generator seeded with that number, so the same
command makes the same bytes, and a larger ``--minutes-*`` only adds files. Every tenth
content file (numbers 1, 11, 21, ...) is marked ``"split": "val"`` in the manifest (held
out from training); the rest are ``"train"``. Files that exist are kept (so a run stopped
with Ctrl-C resumes) unless ``--overwrite``; each file is written to a temporary file in
its folder and renamed, so none is ever partial.

Needs: Debian ``espeak-ng``, ``fluidsynth``, ``timgm6mb-soundfont``; PyPI ``music21``,
``soundfile``, ``soxr``, ``librosa``, ``numpy``. Nothing is downloaded. Run time: about
half a minute for the default corpus on one CPU core (music21 parsing the scores and the
fluidsynth renders take most of it); about 32 MB of FLAC.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_demo_clips import (  # noqa: E402  (tools/ is not a package)
    PEAK_DBFS,
    SOUNDFONT,
    ToolError,
    fade_in,
    fade_out,
    load_mono,
    need_module,
    need_program,
    need_soundfont,
    normalise,
    render_midi,
    run_tool,
    trim,
    write_flac_atomic,
    write_midi,
)

SR = 22050
SEED = 2024
VAL_EVERY, VAL_AT = 10, 1  # content files 1, 11, 21, ... are the validation split
MINUTES_SPEECH = 9.0
MINUTES_MUSIC = 9.0
MAX_FILES = 10_000  # per part; a safety stop
FADE_OUT_S = 0.3
TAIL_S = 1.0  # release and reverb kept after the last note
RENDER_GAIN = 0.5
RENDER_OPTIONS = ("audio.file.format=float",)  # no 16-bit clipping or dither before we normalise


def default_out() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "rtstyle" / "corpus"


# ----------------------------------------------------------------------------- licences

LICENCE_TEXT = ("Text: sentences written for rtstyle, dedicated to the public domain (CC0-1.0).")
LICENCE_ESPEAK = ("Voice: synthesised by espeak-ng (GPL-3.0-or-later, Debian package espeak-ng); "
                  "the GPL covers the program, this audio is its output.")
LICENCE_SCORE = ("Score: {work} from the music21 corpus; the composition is out of copyright; "
                 "music21 is BSD-3-Clause and its corpus/license.txt says the encodings are "
                 "distributed with the encoders' permission, some possibly not for commercial "
                 "use.")
LICENCE_SF2 = ("Sound: rendered by FluidSynth from the TimGM6mb soundfont (c) 2004 Tim "
               "Brechbill, 2010 David Bolton, GPL-2 (Debian package timgm6mb-soundfont, "
               "/usr/share/doc/timgm6mb-soundfont/copyright).")
LICENCE_FLUID = ("Sound: rendered by FluidSynth from the Fluid (R3) GM soundfont, MIT (c) "
                 "2000-2002, 2008 Frank Wen, 2008 Toby Smithe (Debian package "
                 "fluid-soundfont-gm, /usr/share/doc/fluid-soundfont-gm/copyright).")
LICENCE_MUSESCORE = ("Sound: rendered by FluidSynth from the MuseScore_General soundfont, MIT "
                     "(c) 2018-2021 S. Christian Collins, from Fluid (R3) Mono GM (MIT, "
                     "(c) 2000-2002, 2008 Frank Wen; 2014-2017 Michael Cowgill), parts public "
                     "domain or CC0 (Debian package musescore-general-soundfont-small, "
                     "/usr/share/doc/musescore-general-soundfont-small/copyright).")
LICENCE_OTHER_SF = ("Sound: rendered by FluidSynth from the soundfont {name}; see its own "
                    "licence.")


def soundfont_licence(soundfont: Path = SOUNDFONT) -> str:
    """The licence line of audio rendered from ``soundfont`` (by its file name)."""
    name = Path(soundfont).resolve().name
    if name.startswith("TimGM6mb"):
        return LICENCE_SF2
    if name.startswith("FluidR3"):
        return LICENCE_FLUID
    if name.startswith("MuseScore_General"):
        return LICENCE_MUSESCORE
    return LICENCE_OTHER_SF.format(name=name)


# ----------------------------------------------------------------------------- speech

SENTENCES = {
    "en": [
        "A quiet river runs past the mill, and the wheel turns slowly in the morning light.",
        "Please bring the blue folder to the second meeting room before noon.",
        "Seven small boats sailed out of the harbour while the gulls circled overhead.",
        "Why did the train stop in the middle of the field for almost an hour?",
        "She painted the kitchen door yellow, then changed her mind and painted it green.",
        "The recipe calls for two cups of flour, a pinch of salt, and some warm water.",
        "Thunder rolled across the valley, but the rain never reached the village.",
        "If you listen carefully, you can hear the clock ticking in the hallway.",
        "Our library opens at nine on weekdays and at ten on Saturdays.",
        "He whistled a tune he had learned from his grandfather many years ago.",
        "Could you tell me the way to the station, please?",
        "Forty-two people signed the letter, and the council agreed to read it aloud.",
        "Fresh bread, ripe cherries and strong coffee: that was breakfast every Sunday.",
        "The children built a snow castle with towers, a gate and a very crooked bridge.",
        "Numbers are easy to say but hard to remember: three, eight, fifteen, ninety-nine.",
        "When the concert ended, nobody moved for a long, silent moment.",
        "The map was old and torn, yet every road on it was still there.",
        "Turn left at the bakery, walk past the fountain, and knock twice on the red door.",
        "Autumn leaves drifted down onto the wet pavement like small brown letters.",
        "Is this the right key, or did we leave the other one on the piano?",
        "The engine coughed, sputtered, and finally started on the third try.",
        "Nobody knew who had left the umbrella hanging on the garden gate.",
    ],
    "de": [
        "Der alte Hund schläft jeden Nachmittag in der Sonne vor dem Haus.",
        "Kannst du mir bitte sagen, wann der nächste Zug nach Hamburg fährt?",
        "Im Winter ist der See gefroren, und die Kinder laufen Schlittschuh.",
        "Meine Großmutter backt am Sonntag immer einen Apfelkuchen.",
        "Das Konzert beginnt um acht Uhr, aber wir sollten früher da sein.",
        "Der Wind weht über die Felder, und die Wolken ziehen schnell vorbei.",
    ],
    "fr": [
        "Le petit café au coin de la rue ouvre très tôt le matin.",
        "Est-ce que tu as vu mes clés sur la table de la cuisine ?",
        "Nous avons marché le long de la rivière jusqu'au vieux pont.",
        "Il pleut depuis trois jours, mais demain le soleil reviendra.",
        "La bibliothèque est fermée le lundi et ouverte tous les autres jours.",
        "Elle chante une chanson douce en préparant le dîner.",
    ],
    "es": [
        "El mercado abre temprano y siempre hay fruta fresca.",
        "¿Sabes a qué hora sale el último autobús hacia el centro?",
        "Mi hermano toca la guitarra en una pequeña banda de jazz.",
        "Las montañas estaban cubiertas de nieve al final del invierno.",
        "Vamos a la playa el sábado si no hace demasiado viento.",
        "El gato negro duerme encima del piano toda la tarde.",
    ],
    "it": [
        "La piazza è piena di gente che passeggia dopo cena.",
        "Domani mattina prendiamo il treno per Firenze alle sette.",
        "Mia sorella prepara la pasta fresca ogni domenica.",
        "Il vecchio orologio della torre suona ogni ora.",
        "Ci vediamo davanti al teatro prima dello spettacolo.",
    ],
}

# (espeak-ng voice, language of its sentences); file i uses VOICES[i % len(VOICES)].
VOICES = [
    ("en-us", "en"), ("en-gb", "en"), ("de", "de"), ("en-gb-scotland", "en"),
    ("fr-fr", "fr"), ("en-gb-x-rp", "en"), ("es", "es"), ("en-us-nyc", "en"),
    ("it", "it"), ("en-029", "en"),
]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"]


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([SEED, *key])


def split_of(index: int) -> str:
    return "val" if index % VAL_EVERY == VAL_AT else "train"


def speech_plan(index: int) -> dict:
    """What content speech file ``index`` says, and how (a pure function of ``index``)."""
    rng = _rng(1, index)
    voice, lang = VOICES[index % len(VOICES)]
    variant = VARIANTS[int(rng.integers(len(VARIANTS)))]
    n = 2 if rng.random() < 0.6 else 3
    picks = sorted(int(k) for k in rng.choice(len(SENTENCES[lang]), size=n, replace=False))
    return {
        "name": f"{index:03d}-{voice}-{variant}",
        "voice": voice, "variant": variant, "language": lang,
        "speed_wpm": int(rng.integers(130, 191)),
        "pitch": int(rng.integers(25, 76)),
        "word_gap_10ms": int(rng.integers(0, 3)),
        "text": " ".join(SENTENCES[lang][k] for k in picks),
    }


def render_speech(plan: dict, workdir: Path, sr: int) -> np.ndarray:
    espeak = need_program("espeak-ng", "espeak-ng")
    wav = workdir / "speech.wav"
    run_tool([espeak, "-v", f"{plan['voice']}+{plan['variant']}", "-s", str(plan["speed_wpm"]),
              "-p", str(plan["pitch"]), "-g", str(plan["word_gap_10ms"]), "-w", str(wav),
              plan["text"]])
    y = trim(load_mono(wav, sr), sr, threshold_db=-50.0, pad_s=0.05)
    return normalise(fade_out(fade_in(y, sr), sr, 0.02))


def speech_entry(plan: dict) -> dict:
    source = {k: plan[k] for k in ("text", "language", "speed_wpm", "pitch", "word_gap_10ms")}
    source["voice"] = f"{plan['voice']}+{plan['variant']}"
    source["synth"] = "espeak-ng"
    return {"source": source, "licence": [LICENCE_TEXT, LICENCE_ESPEAK]}


# ----------------------------------------------------------------------------- scores

GM_NAMES = {  # 0-based General MIDI program -> name
    0: "Acoustic Grand Piano", 12: "Marimba", 19: "Church Organ", 24: "Acoustic Guitar (nylon)",
    40: "Violin", 42: "Cello", 48: "String Ensemble 1", 52: "Choir Aahs", 53: "Voice Oohs",
    56: "Trumpet", 61: "Brass Section", 65: "Alto Sax", 68: "Oboe", 70: "Bassoon",
    71: "Clarinet", 73: "Flute", 89: "Pad 2 (warm)",
}

# Content instruments: (name, 0-based GM program, central MIDI pitch, plays chords).
INSTRUMENTS = [
    ("piano", 0, 60, True), ("violin", 40, 74, False), ("clarinet", 71, 64, False),
    ("guitar", 24, 60, True), ("trumpet", 56, 67, False), ("voice", 53, 64, False),
    ("sax", 65, 62, False), ("oboe", 68, 72, False), ("marimba", 12, 67, True),
    ("bassoon", 70, 50, False), ("flute", 73, 79, False),
]

DECAYING = {"guitar", "marimba"}

# Content sources: kind -> (probability, quarter-note tempo range).
KINDS = {"chorale": (0.5, (66, 96)), "quartet": (0.2, (84, 132)),
         "polyphony": (0.15, (84, 120)), "tune": (0.15, (100, 150))}
TUNE_BOOKS = [f"oneills1850/{r}.abc" for r in ("0001-0050", "0051-0100")]


def _corpus_paths(composer: str, pattern: str) -> list[str]:
    corpus = need_module("music21", "music21").corpus
    paths = []
    for p in corpus.getComposer(composer):
        rel = Path(p).as_posix().split("/corpus/")[-1]
        if re.fullmatch(pattern, rel):
            paths.append(rel)
    return sorted(paths)


@functools.lru_cache(maxsize=None)
def sources() -> dict[str, list[str]]:
    """Sorted lists of corpus works by kind; chorales split between styles and content."""
    chorales = _corpus_paths("bach", r"bach/bwv[\d.]+\.mxl")
    if len(chorales) < 100:
        raise ToolError("the music21 corpus looks incomplete (fewer than 100 Bach chorales); "
                        "reinstall it: pip install --force-reinstall music21")
    order = _rng(0).permutation(len(chorales))
    reserved = [chorales[k] for k in order[:N_STYLE_CHORALES]]
    return {
        "style": reserved,
        "chorale": sorted(set(chorales) - set(reserved)),
        "quartet": (_corpus_paths("haydn", r"haydn/opus\d+no\d+/movement\d\.mxl")
                    + _corpus_paths("mozart", r"mozart/k\d+/movement\d\.mxl")
                    + _corpus_paths("beethoven", r"beethoven/opus18no\d/movement\d\.mxl")),
        "polyphony": (_corpus_paths("monteverdi", r"monteverdi/madrigal\.[\d.]+\.mxl")
                      + _corpus_paths("palestrina", r"palestrina/[A-Za-z]+_\d+\.krn")),
        "tune": TUNE_BOOKS,
    }


@functools.lru_cache(maxsize=4)
def _parse(work: str):
    corpus = need_module("music21", "music21").corpus
    return corpus.parse(work)


def load_score(work: str, number: int | None = None):
    score = _parse(work)
    if number is not None:
        score = score.scores[number % len(score.scores)]
    return score


COMPOSERS = {  # by corpus folder; the encodings' own composer fields are often empty
    "bach": "Johann Sebastian Bach", "haydn": "Joseph Haydn",
    "mozart": "Wolfgang Amadeus Mozart", "beethoven": "Ludwig van Beethoven",
    "monteverdi": "Claudio Monteverdi", "palestrina": "Giovanni Pierluigi da Palestrina",
    "oneills1850": "traditional (O'Neill's Music of Ireland, 1850)",
}


def _title(score, work: str) -> tuple[str, str]:
    """(title, composer); no title where the encoding's title is just its file name."""
    md = score.metadata
    title = str((md.bestTitle or md.title or "") if md is not None else "")
    if re.search(r"\.(mxl|krn|abc|xml)$", title):
        title = ""
    return title, COMPOSERS.get(work.split("/")[0], "")


def part_notes(part, start: float, end: float) -> list[tuple[float, float, tuple[int, ...]]]:
    """(onset from ``start``, duration, MIDI pitches) of the notes and chords in [start, end)."""
    out = []
    for n in part.flatten().stripTies().notes:
        onset, dur = float(n.offset), float(n.quarterLength)
        if dur <= 0 or onset < start or onset >= end:
            continue
        pitches = tuple(int(p.midi) for p in n.pitches)
        out.append((onset - start, min(dur, end - onset), pitches))
    return out


def phrase_end(score, start: float, quarters: float) -> float:
    """Where to stop: the fermata (phrase end) nearest ``start + quarters`` within 0.7-1.25
    of the length, else ``start + quarters`` itself; never past the end of the score."""
    target, total = start + quarters, float(score.highestTime)
    ends = []
    for n in score.parts[0].flatten().stripTies().notes:
        if any(type(e).__name__ == "Fermata" for e in n.expressions):
            end = float(n.offset + n.quarterLength)
            if start + 0.7 * quarters <= end <= start + 1.25 * quarters:
                ends.append(end)
    best = min(ends, key=lambda e: (abs(e - target), e)) if ends else target
    return min(best, total)


SATB = ("Soprano", "Alto", "Tenor", "Bass")


def choir_parts(parts) -> list[int]:
    """Indices of a chorale's soprano, alto, tenor and bass parts (some encodings add
    instrumental doublings); the first four parts where the names do not say."""
    names = [str(p.partName or "").strip().lower() for p in parts]
    found = [next((i for i, n in enumerate(names) if n.startswith(v.lower())), None)
             for v in SATB]
    if None in found:
        return list(range(min(4, len(parts))))
    return found


def measure_starts(score) -> list[float]:
    return sorted({float(m.offset) for m in score.parts[0].getElementsByClass("Measure")})


def octave_shift(notes, centre: int) -> int:
    pitches = [p for _, _, ps in notes for p in ps]
    return 12 * int(round((centre - float(np.median(pitches))) / 12.0))


# ----------------------------------------------------------------------------- rendering


def _build_midi(voices: list[dict], bpm: float, path: Path) -> None:
    """``voices``: [{"program": int, "notes": [(onset, dur, pitches, velocity)]}]."""
    need_module("music21", "music21")
    from music21 import chord, instrument, note, stream, tempo

    score = stream.Score()
    for k, voice in enumerate(voices):
        part = stream.Part()
        ins = instrument.Instrument()
        ins.midiProgram = voice["program"]
        part.insert(0, ins)
        if k == 0:
            part.insert(0, tempo.MetronomeMark(number=bpm))
        for onset, dur, pitches, velocity in voice["notes"]:
            n = (note.Note(pitches[0], quarterLength=dur) if len(pitches) == 1
                 else chord.Chord(list(pitches), quarterLength=dur))
            n.volume.velocity = velocity
            part.insert(onset, n)
        score.insert(0, part)
    write_midi(score, path, channel_per_part=True)


def render_voices(voices: list[dict], bpm: float, quarters: float, workdir: Path,
                  soundfont: Path, sr: int) -> np.ndarray:
    fluidsynth = need_program("fluidsynth", "fluidsynth")
    mid, wav = workdir / "music.mid", workdir / "music.wav"
    _build_midi(voices, bpm, mid)
    render_midi(fluidsynth, soundfont, mid, wav, sr, gain=RENDER_GAIN, options=RENDER_OPTIONS)
    y = load_mono(wav, sr)
    y = trim(y, sr, threshold_db=-50.0, pad_s=0.0, tail_s=quarters * 60.0 / bpm + TAIL_S)
    return normalise(fade_out(fade_in(y, sr), sr, FADE_OUT_S))


def _velocities(rng, notes, base: int):
    jitter = rng.integers(-6, 7, size=len(notes))
    return [(o, d, p, int(np.clip(base + j, 1, 127))) for (o, d, p), j in zip(notes, jitter)]


def _shift(notes, semitones: int):
    return [(o, d, tuple(p + semitones for p in ps)) for o, d, ps in notes]


MAX_QUIET = 0.35  # a content excerpt more than this fraction quiet is skipped


def quiet_fraction(y: np.ndarray, hop: int = 512, below_db: float = -45.0) -> float:
    """Fraction of ``hop``-sample frames whose RMS is ``below_db`` under the peak."""
    frames = y[: y.size // hop * hop].reshape(-1, hop)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return float(np.mean(rms < np.max(np.abs(y)) * 10 ** (below_db / 20)))


class Skip(Exception):
    """This plan index gives no usable excerpt; go on with the next one."""


def music_plan(index: int) -> dict:
    """What content music file ``index`` plays, and how (a pure function of ``index``)."""
    rng = _rng(2, index)
    name, program, centre, chords = INSTRUMENTS[index % len(INSTRUMENTS)]
    # Plucked and struck notes die away: no slow Renaissance polyphony on those.
    kinds = [k for k in KINDS if not (name in DECAYING and k == "polyphony")]
    weights = np.array([KINDS[k][0] for k in kinds])
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    lo, hi = KINDS[kind][1]
    bpm = int(rng.integers(lo, hi + 1))
    works = sources()[kind]
    work = works[int(rng.integers(len(works)))]
    number = int(rng.integers(1 << 30)) if kind == "tune" else None
    if kind == "tune" or (not chords and rng.random() < 0.7):
        mode = "line"
    else:
        mode = "full" if chords else "ensemble"
    return {"index": index, "instrument": name, "program": program, "centre": centre,
            "kind": kind, "work": work, "number": number, "mode": mode, "bpm": bpm,
            "seconds": float(rng.uniform(12.0, 24.0)), "semitones": int(rng.integers(-2, 3)),
            "velocity": int(rng.integers(72, 105)), "choice": float(rng.random()),
            "start_choice": float(rng.random())}


def realise_music(plan: dict) -> dict:
    """Open the score and fix the excerpt, parts, transposition and notes of ``plan``."""
    try:
        score = load_score(plan["work"], plan["number"])
    except Exception as exc:  # noqa: BLE001  (a corpus file music21 cannot read: go on)
        raise Skip(f"music21 cannot read {plan['work']}: {exc}") from None
    parts = list(score.parts)
    if not parts:
        raise Skip("no parts")
    quarters = plan["seconds"] * plan["bpm"] / 60.0
    start = 0.0
    if plan["kind"] in ("quartet", "polyphony"):
        starts = [s for s in measure_starts(score) if s + quarters <= float(score.highestTime)]
        if starts:
            start = starts[int(plan["start_choice"] * len(starts))]
    end = phrase_end(score, start, quarters)
    pool = choir_parts(parts) if plan["kind"] == "chorale" else list(range(len(parts)))
    if plan["mode"] == "line":
        chosen = [pool[int(plan["choice"] * len(pool))]]
    else:
        chosen = pool
    notes = [part_notes(parts[k], start, end) for k in chosen]
    if not any(notes):
        raise Skip("no notes in the excerpt")
    first = min(n[0][0] for n in notes if n)
    notes = [[(o - first, d, p) for o, d, p in ns] for ns in notes]
    flat = [x for ns in notes for x in ns]
    transpose = octave_shift(flat, plan["centre"]) + plan["semitones"]
    rng = _rng(3, plan["index"])
    voices = [{"program": plan["program"],
               "notes": _velocities(rng, _shift(ns, transpose), plan["velocity"])}
              for ns in notes if ns]
    pitches = [p for v in voices for _, _, ps, _ in v["notes"] for p in ps]
    title, composer = _title(score, plan["work"])
    work = plan["work"] + (f"#{plan['number'] % len(_parse(plan['work']).scores)}"
                           if plan["number"] is not None else "")
    return {
        "voices": voices, "quarters": end - start - first, "work": work,
        "source": {
            "work": work, "title": title, "composer": composer,
            "parts": [str(parts[k].partName or f"part {k + 1}") for k in chosen],
            "quarters": [round(start + first, 3), round(end, 3)], "mode": plan["mode"],
            "bpm": plan["bpm"], "transpose": transpose, "instrument": plan["instrument"],
            "gm_program": plan["program"] + 1, "gm_name": GM_NAMES[plan["program"]],
            "pitch_range": [min(pitches), max(pitches)],
        },
    }


def music_name(plan: dict, work: str) -> str:
    slug = re.sub(r"\.(mxl|krn|abc|xml)", "", work).replace("bach/", "")
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", slug).strip("-")
    return f"{plan['index']:03d}-{slug}-{plan['instrument']}-{plan['mode']}"


def music_licence(work: str, soundfont: Path = SOUNDFONT) -> list[str]:
    return [LICENCE_SCORE.format(work=work), soundfont_licence(soundfont)]


# ----------------------------------------------------------------------------- styles

# name: (0-based GM program, quarter-note tempo, [(voice or "all", transposition)]). Each
# segment is the opening of its own chorale (from sources()["style"], dealt out in this
# order), cut at the phrase end nearest STYLE_SECONDS / len(segments).
STYLES = {
    "organ": (19, 72, [("all", 0), ("all", -7), ("all", 5)]),
    "choir": (52, 66, [("all", 0), ("all", -3), ("all", 2)]),
    "cello": (42, 84, [("Bass", -5), ("Tenor", 0), ("Soprano", -12), ("Tenor", 7)]),
    "strings": (48, 76, [("all", 0), ("all", -5), ("all", 7)]),
    "flute": (73, 92, [("Soprano", 0), ("Alto", 12), ("Soprano", 12), ("Tenor", 24)]),
    "brass": (61, 84, [("all", 0), ("all", -5), ("all", 3)]),
    "pad": (89, 60, [("all", 0), ("all", -5)]),
}
STYLE_SECONDS = 28.0
STYLE_GAP_Q = 0.5  # quarters of silence between segments
N_STYLE_CHORALES = sum(len(segs) for _, _, segs in STYLES.values())

# References of instruments no bundled style has (tools/judge_zero_shot.py --new-instruments:
# what a fully trained style of them would be), made like STYLES' but on the reserved chorales
# of the bundled style named last (so the content split and the bundled references stay as
# they are): name -> (0-based GM program, quarter-note tempo, segments, chorales of).
EXTRA_STYLES = {
    "violin": (40, 92, [("Soprano", 0), ("Alto", 12), ("Soprano", 12), ("Tenor", 12)], "flute"),
    "oboe": (68, 92, [("Soprano", 0), ("Alto", 12), ("Soprano", 0), ("Tenor", 12)], "flute"),
    "clarinet": (71, 84, [("Soprano", 0), ("Alto", 0), ("Soprano", -7), ("Tenor", 12)], "cello"),
    "trumpet": (56, 84, [("Soprano", 0), ("Alto", 5), ("Soprano", -2), ("Tenor", 12)], "cello"),
    "altosax": (65, 84, [("Alto", 0), ("Tenor", 5), ("Soprano", -7), ("Alto", 5)], "cello"),
}


def style_plan(name: str, soundfont: Path = SOUNDFONT) -> dict:
    program, bpm, segments, like = EXTRA_STYLES.get(name) or (*STYLES[name], name)
    first = 0
    for other, (_, _, segs) in STYLES.items():
        if other == like:
            break
        first += len(segs)
    reserved = sources()["style"]
    rng = _rng(4, [*STYLES, *EXTRA_STYLES].index(name))
    per_segment_q = STYLE_SECONDS / len(segments) * bpm / 60.0
    voices: dict[int, list] = {}
    seg_info, offset = [], 0.0
    for k, (which, transpose) in enumerate(segments):
        work = reserved[first + k]
        score = load_score(work)
        parts = list(score.parts)
        satb = choir_parts(parts)
        chosen = satb if which == "all" else [satb[SATB.index(which)]]
        end = phrase_end(score, 0.0, per_segment_q)
        notes = [part_notes(parts[p], 0.0, end) for p in chosen]
        lead = min(n[0][0] for n in notes if n)
        for slot, ns in enumerate(notes):
            ns = _shift([(o - lead + offset, d, p) for o, d, p in ns], transpose)
            voices.setdefault(slot, []).extend(_velocities(rng, ns, 88))
        title, composer = _title(score, work)
        seg_info.append({"work": work, "title": title, "composer": composer,
                         "parts": [str(parts[p].partName or f"part {p + 1}") for p in chosen],
                         "quarters": [round(lead, 3), round(end, 3)], "transpose": transpose})
        offset += end - lead + STYLE_GAP_Q
    quarters = offset - STYLE_GAP_Q
    vlist = [{"program": program, "notes": voices[s]} for s in sorted(voices)]
    pitches = [p for v in vlist for _, _, ps, _ in v["notes"] for p in ps]
    source = {"gm_program": program + 1, "gm_name": GM_NAMES[program], "bpm": bpm,
              "pitch_range": [min(pitches), max(pitches)], "segments": seg_info}
    licence = [LICENCE_SCORE.format(work=", ".join(s["work"] for s in seg_info)),
               soundfont_licence(soundfont)]
    return {"voices": vlist, "bpm": bpm, "quarters": quarters, "source": source,
            "licence": licence}


# ----------------------------------------------------------------------------- driver


def _duration(path: Path) -> float:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate


def _write_text_atomic(text: str, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Corpus:
    def __init__(self, out: Path, sr: int, soundfont: Path, overwrite: bool):
        self.out, self.sr, self.soundfont, self.overwrite = out, sr, soundfont, overwrite
        self.entries: list[dict] = []
        self.made = self.kept = 0

    def _file(self, rel: str, make, label: str, extra: dict, t0: float,
              total: float | None = None, minutes: float = 0.0) -> float:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not self.overwrite:
            status = "kept"
            self.kept += 1
        else:
            with tempfile.TemporaryDirectory(prefix="rtstyle-corpus-") as tmp:
                y = make(Path(tmp))
            write_flac_atomic(y, path, self.sr, overwrite=True)
            status = f"made in {time.monotonic() - t0:.1f} s"
            self.made += 1
        dur = _duration(path)
        self.entries.append({"path": rel, **extra, "duration_s": round(dur, 3)})
        progress = "" if total is None else f"  ({(total + dur) / 60:.1f} of {minutes:g} min)"
        print(f"{label:<8} {rel}  {dur:5.1f} s  {status}{progress}", flush=True)
        return dur

    def content(self, part: str, minutes: float) -> None:
        total, index = 0.0, 0
        while total < minutes * 60.0 and index < MAX_FILES:
            t0 = time.monotonic()
            if part == "speech":
                plan = speech_plan(index)
                rel = f"content/speech/{plan['name']}.flac"
                meta = speech_entry(plan)
                make = functools.partial(render_speech, plan, sr=self.sr)
            else:
                plan = music_plan(index)
                try:
                    real = realise_music(plan)
                except Skip as exc:
                    print(f"{part:<8} #{index:03d} skipped ({exc})", flush=True)
                    index += 1
                    continue
                rel = f"content/music/{music_name(plan, real['work'])}.flac"
                meta = {"source": real["source"], "licence": music_licence(real["work"],
                                                                          self.soundfont)}

                def make(tmp, real=real, plan=plan):
                    y = render_voices(real["voices"], plan["bpm"], real["quarters"], tmp,
                                      self.soundfont, self.sr)
                    quiet = quiet_fraction(y)
                    if quiet > MAX_QUIET:
                        raise Skip(f"{quiet:.0%} of it is quiet")
                    return y
            extra = {"part": part, "split": split_of(index), **meta}
            try:
                total += self._file(rel, make, part, extra, t0, total, minutes)
            except Skip as exc:
                print(f"{part:<8} #{index:03d} skipped ({exc})", flush=True)
            index += 1

    def styles(self, names: list[str]) -> None:
        for name in names:
            t0 = time.monotonic()
            plan = style_plan(name, self.soundfont)
            rel = f"styles/{name}.flac"

            def make(tmp, plan=plan):
                return render_voices(plan["voices"], plan["bpm"], plan["quarters"], tmp,
                                     self.soundfont, self.sr)
            extra = {"part": "style", "name": name, "source": plan["source"],
                     "licence": plan["licence"]}
            self._file(rel, make, "style", extra, t0)


def _versions(soundfont: Path) -> dict:
    music21 = need_module("music21", "music21")
    espeak = run_tool([need_program("espeak-ng", "espeak-ng"), "--version"]).split("Data at")[0]
    fluid = run_tool([need_program("fluidsynth", "fluidsynth"), "--version"]).splitlines()[0]
    sha = hashlib.sha256(soundfont.read_bytes()).hexdigest()
    return {
        "espeak-ng": espeak.strip(), "fluidsynth": fluid.strip(), "music21": music21.__version__,
        "soundfont": f"{soundfont.name} sha256:{sha}",
    }


def write_manifest(out: Path, corpus: Corpus, whole_parts: set[str], sr: int,
                   soundfont: Path) -> Path:
    """Merge this run's entries into ``manifest.json``. Old entries are kept if their file
    still exists, this run did not list the same path, and their part is not in
    ``whole_parts`` (parts this run made in full, whose old extra files are dropped)."""
    path = out / "manifest.json"
    old = []
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8")).get("files", [])
        except (json.JSONDecodeError, AttributeError):
            old = []
    new_paths = {e["path"] for e in corpus.entries}
    keep = [e for e in old if e.get("part") not in whole_parts and e.get("path") not in new_paths
            and (out / e["path"]).exists()]
    files = sorted(keep + corpus.entries, key=lambda e: e["path"])
    manifest = {
        "about": "rtstyle training corpus and style references, made by tools/make_corpus.py",
        "sample_rate": sr, "peak_dbfs": PEAK_DBFS, "format": "FLAC, 16-bit, mono",
        "split_rule": f"content file number % {VAL_EVERY} == {VAL_AT} -> val, else train",
        "versions": _versions(soundfont),
        "files": files,
    }
    _write_text_atomic(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", path)
    return path


def _summary(files: list[dict]) -> None:
    for part in ("speech", "music", "style"):
        es = [e for e in files if e["part"] == part]
        if es:
            val = sum(e.get("split") == "val" for e in es)
            mins = sum(e["duration_s"] for e in es) / 60
            print(f"{part:<8} {len(es):3d} files  {mins:5.1f} min"
                  + (f"  ({val} val)" if part != "style" else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make_corpus.py",
        description="Make the rtstyle training corpus (espeak-ng speech, fluidsynth renders of "
        "music21 scores) and the style references, 22050 Hz mono 16-bit FLAC + manifest.json.",
    )
    parser.add_argument("--out", type=Path, default=default_out(),
                        help=f"output folder (default: {default_out()})")
    parser.add_argument("--sr", type=int, default=SR, help=f"sample rate (default {SR})")
    parser.add_argument("--minutes-speech", type=float, default=MINUTES_SPEECH,
                        help=f"minutes of content speech (default {MINUTES_SPEECH:g})")
    parser.add_argument("--minutes-music", type=float, default=MINUTES_MUSIC,
                        help=f"minutes of content music (default {MINUTES_MUSIC:g})")
    parser.add_argument("--only", choices=("content", "styles"),
                        help="make only the content or only the style references")
    parser.add_argument("--styles", default=",".join(STYLES),
                        help=f"comma-separated style references to make (default: all: "
                        f"{','.join(STYLES)}; also {','.join(EXTRA_STYLES)}, instruments no "
                        "bundled style has)")
    parser.add_argument("--soundfont", type=Path, default=SOUNDFONT,
                        help=f"soundfont (default: {SOUNDFONT})")
    parser.add_argument("--overwrite", action="store_true", help="make existing files again")
    args = parser.parse_args(argv)

    t0 = time.monotonic()
    try:
        names = [s.strip() for s in args.styles.split(",") if s.strip()]
        unknown = sorted(set(names) - set(STYLES) - set(EXTRA_STYLES))
        if unknown:
            raise ToolError(f"unknown style(s) {', '.join(unknown)}; choose from "
                            f"{', '.join([*STYLES, *EXTRA_STYLES])}")
        if args.sr < 8000:
            raise ToolError(f"--sr {args.sr} is too low (fluidsynth needs at least 8000)")
        for mod, pypi in (("numpy", "numpy"), ("soundfile", "soundfile"), ("soxr", "soxr"),
                          ("music21", "music21")):
            need_module(mod, pypi)
        need_program("espeak-ng", "espeak-ng")
        need_program("fluidsynth", "fluidsynth")
        need_soundfont(args.soundfont)
        args.out.mkdir(parents=True, exist_ok=True)

        corpus = Corpus(args.out, args.sr, args.soundfont, args.overwrite)
        whole_parts: set[str] = set()  # parts made in full: their old manifest entries go
        if args.only in (None, "content"):
            corpus.content("speech", args.minutes_speech)
            corpus.content("music", args.minutes_music)
            whole_parts |= {"speech", "music"}
        if args.only in (None, "styles"):
            corpus.styles(names)
            if set(names) == set(STYLES):
                whole_parts.add("style")
        manifest = write_manifest(args.out, corpus, whole_parts, args.sr, args.soundfont)
    except (ToolError, OSError) as exc:
        print(f"make_corpus: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("make_corpus: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130

    files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    _summary(files)
    print(f"{manifest}: {len(files)} files; {corpus.made} made, {corpus.kept} kept, "
          f"{time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
