"""The embedded demo: the real pipeline (API + Celery worker + store + SQL) on one machine.

Starts the API (gunicorn) and one worker (with its sweeper) as child processes, submits an
example conversation over REST as a script job, polls until done, downloads the stitched
master, each line's WAV and the manifest, and stops both. When either child stops early (a
worker without its model exits at start-up), the demo says why and exits non-zero.
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

import requests

from config import Settings
from jobs.queue import ALL_QUEUES
from provision import ROOT, create_key, init

POLL_S = 0.5
TIMEOUT_S = 600
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

            client = requests.Session()
            client.headers["Authorization"] = f"Bearer {key}"
            _wait_healthy(client, base, running)
            submitted = client.post(f"{base}/v1/jobs", json={"script": lines}, timeout=30)
            submitted.raise_for_status()
            print(f"submitted a script of {len(lines)} lines; rendering (logs in {logs})")
            job = _wait_done(client, base, submitted.json()["id"], running)
            if job["result"] is None:
                print(f"the script {job['status']}: {job['error']}")
                return 1
            outputs = {"conversation.wav": job["result"]["audio_url"], "manifest.json": job["result"]["manifest_url"]}
            outputs |= {f"line-{i:02d}.wav": url for i, url in enumerate(job["result"]["line_audio_urls"])}
            for name, url in outputs.items():
                response = client.get(url, timeout=60)
                response.raise_for_status()
                (out_dir / name).write_bytes(response.content)
    except ChildStopped as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo: interrupted; the API and the worker are stopped", file=sys.stderr)
        return 130
    manifest = json.loads((out_dir / "manifest.json").read_text())
    for line in manifest["lines"]:
        print(
            f"line {line['index']}: speaker {line['speaker']} {line['status']} "
            f"{line['start_ms']}-{line['end_ms']} ms of the master"
        )
    print(
        f"{job['status']} in {time.perf_counter() - started:.1f} s: {out_dir / 'conversation.wav'} "
        f"({manifest['duration_ms']} ms), {len(lines)} line files and manifest.json"
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


def _wait_done(client: requests.Session, base: str, job_id: str, running: Callable[[], None]) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        running()
        job = client.get(f"{base}/v1/jobs/{job_id}", timeout=30).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(POLL_S)
    raise TimeoutError(f"job {job_id} did not finish in {TIMEOUT_S} s")


def _wait_healthy(client: requests.Session, base: str, running: Callable[[], None]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running()
        try:
            if client.get(f"{base}/healthz", timeout=2).ok:
                return
        except requests.RequestException:  # not listening yet, or still booting
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
