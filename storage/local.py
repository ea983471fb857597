"""A folder as an object store, for the embedded default."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO


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
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a crash leaves either the old object or the new one.
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def delete(self, key: str) -> None:
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
