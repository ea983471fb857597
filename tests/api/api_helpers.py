from sqlalchemy import func, select

from jobs.models import Job


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def submit(client, key, body):
    return client.post("/v1/jobs", json=body, headers=auth(key))


def stored_jobs(app) -> int:
    with app.extensions["csm_batch"].sessions() as session:
        return session.scalar(select(func.count()).select_from(Job))


def published_messages(settings) -> int:
    return sum(1 for path in (settings.broker_dir / "messages").iterdir())
