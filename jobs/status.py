"""Statuses of jobs, script lines and batches.

A job moves queued -> running -> succeeded | partially_succeeded | failed, or queued -> canceled,
or (a script stopped between lines) running -> canceled. running -> queued is a claim given back
after a transient failure or found expired by the sweeper. Terminal statuses never change.
"""
from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIALLY_SUCCEEDED = "partially_succeeded"  # a script with some failed lines
    FAILED = "failed"
    CANCELED = "canceled"


class LineStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class BatchStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIALLY_SUCCEEDED = "partially_succeeded"
    FAILED = "failed"

