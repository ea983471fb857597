"""Retention and deletion on the rows (SQLite and PostgreSQL) and a real S3 server: expired
outputs are deleted objects first and their keys cleared; deleting jobs and batches removes every
row that names them and never a running job; a worker's message for a deleted job is harmless."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from support import finish_with_outputs, job_request_of, make_settings, queue_csv_batch, s3_environment, stored
from jobs import deletion, outbox, repository, retention
from jobs.keys import create_key
from jobs.models import Batch, IdempotencyRecord, Job, JobLine, WebhookAttempt, WebhookEvent, utcnow
from jobs.status import JobStatus
from storage import StorageUnavailable, make_store

TTL = timedelta(hours=1)
LONG_AGO = timedelta(hours=2)


@pytest.fixture
def owner(sessions) -> int:
    with sessions.begin() as session:
        return create_key(session, "owner")[0].id


@pytest.fixture
def store(s3_endpoint, s3_bucket):
    return make_store(make_settings(**s3_environment(s3_endpoint, s3_bucket)))


def queued_job(sessions, owner, body=None, webhook_url=None) -> Job:
    request = job_request_of(body or {"text": "hello"})
    with sessions.begin() as session:
        job = repository.create_job(session, owner, request, queue="render")
        job.webhook_url = webhook_url
        return job


def claim(sessions, job_id):
    with sessions.begin() as session:
        return repository.claim_job(session, job_id, lease_s=60, max_attempts=3)


def finished_script(sessions, store, owner, *, finished_ago=LONG_AGO) -> tuple[Job, list[str]]:
    """A succeeded two-line script whose outputs are stored; their keys."""
    job = queued_job(sessions, owner, {"script": [{"speaker": 0, "text": "one"}, {"speaker": 1, "text": "two"}]})
    return job, finish_with_outputs(sessions, store, job.id, finished_ago.total_seconds())


def row(sessions, job_id) -> Job | None:
    with sessions() as session:
        return session.get(Job, job_id)


def test_expired_outputs_are_deleted_then_their_keys_cleared_once(sessions, store, owner):
    old, old_keys = finished_script(sessions, store, owner)
    recent, recent_keys = finished_script(sessions, store, owner, finished_ago=timedelta(minutes=5))

    assert retention.expire_outputs(sessions, store, utcnow(), TTL) == 1
    assert stored(store, old_keys) == [] and stored(store, recent_keys) == recent_keys
    expired = row(sessions, old.id)
    assert (expired.status, expired.audio_key, expired.manifest_key) == ("succeeded", None, None)
    with sessions() as session:
        assert session.scalars(select(JobLine.audio_key).where(JobLine.job_id == old.id)).all() == [None, None]
        assert retention.output_keys(session, Job.id == recent.id) == recent_keys
    assert retention.expires_at(expired, TTL) == expired.finished_at + TTL
    assert retention.expires_at(expired, None) is None
    assert retention.expire_outputs(sessions, store, utcnow(), TTL) == 0  # nothing left to do


def test_a_store_that_fails_leaves_the_keys_for_the_next_sweep(sessions, store, owner):
    job, keys = finished_script(sessions, store, owner)

    class Down:
        def delete_many(self, keys):
            raise StorageUnavailable("object store unreachable")

        def check(self):
            raise StorageUnavailable("object store unreachable")

    with pytest.raises(StorageUnavailable):
        retention.expire_outputs(sessions, Down(), utcnow(), TTL)
    assert row(sessions, job.id).audio_key in keys
    assert retention.expire_outputs(sessions, store, utcnow(), TTL) == 1
    assert stored(store, keys) == []


class Refusing:
    """The real store, except that it keeps some objects, as S3 reports keys it failed to delete."""

    def __init__(self, store, kept: set[str]):
        self.store, self.kept = store, kept

    def delete_many(self, keys):
        self.store.delete_many([key for key in keys if key not in self.kept])
        if kept := self.kept.intersection(keys):
            raise StorageUnavailable(f"object store kept {len(kept)} of {len(keys)} objects: InternalError")

    def check(self):
        self.store.check()


def test_objects_the_store_keeps_refusing_hold_back_only_their_own_jobs(sessions, store, owner, monkeypatch):
    monkeypatch.setattr(retention, "EXPIRE_PER_SWEEP", 2)
    stuck = [finished_script(sessions, store, owner, finished_ago=LONG_AGO + timedelta(hours=1)) for _ in range(2)]
    others = [finished_script(sessions, store, owner) for _ in range(3)]
    refusing = Refusing(store, {keys[0] for _, keys in stuck})

    # The first sweep takes the two oldest jobs, both stuck; they wait while later sweeps expire the rest.
    assert [retention.expire_outputs(sessions, refusing, utcnow(), TTL) for _ in range(4)] == [0, 2, 1, 0]
    for job, keys in others:
        assert stored(store, keys) == [] and row(sessions, job.id).audio_key is None
    for job, keys in stuck:
        assert stored(store, keys) == [keys[0]] and row(sessions, job.id).audio_key in keys

    # Once their wait is over, the next sweep tries them again.
    assert retention.expire_outputs(sessions, store, utcnow(), TTL) == 0
    later = utcnow() + retention.EXPIRY_RETRY
    assert retention.expire_outputs(sessions, store, later, TTL) == 2
    for _, keys in stuck:
        assert stored(store, keys) == []


def test_a_batchs_jobs_are_kept_until_the_ttl_after_the_batch_finished(sessions, store, owner):
    first, second = queue_csv_batch(sessions, owner, 2)
    keys = finish_with_outputs(sessions, store, first.id, LONG_AGO.total_seconds())
    assert retention.expires_at(row(sessions, first.id), TTL) is None  # its batch still runs
    assert retention.expire_outputs(sessions, store, utcnow(), TTL) == 0

    with sessions.begin() as session:
        repository.cancel_job(session, session.get(Job, second.id))  # the batch's last job ends it
    batch_id = first.batch_id
    with sessions() as session:
        finished = session.get(Batch, batch_id).finished_at
    assert retention.expires_at(row(sessions, first.id), TTL) == finished + TTL
    assert retention.expire_outputs(sessions, store, utcnow(), TTL) == 0
    with sessions.begin() as session:
        session.execute(update(Batch).where(Batch.id == batch_id).values(finished_at=utcnow() - LONG_AGO))
    assert retention.expire_outputs(sessions, store, utcnow(), TTL) == 1
    assert stored(store, keys) == []


def test_deleting_a_job_removes_every_row_that_names_it(sessions, owner):
    job = queued_job(sessions, owner, webhook_url="https://hooks.example.com/x")
    with sessions.begin() as session:
        repository.cancel_job(session, session.get(Job, job.id))  # emits job.canceled
        event = session.scalar(select(WebhookEvent).where(WebhookEvent.subject_id == job.id))
        outbox.record_attempt(session, event.id, outbox.Attempt(500, None, 3), outcome="pending", retry_at=utcnow())
        session.add(IdempotencyRecord(api_key_id=owner, key="k", request_hash="h", status_code=202,
                                      response_body="{}", location=f"/v1/jobs/{job.id}", created_at=utcnow()))
    with sessions.begin() as session:
        assert deletion.delete_jobs(session, Job.id == job.id)
        deletion.forget_submission(session, owner, f"/v1/jobs/{job.id}")
    with sessions() as session:
        for model in (Job, JobLine, WebhookEvent, WebhookAttempt, IdempotencyRecord):
            assert session.scalar(select(func.count()).select_from(model)) == 0, model
    with sessions.begin() as session:  # a dispatcher that held the event records nothing
        outbox.record_attempt(session, event.id, outbox.Attempt(200, None, 3), outcome="delivered", retry_at=None)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookAttempt)) == 0


def test_a_running_job_is_never_deleted_and_a_deleted_one_is_never_claimed(sessions, owner):
    running, queued = queued_job(sessions, owner), queued_job(sessions, owner)
    claim(sessions, running.id)
    with sessions() as session:  # closed without a commit: rolled back
        assert deletion.running(session, Job.id == running.id) == 1
        assert not deletion.delete_jobs(session, Job.id == running.id)
    assert row(sessions, running.id).status == JobStatus.RUNNING.value

    with sessions.begin() as session:
        assert deletion.delete_jobs(session, Job.id == queued.id)
    assert claim(sessions, queued.id) is None  # the message of a deleted job: nothing to do
    with sessions.begin() as session:
        swept = repository.sweep(session, requeue_after_s=0, max_attempts=3, batch_size=8, waiting={})
    assert queued.id not in {wake_up.job_id for wake_up in swept.wake_ups}


def test_a_batch_goes_whole_or_not_at_all(sessions, owner):
    jobs = queue_csv_batch(sessions, owner, 3)
    batch_id = jobs[0].batch_id
    claim(sessions, jobs[1].id)
    with sessions() as session:  # closed without a commit: rolled back
        assert not deletion.delete_batch(session, batch_id)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job).where(Job.batch_id == batch_id)) == 3

    with sessions.begin() as session:
        session.execute(update(Job).where(Job.id == jobs[1].id).values(status=JobStatus.FAILED.value))
    with sessions.begin() as session:
        assert deletion.delete_batch(session, batch_id)
    with sessions() as session:
        assert session.get(Batch, batch_id) is None
        assert session.scalar(select(func.count()).select_from(Job)) == 0
