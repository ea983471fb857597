"""What every object store is: the protocol, and the error of a store that is down."""
from __future__ import annotations

from typing import BinaryIO, Protocol


class StorageUnavailable(ConnectionError):
    """The object store did not answer, failed on its side, or refused the call (credentials,
    permissions, a missing bucket: its set-up): try again later, once it is fixed."""


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write the whole object; readers never see a partial one."""

    def open(self, key: str) -> BinaryIO:
        """A readable stream of the object; FileNotFoundError when absent."""

    def delete(self, key: str) -> None:
        """Remove the object; nothing happens when it is absent."""

    def delete_many(self, keys: list[str]) -> None:
        """Remove the objects (absent ones are no error); StorageUnavailable unless all are gone."""

    def download_url(self, key: str, filename: str) -> str | None:
        """A time-limited URL clients can fetch directly, or None to stream through the API."""

    def check(self) -> None:
        """Raise when the store is unreachable."""

    def ensure_ready(self) -> None:
        """Create the bucket or folder if needed (an explicit set-up step)."""
