"""The figures /metrics reads from SQL, on PostgreSQL and SQLite."""
from datetime import timedelta

from sqlalchemy import select, update

from jobs import outbox, repository, stats
from jobs.csv_batch import parse_batch_csv
from jobs.keys import create_key
from jobs.models import Job, WebhookEvent, utcnow
from jobs.repository import AudioResult
from support import job_request_of

RESULT = AudioResult(key="jobs/x/audio.wav", duration_ms=800, sample_rate=24000, bytes=38444, sha256="0" * 64)


def test_a_snapshot_counts_jobs_queues_events_and_batches(sessions):
    with sessions.begin() as session:
        owner = create_key(session, "owner")[0].id
        request = job_request_of({"text": "hi"})
        singles = [repository.create_job(session, owner, request, queue="render") for _ in range(3)]
        plan = parse_batch_csv(b"text\none\ntwo\n", max_text_chars=100, voice_exists=lambda name: False)
        batch = repository.create_batch(session, owner, list(plan.jobs), queue="batch", filename="b.csv")
        # The oldest queued single was submitted five minutes ago.
        session.execute(update(Job).where(Job.id == singles[0].id).values(created_at=utcnow() - timedelta(minutes=5)))
        outbox.emit(session, owner, singles[0].id, "job.succeeded", "https://hooks.example.com/a")
        outbox.emit(session, owner, singles[1].id, "job.succeeded", "https://hooks.example.com/b")
    with sessions.begin() as session:
        later = utcnow() + timedelta(hours=1)
        session.execute(update(WebhookEvent).where(WebhookEvent.subject_id == singles[1].id).values(next_attempt_at=later))
        claim = repository.claim_job(session, singles[2].id, lease_s=60, max_attempts=3)
        repository.complete_job(session, claim, RESULT)
        batch_job = session.scalars(select(Job.id).where(Job.batch_id == batch.id)).first()
        claim = repository.claim_job(session, batch_job, lease_s=60, max_attempts=3)

    with sessions() as session:
        snapshot = stats.snapshot(session)
    assert snapshot.jobs == {("queued", "render"): 2, ("succeeded", "render"): 1, ("queued", "batch"): 1, ("running", "batch"): 1}
    assert 299 < (snapshot.taken_at - snapshot.oldest_queued["render"]).total_seconds() < 400
    assert (snapshot.taken_at - snapshot.oldest_queued["batch"]).total_seconds() < 60
    assert (snapshot.webhook_events_pending, snapshot.webhook_events_due) == (2, 1)
    assert snapshot.running_batches == [stats.RunningBatch(batch.id, 0, 2)]
