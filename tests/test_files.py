"""rtstyle.io.files: reading, writing, clear errors for bad files, and atomic, safe outputs."""

from __future__ import annotations

import os
import re
import struct

import numpy as np
import pytest
import soundfile as sf

from rtstyle.errors import AudioFileError, ParameterError
from rtstyle.io.files import (
    RESAMPLE_QUALITIES,
    Resampler,
    atomic_output,
    audio_info,
    check_output_path,
    load_audio,
    resample,
    save_audio,
)

SR = 22050
# One step of 16-bit PCM. Writing float32 to PCM_16 rounds each sample to the nearest step,
# so a lossless round trip through the default subtype is exact to half a step; allow one.
PCM16_STEP = 2.0**-15


def named(path) -> str:
    """A `match=` pattern for a message that starts with the file's name."""
    return "^" + re.escape(str(path)) + ": "


def peak_hz(y: np.ndarray, sr: int) -> float:
    """Frequency of the strongest spectral peak, interpolated between bins (parabolic)."""
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size), n=4 * y.size))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-12)
    k += 0.5 * (a - c) / (a - 2 * b + c)
    return k * sr / (4 * y.size)


@pytest.fixture
def stereo(signals):
    """Two different channels: a 440 Hz sine on the left, a chirp on the right."""
    return np.stack([signals.sine(SR, 440.0, 0.5), signals.chirp(SR, duration=0.5, amp=0.3)])


def write_wav(path, y, sr=SR, subtype="PCM_16"):
    """Write with soundfile directly (channel-first in, as rtstyle's arrays are)."""
    sf.write(path, y.T if y.ndim == 2 else y, sr, subtype=subtype, format="WAV")
    return path


# ----------------------------------------------------------------------------------------------
# round trips, shapes, channel order
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["wav", "flac", "aiff", "aif"])
@pytest.mark.parametrize("channels", [1, 2, 4])
def test_lossless_round_trip(tmp_path, signals, ext, channels):
    y = np.stack([signals.sine(SR, 220.0 * (c + 1), 0.25) for c in range(channels)])
    y = y[0] if channels == 1 else y
    out = save_audio(tmp_path / f"x.{ext}", y, sr=SR)
    assert out == tmp_path / f"x.{ext}"
    z, sr = load_audio(out)
    assert sr == SR
    assert z.shape == y.shape and z.dtype == np.float32 and z.flags.c_contiguous
    np.testing.assert_allclose(z, y, rtol=0, atol=PCM16_STEP)  # PCM_16 rounding, see above


def test_float_subtype_is_exact(tmp_path, signals):
    y = signals.noise(SR, 0.1)
    z, _ = load_audio(save_audio(tmp_path / "f.wav", y, sr=SR, subtype="FLOAT"))
    np.testing.assert_array_equal(z, y)


def test_ogg_round_trip(tmp_path, stereo):
    z, sr = load_audio(save_audio(tmp_path / "x.ogg", stereo, sr=SR))
    assert sr == SR and z.shape == stereo.shape
    # Vorbis is lossy (psychoacoustic coding, pre-echo), so samples are not compared one by one:
    # each channel must keep its own content (correlation with its source, not with the other).
    for c in range(2):
        assert np.corrcoef(z[c], stereo[c])[0, 1] > 0.95
        assert abs(np.corrcoef(z[c], stereo[1 - c])[0, 1]) < 0.2


def test_channel_first_order(tmp_path, stereo):
    """A file written by soundfile as (n, 2) comes back as (2, n), channel 0 first."""
    path = write_wav(tmp_path / "lr.wav", stereo)
    z, _ = load_audio(path)
    assert z.shape == (2, stereo.shape[1])
    np.testing.assert_allclose(z[0], stereo[0], atol=PCM16_STEP)  # PCM_16 rounding
    np.testing.assert_allclose(z[1], stereo[1], atol=PCM16_STEP)
    assert peak_hz(z[0], SR) == pytest.approx(440.0, abs=1.0)


def test_mono_file_is_1d(tmp_path, signals):
    path = write_wav(tmp_path / "m.wav", signals.sine(SR, 440.0, 0.1))
    z, _ = load_audio(path)
    assert z.shape == (int(0.1 * SR),)
    z, _ = load_audio(path, mono=True)
    assert z.shape == (int(0.1 * SR),)


