"""Voice prompts as CSM context: the stored recording, mono at 24 kHz, with its transcript."""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from sqlalchemy.orm import Session, sessionmaker

from jobs.errors import JobError
from jobs.recordings import UnreadableRecording, read_recording
from jobs.voices import find_voice
from storage import ObjectStore

CACHED_VOICES = 64
# torchaudio's resampler builds a filter of about (rate / g) x (target / g) taps, g being the
# rates' greatest common divisor: 96001 Hz to 24 kHz would take 9 GB. Past this ratio term the
# audio is first brought to a whole number of kHz by linear interpolation.
MAX_RATIO_TERM = 1_000
FRIENDLY_HZ = 1_000


class VoiceError(Exception):
    """A voice prompt that this job cannot use; `code` says why."""

    def __init__(self, code: JobError, message: str):
        super().__init__(message)
        self.code = code


class VoiceLibrary:
    """Loads a key's voices from the store, decoded and resampled once per worker process."""

    def __init__(self, sessions: sessionmaker[Session], store: ObjectStore, sample_rate: int):
        self.sessions = sessions
        self.store = store
        self.sample_rate = sample_rate
        self._audio = lru_cache(maxsize=CACHED_VOICES)(self._load_audio)

    def prompt(self, api_key_id: int, name: str) -> tuple[str, torch.Tensor]:
        """(transcript, (samples,) float32 at the model's rate). Raises VoiceError, or a storage
        error when the store cannot be reached."""
        with self.sessions() as session:
            voice = find_voice(session, api_key_id, name)
            if voice is None:
                raise VoiceError(JobError.VOICE_MISSING, f"voice {name!r} no longer exists")
            transcript, key = voice.transcript, voice.audio_key
        try:
            return transcript, self._audio(key)
        except FileNotFoundError:
            raise VoiceError(JobError.VOICE_MISSING, f"voice {name!r} no longer exists") from None
        except UnreadableRecording as exc:
            raise VoiceError(JobError.VOICE_UNREADABLE, f"voice {name!r}: the recording {exc}") from None

    def _load_audio(self, key: str) -> torch.Tensor:
        with self.store.open(key) as stream:
            recording = read_recording(stream.read())
        return resample(torch.from_numpy(recording.samples), recording.sample_rate, self.sample_rate)


def resample(audio: torch.Tensor, rate: int, target: int) -> torch.Tensor:
    """(samples,) at `rate` -> (samples,) at `target`, with a filter of bounded size."""
    if rate == target:
        return audio
    if rate // math.gcd(rate, target) > MAX_RATIO_TERM:
        # Nudging 96001 Hz to 96000 Hz by interpolation costs almost nothing: the error is
        # at the top of the band, which the low-pass to 24 kHz removes.
        friendly = max(FRIENDLY_HZ, round(rate / FRIENDLY_HZ) * FRIENDLY_HZ)
        length = round(audio.numel() * friendly / rate)
        audio = F.interpolate(audio[None, None], size=length, mode="linear", align_corners=False)[0, 0]
        rate = friendly
    return AF.resample(audio, rate, target)
