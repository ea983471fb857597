"""Steps that the text path and the script path share: what became of a job (Outcome), the
request for a line, voice prompts, storing audio, failing a job or giving it back to the queue."""
from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.exc import InterfaceError, OperationalError

from jobs import repository
from jobs.errors import JobError
from jobs.formats import WAV, audio_format
from jobs.repository import AudioResult, Claim, LinePlan
from jobs.status import JobStatus
from worker.runtime import Runtime
from worker.encoding import encode
from worker.voices import VoiceError

log = logging.getLogger(__name__)

STORAGE_ERRORS = (BotoCoreError, ClientError, OSError)
# A connection lost or refused, a lock not granted: the database may answer the next attempt.
DATABASE_ERRORS = (OperationalError, InterfaceError)
# Each retry of a job waits longer: 5 s, 20 s, 80 s ... at most 300 s.
BACKOFF_FIRST_S = 5
BACKOFF_FACTOR = 4
BACKOFF_MAX_S = 300


class Disposition(StrEnum):
    FINISHED = "finished"  # the job reached a terminal status
    RELEASED = "released"  # given back to the queue, due again after a backoff
    SKIPPED = "skipped"  # not claimable now (finished, held, not yet due), or the claim was lost


@dataclass(frozen=True)
class Outcome:
    """What became of one job in this task."""

    job_id: uuid.UUID
    disposition: Disposition
    status: JobStatus | None = None  # FINISHED: the status it ended with
    wake_in_s: float | None = None  # a wake-up message for it is due after this long
    queue: str | None = None  # where that wake-up goes

    @classmethod
    def finished(cls, claim: Claim, status: JobStatus) -> "Outcome":
        return cls(claim.job_id, Disposition.FINISHED, status)

    @classmethod
    def released(cls, claim: Claim, wake_in_s: float) -> "Outcome":
        return cls(claim.job_id, Disposition.RELEASED, wake_in_s=wake_in_s, queue=claim.queue)

    @classmethod
    def lost(cls, claim: Claim) -> "Outcome":
        log.warning("event=job_lost_claim job_id=%s", claim.job_id)
        return cls(claim.job_id, Disposition.SKIPPED)


def generation_request(claim: Claim, line: LinePlan, context):
    """The engine's request for a line of a claimed job, with its context segments."""
    from csm import GenerationRequest

    spec = line.request
    return GenerationRequest(
        text=spec.text, speaker=spec.speaker, context=context, max_audio_length_ms=spec.max_audio_length_ms,
        temperature=claim.temperature, topk=claim.topk, seed=spec.seed,
    )


def voice_prompts(runtime: Runtime, claim: Claim, lines: tuple[LinePlan, ...]):
    """(speaker, context segment) for each speaker of `lines` whose first line naming a voice
    names one, in order of first appearance. Raises VoiceError or a storage error."""
    from csm import Segment

    named: dict[int, str | None] = {}
    for line in lines:
        if named.get(line.request.speaker) is None:
            named[line.request.speaker] = line.request.voice
    prompts = []
    for speaker, name in named.items():
        if name:
            transcript, audio = runtime.voices.prompt(claim.api_key_id, name)
            prompts.append((speaker, Segment(speaker=speaker, text=transcript, audio=audio)))
    return prompts


def store_audio(runtime: Runtime, key: str, audio, format_name: str = WAV.name) -> AudioResult:
    """Encodes (samples,) audio in the named format and stores it; the result describes the
    stored file (every format decodes to exactly these samples)."""
    sample_rate = runtime.generator.sample_rate
    output = audio_format(format_name)
    data = encode(audio.detach().float().cpu().numpy(), sample_rate, output)
    runtime.store.put(key, data, output.media_type)
    return AudioResult(
        key=key,
        duration_ms=round(audio.shape[-1] * 1000 / sample_rate),
        sample_rate=sample_rate,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def discard(runtime: Runtime, *keys: str) -> None:
    """Removes objects that no row names (written under a claim that was lost meanwhile)."""
    for key in keys:
        try:
            runtime.store.delete(key)
        except STORAGE_ERRORS:
            log.warning("event=object_left key=%s", key, exc_info=True)


def fail(runtime: Runtime, claim: Claim, code: JobError, message: str) -> Outcome:
    with runtime.sessions.begin() as session:
        failed = repository.fail_job(session, claim, code, message)
    if not failed:
        return Outcome.lost(claim)
    log.warning("event=job_failed job_id=%s code=%s", claim.job_id, code)
    return Outcome.finished(claim, JobStatus.FAILED)


def voice_failed(runtime: Runtime, claim: Claim, exc: Exception) -> Outcome:
    """A voice prompt that could not be loaded: fails (or retries) this job alone."""
    if isinstance(exc, VoiceError):
        return fail(runtime, claim, exc.code, str(exc))
    return storage_failed(runtime, claim, exc)


def storage_failed(runtime: Runtime, claim: Claim, exc: BaseException, *, refund: bool = False) -> Outcome:
    # The worker's log names the store's own error (e.g. AccessDenied); the job says only this.
    message = "the object store could not be reached or refused the request"
    return give_back(runtime, claim, JobError.STORAGE_UNAVAILABLE, message, cause=exc, refund=refund)


def give_back(
    runtime: Runtime, claim: Claim, code: JobError, message: str, *, cause: BaseException | None = None,
    refund: bool = False,
) -> Outcome:
    """Gives a job back to the queue after a transient error, due again after a backoff that
    grows with its attempts, or fails it after its last attempt. `refund`: this attempt made
    progress (a script that rendered lines), so it does not count and is due at once."""
    log.warning("event=job_retry job_id=%s code=%s error=%r", claim.job_id, code, cause or message)
    if not refund and claim.attempt >= runtime.settings.max_attempts:
        return fail(runtime, claim, code, message)
    delay = 0 if refund else min(BACKOFF_FIRST_S * BACKOFF_FACTOR ** (claim.attempt - 1), BACKOFF_MAX_S)
    with runtime.sessions.begin() as session:
        released = repository.release_job(session, claim, code, f"retrying: {message}", delay_s=delay, refund=refund)
    if not released:
        return Outcome.lost(claim)
    return Outcome.released(claim, delay)


def database_failed(runtime: Runtime, claim: Claim, exc: BaseException, *, refund: bool = False) -> Outcome:
    """A database error mid-job: gives the job back, or, with the database still away, leaves it
    to its lease (the sweeper re-queues it when the lease runs out)."""
    try:
        return give_back(
            runtime, claim, JobError.DATABASE_UNAVAILABLE, "the database could not be reached", cause=exc,
            refund=refund,
        )
    except DATABASE_ERRORS:
        log.warning("event=job_left_to_lease job_id=%s", claim.job_id, exc_info=True)
        return Outcome(claim.job_id, Disposition.SKIPPED)
