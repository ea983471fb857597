"""docker-compose.yml: the contract a deployment relies on.

The file is parsed as YAML (merge keys and anchors resolved) and ``${VAR:-default}`` values are
resolved as compose would with an empty shell environment. Only ``test_compose_config_is_valid``
needs the ``docker-compose`` binary; no Docker engine is used.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

import config
from jobs.queue import MAINTENANCE_QUEUE, QUEUES, WEBHOOKS_QUEUE

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SEAWEEDFS_CONFIG = ROOT / "deploy" / "seaweedfs" / "s3.json"

APP_SERVICES = ("migrate", "api", "worker", "maintenance", "webhooks", "beat")
LONG_RUNNING = ("redis", "postgres", "s3", "api", "worker", "maintenance", "webhooks", "beat")
HUB_VARIABLES = {"HF_TOKEN", "HF_HOME"}  # read by huggingface_hub itself, not by config.py
PRODUCTION_VARIABLES = (
    "DATABASE_URL",
    "BROKER_URL",
    "S3_BUCKET",
    "S3_ENDPOINT_URL",
    "S3_PUBLIC_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)


class RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def interpolate(value: str) -> str:
    """Compose's variable substitution against an empty shell environment."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return match.group(2) or ""

    return _INTERPOLATION.sub(replace, value)


def environment(service: dict) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["NAME=value", "NAME"]
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {
        name: None if value is None else interpolate(str(value)) for name, value in env.items()
    }


def as_words(command: str | list[str]) -> list[str]:
    return command.split() if isinstance(command, str) else [str(word) for word in command]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def settings_names() -> set[str]:
    recorder = RecordingEnv()
    config.Settings.from_env(recorder)
    assert recorder.names, "Settings.from_env looked nothing up"
    return recorder.names


def test_services_exist(services: dict) -> None:
    assert set(LONG_RUNNING) | set(APP_SERVICES) <= set(services)


def test_long_running_services_have_healthchecks(services: dict) -> None:
    long_running = {name for name, service in services.items() if service.get("restart") != "no"}
    assert set(LONG_RUNNING) <= long_running
    for name in long_running:
        healthcheck = services[name].get("healthcheck") or {}
        assert healthcheck.get("test"), f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name}'s healthcheck is disabled"


def test_app_services_share_one_image(services: dict) -> None:
    images = {services[name].get("image") for name in APP_SERVICES}
    assert len(images) == 1 and None not in images


def test_redis_persists_and_never_evicts(services: dict) -> None:
    words = as_words(services["redis"]["command"])
    flags = dict(zip(words, words[1:]))
    assert flags.get("--appendonly") == "yes"
    assert flags.get("--maxmemory-policy") == "noeviction"
    assert any(volume.endswith(":/data") for volume in services["redis"]["volumes"])


def test_startup_order(services: dict) -> None:
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["s3"]["condition"] == "service_healthy"
    assert as_words(services["migrate"]["command"]) == ["csm-batch", "init"]
    assert services["migrate"].get("restart", "no") == "no"
    for name in ("api", "worker", "maintenance", "beat"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert depends_on["redis"]["condition"] == "service_healthy", name


def test_api_serves_the_wsgi_app_on_8000(services: dict) -> None:
    api = services["api"]
    words = as_words(api["command"])
    assert words[0] == "gunicorn" and "api.wsgi:app" in words
    assert any("8000" in word for word in words)
    assert any(str(port).endswith("8000") for port in api["ports"])
    assert "/healthz" in " ".join(as_words(api["healthcheck"]["test"]))


def test_worker_reserves_a_gpu(services: dict) -> None:
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        device.get("driver") == "nvidia"
        and device.get("count") == 1
        and "gpu" in device.get("capabilities", [])
        for device in devices
    )


def test_worker_command_and_healthcheck(services: dict) -> None:
    worker = services["worker"]
    words = as_words(worker["command"])
    assert words[:4] == ["celery", "-A", "worker.main:app", "worker"]
    assert "--pool=prefork" in words and "--concurrency=1" in words
    assert words[words.index("-Q") + 1].split(",") == list(QUEUES)
    probe = " ".join(as_words(worker["healthcheck"]["test"]))
    assert "inspect ping" in probe and "celery@$$HOSTNAME" in probe


@pytest.mark.parametrize("name, queue", [("maintenance", MAINTENANCE_QUEUE), ("webhooks", WEBHOOKS_QUEUE)])
def test_the_sweeper_and_the_dispatcher_run_apart_without_a_gpu(services: dict, name: str, queue: str) -> None:
    service = services[name]
    words = as_words(service["command"])
    assert words[:4] == ["celery", "-A", "worker.maintenance:app", "worker"]
    assert words[words.index("-Q") + 1] == queue  # one queue each: webhooks never delay a sweep
    assert "deploy" not in service


def test_beat_runs_the_scheduler(services: dict) -> None:
    words = as_words(services["beat"]["command"])
    assert words[:4] == ["celery", "-A", "worker.main:app", "beat"]


