"""S3-compatible object storage through boto3."""
from __future__ import annotations

from contextlib import contextmanager
from typing import BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from config import Settings
from storage.base import StorageUnavailable

DELETE_PER_REQUEST = 1000  # S3's limit for one DeleteObjects call


def _client(settings: Settings, endpoint_url: str | None):
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=settings.s3_connect_timeout_s,
            read_timeout=settings.s3_read_timeout_s,
            retries={"total_max_attempts": settings.s3_max_attempts, "mode": "standard"},
        ),
    )


@contextmanager
def _unavailable_on_failure(absent: tuple[str, ...] = ()):
    """Turns the store not answering (network errors, timeouts), failing (5xx) or refusing (any
    other 4xx: AccessDenied, SignatureDoesNotMatch, NoSuchBucket ...) into StorageUnavailable.
    A ClientError whose code is in `absent` (not found, which the caller handles) is re-raised.
    The message names the store's code, not its text, which a store may fill with request details."""
    try:
        yield
    except (ConnectionError, HTTPClientError) as exc:
        raise StorageUnavailable(f"object store unreachable: {exc}") from exc
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in absent:
            raise
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        what = "failed" if status >= 500 else "refused"
        raise StorageUnavailable(f"object store {what}: {code} (HTTP {status}) on {exc.operation_name}") from exc


class S3Store:
    def __init__(self, client, public_client, bucket: str, presign_expiry_s: int):
        self.client = client
        # Presigned URLs sign the host, so they are made for the endpoint clients reach.
        self.public_client = public_client
        self.bucket = bucket
        self.presign_expiry_s = presign_expiry_s

    @classmethod
    def from_settings(cls, settings: Settings) -> "S3Store":
        client = _client(settings, settings.s3_endpoint_url)
        public = settings.s3_public_endpoint_url
        public_client = _client(settings, public) if public else client
        return cls(client, public_client, settings.s3_bucket, settings.presign_expiry_s)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        with _unavailable_on_failure():
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def open(self, key: str) -> BinaryIO:
        try:
            with _unavailable_on_failure(absent=("NoSuchKey", "404")):
                return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            raise FileNotFoundError(key) from exc

    def delete(self, key: str) -> None:
        with _unavailable_on_failure():
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def delete_many(self, keys: list[str]) -> None:
        """One DeleteObjects call per 1000 keys, each bounded like every call of the client."""
        for start in range(0, len(keys), DELETE_PER_REQUEST):
            chunk = keys[start:start + DELETE_PER_REQUEST]
            with _unavailable_on_failure():
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}
                )
            if errors := answer.get("Errors"):  # per key, e.g. SlowDown or InternalError
                first = errors[0]
                raise StorageUnavailable(
                    f"object store kept {len(errors)} of {len(chunk)} objects: {first.get('Code')} {first.get('Message')}"
                )

    def download_url(self, key: str, filename: str) -> str | None:
        return self.public_client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=self.presign_expiry_s,
        )

    def check(self) -> None:
        with _unavailable_on_failure():
            self.client.head_bucket(Bucket=self.bucket)

    def ensure_ready(self) -> None:
        try:
            with _unavailable_on_failure(absent=("404", "NoSuchBucket")):
                self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            with _unavailable_on_failure():
                self.client.create_bucket(Bucket=self.bucket)
