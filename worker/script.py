"""Render a script: lines in order, each with the conversation so far as CSM context.

Every finished line is stored and recorded before the next starts, so a worker that dies
mid-script is resumed from the first unfinished line, reusing the stored ones. Between lines
the owner's cancel request is honoured.
"""
from __future__ import annotations

import json
import logging

import torch
from celery.exceptions import SoftTimeLimitExceeded

from jobs import repository
from jobs.errors import JobError
from jobs.repository import Claim, LineResult
from jobs.resource import audio_key, line_key, manifest_key
from jobs.status import JobStatus, LineStatus
from worker.context import fit_context
from worker.lines import synthesize
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
from worker.wav import decode_wav

log = logging.getLogger(__name__)


class EngineFailed(Exception):
    """The engine raised while rendering a line (see worker.lines)."""


def render_script(claim: Claim, runtime: Runtime) -> Outcome:
    """Renders the pending lines in order, recording each; then stitches and finishes.

    An error that a later attempt may not meet (storage, database, engine, time limit) gives the
    job back; an attempt that rendered lines does not count against MAX_ATTEMPTS, so a long
    script continues in a new task after the time limit and resumes after a passing outage.
    """
    try:
        voices = voice_prompts(runtime, claim, claim.lines)
    except (VoiceError, *STORAGE_ERRORS) as exc:
        return voice_failed(runtime, claim, exc)
    except DATABASE_ERRORS as exc:
        return database_failed(runtime, claim, exc)
    results = {line.index: line.result for line in claim.lines if line.result is not None}
    done_before = len(results)
    try:
        audio = {
            index: _load(runtime, result.audio_key)
            for index, result in results.items()
            if result.status == LineStatus.SUCCEEDED
        }
        return _render_lines(claim, runtime, voices, audio, results)
    except STORAGE_ERRORS as exc:
        return storage_failed(runtime, claim, exc, refund=len(results) > done_before)
    except DATABASE_ERRORS as exc:
        return database_failed(runtime, claim, exc, refund=len(results) > done_before)
    except EngineFailed as exc:
        return give_back(runtime, claim, JobError.ENGINE_ERROR, str(exc), refund=len(results) > done_before)
    except SoftTimeLimitExceeded as exc:
        message = "a line took longer than the task time limit"
        return give_back(runtime, claim, JobError.TIMEOUT, message, cause=exc, refund=len(results) > done_before)
    except Exception:
        fail(runtime, claim, JobError.INTERNAL_ERROR, "the worker failed to render this job")
        raise


def _render_lines(claim: Claim, runtime: Runtime, voices, audio: dict, results: dict) -> Outcome:
    """Renders the lines not in `results` yet, adding each there once recorded."""
    from csm import Segment

    generator = runtime.generator
    for line in claim.lines:
        if line.index in results:
            continue  # rendered by an earlier attempt
        spec = line.request
        history = [
            Segment(speaker=earlier.request.speaker, text=earlier.request.text, audio=audio[earlier.index])
            for earlier in claim.lines[: line.index]
            if earlier.index in audio
        ]
        budget = generator.max_seq_len - generator.text_rows(spec.text, spec.speaker) - generator.frames_for(
            spec.max_audio_length_ms
        )
        context = fit_context(voices, history, speaker=spec.speaker, budget=budget, rows=generator.segment_rows)
        synthesis = synthesize(generator, [generation_request(claim, line, context)])[0]
        if synthesis.code == JobError.ENGINE_ERROR:
            raise EngineFailed(synthesis.error)
        if synthesis.audio is None:
            result = LineResult(LineStatus.FAILED, synthesis.attempts, error=synthesis.error)
        else:
            stored = store_audio(runtime, line_key(claim.job_id, claim.token, line.index), synthesis.audio)
            audio[line.index] = synthesis.audio
            result = LineResult(LineStatus.SUCCEEDED, synthesis.attempts, stored.key, stored.duration_ms, stored.sha256)
        with runtime.sessions.begin() as session:
            cancel = repository.record_line(session, claim, line.index, result)
        if cancel is None:
            discard(runtime, *filter(None, [result.audio_key]))
            return Outcome.lost(claim)
        results[line.index] = result
        log.info("event=line_done job_id=%s line=%d status=%s", claim.job_id, line.index, result.status)
        if cancel and len(results) < len(claim.lines):  # after the last line, the script is done
            with runtime.sessions.begin() as session:
                repository.complete_job(session, claim, None, status=JobStatus.CANCELED)
            log.info("event=job_canceled job_id=%s after_line=%d", claim.job_id, line.index)
            return Outcome.finished(claim, JobStatus.CANCELED)
    return _finish(runtime, claim, results, audio)


