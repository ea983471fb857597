"""Synthesise lines in GPU batches, retrying lines that come back empty with calmer sampling.

A line "produces no audio" when the model emits its end frame at once. As the seed deployment
did, such a line is tried again with a lower temperature and top-k (and a new seed); every
attempt counts, and a line still silent after the last one fails with a reason.

When the engine raises for a whole batch (out of GPU memory, say), the batch is split in halves
and each tried again, so the error ends up with the rows that cause it alone.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Sequence

import torch
from celery.exceptions import SoftTimeLimitExceeded
from torch import Tensor

from csm.config import SAMPLES_PER_FRAME
from jobs.errors import JobError
from worker import metrics

log = logging.getLogger(__name__)

MAX_LINE_ATTEMPTS = 3
TEMPERATURE_STEP = 0.75  # each retry multiplies the temperature by this
TOPK_STEP = 2  # ... and divides top-k by this


@dataclass(frozen=True)
class Synthesis:
    audio: Tensor | None  # (samples,) float32, None when the line failed
    attempts: int
    code: JobError | None = None  # why it failed: invalid_input, no_audio or engine_error
    error: str | None = None


def retry_request(request, attempt: int):
    """The request for attempt `attempt` (1 = as asked)."""
    if attempt == 1:
        return request
    step = attempt - 1
    return replace(
        request,
        temperature=request.temperature * TEMPERATURE_STEP**step,
        topk=max(1, request.topk // TOPK_STEP**step),
        seed=None if request.seed is None else request.seed + step,
    )


def synthesize(generator, requests: Sequence) -> list[Synthesis]:
    """One Synthesis per csm.GenerationRequest, in order; rows share each batched pass."""
    results: list[Synthesis | None] = [None] * len(requests)
    pending = list(range(len(requests)))
    for attempt in range(1, MAX_LINE_ATTEMPTS + 1):
        started = time.perf_counter()
        outputs = _generate(generator, [retry_request(requests[i], attempt) for i in pending])
        produced = [output.numel() for output in outputs if isinstance(output, Tensor)]
        metrics.generated(produced, generator.sample_rate, SAMPLES_PER_FRAME, time.perf_counter() - started)
        silent = []
        for index, output in zip(pending, outputs):
            if isinstance(output, ValueError):
                results[index] = Synthesis(None, attempt, JobError.INVALID_INPUT, str(output))
            elif isinstance(output, Exception):
                results[index] = Synthesis(None, attempt, JobError.ENGINE_ERROR, "the engine failed on this line")
            elif output.numel() == 0:
                silent.append(index)
            else:
                results[index] = Synthesis(output, attempt)
        pending = silent
        if not pending:
            break
    for index in pending:
        results[index] = Synthesis(
            None, MAX_LINE_ATTEMPTS, JobError.NO_AUDIO, f"no audio after {MAX_LINE_ATTEMPTS} attempts"
        )
    return results


def _generate(generator, requests: list) -> list:
    """generator.generate_batch, in halves when it raises: a row that fails alone gets its
    exception as its output."""
    try:
        return generator.generate_batch(requests)
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:
        if len(requests) == 1:
            log.exception("event=engine_error rows=1")
            return [exc]
        log.warning("event=engine_error rows=%d error=%r: splitting the batch", len(requests), exc)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # what the failed pass allocated
        half = len(requests) // 2
        return _generate(generator, requests[:half]) + _generate(generator, requests[half:])
