"""Standard Webhooks signatures, checked against the spec's published vector and an independent
verifier written here from the spec text (hmac + hashlib + base64, nothing from webhooks/)."""
import base64
import hashlib
import hmac
import re
import time

import pytest

from webhooks import signing
from webhooks.signing import headers, new_secret, sign

# The Standard Webhooks specification's test vector (also in its reference libraries).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def spec_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """base64(HMAC-SHA256(base64decode(secret after 'whsec_'), "{id}.{timestamp}.{body}"))."""
    key = base64.b64decode(secret[len("whsec_"):])
    content = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def independent_verify(secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    expected = spec_signature(secret, msg_id, timestamp, body)
    return any(
        entry.startswith("v1,") and hmac.compare_digest(entry[3:], expected)
        for entry in header.split(" ")
    )


def test_matches_the_spec_test_vector():
    assert sign([SPEC_SECRET], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    assert "v1," + spec_signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_known_answer_computed_by_hand_from_the_formula():
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    signed_content = b"msg_1.1700000000." + b'{"job":"j1","status":"completed"}'
    expected = "v1," + base64.b64encode(hmac.new(key, signed_content, hashlib.sha256).digest()).decode()
    assert sign([secret], "msg_1", 1700000000, b'{"job":"j1","status":"completed"}') == expected


def test_a_fresh_secret_verifies_and_tampering_does_not():
    secret = new_secret()
    body = b'{"event":"job.completed"}'
    signature = sign([secret], "msg_abc", 1700000000, body)
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", signature)
    assert independent_verify(secret, "msg_abc", 1700000000, body, signature)
    assert not independent_verify(secret, "msg_abc", 1700000000, body + b" ", signature)
    assert not independent_verify(secret, "msg_abd", 1700000000, body, signature)
    assert not independent_verify(secret, "msg_abc", 1700000001, body, signature)
    assert not independent_verify(new_secret(), "msg_abc", 1700000000, body, signature)


def test_rotation_sends_both_signatures_current_first():
    current, previous = new_secret(), new_secret()
    body = b'{"event":"job.failed"}'
    header = sign([current, previous], "msg_rot", 1700000123, body)
    first, second = header.split(" ")
    assert first == "v1," + spec_signature(current, "msg_rot", 1700000123, body)
    assert second == "v1," + spec_signature(previous, "msg_rot", 1700000123, body)
    assert independent_verify(current, "msg_rot", 1700000123, body, header)
    assert independent_verify(previous, "msg_rot", 1700000123, body, header)
    assert not independent_verify(new_secret(), "msg_rot", 1700000123, body, header)


def test_new_secret_is_whsec_and_32_random_bytes():
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret[6:], validate=True)) == 32


def test_headers_carry_id_timestamp_and_signature():
    secret = new_secret()
    body = b"{}"
    before = int(time.time())
    built = headers([secret], "msg_h", None, body)
    after = int(time.time())
    assert set(built) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert built["webhook-id"] == "msg_h"
    assert before <= int(built["webhook-timestamp"]) <= after
    assert independent_verify(secret, "msg_h", int(built["webhook-timestamp"]), body, built["webhook-signature"])
    assert headers([secret], "msg_h", 42, body)["webhook-timestamp"] == "42"


def receiver_example():
    """The verification recipe from the module docstring, executed as written."""
    doc = signing.__doc__
    code = doc[doc.index("    import base64"):doc.index("\nVerify over")]
    namespace = {}
    exec(compile("\n".join(line[4:] for line in code.splitlines()), "signing-docstring", "exec"), namespace)
    return namespace["verify"]


def test_the_documented_receiver_recipe_works():
    verify = receiver_example()
    current, previous = new_secret(), new_secret()
    body = b'{"event":"job.completed"}'
    fresh = headers([current, previous], "msg_doc", None, body)
    assert verify(current, fresh, body)
    assert verify(previous, fresh, body)
    assert not verify(new_secret(), fresh, body)
    assert not verify(current, fresh, body + b"x")
    stale = headers([current], "msg_doc", int(time.time()) - 301, body)
    assert not verify(current, stale, body)
    unknown_version = {**fresh, "webhook-signature": fresh["webhook-signature"].replace("v1,", "v2,")}
    assert not verify(current, unknown_version, body)


@pytest.mark.parametrize("secrets, error", [
    (SPEC_SECRET, TypeError),                     # a bare string is a sequence of characters
    ([], ValueError),
    (["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], ValueError),          # no whsec_ prefix
    (["whsec_not base64!"], ValueError),
    (["whsec_c2hvcnQ="], ValueError),             # 5 bytes: too short a key
])
def test_malformed_secrets_are_refused(secrets, error):
    with pytest.raises(error):
        sign(secrets, "msg_1", 1, b"{}")


@pytest.mark.parametrize("msg_id, timestamp, body", [
    ("", 1, b"{}"),
    ("msg 1", 1, b"{}"),
    ("msg_1\r\nX-Injected: 1", 1, b"{}"),
    ("msg_1", -1, b"{}"),
    ("msg_1", 1.5, b"{}"),
    ("msg_1", True, b"{}"),
    ("msg_1", 1, "{}"),
])
def test_bad_ids_timestamps_and_bodies_are_refused(msg_id, timestamp, body):
    with pytest.raises((ValueError, TypeError)):
        sign([SPEC_SECRET], msg_id, timestamp, body)
