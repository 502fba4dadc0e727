"""Public judges of a style's sound: words, phones, pitch, timbre, static-ness and level.

    python tools/make_heldout.py                  # the held-out set (festival voices, MuseScore)
    python tools/judge.py --style instruments:organ,instruments:cello [--strength 0.5]
        [--heldout ~/.cache/rtstyle/heldout] [--json out/judge.json] [--markdown out/judge.md]
        [--tagger-python .venv-tagger/bin/python] [--clips 4]

Every style (and, beside them, the engine's identity path and two degradations that calibrate
the judges: a telephone band and white noise at 20 dB SNR) renders every clip of the held-out
set through :class:`rtstyle.Streamer` at its defaults. Each output is then judged by pretrained
models nobody here wrote, whose weights ship inside their pip packages (the ``judge`` extra:
nothing is downloaded at run time):

words, phones
    ``pocketsphinx`` (CMU Sphinx, en-us acoustic model, dictionary and language model; its
    phone-loop decoder for phones): the word and phone error rates of the output's transcript
    against the *input's* transcript (what the recogniser hears in the clean input), speech
    clips only.
pitch
    ``torchcrepe`` (CREPE, the ``tiny`` model, 10-ms hop at 16 kHz): over the frames the input
    is voiced (periodicity >= 0.5), the share where the output's f0 is within 50 cents of the
    input's; the share an octave off (within 50 cents of ±1200); the correlation of log f0.
timbre
    the log-mel statistics distance (:func:`rtstyle.dsp.metrics.logmel_frechet`) to a recording
    of the style's instrument from the held-out soundfont, as a gain ``1 - FD(out, ref) /
    FD(in, ref)``: 0 for the untouched input, 1 on the reference, negative when further away;
    and, with ``--tagger-python``, ``musicnn``'s MagnaTagATune tags (``tools/judge_tagger.py``):
    the probability of the instrument's tag group on the output against the input (organ and
    brass have no tag in its vocabulary).
static-ness
    the correlation of the output's frame-to-frame spectral flux with the input's (a net that
    writes a fixed spectrum gated by the input's energy scores low).
level
    the share of output samples the engine's limiter turned down.

The *sanity* table calibrates each judge on clean originals first, and a judge that fails it
is left out of the results (its columns say so): the recogniser must transcribe the clean
speech near its known text, the pitch tracker must find the clean input's pitch and must *not*
find it in a copy shifted by a semitone, the timbre distance must place the second half of each
reference much nearer the first than the inputs are, and the tagger must rank each reference's
tag group higher on the reference than on the inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
try:
    import rtstyle  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from rtstyle.dsp.metrics import logmel_frechet  # noqa: E402
from rtstyle.style_ref import REF_PREFIX  # noqa: E402
from rtstyle.errors import RtStyleError  # noqa: E402
from rtstyle.io.files import atomic_output, load_audio, save_audio  # noqa: E402

#: Tag groups of musicnn's MagnaTagATune vocabulary per instrument (none for organ, brass).
TAG_GROUPS = {
    "cello": ("cello", "strings", "violin"),
    "strings": ("strings", "violin", "cello"),
    "flute": ("flute",),
    "choir": ("choir", "choral", "opera"),
}
#: Instruments of the held-out references; a style is judged against the one its name holds.
INSTRUMENTS = ("organ", "choir", "cello", "strings", "flute", "brass")
JUDGE_SR = 16000          # pocketsphinx and CREPE both work at 16 kHz
CALIBRATION = ("identity", "telephone", "noise20")

# Sanity thresholds (on clean originals, see the module docstring).
SANITY = {"asr_wer_max": 0.5, "pitch_identity_min": 0.9, "pitch_shifted_max": 0.2,
          "timbre_half_min": 0.5, "tagger_margin_min": 0.0}


class ToolError(Exception):
    """A problem the user can fix; reported as one line, exit status 2."""


def default_heldout() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "rtstyle" / "heldout"


# ----------------------------------------------------------------------------- the judges


def need(module: str, extra: str = "judge"):
    import importlib
    import importlib.util
    import types

    if module == "torchcrepe" and importlib.util.find_spec("torchaudio") is None:
        # torchcrepe imports torchaudio only for its file loader, which is not used here
        sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ToolError(f"{module} is not installed ({exc}); pip install -e '.[{extra}]'") from None


def edit_distance(a: list, b: list) -> int:
    """Levenshtein distance between two token lists."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def error_rate(ref: list, hyp: list) -> float:
    """Edit distance over the reference's length (1.0 for an empty hypothesis)."""
    return edit_distance(ref, hyp) / max(len(ref), 1)


