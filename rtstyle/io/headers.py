"""Truncation checks from WAV/RF64 and AIFF/AIFC headers: a walk of the chunk list that finds
an audio data chunk declaring more than the file holds (libsndfile reads such a WAV without a
word). Used by :mod:`rtstyle.io.reading`; reads only the bytes of the headers."""

from __future__ import annotations

import struct


# WAVE format tags whose block_align is the size of one frame (PCM, float, A-law, mu-law,
# extensible); for compressed tags (ADPCM, GSM...) a block holds many frames.
_WAVE_FRAME_TAGS = {0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE}
# AIFF-C compression types whose samples take ceil(bits / 8) bytes each.
_AIFC_PLAIN = {b"NONE", b"sowt", b"twos", b"raw ", b"in24", b"in32", b"fl32", b"FL32",
               b"fl64", b"FL64"}
_UNKNOWN_SIZES = {0, 0xFFFFFFFF}  # placeholders written by streaming writers


def _header_truncation(fh, size: int) -> str | None:
    """Walk a WAV/RF64 or AIFF chunk list; describe a truncation, or return None.

    libsndfile reads a WAV whose data chunk runs past the end of the file without complaint
    (it shortens the file's length), so that case is found here, from the header. Size fields
    holding 0 or 0xFFFFFFFF (left by writers that stream) mean "unknown" and are not flagged.
    Other formats return None (their truncation shows as a short or failing read).
    """
    head = fh.read(12)
    if len(head) < 12:
        return None
    try:
        if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
            return _walk_chunks(fh, size, "<", _WavChunks(rf64=head[:4] == b"RF64"))
        if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            return _walk_chunks(fh, size, ">", _AiffChunks(aifc=head[8:12] == b"AIFC"))
    except struct.error:  # a malformed header: let libsndfile judge it
        return None
    return None


def _walk_chunks(fh, size: int, endian: str, reader) -> str | None:
    """Visit each chunk after the 12-byte form header until ``reader`` gives a verdict.

    ``reader.visit(fh, chunk_id, chunk_size, offset, size)`` returns a message (truncated),
    ``""`` (the audio data is complete: stop) or None (go on). A chunk before the audio data
    that runs past the end of the file is a truncation too.
    """
    pos = 12
    while pos + 8 <= size:
        fh.seek(pos)
        chunk_id, chunk_size = struct.unpack(endian + "4sI", fh.read(8))
        offset = pos + 8
        if chunk_id != reader.data_id and offset + chunk_size > size:
            name = chunk_id.decode("latin-1").strip() or "?"
            return f"the file ends inside its '{name}' chunk, before the audio data"
        verdict = reader.visit(fh, chunk_id, chunk_size, offset, size)
        if verdict is not None:
            return verdict or None
        pos = offset + chunk_size + (chunk_size & 1)  # chunks are padded to an even length
    if pos < size:
        return "the file ends inside a chunk header, before the audio data"
    return None


class _WavChunks:
    data_id = b"data"

    def __init__(self, *, rf64: bool):
        self.rf64 = rf64
        self.block_align = self.tag = self.ds64_data_size = None

    def visit(self, fh, chunk_id, chunk_size, offset, size):
        if chunk_id == b"ds64" and chunk_size >= 16:
            _riff_size, self.ds64_data_size = struct.unpack("<QQ", fh.read(16))
        elif chunk_id == b"fmt " and chunk_size >= 14:
            self.tag, _ch, _sr, _rate, self.block_align = struct.unpack("<HHIIH", fh.read(14))
        elif chunk_id == b"data":
            declared = chunk_size
            if self.rf64 and chunk_size == 0xFFFFFFFF and self.ds64_data_size:
                declared = self.ds64_data_size
            elif declared in _UNKNOWN_SIZES:
                return ""
            held = size - offset
            if held >= declared:
                return ""
            if self.block_align and self.tag in _WAVE_FRAME_TAGS:
                return (f"header declares {declared // self.block_align} frames, "
                        f"file holds {held // self.block_align}")
            return f"header declares {declared} bytes of audio data, file holds {held}"
        return None


class _AiffChunks:
    data_id = b"SSND"

    def __init__(self, *, aifc: bool):
        self.aifc = aifc
        self.frames = self.frame_bytes = None

    def visit(self, fh, chunk_id, chunk_size, offset, size):
        if chunk_id == b"COMM" and chunk_size >= 18:
            body = fh.read(min(chunk_size, 22))
            channels, self.frames, bits = struct.unpack(">hIh", body[:8])
            compression = body[18:22] if self.aifc and len(body) >= 22 else b"NONE"
            if compression in _AIFC_PLAIN and channels > 0 and bits > 0:
                self.frame_bytes = channels * ((bits + 7) // 8)
        elif chunk_id == b"SSND":
            if offset + 8 > size:
                return "the file ends inside its 'SSND' chunk header, before the audio data"
            data_offset, _block = struct.unpack(">II", fh.read(8))
            start = offset + 8 + data_offset
            held = max(size - start, 0)
            if self.frames and self.frame_bytes:  # COMM came first, as it usually does
                if held // self.frame_bytes < self.frames:
                    return (f"header declares {self.frames} frames, "
                            f"file holds {held // self.frame_bytes}")
                return ""
            declared = chunk_size - 8 - data_offset
            if chunk_size in _UNKNOWN_SIZES or held >= declared:
                return ""
            return f"header declares {declared} bytes of audio data, file holds {held}"
        return None
