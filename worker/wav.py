"""PCM16 WAV encoding and decoding with the standard library."""
from __future__ import annotations

import io
import wave

import torch


def encode_wav(audio: torch.Tensor, sample_rate: int) -> bytes:
    """audio: (samples,) float in [-1, 1] -> a mono 16-bit PCM WAV file."""
    pcm = (audio.detach().float().clamp(-1.0, 1.0) * 32767.0).round().to(torch.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.cpu().numpy().tobytes())
    return buffer.getvalue()


def decode_wav(data: bytes) -> tuple[torch.Tensor, int]:
    """A mono PCM16 WAV written by encode_wav -> ((samples,) float32, sample rate)."""
    with wave.open(io.BytesIO(data)) as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError("expected a mono 16-bit PCM WAV")
        pcm = torch.frombuffer(bytearray(wav.readframes(wav.getnframes())), dtype=torch.int16)
        return pcm.float() / 32767.0, wav.getframerate()
