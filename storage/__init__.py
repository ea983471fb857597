"""Object stores: S3-compatible (boto3) in production, a local folder for the embedded default."""
from __future__ import annotations

from config import Settings
from storage.base import ObjectStore, StorageUnavailable

__all__ = ["ObjectStore", "StorageUnavailable", "make_store"]


def make_store(settings: Settings) -> ObjectStore:
    # Imported here: the local default never loads boto3.
    if settings.s3_bucket:
        from storage.s3 import S3Store

        return S3Store.from_settings(settings)
    from storage.local import LocalStore

    return LocalStore(settings.local_store_dir)