def test_mono_downmix_is_channel_mean(tmp_path, stereo):
    path = write_wav(tmp_path / "s.wav", stereo, subtype="FLOAT")
    z, _ = load_audio(path, mono=True)
    assert z.shape == (stereo.shape[1],) and z.dtype == np.float32
    np.testing.assert_allclose(z, stereo.mean(axis=0), atol=1e-7)  # float32 rounding of a mean


def test_dtype_float64(tmp_path, signals):
    path = write_wav(tmp_path / "d.wav", signals.sine(SR, 440.0, 0.1), subtype="DOUBLE")
    z, _ = load_audio(path, dtype=np.float64)
    assert z.dtype == np.float64
    z, _ = load_audio(path, sr=8000, mono=True, dtype="float64")
    assert z.dtype == np.float64


@pytest.mark.parametrize(("sr_file", "sr_out"), [(44100, 22050), (8000, 22050)])
@pytest.mark.parametrize("channels", [1, 2])
def test_resampling_keeps_duration_and_pitch(tmp_path, signals, sr_file, sr_out, channels):
    y = signals.sine(sr_file, 440.0, 1.0)
    y = np.stack([y, 0.5 * y]) if channels == 2 else y
    path = write_wav(tmp_path / "r.wav", y, sr=sr_file, subtype="FLOAT")
    z, sr = load_audio(path, sr=sr_out)
    assert sr == sr_out
    n_expected = y.shape[-1] * sr_out / sr_file
    assert abs(z.shape[-1] - n_expected) <= 1  # "within a sample": soxr rounds the length
    assert z.ndim == y.ndim
    first = z if channels == 1 else z[0]
    # 1 s of signal, 4x zero-padded FFT with parabolic interpolation: well under 1 Hz of error.
    assert peak_hz(first, sr_out) == pytest.approx(440.0, abs=0.5)
    # an HQ resampler keeps a pure in-band tone's level (fades aside) to a fraction of a dB
    assert np.max(np.abs(first)) == pytest.approx(0.5, abs=0.01)
    if channels == 2:
        np.testing.assert_allclose(z[1], 0.5 * z[0], atol=1e-6)  # channels resampled alike


def test_same_rate_is_not_resampled(tmp_path, signals):
    y = signals.noise(SR, 0.1)
    path = write_wav(tmp_path / "n.wav", y, subtype="FLOAT")
    z, sr = load_audio(path, sr=np.int64(SR))  # numpy integers are fine
    assert sr == SR and type(sr) is int
    np.testing.assert_array_equal(z, y)


@pytest.mark.parametrize("quality", RESAMPLE_QUALITIES)
@pytest.mark.parametrize(("orig_sr", "target_sr"), [(48000, 22050), (22050, 48000)])
def test_resampler_stream_equals_one_shot_at_every_quality(signals, quality, orig_sr, target_sr):
    # soxr's streams are delay-compensated at every preset: blocks of awkward sizes, then the
    # flush, give the one-shot result exactly (the same filter over the same samples).
    y = signals.noise(orig_sr, 0.3)
    x = np.stack([y, -0.5 * y])
    rs = Resampler(orig_sr=orig_sr, target_sr=target_sr, channels=2, quality=quality.lower())
    assert rs.quality == quality
    parts, i = [], 0
    for n in [1, 64, 65, 511, 4096] * 10:
        parts.append(rs.feed(x[:, i:i + n]))
        i += n
    parts += [rs.feed(x[:, i:]), rs.flush()]
    got = np.concatenate(parts, axis=1)
    ref = resample(x, orig_sr=orig_sr, target_sr=target_sr, quality=quality)
    assert got.shape == ref.shape == (2, round(x.shape[1] * target_sr / orig_sr))
    np.testing.assert_array_equal(got, ref)


def test_resample_quality_is_checked_and_changes_the_filter(signals):
    y = signals.noise(48000, 0.1)
    for call in (lambda: resample(y, orig_sr=48000, target_sr=22050, quality="best"),
                 lambda: Resampler(orig_sr=48000, target_sr=48000, channels=1, quality="best")):
        with pytest.raises(ParameterError, match=r"^quality='best' must be one of VHQ, HQ, MQ, "
                                                 r"LQ, QQ") as e:
            call()
        assert "\n" not in str(e.value)
    with pytest.raises(ParameterError, match="quality=4"):
        resample(y, orig_sr=48000, target_sr=22050, quality=4)   # soxr's enum: not ours
    hq = resample(y, orig_sr=48000, target_sr=22050)
    assert not np.allclose(hq, resample(y, orig_sr=48000, target_sr=22050, quality="qq"))
    np.testing.assert_array_equal(hq, resample(y, orig_sr=48000, target_sr=22050, quality="Hq"))
    # equal rates: nothing to resample, whatever the quality
    assert resample(y, orig_sr=48000, target_sr=48000, quality="QQ") is y