class Recogniser:
    """pocketsphinx: words (en-us language model) and phones (phone loop), 16-kHz audio.

    Both decoders start every clip from a fresh feature state (``reinit_feat``): pocketsphinx
    carries its cepstral-mean and noise estimates from one utterance to the next, so a clip's
    transcript would otherwise depend on what was decoded before it (the smoke test caught it).
    """

    def __init__(self):
        ps = need("pocketsphinx")
        model = Path(ps.get_model_path()) / "en-us"
        self._words = ps.Decoder(samprate=JUDGE_SR, loglevel="FATAL")
        self._phones = ps.Decoder(samprate=JUDGE_SR, allphone=str(model / "en-us-phone.lm.bin"),
                                  lw=2.0, beam=1e-20, pbeam=1e-20, loglevel="FATAL")


    @staticmethod
    def _decode(dec, pcm: bytes):
        dec.reinit_feat()
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        return dec

    def __call__(self, y16: np.ndarray) -> tuple[list[str], list[str]]:
        peak = float(np.max(np.abs(y16))) or 1.0
        pcm = (np.clip(y16 / peak * 0.9, -1, 1) * 32767).astype(np.int16).tobytes()
        hyp = self._decode(self._words, pcm).hyp()
        words = hyp.hypstr.split() if hyp is not None else []
        phones = [s.word for s in self._decode(self._phones, pcm).seg()
                  if s.word not in ("SIL", "<s>", "</s>") and not s.word.startswith("+")]
        return words, phones


class PitchTracker:
    """torchcrepe ``tiny``: f0 (Hz) and periodicity every 10 ms of 16-kHz audio."""

    def __init__(self):
        self._crepe = need("torchcrepe")
        import torch

        self._torch = torch

    def __call__(self, y16: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(y16, dtype=np.float32))[None]
        with torch.inference_mode():
            f0, per = self._crepe.predict(x, JUDGE_SR, hop_length=JUDGE_SR // 100, fmin=50.0,
                                          fmax=1500.0, model="tiny", return_periodicity=True,
                                          batch_size=1024, device="cpu")
            per = self._crepe.filter.median(per, 3)
        return f0[0].numpy().astype(np.float64), per[0].numpy().astype(np.float64)


def pitch_scores(f_in, p_in, f_out) -> dict:
    """Within 50 cents / an octave off / log-f0 correlation, over the input's voiced frames."""
    n = min(len(f_in), len(f_out))
    voiced = p_in[:n] >= 0.5
    if voiced.sum() < 5:
        return {"pitch_within_50c": None, "pitch_octave": None, "logf0_corr": None,
                "voiced_frames": int(voiced.sum())}
    cents = 1200 * np.log2(np.maximum(f_out[:n][voiced], 1e-3) / f_in[:n][voiced])
    within = np.abs(cents) < 50
    octave = (np.abs(np.abs(cents) - 1200) < 50)
    a, b = np.log(f_in[:n][voiced]), np.log(np.maximum(f_out[:n][voiced], 1e-3))
    corr = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else 0.0
    return {"pitch_within_50c": float(within.mean()), "pitch_octave": float(octave.mean()),
            "logf0_corr": corr, "voiced_frames": int(voiced.sum())}


def flux(y: np.ndarray, sr: int) -> np.ndarray:
    """Spectral flux per frame: the summed rise of log-mel energy from the previous frame."""
    import librosa

    S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=256, n_mels=64)
    L = np.log(S + 1e-8 * max(float(S.max()), 1e-12))
    return np.maximum(np.diff(L, axis=1), 0).sum(axis=0)


