"""The embedded demo: the real pipeline (API + Celery worker + store + SQL) on one machine.

Starts the API (gunicorn) and one worker (with its sweeper) as child processes, submits an
example conversation as a script job through the client's code (as `csm-batch script` does),
polls until done, downloads the stitched master, each line's WAV and the manifest, and stops
both. When either child stops early (a worker without its model exits at start-up), the demo
says why and exits non-zero.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from client.http import ApiClient, ApiRefused, Unreachable
from client.outputs import download_job
from client.progress import wait_for_job
from config import Settings
from jobs.queue import ALL_QUEUES
from provision import ROOT, create_key, init

HTTP_TIMEOUT_S = 30
HEALTH_PROBE_TIMEOUT_S = 2
STOP_TIMEOUT_S = 30  # a warm shutdown's wait for the current render before the group is killed
LOG_TAIL_LINES = 5


def run_demo(settings: Settings, script: Path, out_dir: Path) -> int:
    """0 when the script rendered; 1 when it failed or the API or worker stopped; Ctrl-C and
    SIGTERM stop both children before the demo ends."""
    lines = json.loads(script.read_text())
    init(settings)
    key = create_key(settings, "demo")
    out_dir.mkdir(parents=True, exist_ok=True)
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    print(f"model={settings.csm_model} database={settings.database_url} broker={settings.broker_url}")

    started = time.perf_counter()
    try:
        with _sigterm_unwinds(), ExitStack() as stack:
            # Children get the same settings, whatever directory they resolve paths from.
            env = {**os.environ, "CSM_DATA_DIR": str(settings.data_dir)}
            children = [
                stack.enter_context(_process("API", logs / "api.log", env, [
                    "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "api.wsgi:app",
                ])),
                stack.enter_context(_process("worker", logs / "worker.log", env, [
                    "-m", "celery", "-A", "worker.main:app", "worker", "--beat", "--pool", "prefork",
                    "--concurrency", "1", "--queues", ",".join(ALL_QUEUES), "--loglevel", "INFO",
                ])),
            ]

            def running() -> None:
                for child in children:
                    child.check_running()

            # Short health probes: a booting API must not keep the demo from seeing a dead worker.
            _wait_healthy(ApiClient(base, key, HEALTH_PROBE_TIMEOUT_S), running)
            api = ApiClient(base, key, HTTP_TIMEOUT_S)
            submitted = api.post("/v1/jobs", json={"script": lines}).body
            print(f"submitted a script of {len(lines)} lines; rendering (logs in {logs})")
            job = wait_for_job(api, submitted["id"], check=running)
            if job["result"] is None:
                print(f"the script {job['status']}: {job['error']}")
                return 1
            download_job(api, job, out_dir, name=script.stem)
    except ChildStopped as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo: interrupted; the API and the worker are stopped", file=sys.stderr)
        return 130
    master = out_dir / f"{script.stem}.wav"
    manifest = json.loads((out_dir / script.stem / "manifest.json").read_text())
    for line in manifest["lines"]:
        print(
            f"line {line['index']}: speaker {line['speaker']} {line['status']} "
            f"{line['start_ms']}-{line['end_ms']} ms of the master"
        )
    print(
        f"{job['status']} in {time.perf_counter() - started:.1f} s: {master} ({manifest['duration_ms']} ms), "
        f"{len(lines)} line files and manifest.json in {out_dir / script.stem}"
    )
    return 0 if job["status"] == "succeeded" else 1


class ChildStopped(RuntimeError):
    """The API or the worker exited while the demo still needed it."""


@dataclass(frozen=True)
class _Child:
    name: str
    process: subprocess.Popen
    log: Path

    def check_running(self) -> None:
        if self.process.poll() is None:
            return
        tail = self.log.read_text(errors="replace").strip().splitlines()[-LOG_TAIL_LINES:]
        raise ChildStopped(
            f"the {self.name} stopped (exit status {self.process.returncode}); the end of {self.log}:\n"
            + "\n".join(tail)
        )


def _wait_healthy(api: ApiClient, running: Callable[[], None]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running()
        try:
            api.get("/healthz")
            return
        except (Unreachable, ApiRefused):  # not listening yet, or still booting
            pass
        time.sleep(0.2)
    raise TimeoutError("the API did not start within 60 s")


@contextmanager
def _sigterm_unwinds():
    """SIGTERM unwinds the demo like Ctrl-C, so its children are stopped on the way out; a
    second one waits for that."""

    def stop(signum, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _process(name: str, log_path: Path, env: dict[str, str], args: list[str]):
    """A child in a process group of its own (a terminal's Ctrl-C reaches only the demo, which
    stops it in order), stopped with everything in its group when the demo ends."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield _Child(name, process, log_path)
    finally:
        # SIGTERM to the main process first: gunicorn's and Celery's warm shutdown stop their
        # own children; then whatever is left of the group.
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
