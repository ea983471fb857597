"""The error codes a job can carry (its `error.code`), in one place: the worker records them,
the repository and the sweeper write them, the API returns them."""
from __future__ import annotations

from enum import StrEnum


class JobError(StrEnum):
    # The job failed for good: the same input would fail again.
    INVALID_INPUT = "invalid_input"  # the engine refused the request (prompt plus frames over the context)
    NO_AUDIO = "no_audio"  # the model emitted its end frame at once on every attempt
    VOICE_MISSING = "voice_missing"  # the voice was deleted after submission
    VOICE_UNREADABLE = "voice_unreadable"  # the stored recording cannot be decoded
    LINES_FAILED = "lines_failed"  # a script that partially succeeded: its failed lines
    INTERNAL_ERROR = "internal_error"  # a defect in the worker (logged with its traceback)
    # Transient: the job is given back to the queue and fails with this code after its last attempt.
    STORAGE_UNAVAILABLE = "storage_unavailable"
    DATABASE_UNAVAILABLE = "database_unavailable"
    ENGINE_ERROR = "engine_error"  # the engine raised (e.g. out of GPU memory) even for this job alone
    TIMEOUT = "timeout"  # a render (or a script line) took longer than the task time limit
    WORKER_LOST = "worker_lost"  # the worker stopped renewing its lease on every attempt
