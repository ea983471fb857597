"""Render a job: claim it (with other queued texts to fill a GPU batch), synthesise, upload,
record the outcome.

No database connection is held while the model runs. Output keys are deterministic and seeds
are fixed on the rows, so a redelivered or retried job writes the same objects.
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
from jobs.repository import AudioResult, Claim, LineResult
from jobs.resource import audio_key
from jobs.status import LineStatus
from worker.lease import leases_renewed
from worker.lines import Synthesis, synthesize
from worker.runtime import Runtime
from worker.wav import encode_wav

log = logging.getLogger(__name__)

STORAGE_ERRORS = (BotoCoreError, ClientError, OSError)


@dataclass(frozen=True)
class Outcome:
    status: str  # the job's final status, or "skipped" / "retrying"
    retry_in_s: float | None = None  # for "retrying": when to try again


def render_job(job_id: uuid.UUID, runtime: Runtime) -> Outcome:
    """Renders `job_id`, filling the GPU batch with other queued texts of its queue.

    A message is a wake-up call: when its own job was already taken (as another task's
    rider), it still renders what is queued, so a batch needs one message per GPU batch.
    """
    settings = runtime.settings
    claim_args = dict(lease_s=settings.lease_s, max_attempts=settings.max_attempts)
    with runtime.sessions.begin() as session:
        claim = repository.claim_job(session, job_id, **claim_args)
        riders = []
        if claim is None or not claim.is_script:
            queue = claim.queue if claim else repository.job_queue(session, job_id)
            room = runtime.generator.max_batch_size - (claim is not None)
            others = repository.queued_text_jobs(session, queue, room, exclude=job_id) if queue else []
            riders = [c for c in (repository.claim_job(session, i, **claim_args) for i in others) if c]
    claims = [c for c in (claim, *riders) if c is not None]
    if not claims:
        log.info("event=job_skipped job_id=%s reason=not_claimable", job_id)
        return Outcome("skipped")
    for held in claims:
        log.info("event=job_running job_id=%s attempt=%d batch_of=%d", held.job_id, held.attempt, len(claims))
    with leases_renewed(runtime, claims):
        if claims[0].is_script:
            from worker.script import render_script  # script.py builds on this module

            return render_script(claims[0], runtime)
        return render_texts(claims, runtime)[0]


def render_texts(claims: list[Claim], runtime: Runtime) -> list[Outcome]:
    """One batched pass for single-text jobs; one Outcome per claim."""
    from csm import GenerationRequest

    outcomes: dict[uuid.UUID, Outcome] = {}
    pending: list[tuple[Claim, GenerationRequest]] = []
    for claim in claims:
        line = claim.lines[0]
        try:
            context = [s for _, s in voice_prompts(runtime, claim, [line.speaker], {line.speaker: line.voice})]
        except LookupError as exc:
            outcomes[claim.job_id] = fail(runtime, claim, "voice_missing", str(exc))
            continue
        request = GenerationRequest(
            text=line.text, speaker=line.speaker, context=context,
            max_audio_length_ms=line.max_audio_length_ms, temperature=claim.temperature,
            topk=claim.topk, seed=line.seed,
        )
        pending.append((claim, request))
    started = time.perf_counter()
    try:
        syntheses = synthesize(runtime.generator, [request for _, request in pending])
    except SoftTimeLimitExceeded:
        for claim, _ in pending:
            outcomes[claim.job_id] = fail(runtime, claim, "timeout", "rendering took longer than the time limit")
    except Exception:
        for claim, _ in pending:
            fail(runtime, claim, "internal_error", "the worker failed to render this job")
        raise
    else:
        render_s = time.perf_counter() - started
        for (claim, _), synthesis in zip(pending, syntheses):
            outcomes[claim.job_id] = _finish_text(runtime, claim, synthesis, render_s)
    return [outcomes[claim.job_id] for claim in claims]


def _finish_text(runtime: Runtime, claim: Claim, synthesis: Synthesis, render_s: float) -> Outcome:
    if synthesis.audio is None:
        with runtime.sessions.begin() as session:
            repository.record_line(
                session, claim, 0, LineResult(LineStatus.FAILED, synthesis.attempts, error=synthesis.error)
            )
        return fail(runtime, claim, synthesis.code, synthesis.error)
    try:
        result = store_wav(runtime, audio_key(claim.job_id), synthesis.audio)
    except STORAGE_ERRORS as exc:
        return retry_or_fail(runtime, claim, exc)
    line = LineResult(LineStatus.SUCCEEDED, synthesis.attempts, result.key, result.duration_ms, result.sha256)
    with runtime.sessions.begin() as session:
        completed = repository.record_line(session, claim, 0, line) is not None and repository.complete_job(
            session, claim, result
        )
    if not completed:
        log.warning("event=job_lost_claim job_id=%s", claim.job_id)
        return Outcome("skipped")
    log.info(
        "event=job_succeeded job_id=%s duration_ms=%d render_s=%.2f rtf=%.3f",
        claim.job_id, result.duration_ms, render_s, render_s * 1000 / max(result.duration_ms, 1),
    )
    return Outcome("succeeded")


def voice_prompts(runtime: Runtime, claim: Claim, speakers: list[int], voices: dict[int, str | None]):
    """(speaker, context segment) for each of `speakers` that has a voice, in that order."""
    from csm import Segment

    prompts = []
    for speaker in speakers:
        name = voices.get(speaker)
        if name:
            transcript, audio = runtime.voices.prompt(claim.api_key_id, name)
            prompts.append((speaker, Segment(speaker=speaker, text=transcript, audio=audio)))
    return prompts


def store_wav(runtime: Runtime, key: str, audio) -> AudioResult:
    sample_rate = runtime.generator.sample_rate
    wav = encode_wav(audio, sample_rate)
    runtime.store.put(key, wav, "audio/wav")
    return AudioResult(
        key=key,
        duration_ms=round(audio.shape[-1] * 1000 / sample_rate),
        sample_rate=sample_rate,
        bytes=len(wav),
        sha256=hashlib.sha256(wav).hexdigest(),
    )


def fail(runtime: Runtime, claim: Claim, code: str, message: str) -> Outcome:
    with runtime.sessions.begin() as session:
        repository.fail_job(session, claim, code, message)
    log.warning("event=job_failed job_id=%s code=%s", claim.job_id, code)
    return Outcome("failed")


def retry_or_fail(runtime: Runtime, claim: Claim, exc: Exception) -> Outcome:
    """Gives the job back to the queue to try again later, or fails it after the last attempt."""
    log.warning("event=storage_error job_id=%s error=%r", claim.job_id, exc)
    if claim.attempt >= runtime.settings.max_attempts:
        return fail(runtime, claim, "storage_unavailable", "the object store could not be reached")
    with runtime.sessions.begin() as session:
        repository.release_job(session, claim, "storage_unavailable", "retrying: object store error")
    return Outcome("retrying", retry_in_s=min(5 * 4 ** (claim.attempt - 1), 300))
