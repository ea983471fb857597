"""The sweeper against a real Redis broker: under a backlog it adds no messages to those
waiting, and it replaces the ones the broker lost, one per GPU batch."""
import pytest
import redis
from support import free_redis_db, make_settings, queue_csv_batch

from jobs.keys import create_key
from jobs.queue import BATCH_QUEUE, make_celery, publish_render
from worker import sweeper


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_backlog_gets_no_duplicate_flood_and_lost_messages_come_back(database_url, sessions, tmp_path):
    broker_url = free_redis_db()
    settings = make_settings(
        CSM_DATA_DIR=str(tmp_path), DATABASE_URL=database_url, BROKER_URL=broker_url, WORKER_BATCH_SIZE="8"
    )
    app = make_celery(settings)
    broker = redis.Redis.from_url(broker_url)
    with sessions.begin() as session:
        owner = create_key(session, "owner")[0].id
    jobs = queue_csv_batch(sessions, owner, 800)  # queued an hour ago: past REQUEUE_AFTER_S
    for job in jobs[::8]:  # what the API publishes: one wake-up per GPU batch
        publish_render(app, job.id, BATCH_QUEUE)
    assert broker.llen(BATCH_QUEUE) == 100

    sweeper.sweep(app, settings, sessions)
    assert broker.llen(BATCH_QUEUE) == 100  # was 900: one more message per queued job

    broker.delete(BATCH_QUEUE)  # the broker lost them all
    assert sweeper.sweep(app, settings, sessions).wake_ups
    assert broker.llen(BATCH_QUEUE) == 100
    sweeper.sweep(app, settings, sessions)
    assert broker.llen(BATCH_QUEUE) == 100


def test_expiry_is_off_without_a_ttl_and_postponed_while_the_store_is_down(sessions, tmp_path, caplog):
    from sqlalchemy import select

    from jobs import repository
    from jobs.models import Job
    from storage import StorageUnavailable
    from storage.local import LocalStore
    from support import finish_with_outputs, job_request_of

    class Down:
        def delete_many(self, keys):
            raise StorageUnavailable("object store unreachable")

        def check(self):
            raise StorageUnavailable("object store unreachable")

    store = LocalStore(tmp_path / "objects")
    with sessions.begin() as session:
        owner = create_key(session, "owner")[0].id
        request = job_request_of({"text": "hi"})
        job_id = repository.create_job(session, owner, request, queue="render").id
    keys = finish_with_outputs(sessions, store, job_id, finished_ago_s=7200)
    kept = make_settings(CSM_DATA_DIR=str(tmp_path))
    assert sweeper.expire_outputs(kept, sessions, store) == 0
    one_hour = make_settings(CSM_DATA_DIR=str(tmp_path), RESULT_TTL_HOURS="1")
    assert sweeper.expire_outputs(one_hour, sessions, Down()) == 0
    assert "event=expiry_postponed" in caplog.text
    assert sweeper.expire_outputs(one_hour, sessions, store) == 1
    assert not any(store.path(key).exists() for key in keys)
    with sessions() as session:
        assert session.scalar(select(Job.audio_key).where(Job.id == job_id)) is None
