"""Synthesise lines in GPU batches, retrying lines that come back empty with calmer sampling.

A line "produces no audio" when the model emits its end frame at once. As the seed deployment
did, such a line is tried again with a lower temperature and top-k (and a new seed); every
attempt counts, and a line still silent after the last one fails with a reason.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from torch import Tensor

MAX_LINE_ATTEMPTS = 3
TEMPERATURE_STEP = 0.75  # each retry multiplies the temperature by this
TOPK_STEP = 2  # ... and divides top-k by this


@dataclass(frozen=True)
class Synthesis:
    audio: Tensor | None  # (samples,) float32, None when the line failed
    attempts: int
    code: str | None = None  # why it failed: invalid_input (the engine refused it) or no_audio
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
        outputs = generator.generate_batch([retry_request(requests[i], attempt) for i in pending])
        silent = []
        for index, output in zip(pending, outputs):
            if isinstance(output, ValueError):
                results[index] = Synthesis(None, attempt, "invalid_input", str(output))
            elif output.numel() == 0:
                silent.append(index)
            else:
                results[index] = Synthesis(output, attempt)
        pending = silent
        if not pending:
            break
    for index in pending:
        results[index] = Synthesis(None, MAX_LINE_ATTEMPTS, "no_audio", f"no audio after {MAX_LINE_ATTEMPTS} attempts")
    return results
