import uuid
from datetime import timedelta

from sqlalchemy import update
from support import job_request_of, s3_client

from jobs import repository
from jobs.keys import create_key
from jobs.models import Job, JobLine, utcnow
from jobs.queue import RENDER_QUEUE
from jobs.voices import add_voice
from worker import render as render_path
from worker.steps import Outcome


def submit(runtime, body: dict, owner: int | None = None) -> uuid.UUID:
    request = job_request_of(body, max_text_chars=10_000, any_voice=True)
    with runtime.sessions.begin() as session:
        if owner is None:
            owner = create_key(session, "owner")[0].id
        return repository.create_job(session, owner, request, queue=RENDER_QUEUE).id


def row(runtime, job_id) -> Job:
    with runtime.sessions() as session:
        return session.get(Job, job_id)


def set_not_before(runtime, job_ids, seconds_from_now: float) -> None:
    """Moves the end of the jobs' retry backoff (0: it is over)."""
    with runtime.sessions.begin() as session:
        due = utcnow() + timedelta(seconds=seconds_from_now)
        session.execute(update(Job).where(Job.id.in_(job_ids)).values(not_before=due))


def lines(runtime, job_id) -> list[JobLine]:
    with runtime.sessions() as session:
        return repository.job_lines(session, job_id)


def render(runtime, job_id) -> Outcome:
    """Renders job_id (with riders) -> what became of job_id."""
    return render_all(runtime, job_id)[0]


def render_all(runtime, job_id) -> list[Outcome]:
    """Renders job_id (with riders) -> what became of each job, job_id's first."""
    return render_path.render_job(job_id, runtime)


def add_voice_object(runtime, owner: int, name: str, recording: bytes, **put_args) -> None:
    """A voice of `owner` stored as `recording` as it is, past the API's checks (an older
    upload, say); `put_args`: more of S3's PutObject arguments."""
    voice_id = uuid.uuid4()
    key = f"voices/{voice_id}/prompt.wav"
    settings = runtime.settings
    s3_client(settings.s3_endpoint_url).put_object(Bucket=settings.s3_bucket, Key=key, Body=recording, **put_args)
    with runtime.sessions.begin() as session:
        add_voice(session, owner, name, f"I am {name}.", key, 1000, voice_id)
