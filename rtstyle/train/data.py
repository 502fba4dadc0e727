"""The training corpus: which files, their split and licences, cached spectrograms, chunks.

A corpus is a folder with a ``manifest.json`` as ``tools/make_corpus.py`` writes it (content
files with ``"part"`` and ``"split": "train" | "val"``; ``"part": "style"`` entries are style
references, never content), or just a folder of audio files (searched recursively; a
``styles/`` subfolder is skipped; every tenth file in sorted order, numbers 1, 11, 21, ..., is
held out for validation, the manifest's rule).

Every content file is decoded once (mono, resampled with soxr by :mod:`rtstyle.io.files`),
analysed once (log1p magnitude of :func:`rtstyle.dsp.stft.stft`) and kept in memory; chunks are
slices of those spectrograms.
"""

from __future__ import annotations

import json
import logging
import pathlib
import re
from dataclasses import dataclass, field

import numpy as np

from ..config import StftConfig
from ..dsp.stft import stft
from ..errors import ParameterError
from ..io.files import audio_info, load_audio

__all__ = ["Corpus", "CorpusFile", "SpectrogramBank", "load_reference", "check_reference",
           "AUDIO_SUFFIXES"]

log = logging.getLogger("rtstyle")

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".mp3", ".opus")


@dataclass
class CorpusFile:
    """One content file of the corpus."""

    path: pathlib.Path
    split: str
    part: str = "audio"
    licence: list = field(default_factory=list)


