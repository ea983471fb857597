"""Render one job: claim it, synthesise, upload, record the outcome.

No database connection is held while the model runs. The output key is deterministic and
the seed is fixed on the row, so a redelivered or retried job writes the same object.
"""
from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError
from celery.exceptions import SoftTimeLimitExceeded

from jobs import repository
from jobs.repository import AudioResult, Claim
from jobs.resource import audio_key
from worker.runtime import Runtime
from worker.wav import encode_wav

log = logging.getLogger(__name__)

STORAGE_ERRORS = (BotoCoreError, ClientError, OSError)


class RetryLater(Exception):
    """A transient failure: the job went back to the queue; try again after `countdown`."""

    def __init__(self, countdown: float):
        super().__init__(f"retry in {countdown:.0f}s")
        self.countdown = countdown


@dataclass(frozen=True)
class Outcome:
    status: str  # "succeeded", "failed" or "skipped"


def render_job(job_id: uuid.UUID, runtime: Runtime) -> Outcome:
    settings = runtime.settings
    with runtime.sessions.begin() as session:
        claim = repository.claim_job(
            session, job_id, lease_s=settings.lease_s, max_attempts=settings.max_attempts
        )
    if claim is None:
        log.info("event=job_skipped job_id=%s reason=not_claimable", job_id)
        return Outcome("skipped")
    log.info("event=job_running job_id=%s attempt=%d", job_id, claim.attempt)

    try:
        started = time.perf_counter()
        audio = runtime.generator.generate(
            claim.text,
            claim.speaker,
            context=[],
            max_audio_length_ms=claim.max_audio_length_ms,
            temperature=claim.temperature,
            topk=claim.topk,
            seed=claim.seed,
        )
        render_s = time.perf_counter() - started
        result = _store_audio(runtime, claim, audio)
    except SoftTimeLimitExceeded:
        return _fail(runtime, claim, "timeout", "rendering took longer than the time limit")
    except ValueError as exc:  # the engine rejects input it cannot render (e.g. too long)
        return _fail(runtime, claim, "invalid_input", str(exc))
    except STORAGE_ERRORS as exc:
        return _retry_or_fail(runtime, claim, exc)
    except Exception:
        _fail(runtime, claim, "internal_error", "the worker failed to render this job")
        raise

    with runtime.sessions.begin() as session:
        completed = repository.complete_job(session, claim, result)
    if not completed:
        log.warning("event=job_lost_claim job_id=%s", job_id)
        return Outcome("skipped")
    log.info(
        "event=job_succeeded job_id=%s duration_ms=%d render_s=%.2f rtf=%.3f",
        job_id, result.duration_ms, render_s, render_s * 1000 / max(result.duration_ms, 1),
    )
    return Outcome("succeeded")


def _store_audio(runtime: Runtime, claim: Claim, audio) -> AudioResult:
    sample_rate = runtime.generator.sample_rate
    wav = encode_wav(audio, sample_rate)
    key = audio_key(claim.job_id)
    runtime.store.put(key, wav, "audio/wav")
    return AudioResult(
        key=key,
        duration_ms=round(audio.shape[-1] * 1000 / sample_rate),
        sample_rate=sample_rate,
        bytes=len(wav),
        sha256=hashlib.sha256(wav).hexdigest(),
    )


def _fail(runtime: Runtime, claim: Claim, code: str, message: str) -> Outcome:
    with runtime.sessions.begin() as session:
        repository.fail_job(session, claim, code, message)
    log.warning("event=job_failed job_id=%s code=%s", claim.job_id, code)
    return Outcome("failed")


def _retry_or_fail(runtime: Runtime, claim: Claim, exc: Exception) -> Outcome:
    """Raises RetryLater after giving the job back, or records the failure when out of attempts."""
    log.warning("event=storage_error job_id=%s error=%r", claim.job_id, exc)
    if claim.attempt >= runtime.settings.max_attempts:
        return _fail(runtime, claim, "storage_unavailable", "the object store could not be reached")
    with runtime.sessions.begin() as session:
        repository.release_job(session, claim, "storage_unavailable", "retrying: object store error")
    raise RetryLater(countdown=min(5 * 4 ** (claim.attempt - 1), 300))
