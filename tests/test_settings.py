"""One engine configuration (issue 13): :class:`rtstyle.engine_settings.EngineSettings`.

Each field is walked to every place that must carry it: the flags of ``render`` and ``live``
(same flag, same choices), a live preset (TOML round trip), ``render``'s report (the command's
and the API's), live's settings and report keys, and the signatures of ``render`` and
``Streamer``. The choices the CLI offers are checked against the engine's own constants, and
building the parser or printing help imports neither torch nor numba.
"""

import dataclasses
import inspect
import json
import math
import subprocess
import sys

import pytest
import soundfile as sf

from conftest import SR, speechlike
from rtstyle.engine_settings import DEFAULTS, PARAMS, EngineSettings
from rtstyle.errors import ParameterError

#: A value away from the default for every field, and how the command line writes it.
SAMPLE = {
    "style": (("identity",), "identity"),
    "strength": (0.5, "0.5"),
    "morph": (0.25, "0.25"),
    "mix": (0.75, "0.75"),
    "gain_db": (-3.0, "-3"),
    "bypass": (True, None),
    "crossfade_ms": (20.0, "20"),
    "envelope": ("free", "free"),
    "n_fft": (512, "512"),
    "hop_length": (128, "128"),
    "lookahead": (2, "2"),
    "phase_init": ("rtpghi", "rtpghi"),
    "phase_iters": (8, "8"),
    "momentum": (0.5, "0.5"),
    "resample_quality": ("LQ", "lq"),
    "device": ("cuda", "cuda"),
    "threads": (2, "2"),
}
VALUES = {k: value for k, (value, _) in SAMPLE.items()}


def test_every_field_has_a_sample_away_from_its_default():
    assert list(SAMPLE) == list(PARAMS) == [f.name for f in dataclasses.fields(EngineSettings)]
    for name, value in VALUES.items():
        assert value != DEFAULTS[name], name


def _argv():
    argv = []
    for name, (_, text) in SAMPLE.items():
        argv += [PARAMS[name].flag] + ([] if text is None else [text])
    return argv


def _subparsers():
    from rtstyle.cli import build_parser

    return next(a for a in build_parser()._actions if a.dest == "command").choices


def test_every_field_is_a_flag_of_render_and_of_live():
    from rtstyle.cli.common import engine_settings

    sub = _subparsers()
    for cmd in ("render", "live"):
        actions = {a.dest: a for a in sub[cmd]._actions}
        for name, param in PARAMS.items():
            assert name in actions, (cmd, name)
            assert param.flag in actions[name].option_strings, (cmd, name)
            assert actions[name].choices == param.choices, (cmd, name)
    render = sub["render"].parse_args(["in.wav", "-o", "out.wav", *_argv()])
    live = sub["live"].parse_args(_argv())
    want = EngineSettings(**VALUES)
    assert engine_settings(render) == want
    assert engine_settings(live) == want
    # unset: render's flags hold the defaults, live's are absent (a preset may give them)
    assert engine_settings(sub["render"].parse_args(["in.wav", "-o", "o.wav"])) == EngineSettings()
    assert not set(PARAMS) & set(vars(sub["live"].parse_args([])))


def test_every_field_survives_a_preset(tmp_path):
    from rtstyle.live import DEFAULTS as LIVE, load_preset, save_preset
    from rtstyle.live.settings import check_settings, engine_settings

    assert set(PARAMS) <= set(LIVE)
    assert {k: LIVE[k] for k in PARAMS} == DEFAULTS
    settings = check_settings(VALUES)
    save_preset(tmp_path / "p.toml", settings)
    loaded = check_settings(load_preset(tmp_path / "p.toml"))
    assert engine_settings(loaded) == EngineSettings(**VALUES)


def test_every_field_reaches_the_live_settings_and_report_keys():
    from rtstyle.live import DEFAULTS as LIVE, LiveSession

    session = LiveSession(dict(VALUES))            # checks only; no device opens
    for name, value in EngineSettings(**VALUES).to_dict().items():
        assert session.settings[name] == value, name
    src = inspect.getsource(LiveSession.report)    # the report's "settings": every key
    assert '"settings": {k: self.settings[k] for k in DEFAULTS}' in src
    assert set(PARAMS) <= set(LIVE)