@dataclass
class Corpus:
    """A training corpus: content files by split, style entries, and its manifest (if any)."""

    root: pathlib.Path
    files: list
    manifest: dict | None = None
    style_entries: dict = field(default_factory=dict)   # resolved path -> manifest entry

    # ------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, root) -> "Corpus":
        """Read a corpus folder.

        Raises
        ------
        ParameterError
            One line naming ``--corpus`` and the folder: missing, not a folder, a broken
            manifest, a manifest file that is missing, or no content files at all.
        """
        root = pathlib.Path(root)
        where = f"--corpus {root}"
        if not root.exists():
            raise ParameterError(f"{where}: no such folder")
        if not root.is_dir():
            raise ParameterError(f"{where}: is not a folder")
        manifest_path = root / "manifest.json"
        if manifest_path.is_file():
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
                entries = manifest["files"]
                if not isinstance(entries, list):
                    raise TypeError("'files' is not a list")
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise ParameterError(f"{where}: manifest.json is not a corpus manifest "
                                     f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
            files, styles = [], {}
            for e in entries:
                if not isinstance(e, dict) or "path" not in e:
                    raise ParameterError(f"{where}: manifest.json has an entry without 'path'")
                path = root / e["path"]
                if e.get("part") == "style":
                    styles[str(path.resolve())] = e
                    continue
                if not path.is_file():
                    raise ParameterError(f"{where}: manifest lists {e['path']}, which is missing "
                                         "(run tools/make_corpus.py again)")
                split = "val" if e.get("split") == "val" else "train"
                files.append(CorpusFile(path, split, str(e.get("part", "audio")),
                                        list(e.get("licence", []))))
            corpus = cls(root, files, manifest, styles)
        else:
            paths = sorted(p for p in root.rglob("*")
                           if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
                           and "styles" not in p.relative_to(root).parts[:-1]
                           and not p.name.startswith("."))
            files = [CorpusFile(p, "val" if i % 10 == 1 else "train") for i, p in enumerate(paths)]
            corpus = cls(root, files)
        if not corpus.files:
            raise ParameterError(f"{where}: no content audio files ({', '.join(AUDIO_SUFFIXES)}) "
                                 "in it or in its manifest.json")
        if not corpus.split("train"):
            for f in corpus.files:
                f.split = "train"
        return corpus

    def split(self, name: str) -> list:
        """The files of a split (``train`` or ``val``)."""
        return [f for f in self.files if f.split == name]

    def describe(self, train_frames: int, val_frames: int, hop_s: float) -> dict:
        """The model card's ``training.corpus``: where, what, how much."""
        parts = {}
        for f in self.files:
            parts.setdefault(f.part, {"train": 0, "val": 0})[f.split] += 1
        out = {"path": self.root.name, "files": {"train": len(self.split("train")),
                                                  "val": len(self.split("val"))},
               "parts": parts, "train_seconds": round(train_frames * hop_s, 1),
               "val_seconds": round(val_frames * hop_s, 1)}
        if self.manifest is not None:
            for key in ("about", "sample_rate", "split_rule", "versions"):
                if key in self.manifest:
                    out[key] = self.manifest[key]
        else:
            out["about"] = "a folder of audio files (no manifest); every tenth file held out"
        return out

    def licence_lines(self, references=()) -> list[str]:
        """Distinct licence lines of the content files and of the references found in the
        manifest; per-score lines collapse into one line for the music21 corpus."""
        lines = []
        entries = [f.licence for f in self.files]
        for ref in references:
            e = self.style_entries.get(str(pathlib.Path(ref).resolve()))
            if e:
                entries.append(list(e.get("licence", [])))
        for lic in entries:
            for line in lic:
                line = re.sub(r"^Score: .*? from the music21 corpus;",
                              "Scores: from the music21 corpus;", str(line))
                if line not in lines:
                    lines.append(line)
        return lines

    def reference_entry(self, ref) -> dict | None:
        """The manifest entry of a style reference, if the manifest lists it."""
        return self.style_entries.get(str(pathlib.Path(ref).resolve()))


class SpectrogramBank:
    """log1p STFT magnitudes of a list of files, decoded and analysed once, kept in memory.

    Parameters
    ----------
    files : list of CorpusFile
    stft_config : StftConfig
    """

    def __init__(self, files: list, stft_config: StftConfig):
        self.stft = stft_config
        self.paths = [f.path for f in files]
        self.specs = []
        for f in files:
            y, _ = load_audio(f.path, sr=stft_config.sr, mono=True)
            S = np.abs(stft(y, n_fft=stft_config.n_fft, hop_length=stft_config.hop_length))
            self.specs.append(np.log1p(S).astype(np.float32))
        self.frames = np.array([s.shape[-1] for s in self.specs], dtype=np.int64)

    @property
    def total_frames(self) -> int:
        return int(self.frames.sum())

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.specs)

    def draw(self, rng: np.random.Generator, n: int, frames: int) -> list[tuple[int, int]]:
        """``n`` random chunk positions ``(file, start)``: files in proportion to their length,
        starts uniform (chunks of files shorter than ``frames`` start at 0)."""
        p = self.frames / self.frames.sum()
        idx = rng.choice(len(self.specs), size=n, p=p)
        starts = [int(rng.integers(0, max(int(self.frames[i]) - frames, 0) + 1)) for i in idx]
        return [(int(i), s) for i, s in zip(idx, starts)]

    def chunks(self, positions, frames: int, *, left: int = 0, right: int = 0) -> np.ndarray:
        """Frames ``start - left .. start + frames + right`` of each position, zero outside the
        file (what a stream starting at the file's start sees): ``(n, bins, left+frames+right)``."""
        width = left + frames + right
        out = np.zeros((len(positions), self.stft.n_bins, width), dtype=np.float32)
        for k, (i, s) in enumerate(positions):
            spec = self.specs[i]
            a, b = s - left, s + frames + right
            lo, hi = max(a, 0), min(b, spec.shape[-1])
            if hi > lo:
                out[k, :, lo - a:hi - a] = spec[:, lo:hi]
        return out


def load_reference(path, stft_config: StftConfig) -> np.ndarray:
    """A style reference's linear STFT magnitude at the training rate, channels kept:
    ``(channels, bins, frames)`` (as :func:`rtstyle.transfer.transfer` analyses its style).

    Raises
    ------
    AudioFileError
        Missing, unreadable, empty or truncated (one line naming the file).
    """
    y, _ = load_audio(path, sr=stft_config.sr)
    y = y[None] if y.ndim == 1 else y
    return np.abs(stft(y, n_fft=stft_config.n_fft, hop_length=stft_config.hop_length))


def check_reference(path) -> None:
    """Cheap check (header only) that a reference is a readable audio file."""
    audio_info(path)

