"""A GPU worker that cannot load its model takes no work: it exits non-zero at start-up, the
queued job stays queued and its message stays in Redis."""
import os
import shutil
import subprocess

import pytest
import redis
from sqlalchemy import select
from support import ROOT, free_redis_db, job_request_of, make_settings, worker_command

from provision import create_key, migrate
from jobs import repository
from jobs.db import make_engine, make_session_factory
from jobs.keys import find_key
from jobs.models import Job
from jobs.queue import RENDER_QUEUE, make_celery, publish_render


@pytest.fixture
def queued_job(tmp_path):
    """A queued job in a fresh SQLite database, its wake-up waiting in a fresh Redis database."""
    environ = {"CSM_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": f"sqlite:///{tmp_path / 'jobs.db'}",
               "BROKER_URL": free_redis_db(), "HF_HOME": str(tmp_path / "hf"), "CSM_DEVICE": "cpu"}
    settings = make_settings(**environ)
    migrate(settings.database_url)
    key = create_key(settings, "startup")
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    request = job_request_of({"text": "Wait for me."})
    with sessions.begin() as session:
        job = repository.create_job(session, find_key(session, key).id, request, queue=RENDER_QUEUE)
    publish_render(make_celery(settings), job.id, RENDER_QUEUE)

    def still_queued() -> bool:
        with sessions() as session:
            row = session.scalar(select(Job).where(Job.id == job.id))
        waiting = redis.Redis.from_url(settings.broker_url).llen(RENDER_QUEUE)
        return (row.status, row.attempts, waiting) == ("queued", 0, 1)

    yield environ, still_queued
    engine.dispose()


def run_worker_to_exit(environ: dict, model: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        worker_command(), cwd=ROOT, env={**os.environ, **environ, "CSM_MODEL": model},
        capture_output=True, text=True, timeout=300,
    )


def test_a_worker_without_its_model_files_exits_at_start_up(queued_job):
    environ, still_queued = queued_job
    result = run_worker_to_exit(environ, "sesame/csm-1b")  # not in this empty HF_HOME
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot start: model 'sesame/csm-1b'" in result.stderr
    assert "Run `python -m csm.download sesame/csm-1b` first" in result.stderr
    assert still_queued()


def test_a_worker_whose_child_cannot_load_the_model_stops_without_taking_the_job(queued_job, tiny_model_dir, tmp_path):
    environ, still_queued = queued_job
    broken = shutil.copytree(tiny_model_dir, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"\0" * 64)  # present, so found; unreadable when loaded
    result = run_worker_to_exit(environ, str(broken))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "event=model_load_failed" in result.stderr
    assert still_queued()  # the message it had reserved went back to Redis
