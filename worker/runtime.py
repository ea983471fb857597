"""What a worker process holds for its whole life: the model, a DB pool and the store.

Loaded once per process before its first task (Celery's worker_process_init), never in
the API and never in a parent that forks.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from jobs import completion
from jobs.db import make_session_factory, service_engine
from storage import ObjectStore, make_store
from worker.voices import VoiceLibrary

if TYPE_CHECKING:
    from csm import Generator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    sessions: sessionmaker[Session]
    store: ObjectStore
    generator: "Generator"
    voices: VoiceLibrary


def load_runtime(settings: Settings) -> Runtime:
    from csm import load_generator

    started = time.perf_counter()
    generator = load_generator(
        settings.csm_model,
        device=settings.csm_device,
        cache_dir=settings.model_cache_dir,
        max_batch_size=settings.worker_batch_size,
        compile=settings.csm_compile,
        cuda_graphs=settings.csm_cuda_graphs,
    )
    load_s = time.perf_counter() - started
    warm_up_s = generator.warm_up()
    log.info("event=model_loaded model=%s load_s=%.2f warm_up_s=%.2f compiled=%s compile_s=%.2f graphed=%s "
             "capture_s=%.2f", settings.csm_model, load_s, warm_up_s, generator.compiled, generator.compile_s,
             generator.graphed, generator.capture_s)
    sessions = process_sessions(settings)
    store = process_store(settings)
    return Runtime(
        settings=settings,
        sessions=sessions,
        store=store,
        generator=generator,
        voices=VoiceLibrary(sessions, store, generator.sample_rate),
    )


_current: Runtime | None = None
_sessions: sessionmaker[Session] | None = None
_store: ObjectStore | None = None


def process_sessions(settings: Settings) -> sessionmaker[Session]:
    """This process's database pool, made after any fork (pools must not cross one)."""
    global _sessions
    if _sessions is None:
        _sessions = make_session_factory(service_engine(settings))
        # Requests waiting for a job of the sync queue hear of it once it is committed.
        completion.signal_after_commit(_sessions, completion.make_signal(settings))
    return _sessions


def process_store(settings: Settings) -> ObjectStore:
    """This process's object store client, made after any fork."""
    global _store
    if _store is None:
        _store = make_store(settings)
    return _store


def init_process(settings: Settings) -> None:
    global _current
    _current = load_runtime(settings)


def check_model_files(settings: Settings) -> None:
    """Finds the model's files without loading them, so a parent that forks may call it: nothing
    runs on torch, let alone CUDA. A worker without its model exits here, with the reason and
    status 1, before it takes any message. (The tiny model is built by the children: it needs
    torch, and it cannot be missing.)"""
    from csm import ModelFilesError, resolve_model
    from csm.resolve import TINY_SPEC

    if settings.csm_model == TINY_SPEC:
        return
    try:
        resolve_model(settings.csm_model, settings.model_cache_dir)
    except ModelFilesError as exc:
        raise SystemExit(f"csm-batch worker: cannot start: {exc}") from None


def init_child_or_stop(settings: Settings) -> None:
    """A pool child's start-up: load the model, or stop the whole worker (cold shutdown, exit
    status 1; other children's jobs go back to the queue) rather than leave a child without a
    model to take messages and fail them."""
    try:
        init_process(settings)
    except Exception:
        log.critical("event=model_load_failed model=%s: the worker stops", settings.csm_model, exc_info=True)
        os.kill(os.getppid(), signal.SIGQUIT)
        os._exit(1)  # before the pool hands this child a message


def current(settings: Settings) -> Runtime:
    """This process's runtime, loaded now if no worker_process_init ran (solo pool)."""
    if _current is None:
        init_process(settings)
    return _current