def test_every_field_reaches_the_render_report(tmp_path, capsys):
    from rtstyle.cli import main

    sf.write(tmp_path / "in.wav", 0.3 * speechlike(SR, duration=0.5), SR, subtype="FLOAT")
    report = tmp_path / "r.json"
    code = main(["render", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav"), "-q",
                 "--report", str(report), *_argv()])
    assert code == 0, capsys.readouterr().err
    got = json.loads(report.read_text())
    for name, value in EngineSettings(**VALUES).to_dict().items():
        if name == "device":           # the device used: the CPU where CUDA is absent
            assert got[name] in (value, "cpu")
        else:
            assert got[name] == value, name


def test_render_and_streamer_signatures_name_every_setting():
    import rtstyle
    from rtstyle.render import DEFAULTS as RENDER

    params = inspect.signature(rtstyle.render).parameters
    for name, default in DEFAULTS.items():
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[name].default == default == RENDER[name]
    streamer = inspect.signature(rtstyle.Streamer).parameters
    assert {k for k, p in PARAMS.items() if p.streamer} <= set(streamer)
    assert not {"style", "resample_quality", "threads"} & set(streamer)
    with pytest.raises(ParameterError, match="Streamer takes no threads"):
        rtstyle.Streamer(sr=SR, threads=2)


def test_settings_are_checked_frozen_and_normalised():
    s = EngineSettings(style="a, b", resample_quality="lq", strength=1)
    assert s.style == ("a", "b") and s.resample_quality == "LQ"
    assert isinstance(s.strength, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mix = 0.5
    assert s.replace(mix=0.5).mix == 0.5 and s.mix == 1.0
    assert EngineSettings(gain_db=-math.inf).gain_db == -math.inf
    for bad, needle in (({"mix": 2.0}, "mix=2.0"), ({"momentum": 1.0}, "momentum=1.0"),
                        ({"lookahead": 7}, "lookahead=7"), ({"gain_db": 30}, "gain_db=30"),
                        ({"crossfade_ms": -1}, "crossfade_ms=-1"), ({"threads": 0}, "threads=0"),
                        ({"style": "a,,b"}, "empty name"), ({"device": "tpu"}, "device='tpu'"),
                        ({"envelope": "loud"}, "envelope='loud'"), ({"bypass": "yes"}, "bypass"),
                        ({"n_fft": 1 << 30}, "n_fft=1073741824"), ({"mixx": 1}, "unknown")):
        with pytest.raises(ParameterError, match=needle):
            EngineSettings.of(**bad)


@pytest.mark.parametrize("cmd", ["render", "live"])
@pytest.mark.parametrize("flag, text, needle", [
    ("--lookahead", "7", "lookahead=7"), ("--mix", "2", "mix=2.0"),
    ("--momentum", "1", "momentum=1.0"), ("--threads", "0", "threads=0"),
    ("--gain", "abc", "invalid float value: 'abc'"),
])
def test_bad_engine_flags_are_one_line(capsys, cmd, flag, text, needle):
    from rtstyle.cli import main

    argv = ["render", "in.wav", "-o", "o.wav"] if cmd == "render" else ["live"]
    with pytest.raises(SystemExit) as e:
        main([*argv, flag, text])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"argument {flag}" in err[0] and needle in err[0], err


def test_constants_are_the_engines():
    import rtstyle.constants as c
    from rtstyle.dsp import phase_stream
    from rtstyle.io import resampling
    from rtstyle.stream import styles

    assert c.PHASE_INITS == phase_stream.PHASE_INITS
    assert c.MAX_LOOKAHEAD == phase_stream.MAX_LOOKAHEAD
    assert c.ENVELOPES == styles.ENVELOPES
    assert c.RESAMPLE_QUALITIES == resampling.RESAMPLE_QUALITIES


def test_cli_choices_come_from_the_constants():
    from rtstyle import config, control
    from rtstyle.io import midi
    from rtstyle.transfer import CONTENT_LOSSES

    sub = _subparsers()

    def choices(cmd, dest):
        return next(a.choices for a in sub[cmd]._actions if a.dest == dest)

    assert choices("midi-ports", "midi_api") == choices("live", "midi_api") == tuple(midi.APIS)
    assert choices("transfer", "features") == choices("train", "features") == config.FEATURE_KINDS
    assert choices("transfer", "content_loss") == CONTENT_LOSSES
    assert tuple(choices("live", "midi_learn")) == tuple(control.CC_PARAMS)


def test_help_imports_no_torch():
    code = ("import sys\n"
            "from rtstyle.cli import build_parser, main\n"
            "build_parser()\n"
            "for argv in (['--help'], ['render', '--help'], ['live', '--help']):\n"
            "    try:\n"
            "        main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "heavy = [m for m in ('torch', 'numba', 'librosa') if m in sys.modules]\n"
            "print('heavy:', heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "heavy: []", r.stdout[-500:]
