"""Standard Webhooks signatures (https://www.standardwebhooks.com/, "Signature scheme").

Every delivery carries three headers:

    webhook-id:        the message id; the same on every retry of one event (dedupe on it)
    webhook-timestamp: integer Unix seconds of this attempt (new on every retry)
    webhook-signature: space-separated "v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>"

The secret shown to the customer is ``whsec_<base64>``; the HMAC key is the base64-decoded part
after ``whsec_``. While a secret is being rotated the signature header holds one entry per secret
(current first, then the previous one), so a receiver holding either secret keeps verifying.

How a receiver verifies a delivery (the raw body bytes, before any JSON parsing)::

    import base64, hashlib, hmac, time

    def verify(secret: str, headers: dict, body: bytes, tolerance_s: int = 300) -> bool:
        msg_id = headers["webhook-id"]
        timestamp = headers["webhook-timestamp"]
        if abs(time.time() - int(timestamp)) > tolerance_s:   # stale or replayed
            return False
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{msg_id}.{timestamp}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for entry in headers["webhook-signature"].split(" "):
            version, _, signature = entry.partition(",")
            if version == "v1" and hmac.compare_digest(signature, expected):
                return True
        return False

Verify over the exact bytes received, compare in constant time (``hmac.compare_digest``), reject
timestamps more than 5 minutes from your clock, and ignore signature versions you do not know.
Remember ``webhook-id`` to drop duplicate deliveries.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
import time
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32                 # the spec asks for 24..64 random bytes
_MIN_KEY_BYTES, _MAX_KEY_BYTES = 24, 64
_MAX_ID_CHARS = 256

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ValueError if it is malformed or outside 24..64 bytes."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook secret must start with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not valid base64 after 'whsec_'") from None
    if not _MIN_KEY_BYTES <= len(key) <= _MAX_KEY_BYTES:
        raise ValueError(f"webhook secret must decode to {_MIN_KEY_BYTES}..{_MAX_KEY_BYTES} bytes")
    return key


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<sig>`` per secret, space-separated, in the given
    order (current secret first, then the previous one during rotation)."""
    if isinstance(secrets, (str, bytes)):
        raise TypeError("secrets must be a sequence of 'whsec_' strings, not a single string")
    if not secrets:
        raise ValueError("at least one webhook secret is required")
    _check_id(msg_id)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("timestamp must be a non-negative integer (Unix seconds)")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError("body must be bytes: sign exactly the bytes that are sent")
    signed = f"{msg_id}.{timestamp}.".encode("ascii") + bytes(body)
    entries = []
    for secret in secrets:
        digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
        entries.append("v1," + base64.b64encode(digest).decode("ascii"))
    return " ".join(entries)


def headers(secrets: Sequence[str], msg_id: str, timestamp: int | None, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt. ``timestamp`` None means now; each
    retry must be signed again with a fresh timestamp and the same ``msg_id``."""
    if timestamp is None:
        timestamp = int(time.time())
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secrets, msg_id, timestamp, body),
    }


def _check_id(msg_id: str) -> None:
    # The id travels in a header and in the signed string: printable ASCII, no spaces.
    if (not isinstance(msg_id, str) or not 0 < len(msg_id) <= _MAX_ID_CHARS
            or not all("!" <= ch <= "~" for ch in msg_id)):
        raise ValueError(f"msg_id must be 1..{_MAX_ID_CHARS} printable ASCII characters without spaces")
