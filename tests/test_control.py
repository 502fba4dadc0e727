"""rtstyle.control: MIDI mapping, controller, MIDI learn, TOML files and MIDI-file automation."""

from __future__ import annotations

import logging
import math

import mido
import numpy as np
import pytest

from conftest import sine
from rtstyle.control import (CC_PARAMS, DEFAULT_CC, LEARNED, Controller, Mapping, apply,
                             cc_value, midi_file_events)
from rtstyle.errors import MidiError, ParameterError


def cc(control, value, channel=0):
    return mido.Message("control_change", channel=channel, control=control, value=value)


# ------------------------------------------------------------------------------ default mapping
def test_default_mapping_values():
    ctl = Controller(n_styles=3)
    assert ctl.handle(cc(7, 127)) == [("gain_db", 0.0)]
    (name, g), = ctl.handle(cc(7, 64))
    assert name == "gain_db" and g == pytest.approx(-11.905, abs=1e-3)
    assert ctl.handle(cc(7, 0)) == [("gain_db", -math.inf)]
    assert ctl.handle(cc(11, 0)) == [("mix", 0.0)]
    assert ctl.handle(cc(11, 127)) == [("mix", 1.0)]
    assert ctl.handle(cc(1, 127)) == [("morph", 1.0)]
    assert ctl.handle(cc(2, 0)) == [("strength", 0.0)]
    assert ctl.handle(cc(64, 64)) == [("bypass", True)]
    assert ctl.handle(cc(64, 63)) == [("bypass", False)]
    assert ctl.handle(mido.Message("program_change", program=2)) == [("style", 2)]
    # unmapped CC, notes, pitch bend, sysex: nothing
    assert ctl.handle(cc(20, 5)) == []
    assert ctl.handle(mido.Message("note_on", note=60, velocity=100)) == []
    assert ctl.handle(mido.Message("pitchwheel", pitch=100)) == []
    assert ctl.handle(mido.Message("sysex", data=[1, 2, 3] * 1000)) == []


def test_default_mapping_matches_streamer_names():
    from rtstyle.stream.mixer import MIX_PARAMS

    assert set(CC_PARAMS) == set(MIX_PARAMS) | {"strength", "morph"}
    assert Mapping().cc == DEFAULT_CC and Mapping().channel is None
    assert cc_value("mix", 127) == 1.0


def test_channel_filter():
    ctl = Controller(Mapping(channel=3), n_styles=2)
    assert ctl.handle(cc(7, 127, channel=0)) == []
    assert ctl.handle(cc(7, 127, channel=2)) == [("gain_db", 0.0)]      # channel 3, 1-based
    assert ctl.handle(mido.Message("program_change", channel=4, program=1)) == []
    omni = Controller(n_styles=2)
    assert omni.handle(cc(7, 127, channel=15)) == [("gain_db", 0.0)]
    with pytest.raises(ParameterError, match="channel"):
        Mapping(channel=17)


def test_raw_bytes_equal_mido_path():
    ctl = Controller(n_styles=4)
    for msg in [cc(7, 64, 5), cc(1, 100), cc(64, 127, 9),
                mido.Message("program_change", channel=2, program=3),
                mido.Message("note_on", note=60, velocity=1)]:
        raw = msg.bytes()
        assert ctl.handle(raw) == ctl.handle(msg) == ctl.handle(bytes(raw)) \
            == ctl.handle(tuple(raw))
    # running status, real-time bytes interleaved, sysex, garbage and a truncated tail
    raw = [0xF8, 0xB0, 7, 127, 11, 0, 0xF0, 1, 2, 0xF7, 0x45, 0xC0, 1, 0xFE, 0xB0, 7]
    assert ctl.handle(raw) == [("gain_db", 0.0), ("mix", 0.0), ("style", 1)]
    assert ctl.handle([]) == [] and ctl.handle([5, 6, 7]) == []
    with pytest.raises(ParameterError):
        ctl.handle("B0 07 7F")
    with pytest.raises(ParameterError):
        ctl.handle([0xB0, 7, 300])