def test_audio_info(tmp_path, stereo):
    path = write_wav(tmp_path / "i.wav", stereo)
    info = audio_info(path)
    assert info == (SR, 2, stereo.shape[1])
    assert (info.sr, info.channels, info.frames) == (SR, 2, stereo.shape[1])


def test_public_names_reexported():
    import rtstyle

    assert rtstyle.load_audio is load_audio
    assert rtstyle.save_audio is save_audio


# ----------------------------------------------------------------------------------------------
# reading errors: one line, the file's name first
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", [load_audio, audio_info])
def test_missing_file(tmp_path, reader):
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioFileError, match=named(path) + "no such file$"):
        reader(path)
    with pytest.raises(AudioFileError, match="no such file"):
        reader(tmp_path / "no-folder" / "x.wav")


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(AudioFileError, match=named(tmp_path) + "is a folder"):
        load_audio(tmp_path)


def test_unreadable_file(tmp_path, monkeypatch, signals):
    path = write_wav(tmp_path / "locked.wav", signals.sine(SR, 440.0, 0.1))
    if os.name == "posix" and os.geteuid() != 0:
        path.chmod(0)
    else:  # root (or Windows) ignores the mode bits: make the module's open() refuse instead
        import rtstyle.io.reading as files     # where load_audio calls open()

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(files, "open", refuse, raising=False)
    with pytest.raises(AudioFileError, match=named(path) + "permission denied$"):
        load_audio(path)


@pytest.mark.parametrize("reader", [load_audio, audio_info])
def test_zero_byte_file(tmp_path, reader):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioFileError, match=named(path) + r"file is empty \(no audio frames\)"):
        reader(path)


@pytest.mark.parametrize("ext", ["wav", "aiff"])
def test_zero_frame_file(tmp_path, ext):
    path = tmp_path / f"zero.{ext}"
    sf.write(path, np.zeros((0, 2), np.float32), SR)
    assert path.stat().st_size > 0  # a valid header, no frames
    with pytest.raises(AudioFileError, match=named(path) + "file is empty"):
        load_audio(path)
    with pytest.raises(AudioFileError, match=named(path) + "file is empty"):
        audio_info(path)


@pytest.mark.parametrize("content", [b"this is a text file, not audio\n" * 4,
                                     np.random.default_rng(0).bytes(4096)],
                         ids=["text", "random-bytes"])
def test_not_audio(tmp_path, content):
    path = tmp_path / "fake.wav"
    path.write_bytes(content)
    with pytest.raises(AudioFileError, match=named(path) + r"not a readable audio file \(.+\)$"):
        load_audio(path)


@pytest.mark.parametrize("suffix", [".mp3", ".wav", ".xyz"])
def test_not_audio_never_says_the_file_is_missing(tmp_path, suffix):
    """libsndfile says "File does not exist or is not a regular file" when no format
    matches; the file is there, so the message says what is wrong instead."""
    path = tmp_path / f"text{suffix}"
    path.write_text("hello\n")
    with pytest.raises(AudioFileError) as info:
        load_audio(path)
    assert "does not exist" not in str(info.value)
    assert str(info.value).startswith(f"{path}: not a readable audio file (")


def test_error_messages_are_one_line_without_chained_internals(tmp_path):
    path = tmp_path / "fake.wav"
    path.write_text("hello\n")
    with pytest.raises(AudioFileError) as info:
        load_audio(path)
    assert "\n" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert isinstance(info.value, OSError)  # AudioFileError is also an OSError


@pytest.mark.parametrize("fmt", ["WAV", "AIFF", "RF64"])
def test_truncated_file_from_header(tmp_path, stereo, fmt):
    """libsndfile would read these silently shortened; the header walk catches them."""
    path = tmp_path / f"cut.{fmt.lower()}"
    y = stereo[:, :1000]
    sf.write(path, y.T, SR, format=fmt, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[:-1001])  # 1001 bytes = 250.25 stereo 16-bit frames
    with pytest.raises(AudioFileError,
                       match=named(path) + "truncated: header declares 1000 frames, "
                                           "file holds 749$"):
        load_audio(path)
    with pytest.raises(AudioFileError, match=named(path) + "truncated"):
        audio_info(path)


