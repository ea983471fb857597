import uuid

from jobs import repository
from jobs.keys import create_key
from jobs.models import Job, JobLine
from jobs.queue import RENDER_QUEUE
from jobs.validation import parse_job_request
from worker import render as render_path
from worker.steps import Outcome


def submit(runtime, body: dict, owner: int | None = None) -> uuid.UUID:
    request = parse_job_request(body, max_text_chars=10_000, voice_exists=lambda name: True)
    with runtime.sessions.begin() as session:
        if owner is None:
            owner = create_key(session, "owner")[0].id
        return repository.create_job(session, owner, request, queue=RENDER_QUEUE).id


def row(runtime, job_id) -> Job:
    with runtime.sessions() as session:
        return session.get(Job, job_id)


def lines(runtime, job_id) -> list[JobLine]:
    with runtime.sessions() as session:
        return repository.job_lines(session, job_id)


def render(runtime, job_id) -> Outcome:
    """Renders job_id (with riders) -> what became of job_id."""
    return render_path.render_job(job_id, runtime)[0]
