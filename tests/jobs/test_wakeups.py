"""The sweeper's wake-ups under a backlog: only what the broker queue lacks, on SQLite and
PostgreSQL. (tests/worker/test_sweeper.py runs the same against a real Redis queue.)"""
import pytest
from support import queue_csv_batch

from jobs import repository
from jobs.keys import create_key

BATCH_SIZE = 8


@pytest.fixture
def owner(sessions) -> int:
    with sessions.begin() as session:
        return create_key(session, "owner")[0].id


def sweep(sessions, waiting: int):
    with sessions.begin() as session:
        return repository.sweep(
            session, requeue_after_s=600, max_attempts=3, batch_size=BATCH_SIZE, waiting={"batch": waiting}
        ).wake_ups


def test_a_backlog_whose_messages_are_waiting_gets_no_new_ones(sessions, owner):
    queue_csv_batch(sessions, owner, 800)  # the API sent 100 wake-ups; all still wait
    assert sweep(sessions, waiting=100) == []  # the old rule sent 800 more here
    assert len(sweep(sessions, waiting=90)) == 10  # ten were lost: ten are sent, no more
    assert sweep(sessions, waiting=100) == []


def test_lost_messages_are_replaced_one_per_gpu_batch(sessions, owner):
    jobs = queue_csv_batch(sessions, owner, 800)
    sent = sweep(sessions, waiting=0)  # the broker lost every message
    assert len(sent) == 100 and all(len(w.covers) == BATCH_SIZE for w in sent)
    assert sorted(job for w in sent for job in w.covers) == sorted(job.id for job in jobs)
    assert {w.job_id for w in sent} <= {job.id for job in jobs}
    assert sweep(sessions, waiting=0) == []  # just woken: not in doubt for REQUEUE_AFTER_S


def test_a_script_is_woken_before_texts_since_only_its_own_message_starts_it(sessions, owner):
    jobs = queue_csv_batch(sessions, owner, 16, scripts=1)
    script = next(job for job in jobs if job.is_script)
    sent = sweep(sessions, waiting=2)  # 2 texts' messages wait; the script's was lost
    assert [(w.job_id, w.covers) for w in sent] == [(script.id, (script.id,))]


def test_recently_woken_jobs_are_not_in_doubt(sessions, owner):
    queue_csv_batch(sessions, owner, 40, age_s=60)  # published a minute ago; its messages not seen yet
    assert sweep(sessions, waiting=0) == []
