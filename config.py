"""Settings: the one module that reads the environment.

Every variable is parsed strictly at start-up; a bad value stops the process with a message
naming the variable. With nothing set, the service runs on the embedded default: a SQLite file,
a filesystem Celery broker and a local-folder object store under ``CSM_DATA_DIR``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable, Mapping, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


class SettingsError(ValueError):
    """An environment variable is missing or malformed."""


# OpenAI's voice names -> CSM speakers, for POST /v1/audio/speech (OPENAI_VOICES overrides).
DEFAULT_OPENAI_VOICES = (
    "alloy=0,echo=1,fable=2,onyx=3,nova=4,shimmer=5,ash=6,ballad=7,coral=8,sage=9,verse=10"
)


def voice_map(raw: str) -> dict[str, int]:
    """"name=speaker,name=speaker" -> {name: speaker}."""
    voices = {}
    for pair in raw.split(","):
        name, equals, speaker = (part.strip() for part in pair.partition("="))
        if not name or not equals or not speaker.isdigit():
            raise ValueError(f"{pair.strip()!r} is not name=speaker")
        voices[name] = int(speaker)
    return voices


def boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError("must be true or false")
    return lowered in ("true", "1", "yes")


def port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be a TCP port, 1 to 65535")
    return value


def one_of(*choices: str) -> Callable[[str], str]:
    def check(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return raw.lower()
    return check


def hours(raw: str) -> timedelta:
    """A positive, finite number of hours."""
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a positive number of hours")
    try:
        return timedelta(hours=value)
    except OverflowError:
        raise ValueError("is too large") from None


def boolean_or_auto(raw: str) -> bool | None:
    """A boolean, or "auto" (None): the engine decides (see the variable's README entry)."""
    return None if raw.lower() == "auto" else boolean(raw)


def positive(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A positive, finite number: a timeout of "nan" or "inf" would bound nothing."""
    def check(raw: str) -> T:
        value = parse(raw)
        if not 0 < value < math.inf:  # type: ignore[operator]
            raise ValueError("must be a positive, finite number")
        return value
    return check


def http_url(raw: str) -> str:
    """An http(s) URL with a host, without its trailing slash."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return raw.rstrip("/")


def _reader(environ: Mapping[str, str] | None) -> Callable[[str, Callable[[str], T], T], T]:
    """get(name, parse, default): the variable parsed, or `default` when unset or blank; a value
    that does not parse raises SettingsError naming the variable."""
    env = os.environ if environ is None else environ

    def get(name: str, parse: Callable[[str], T], default: T) -> T:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{name}={raw!r} is invalid: {exc}") from None

    return get


@dataclass(frozen=True)
class ClientSettings:
    """What the client commands of `csm-batch` need: the API's address and a key for it."""

    api_url: str
    api_key: str
    timeout_s: float  # connecting, and each read, of every HTTP call

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "ClientSettings":
        get = _reader(environ)
        api_key = get("CSM_API_KEY", str, None)
        if api_key is None:
            raise SettingsError("CSM_API_KEY is not set: an operator creates one with `csm-batch keys create NAME`")
        return cls(
            api_url=get("CSM_API_URL", http_url, "http://localhost:8000"),
            api_key=api_key,
            timeout_s=get("CSM_API_TIMEOUT_S", positive(float), 30.0),
        )


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    broker_url: str
    # Object storage: S3 when s3_bucket is set, otherwise a local folder.
    s3_bucket: str | None
    s3_endpoint_url: str | None
    s3_public_endpoint_url: str | None
    s3_region: str
    s3_access_key_id: str | None
    s3_secret_access_key: str | None
    presign_expiry_s: int
    # Outbound calls: every one ends within a bounded time, so an outage gives errors, not hangs.
    database_connect_timeout_s: int  # PostgreSQL counts whole seconds, at least 2
    database_timeout_s: float  # one round trip to the database; the server's statement_timeout
    broker_timeout_s: float  # connecting to Redis and each reply
    s3_connect_timeout_s: float
    s3_read_timeout_s: float
    s3_max_attempts: int  # tries per S3 call, the first included
    dns_timeout_s: float  # resolving a webhook host, at submission and before each attempt
    # Engine and worker.
    csm_model: str
    csm_device: str | None
    csm_compile: bool | None  # None: on CUDA only
    csm_cuda_graphs: bool
    worker_batch_size: int
    task_soft_time_limit_s: int
    task_time_limit_s: int
    max_attempts: int
    # A worker renews its claim every lease_s / 3; a claim not renewed for lease_s was lost.
    lease_s: int
    requeue_after_s: int
    sweep_interval_s: float
    # The sweeper deletes a job's outputs this long after it (or its batch) finished; None: kept.
    result_ttl: timedelta | None
    # API limits.
    max_text_chars: int
    max_body_bytes: int
    # Webhooks.
    public_api_url: str | None  # the base of URLs in webhook payloads
    webhook_allow_private: bool  # let webhooks reach private addresses (tests, trusted networks)
    webhook_timeout_s: float
    webhook_retry_scale: float  # multiplies the retry schedule (tests shrink it)
    webhook_dispatch_interval_s: float
    webhook_dispatch_budget_s: float  # a dispatcher run starts no attempt after this long
    # Observability.
    log_format: str  # "text" (key=value lines) or "json" (one object a line)
    # A worker serves its metrics on this port (None: off); its prefork children count in
    # files under metrics_dir (PROMETHEUS_MULTIPROC_DIR, which prometheus-client reads too).
    worker_metrics_port: int | None
    metrics_dir: Path | None
    # Synchronous synthesis (POST /generate_audio, /v1/audio/speech).
    sync_wait_s: float  # how long a request waits for its job before answering 504
    sync_max_waiting: int  # requests one API process lets wait at once; more get 503
    openai_voices: dict[str, int]  # OpenAI voice name -> speaker

    @property
    def local_store_dir(self) -> Path:
        return self.data_dir / "objects"

    @property
    def url_secret_path(self) -> Path:
        """The key that signs the local store's file URLs (created on first use)."""
        return self.data_dir / "url-signing.key"

    @property
    def model_cache_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def visibility_timeout_s(self) -> int:
        """Redis hands an unacked message out again after this: never while its task may run."""
        return self.task_time_limit_s + 60

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        get = _reader(environ)
        data_dir = get("CSM_DATA_DIR", lambda raw: Path(raw).resolve(), Path(".data").resolve())
        settings = cls(
            data_dir=data_dir,
            database_url=get("DATABASE_URL", str, f"sqlite:///{data_dir / 'csm-batch.db'}"),
            broker_url=get("BROKER_URL", str, "filesystem://"),
            s3_bucket=get("S3_BUCKET", str, None),
            s3_endpoint_url=get("S3_ENDPOINT_URL", str, None),
            s3_public_endpoint_url=get("S3_PUBLIC_ENDPOINT_URL", str, None),
            s3_region=get("S3_REGION", str, "us-east-1"),
            s3_access_key_id=get("AWS_ACCESS_KEY_ID", str, None),
            s3_secret_access_key=get("AWS_SECRET_ACCESS_KEY", str, None),
            presign_expiry_s=get("PRESIGN_EXPIRY_S", positive(int), 3600),
            database_connect_timeout_s=get("DATABASE_CONNECT_TIMEOUT_S", positive(int), 5),
            database_timeout_s=get("DATABASE_TIMEOUT_S", positive(float), 15.0),
            broker_timeout_s=get("BROKER_TIMEOUT_S", positive(float), 3.0),
            s3_connect_timeout_s=get("S3_CONNECT_TIMEOUT_S", positive(float), 5.0),
            s3_read_timeout_s=get("S3_READ_TIMEOUT_S", positive(float), 15.0),
            s3_max_attempts=get("S3_MAX_ATTEMPTS", positive(int), 2),
            dns_timeout_s=get("DNS_TIMEOUT_S", positive(float), 5.0),
            csm_model=get("CSM_MODEL", str, "sesame/csm-1b"),
            csm_device=get("CSM_DEVICE", str, None),
            csm_compile=get("CSM_COMPILE", boolean_or_auto, None),
            csm_cuda_graphs=get("CSM_CUDA_GRAPHS", boolean, True),
            worker_batch_size=get("WORKER_BATCH_SIZE", positive(int), 8),
            task_soft_time_limit_s=get("TASK_SOFT_TIME_LIMIT_S", positive(int), 600),
            task_time_limit_s=get("TASK_TIME_LIMIT_S", positive(int), 660),
            max_attempts=get("MAX_ATTEMPTS", positive(int), 3),
            lease_s=get("LEASE_S", positive(int), 60),
            requeue_after_s=get("REQUEUE_AFTER_S", positive(int), 600),
            sweep_interval_s=get("SWEEP_INTERVAL_S", positive(float), 30.0),
            result_ttl=get("RESULT_TTL_HOURS", hours, None),
            max_text_chars=get("MAX_TEXT_CHARS", positive(int), 2000),
            max_body_bytes=get("MAX_BODY_BYTES", positive(int), 64 * 1024),
            public_api_url=get("PUBLIC_API_URL", lambda raw: raw.rstrip("/"), None),
            webhook_allow_private=get("WEBHOOK_ALLOW_PRIVATE", boolean, False),
            webhook_timeout_s=get("WEBHOOK_TIMEOUT_S", positive(float), 10.0),
            webhook_retry_scale=get("WEBHOOK_RETRY_SCALE", positive(float), 1.0),
            webhook_dispatch_interval_s=get("WEBHOOK_DISPATCH_INTERVAL_S", positive(float), 2.0),
            webhook_dispatch_budget_s=get("WEBHOOK_DISPATCH_BUDGET_S", positive(float), 20.0),
            log_format=get("LOG_FORMAT", one_of("text", "json"), "text"),
            worker_metrics_port=get("WORKER_METRICS_PORT", port, None),
            metrics_dir=get("PROMETHEUS_MULTIPROC_DIR", lambda raw: Path(raw).resolve(), None),
            sync_wait_s=get("SYNC_WAIT_S", positive(float), 120.0),
            sync_max_waiting=get("SYNC_MAX_WAITING", positive(int), 8),
            openai_voices=get("OPENAI_VOICES", voice_map, voice_map(DEFAULT_OPENAI_VOICES)),
        )
        if settings.task_soft_time_limit_s >= settings.task_time_limit_s:
            raise SettingsError("TASK_SOFT_TIME_LIMIT_S must be below TASK_TIME_LIMIT_S")
        if settings.worker_metrics_port and not settings.metrics_dir:
            raise SettingsError(
                "WORKER_METRICS_PORT needs PROMETHEUS_MULTIPROC_DIR: a folder where each prefork child counts"
            )
        if settings.s3_public_endpoint_url and not settings.s3_bucket:
            raise SettingsError("S3_PUBLIC_ENDPOINT_URL is set but S3_BUCKET is not")
        return settings

    @property
    def uses_embedded_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"