def flux_corr(y_in: np.ndarray, y_out: np.ndarray, sr: int) -> float:
    a, b = flux(y_in, sr), flux(y_out, sr)
    n = min(len(a), len(b))
    if n < 3 or a[:n].std() == 0 or b[:n].std() == 0:
        return 0.0
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def timbre_gain(y_in, y_out, ref, sr) -> float:
    """``1 - FD(out, ref) / FD(in, ref)`` of 64-band log-mel statistics (levels equalised)."""
    d_in = logmel_frechet(y_in, ref, sr=sr)
    return 1.0 - logmel_frechet(y_out, ref, sr=sr) / max(d_in, 1e-9)


def run_tagger(python: str | None, paths: list[str]) -> dict | None:
    """musicnn tags of ``paths`` through ``tools/judge_tagger.py`` under ``python``."""
    if not python or not paths:
        return None
    cmd = [python, str(ROOT / "tools" / "judge_tagger.py")]
    res = subprocess.run(cmd, input=json.dumps(paths), capture_output=True, text=True)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise ToolError(f"--tagger-python {python}: the tagger failed: {last}")
    out = json.loads(res.stdout)
    labels = out["labels"]
    return {p: dict(zip(labels, v)) for p, v in out["tags"].items()}


def group_prob(tags: dict, group) -> float:
    """The strongest tag of the group (mean probability over the file)."""
    return max(tags[t] for t in group)


# ----------------------------------------------------------------------------- the material


def instrument_of(style: str) -> str | None:
    name = (Path(style[len(REF_PREFIX):]).stem if style.startswith(REF_PREFIX) else style).lower()
    return next((i for i in INSTRUMENTS if i in name), None)


def heldout_manifest(root: Path) -> dict:
    """The held-out set's manifest (``tools/make_heldout.py``), or a ToolError saying how to
    make one."""
    path = root / "manifest.json"
    if not path.is_file():
        raise ToolError(f"--heldout {root}: no manifest.json; make it with "
                        f"python tools/make_heldout.py --out {root}")
    return json.loads(path.read_text())


def style_list(text: str) -> list[str]:
    """``--style``'s comma-separated list, or a ToolError when it names none."""
    styles = [s.strip() for s in text.split(",") if s.strip()]
    if not styles:
        raise ToolError("--style: no style given")
    return styles


def read_heldout(root: Path, sr: int, clips: int | None) -> dict:
    """The held-out clips and references at ``sr`` (``tools/make_heldout.py``'s manifest)."""
    man = heldout_manifest(root)
    files = man["files"] if isinstance(man, dict) and "files" in man else man
    out = {"speech": [], "music": [], "references": {}}
    for entry in files:
        kind = entry.get("kind")
        path = root / entry["path"]
        try:
            y, _ = load_audio(path, sr=sr, mono=True)
        except RtStyleError as exc:
            raise ToolError(str(exc)) from None
        if kind == "speech":
            out["speech"].append({"name": path.stem, "y": y, "text": entry.get("text", "")})
        elif kind == "music":
            out["music"].append({"name": path.stem, "y": y})
        elif kind in ("reference", "references"):
            key = instrument_of(path.stem) or path.stem
            out["references"][key] = y
    if clips:
        out["speech"], out["music"] = out["speech"][:clips], out["music"][:clips]
    if not out["speech"] or not out["music"]:
        raise ToolError(f"--heldout {root}: the manifest lists no speech or no music clips")
    return out


def to16(y: np.ndarray, sr: int) -> np.ndarray:
    import soxr

    return soxr.resample(y, sr, JUDGE_SR).astype(np.float32)


def degrade(kind: str, y: np.ndarray, sr: int) -> np.ndarray:
    """Calibration conditions: a telephone band (300-3400 Hz) or white noise at 20 dB SNR."""
    import scipy.signal

    if kind == "telephone":
        sos = scipy.signal.butter(6, [300, 3400], btype="bandpass", fs=sr, output="sos")
        return scipy.signal.sosfilt(sos, y).astype(np.float32)
    rng = np.random.Generator(np.random.PCG64(20))
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    return (y + rng.standard_normal(len(y)) * rms * 10 ** (-20 / 20)).astype(np.float32)


