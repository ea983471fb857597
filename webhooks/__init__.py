"""Outgoing webhooks, without a database: Standard Webhooks signing, the SSRF guard, one
delivery attempt over a pinned connection, and the retry schedule.

Pure standard library (no Flask, Celery, SQLAlchemy or torch), so the API (vetting URLs at
submission) and the worker (delivering) both import it. Typical attempt::

    target = vet_url(url, allow_private=settings.webhook_allow_private)  # again at every attempt
    result = deliver(target, body, headers(secrets, msg_id, None, body), timeout_s=10)
    if not result.delivered and not result.gone:
        wait = next_delay(attempt + 1)   # None: give up
"""
from webhooks.delivery import DeliveryResult, deliver
from webhooks.dns import resolver_within
from webhooks.schedule import MAX_ATTEMPTS, RETRY_DELAYS_S, next_delay
from webhooks.signing import headers, new_secret, sign
from webhooks.ssrf import UnsafeUrl, VettedTarget, is_public, vet_url

__all__ = [
    "DeliveryResult", "MAX_ATTEMPTS", "RETRY_DELAYS_S", "UnsafeUrl", "VettedTarget", "deliver",
    "headers", "is_public", "new_secret", "next_delay", "resolver_within", "sign", "vet_url",
]
