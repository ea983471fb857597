"""Expiring HMAC signatures for URLs of the local store, which has no presigned URLs of its own.

An `<audio>` element cannot send a bearer header, so the API hands out a URL that carries its own
short-lived authority instead: HMAC-SHA256 of the object key and the expiry time.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

SECRET_BYTES = 32


def signature(secret: bytes, key: str, expires: int) -> str:
    return hmac.new(secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def is_valid(secret: bytes, key: str, expires: int, given: str, now: float) -> bool:
    """True when `given` signs `key` until `expires` (unix seconds) and that time has not passed."""
    if expires < now:
        return False
    return hmac.compare_digest(signature(secret, key, expires).encode(), given.encode())  # str: ASCII only


def load_or_create_secret(path: Path) -> bytes:
    """The secret in `path`, created once: every API process of a host reads the same file (the
    local store only ever serves one host). The file appears whole (written aside, then linked
    in place), and when two processes race to create it, the first link wins."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as tmp:
            tmp.write(secrets.token_hex(SECRET_BYTES))
        try:
            os.link(tmp.name, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp.name)
    return bytes.fromhex(path.read_text().strip())