def render(style: str, y: np.ndarray, sr: int, settings: dict) -> tuple[np.ndarray, float]:
    """``y`` through the engine (``style`` or the identity path), aligned; limited share."""
    from rtstyle import Streamer

    if style in ("telephone", "noise20"):
        return degrade(style, y, sr), 0.0
    kw = dict(settings) if style != "identity" else {}
    if style.startswith(REF_PREFIX):       # a zero-shot style: the recording's statistics
        from rtstyle.style_ref import reference_style

        style = [reference_style(style[len(REF_PREFIX):])]
    st = Streamer(style, sr=sr, **kw)
    out = np.concatenate([st.feed(y), st.flush()], axis=-1)[st.latency: st.latency + len(y)]
    return out.astype(np.float32), st.limited_samples / max(len(y), 1)


def model_sr(style: str) -> int | None:
    if style in CALIBRATION:
        return None
    if style.startswith(REF_PREFIX):
        from rtstyle.style_ref import REF_SR

        return REF_SR
    from rtstyle.models import resolve_style

    model, _ = resolve_style(style)
    return model.sr


# ----------------------------------------------------------------------------- the run


class Judge:
    """Judges and the inputs' own analyses (transcripts, f0), computed once per clip."""

    def __init__(self, *, tagger_python: str | None):
        self.asr = Recogniser()
        self.pitch = PitchTracker()
        self.tagger_python = tagger_python
        self.input_tags = {}          # tagger output of the inputs, per file (sanity() fills it)
        self._inputs = {}

    def input_analysis(self, key, y, sr):
        if key not in self._inputs:
            y16 = to16(y, sr)
            self._inputs[key] = {"asr": self.asr(y16) if key[0] == "speech" else None,
                                 "f0": self.pitch(y16)}
        return self._inputs[key]

    def clip_scores(self, kind, clip, y_out, sr, ref) -> dict:
        a = self.input_analysis((kind, clip["name"], sr), clip["y"], sr)
        y16 = to16(y_out, sr)
        row = {"clip": f"{kind}:{clip['name']}"}
        if kind == "speech":
            words, phones = self.asr(y16)
            row["wer"] = error_rate(a["asr"][0], words)
            row["per"] = error_rate(a["asr"][1], phones)
        f_out, _ = self.pitch(y16)
        row.update(pitch_scores(*a["f0"], f_out))
        row["flux_corr"] = flux_corr(clip["y"], y_out, sr)
        row["timbre_gain"] = timbre_gain(clip["y"], y_out, ref, sr) if ref is not None else None
        return row


def summarise(rows: list[dict], used: dict) -> dict:
    def mean(key, kind=None):
        vals = [r[key] for r in rows if r.get(key) is not None
                and (kind is None or r["clip"].startswith(kind))]
        return float(np.mean(vals)) if vals else None

    def median(key):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return float(np.median(vals)) if vals else None

    s = {"wer": mean("wer") if used["asr"] else None,
         "per": mean("per") if used["asr"] else None,
         "pitch_speech": mean("pitch_within_50c", "speech") if used["pitch"] else None,
         "pitch_music": mean("pitch_within_50c", "music") if used["pitch"] else None,
         "octave": mean("pitch_octave") if used["pitch"] else None,
         "logf0_corr": mean("logf0_corr") if used["pitch"] else None,
         "timbre_gain": median("timbre_gain") if used["timbre"] else None,
         "flux_corr": mean("flux_corr"), "limited": mean("limited")}
    ups = [r["tag_up"] for r in rows if r.get("tag_up") is not None]
    s["tag_up_share"] = float(np.mean(ups)) if ups and used.get("tagger") else None
    return s


