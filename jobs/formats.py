"""Output audio formats: their names, file extensions and media types.

Every output is 24 kHz mono. Workers encode (worker/encoding.py); the API only names and
serves the stored files, so this module needs neither numpy nor soundfile.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True)
class AudioFormat:
    name: str
    extension: str  # of the stored object and of download file names, without the dot
    media_type: str  # the Content-Type of downloads and of synchronous responses


WAV = AudioFormat("wav", "wav", "audio/wav")  # PCM16
FLAC = AudioFormat("flac", "flac", "audio/flac")  # PCM16, lossless
MP3 = AudioFormat("mp3", "mp3", "audio/mpeg")  # MPEG-2 Layer III (24 kHz), VBR
OPUS = AudioFormat("opus", "opus", "audio/ogg")  # Opus in an Ogg container
PCM = AudioFormat("pcm", "pcm", "audio/pcm")  # raw signed 16-bit little-endian, no header

FORMATS = {audio_format.name: audio_format for audio_format in (WAV, FLAC, MP3, OPUS, PCM)}
_BY_EXTENSION = {audio_format.extension: audio_format for audio_format in FORMATS.values()}
EXTENSIONS = frozenset(_BY_EXTENSION)
DEFAULT_FORMAT = WAV.name
FORMAT_NAMES = ", ".join(FORMATS)


def audio_format(name: str) -> AudioFormat:
    """The format called `name` (one of FORMATS; a stored job's format always is)."""
    return FORMATS[name]


def with_extension(stem: str, name: str) -> str:
    return f"{stem}.{FORMATS[name].extension}"


def stored_media_type(key: str) -> str | None:
    """The media type a worker stores an output under `key` with, known by its extension (None
    for a key no output format ends with)."""
    stored_as = _BY_EXTENSION.get(PurePosixPath(key).suffix.removeprefix("."))
    return stored_as.media_type if stored_as else None
