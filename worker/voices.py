"""Voice prompts as CSM context: the stored recording, mono at 24 kHz, with its transcript."""
from __future__ import annotations

import io
from functools import lru_cache

import soundfile
import torch
import torchaudio.functional as AF
from sqlalchemy.orm import Session, sessionmaker

from jobs.errors import JobError
from jobs.voices import find_voice
from storage import ObjectStore

CACHED_VOICES = 64


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

    def _load_audio(self, key: str) -> torch.Tensor:
        with self.store.open(key) as stream:
            samples, rate = soundfile.read(io.BytesIO(stream.read()), dtype="float32", always_2d=True)
        mono = torch.from_numpy(samples).mean(dim=1)  # (samples,)
        if rate != self.sample_rate:
            mono = AF.resample(mono, rate, self.sample_rate)
        return mono