@pytest.mark.parametrize("keep", [16, 30, 42, 44])
def test_truncated_wav_before_the_data(tmp_path, stereo, keep):
    """Cut inside the fmt chunk, inside the data chunk's header, or right after it."""
    path = write_wav(tmp_path / "cut.wav", stereo[:, :1000])
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(AudioFileError, match=named(path) + "truncated: "):
        load_audio(path)


def test_truncated_flac(tmp_path, signals):
    """FLAC frames are checksummed: a cut stream fails to decode, or reads short."""
    path = tmp_path / "cut.flac"
    sf.write(path, signals.noise(SR, 1.0), SR)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(AudioFileError, match=named(path) + "truncated"):
        load_audio(path)


def test_streaming_placeholder_sizes_are_not_truncation(tmp_path, stereo):
    """A WAV written while streaming may keep 0xFFFFFFFF sizes: read what is there."""
    path = write_wav(tmp_path / "live.wav", stereo)
    data = bytearray(path.read_bytes())
    assert data[36:40] == b"data"
    data[4:8] = data[40:44] = struct.pack("<I", 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    z, _ = load_audio(path)
    np.testing.assert_allclose(z, stereo, atol=PCM16_STEP)  # PCM_16 rounding

    # a zero placeholder and no data at all: nothing to read, so "empty", not "truncated"
    data[4:8] = data[40:44] = struct.pack("<I", 0)
    path.write_bytes(bytes(data[:44]))
    with pytest.raises(AudioFileError, match=named(path) + "file is empty"):
        load_audio(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, stereo, bad):
    y = stereo.copy()
    y[1, 100] = bad
    path = write_wav(tmp_path / "nan.wav", y, subtype="FLOAT")
    with pytest.raises(ParameterError, match=named(path) + "holds NaN or Inf samples$"):
        load_audio(path)


@pytest.mark.parametrize("sr", [0, -8000, 500, 22050.5, "22050", True])
def test_bad_sr_when_loading(tmp_path, signals, sr):
    """(A whole float such as 22050.0 is a rate: tests/test_streamer.py.)"""
    path = write_wav(tmp_path / "x.wav", signals.sine(SR, 440.0, 0.1))
    with pytest.raises(ParameterError,
                       match=r"^sr=.* must be a (sample rate|whole number of Hz) in 1000\.\.768000"):
        load_audio(path, sr=sr)


@pytest.mark.parametrize("dtype", [np.int16, np.float16, "complex64"])
def test_bad_dtype(tmp_path, signals, dtype):
    path = write_wav(tmp_path / "x.wav", signals.sine(SR, 440.0, 0.1))
    with pytest.raises(ParameterError, match="dtype="):
        load_audio(path, dtype=dtype)


# ----------------------------------------------------------------------------------------------
# writing: formats, subtypes, values
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ext", "fmt", "subtype"),
                         [("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"),
                          ("aiff", "AIFF", "PCM_16"), ("ogg", "OGG", "VORBIS")])
def test_default_subtypes(tmp_path, signals, ext, fmt, subtype):
    path = save_audio(tmp_path / f"x.{ext}", signals.sine(SR, 440.0, 0.1), sr=SR)
    info = sf.info(path)
    assert (info.format, info.subtype) == (fmt, subtype)


def test_subtype_and_format_overrides(tmp_path, signals):
    y = signals.sine(SR, 440.0, 0.1)
    path = save_audio(tmp_path / "x.wav", y, sr=SR, subtype="pcm_24")
    assert sf.info(path).subtype == "PCM_24"
    path = save_audio(tmp_path / "x.bin", y, sr=SR, format="flac")
    assert sf.info(path).format == "FLAC"
    z, _ = load_audio(path)  # libsndfile recognises the content, whatever the name
    np.testing.assert_allclose(z, y, atol=PCM16_STEP)  # PCM_16 rounding


@pytest.mark.parametrize("name", ["x.xyz", "x", "x.raw"])
def test_unknown_extension(tmp_path, signals, name):
    path = tmp_path / name
    with pytest.raises(ParameterError, match=named(path) + r"unknown audio file type.*\.wav"):
        save_audio(path, signals.sine(SR, 440.0, 0.1), sr=SR)
    assert not any(tmp_path.iterdir())


