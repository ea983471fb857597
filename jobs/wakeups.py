"""Which queued jobs need a new wake-up message: the sweeper's rule against lost messages.

A message is only a wake-up call. The worker that takes one claims the message's own job if it
is still queued and, unless that job is a script, fills its GPU batch with up to
WORKER_BATCH_SIZE queued texts of the same queue (after any of the sync queue). So a queue holding at least one waiting
message per WORKER_BATCH_SIZE queued texts, plus one per queued script, has work enough for
every queued job, whichever job ids the messages carry. A job's wake-up is in doubt only when
none was sent for it for REQUEUE_AFTER_S (`enqueued_at`) AND its queue holds fewer messages than
that; the sweeper then sends just the missing ones: scripts first (only their own message starts
them), then one per WORKER_BATCH_SIZE stale texts, oldest first. Every job a new message covers
counts as just woken. A surplus message costs one empty claim; a backlog that is being worked
through gets no new messages at all.
"""
from __future__ import annotations

import math
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from jobs.models import Job
from jobs.status import JobStatus


@dataclass(frozen=True)
class QueuedJob:
    id: uuid.UUID
    queue: str
    is_script: bool


@dataclass(frozen=True)
class WakeUp:
    """One message to publish: the job it names and the jobs it is meant to start."""

    job_id: uuid.UUID
    queue: str
    covers: tuple[uuid.UUID, ...]


def wake_ups(jobs: Iterable[QueuedJob], batch_size: int) -> list[WakeUp]:
    """One message per script and one per `batch_size` texts of a queue, in the order given."""
    found, texts = [], {}
    for job in jobs:
        if job.is_script:
            found.append(WakeUp(job.id, job.queue, (job.id,)))
        else:
            texts.setdefault(job.queue, []).append(job.id)
    for queue, ids in texts.items():
        found += [WakeUp(ids[i], queue, tuple(ids[i:i + batch_size])) for i in range(0, len(ids), batch_size)]
    return found


def missing_wake_ups(
    session: Session,
    *,
    now: datetime,
    requeue_after_s: float,
    batch_size: int,
    waiting: Mapping[str, int],
    sent: Counter[str],
) -> list[WakeUp]:
    """The wake-ups that queued jobs lack (the rule in the module docstring), marked as sent.

    `waiting`: messages waiting in each broker queue; `sent`: messages this sweep already
    publishes per queue (for reclaimed jobs)."""
    queued = Job.status == JobStatus.QUEUED.value
    needed: Counter[str] = Counter()
    for queue, is_script, count in session.execute(
        select(Job.queue, Job.is_script, func.count()).where(queued).group_by(Job.queue, Job.is_script)
    ):
        needed[queue] += count if is_script else math.ceil(count / batch_size)
    stale = queued & (Job.enqueued_at < now - timedelta(seconds=requeue_after_s))
    found: list[WakeUp] = []
    for queue, need in needed.items():
        short = need - waiting.get(queue, 0) - sent[queue]
        if short <= 0:
            continue
        in_queue = stale & (Job.queue == queue)
        scripts = session.scalars(
            select(Job.id).where(in_queue, Job.is_script).order_by(Job.created_at).limit(short)
        ).all()
        texts = session.scalars(
            select(Job.id).where(in_queue, Job.is_script.is_(False))
            .order_by(Job.created_at).limit((short - len(scripts)) * batch_size)
        ).all()
        found += wake_ups([QueuedJob(i, queue, True) for i in scripts] + [QueuedJob(i, queue, False) for i in texts], batch_size)
    covered = [job_id for wake_up in found for job_id in wake_up.covers]
    for start in range(0, len(covered), 500):  # bounded IN lists
        session.execute(
            update(Job).where(queued, Job.id.in_(covered[start:start + 500])).values(enqueued_at=now)
        )
    return found
