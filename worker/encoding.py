"""Encode rendered audio in an output format with soundfile's libsndfile (no ffmpeg).

Encoding is deterministic: the same samples give the same bytes in every format, so a
re-rendered job rewrites its object unchanged (libsndfile picks a random Ogg stream serial
number; it is replaced by a fixed one).
"""
from __future__ import annotations

import io
import struct

import numpy as np
import soundfile

from jobs.formats import FLAC, MP3, OPUS, PCM, WAV, AudioFormat

# (libsndfile container, subtype) per format; PCM is written without soundfile.
_SOUNDFILE = {
    WAV.name: ("WAV", "PCM_16"),
    FLAC.name: ("FLAC", "PCM_16"),
    MP3.name: ("MP3", "MPEG_LAYER_III"),
    OPUS.name: ("OGG", "OPUS"),
}
OGG_SERIAL = 0x43534D31  # "CSM1"


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """(samples,) float in [-1, 1] -> int16, clipped (libsndfile would wrap values past 1)."""
    return np.round(np.clip(samples.astype(np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)


def encode(samples: np.ndarray, sample_rate: int, audio_format: AudioFormat) -> bytes:
    """(samples,) float mono -> the file's bytes in `audio_format`."""
    pcm = to_pcm16(samples)
    if audio_format == PCM:
        return pcm.astype("<i2").tobytes()
    container, subtype = _SOUNDFILE[audio_format.name]
    buffer = io.BytesIO()
    soundfile.write(buffer, pcm, sample_rate, format=container, subtype=subtype)
    data = buffer.getvalue()
    return _fixed_ogg_serial(data) if container == "OGG" else data


def _fixed_ogg_serial(data: bytes) -> bytes:
    """The same Ogg stream with OGG_SERIAL as its serial number, each page's CRC redone."""
    out = bytearray(data)
    offset = 0
    while offset < len(out):
        if out[offset:offset + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {offset}")
        segments = out[offset + 26]
        length = 27 + segments + sum(out[offset + 27:offset + 27 + segments])
        struct.pack_into("<I", out, offset + 14, OGG_SERIAL)
        struct.pack_into("<I", out, offset + 22, 0)
        struct.pack_into("<I", out, offset + 22, _ogg_crc(out[offset:offset + length]))
        offset += length
    return bytes(out)


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        register = byte << 24
        for _ in range(8):
            register = (register << 1) ^ 0x04C11DB7 if register & 0x80000000 else register << 1
        table.append(register & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def _ogg_crc(page: bytes) -> int:
    """Ogg's page checksum: CRC-32, polynomial 0x04C11DB7, not reflected, initial value 0."""
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc
