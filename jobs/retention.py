"""How long outputs are kept (RESULT_TTL_HOURS), and the sweeper's step that deletes them.

A job's outputs (its audio, a script's manifest and line audio) expire the TTL after it
finished; a batch's jobs expire together, the TTL after the batch finished, so its archive stays
whole until then. An expired job keeps its row, with its object keys cleared: that, or an
`expires_at` in the past, is what makes a download answer 410.

Objects are deleted before the keys are cleared: a store that fails leaves rows naming objects
some of which are gone, past their expiry anyway, and the next sweep deletes the rest. The other
order would leave objects that no row names, which nothing would ever find again.

A sweep takes the jobs that finished first. An object the store keeps refusing must not hold the
others back: when the one call for all of them fails while the store answers, each job's objects
are deleted on their own, and the jobs whose deletion failed wait EXPIRY_RETRY before they are
tried again, so that a sweep's worth of them cannot fill every later sweep.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import ColumnElement, case, exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from jobs.models import Batch, Job, JobLine

log = logging.getLogger(__name__)

EXPIRE_PER_SWEEP = 200  # jobs; their objects go in one store call per 1000 keys
EXPIRY_RETRY = timedelta(hours=1)  # a job whose objects the store refused waits this long
_IN_LIST = 500  # bounded IN lists


def expires_at(job: Job, ttl: timedelta | None) -> datetime | None:
    """When the job's outputs expire; None while it (or its batch) runs, or when kept forever."""
    finished = job.finished_at if job.batch_id is None else job.batch_finished_at
    return finished + ttl if finished is not None and ttl is not None else None


def batch_expires_at(batch: Batch, ttl: timedelta | None) -> datetime | None:
    return batch.finished_at + ttl if batch.finished_at is not None and ttl is not None else None


def is_past(moment: datetime | None, now: datetime) -> bool:
    return moment is not None and moment <= now


def output_keys(session: Session, which: ColumnElement[bool]) -> list[str]:
    """The object keys that the rows of the jobs `which` selects name: audio, manifests, lines."""
    return sorted(set().union(*keys_by_job(session, which).values()))


def keys_by_job(session: Session, which: ColumnElement[bool]) -> dict[uuid.UUID, set[str]]:
    """Each job `which` selects, with the object keys its rows name."""
    keys_of: dict[uuid.UUID, set[str]] = {}
    for job_id, audio, manifest in session.execute(select(Job.id, Job.audio_key, Job.manifest_key).where(which)):
        keys_of[job_id] = {audio, manifest}
    for job_id, audio in session.execute(select(JobLine.job_id, JobLine.audio_key).join(Job).where(which)):
        keys_of[job_id].add(audio)  # a text's line names its job's audio: the set counts it once
    for keys in keys_of.values():
        keys.discard(None)
    return keys_of


def expired_jobs(session: Session, now: datetime, ttl: timedelta, limit: int) -> list[uuid.UUID]:
    """Up to `limit` jobs past their expiry whose rows still name objects, but for those held back."""
    finished = case((Job.batch_id.is_(None), Job.finished_at), else_=Job.batch_finished_at)
    stored = or_(
        Job.audio_key.is_not(None),
        Job.manifest_key.is_not(None),
        exists().where(JobLine.job_id == Job.id, JobLine.audio_key.is_not(None)),
    )
    due = or_(Job.expiry_retry_at.is_(None), Job.expiry_retry_at <= now)
    query = select(Job.id).where(finished <= now - ttl, due, stored).order_by(finished, Job.id).limit(limit)
    return list(session.scalars(query))


def clear_outputs(session: Session, job_ids: list[uuid.UUID]) -> None:
    """Forgets the object keys of the jobs (their objects were deleted); the caller commits."""
    for ids in _chunks(job_ids):
        session.execute(update(Job).where(Job.id.in_(ids)).values(audio_key=None, manifest_key=None))
        session.execute(update(JobLine).where(JobLine.job_id.in_(ids)).values(audio_key=None))


def expire_outputs(sessions: sessionmaker[Session], store, now: datetime, ttl: timedelta) -> int:
    """Deletes the objects of up to EXPIRE_PER_SWEEP expired jobs, then clears their keys;
    returns how many jobs. `store`: an ObjectStore (a store that is down raises, nothing is
    cleared; one that refuses some objects holds back only their jobs, for EXPIRY_RETRY)."""
    with sessions() as session:
        job_ids = expired_jobs(session, now, ttl, EXPIRE_PER_SWEEP)
        keys_of: dict[uuid.UUID, set[str]] = {}
        for ids in _chunks(job_ids):
            keys_of.update(keys_by_job(session, Job.id.in_(ids)))
    if not job_ids:
        return 0
    keys = sorted(key for job_keys in keys_of.values() for key in job_keys)
    try:  # no transaction is open during the store's calls
        store.delete_many(keys)
        deleted = job_ids
    except OSError:  # StorageUnavailable, or a file the local store cannot delete
        store.check()  # a store that is down: every job waits for the next sweep
        deleted = _delete_each(store, keys_of)
    held_back = sorted(set(job_ids) - set(deleted))
    with sessions.begin() as session:
        clear_outputs(session, deleted)
        for ids in _chunks(held_back):
            session.execute(update(Job).where(Job.id.in_(ids)).values(expiry_retry_at=now + EXPIRY_RETRY))
    log.info(
        "event=outputs_expired jobs=%d objects=%d held_back=%d", len(deleted), len(keys), len(held_back)
    )
    return len(deleted)


def _delete_each(store, keys_of: dict[uuid.UUID, set[str]]) -> list[uuid.UUID]:
    """The jobs whose objects were all deleted, one store call per job."""
    deleted = []
    for job_id, keys in keys_of.items():
        try:
            store.delete_many(sorted(keys))
        except OSError:
            log.warning("event=expiry_held_back job_id=%s", job_id, exc_info=True)
        else:
            deleted.append(job_id)
    return deleted


def _chunks(ids: list[uuid.UUID]) -> Iterable[list[uuid.UUID]]:
    return (ids[start:start + _IN_LIST] for start in range(0, len(ids), _IN_LIST))
