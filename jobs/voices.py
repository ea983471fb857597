"""Voice prompts: a key's named recordings with their transcripts."""
from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jobs.models import Voice


def find_voice(session: Session, api_key_id: int, name: str) -> Voice | None:
    return session.scalar(select(Voice).where(Voice.api_key_id == api_key_id, Voice.name == name))


def list_voices(session: Session, api_key_id: int) -> list[Voice]:
    return list(session.scalars(select(Voice).where(Voice.api_key_id == api_key_id).order_by(Voice.name)))


def add_voice(
    session: Session, api_key_id: int, name: str, transcript: str, audio_key: str, duration_ms: int, voice_id: uuid.UUID
) -> Voice:
    voice = Voice(
        id=voice_id, api_key_id=api_key_id, name=name, transcript=transcript,
        audio_key=audio_key, duration_ms=duration_ms,
    )
    session.add(voice)
    session.flush()
    return voice


def delete_voice(session: Session, voice: Voice) -> None:
    session.execute(delete(Voice).where(Voice.id == voice.id))


def voice_key(voice_id: uuid.UUID, extension: str) -> str:
    return f"voices/{voice_id}/prompt.{extension}"
