"""The job row is the source of truth: claims, terminal transitions and the sweeper."""
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from jobs import repository
from jobs.errors import JobError
from jobs.csv_batch import parse_batch_csv
from jobs.keys import create_key, find_key
from jobs.models import Batch, Job, WebhookEvent, utcnow
from jobs.repository import AudioResult
from jobs.status import JobStatus
from support import job_request_of

RESULT = AudioResult(key="jobs/x/audio.wav", duration_ms=800, sample_rate=24000, bytes=38444, sha256="0" * 64)


@pytest.fixture
def owner(sessions) -> int:
    with sessions.begin() as session:
        row, _key = create_key(session, "owner")
        return row.id


def new_job(sessions, owner: int, text: str = "hello", queue: str = "render") -> Job:
    request = job_request_of({"text": text})
    with sessions.begin() as session:
        return repository.create_job(session, owner, request, queue=queue)


def claim(sessions, job, lease_s=60, max_attempts=3):
    with sessions.begin() as session:
        return repository.claim_job(session, job.id, lease_s=lease_s, max_attempts=max_attempts)


def status_of(sessions, job) -> Job:
    with sessions() as session:
        return session.get(Job, job.id)


def expire_lease(sessions, job) -> None:
    with sessions.begin() as session:
        session.execute(update(Job).where(Job.id == job.id).values(lease_expires_at=utcnow() - timedelta(seconds=1)))


def test_keys_are_stored_hashed_and_found_by_value(sessions):
    with sessions.begin() as session:
        row, key = create_key(session, "alice")
    assert row.key_hash != key and key not in row.key_hash
    with sessions() as session:
        assert find_key(session, key).id == row.id
        assert find_key(session, key + "x") is None


def test_a_job_is_claimed_once(sessions, owner):
    job = new_job(sessions, owner)
    first = claim(sessions, job)
    assert first is not None and first.attempt == 1 and first.lines[0].request.text == "hello"
    assert claim(sessions, job) is None  # a duplicate message while the lease is live
    row = status_of(sessions, job)
    assert row.status == JobStatus.RUNNING and row.attempts == 1 and row.started_at is not None


def test_one_terminal_transition(sessions, owner):
    job = new_job(sessions, owner)
    held = claim(sessions, job)
    with sessions.begin() as session:
        assert repository.complete_job(session, held, RESULT)
    with sessions.begin() as session:
        assert not repository.complete_job(session, held, RESULT)
        assert not repository.fail_job(session, held, JobError.NO_AUDIO, "y")
    assert claim(sessions, job) is None  # a redelivered message after success does nothing
    row = status_of(sessions, job)
    assert row.status == JobStatus.SUCCEEDED and row.audio_sha256 == RESULT.sha256


def test_an_expired_lease_is_reclaimed_and_the_old_holder_cannot_finish(sessions, owner):
    job = new_job(sessions, owner)
    lost = claim(sessions, job)
    expire_lease(sessions, job)
    retaken = claim(sessions, job)
    assert retaken is not None and retaken.attempt == 2
    with sessions.begin() as session:
        assert not repository.complete_job(session, lost, RESULT)
        assert repository.complete_job(session, retaken, RESULT)


def test_attempts_are_bounded(sessions, owner):
    job = new_job(sessions, owner)
    for _ in range(2):
        assert claim(sessions, job, max_attempts=2) is not None
        expire_lease(sessions, job)
    assert claim(sessions, job, max_attempts=2) is None


def test_only_queued_jobs_cancel(sessions, owner):
    queued, running = new_job(sessions, owner), new_job(sessions, owner)
    claim(sessions, running)
    with sessions.begin() as session:
        assert repository.cancel_job(session, queued)
        assert not repository.cancel_job(session, running)  # a single text cannot stop mid-render
    assert status_of(sessions, queued).status == JobStatus.CANCELED
    assert claim(sessions, queued) is None