def test_program_beyond_list_warns_once(caplog):
    ctl = Controller(n_styles=2)
    with caplog.at_level(logging.WARNING, logger="rtstyle"):
        for _ in range(3):
            assert ctl.handle([0xC0, 5]) == []
        assert ctl.handle([0xC0, 7]) == []
        assert ctl.handle([0xC0, 1]) == [("style", 1)]
    lines = [r.getMessage() for r in caplog.records if r.name == "rtstyle"]
    assert len(lines) == 2 and "program change 5" in lines[0] and "\n" not in lines[0]
    off = Controller(Mapping(program=None), n_styles=2)
    assert off.handle([0xC0, 1]) == []


# ------------------------------------------------------------------------------ TOML
def test_toml_round_trip(tmp_path):
    m = Mapping(cc={3: "mix", 74: "morph", 64: "bypass"}, channel=10, program=None)
    p = tmp_path / "map.toml"
    m.save(p)
    assert Mapping.load(p) == m
    Mapping().save(p, overwrite=True)
    assert Mapping.load(p) == Mapping()
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]   # no temp left
    (tmp_path / "partial.toml").write_text('channel = 2\n')
    assert Mapping.load(tmp_path / "partial.toml") == Mapping(channel=2)


@pytest.mark.parametrize("text, match", [
    ("channel = \n", "invalid TOML"),
    ("[cc]\n7 = \"volume\"\n", r"cc\.7 = 'volume': unknown parameter"),
    ("[cc]\n200 = \"mix\"\n", r"cc\.200: .*0\.\.127"),
    ("[cc]\nfoo = \"mix\"\n", r"cc\.foo"),
    ("channel = 0\n", "channel"),
    ("program = \"notes\"\n", "program"),
    ("chanel = 2\n", "unknown key 'chanel'"),
])
def test_bad_toml(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ParameterError, match=match) as info:
        Mapping.load(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


def test_missing_toml(tmp_path):
    with pytest.raises(ParameterError, match="cannot read"):
        Mapping.load(tmp_path / "nope.toml")


# ------------------------------------------------------------------------------ MIDI learn
def test_midi_learn_binds():
    m = Mapping()
    ctl = Controller(m, n_styles=1)
    ctl.learn("mix")
    assert ctl.learning == "mix"
    assert ctl.handle(mido.Message("note_on", note=60)) == []          # not a CC: still armed
    assert ctl.handle(cc(20, 127)) == [(LEARNED, (20, "mix")), ("mix", 1.0)]
    assert ctl.learning is None
    assert m.cc[20] == "mix" and 11 not in m.cc                           # rebound, CC11 freed
    assert ctl.handle(cc(20, 0)) == [("mix", 0.0)]
    assert ctl.handle(cc(11, 0)) == []
    ctl.learn("gain_db")                                                  # take over a used CC
    assert ctl.handle([0xB0, 1, 127]) == [(LEARNED, (1, "gain_db")), ("gain_db", 0.0)]
    assert m.cc[1] == "gain_db" and "morph" not in m.cc.values()
    with pytest.raises(ParameterError):
        ctl.learn("volume")


def test_midi_learn_respects_channel():
    ctl = Controller(Mapping(channel=2), n_styles=1)
    ctl.learn("strength")
    assert ctl.handle(cc(30, 10, channel=0)) == []
    assert ctl.learning == "strength"
    assert ctl.handle(cc(30, 127, channel=1))[0] == (LEARNED, (30, "strength"))


# ------------------------------------------------------------------------------ MIDI files
def _write_midi(path):
    """Tempo 120 bpm for one beat (0.5 s), then 60 bpm; program 1 at tick 960 → 1.5 s."""
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    meta.append(mido.MetaMessage("set_tempo", tempo=1_000_000, time=480))
    ctl = mido.MidiTrack()
    ctl.append(mido.Message("program_change", program=1, time=960))
    for i in range(5):                                  # CC1 ramp: one every 1/4 beat at 60 bpm
        ctl.append(mido.Message("control_change", control=1, value=i * 127 // 4,
                                time=0 if i == 0 else 120))
    ctl.append(mido.Message("note_on", note=60, time=0))
    ctl.append(mido.Message("program_change", program=9, time=0))   # beyond the list
    mf.tracks += [meta, ctl]
    mf.save(path)


def test_midi_file_events(tmp_path, caplog):
    p = tmp_path / "perf.mid"
    _write_midi(p)
    sr = 22050
    with caplog.at_level(logging.WARNING, logger="rtstyle"):
        ev = midi_file_events(p, sr=sr, n_styles=2)
    assert ev[0] == (33075, "style", 1)                 # 1.5 s * 22050
    ramp = [e for e in ev if e[1] == "morph"]
    assert np.allclose([e[0] for e in ramp], [sr * (1.5 + 0.25 * k) for k in range(5)], atol=1)
    assert [e[2] for e in ramp] == pytest.approx([0, 31 / 127, 63 / 127, 95 / 127, 1.0])
    assert [e[0] for e in ev] == sorted(e[0] for e in ev)
    assert len(ev) == 6                                 # program 9 ignored, note ignored
    assert sum("program change 9" in r.getMessage() for r in caplog.records) == 1
    # another rate: same times
    assert midi_file_events(p, sr=48000, n_styles=2)[0] == (72000, "style", 1)
    # the mapping is honoured
    ev = midi_file_events(p, sr=sr, n_styles=2, mapping=Mapping(cc={1: "mix"}, program=None))
    assert {e[1] for e in ev} == {"mix"}


def test_corrupt_midi_file(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"this is not a MIDI file at all")
    for path in (bad, tmp_path / "missing.mid"):
        with pytest.raises(MidiError) as info:
            midi_file_events(path, sr=22050, n_styles=1)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    trunc = tmp_path / "trunc.mid"
    _write_midi(trunc)
    trunc.write_bytes(trunc.read_bytes()[:40])
    with pytest.raises(MidiError, match=r"trunc\.mid: cannot read MIDI file \(\w"):
        midi_file_events(trunc, sr=22050, n_styles=1)


# ------------------------------------------------------------------------------ Streamer
def test_apply_cc7_zero_silences_streamer():
    from rtstyle.stream import Streamer

    sr = 22050
    st = Streamer(sr=sr)
    ctl = Controller(n_styles=len(st.styles))
    y = sine(sr, duration=1.0)
    n0 = 8000
    out = [st.feed(y[:n0])]
    apply(st, ctl.handle([0xB0, 7, 0]))
    apply(st, ctl.handle([0xF0, 1, 2, 0xF7]))            # nothing
    out += [st.feed(y[n0:]), st.flush()]
    out = np.concatenate(out)
    start = n0 + st.latency                              # input sample n0 is heard here
    glide = round(0.020 * sr)
    assert np.max(np.abs(out[start - 2000:start])) > 0.3   # loud right up to the change
    assert np.all(out[start + glide:] == 0.0)             # silent after the glide
    assert 0 < np.max(np.abs(out[start:start + glide])) < 0.5


def test_apply_skips_learned_and_strictness(caplog):
    from rtstyle.stream import Streamer

    st = Streamer(sr=22050)
    apply(st, [(LEARNED, (20, "mix")), ("mix", 0.5)])
    with pytest.raises(ParameterError):
        apply(st, [("morph", 0.5)])                      # identity: no style list
    with caplog.at_level(logging.WARNING, logger="rtstyle"):
        apply(st, [("morph", 0.5), ("morph", 0.6), ("gain_db", -6.0)], strict=False)
    assert sum("morph" in r.getMessage() for r in caplog.records) == 1


def test_controller_glide_is_the_streamers():
    """Controller(smooth_ms=) changed nothing (the Streamer glides): it is gone, and describe()
    names the Streamer's glide."""
    from rtstyle.stream.mixer import GLIDE_MS

    with pytest.raises(TypeError):
        Controller(n_styles=2, smooth_ms=5.0)
    assert f"glide over {GLIDE_MS:g} ms" in Controller(n_styles=2).describe()
