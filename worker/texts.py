"""The text path: single-text jobs claimed together render in one GPU batch; each is then
stored and recorded on its own, so that a failure tied to one job never touches the others."""
from __future__ import annotations

import logging
import time
import uuid

from celery.exceptions import SoftTimeLimitExceeded

from jobs import repository
from jobs.errors import JobError
from jobs.repository import Claim, LineResult
from jobs.resource import audio_key
from jobs.status import JobStatus, LineStatus
from worker.lines import Synthesis, synthesize
from worker.runtime import Runtime
from worker.steps import (
    DATABASE_ERRORS,
    STORAGE_ERRORS,
    Outcome,
    database_failed,
    discard,
    fail,
    generation_request,
    give_back,
    storage_failed,
    store_audio,
    voice_failed,
    voice_prompts,
)
from worker.voices import VoiceError

log = logging.getLogger(__name__)


def render_texts(claims: list[Claim], runtime: Runtime) -> list[Outcome]:
    """One batched pass for single-text jobs; one Outcome per claim, in order."""
    outcomes: dict[uuid.UUID, Outcome] = {}
    pending = []  # (claim, its GenerationRequest)
    for claim in claims:
        try:
            context = [segment for _, segment in voice_prompts(runtime, claim, claim.lines)]
        except (VoiceError, *STORAGE_ERRORS) as exc:
            outcomes[claim.job_id] = _guarded(runtime, claim, lambda: voice_failed(runtime, claim, exc))
            continue
        except DATABASE_ERRORS as exc:
            outcomes[claim.job_id] = database_failed(runtime, claim, exc)
            continue
        pending.append((claim, generation_request(claim, claim.lines[0], context)))
    started = time.perf_counter()
    try:
        syntheses = synthesize(runtime.generator, [request for _, request in pending])
    except SoftTimeLimitExceeded as exc:
        for claim, _ in pending:
            outcomes[claim.job_id] = _guarded(
                runtime, claim,
                lambda: give_back(runtime, claim, JobError.TIMEOUT, "rendering took longer than the time limit", cause=exc),
            )
    else:
        render_s = time.perf_counter() - started
        for (claim, _), synthesis in zip(pending, syntheses):
            outcomes[claim.job_id] = _guarded(runtime, claim, lambda: _finish_text(runtime, claim, synthesis, render_s))
    return [outcomes[claim.job_id] for claim in claims]


def _guarded(runtime: Runtime, claim: Claim, step) -> Outcome:
    """Runs one job's step; a database error gives that job alone back."""
    try:
        return step()
    except DATABASE_ERRORS as exc:
        return database_failed(runtime, claim, exc)


def _finish_text(runtime: Runtime, claim: Claim, synthesis: Synthesis, render_s: float) -> Outcome:
    if synthesis.code == JobError.ENGINE_ERROR:
        return give_back(runtime, claim, synthesis.code, synthesis.error)
    if synthesis.audio is None:
        with runtime.sessions.begin() as session:
            repository.record_line(
                session, claim, 0, LineResult(LineStatus.FAILED, synthesis.attempts, error=synthesis.error)
            )
        return fail(runtime, claim, synthesis.code, synthesis.error)
    try:
        result = store_audio(runtime, audio_key(claim.job_id, claim.token, claim.format), synthesis.audio, claim.format)
    except STORAGE_ERRORS as exc:
        return storage_failed(runtime, claim, exc)
    line = LineResult(LineStatus.SUCCEEDED, synthesis.attempts, result.key, result.duration_ms, result.sha256)
    with runtime.sessions.begin() as session:
        completed = repository.record_line(session, claim, 0, line) is not None and repository.complete_job(
            session, claim, result
        )
    if not completed:
        discard(runtime, result.key)
        return Outcome.lost(claim)
    log.info(
        "event=job_succeeded job_id=%s duration_ms=%d render_s=%.2f rtf=%.3f",
        claim.job_id, result.duration_ms, render_s, render_s * 1000 / max(result.duration_ms, 1),
    )
    return Outcome.finished(claim, JobStatus.SUCCEEDED)
