"""Decoding the PCM16 WAVs workers write (worker/encoding.py), with the standard library."""
from __future__ import annotations

import io
import wave

import torch


def decode_wav(data: bytes) -> tuple[torch.Tensor, int]:
    """A mono PCM16 WAV as worker.encoding writes it -> ((samples,) float32, sample rate)."""
    with wave.open(io.BytesIO(data)) as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError("expected a mono 16-bit PCM WAV")
        pcm = torch.frombuffer(bytearray(wav.readframes(wav.getnframes())), dtype=torch.int16)
        return pcm.float() / 32767.0, wav.getframerate()