def test_worker_hub_cache_and_token(services: dict) -> None:
    env = environment(services["worker"])
    hf_home = env.get("HF_HOME")
    assert hf_home, "worker has no HF_HOME"
    targets = [volume.split(":")[1] for volume in services["worker"].get("volumes", [])]
    assert hf_home in targets, f"no volume mounted at HF_HOME={hf_home}"
    assert "HF_TOKEN" in env
    # Passed through from the host, never written into the file.
    raw = services["worker"]["environment"]["HF_TOKEN"]
    assert raw is None or re.fullmatch(r"\$\{HF_TOKEN(:?-)?\}", raw), raw


def test_api_does_not_receive_hub_token(services: dict) -> None:
    assert "HF_TOKEN" not in environment(services["api"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_only_variables_the_settings_read(
    services: dict, settings_names: set[str], name: str
) -> None:
    unknown = set(environment(services[name])) - settings_names - HUB_VARIABLES
    assert not unknown, f"{name} gets variables nothing reads: {sorted(unknown)}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_production_variables_are_set(services: dict, name: str) -> None:
    env = environment(services[name])
    missing = [variable for variable in PRODUCTION_VARIABLES if not env.get(variable)]
    assert not missing, f"{name} lacks {missing}"


def test_app_services_share_one_environment(services: dict) -> None:
    base = environment(services["api"])
    for name in APP_SERVICES:
        env = environment(services[name])
        assert {k: v for k, v in env.items() if k not in HUB_VARIABLES} == base, name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_settings_accept_the_compose_environment(services: dict, name: str) -> None:
    env = {k: v for k, v in environment(services[name]).items() if v is not None}
    settings = config.Settings.from_env(env)
    assert settings.database_url.startswith("postgresql")
    assert not settings.uses_embedded_broker
    assert settings.s3_bucket and settings.s3_endpoint_url and settings.s3_public_endpoint_url


def test_urls_point_at_compose_services(services: dict) -> None:
    env = environment(services["api"])
    postgres = services["postgres"]["environment"]
    database = urlsplit(env["DATABASE_URL"])
    assert database.hostname == "postgres"
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert urlsplit(env["BROKER_URL"]).hostname == "redis"
    s3 = urlsplit(env["S3_ENDPOINT_URL"])
    assert (s3.hostname, s3.port) == ("s3", 8333)
    public_port = urlsplit(env["S3_PUBLIC_ENDPOINT_URL"]).port
    assert any(str(port) == f"{public_port}:8333" for port in services["s3"]["ports"])


def test_seaweedfs_credentials_match_the_services(services: dict) -> None:
    identities = json.loads(SEAWEEDFS_CONFIG.read_text())["identities"]
    credentials = {
        (credential["accessKey"], credential["secretKey"]): identity.get("actions", [])
        for identity in identities
        for credential in identity.get("credentials", [])
    }
    for name in APP_SERVICES:
        env = environment(services[name])
        key = (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
        assert key in credentials, f"{name}'s S3 credentials are not in {SEAWEEDFS_CONFIG.name}"
        # `csm-batch init` creates the bucket; the services read and write objects.
        assert {"Admin", "Read", "Write", "List"} <= set(credentials[key])
    mounts = [volume.split(":") for volume in services["s3"]["volumes"]]
    words = as_words(services["s3"]["command"])
    mounted_at = next(w for w in words if w.startswith("-s3.config=")).split("=", 1)[1]
    assert any(
        (ROOT / source).resolve() == SEAWEEDFS_CONFIG and target == mounted_at
        for source, target, *_ in mounts
    )


def test_named_volumes_are_declared(compose: dict, services: dict) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} uses undeclared volume {source}"
    used = {
        (v["source"] if isinstance(v, dict) else v.split(":")[0])
        for service in services.values()
        for v in service.get("volumes", [])
    }
    assert declared <= used, f"declared but unused: {sorted(declared - used)}"


def test_compose_config_is_valid() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed")
    result = subprocess.run(
        [binary, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_image_is_slim_non_root_and_weightless(services: dict) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    lines = (line.strip() for line in dockerfile.splitlines())
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    user = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert user and user[-1] not in ("root", "0")
    runs = " ".join(line for line in instructions if line.startswith("RUN"))
    assert "pip install -r requirements.txt" in runs
    # In place, so the console script finds alembic.ini and migrations/ beside its modules.
    assert "pip install --no-deps --editable ." in runs
    # Weights come from the hub cache volume, never from the build.
    assert not re.search(r"csm\.download|snapshot_download|huggingface-cli|hf download", runs)
    # The image's HF_HOME is the one the worker mounts its hub cache at.
    hf_home = environment(services["worker"])["HF_HOME"]
    assert re.search(rf"HF_HOME={re.escape(hf_home)}\b", dockerfile)


def test_build_context_leaves_out_local_state() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".data"} <= ignored
