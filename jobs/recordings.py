"""Voice recordings: decoded whole (the API at upload, the worker at first use), with one set of
rules, so that a recording the API accepted is one every worker can use.

soundfile and numpy only: the API process carries no torch.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile

FORMATS = {"WAV": "wav", "FLAC": "flac"}  # libsndfile's name -> the stored file's extension
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 2
MIN_MS = 500
MAX_MS = 30_000  # about 375 of CSM's 2048 context rows
BLOCK_FRAMES = 65_536


class UnreadableRecording(ValueError):
    """Why a recording cannot be a voice prompt, in words for the uploader."""


@dataclass(frozen=True)
class Recording:
    samples: np.ndarray  # (frames,) float32 mono
    sample_rate: int
    extension: str

    @property
    def duration_ms(self) -> int:
        return round(len(self.samples) * 1000 / self.sample_rate)


def read_recording(data: bytes) -> Recording:
    """Decodes every frame of a WAV or FLAC file, mixed to mono; raises UnreadableRecording."""
    try:
        audio = soundfile.SoundFile(io.BytesIO(data))
    except (RuntimeError, soundfile.LibsndfileError):
        raise UnreadableRecording("must be a WAV or FLAC recording") from None
    with audio:
        if audio.format not in FORMATS:
            raise UnreadableRecording("must be a WAV or FLAC recording")
        if not MIN_SAMPLE_RATE <= audio.samplerate <= MAX_SAMPLE_RATE:
            raise UnreadableRecording(
                f"sample rate must be {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz (got {audio.samplerate} Hz)"
            )
        if audio.channels > MAX_CHANNELS:
            raise UnreadableRecording(f"must be mono or stereo (got {audio.channels} channels)")
        # Decoding stops past the longest allowed length, whatever the header says.
        limit = MAX_MS * audio.samplerate // 1000 + BLOCK_FRAMES
        blocks, frames = [], 0
        try:
            for block in audio.blocks(BLOCK_FRAMES, dtype="float32", always_2d=True):
                blocks.append(block.mean(axis=1))
                frames += len(block)
                if frames > limit:
                    break
        except (RuntimeError, soundfile.LibsndfileError) as exc:
            reason = getattr(exc, "error_string", str(exc)).removeprefix("Error : ").rstrip(".")
            raise UnreadableRecording(f"must decode completely ({reason} after {frames} frames)") from None
        recording = Recording(np.concatenate(blocks) if blocks else np.zeros(0, np.float32), audio.samplerate,
                              FORMATS[audio.format])
    if not MIN_MS <= recording.duration_ms <= MAX_MS:
        got = f"more than {MAX_MS / 1000:g} s" if frames > limit else f"{recording.duration_ms / 1000:g} s"
        raise UnreadableRecording(f"must last {MIN_MS / 1000:g} to {MAX_MS / 1000:g} s (got {got})")
    if not np.isfinite(recording.samples).all():
        raise UnreadableRecording("has samples that are not finite numbers")
    return recording