def sanity(judge: Judge, data: dict, sr: int, tmp: Path) -> tuple[list[dict], dict]:
    """Calibrate each judge on clean originals; returns rows and which judges may be used."""
    rows, used = [], {}
    # words: the clean speech against its known text
    wers = []
    for clip in data["speech"]:
        words, _ = judge.input_analysis(("speech", clip["name"], sr), clip["y"], sr)["asr"]
        ref = [w.strip(".,;:!?\"'").lower() for w in clip["text"].split()]
        wers.append(error_rate(ref, [w.lower() for w in words]))
    wer = float(np.mean(wers))
    used["asr"] = wer <= SANITY["asr_wer_max"]
    rows.append({"judge": "words (pocketsphinx)", "check": "clean speech vs its known text: WER",
                 "value": wer, "pass": f"<= {SANITY['asr_wer_max']}", "used": used["asr"]})
    # pitch: found on the input, not found a semitone away
    import soxr

    ident, shifted = [], []
    for kind in ("speech", "music"):
        for clip in data[kind]:
            f_in, p_in = judge.input_analysis((kind, clip["name"], sr), clip["y"], sr)["f0"]
            ident.append(pitch_scores(f_in, p_in, f_in)["pitch_within_50c"])
            # resampled by 2^(-1/12) and played at sr: one semitone up, 6 % shorter
            up = soxr.resample(clip["y"], sr, round(sr * 2 ** (-1 / 12)))
            f_up, _ = judge.pitch(to16(up, sr))
            n = len(f_up)      # compare frame t of the shifted copy with frame t * 2^(1/12)
            idx = np.minimum((np.arange(n) * 2 ** (1 / 12)).round().astype(int), len(f_in) - 1)
            shifted.append(pitch_scores(f_in[idx], p_in[idx], f_up)["pitch_within_50c"])
    ident = float(np.mean([v for v in ident if v is not None]))
    shifted = float(np.mean([v for v in shifted if v is not None]))
    used["pitch"] = ident >= SANITY["pitch_identity_min"] and shifted <= SANITY["pitch_shifted_max"]
    rows.append({"judge": "pitch (torchcrepe tiny)", "check": "input vs itself: within 50 c",
                 "value": ident, "pass": f">= {SANITY['pitch_identity_min']}",
                 "used": used["pitch"]})
    rows.append({"judge": "pitch (torchcrepe tiny)",
                 "check": "input vs a copy 1 semitone up: within 50 c", "value": shifted,
                 "pass": f"<= {SANITY['pitch_shifted_max']}", "used": used["pitch"]})
    # timbre: the second half of a reference, judged against its first half
    gains = []
    for name, ref in data["references"].items():
        half = len(ref) // 2
        clips = [c["y"] for k in ("speech", "music") for c in data[k]]
        gains += [timbre_gain(y, ref[half:], ref[:half], sr) for y in clips]
    g = float(np.median(gains))
    used["timbre"] = g >= SANITY["timbre_half_min"]
    rows.append({"judge": "timbre (log-mel FD gain)",
                 "check": "a reference's second half vs its first half: gain",
                 "value": g, "pass": f">= {SANITY['timbre_half_min']}", "used": used["timbre"]})
    # tagger: the instrument's group higher on its reference than on the inputs
    used["tagger"] = False
    used["tagger_groups"] = []
    if judge.tagger_python:
        paths = {}
        for name, ref in data["references"].items():
            p = tmp / f"ref-{name}.wav"
            save_audio(p, ref, sr=sr, overwrite=True)
            paths[name] = str(p)
        inputs = []
        for kind in ("speech", "music"):
            for clip in data[kind]:
                p = tmp / f"in-{kind}-{clip['name']}.wav"
                save_audio(p, clip["y"], sr=sr, overwrite=True)
                inputs.append(str(p))
        tags = run_tagger(judge.tagger_python, list(paths.values()) + inputs)
        judge.input_tags = {p: tags[p] for p in inputs}
        for name, group in TAG_GROUPS.items():
            if name not in paths:
                continue
            on_ref = group_prob(tags[paths[name]], group)
            on_in = float(np.mean([group_prob(tags[p], group) for p in inputs]))
            ok = on_ref - on_in > SANITY["tagger_margin_min"]
            if ok:
                used["tagger_groups"].append(name)
            rows.append({"judge": f"tagger (musicnn): {name}",
                         "check": f"{'/'.join(group)} on the reference minus on the inputs",
                         "value": on_ref - on_in, "pass": f"> {SANITY['tagger_margin_min']}",
                         "used": ok})
        used["tagger"] = bool(used["tagger_groups"])
    return rows, used


