"""Make the two short demo clips committed in ``examples/``, reproducibly.

    python tools/make_demo_clips.py                 # writes examples/speech.flac, melody.flac
    python tools/make_demo_clips.py --out /tmp/x    # somewhere else
    python tools/make_demo_clips.py --overwrite     # replace existing clips

1. ``speech.flac``: two English sentences spoken by espeak-ng (voice en-us, 150 words/min).
2. ``melody.flac``: the soprano line of the first three phrases of J. S. Bach's chorale
   BWV 66.6 from the music21 corpus, an octave lower, on a cello (General MIDI program 43),
   rendered by fluidsynth with the TimGM6mb soundfont.

Both: 22050 Hz mono, leading/trailing silence trimmed, peak at -1 dBFS, 16-bit FLAC. Each file
is written to a temporary file in the output folder and renamed, so a clip is never partial.
It then prints a short analysis (duration, peak, and the melody's pitch track from
``librosa.pyin`` next to the score's notes) as a listening check by numbers.

Needs: Debian ``espeak-ng``, ``fluidsynth``, ``timgm6mb-soundfont``; PyPI ``music21``,
``soundfile``, ``soxr``, ``librosa``, ``numpy``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SR = 22050
PEAK_DBFS = -1.0
ROOT = Path(__file__).resolve().parent.parent
SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")

SPEECH_VOICE = "en-us"
SPEECH_WPM = 150
SPEECH_TEXT = (
    "The old lighthouse keeper climbed the stairs at dusk. "
    "Tonight the sea was calm, and the lamp burned until morning."
)

MELODY_WORK = "bach/bwv66.6"  # music21 corpus path
MELODY_PART = 0  # soprano
MELODY_QUARTERS = 12.0  # the first three phrases (to the fermata on F#4)
MELODY_TRANSPOSE = -12  # an octave down: the cello's singing register
MELODY_BPM = 100
MELODY_PROGRAM = 42  # General MIDI program 43 (0-based 42): Cello
MELODY_TAIL_S = 0.6  # release kept after the last note, faded out
FADE_OUT_S = 0.3


class ToolError(Exception):
    """A problem the user can fix (a missing program, package or file); one line, exit 2."""


# ----------------------------------------------------------------------------- checks


def need_program(name: str, debian: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolError(
            f"{name} not found on PATH; install the Debian package: "
            f"sudo apt-get install {debian}"
        )
    return path


def need_soundfont(path: Path) -> Path:
    if not path.is_file():
        raise ToolError(
            f"soundfont {path} not found; install the Debian package: "
            "sudo apt-get install timgm6mb-soundfont (or pass --soundfont PATH)"
        )
    return path


def need_module(name: str, pypi: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        msg = f"Python package {name} is missing; install it: pip install {pypi}"
        raise ToolError(msg) from None


def run_tool(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise ToolError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): "
                        f"{err[-1] if err else 'no message'}")
    return proc.stdout


# ----------------------------------------------------------------------------- audio helpers


def load_mono(path: Path, sr: int) -> np.ndarray:
    import soundfile as sf
    import soxr

    y, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    if file_sr != sr:
        y = soxr.resample(y, file_sr, sr, quality="VHQ").astype(np.float32)
    return y


def trim(y: np.ndarray, sr: int, *, threshold_db: float = -50.0, pad_s: float = 0.05,
          tail_s: float | None = None) -> np.ndarray:
    """Cut leading/trailing samples quieter than ``threshold_db`` re the peak, keeping a pad."""
    level = np.abs(y)
    above = np.flatnonzero(level > np.max(level) * 10 ** (threshold_db / 20))
    if above.size == 0:
        raise ToolError("the rendered clip is silent")
    start = max(above[0] - int(pad_s * sr), 0)
    end = min(above[-1] + int(pad_s * sr) + 1, y.size)
    if tail_s is not None:
        end = min(end, start + int(tail_s * sr))
    return y[start:end]


def fade_out(y: np.ndarray, sr: int, seconds: float) -> np.ndarray:
    n = min(int(seconds * sr), y.size)
    y = y.copy()
    y[-n:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, n))
    return y


def fade_in(y: np.ndarray, sr: int, seconds: float = 0.005) -> np.ndarray:
    n = min(int(seconds * sr), y.size)
    y = y.copy()
    y[:n] *= 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))
    return y


def normalise(y: np.ndarray, peak_dbfs: float = PEAK_DBFS) -> np.ndarray:
    # 16-bit rounding can move the peak by half an LSB; aim that much lower so it stays <= -1.
    target = 10 ** (peak_dbfs / 20) - 1.0 / 32768
    return (y * (target / np.max(np.abs(y)))).astype(np.float32)


def write_flac_atomic(y: np.ndarray, path: Path, sr: int, overwrite: bool) -> None:
    import soundfile as sf

    if path.exists() and not overwrite:
        raise ToolError(f"{path} exists; pass --overwrite to replace it")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        sf.write(tmp, y, sr, format="FLAC", subtype="PCM_16")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- MIDI


def write_midi(music, path: Path, *, channel_per_part: bool = False) -> None:
    """Write a music21 stream (a Part or a Score) to a standard MIDI file.

    music21 puts parts that share an instrument on one MIDI channel, where a unison between
    two parts cuts a note short; ``channel_per_part`` gives each part (track) its own channel
    instead (1-9, 11-16: channel 10 is percussion in General MIDI).
    """
    from music21 import midi

    mf = midi.translate.streamToMidiFile(music)
    if channel_per_part:
        channels = [c for c in range(1, 17) if c != 10]
        def voice_events(track):
            return [e for e in track.events
                    if isinstance(getattr(e, "type", None), midi.ChannelVoiceMessages)]

        tracks = [events for events in map(voice_events, mf.tracks) if events]
        if len(tracks) > len(channels):
            raise ToolError(f"{len(tracks)} parts do not fit on {len(channels)} MIDI channels")
        for events, channel in zip(tracks, channels):
            for event in events:
                event.channel = channel
    mf.open(str(path), "wb")
    try:
        mf.write()
    finally:
        mf.close()


def render_midi(fluidsynth: str, soundfont: Path, mid: Path, wav: Path, sr: int, *,
                gain: float = 0.8, options: tuple[str, ...] = ()) -> None:
    """Render ``mid`` to the WAV file ``wav`` with fluidsynth, faster than real time.

    Chorus is off and nothing is random, so the same MIDI file gives the same samples.
    ``options`` are extra fluidsynth settings, e.g. ``("audio.file.format=float",)``.
    """
    # -n no MIDI driver, -i no shell, -g gain, -r rate, -F render to file; chorus off.
    extra = [arg for opt in options for arg in ("-o", opt)]
    run_tool([fluidsynth, "-ni", "-C", "0", "-g", str(gain), "-r", str(sr), *extra,
              "-F", str(wav), str(soundfont), str(mid)])


# ----------------------------------------------------------------------------- the clips


def make_speech(workdir: Path) -> np.ndarray:
    espeak = need_program("espeak-ng", "espeak-ng")
    wav = workdir / "speech.wav"
    run_tool([espeak, "-v", SPEECH_VOICE, "-s", str(SPEECH_WPM), "-w", str(wav), SPEECH_TEXT])
    y = trim(load_mono(wav, SR), SR, threshold_db=-50.0, pad_s=0.05)
    return normalise(y)


def melody_notes():
    """The score excerpt as (onset_quarters, duration_quarters, midi_pitch) tuples."""
    corpus = need_module("music21", "music21").corpus
    score = corpus.parse(MELODY_WORK)
    part = score.parts[MELODY_PART]
    notes = []
    for n in part.flatten().notes:
        onset = float(n.getOffsetInHierarchy(part))
        if onset >= MELODY_QUARTERS:
            break
        dur = min(float(n.quarterLength), MELODY_QUARTERS - onset)
        notes.append((onset, dur, int(n.pitch.midi) + MELODY_TRANSPOSE))
    return notes


def _melody_midi(path: Path) -> None:
    need_module("music21", "music21")
    from music21 import instrument, note, stream, tempo

    part = stream.Part()
    cello = instrument.Violoncello()
    cello.midiProgram = MELODY_PROGRAM
    part.insert(0, cello)
    part.insert(0, tempo.MetronomeMark(number=MELODY_BPM))
    for onset, dur, pitch in melody_notes():
        n = note.Note(pitch, quarterLength=dur)
        n.volume.velocity = 96
        part.insert(onset, n)
    write_midi(part, path)


def make_melody(workdir: Path, soundfont: Path) -> np.ndarray:
    fluidsynth = need_program("fluidsynth", "fluidsynth")
    need_soundfont(soundfont)
    mid, wav = workdir / "melody.mid", workdir / "melody.wav"
    _melody_midi(mid)
    render_midi(fluidsynth, soundfont, mid, wav, SR)
    y = load_mono(wav, SR)
    score_s = MELODY_QUARTERS * 60.0 / MELODY_BPM
    y = trim(y, SR, threshold_db=-50.0, pad_s=0.0, tail_s=score_s + MELODY_TAIL_S)
    y = fade_in(y, SR)
    y = fade_out(y, SR, FADE_OUT_S)
    return normalise(y)


# ----------------------------------------------------------------------------- analysis


def _describe(path: Path) -> None:
    import soundfile as sf

    info = sf.info(str(path))
    y, sr = sf.read(str(path), dtype="float32")
    peak = 20 * np.log10(np.max(np.abs(y)))
    print(f"{path}: {info.duration:.2f} s, {sr} Hz, {info.channels} ch, {info.subtype}, "
          f"peak {peak:.2f} dBFS, {path.stat().st_size / 1024:.0f} KiB")


def _pitch_track(path: Path) -> None:
    import librosa
    import soundfile as sf

    y, sr = sf.read(str(path), dtype="float32")
    f0, voiced, _ = librosa.pyin(y, fmin=librosa.note_to_hz("C2"),
                                 fmax=librosa.note_to_hz("C6"), sr=sr)
    midi = np.where(voiced, np.round(librosa.hz_to_midi(np.nan_to_num(f0, nan=1.0))), -1)
    # Collapse runs of equal notes; keep runs of at least 4 frames (~93 ms at hop 512).
    track, start = [], 0
    for i in range(1, midi.size + 1):
        if i == midi.size or midi[i] != midi[start]:
            if midi[start] >= 0 and i - start >= 4:
                name = librosa.midi_to_note(int(midi[start]))
                if not track or track[-1] != name:
                    track.append(name)
            start = i
    expected = []
    for _, _, p in melody_notes():
        name = librosa.midi_to_note(p)
        if not expected or expected[-1] != name:
            expected.append(name)
    print(f"  voiced frames: {np.mean(voiced):.0%}")
    print("  pyin notes: " + " ".join(track))
    print("  score     : " + " ".join(expected) + "  (repeated notes merged)")


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make_demo_clips.py",
        description="Make examples/speech.flac (espeak-ng) and examples/melody.flac "
        "(music21 corpus + fluidsynth + TimGM6mb), 22050 Hz mono 16-bit FLAC.",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "examples",
                        help="output folder (default: examples/ of the repository)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing clips")
    parser.add_argument("--soundfont", type=Path, default=SOUNDFONT,
                        help=f"soundfont for the melody (default: {SOUNDFONT})")
    args = parser.parse_args(argv)

    try:
        for mod, pypi in (("soundfile", "soundfile"), ("soxr", "soxr"), ("music21", "music21")):
            need_module(mod, pypi)
        need_program("espeak-ng", "espeak-ng")
        need_program("fluidsynth", "fluidsynth")
        need_soundfont(args.soundfont)
        if not args.out.is_dir():
            raise ToolError(f"output folder {args.out} does not exist")
        targets = {"speech": args.out / "speech.flac", "melody": args.out / "melody.flac"}
        for path in targets.values():
            if path.exists() and not args.overwrite:
                raise ToolError(f"{path} exists; pass --overwrite to replace it")

        with tempfile.TemporaryDirectory(prefix="rtstyle-clips-") as tmp:
            clips = {"speech": make_speech(Path(tmp)),
                     "melody": make_melody(Path(tmp), args.soundfont)}
        for name, y in clips.items():
            write_flac_atomic(y, targets[name], SR, args.overwrite)
    except (ToolError, OSError) as exc:
        print(f"make_demo_clips: error: {exc}", file=sys.stderr)
        return 2

    for name, path in targets.items():
        _describe(path)
        if name == "melody":
            _pitch_track(path)
    total = sum(p.stat().st_size for p in targets.values())
    print(f"total {total / 1024:.0f} KiB ({'under' if total < 1_000_000 else 'OVER'} 1 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