def test_unknown_format(tmp_path, signals):
    with pytest.raises(ParameterError, match="format='MP4'"):
        save_audio(tmp_path / "x.mp4", signals.sine(SR, 440.0, 0.1), sr=SR, format="MP4")


@pytest.mark.parametrize("subtype", ["VORBIS", "NOPE"])
def test_invalid_subtype(tmp_path, signals, subtype):
    with pytest.raises(ParameterError, match=f"subtype='{subtype}' is not valid for WAV.*PCM_16"):
        save_audio(tmp_path / "x.wav", signals.sine(SR, 440.0, 0.1), sr=SR, subtype=subtype)
    assert not any(tmp_path.iterdir())


def test_format_that_cannot_hold_the_audio(tmp_path, signals):
    """Opus has a fixed set of rates; libsndfile's reason is passed on, nothing is left."""
    path = tmp_path / "x.opus"
    with pytest.raises(ParameterError, match=named(path) + r"cannot write OGG/OPUS.*\(.+\)$"):
        save_audio(path, signals.sine(SR, 440.0, 0.1), sr=SR)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("y", "match"), [
    (np.zeros(100, np.int16), "floating-point"),
    (np.full(100, np.nan, np.float32), "not finite"),
    (np.zeros((1, 2, 100), np.float32), "shape"),
    (np.zeros(0, np.float32), "empty"),
    ([0.0, 0.1], "numpy.ndarray"),
    (np.zeros((1000, 2), np.float32), r"more channels than samples.*\(channels, n\)"),
])
def test_bad_audio_when_saving(tmp_path, y, match):
    with pytest.raises(ParameterError, match=match):
        save_audio(tmp_path / "x.wav", y, sr=SR)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("sr", [None, 0, 44100.5])
def test_bad_sr_when_saving(tmp_path, signals, sr):
    with pytest.raises(ParameterError, match="^sr="):
        save_audio(tmp_path / "x.wav", signals.sine(SR, 440.0, 0.1), sr=sr)


def test_values_beyond_full_scale_clip_in_pcm_and_survive_in_float(tmp_path, signals):
    y = 3 * signals.sine(SR, 440.0, 0.1)  # peaks at 1.5
    z, _ = load_audio(save_audio(tmp_path / "pcm.wav", y, sr=SR))
    # clipped, not rescaled and not wrapped around: in-range samples keep their values
    assert z.max() <= 1.0 and z.min() >= -1.0
    inside = np.abs(y) < 0.99
    np.testing.assert_allclose(z[inside], y[inside], atol=PCM16_STEP)  # PCM_16 rounding
    assert np.all(np.abs(z[~inside]) > 0.99)
    z, _ = load_audio(save_audio(tmp_path / "float.wav", y, sr=SR, subtype="FLOAT"))
    np.testing.assert_array_equal(z, y)


# ----------------------------------------------------------------------------------------------
# output safety: overwrite, protect, folders
# ----------------------------------------------------------------------------------------------


def test_refuses_to_overwrite(tmp_path, signals):
    path = tmp_path / "out.wav"
    path.write_bytes(b"precious")
    y = signals.sine(SR, 440.0, 0.1)
    with pytest.raises(AudioFileError, match=named(path) + r"exists \(use --overwrite"):
        save_audio(path, y, sr=SR)
    assert path.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]
    save_audio(path, y, sr=SR, overwrite=True)
    assert sf.info(path).frames == y.size


def test_never_overwrites_an_input(tmp_path, signals):
    src = write_wav(tmp_path / "in.wav", signals.sine(SR, 440.0, 0.1))
    before = src.read_bytes()
    y, sr = load_audio(src)
    for protect in ([src], (str(src),), src):  # a list, a tuple of str, a single path
        with pytest.raises(AudioFileError,
                           match=named(src) + "is an input file; refusing to overwrite it$"):
            save_audio(src, y, sr=sr, overwrite=True, protect=protect)
    assert src.read_bytes() == before


def test_protect_sees_through_links_and_relative_paths(tmp_path, monkeypatch, signals):
    src = write_wav(tmp_path / "in.wav", signals.sine(SR, 440.0, 0.1))
    link = tmp_path / "link.wav"
    link.symlink_to(src)
    y = signals.sine(SR, 220.0, 0.1)
    with pytest.raises(AudioFileError, match="is an input file"):
        save_audio(link, y, sr=SR, overwrite=True, protect=[src])  # samefile: same file
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AudioFileError, match="is an input file"):
        check_output_path("new.wav", protect=[tmp_path / "sub" / ".." / "new.wav"])


