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
from jobs.repository import Claim, LinePlan, LineResult
from jobs.resource import audio_key, line_key, manifest_key
from jobs.status import JobStatus, LineStatus
from worker.context import fit_context
from worker.lines import synthesize
from worker.render import STORAGE_ERRORS, Outcome, fail, retry_or_fail, store_wav, voice_prompts
from worker.runtime import Runtime
from worker.wav import decode_wav

log = logging.getLogger(__name__)


def render_script(claim: Claim, runtime: Runtime) -> Outcome:
    speakers = list(dict.fromkeys(line.speaker for line in claim.lines))
    named = {}
    for line in claim.lines:
        if line.voice:
            named.setdefault(line.speaker, line.voice)
    try:
        voices = voice_prompts(runtime, claim, speakers, named)
        audio = {
            line.index: _load(runtime, line.audio_key)
            for line in claim.lines
            if line.status == LineStatus.SUCCEEDED.value
        }
    except LookupError as exc:
        return fail(runtime, claim, "voice_missing", str(exc))
    except STORAGE_ERRORS as exc:
        return retry_or_fail(runtime, claim, exc)

    results = {line.index: _as_result(line) for line in claim.lines if line.status != LineStatus.PENDING.value}
    try:
        return _render_lines(claim, runtime, voices, audio, results)
    except SoftTimeLimitExceeded:
        # A long script continues in a new task: its finished lines are kept, and an attempt
        # that rendered some of them does not count against MAX_ATTEMPTS.
        progressed = len(results) > sum(line.status != LineStatus.PENDING.value for line in claim.lines)
        if not progressed and claim.attempt >= runtime.settings.max_attempts:
            return fail(runtime, claim, "timeout", "a line took longer than the task time limit")
        with runtime.sessions.begin() as session:
            repository.release_job(
                session, claim, "time_limit", "continuing after the task time limit", refund=progressed
            )
        log.info("event=script_continues job_id=%s lines_done=%d", claim.job_id, len(results))
        return Outcome("retrying", retry_in_s=0)
    except Exception:
        fail(runtime, claim, "internal_error", "the worker failed to render this job")
        raise


def _render_lines(claim: Claim, runtime: Runtime, voices, audio: dict, results: dict) -> Outcome:
    """Renders the pending lines in order, recording each; then stitches and finishes."""
    from csm import GenerationRequest, Segment

    generator = runtime.generator
    for line in claim.lines:
        if line.index in results:
            continue  # rendered by an earlier attempt
        history = [
            Segment(speaker=earlier.speaker, text=earlier.text, audio=audio[earlier.index])
            for earlier in claim.lines[: line.index]
            if earlier.index in audio
        ]
        budget = generator.max_seq_len - generator.text_rows(line.text, line.speaker) - generator.frames_for(
            line.max_audio_length_ms
        )
        context = fit_context(voices, history, speaker=line.speaker, budget=budget, rows=generator.segment_rows)
        request = GenerationRequest(
            text=line.text, speaker=line.speaker, context=context,
            max_audio_length_ms=line.max_audio_length_ms, temperature=claim.temperature,
            topk=claim.topk, seed=line.seed,
        )
        synthesis = synthesize(generator, [request])[0]
        if synthesis.audio is None:
            result = LineResult(LineStatus.FAILED, synthesis.attempts, error=synthesis.error)
        else:
            try:
                stored = store_wav(runtime, line_key(claim.job_id, line.index), synthesis.audio)
            except STORAGE_ERRORS as exc:
                return retry_or_fail(runtime, claim, exc)
            audio[line.index] = synthesis.audio
            result = LineResult(LineStatus.SUCCEEDED, synthesis.attempts, stored.key, stored.duration_ms, stored.sha256)
        with runtime.sessions.begin() as session:
            cancel = repository.record_line(session, claim, line.index, result)
        if cancel is None:
            log.warning("event=job_lost_claim job_id=%s", claim.job_id)
            return Outcome("skipped")
        results[line.index] = result
        log.info("event=line_done job_id=%s line=%d status=%s", claim.job_id, line.index, result.status)
        if cancel:
            with runtime.sessions.begin() as session:
                repository.complete_job(session, claim, None, status=JobStatus.CANCELED)
            log.info("event=job_canceled job_id=%s after_line=%d", claim.job_id, line.index)
            return Outcome(JobStatus.CANCELED.value)
    return _finish(runtime, claim, results, audio)


def _finish(runtime: Runtime, claim: Claim, results: dict[int, LineResult], audio: dict) -> Outcome:
    """Stitches the master, writes the manifest and records the job's outcome."""
    failed = [index for index, result in sorted(results.items()) if result.status == LineStatus.FAILED]
    if len(failed) == len(claim.lines):
        return fail(runtime, claim, "no_audio", "no line of the script produced audio")
    sample_rate = runtime.generator.sample_rate
    master, entries = stitch(claim.lines, results, audio, sample_rate)
    manifest = {"job_id": str(claim.job_id), "sample_rate": sample_rate, "lines": entries}
    try:
        master_result = store_wav(runtime, audio_key(claim.job_id), master)
        manifest["duration_ms"] = master_result.duration_ms
        body = json.dumps(manifest, indent=2).encode()
        runtime.store.put(manifest_key(claim.job_id), body, "application/json")
    except STORAGE_ERRORS as exc:
        return retry_or_fail(runtime, claim, exc)
    status, error = JobStatus.SUCCEEDED, None
    if failed:
        status = JobStatus.PARTIALLY_SUCCEEDED
        error = ("lines_failed", f"lines {', '.join(map(str, failed))} produced no audio; see the manifest")
    with runtime.sessions.begin() as session:
        done = repository.complete_job(
            session, claim, master_result, status=status, manifest_key=manifest_key(claim.job_id), error=error
        )
    if not done:
        return Outcome("skipped")
    log.info("event=job_%s job_id=%s lines=%d failed=%d", status.value, claim.job_id, len(claim.lines), len(failed))
    return Outcome(status.value)


def stitch(lines, results: dict[int, LineResult], audio: dict, sample_rate: int):
    """The master: each rendered line then its pause (none after the last) -> (audio, manifest entries)."""
    pieces, entries, cursor = [], [], 0
    rendered = [line.index for line in lines if line.index in audio]
    for line in lines:
        result = results[line.index]
        entry = {
            "index": line.index, "speaker": line.speaker, "voice": line.voice, "text": line.text,
            "status": result.status.value,
            "attempts": result.attempts, "start_ms": None, "end_ms": None,
            "duration_ms": result.duration_ms, "key": result.audio_key, "sha256": result.audio_sha256,
            "seed": line.seed, "error": result.error,
        }
        if line.index in audio:
            samples = audio[line.index]
            entry["start_ms"] = round(cursor * 1000 / sample_rate)
            cursor += samples.numel()
            entry["end_ms"] = round(cursor * 1000 / sample_rate)
            pieces.append(samples)
            if line.index != rendered[-1]:
                pause = round(line.pause_ms * sample_rate / 1000)
                pieces.append(torch.zeros(pause))
                cursor += pause
        entries.append(entry)
    return torch.cat(pieces), entries


def _as_result(line: LinePlan) -> LineResult:
    return LineResult(
        LineStatus(line.status), line.attempts, line.audio_key, line.duration_ms, line.audio_sha256, line.error
    )


def _load(runtime: Runtime, key: str) -> torch.Tensor:
    with runtime.store.open(key) as stream:
        samples, _rate = decode_wav(stream.read())
    return samples
