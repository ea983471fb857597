"""A folder as an object store, for the embedded default.

An OS error other than a missing object (permissions, a full or read-only disk, something in
the way) is the store failing, as an S3 server's 5xx is: StorageUnavailable, which the API
answers 503 and the worker and sweeper retry later. A missing object stays FileNotFoundError.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from storage.base import StorageUnavailable


@contextmanager
def _failing_as_unavailable():
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StorageUnavailable(f"object store folder failed: {exc}") from exc


class LocalStore:
    def __init__(self, root: Path):
        self.root = root

    def path(self, key: str) -> Path:
        """The file of `key` (ValueError for a key that would leave the folder)."""
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path(key)
        with _failing_as_unavailable():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a crash leaves either the old object or the new one.
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
                tmp.write(data)
            try:
                os.replace(tmp.name, path)
            except OSError:
                os.unlink(tmp.name)
                raise

    def open(self, key: str) -> BinaryIO:
        with _failing_as_unavailable():
            return self.path(key).open("rb")

    def delete(self, key: str) -> None:
        with _failing_as_unavailable():
            self.path(key).unlink(missing_ok=True)

    def delete_many(self, keys: list[str]) -> None:
        for key in keys:
            self.delete(key)

    def download_url(self, key: str, filename: str) -> str | None:
        return None

    def check(self) -> None:
        if not self.root.is_dir():
            raise FileNotFoundError(f"object store folder {self.root} does not exist")

    def ensure_ready(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