def test_output_folder_must_exist(tmp_path, signals):
    path = tmp_path / "missing" / "out.wav"
    with pytest.raises(AudioFileError,
                       match=named(path) + "folder '" + re.escape(str(path.parent)) + "'"):
        save_audio(path, signals.sine(SR, 440.0, 0.1), sr=SR)


def test_output_is_a_folder(tmp_path, signals):
    (tmp_path / "out.wav").mkdir()
    with pytest.raises(AudioFileError, match="is a folder"):
        save_audio(tmp_path / "out.wav", signals.sine(SR, 440.0, 0.1), sr=SR, overwrite=True)


def test_check_output_path_writes_nothing(tmp_path):
    target = check_output_path(tmp_path / "later.wav")
    assert target == tmp_path / "later.wav"
    assert not any(tmp_path.iterdir())


def test_new_file_gets_normal_permissions(tmp_path, signals):
    """The temp file is created with the umask's permissions, not mkstemp's 0600."""
    old = os.umask(0o022)
    try:
        path = save_audio(tmp_path / "p.wav", signals.sine(SR, 440.0, 0.1), sr=SR)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# ----------------------------------------------------------------------------------------------
# atomicity
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch, signals, existing):
    path = tmp_path / "out.flac"
    if existing:
        path.write_bytes(b"the old take")
    real_write = sf.SoundFile.write

    def write_half_then_interrupt(self, data):
        real_write(self, data[: len(data) // 2])
        raise KeyboardInterrupt  # Ctrl-C in the middle of the write

    monkeypatch.setattr(sf.SoundFile, "write", write_half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_audio(path, signals.noise(SR, 0.5), sr=SR, overwrite=True)
    if existing:
        assert path.read_bytes() == b"the old take"
        assert [p.name for p in tmp_path.iterdir()] == ["out.flac"]
    else:
        assert not any(tmp_path.iterdir())


def test_atomic_output_writes_via_hidden_temp(tmp_path):
    target = tmp_path / "fig.png"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".fig.") and tmp.suffix == ".png"
        assert tmp.exists() and not target.exists()
        tmp.write_bytes(b"png bytes")
    assert target.read_bytes() == b"png bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_atomic_output_exception_removes_temp(tmp_path, error):
    target = tmp_path / "log.json"
    target.write_text("old")
    with pytest.raises(error):
        with atomic_output(target, overwrite=True) as tmp:
            tmp.write_text("half")
            raise error("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["log.json"]


def test_atomic_output_rules(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    with pytest.raises(AudioFileError, match="exists"):
        with atomic_output(target):
            pass
    with pytest.raises(AudioFileError, match="is an input file"):
        with atomic_output(target, overwrite=True, protect=[target]):
            pass
    with atomic_output(target, overwrite=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_target_that_appears_meanwhile_is_not_clobbered(tmp_path):
    """Checked again just before the rename: another program may have written it."""
    target = tmp_path / "race.wav"
    with pytest.raises(AudioFileError, match="exists"):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"mine")
            target.write_bytes(b"theirs")
    assert target.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["race.wav"]


def test_not_audio_is_one_line_without_the_decoders_chatter(tmp_path, capfd):
    """libsndfile's MP3 decoder prints "Note: Illegal Audio-MPEG-Header ..." to file
    descriptor 2 when it probes a text file named .mp3; the user sees only the one-line
    error."""
    path = tmp_path / "text.mp3"
    path.write_text("hello\n")
    with pytest.raises(AudioFileError):
        load_audio(path)
    assert capfd.readouterr().err == ""


def test_what_c_code_says_while_a_good_file_opens_is_kept(tmp_path, capfd, monkeypatch):
    """Held only while the open runs, and written back when it succeeds."""
    import soundfile as sf

    from rtstyle.io import reading

    path = tmp_path / "ok.wav"
    sf.write(path, np.zeros(100, np.float32), 8000)
    real = sf.SoundFile

    def chatty(*args, **kwargs):
        os.write(2, b"a decoder's warning\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(reading.sf, "SoundFile", chatty)
    y, sr = load_audio(path)
    assert sr == 8000 and y.shape[-1] == 100
    assert capfd.readouterr().err == "a decoder's warning\n"
