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