def judge_condition(judge: Judge, cond: str, data: dict, sr: int, settings: dict,
                    used: dict, tmp: Path) -> tuple[list[dict], dict]:
    inst = instrument_of(cond)
    ref = data["references"].get(inst) if inst else None
    rows, tag_paths = [], []
    for kind in ("speech", "music"):
        for clip in data[kind]:
            t0 = time.perf_counter()
            y_out, limited = render(cond, clip["y"], sr, settings)
            row = judge.clip_scores(kind, clip, y_out, sr, ref)
            row["limited"] = limited
            row["seconds"] = round(time.perf_counter() - t0, 2)
            if judge.tagger_python and inst in used.get("tagger_groups", ()):
                safe = re.sub(r"[^A-Za-z0-9_.-]", "_", cond)
                p = tmp / f"out-{safe}-{kind}-{clip['name']}.wav"
                save_audio(p, y_out, sr=sr, overwrite=True)
                row["_tag_path"] = str(p)
                row["_in_path"] = str(tmp / f"in-{kind}-{clip['name']}.wav")
                tag_paths.append(str(p))
            rows.append(row)
    if tag_paths:
        tags = run_tagger(judge.tagger_python, tag_paths)
        group = TAG_GROUPS[inst]
        for row in rows:
            p = row.pop("_tag_path", None)
            p_in = row.pop("_in_path", None)
            if p in tags:
                row["tag_out"] = group_prob(tags[p], group)
                row["tag_in"] = group_prob(judge.input_tags[p_in], group)
                row["tag_up"] = row["tag_out"] > row["tag_in"]
    return rows, summarise(rows, used)


# ----------------------------------------------------------------------------- output


def _fmt(v, pct=False):
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    return f"{100 * v:.0f} %" if pct else f"{v:.2f}"


def _fmt_small(v):
    """A share that should be near 0: two decimals of a percent."""
    return "—" if v is None else f"{100 * v:.2f} %"