def test_sweeper_requeues_lost_messages_and_dead_workers(sessions, owner):
    fresh, stale, dead, exhausted = (new_job(sessions, owner) for _ in range(4))
    long_ago = utcnow() - timedelta(hours=1)
    with sessions.begin() as session:
        session.execute(update(Job).where(Job.id == stale.id).values(enqueued_at=long_ago))
    claim(sessions, dead)
    expire_lease(sessions, dead)
    for _ in range(2):
        claim(sessions, exhausted)
        expire_lease(sessions, exhausted)

    # One text per GPU batch and no message waiting: each queued job lacks its own wake-up.
    sweep = dict(requeue_after_s=600, max_attempts=2, batch_size=1, waiting={})
    with sessions.begin() as session:
        result = repository.sweep(session, **sweep)
    assert sorted((w.job_id, w.queue) for w in result.wake_ups) == sorted([(stale.id, "render"), (dead.id, "render")])
    assert result.failed == [exhausted.id]
    assert status_of(sessions, dead).status == JobStatus.QUEUED
    assert status_of(sessions, fresh).status == JobStatus.QUEUED
    failed = status_of(sessions, exhausted)
    assert failed.status == JobStatus.FAILED and failed.error_code == "worker_lost"
    with sessions.begin() as session:  # a second sweep right away finds nothing new
        again = repository.sweep(session, **sweep)
    assert again.wake_ups == [] and again.failed == []


def test_listing_is_newest_first_per_owner_with_a_cursor(sessions, owner):
    with sessions.begin() as session:
        other, _ = create_key(session, "other")
    jobs = [new_job(sessions, owner, f"line {i}") for i in range(5)]
    new_job(sessions, other.id)
    with sessions() as session:
        first = repository.list_jobs(session, owner, status=None, limit=3, after=None)
        last = first[-1]
        cursor = repository.Cursor(last.created_at, last.id)
        second = repository.list_jobs(session, owner, status=None, limit=3, after=cursor)
    assert [j.id for j in first + second] == [j.id for j in reversed(jobs)]


def test_a_batch_closes_exactly_once_when_its_last_job_ends(sessions, owner):
    plan = parse_batch_csv(b"text\none\ntwo\nthree\n", max_text_chars=100, voice_exists=lambda name: False)
    with sessions.begin() as session:
        batch = repository.create_batch(
            session, owner, list(plan.jobs), queue="batch", filename=None, webhook_url="https://93.184.216.34/hook"
        )
        jobs = list(session.scalars(select(Job).where(Job.batch_id == batch.id)))
    first, second, third = (claim(sessions, job) for job in jobs)
    with sessions.begin() as session:
        assert repository.complete_job(session, first, RESULT)
        assert repository.fail_job(session, second, "no_audio", "silent")
    with sessions() as session:
        assert session.get(Batch, batch.id).status == "running"
    with sessions.begin() as session:
        assert repository.complete_job(session, third, RESULT)
    for again in (first, second, third):  # duplicate deliveries of the last transitions
        with sessions.begin() as session:
            assert not repository.complete_job(session, again, RESULT)
    with sessions() as session:
        closed = session.get(Batch, batch.id)
        assert (closed.status, closed.jobs_done, closed.jobs_total) == ("partially_succeeded", 3, 3)
        assert closed.finished_at is not None
        events = session.scalars(select(WebhookEvent.type).where(WebhookEvent.subject_id == batch.id)).all()
        assert events == ["batch.completed"]


def test_a_gpu_batch_is_filled_with_waiting_sync_jobs_first(sessions, owner):
    batch = [new_job(sessions, owner, f"row {i}", queue="batch") for i in range(3)]
    single = new_job(sessions, owner, "single", queue="render")
    waiting = [new_job(sessions, owner, f"waiting {i}", queue="sync") for i in range(2)]
    with sessions.begin() as session:
        riders = repository.queued_text_jobs(session, "batch", 3, exclude=batch[0].id)
        assert riders == [waiting[0].id, waiting[1].id, batch[1].id]  # never another queue's singles
        assert single.id not in repository.queued_text_jobs(session, "batch", 10, exclude=batch[0].id)
