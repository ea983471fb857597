"""Webhook URLs at submission: the SSRF guard refuses private and unsafe targets by default."""
import pytest

from api_helpers import auth, published_messages, stored_jobs, submit


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/hook",
        "ftp://example.com/hook",
        "http://user:pass@93.184.216.34/hook",
        "not a url",
    ],
)
def test_unsafe_webhook_urls_are_refused_at_submission(client, key, app, settings, url):
    response = submit(client, key, {"text": "hi", "webhook_url": url})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["field"] == "webhook_url" and error["message"]
    assert stored_jobs(app) == 0 and published_messages(settings) == 0


def test_a_public_literal_address_is_accepted(client, key):
    assert submit(client, key, {"text": "hi", "webhook_url": "https://93.184.216.34/hook"}).status_code == 202


def test_batches_refuse_unsafe_webhook_urls(client, key, app):
    response = client.post(
        "/v1/batches?webhook_url=http://127.0.0.1/hook", data=b"text\nhi\n", headers=auth(key), content_type="text/csv"
    )
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "webhook_url"
    assert stored_jobs(app) == 0


def test_the_webhook_secret_rotates(client, key):
    first = client.get("/v1/webhook-secret", headers=auth(key)).get_json()
    assert first["secret"].startswith("whsec_") and first["previous_secret_expires_at"] is None
    rotated = client.post("/v1/webhook-secret/rotate", headers=auth(key)).get_json()
    assert rotated["secret"] != first["secret"] and rotated["previous_secret_expires_at"]