def _finish(runtime: Runtime, claim: Claim, results: dict[int, LineResult], audio: dict) -> Outcome:
    """Stitches the master, writes the manifest and records the job's outcome."""
    failed = [index for index, result in sorted(results.items()) if result.status == LineStatus.FAILED]
    if len(failed) == len(claim.lines):
        return fail(runtime, claim, JobError.NO_AUDIO, "no line of the script produced audio")
    sample_rate = runtime.generator.sample_rate
    master, entries = stitch(claim.lines, results, audio, sample_rate)
    manifest = {"job_id": str(claim.job_id), "sample_rate": sample_rate, "lines": entries}
    master_result = store_audio(runtime, audio_key(claim.job_id, claim.token, claim.format), master, claim.format)
    manifest["duration_ms"] = master_result.duration_ms
    manifest_at = manifest_key(claim.job_id, claim.token)
    runtime.store.put(manifest_at, json.dumps(manifest, indent=2).encode(), "application/json")
    status, error = JobStatus.SUCCEEDED, None
    if failed:
        status = JobStatus.PARTIALLY_SUCCEEDED
        error = (JobError.LINES_FAILED, f"lines {', '.join(map(str, failed))} produced no audio; see the manifest")
    with runtime.sessions.begin() as session:
        done = repository.complete_job(
            session, claim, master_result, status=status, manifest_key=manifest_at, error=error
        )
    if not done:
        discard(runtime, master_result.key, manifest_at)
        return Outcome.lost(claim)
    log.info("event=job_%s job_id=%s lines=%d failed=%d", status.value, claim.job_id, len(claim.lines), len(failed))
    return Outcome.finished(claim, status)


def stitch(lines, results: dict[int, LineResult], audio: dict, sample_rate: int):
    """The master: each rendered line then its pause (none after the last) -> (audio, manifest entries)."""
    pieces, entries, cursor = [], [], 0
    rendered = [line.index for line in lines if line.index in audio]
    for line in lines:
        result = results[line.index]
        spec = line.request
        entry = {
            "index": line.index, "speaker": spec.speaker, "voice": spec.voice, "text": spec.text,
            "status": result.status.value,
            "attempts": result.attempts, "start_ms": None, "end_ms": None,
            "duration_ms": result.duration_ms, "key": result.audio_key, "sha256": result.audio_sha256,
            "seed": spec.seed, "error": result.error,
        }
        if line.index in audio:
            samples = audio[line.index]
            entry["start_ms"] = round(cursor * 1000 / sample_rate)
            cursor += samples.numel()
            entry["end_ms"] = round(cursor * 1000 / sample_rate)
            pieces.append(samples)
            if line.index != rendered[-1]:
                pause = round(spec.pause_ms * sample_rate / 1000)
                pieces.append(torch.zeros(pause))
                cursor += pause
        entries.append(entry)
    return torch.cat(pieces), entries


def _load(runtime: Runtime, key: str) -> torch.Tensor:
    with runtime.store.open(key) as stream:
        samples, _rate = decode_wav(stream.read())
    return samples