def markdown(report: dict) -> str:
    lines = ["| judge | check | value | pass if | used |", "|---|---|---:|---|---|"]
    for r in report["sanity"]:
        lines.append(f"| {r['judge']} | {r['check']} | {_fmt(r['value'])} | {r['pass']} | "
                     f"{_fmt(r['used'])} |")
    lines += ["", "| condition | WER | PER | pitch speech | pitch music | octave | log-f0 r "
              "| timbre gain | tagger up | flux r | limited |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for cond, s in report["summary"].items():
        lines.append(
            f"| {cond} | {_fmt(s['wer'], True)} | {_fmt(s['per'], True)} | "
            f"{_fmt(s['pitch_speech'], True)} | {_fmt(s['pitch_music'], True)} | "
            f"{_fmt(s['octave'], True)} | {_fmt(s['logf0_corr'])} | {_fmt(s['timbre_gain'])} | "
            f"{_fmt(s['tag_up_share'], True)} | {_fmt(s['flux_corr'])} | "
            f"{_fmt_small(s['limited'])} |")
    return "\n".join(lines)


def write_cards(report: dict, styles: list[str], folders: list[Path]) -> None:
    """Put each style's summary into its model card: ``quality.judges[STYLE]`` (atomically)."""
    from rtstyle.models import resolve_style

    for cond in styles:
        model, index = resolve_style(cond)
        path = model.card_path
        card = json.loads(path.read_text())
        judges = card.setdefault("quality", {}).setdefault("judges", {})
        judges["about"] = ("tools/judge.py on the held-out set of tools/make_heldout.py "
                           f"({', '.join(str(f.name) for f in folders)}: festival voices, "
                           "MuseScore General melodies and references), the engine's defaults, "
                           f"strength {report['strength']:g}; wer/per: pocketsphinx against the "
                           "input's transcript; pitch_*: torchcrepe within 50 cents; timbre_gain: "
                           "1 - FD(out, ref) / FD(in, ref); tag_up_share: musicnn's tag group "
                           "higher on the output than the input")
        judges[model.styles[index]] = {k: (round(v, 4) if isinstance(v, float) else v)
                                       for k, v in report["summary"][cond].items()}
        with atomic_output(path, overwrite=True) as tmp_path:
            Path(tmp_path).write_text(json.dumps(card, indent=2) + "\n")
        print(f"judge: wrote {cond}'s figures into {path}", file=sys.stderr)


def write_text(path: Path | None, text: str) -> None:
    """Write ``text`` and a newline to ``path`` atomically (overwriting it); nothing for None."""
    if path is not None:
        with atomic_output(path, overwrite=True) as tmp_path:
            Path(tmp_path).write_text(text + "\n")


def run_tool(prog: str, run, *errors: type) -> int:
    """A judge tool's command line around ``run()``: every core for the judges' torch; a
    user's error (ToolError, RtStyleError, ``errors``) as one line and exit status 2;
    Ctrl-C as 130."""
    try:
        import torch

        torch.set_num_threads(max(1, os.cpu_count() or 1))
        run()
    except (ToolError, RtStyleError, *errors) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    return 0


def _judge(args) -> None:
    """main() after its arguments: judge's whole run."""
    styles = style_list(args.style)
    if not 0 <= args.strength <= 1:
        raise ToolError(f"--strength={args.strength} must lie in 0..1")
    folders = args.heldout or [default_heldout()]
    rates = {}
    for folder in folders:
        rates[int(heldout_manifest(folder).get("sr", 22050))] = folder
    groups = {}
    for cond in styles:
        try:
            groups.setdefault(model_sr(cond) or next(iter(rates)), []).append(cond)
        except RtStyleError as exc:
            raise ToolError(f"--style {cond}: {exc}") from None
    judge = Judge(tagger_python=args.tagger_python)
    report = {"styles": styles, "strength": args.strength, "sanity": [], "summary": {},
              "clips": {}, "judges": {"asr": "pocketsphinx en-us", "pitch": "torchcrepe tiny",
                                      "timbre": "logmel_frechet gain, 64 mel bands",
                                      "tagger": "musicnn MTT_musicnn" if args.tagger_python
                                      else None}}
    settings = {"strength": args.strength}
    with tempfile.TemporaryDirectory(prefix="rtstyle-judge-") as tmp:
        for k, (sr, conds) in enumerate(sorted(groups.items())):
            folder = rates.get(sr, folders[0])
            data = read_heldout(folder, sr, args.clips)
            rows, used = sanity(judge, data, sr, Path(tmp))
            for r in rows:
                r["sr"] = sr
            report["sanity"] += rows
            extra = list(CALIBRATION) if k == 0 else ["identity"]
            for cond in extra + conds:
                name = cond if k == 0 or cond != "identity" else f"identity @ {sr} Hz"
                t0 = time.perf_counter()
                clip_rows, summary = judge_condition(judge, cond, data, sr, settings, used,
                                                     Path(tmp))
                report["clips"][name] = clip_rows
                report["summary"][name] = summary
                brief = ", ".join(f"{k} {v:.2f}" for k, v in summary.items()
                                  if isinstance(v, float))
                print(f"judge: {name} ({sr} Hz) in {time.perf_counter() - t0:.0f} s: {brief}",
                      file=sys.stderr)
    text = markdown(report)
    print(text)
    if args.write_cards:
        write_cards(report, styles, folders)
    for path, payload in ((args.json, json.dumps(report, indent=1)), (args.markdown, text)):
        write_text(path, payload)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--style", required=True,
                   help="comma-separated style list (MODEL, MODEL:STYLE, or ref=CLIP for a "
                        "zero-shot style); the identity path and the calibration degradations "
                        "are always added")
    p.add_argument("--heldout", type=Path, action="append", default=None,
                   help="held-out set folder(s) (tools/make_heldout.py); for each model the "
                        "one at its rate is used, else the first, resampled "
                        f"(default {default_heldout()})")
    p.add_argument("--strength", type=float, default=1.0, help="the styles' strength (1)")
    p.add_argument("--clips", type=int, default=None, help="at most N speech and N music clips")
    p.add_argument("--tagger-python", default=None, metavar="PY",
                   help="a Python with musicnn (tools/judge_tagger.py says how to make one)")
    p.add_argument("--write-cards", action="store_true",
                   help="write each judged style's figures into its model card (quality.judges)")
    p.add_argument("--json", type=Path, default=None, help="write the full report here")
    p.add_argument("--markdown", type=Path, default=None, help="write the tables here")
    args = p.parse_args(argv)
    return run_tool("judge", lambda: _judge(args))


if __name__ == "__main__":
    sys.exit(main())
