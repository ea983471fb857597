"""Redelivering a webhook event is limited per event, so a client looping on it cannot make the
service hammer a receiver."""
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from api_helpers import auth, submit
from jobs import outbox
from jobs.keys import find_key
from jobs.models import WebhookAttempt, WebhookEvent, utcnow


def delivered_event(app, job_id: str, api_key_id: int) -> str:
    with app.extensions["csm_batch"].sessions.begin() as session:
        outbox.emit(session, api_key_id, uuid.UUID(job_id), "job.succeeded", "https://93.184.216.34/hook")
        session.flush()
        event = session.scalars(select(WebhookEvent)).one()
        outbox.record_attempt(
            session, event.id, outbox.Attempt(200, None, 12), outcome=outbox.DELIVERED, retry_at=None
        )
        return event.id


def test_an_event_is_redelivered_at_most_once_a_minute(app, client, key):
    job = submit(client, key, {"text": "hi"}).get_json()
    with app.extensions["csm_batch"].sessions() as session:
        api_key_id = find_key(session, key).id
    event_id = delivered_event(app, job["id"], api_key_id)
    url = f"/v1/jobs/{job['id']}/deliveries/{event_id}/redeliver"

    too_soon = client.post(url, headers=auth(key))
    assert too_soon.status_code == 429 and too_soon.get_json()["error"]["code"] == "redelivery_too_soon"
    assert 0 < int(too_soon.headers["Retry-After"]) <= 60

    with app.extensions["csm_batch"].sessions.begin() as session:
        session.execute(update(WebhookAttempt).values(attempted_at=utcnow() - timedelta(minutes=2)))
    queued = client.post(url, headers=auth(key))
    assert queued.status_code == 202 and queued.get_json()["status"] == "pending"
    next_attempt = queued.get_json()["next_attempt_at"]
    # Already due: asking again changes nothing.
    again = client.post(url, headers=auth(key))
    assert again.status_code == 202 and again.get_json()["next_attempt_at"] == next_attempt
